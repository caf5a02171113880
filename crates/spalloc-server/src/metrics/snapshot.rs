//! What is true now, read from the controller at scrape time: boards by
//! condition per machine, jobs by state, the queue, open connections.
//! Nothing here is stored between scrapes, so it cannot disagree with the
//! controller. The one history among them, the completed waits, is also
//! the controller's ([`crate::core::job_history::WaitHistogram`]), copied
//! at scrape time.

use crate::core::controller::Controller;
use crate::core::job_history::WaitHistogram;
use crate::server::shared::State;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use spalloc_protocol::JobState;
use std::collections::BTreeMap;

/// Per-machine label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MachineLabel {
    /// The machine's name.
    pub machine: String,
}

/// Per-state label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `queued`, `power`, `ready` or `destroyed`.
    pub state: &'static str,
}

/// One machine's boards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardCounts {
    /// Boards that exist and work.
    pub total: i64,
    /// Boards allocated to a job.
    pub in_use: i64,
    /// Allocated boards whose job asked for power on.
    pub powered: i64,
    /// Boards missing or broken.
    pub dead: i64,
    /// Working boards an operator took out of service.
    pub out_of_service: i64,
    /// Board issue reports received about the machine's boards.
    pub reports: i64,
}

/// The facts `/metrics` reports about now.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Boards per machine, in the controller's order.
    pub machines: BTreeMap<String, BoardCounts>,
    /// Live jobs per state.
    pub jobs: BTreeMap<&'static str, i64>,
    /// How long each queued job has waited so far, in seconds.
    pub queued_waits: Vec<f64>,
    /// Open legacy-protocol connections.
    pub connections: i64,
    /// How long jobs waited from creation to first ready, since start-up.
    pub completed_waits: WaitHistogram,
}

/// The job states reported even when no job is in them, so that a
/// dashboard sees 0 rather than nothing.
const STATES: [JobState; 3] = [JobState::Queued, JobState::Power, JobState::Ready];

impl Snapshot {
    /// Reads the facts from the server's state at `now`.
    pub fn of(state: &State, now: f64) -> Snapshot {
        Snapshot {
            connections: state.clients.len() as i64,
            ..Snapshot::of_controller(&state.service.controller, now)
        }
    }

    /// The facts the controller holds (no connections), at `now`.
    pub fn of_controller(controller: &Controller, now: f64) -> Snapshot {
        let mut machines: BTreeMap<String, BoardCounts> = controller
            .machines()
            .map(|m| {
                let counts = BoardCounts {
                    total: m.live_boards().count() as i64,
                    dead: m.dead_boards.len() as i64,
                    out_of_service: controller
                        .boards_out_of_service(&m.name)
                        .map_or(0, |b| b.len() as i64),
                    ..BoardCounts::default()
                };
                (m.name.clone(), counts)
            })
            .collect();
        let mut jobs: BTreeMap<&'static str, i64> = STATES.iter().map(|s| (s.name(), 0)).collect();
        let mut queued_waits = Vec::new();
        for job in controller.live_jobs() {
            *jobs.entry(job.state.name()).or_default() += 1;
            if job.state == JobState::Queued {
                queued_waits.push((now - job.start_time).max(0.0));
            }
            let Some(allocation) = &job.allocation else {
                continue;
            };
            if let Some(counts) = machines.get_mut(&allocation.machine) {
                let boards = allocation.boards.len() as i64;
                counts.in_use += boards;
                if job.power == Some(true) {
                    counts.powered += boards;
                }
            }
        }
        for report in controller.issue_reports() {
            if let Some(counts) = machines.get_mut(&report.machine) {
                counts.reports += 1;
            }
        }
        Snapshot {
            machines,
            jobs,
            queued_waits,
            connections: 0,
            completed_waits: controller.completed_waits().clone(),
        }
    }

    /// Adds these facts to `registry` as gauges (and one histogram of the
    /// queued jobs' waits so far).
    pub fn register(self, registry: &mut Registry, http: super::HttpFacts) {
        let boards = |name: &str, help: &str, pick: fn(&BoardCounts) -> i64| {
            let family = Family::<MachineLabel, Gauge>::default();
            for (machine, counts) in &self.machines {
                family
                    .get_or_create(&MachineLabel {
                        machine: machine.clone(),
                    })
                    .set(pick(counts));
            }
            (name.to_owned(), help.to_owned(), family)
        };
        for (name, help, family) in [
            boards("boards", "Working boards of a machine", |c| c.total),
            boards("boards_in_use", "Boards allocated to jobs", |c| c.in_use),
            boards(
                "boards_powered",
                "Allocated boards whose job has asked for power on",
                |c| c.powered,
            ),
            boards("boards_dead", "Boards missing or broken", |c| c.dead),
            boards(
                "boards_out_of_service",
                "Working boards an operator took out of service",
                |c| c.out_of_service,
            ),
            boards(
                "board_reports",
                "Board issue reports kept about a machine's boards",
                |c| c.reports,
            ),
        ] {
            registry.register(name, help, family);
        }
        let jobs = Family::<StateLabel, Gauge>::default();
        for (state, n) in &self.jobs {
            jobs.get_or_create(&StateLabel { state }).set(*n);
        }
        registry.register("jobs", "Live jobs by state", jobs);
        let queue = Gauge::<i64>::default();
        queue.set(self.queued_waits.len() as i64);
        registry.register("queue_length", "Jobs waiting for boards", queue);
        let waits = Histogram::new(exponential_buckets(1.0, 4.0, 10));
        for wait in &self.queued_waits {
            waits.observe(*wait);
        }
        registry.register(
            "queued_job_wait_seconds",
            "How long each job now queued has waited so far (recomputed at every scrape)",
            waits,
        );
        registry.register(
            "job_wait_seconds",
            "How long jobs waited from creation until first ready, since the server started",
            CompletedWaits(self.completed_waits),
        );
        let connections = Gauge::<i64>::default();
        connections.set(self.connections);
        registry.register(
            "legacy_connections",
            "Open legacy-protocol connections",
            connections,
        );
        let http_connections = Gauge::<i64>::default();
        http_connections.set(http.open_connections);
        registry.register(
            "http_connections",
            "Open HTTP connections (REST API, pages, proxies)",
            http_connections,
        );
        let polls = Gauge::<i64>::default();
        polls.set(http.long_polls_waiting as i64);
        registry.register(
            "http_long_polls",
            "REST requests held waiting for a change (wait=true)",
            polls,
        );
    }
}

/// The controller's completed waits as a Prometheus histogram (the core
/// counts them in fixed buckets; this writes those buckets as they are).
#[derive(Debug)]
struct CompletedWaits(WaitHistogram);

impl TypedMetric for CompletedWaits {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for CompletedWaits {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(
            self.0.sum(),
            self.0.count(),
            &self.0.buckets(),
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
