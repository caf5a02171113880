//! The dashboard's and `/metrics`' server time on a big machine: a 20×20
//! triad machine (1,200 boards) with 1,000 single-board jobs placed and
//! powered (200 boards free), sans-I/O: the machine page's HTML (SVG map
//! included) and one metrics scrape's text, rendered from the controller
//! as the HTTP handlers do under the service lock.
//!
//! Run: `cargo bench -p spalloc-bench --bench web_render` (add `-- --quick`
//! for fewer repeats). Prints a Markdown table (medians).

use serde_json::{json, Map, Value};
use spalloc_server::cmd::create_job;
use spalloc_server::core::controller::{Controller, ControllerSettings};
use spalloc_server::metrics::{self, snapshot::Snapshot};
use spalloc_server::web::pages::machine_body;
use spalloc_server::ServerConfig;
use std::time::Instant;

fn controller() -> Controller {
    let toml = "seconds_before_free = 0.0\n[[machine]]\nname = \"m\"\nwidth = 20\nheight = 20\n\
                base_ip = \"127.3.0.0\"\npower_delay = 0.0\n";
    let config = ServerConfig::from_toml_str(toml).expect("bench machine config");
    let settings = ControllerSettings {
        max_retired_jobs: config.max_retired_jobs,
        seconds_before_free: 0.0,
    };
    Controller::new(
        settings,
        config.machines.into_iter().map(|m| m.machine).collect(),
    )
}

fn busy_controller(jobs: usize) -> Controller {
    let mut c = controller();
    for _ in 0..jobs {
        let mut kwargs = Map::new();
        kwargs.insert("owner".into(), json!("bench"));
        kwargs.insert("keepalive".into(), Value::Null);
        let spec = create_job::parse(vec![json!(1)], kwargs).expect("valid create_job");
        let id = c.create_job(spec, None, 0.0);
        c.power_job(id, true, None, 0.0);
    }
    loop {
        let requests = c.take_bmp_requests();
        if requests.is_empty() {
            break;
        }
        for r in requests {
            c.bmp_request_done(r.id, Ok(()), 0.0);
        }
        c.take_changes();
    }
    c
}

/// Median of `repeats` timings of `f`, in milliseconds.
fn median_ms(repeats: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(repeats);
    let mut size = 0;
    for _ in 0..repeats {
        let started = Instant::now();
        size = std::hint::black_box(f());
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], size)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 5 } else { 51 };
    let c = busy_controller(1000);
    let in_use = c.live_jobs().filter(|j| j.allocation.is_some()).count();
    println!("| what (1,200 boards, {in_use} jobs placed) | median | output |");
    println!("| --- | --- | --- |");
    let (page, bytes) = median_ms(repeats, || {
        machine_body(&c, "m")
            .map(|m| m.into_string().len())
            .unwrap_or(0)
    });
    println!("| machine page (HTML + SVG map) | {page:.2} ms | {bytes} bytes |");
    let (scrape, bytes) = median_ms(repeats, || {
        metrics::encode(
            Snapshot::of_controller(&c, 1.0),
            metrics::HttpFacts::default(),
        )
        .len()
    });
    println!("| /metrics scrape | {scrape:.2} ms | {bytes} bytes |");
}
