//! `spalloc-load`: one load generator for any spalloc (v1) server, so that
//! ours and the Python reference are driven identically.
//!
//! Every mode prints a human summary on stderr and one JSON object on stdout
//! (what `bench/run.sh` collects). Modes:
//!
//! * `seq`: sequential calls on one connection (`version` or `get_job_state`);
//! * `conc`: N connections from N threads, released together;
//! * `echo-server` / `echo`: a trivial line echo server and the same
//!   ping-pong against it, the loopback floor of a round trip;
//! * `cycles`: create a job, wait until allocated or ready (polling, or on
//!   `notify_job` notifications), destroy it;
//! * `mem`: server resident memory idle, with N idle connections and with N
//!   live jobs;
//! * `http-conc`, `http-cycles`: the v2 REST API's job-state reads from N
//!   clients and its job cycles (see [`http`]).
//!
//! With `--server-pid` the server's CPU time (user + system, all threads,
//! from `/proc/PID/stat`) over each test is reported per call.

mod http;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use spalloc_bench::{
    maybe_cpu, median, proc_rss_kib, request_line, state, Conn, Error, Result, Stats,
};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Command line.
#[derive(Parser)]
#[command(
    name = "spalloc-load",
    about = "Load generator for spalloc (v1) servers"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

/// Where the server is.
#[derive(clap::Args, Clone)]
struct Target {
    /// Server host.
    host: String,
    /// Server port.
    port: u16,
    /// PID of the server process, for its CPU time (same machine only).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label copied into the JSON output (e.g. "ours", "reference").
    #[arg(long, default_value = "")]
    label: String,
}

impl Target {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The call to repeat.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Command {
    /// `version`.
    Version,
    /// `get_job_state(JOB)`.
    GetJobState,
}

impl Command {
    fn line(self, job: u64) -> Vec<u8> {
        match self {
            Command::Version => request_line("version", json!([]), json!({})),
            Command::GetJobState => request_line("get_job_state", json!([job]), json!({})),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Command::Version => "version",
            Command::GetJobState => "get_job_state",
        }
    }
}

/// What a job cycle waits for between create and destroy.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Wait {
    /// State POWER or READY.
    Allocated,
    /// State READY.
    Ready,
    /// Nothing: destroy at once.
    None,
}

