//! The `spalloc-server` binary: a thin wrapper that loads the configuration,
//! sets up logging and signals, and runs
//! [`spalloc_server::server::serve_with_reload`]. SIGHUP re-reads the config
//! file (keeping `--ip`/`--port`); with the built-in demo configuration it is
//! ignored. Signals are caught before any start-up work, so that an early
//! SIGHUP or SIGTERM is handled rather than fatal.

use clap::{CommandFactory, FromArgMatches, Parser};
use spalloc_server::cmd::listing::PROTOCOL_VERSION;
use spalloc_server::server::reload::{ConfigSource, Hangup, ReloadSources};
use spalloc_server::{server, ServerConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing::{info, warn};

/// A SpiNNaker machine allocation server, compatible with spalloc_server.
///
/// With no CONFIG it serves a built-in simulated 24-board machine named
/// "demo" (4x2 triads, tag "default") on 127.0.0.1, so spalloc can be tried
/// with no hardware.
#[derive(Debug, Parser)]
#[command(name = "spalloc-server", version, about, long_about)]
struct Args {
    /// The TOML configuration file (see the README for its format).
    config: Option<PathBuf>,
    /// The TCP port to listen on [default: the config's `port`, else 22244].
    #[arg(short, long)]
    port: Option<u16>,
    /// The address to listen on [default: the config's `ip`; "" means all interfaces].
    #[arg(long)]
    ip: Option<String>,
    /// Serve the v2 REST API on this port (0: any free port, logged)
    /// [default: the config's `[http] port`; no `[http]`, no REST API].
    #[arg(long, value_name = "N")]
    http_port: Option<u16>,
    /// Only log warnings and errors (RUST_LOG overrides).
    #[arg(short, long)]
    quiet: bool,
    /// Load and validate the configuration, print a summary, and exit.
    #[arg(long)]
    check: bool,
    /// The durable state file (SQLite), saved on every change and reloaded
    /// at start-up [default: `.NAME.state.sqlite` next to the config file
    /// NAME; with no CONFIG, none: the demo keeps no state].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Start with no jobs, discarding the saved state.
    #[arg(long)]
    cold_start: bool,
    /// Keep no state file at all: jobs are lost on exit, as with the
    /// reference killed by anything but SIGINT.
    #[arg(long, conflicts_with_all = ["state", "cold_start"])]
    no_state: bool,
    /// Threads that run the network front ends and BMP back ends. One is
    /// enough for any load a machine's users make (the server's state has one
    /// lock, so more threads add no parallel work, only wake-ups between
    /// them: ~25% more CPU per call with two on a 2-core host); raise it for
    /// heavy websocket proxy traffic on a many-core host.
    #[arg(long, value_name = "N", default_value_t = server::DEFAULT_WORKER_THREADS,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: u16,
    /// Instead of serving, manage accounts (`user add|list|passwd|...`) or
    /// boards (`board reports|out-of-service|in-service`), or convert
    /// allocserv's machine definitions (`machine import DEFS.json`).
    #[command(subcommand)]
    command: Option<spalloc_server::user_cli::Command>,
}

/// Parses the command line; `--version` also names the protocol version
/// that `version` requests answer.
fn parse_args() -> Args {
    // clap wants a 'static string; this runs once per process.
    let version: &'static str = Box::leak(
        format!(
            "{} (protocol version {PROTOCOL_VERSION})",
            env!("CARGO_PKG_VERSION")
        )
        .into_boxed_str(),
    );
    let matches = Args::command().version(version).get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let mut args = parse_args();
    if let Some(command) = args.command.take() {
        return spalloc_server::user_cli::run(command);
    }
    // Signals first, before any start-up work: until they are caught, a
    // SIGHUP (a reload asked for too early) or SIGTERM kills the process
    // with the default action instead of being handled.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.worker_threads))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spalloc-server: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let (hangup, mut shutdown) = {
        let _context = runtime.enter();
        (Hangup::install(), Shutdown::install())
    };
    let default_level = if args.quiet { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .init();

    let mut config = match &args.config {
        Some(path) => match ServerConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("spalloc-server: {e}");
                return ExitCode::from(1);
            }
        },
        None => ServerConfig::demo(),
    };
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(ip) = &args.ip {
        config.ip = ip.clone();
    }
    if let Some(port) = args.http_port {
        config.http.get_or_insert_with(Default::default).port = port;
    }
    if let Err(e) = &hangup {
        warn!(error = %e, "cannot catch SIGHUP; configuration reload disabled");
    }
    let reloads = ReloadSources {
        sighup: hangup.ok(),
        file: args.config.clone().map(|path| ConfigSource {
            path,
            ip: args.ip.clone(),
            port: args.port,
        }),
        requests: None,
    };
    config.state_file = args.state.or_else(|| {
        args.config
            .as_deref()
            .filter(|_| !args.no_state)
            .map(spalloc_server::store::default_state_path)
    });
    config.cold_start = args.cold_start;
    if args.check {
        println!("configuration OK: {} machine(s)", config.machines.len());
        for m in &config.machines {
            println!("  {}", m.machine.summary());
        }
        return ExitCode::SUCCESS;
    }

    // Like the reference, refuse to start unless every real BMP answers a
    // version check (all are checked at once); SIGTERM stops the wait.
    let checked = runtime.block_on(async {
        tokio::select! {
            checked = spalloc_server::bmp::scp::check_bmps(&config) => Some(checked),
            () = shutdown.recv() => None,
        }
    });
    match checked {
        None => return ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("spalloc-server: {e}");
            return ExitCode::from(1);
        }
        Some(Ok(())) => {}
    }
    let listeners = match server::Listeners::bind(&config) {
        Ok(l) => l,
        Err(e) => {
            let address = server::bind_address(&config);
            eprintln!("spalloc-server: cannot listen on {address} (or the [http] port): {e}");
            return ExitCode::from(1);
        }
    };
    let restored = match server::Restored::open(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spalloc-server: {e}");
            return ExitCode::from(2);
        }
    };
    let accounts = match server::open_accounts(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("spalloc-server: cannot open the accounts: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(server::serve_restored(
        config,
        listeners,
        restored,
        shutdown.recv(),
        reloads,
        accounts,
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spalloc-server: {e}");
            ExitCode::from(2)
        }
    }
}

/// Colour the logs only for a person: stderr is a terminal and `NO_COLOR`
/// is unset (<https://no-color.org>).
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty())
}

/// SIGINT (Ctrl-C) and SIGTERM, caught from [`Shutdown::install`] on.
struct Shutdown {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Shutdown {
    /// Starts catching the signals; must be called inside the runtime.
    fn install() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
            if let Err(e) = &signals {
                eprintln!("spalloc-server: cannot catch SIGINT and SIGTERM: {e}");
            }
            Shutdown {
                signals: signals.ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Shutdown {}
        }
    }

    /// Completes at the next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        match &mut self.signals {
            Some((int, term)) => {
                tokio::select! {
                    _ = int.recv() => info!("SIGINT received, shutting down"),
                    _ = term.recv() => info!("SIGTERM received, shutting down"),
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            info!("Ctrl-C received, shutting down");
        }
    }
}
