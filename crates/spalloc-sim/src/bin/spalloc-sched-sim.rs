//! `spalloc-sched-sim`: replays a workload through the server's core under
//! each scheduling policy and prints the comparison as a Markdown table.
//!
//! ```text
//! spalloc-sched-sim                                # 10,000 seeded jobs on bench/machines/huge.toml
//! spalloc-sched-sim --jobs 2000 --seed 7 --load 1.2
//! spalloc-sched-sim --trace jobs.csv               # lines of submit_time,boards,duration
//! ```

use clap::Parser;
use spalloc_server::core::scheduler::Scheduler;
use spalloc_server::ServerConfig;
use spalloc_sim::report::{table, Summary};
use spalloc_sim::{simulate, workload};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Compare scheduling policies on one machine with a replayed workload.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The server configuration whose first machine is simulated.
    #[arg(long, default_value = "bench/machines/huge.toml")]
    config: PathBuf,
    /// Replay this trace (CSV: submit_time,boards,duration) instead of a
    /// seeded workload.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Jobs in the seeded workload.
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// Seed of the seeded workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Offered load of the seeded workload: board-seconds asked for per
    /// second over the machine's boards.
    #[arg(long, default_value_t = 0.9)]
    load: f64,
    /// The policies to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "fifo,backfill")]
    policy: Vec<Scheduler>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match ServerConfig::from_file(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spalloc-sched-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(machine) = config.machines.first().map(|m| m.machine.clone()) else {
        eprintln!(
            "spalloc-sched-sim: {} has no machine",
            args.config.display()
        );
        return ExitCode::from(2);
    };
    let live = machine.width * machine.height * 3 - machine.dead_boards.len() as u32;
    if live == 0 {
        eprintln!(
            "spalloc-sched-sim: machine {} has no live board",
            machine.name
        );
        return ExitCode::from(2);
    }
    let jobs = match &args.trace {
        Some(path) => match workload::read_trace(path) {
            Ok(jobs) => jobs,
            Err(e) => {
                eprintln!("spalloc-sched-sim: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            if !(args.load.is_finite() && args.load > 0.0) {
                eprintln!("spalloc-sched-sim: --load must be a positive number");
                return ExitCode::from(2);
            }
            workload::seeded(args.seed, args.jobs, live, args.load)
        }
    };
    let source = match &args.trace {
        Some(path) => format!("trace {}", path.display()),
        None => format!(
            "{} seeded jobs (seed {}, offered load {})",
            jobs.len(),
            args.seed,
            args.load
        ),
    };
    println!(
        "{source} on {} ({live} boards), seconds_before_free = {}\n",
        machine.name, config.seconds_before_free
    );
    let mut summaries = Vec::new();
    let mut timings = Vec::new();
    for &policy in &args.policy {
        let started = Instant::now();
        let run = simulate::run(&machine, policy, config.seconds_before_free, &jobs);
        timings.push((policy, started.elapsed()));
        summaries.push((policy.to_string(), Summary::of(&run)));
    }
    print!("{}", table(&summaries));
    println!();
    for (policy, elapsed) in timings {
        println!("simulated {policy} in {:.2} s", elapsed.as_secs_f64());
    }
    ExitCode::SUCCESS
}
