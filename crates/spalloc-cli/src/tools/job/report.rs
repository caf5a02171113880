//! The one JSON shape of a job, shared by `spalloc-job --json` and
//! `spalloc-ps --json`: the same keys whether the job is live, destroyed or
//! unknown (absent values are `null`), its state by name and by number, and
//! times as ISO 8601 (UTC) beside epoch seconds.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use serde_json::{Map, Value};
use spalloc::{JobListing, JobMachineInfo, JobState, JobStateRecord};

/// One Ethernet-connected chip of a job's allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EthernetChip {
    /// Chip x, relative to the allocation's origin.
    pub x: u32,
    /// Chip y.
    pub y: u32,
    /// The board's hostname.
    pub hostname: String,
}

/// How the job was asked for: `create_job`'s arguments as the server echoes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRequestJson {
    /// Positional arguments (a board count, width and height, or x, y, z).
    pub args: Vec<Value>,
    /// Keyword arguments other than `owner` and `keepalive`.
    pub kwargs: Map<String, Value>,
}

/// A job, for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobJson {
    /// The job's ID.
    pub job_id: u64,
    /// `queued`, `power`, `ready`, `destroyed` or `unknown`.
    pub state: &'static str,
    /// The state's number on the wire (0 unknown, 1 queued, 2 power, 3 ready, 4 destroyed).
    pub state_id: i64,
    /// Why it was destroyed.
    pub reason: Option<String>,
    /// Its owner (live jobs only).
    pub owner: Option<String>,
    /// Creation time, Unix seconds.
    pub start_time: Option<f64>,
    /// Creation time, ISO 8601 in UTC.
    pub start_time_iso: Option<String>,
    /// Keepalive interval in seconds; `null` also for a job that never expires.
    pub keepalive: Option<f64>,
    /// The host that last kept it alive.
    pub keepalivehost: Option<String>,
    /// Whether its boards are on.
    pub power: Option<bool>,
    /// Its place in its machine's queue (1 at the head), when the server says.
    pub queue_position: Option<u64>,
    /// What it waits for, when the server says.
    pub queue_reason: Option<String>,
    /// How it was asked for (live jobs only).
    pub request: Option<JobRequestJson>,
    /// The machine it runs on.
    pub machine: Option<String>,
    /// Its boards' logical coordinates.
    pub boards: Option<Vec<[u32; 3]>>,
    /// Width of its allocation in chips.
    pub width: Option<u32>,
    /// Height in chips.
    pub height: Option<u32>,
    /// Its Ethernet-connected chips, sorted by position.
    pub connections: Option<Vec<EthernetChip>>,
}

/// Epoch seconds as ISO 8601 UTC, to the millisecond.
pub fn iso_time(seconds: f64) -> Option<String> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9) as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl JobJson {
    /// A job known only by its state (destroyed or unknown, or before its
    /// listing is read).
    pub fn from_state(job_id: u64, state: &JobStateRecord) -> JobJson {
        JobJson {
            job_id,
            state: state.state.name(),
            state_id: state.state.to_wire(),
            reason: state.reason.clone(),
            owner: None,
            start_time: state.start_time,
            start_time_iso: state.start_time.and_then(iso_time),
            keepalive: state.keepalive,
            keepalivehost: state.keepalivehost.clone(),
            power: state.power,
            queue_position: None,
            queue_reason: None,
            request: None,
            machine: None,
            boards: None,
            width: None,
            height: None,
            connections: None,
        }
    }

    /// A live job from its `list_jobs` entry.
    pub fn from_listing(job: &JobListing) -> JobJson {
        JobJson {
            job_id: job.job_id,
            state: job.state.name(),
            state_id: job.state.to_wire(),
            reason: None,
            owner: Some(job.owner.clone()),
            start_time: Some(job.start_time),
            start_time_iso: iso_time(job.start_time),
            keepalive: job.keepalive,
            keepalivehost: job.keepalivehost.clone(),
            power: job.power,
            queue_position: None,
            queue_reason: None,
            request: Some(JobRequestJson {
                args: job.args.clone(),
                kwargs: job.kwargs.clone(),
            }),
            machine: job.allocated_machine_name.clone(),
            boards: job.boards.clone(),
            width: None,
            height: None,
            connections: None,
        }
    }

    /// Adds the allocation's size and Ethernet chips.
    pub fn with_machine_info(mut self, info: &JobMachineInfo) -> JobJson {
        self.width = info.width;
        self.height = info.height;
        if self.machine.is_none() {
            self.machine = info.machine_name.clone();
        }
        if self.boards.is_none() {
            self.boards = info.boards.clone();
        }
        self.connections = info.connections.as_ref().map(|connections| {
            let mut chips: Vec<EthernetChip> = connections
                .iter()
                .map(|c| EthernetChip {
                    x: c.0[0],
                    y: c.0[1],
                    hostname: c.1.clone(),
                })
                .collect();
            chips.sort_by(|a, b| (a.x, a.y, &a.hostname).cmp(&(b.x, b.y, &b.hostname)));
            chips
        });
        self
    }

    /// Adds the server's queue extension, if it sent one.
    pub fn with_queue(mut self, position: Option<u64>, reason: Option<String>) -> JobJson {
        self.queue_position = position;
        self.queue_reason = reason;
        self
    }

    /// Whether the job is gone (destroyed or unknown).
    pub fn is_gone(&self) -> bool {
        self.state_id == JobState::Destroyed.to_wire()
            || self.state_id == JobState::Unknown.to_wire()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spalloc::Connection;

    #[test]
    fn every_state_has_the_same_keys() {
        let mut destroyed = JobStateRecord::unknown();
        destroyed.state = JobState::Destroyed;
        destroyed.reason = Some("Timed out.".to_owned());
        let keys = |job: &JobJson| -> Vec<String> {
            match serde_json::to_value(job) {
                Ok(Value::Object(map)) => map.keys().cloned().collect(),
                other => panic!("{other:?}"),
            }
        };
        let unknown = JobJson::from_state(9, &JobStateRecord::unknown());
        let gone = JobJson::from_state(8, &destroyed);
        let listing = crate::tools::ps::table::tests::reference_jobs().remove(0);
        let live = JobJson::from_listing(&listing).with_machine_info(&JobMachineInfo {
            width: Some(8),
            height: Some(8),
            connections: Some(vec![
                Connection([4, 8], "b".to_owned()),
                Connection([0, 0], "a".to_owned()),
            ]),
            machine_name: Some("m1".to_owned()),
            boards: None,
        });
        assert_eq!(keys(&unknown), keys(&gone));
        assert_eq!(keys(&unknown), keys(&live));
        assert_eq!((gone.state, gone.state_id), ("destroyed", 4));
        assert!(gone.is_gone() && unknown.is_gone() && !live.is_gone());
        assert_eq!(
            live.connections.as_ref().map(|c| c[0].hostname.as_str()),
            Some("a")
        );
    }

    #[test]
    fn times_are_iso_8601_in_utc() {
        assert_eq!(
            iso_time(1_700_000_000.25).as_deref(),
            Some("2023-11-14T22:13:20.250Z")
        );
        assert_eq!(iso_time(f64::NAN), None);
    }
}
