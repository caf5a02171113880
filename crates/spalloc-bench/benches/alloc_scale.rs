//! Allocation at scale, sans-I/O: the server's `Controller` driven directly,
//! with every BMP request completed at once (a zero-delay BMP).
//!
//! For each machine size (W×H triads, 3 boards a triad) and queue length N:
//!
//! * **idle**: N `create_job`s on an empty machine (each placed on the spot
//!   until the machine is full, the rest queued);
//! * **queued**: a whole-machine job holds every board, N jobs are queued
//!   behind it (95% single-board, 5% multi-board: 2 boards or a 1×1 triad),
//!   then the blocker is destroyed and the clock runs until the queue is
//!   stable and every placed job is READY (its power-on done): the time to
//!   place them all.
//!
//! Run: `cargo bench -p spalloc-bench --bench alloc_scale` (add `-- --quick`
//! for one repeat). Prints a Markdown table (medians of the repeats).

use serde_json::{json, Map, Value};
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::ServerConfig;
use std::time::Instant;

/// A controller for one W×H machine with zero free delay.
fn controller(w: u32, h: u32) -> Controller {
    let toml = format!(
        "seconds_before_free = 0.0\n[[machine]]\nname = \"m\"\nwidth = {w}\nheight = {h}\n\
         base_ip = \"127.3.0.0\"\npower_delay = 0.0\n"
    );
    let config = ServerConfig::from_toml_str(&toml).expect("bench machine config");
    let settings = ControllerSettings {
        max_retired_jobs: config.max_retired_jobs,
        seconds_before_free: 0.0,
    };
    Controller::new(
        settings,
        config.machines.into_iter().map(|m| m.machine).collect(),
    )
}

/// Creates one job with these positional arguments.
fn create(c: &mut Controller, args: Value, now: f64) -> u64 {
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("bench"));
    kwargs.insert("keepalive".into(), Value::Null);
    let Value::Array(args) = args else {
        unreachable!("args are an array")
    };
    let spec = create_job::parse(args, kwargs).expect("valid create_job");
    c.create_job(spec, None, now)
}

/// The i-th job of the mix: 1 board, except every 20th asks for 2 boards
/// and every 20th (offset) for a 1×1 triad.
fn mix(i: usize) -> Value {
    match i % 20 {
        9 => json!([2]),
        19 => json!([1, 1]),
        _ => json!([1]),
    }
}

/// Completes BMP requests (and the ones they cause) until none is left;
/// returns how many.
fn drain(c: &mut Controller, now: f64) -> usize {
    let mut n = 0;
    loop {
        let requests = c.take_bmp_requests();
        if requests.is_empty() {
            break;
        }
        for r in requests {
            c.bmp_request_done(r.id, Ok(()), now);
            n += 1;
        }
        c.take_changes();
    }
    n
}

fn placed(c: &Controller) -> usize {
    c.live_jobs().filter(|j| j.allocation.is_some()).count()
}

/// One measurement: (idle create µs/job, queued create µs/job, release→all placed ms, placed).
fn run(w: u32, h: u32, n: usize) -> (f64, f64, f64, usize) {
    let now = 1_000_000.0;
    // Idle machine: each create places at once while boards last.
    let mut c = controller(w, h);
    let t = Instant::now();
    for i in 0..n {
        create(&mut c, mix(i), now);
        drain(&mut c, now);
    }
    let idle_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    // Queued behind a whole-machine job, then released.
    let mut c = controller(w, h);
    let blocker = create(&mut c, json!([w, h]), now);
    drain(&mut c, now);
    let t = Instant::now();
    for i in 0..n {
        create(&mut c, mix(i), now);
    }
    let queue_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    c.destroy_job(blocker, Some("bench".into()), now);
    drain(&mut c, now);
    c.tick(now);
    drain(&mut c, now);
    let release_ms = t.elapsed().as_secs_f64() * 1e3;
    (idle_us, queue_us, release_ms, placed(&c))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 1 } else { 3 };
    let sizes: &[(u32, u32)] = &[(5, 5), (10, 10), (15, 15), (20, 20)];
    let queues: &[usize] = &[250, 500, 1000, 2000];
    println!(
        "| machine (triads, boards) | queued jobs | create on idle machine, µs/job | create queued, µs/job | release → all placed and READY, ms | µs per placed job | jobs placed |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &(w, h) in sizes {
        for &n in queues {
            let runs: Vec<_> = (0..repeats).map(|_| run(w, h, n)).collect();
            let idle = median(runs.iter().map(|r| r.0).collect());
            let queued = median(runs.iter().map(|r| r.1).collect());
            let release = median(runs.iter().map(|r| r.2).collect());
            let placed = runs[0].3;
            println!(
                "| {w}×{h} ({}) | {n} | {idle:.1} | {queued:.1} | {release:.2} | {:.1} | {placed} |",
                w * h * 3,
                release * 1e3 / placed.max(1) as f64
            );
        }
    }
}
