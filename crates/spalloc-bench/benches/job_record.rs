//! A job's durable record: its size in bytes and the time to encode it as
//! JSON, which every commit that changes the job pays on the request path
//! (the store writes the whole record of each changed job).
//!
//! Two jobs, each driven through the controller as the server would, with
//! realistic (sub-second) Unix times:
//!
//! * **ready**: a legacy one-board job (owner, keepalive 60 s, client host)
//!   that was placed at once and became READY: three history entries;
//! * **history 10**: the same job after power cycles, with ten entries;
//! * **300 boards**: a READY 10×10-triad job on a 12×12-triad machine.
//!
//! Run: `cargo bench -p spalloc-bench --bench job_record` (add `-- --quick`
//! for fewer repeats). Prints a Markdown table: record bytes and median ns
//! per `serde_json::to_string` (what the store calls).
//!
//! For instruction counts on a loaded host: `-- --encodes N` skips the
//! timing and only encodes each job N times (`--job I`: only row I, from
//! 0), so that `valgrind --tool=callgrind` of `--encodes 10000` minus
//! `--encodes 0`, divided by 10,000, is the instructions per encode.

use serde_json::{json, Map, Value};
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::core::job::Job;
use spalloc_server::ServerConfig;
use std::time::Instant;

/// A Unix time with a fractional part, like the server's clock gives.
const NOW: f64 = 1_796_508_491.178_250_3;

/// A controller for one W×H-triad machine.
fn controller(w: u32, h: u32) -> Controller {
    let toml = format!(
        "[[machine]]\nname = \"m\"\nwidth = {w}\nheight = {h}\n\
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

/// Completes every outstanding BMP request at `now`.
fn complete_bmp(c: &mut Controller, now: f64) {
    loop {
        let requests = c.take_bmp_requests();
        if requests.is_empty() {
            break;
        }
        for r in requests {
            c.bmp_request_done(r.id, Ok(()), now);
        }
    }
}

/// A one-board job made READY, then power-cycled until its history has
/// `changes` entries (at least three; the last power change may still be
/// under way).
fn job(changes: usize) -> Job {
    job_of(2, Vec::new(), changes)
}

/// A job with these `create_job` arguments on a W×W-triad machine, made
/// READY, then power-cycled until its history has `changes` entries.
fn job_of(w: u32, args: Vec<Value>, changes: usize) -> Job {
    let mut c = controller(w, w);
    let mut kwargs = Map::new();
    kwargs.insert("owner".into(), json!("alice"));
    kwargs.insert("keepalive".into(), json!(60.0));
    let spec = create_job::parse(args, kwargs).expect("valid create_job");
    let mut now = NOW;
    let id = c.create_job(spec, Some("127.0.0.1".into()), now);
    now += 0.013_712_9;
    complete_bmp(&mut c, now);
    let mut on = false;
    let entries = |c: &Controller| c.job_history(id).map_or(0, <[_]>::len);
    while entries(&c) < changes {
        now += 7.301_234_7;
        c.power_job(id, on, Some("127.0.0.1"), now);
        if entries(&c) < changes {
            now += 0.011_317_3;
            complete_bmp(&mut c, now);
        }
        on = !on;
    }
    let job = c.live_jobs().find(|j| j.id == id).cloned();
    job.expect("the job is live")
}

/// Median ns per encode of `job`, over `repeats` rounds of `per_round`.
fn encode_ns(job: &Job, repeats: usize, per_round: usize) -> f64 {
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let started = Instant::now();
        for _ in 0..per_round {
            let text = serde_json::to_string(std::hint::black_box(job)).expect("encodes");
            std::hint::black_box(text);
        }
        times.push(started.elapsed().as_secs_f64() * 1e9 / per_round as f64);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs = [
        ("READY one-board job", job(3)),
        ("10-entry history", job(10)),
        (
            "READY 10×10-triad job (300 boards)",
            job_of(12, vec![json!(10), json!(10)], 3),
        ),
    ];
    if let Some(n) = args
        .iter()
        .position(|a| a == "--encodes")
        .and_then(|i| args.get(i + 1))
    {
        let n: usize = n.parse().expect("--encodes takes a count");
        let only: Option<usize> = args
            .iter()
            .position(|a| a == "--job")
            .and_then(|i| args.get(i + 1))
            .map(|i| i.parse().expect("--job takes a row number from 0"));
        for _ in 0..n {
            for (i, (_, j)) in jobs.iter().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                let text = serde_json::to_string(std::hint::black_box(j)).expect("encodes");
                std::hint::black_box(text);
            }
        }
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let repeats = if quick { 5 } else { 31 };
    println!("| job record | bytes | median encode |");
    println!("| --- | --- | --- |");
    for (what, j) in &jobs {
        let text = serde_json::to_string(j).expect("encodes");
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        std::hint::black_box(back);
        let per_round = 10_000_000 / text.len().max(1);
        let ns = encode_ns(j, repeats, per_round);
        println!("| {what} | {} | {ns:.0} ns |", text.len());
        if args.iter().any(|a| a == "--print") {
            println!("\n`{text}`\n");
        }
    }
}
