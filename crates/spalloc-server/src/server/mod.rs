//! The network shell: a tokio TCP front end around the sans-I/O [`Service`].
//!
//! [`serve`] runs until a shutdown signal; [`RunningServer`] runs it on a
//! thread of its own, which is how tests and the client library's tests start
//! a real server on port 0.

pub mod backlog;
pub mod connection;
pub mod open_files;
pub mod outbox;
pub mod reload;
pub mod shared;

use crate::bmp::BmpDispatcher;
use crate::clock;
use crate::config::ServerConfig;
use crate::service::Service;
use shared::{Shared, State};
use spalloc_protocol::DEFAULT_MAX_LINE_LENGTH;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// The tokio worker threads a server runs on unless told otherwise. Measured
/// on a 2-core host (BENCHMARKS.md, issue 11): with 16 clients, one worker
/// costs 4.6–4.9 µs of server CPU per `get_job_state` against 5.4–6.3 µs for
/// two, at the same throughput, and no slower on job cycles, the 1,000-job
/// queue or the v2 API. The service is behind one lock, so a second worker
/// adds no parallel work, only the wake-ups of a thread parked between
/// requests. Blocking work does not hold it up: password checks run on the
/// blocking pool and a `synchronous = "full"` commit hands the worker's
/// place to another thread while it flushes (`block_in_place`).
pub const DEFAULT_WORKER_THREADS: u16 = 1;

/// The address to bind for a configuration (`""` means every interface).
pub fn bind_address(config: &ServerConfig) -> String {
    let ip = if config.ip.is_empty() {
        "0.0.0.0"
    } else {
        config.ip.as_str()
    };
    if ip.contains(':') {
        format!("[{ip}]:{}", config.port)
    } else {
        format!("{ip}:{}", config.port)
    }
}

/// Binds the listening socket (synchronously, so that errors such as "address
/// in use" surface before anything starts).
pub fn bind(config: &ServerConfig) -> std::io::Result<StdListener> {
    let listener = StdListener::bind(bind_address(config))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The sockets a server listens on, bound before anything starts so that
/// errors such as "address in use" surface at once.
pub struct Listeners {
    /// The legacy protocol's port (`None` when `[http] legacy_port = false`).
    pub legacy: Option<StdListener>,
    /// The v2 REST API's port and its TLS configuration (`None` without `[http]`).
    pub http: Option<HttpListener>,
}

impl Listeners {
    /// Binds what `config` asks for, and loads the TLS files.
    pub fn bind(config: &ServerConfig) -> std::io::Result<Listeners> {
        let legacy_wanted = config.http.as_ref().map_or(true, |h| h.legacy_port);
        let legacy = if legacy_wanted {
            Some(bind(config)?)
        } else {
            None
        };
        let http = bind_http(config)?;
        Ok(Listeners { legacy, http })
    }
}

/// The HTTP listener and TLS configuration `[http]` asks for, if any.
type HttpListener = (StdListener, Option<axum_server::tls_rustls::RustlsConfig>);

/// Binds the HTTP listener of `[http]` and loads its TLS files, if any.
pub fn bind_http(config: &ServerConfig) -> std::io::Result<Option<HttpListener>> {
    let Some(h) = &config.http else {
        return Ok(None);
    };
    let tls = h.tls.as_ref().map(crate::http::tls::load).transpose()?;
    let listener = StdListener::bind(http_bind_address(config))?;
    listener.set_nonblocking(true)?;
    Ok(Some((listener, tls)))
}

/// Opens the accounts the v2 REST API authenticates against: in the state
/// file if the server keeps one, else in memory (`--no-state`, the demo)
/// with a `demo` user whose fresh password and token are logged. Call it
/// after [`Restored::open`], which sets a damaged state file aside first:
/// the accounts must live in the file the store then uses.
pub fn open_accounts(config: &ServerConfig) -> std::io::Result<crate::accounts::Accounts> {
    use crate::accounts::{demo, Accounts};
    let accounts =
        Accounts::for_state_file(config.state_file.as_deref()).map_err(std::io::Error::other)?;
    if config.http.is_some() {
        // Seconds are enough for account bookkeeping.
        let now = clock::now() as i64;
        if let Some(login) =
            demo::create_demo_user(&accounts, now).map_err(std::io::Error::other)?
        {
            demo::log_demo_login(&login);
        }
    }
    Ok(accounts)
}

/// The address to bind the HTTP listener to: `[http] ip` or the top-level `ip`.
pub fn http_bind_address(config: &ServerConfig) -> String {
    let http = config.http.clone().unwrap_or_default();
    let mut c = config.clone();
    if let Some(ip) = http.ip {
        c.ip = ip;
    }
    c.port = http.port;
    bind_address(&c)
}

/// Serves clients on `listener` until `shutdown` completes, with no way to
/// reload the configuration. Must run inside a tokio runtime.
pub async fn serve(
    config: ServerConfig,
    listener: StdListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with_reload(config, listener, shutdown, reload::ReloadSources::default()).await
}

/// Serves clients on `listener` until `shutdown` completes, reloading the
/// configuration when `reloads` say so (see [`reload`]). Must run inside a
/// tokio runtime.
pub async fn serve_with_reload(
    config: ServerConfig,
    listener: StdListener,
    shutdown: impl Future<Output = ()>,
    reloads: reload::ReloadSources,
) -> std::io::Result<()> {
    let listeners = Listeners {
        legacy: Some(listener),
        http: bind_http(&config)?,
    };
    let restored = Restored::open(&config)?;
    let accounts = open_accounts(&config)?;
    serve_restored(config, listeners, restored, shutdown, reloads, accounts).await
}

/// The service with its state file opened (and locked) and its jobs
/// restored, before anything is served. [`RunningServer::start`] makes it
/// before returning, so that a state file another server holds, or one
/// that cannot be used, is an error from `start` rather than a server
/// that starts and then stops.
pub struct Restored {
    service: Service,
    store: Option<crate::store::ForWriter>,
}

impl Restored {
    /// Builds the service for `config` and restores its state file, if any.
    /// A state file that cannot be used refuses start-up.
    pub fn open(config: &ServerConfig) -> std::io::Result<Restored> {
        let mut service = Service::new(config);
        for m in service.controller.machines() {
            info!(machine = %m.summary(), "machine configured");
        }
        let store = crate::store::open_and_restore(config, &mut service, clock::now())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Restored { service, store })
    }
}

