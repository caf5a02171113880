//! `spalloc-proxy JOB`: a local forwarder to a job's boards through the
//! server's websocket proxy (`/spalloc/proxy/{job}`), so that any SpiNNaker
//! tool (ybug, SpiNNMan scripts) outside the boards' network talks to them
//! as if they were local. It opens one local UDP port per board, prints
//! them (a table, or `--json`), keeps the job alive, reopens the websocket
//! if it drops, and stops on Ctrl-C.
//!
//! Everything goes through the v2 client ([`spalloc::v2`]): the job's
//! boards, its keepalive, and the proxy itself (a
//! [`spalloc::v2::proxy::BoardConnection`] per board), at `--url` or a
//! config file's `url`, trusting `--ca-cert` (or `ca_cert`) for `https`, and
//! logging in with `--token`, or `--user` and `--password`, or the
//! credentials the other tools find (environment, token file, config).

mod forward;

use clap::Parser;
use forward::{Board, Stop};
use serde_json::json;
use spalloc::v2::{Client, Credentials, Job};
use spalloc::Config;
use spalloc_cli::server_args::ServerArgs;
use std::io::Write;
use std::net::{IpAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
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
    /// A user name (with --password: the form log-in).
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

/// The credentials: the command line's, else those the other tools find.
fn credentials(args: &Args, config: &Config, url: &str) -> Result<Credentials, String> {
    if let Some(token) = &args.token {
        return Ok(Credentials::Token(token.clone()));
    }
    if let Some(user) = &args.user {
        let password = args.password.clone().unwrap_or_default();
        return Ok(Credentials::password(user.clone(), password));
    }
    Credentials::find(config, url).map_err(|e| e.to_string())
}

/// The job, kept alive by the v2 client's keepalive thread while this
/// lives, and never destroyed by the forwarder (even on an error).
struct KeptAlive(Option<Job>);

impl KeptAlive {
    fn job(&self) -> Result<&Job, String> {
        self.0.as_ref().ok_or_else(|| "no job".to_owned())
    }
}

impl Drop for KeptAlive {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.close();
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let config = Config::load().map_err(|e| e.to_string())?;
    let settings = args.server.resolve(&config);
    let url = settings
        .as_ref()
        .and_then(|s| s.url.clone())
        .or_else(|| config.url.clone())
        .ok_or("no server URL given (--url http(s)://HOST:PORT/spalloc/, or `url` in a config file): the proxy is part of the v2 service")?;
    let ca_cert = settings
        .as_ref()
        .and_then(|s| s.ca_cert.clone())
        .or_else(|| config.ca_cert.clone());
    let timeout = settings
        .as_ref()
        .and_then(|s| s.timeout)
        .unwrap_or(Duration::from_secs(30));
    let client = Client::builder(url.clone())
        .credentials(credentials(&args, &config, &url)?)
        .ca_cert_opt(ca_cert)
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let keepalive = Duration::from_secs_f64(args.keepalive.clamp(0.2, 7200.0));
    let job = KeptAlive(Some(
        client
            .resume_job(args.job, Some(keepalive))
            .map_err(|e| format!("cannot reach job {}: {e}", args.job))?,
    ));
    let connections = job
        .job()?
        .connections()
        .map_err(|e| format!("cannot read job {}: {e}", args.job))?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("job {} has no boards (queued, or destroyed)", args.job))?;
    let mut boards = Vec::new();
    // By row, then column, as the boards are usually listed.
    let mut sorted: Vec<_> = connections.into_iter().collect();
    sorted.sort_by_key(|((x, y), _)| (*y, *x));
    for ((x, y), host) in sorted {
        let socket = UdpSocket::bind((args.bind, 0))
            .map_err(|e| format!("cannot open a local port on {}: {e}", args.bind))?;
        boards.push(Arc::new(Board::new(x, y, host, socket)));
    }
    print_ports(args.job, &boards, args.json)?;
    let stopped = forward::run(job.job()?, &boards, args.board_port, Duration::from_secs(1));
    drop(job);
    match stopped {
        Stop::Interrupted => Ok(ExitCode::SUCCESS),
        Stop::Closed(reason) => Err(format!("proxy closed: {reason}")),
    }
}

fn print_ports(job: u64, boards: &[Arc<Board>], as_json: bool) -> Result<(), String> {
    let local = |b: &Arc<Board>| {
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
