//! Latencies (legacy commands, HTTP requests, BMP requests, state-file
//! commits and the applier's writes into its tables) and the change
//! journal's backlog,
//! recorded as requests pass through the shells: one
//! process-wide set, so that the legacy connection handler and the HTTP
//! router need no handle threaded through to them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

/// The label of a legacy command's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    /// A known command's name, or `unknown` (never what the client sent, so
    /// a client cannot make label values without end).
    pub command: &'static str,
}

/// The labels of a BMP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BmpLabel {
    /// The machine (from the configuration, so a bounded set).
    pub machine: String,
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// The label of a state-file commit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// The label of an HTTP request's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// `GET`, `POST`, ... or `other`.
    pub method: &'static str,
    /// The route's template, e.g. `/spalloc/srv/spalloc/jobs/{id}`.
    pub endpoint: &'static str,
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// From 50 µs to about 100 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

/// The event metrics.
pub struct Events {
    legacy: Latencies<CommandLabel>,
    http: Latencies<EndpointLabel>,
    bmp: Latencies<BmpLabel>,
    store: Latencies<OutcomeLabel>,
    store_apply: Latencies<OutcomeLabel>,
    journal_waiting: Gauge,
}

static EVENTS: LazyLock<Events> = LazyLock::new(|| Events {
    legacy: Family::new_with_constructor(latency_histogram),
    http: Family::new_with_constructor(latency_histogram),
    bmp: Family::new_with_constructor(latency_histogram),
    store: Family::new_with_constructor(latency_histogram),
    store_apply: Family::new_with_constructor(latency_histogram),
    journal_waiting: Gauge::default(),
});

/// The process's event metrics.
pub fn global() -> &'static Events {
    &EVENTS
}

impl Events {
    /// Records a legacy command's time under the service lock.
    pub fn legacy_command(&self, command: Option<&'static str>, took: Duration) {
        let label = CommandLabel {
            command: command.unwrap_or("unknown"),
        };
        self.legacy
            .get_or_create(&label)
            .observe(took.as_secs_f64());
    }

    /// Records an HTTP request's time, headers to response.
    pub fn http_request(&self, method: &'static str, endpoint: &'static str, took: Duration) {
        let label = EndpointLabel { method, endpoint };
        self.http.get_or_create(&label).observe(took.as_secs_f64());
    }

    /// Records a BMP request (one batch of power and link commands to one
    /// BMP) carried out by a back end: its outcome and how long it took.
    /// The histogram's count per outcome is the number of commands and of
    /// failures.
    pub fn bmp_request(&self, machine: &str, ok: bool, took: Duration) {
        let label = BmpLabel {
            machine: machine.to_owned(),
            outcome: if ok { "ok" } else { "failed" },
        };
        self.bmp.get_or_create(&label).observe(took.as_secs_f64());
    }

    /// Records one commit of a group of change sets to the state file.
    pub fn store_commit(&self, ok: bool, took: Duration) {
        let label = OutcomeLabel {
            outcome: if ok { "ok" } else { "failed" },
        };
        self.store.get_or_create(&label).observe(took.as_secs_f64());
    }

    /// Records one round of the state file's applier (the journal's change
    /// sets written into the tables), and how many change sets the journal
    /// still holds that the tables do not.
    pub fn store_apply(&self, ok: bool, took: Duration, waiting: usize) {
        let label = OutcomeLabel {
            outcome: if ok { "ok" } else { "failed" },
        };
        self.store_apply
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        self.journal_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Adds the event metrics (shared handles, not copies) to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "legacy_request_seconds",
            "Time to handle a legacy-protocol command under the service lock",
            self.legacy.clone(),
        );
        registry.register(
            "http_request_seconds",
            "Time to answer an HTTP request (long-polls include their wait)",
            self.http.clone(),
        );
        registry.register(
            "bmp_request_seconds",
            "Time a BMP back end took to carry out a request, by outcome",
            self.bmp.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time to commit a group of changes to the state file, by outcome",
            self.store.clone(),
        );
        registry.register(
            "store_apply_seconds",
            "Time to write a batch of the change journal into the state file's tables, by outcome",
            self.store_apply.clone(),
        );
        registry.register(
            "store_journal_waiting",
            "Change sets in the change journal not yet in the state file's tables (after the \
             applier's last round; grows while the tables refuse writes)",
            self.journal_waiting.clone(),
        );
    }
}