#[derive(Subcommand)]
enum Mode {
    /// Sequential calls on one connection.
    Seq {
        #[command(flatten)]
        target: Target,
        /// The call.
        #[arg(long, value_enum, default_value = "get-job-state")]
        command: Command,
        /// Job ID for get_job_state.
        #[arg(long, default_value_t = 1)]
        job: u64,
        /// Calls per repeat.
        #[arg(long, default_value_t = 5000)]
        calls: usize,
        /// Repeats (the median repeat by calls/s is reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// N concurrent connections, one thread each, released together.
    Conc {
        #[command(flatten)]
        target: Target,
        /// The call.
        #[arg(long, value_enum, default_value = "get-job-state")]
        command: Command,
        /// Job ID for get_job_state.
        #[arg(long, default_value_t = 1)]
        job: u64,
        /// Connections.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Calls per connection per repeat.
        #[arg(long, default_value_t = 1000)]
        per_client: usize,
        /// Repeats.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// A trivial line echo server (thread per connection) on 127.0.0.1:PORT.
    EchoServer {
        /// Port to listen on.
        port: u16,
        /// Exit after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        seconds: f64,
    },
    /// Ping-pong of a get_job_state line against an echo server: the floor.
    Echo {
        #[command(flatten)]
        target: Target,
        /// Round trips per repeat.
        #[arg(long, default_value_t = 5000)]
        calls: usize,
        /// Repeats.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Job cycles: create_job(1), wait, destroy_job.
    Cycles {
        #[command(flatten)]
        target: Target,
        /// What to wait for.
        #[arg(long, value_enum, default_value = "ready")]
        wait: Wait,
        /// Wait on notify_job notifications instead of polling.
        #[arg(long)]
        notify: bool,
        /// Microseconds between polls of get_job_state (without --notify).
        #[arg(long, default_value_t = 200)]
        poll_us: u64,
        /// Seconds per repeat.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Repeats.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// v2 REST API: N clients GET one job's state at once.
    HttpConc {
        #[command(flatten)]
        target: http::HttpTarget,
        /// Clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Calls per client per repeat.
        #[arg(long, default_value_t = 500)]
        per_client: usize,
        /// Repeats.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// v2 REST API job cycles: create, poll until READY, delete.
    HttpCycles {
        #[command(flatten)]
        target: http::HttpTarget,
        /// Seconds per repeat.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Repeats.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Server memory: idle, with N idle connections, with N live jobs.
    Mem {
        #[command(flatten)]
        target: Target,
        /// Idle connections to open.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Live jobs to create (keepalive None; destroyed afterwards).
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Seconds to let the server settle before each reading.
        #[arg(long, default_value_t = 1.0)]
        settle: f64,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Seq {
            target,
            command,
            job,
            calls,
            repeat,
        } => seq(&target, command, job, calls, repeat),
        Mode::Conc {
            target,
            command,
            job,
            clients,
            per_client,
            repeat,
        } => conc(&target, command, job, clients, per_client, repeat),
        Mode::EchoServer { port, seconds } => echo_server(port, seconds),
        Mode::Echo {
            target,
            calls,
            repeat,
        } => echo(&target, calls, repeat),
        Mode::Cycles {
            target,
            wait,
            notify,
            poll_us,
            seconds,
            repeat,
        } => cycles(&target, wait, notify, poll_us, seconds, repeat),
        Mode::Mem {
            target,
            connections,
            jobs,
            settle,
        } => mem(&target, connections, jobs, settle),
        Mode::HttpConc {
            target,
            clients,
            per_client,
            repeat,
        } => http::conc(&target, clients, per_client, repeat),
        Mode::HttpCycles {
            target,
            seconds,
            repeat,
        } => http::cycles(&target, seconds, repeat),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("spalloc-load: {e}");
            std::process::exit(1);
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Per-repeat figures of a throughput test.
struct Run {
    rate: f64,
    stats: Stats,
    cpu_us_per_call: Option<f64>,
}

/// One timed run of concurrent load: each client (moved to a thread of its
/// own and back into `clients` afterwards) makes `per_client` calls, all
/// starting together; the rate, latencies and the server's CPU per call.
/// Shared by the legacy and v2 `conc` tests so that they measure alike.
fn concurrent_run<C: Send + 'static>(
    clients: &mut Vec<C>,
    per_client: usize,
    server_pid: Option<u32>,
    call: impl Fn(&mut C) -> Result<()> + Send + Sync + 'static,
) -> Result<Run> {
    let call = Arc::new(call);
    let barrier = Arc::new(Barrier::new(clients.len() + 1));
    let handles: Vec<_> = clients
        .drain(..)
        .map(|mut c| {
            let (barrier, call) = (Arc::clone(&barrier), Arc::clone(&call));
            std::thread::spawn(move || -> Result<(C, Vec<f64>)> {
                let mut lat = Vec::with_capacity(per_client);
                barrier.wait();
                for _ in 0..per_client {
                    let t0 = Instant::now();
                    call(&mut c)?;
                    lat.push(t0.elapsed().as_secs_f64());
                }
                Ok((c, lat))
            })
        })
        .collect();
    let c0 = maybe_cpu(server_pid);
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::new();
    for h in handles {
        let (c, l) = h
            .join()
            .map_err(|_| Error("a client thread panicked".into()))??;
        clients.push(c);
        lat.extend(l);
    }
    let el = start.elapsed().as_secs_f64();
    let c1 = maybe_cpu(server_pid);
    let n = lat.len();
    Ok(Run {
        rate: n as f64 / el,
        stats: Stats::of(&mut lat),
        cpu_us_per_call: c0.zip(c1).map(|(a, b)| (b - a) * 1e6 / n as f64),
    })
}

/// The median repeat by rate, plus the median CPU per call over repeats.
fn summarize(label: &str, test: &str, runs: &[Run], extra: Value) -> Value {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| runs[a].rate.total_cmp(&runs[b].rate));
    let mid = &runs[order[order.len() / 2]];
    let cpus: Vec<f64> = runs.iter().filter_map(|r| r.cpu_us_per_call).collect();
    let cpu = median(&cpus);
    let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    eprintln!(
        "{label:>10} {test:<34} {:>9.0}/s  p50 {:>7.1} µs  p99 {:>7.1} µs  server CPU {} µs/call  (rates {:?})",
        mid.rate,
        mid.stats.p50_us,
        mid.stats.p99_us,
        if cpu.is_nan() { "-".to_string() } else { format!("{cpu:.1}") },
        rates.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    let mut v = json!({
        "label": label, "test": test, "rate": mid.rate, "p50_us": mid.stats.p50_us,
        "p99_us": mid.stats.p99_us, "max_us": mid.stats.max_us,
        "cpu_us_per_call": if cpu.is_nan() { Value::Null } else { json!(cpu) },
        "rates": rates,
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

fn seq(t: &Target, command: Command, job: u64, calls: usize, repeat: usize) -> Result<Value> {
    let line = command.line(job);
    let mut c = Conn::connect(&t.addr(), TIMEOUT)?;
    for _ in 0..100 {
        c.call_line(&line)?; // warm-up
    }
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let mut lat = Vec::with_capacity(calls);
        let c0 = maybe_cpu(t.server_pid);
        let start = Instant::now();
        for _ in 0..calls {
            let t0 = Instant::now();
            c.call_line(&line)?;
            lat.push(t0.elapsed().as_secs_f64());
        }
        let el = start.elapsed().as_secs_f64();
        let c1 = maybe_cpu(t.server_pid);
        runs.push(Run {
            rate: calls as f64 / el,
            stats: Stats::of(&mut lat),
            cpu_us_per_call: c0.zip(c1).map(|(a, b)| (b - a) * 1e6 / calls as f64),
        });
    }
    Ok(summarize(
        &t.label,
        &format!("seq {}", command.name()),
        &runs,
        json!({"calls": calls}),
    ))
}

fn conc(
    t: &Target,
    command: Command,
    job: u64,
    clients: usize,
    per_client: usize,
    repeat: usize,
) -> Result<Value> {
    let line = Arc::new(command.line(job));
    let mut conns = Vec::new();
    for _ in 0..clients.max(1) {
        let mut c = Conn::connect(&t.addr(), TIMEOUT)?;
        for _ in 0..20 {
            c.call_line(&line)?;
        }
        conns.push(c);
    }
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let line = Arc::clone(&line);
        runs.push(concurrent_run(
            &mut conns,
            per_client,
            t.server_pid,
            move |c| c.call_line(&line).map(drop),
        )?);
    }
    Ok(summarize(
        &t.label,
        &format!("{clients} clients {}", command.name()),
        &runs,
        json!({"clients": clients, "per_client": per_client}),
    ))
}

fn echo_server(port: u16, seconds: f64) -> Result<Value> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| Error::context(format!("bind 127.0.0.1:{port}"), e))?;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        std::process::exit(0);
    });
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        std::thread::spawn(move || {
            let _ = s.set_nodelay(true);
            let mut buf = [0u8; 16384];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    Ok(json!({}))
}

fn echo(t: &Target, calls: usize, repeat: usize) -> Result<Value> {
    let line = Command::GetJobState.line(1);
    let mut c = Conn::connect(&t.addr(), TIMEOUT)?;
    let round_trip = |c: &mut Conn| -> Result<()> {
        c.send(&line)?;
        match c.read_raw_line()? {
            Some(_) => Ok(()),
            None => Err(Error("echo server timed out".into())),
        }
    };
    for _ in 0..100 {
        round_trip(&mut c)?;
    }
    let mut runs = Vec::new();
    for _ in 0..repeat.max(1) {
        let mut lat = Vec::with_capacity(calls);
        let start = Instant::now();
        for _ in 0..calls {
            let t0 = Instant::now();
            round_trip(&mut c)?;
            lat.push(t0.elapsed().as_secs_f64());
        }
        let el = start.elapsed().as_secs_f64();
        runs.push(Run {
            rate: calls as f64 / el,
            stats: Stats::of(&mut lat),
            cpu_us_per_call: None,
        });
    }
    Ok(summarize(
        &t.label,
        "echo floor",
        &runs,
        json!({"calls": calls, "bytes": line.len()}),
    ))
}

fn job_state(reply: &Value) -> Result<(u64, Value)> {
    let st = reply
        .get("state")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error(format!("get_job_state reply without a state: {reply}")))?;
    Ok((st, reply.get("reason").cloned().unwrap_or(Value::Null)))
}

fn mentions_job(msg: &Value, job: u64) -> bool {
    msg.get("jobs_changed")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|j| j.as_u64() == Some(job)))
}

fn cycles(
    t: &Target,
    wait: Wait,
    notify: bool,
    poll_us: u64,
    seconds: f64,
    repeat: usize,
) -> Result<Value> {
    let mut c = Conn::connect(&t.addr(), TIMEOUT)?;
    let create = request_line(
        "create_job",
        json!([1]),
        json!({"owner": "bench", "keepalive": null}),
    );
    let want: &[u64] = match wait {
        Wait::Allocated => &[state::POWER, state::READY],
        Wait::Ready => &[state::READY],
        Wait::None => &[],
    };
    let one_cycle = |c: &mut Conn| -> Result<bool> {
        let job = c
            .call_line(&create)?
            .as_u64()
            .ok_or_else(|| Error("create_job did not return a job ID".into()))?;
        let mut immediate = true;
        if wait != Wait::None {
            if notify {
                c.call("notify_job", json!([job]), json!({}))?;
            }
            loop {
                let (st, reason) = job_state(&c.call("get_job_state", json!([job]), json!({}))?)?;
                if want.contains(&st) {
                    break;
                }
                if st == state::DESTROYED {
                    return Err(Error(format!(
                        "job {job} was destroyed by the server: {reason}"
                    )));
                }
                immediate = false;
                if notify {
                    // Sleep until a notification about this job (0.5 s at most, in case one is missed).
                    let deadline = Instant::now() + Duration::from_millis(500);
                    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                        match c.wait_notification(left)? {
                            Some(msg) if !mentions_job(&msg, job) => continue,
                            _ => break,
                        }
                    }
                } else {
                    std::thread::sleep(Duration::from_micros(poll_us));
                }
            }
            if notify {
                c.call("no_notify_job", json!([job]), json!({}))?;
            }
        }
        c.call("destroy_job", json!([job]), json!({"reason": "bench"}))?;
        c.notifications.clear();
        Ok(immediate)
    };
    for _ in 0..5 {
        one_cycle(&mut c)?;
    }
    let mut runs = Vec::new();
    let mut immediates = Vec::new();
    for _ in 0..repeat.max(1) {
        let mut lat = Vec::new();
        let mut immediate = 0usize;
        let c0 = maybe_cpu(t.server_pid);
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        while Instant::now() < end {
            let t0 = Instant::now();
            immediate += one_cycle(&mut c)? as usize;
            lat.push(t0.elapsed().as_secs_f64());
        }
        let el = start.elapsed().as_secs_f64();
        let c1 = maybe_cpu(t.server_pid);
        let n = lat.len();
        immediates.push(immediate);
        runs.push(Run {
            rate: n as f64 / el,
            stats: Stats::of(&mut lat),
            cpu_us_per_call: c0.zip(c1).map(|(a, b)| (b - a) * 1e6 / n as f64),
        });
    }
    let test = format!(
        "cycles wait {}{}",
        format!("{wait:?}").to_lowercase(),
        if notify { " notify" } else { "" }
    );
    Ok(summarize(
        &t.label,
        &test,
        &runs,
        json!({"immediate": immediates, "seconds": seconds}),
    ))
}

fn rss(pid: u32) -> Result<u64> {
    proc_rss_kib(pid).map(|(rss, _)| rss)
}

fn mem(t: &Target, connections: usize, jobs: usize, settle: f64) -> Result<Value> {
    let pid = t
        .server_pid
        .ok_or_else(|| Error("mem needs --server-pid".into()))?;
    let settle = Duration::from_secs_f64(settle);
    let version = Command::Version.line(0);
    std::thread::sleep(settle);
    let idle = rss(pid)?;
    let mut conns = Vec::with_capacity(connections);
    let start = Instant::now();
    for _ in 0..connections {
        let mut c = Conn::connect(&t.addr(), TIMEOUT)?;
        c.call_line(&version)?;
        conns.push(c);
    }
    let connect_s = start.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    let with_conns = rss(pid)?;
    drop(conns);
    std::thread::sleep(settle);
    let after_conns = rss(pid)?;
    let mut c = Conn::connect(&t.addr(), TIMEOUT)?;
    let create = request_line(
        "create_job",
        json!([1]),
        json!({"owner": "bench-mem", "keepalive": null}),
    );
    let mut ids = Vec::with_capacity(jobs);
    let start = Instant::now();
    for _ in 0..jobs {
        let id = c
            .call_line(&create)?
            .as_u64()
            .ok_or_else(|| Error("create_job did not return a job ID".into()))?;
        ids.push(id);
    }
    let create_s = start.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    let with_jobs = rss(pid)?;
    let (_, peak) = proc_rss_kib(pid)?;
    for id in ids {
        c.call("destroy_job", json!([id]), json!({"reason": "bench"}))?;
    }
    let kib = |k: u64| k as f64 / 1024.0;
    eprintln!(
        "{:>10} memory MiB: idle {:.1}, {connections} connections {:.1} ({:.2} KiB each), after {:.1}, {jobs} jobs {:.1}, peak {:.1}",
        t.label,
        kib(idle),
        kib(with_conns),
        (with_conns as f64 - idle as f64) / connections.max(1) as f64,
        kib(after_conns),
        kib(with_jobs),
        kib(peak)
    );
    Ok(json!({
        "label": t.label, "test": "memory", "idle_kib": idle, "conns_kib": with_conns,
        "after_conns_kib": after_conns, "jobs_kib": with_jobs, "peak_kib": peak,
        "connections": connections, "jobs": jobs, "connect_s": connect_s, "create_s": create_s,
    }))
}