/// Serves the legacy protocol and the v2 REST API on `listeners` for a
/// service already [`Restored`] until `shutdown` completes, reloading the
/// configuration when `reloads` say so (see [`reload`]). Must run inside a
/// tokio runtime.
pub async fn serve_restored(
    config: ServerConfig,
    listeners: Listeners,
    restored: Restored,
    shutdown: impl Future<Output = ()>,
    reloads: reload::ReloadSources,
    accounts: crate::accounts::Accounts,
) -> std::io::Result<()> {
    let legacy = listeners.legacy.map(TcpListener::from_std).transpose()?;
    let mut bmp = BmpDispatcher::new(&config, tokio::runtime::Handle::current());
    // A restored state's re-issued power work and its first save happen at
    // the first flush below, once the BMP dispatcher is attached.
    let Restored { service, store } = restored;
    let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
        let writer = store.map(|opened| {
            let weak = weak.clone();
            crate::store::writer::Writer::spawn(
                opened.store,
                opened.journal,
                opened.committed,
                opened.unapplied,
                Box::new(move |seq, result| {
                    if let Some(shared) = weak.upgrade() {
                        shared.committed(seq, result);
                    }
                }),
            )
        });
        Shared::new(State::new(
            service,
            BmpDispatcher::new(&config, tokio::runtime::Handle::current()),
            writer,
        ))
    });
    bmp.attach(&shared);
    shared.with(|s| s.bmp = bmp);
    // Stopped when dropped (with the reloader, which rebinds them on each
    // reload), as the server stops.
    let simulated_boards = crate::board_sim::start(&config);

    // Keepalive expiry and delayed frees are checked at least every
    // timeout_check_interval, and at least 10 times a second so that a
    // short seconds_before_free is honoured promptly.
    let period = config.timeout_check_interval.clamp(0.001, 0.1);
    let ticker = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs_f64(period));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                shared.with(|s| s.service.tick(clock::now()));
            }
        })
    };

    let reloader = tokio::spawn(reload::run(
        reload::Reloader::new(config.clone(), Arc::clone(&shared))
            .with_simulated_boards(simulated_boards),
        reloads,
    ));

    let (http_stop, http_stopped) = oneshot::channel::<()>();
    let max_long_polls = config.http.as_ref().map_or(0, |h| h.max_long_polls);
    let http_task = listeners.http.map(|(listener, tls)| {
        let open_connections = crate::http::connections::OpenConnections::default();
        let state = crate::http::HttpState {
            shared: Arc::clone(&shared),
            accounts,
            long_polls: Arc::new(tokio::sync::Semaphore::new(max_long_polls)),
            long_poll_limit: max_long_polls,
            tls: tls.is_some(),
            proxy: crate::proxy::socket::ProxySettings {
                local_host: config.proxy.unconnected_address,
            },
            connections: open_connections.clone(),
        };
        tokio::spawn(crate::http::serve(
            listener,
            tls,
            open_connections,
            crate::http::router(state),
            async {
                let _ = http_stopped.await;
            },
        ))
    });
    if let Some(listener) = &legacy {
        info!(address = %listener.local_addr()?, "spalloc-server listening");
    }
    let max_connections =
        open_files::connection_budget(config.max_connections, open_files::raise_limit());
    let settings = connection::ConnectionSettings {
        max_line: DEFAULT_MAX_LINE_LENGTH,
        stall_timeout: Duration::from_secs_f64(config.stalled_client_timeout),
    };
    tokio::pin!(shutdown);
    let mut next_client = 1u64;
    let connections = connection::ConnectionLimit::new(max_connections);
    let mut reserve = open_files::Reserve::new();
    let mut starved = open_files::Starved::default();
    let mut refusals = connection::RefusalLog::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(legacy.as_ref()) => match accepted {
                Ok((stream, _)) => {
                    starved.ended();
                    let Some(slot) = connections.try_acquire() else {
                        if let Some(refused) = refusals.refused() {
                            warn!(refused, max = max_connections,
                                  "too many connections; refusing new ones");
                        }
                        connection::refuse(stream, &connection::too_many_connections(max_connections));
                        continue;
                    };
                    let client = next_client;
                    next_client += 1;
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        connection::serve(stream, client, shared, settings).await;
                        drop(slot);
                    });
                }
                Err(e) if open_files::is_out_of_descriptors(&e) => {
                    // The client that could not be accepted waits in the
                    // backlog: spend the reserve descriptor on telling it
                    // why, rather than leave it hanging.
                    let mut turned_away = false;
                    if reserve.release() {
                        if let Ok(Ok((stream, _))) =
                            tokio::time::timeout(Duration::from_millis(10), accept(legacy.as_ref())).await
                        {
                            connection::refuse(
                                stream,
                                "the server has run out of file descriptors; try again later",
                            );
                            turned_away = true;
                        }
                        reserve.refill();
                    }
                    let pause = starved.failed(&e, turned_away, connections.live());
                    tokio::time::sleep(pause).await;
                }
                Err(e) => {
                    // Per-connection failures (such as a client that reset
                    // before it was accepted) concern that client only.
                    debug!(error = %e, "accept failed");
                }
            }
        }
    }
    ticker.abort();
    reloader.abort();
    let _ = http_stop.send(());
    if let Some(task) = http_task {
        let _ = task.await;
    }
    // Dropping the outboxes hangs up every connection.
    shared.with(|s| s.clients.clear());
    info!("spalloc-server stopped");
    Ok(())
}

