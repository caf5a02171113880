//! The HTTP(S) shell of the v2 REST API: an axum router on the server's
//! tokio runtime, served over plain TCP or rustls.
//!
//! It holds no policy: [`api`] turns each request into a
//! [`crate::rest::ApiRequest`], runs [`crate::rest::handle`] under the
//! service lock, and writes the [`crate::rest::Reply`] back. What it does
//! itself is transport: authentication ([`auth`]: log-in, sessions, CSRF
//! and API tokens over HTTP, in front of [`crate::accounts`]), body limits, URL
//! normalisation, the links' base URL (honouring `X-Forwarded-Proto` and
//! `X-Forwarded-Host`), and holding long-polls without the lock.

pub mod api;
pub mod auth;
pub mod board_io;
pub mod connections;
pub mod metrics;
pub mod openapi;
pub mod tls;

use crate::accounts::Accounts;
use crate::server::shared::Shared;
use axum::Router;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// The largest request body accepted (a create request is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a client may take to send a request's headers: a client that
/// connects and dribbles (or sends nothing) is cut off after this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request handler needs.
#[derive(Clone)]
pub struct HttpState {
    /// The service and the state-changed signal.
    pub shared: Arc<Shared>,
    /// Who may log in.
    pub accounts: Accounts,
    /// Places for long-polls.
    pub long_polls: Arc<Semaphore>,
    /// How many places [`HttpState::long_polls`] started with.
    pub long_poll_limit: usize,
    /// Whether this listener speaks TLS (the default scheme of returned URLs).
    pub tls: bool,
    /// The job proxy's settings (`[proxy]`).
    pub proxy: crate::proxy::socket::ProxySettings,
    /// HTTP connections open now (counted by [`serve`]'s acceptor).
    pub connections: connections::OpenConnections,
}

/// The whole HTTP application: log-in routes, the OpenAPI description and
/// the API (a fallback, so that `//` and trailing slashes in paths reach it
/// unchanged).
pub fn router(state: HttpState) -> Router {
    let accounts = state.accounts.clone();
    let tls = state.tls;
    let proxy = crate::proxy::route::routes(crate::proxy::route::for_http(&state));
    Router::new()
        .route(metrics::METRICS_PATH, axum::routing::get(metrics::scrape))
        .merge(crate::web::routes())
        .fallback(api::handle)
        .with_state(state)
        .merge(auth::routes_over(accounts, tls))
        .merge(proxy)
        .layer(axum::middleware::from_fn(metrics::time_request))
}

/// Serves `app` on `listener` (over TLS if `tls` is given) until
/// `shutdown` completes. Must run inside a tokio runtime.
pub async fn serve(
    listener: StdListener,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    open: connections::OpenConnections,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(1)));
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    match listener.local_addr() {
        Ok(address) => info!(%address, scheme, "v2 REST API accepting connections"),
        Err(e) => warn!(error = %e, "v2 REST API listener has no address"),
    }
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let result = match tls {
        Some(config) => {
            let acceptor =
                axum_server::tls_rustls::RustlsAcceptor::new(config).acceptor(open.acceptor());
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            slow_clients_time_out(server.http_builder());
            server.handle(handle).serve(service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener).acceptor(open.acceptor());
            slow_clients_time_out(server.http_builder());
            server.handle(handle).serve(service).await
        }
    };
    if let Err(e) = result {
        warn!(error = %e, "v2 REST API listener stopped with an error");
    }
}

/// Cuts off clients that take longer than [`HEADER_READ_TIMEOUT`] to send
/// their request headers.
fn slow_clients_time_out(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
}
