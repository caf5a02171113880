//! The `/metrics` endpoint: the server in the Prometheus text format, for
//! operators' dashboards and alerts (allocserv's operators ask for it,
//! `spalloc-v2-and-ecosystem.md` §18 item 8).
//!
//! Two kinds of figures, kept apart so that no fact has two copies:
//!
//! * [`events`]: what happened over time (request latencies), recorded by
//!   the shells as requests pass through them, process-wide;
//! * [`snapshot`]: what is true now (boards in use, jobs by state, the
//!   queue, open connections), computed from the controller at scrape time.
//!
//! Both are written with `prometheus-client`, the Prometheus project's own
//! Rust crate, so the text format is never hand-written.

pub mod events;
pub mod snapshot;

use crate::server::shared::Shared;
use prometheus_client::registry::Registry;

/// The content type of what `prometheus-client` writes: the OpenMetrics
/// text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What only the HTTP listener knows, reported beside the server's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpFacts {
    /// REST requests currently held by `wait=true`.
    pub long_polls_waiting: usize,
    /// HTTP connections open now (see [`crate::http::connections`]).
    pub open_connections: i64,
}

/// Everything `/metrics` reports, as text.
pub fn render(shared: &Shared, http: HttpFacts, now: f64) -> String {
    let facts = shared.read(|state| snapshot::Snapshot::of(state, now));
    encode(facts, http)
}

/// The text of `facts` and the process's event metrics.
pub fn encode(facts: snapshot::Snapshot, http: HttpFacts) -> String {
    let mut registry = Registry::with_prefix("spalloc");
    events::global().register(&mut registry);
    facts.register(&mut registry, http);
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!(error = %e, "cannot encode the metrics");
    }
    text
}
