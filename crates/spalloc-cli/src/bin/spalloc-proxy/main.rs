//! `spalloc-proxy JOB`: a local forwarder to a job's boards through the
//! server's websocket proxy (`/spalloc/proxy/{job}`), so that any SpiNNaker
//! tool (ybug, SpiNNMan scripts) outside the boards' network talks to them
//! as if they were local. It opens one local UDP port per board, prints
//! them (a table, or `--json`), keeps the job alive, reopens the websocket
//! if it drops, and stops on Ctrl-C.
//!
//! The job's boards and its keepalive come over the spalloc protocol, from
//! the server named by `--hostname`/`--port` or the config files as for the
//! other tools; the proxy is at `--url` (the server's HTTP listener),
//! authenticated by `--token` (bearer) or `--user` and `--password`
//! (Basic), like the REST API.

mod channels;
mod forward;

use base64::Engine;
use clap::Parser;
use forward::{Board, Stop, Target};
use serde_json::json;
use spalloc::{Config, ProtocolClient};
use spalloc_cli::server_args::{seconds_to_timeout, ServerArgs, ServerSettings};
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Forward local UDP ports to a job's boards through the server's proxy.
#[derive(Debug, Parser)]
#[command(name = "spalloc-proxy", version)]
struct Args {
    /// The job whose boards to reach.
    job: u64,
    /// A personal API token (sent as a bearer token).
    #[arg(long, env = "SPALLOC_TOKEN", conflicts_with = "user")]
    token: Option<String>,
    /// A user name (with --password: HTTP Basic authentication).
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// The user's password.
    #[arg(long, env = "SPALLOC_PASSWORD")]
    password: Option<String>,
    /// The local address to open the ports on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The boards' UDP port to reach (SC&MP's).
    #[arg(long, default_value_t = 17893)]
    board_port: u16,
    /// Seconds between keepalives of the job.
    #[arg(long, default_value_t = 30.0)]
    keepalive: f64,
    /// Print the ports as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("spalloc-proxy: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The websocket URL of the job's proxy under the server's URL.
fn proxy_url(base: &str, job: u64) -> Result<String, String> {
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("--url {base:?} has no scheme (http:// or https://)"))?;
    let scheme = match scheme {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(format!("--url scheme {other:?} is not http or https")),
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("--url {base:?} has no host"));
    }
    Ok(format!("{scheme}://{host}/spalloc/proxy/{job}"))
}

fn authorization(args: &Args) -> Option<String> {
    if let Some(token) = &args.token {
        return Some(format!("Bearer {token}"));
    }
    let user = args.user.as_ref()?;
    let password = args.password.as_deref().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Some(format!("Basic {encoded}"))
}

fn run(args: Args) -> Result<ExitCode, String> {
    let config = Config::load().map_err(|e| e.to_string())?;
    // Both addresses are needed: the proxy at the URL (the shared --url, or
    // a config file's `url`), the job's boards and keepalive at the legacy
    // port (--hostname/--port or the config files), so the shared
    // resolution, where a URL replaces the host name, does not apply.
    let url = args
        .server
        .url
        .clone()
        .or_else(|| config.url.clone())
        .ok_or(
            "no proxy URL given (--url, the server's HTTP listener, or `url` in a config file)",
        )?;
    let server = ServerSettings {
        hostname: args
            .server
            .hostname
            .clone()
            .or_else(|| config.hostname.clone())
            .ok_or("no spalloc server given for the job's boards (--hostname or a config file)")?,
        port: args.server.port.unwrap_or(config.port),
        timeout: seconds_to_timeout(args.server.timeout.or(config.timeout)),
        ignore_version: config.ignore_version,
        url: Some(url.clone()),
        ca_cert: None,
    };
    let target = Target {
        url: proxy_url(&url, args.job)?,
        authorization: authorization(&args),
        board_port: u32::from(args.board_port),
    };
    let client = ProtocolClient::new(server.hostname.clone(), server.port)
        .with_timeout(server.timeout.or(Some(Duration::from_secs(10))));
    let info = client
        .get_job_machine_info(args.job)
        .map_err(|e| format!("cannot read job {}: {e}", args.job))?;
    let mut connections = info
        .connections
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("job {} has no boards (queued, or destroyed)", args.job))?;
    connections.sort_by_key(|c| (c.0[1], c.0[0]));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let boards = runtime.block_on(async {
        let mut boards = Vec::new();
        for c in &connections {
            let socket = tokio::net::UdpSocket::bind((args.bind, 0))
                .await
                .map_err(|e| format!("cannot open a local port on {}: {e}", args.bind))?;
            boards.push(Board {
                x: c.0[0],
                y: c.0[1],
                host: c.1.clone(),
                socket: Arc::new(socket),
                peer: Arc::new(Mutex::new(None)),
            });
        }
        Ok::<_, String>(boards)
    })?;
    print_ports(args.job, &boards, args.json)?;

    let stop = Arc::new(AtomicBool::new(false));
    let keeper = keep_alive(client, args.job, args.keepalive, Arc::clone(&stop));
    let stopped = runtime.block_on(forward::run(&target, &boards, Duration::from_secs(1)));
    stop.store(true, Ordering::Relaxed);
    keeper.thread().unpark();
    let _ = keeper.join();
    match stopped {
        Stop::Interrupted => Ok(ExitCode::SUCCESS),
        Stop::Closed(reason) => Err(format!("proxy closed: {reason}")),
    }
}

fn print_ports(job: u64, boards: &[Board], as_json: bool) -> Result<(), String> {
    let local = |b: &Board| {
        b.socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let mut out = std::io::stdout().lock();
    let text = if as_json {
        let boards: Vec<_> = boards
            .iter()
            .map(|b| json!({"x": b.x, "y": b.y, "board": b.host, "local": local(b)}))
            .collect();
        format!("{}\n", json!({"job": job, "boards": boards}))
    } else {
        let mut t = format!("Job {job}: {} board(s), Ctrl-C to stop\n", boards.len());
        t.push_str(&format!(
            "{:>4} {:>4}  {:<16} {}\n",
            "x", "y", "board", "local"
        ));
        for b in boards {
            t.push_str(&format!(
                "{:>4} {:>4}  {:<16} {}\n",
                b.x,
                b.y,
                b.host,
                local(b)
            ));
        }
        t
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())
}

/// Keeps the job alive every `seconds` until `stop`; a failed keepalive is
/// reported and retried at the next one (the client reconnects).
fn keep_alive(
    client: ProtocolClient,
    job: u64,
    seconds: f64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let period = Duration::from_secs_f64(seconds.clamp(0.1, 3600.0));
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = client.job_keepalive(job) {
                eprintln!("spalloc-proxy: keepalive of job {job} failed: {e}");
                client.close();
            }
            std::thread::park_timeout(period);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_url_is_the_servers_host_with_the_websocket_scheme() {
        assert_eq!(
            proxy_url("http://h:8080/spalloc/", 3),
            Ok("ws://h:8080/spalloc/proxy/3".into())
        );
        assert_eq!(
            proxy_url("https://h", 4),
            Ok("wss://h/spalloc/proxy/4".into())
        );
        assert!(proxy_url("h:8080", 1).is_err());
        assert!(proxy_url("ftp://h", 1).is_err());
    }
}