/// Accepts a legacy client, or waits forever when the legacy port is off.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// A server running on a background thread with its own runtime; stopped
/// by [`RunningServer::shutdown`] or on drop.
pub struct RunningServer {
    address: SocketAddr,
    legacy_address: Option<SocketAddr>,
    http_address: Option<SocketAddr>,
    accounts: crate::accounts::Accounts,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    reloads: mpsc::UnboundedSender<reload::ReloadRequest>,
}

impl RunningServer {
    /// Binds `config.ip:config.port` (port 0 picks a free port), checks the
    /// version of every SCP BMP (an unusable BMP is an error naming it, as
    /// the reference refuses to start), and starts serving.
    pub fn start(config: ServerConfig) -> std::io::Result<RunningServer> {
        let listeners = Listeners::bind(&config)?;
        let legacy_address = listeners
            .legacy
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let http_address = listeners
            .http
            .as_ref()
            .map(|(l, _)| l.local_addr())
            .transpose()?;
        let address = legacy_address
            .or(http_address)
            .ok_or_else(|| std::io::Error::other("no port to listen on"))?;
        let restored = Restored::open(&config)?;
        let accounts = open_accounts(&config)?;
        let server_accounts = accounts.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(DEFAULT_WORKER_THREADS))
            .thread_name("spalloc-server")
            .enable_all()
            .build()?;
        runtime
            .block_on(crate::bmp::scp::check_bmps(&config))
            .map_err(std::io::Error::other)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (reloads, reload_requests) = mpsc::unbounded_channel();
        let sources = reload::ReloadSources {
            requests: Some(reload_requests),
            ..Default::default()
        };
        let thread = std::thread::Builder::new()
            .name("spalloc-server".into())
            .spawn(move || {
                let result = runtime.block_on(serve_restored(
                    config,
                    listeners,
                    restored,
                    async {
                        let _ = stopped.await;
                    },
                    sources,
                    server_accounts,
                ));
                if let Err(e) = result {
                    warn!(error = %e, "server stopped with an error");
                }
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(RunningServer {
            address,
            legacy_address,
            http_address,
            accounts,
            stop: Some(stop),
            reloads,
            thread: Some(thread),
        })
    }

    /// Where the server listens: the legacy port, or the HTTP one when the
    /// legacy port is off.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Where the legacy protocol is served, if it is.
    pub fn legacy_addr(&self) -> Option<SocketAddr> {
        self.legacy_address
    }

    /// Where the v2 REST API is served, if it is (`[http]`).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_address
    }

    /// The accounts the v2 REST API authenticates against.
    pub fn accounts(&self) -> &crate::accounts::Accounts {
        &self.accounts
    }

    /// Reloads the configuration as SIGHUP does for the binary (see
    /// [`reload`]) and waits for the result: on error nothing changed. The
    /// listening address is never re-bound. Blocks, so it must not be called
    /// from inside an async runtime.
    pub fn reload(
        &self,
        config: ServerConfig,
    ) -> Result<reload::ReloadOutcome, reload::ReloadError> {
        let (reply, result) = oneshot::channel();
        self.reloads
            .send((config, reply))
            .map_err(|_| reload::ReloadError::Stopped)?;
        result
            .blocking_recv()
            .unwrap_or(Err(reload::ReloadError::Stopped))
    }

    /// Stops the server and waits for it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
