//! Typed shapes of the values commands return.
//!
//! Field order follows the reference server's dictionaries, so that a record
//! serialised with [`crate::python_json`] reads exactly like the reference's
//! reply. Every field a reference server may send as `null` is an `Option`.

use crate::JobState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A logical board coordinate `[x, y, z]`.
pub type BoardCoord = [u32; 3];
/// A chip coordinate `[x, y]`.
pub type ChipCoord = [u32; 2];
/// A physical board location `[cabinet, frame, board]`.
pub type PhysicalCoord = [u32; 3];

/// The reply of `get_job_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStateRecord {
    /// The job's state.
    pub state: JobState,
    /// Whether the boards are (or are being) powered on; `None` unless allocated.
    pub power: Option<bool>,
    /// The keepalive interval in seconds; `None` means the job never times out.
    pub keepalive: Option<f64>,
    /// Why the job was destroyed; only for destroyed jobs.
    pub reason: Option<String>,
    /// Unix time of creation; only for live jobs.
    pub start_time: Option<f64>,
    /// The IP of the last client that touched the job (an extension of the
    /// reference server; absent from older servers).
    #[serde(default)]
    pub keepalivehost: Option<String>,
}

impl JobStateRecord {
    /// The record for an ID the server does not know.
    pub fn unknown() -> Self {
        JobStateRecord {
            state: JobState::Unknown,
            power: None,
            keepalive: None,
            reason: None,
            start_time: None,
            keepalivehost: None,
        }
    }
}

/// One entry of `get_job_machine_info`'s `connections`: the Ethernet chip of a
/// board, relative to the allocation's origin, and that board's hostname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection(pub ChipCoord, pub String);

/// The reply of `get_job_machine_info`. Every field is `None` while the job is
/// queued, and once it is destroyed or unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobMachineInfo {
    /// Width of the allocation in chips.
    pub width: Option<u32>,
    /// Height of the allocation in chips.
    pub height: Option<u32>,
    /// The Ethernet-connected chip of every board and its hostname.
    pub connections: Option<Vec<Connection>>,
    /// The machine the job runs on.
    pub machine_name: Option<String>,
    /// The allocated boards.
    pub boards: Option<Vec<BoardCoord>>,
}

/// One entry of `list_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobListing {
    /// The job's ID.
    pub job_id: u64,
    /// Who created the job.
    pub owner: String,
    /// Unix time of creation.
    pub start_time: f64,
    /// The keepalive interval, or `None` for never.
    pub keepalive: Option<f64>,
    /// The job's state.
    pub state: JobState,
    /// Power state, `None` while queued.
    pub power: Option<bool>,
    /// The positional arguments of `create_job`, as sent.
    pub args: Vec<Value>,
    /// The keyword arguments of `create_job` as sent, minus `owner` and `keepalive`.
    pub kwargs: Map<String, Value>,
    /// The machine the job is allocated on, if any.
    pub allocated_machine_name: Option<String>,
    /// The allocated boards, if any.
    pub boards: Option<Vec<BoardCoord>>,
    /// The IP of the last client that touched the job; `""` if unknown.
    #[serde(default)]
    pub keepalivehost: Option<String>,
}

/// One entry of `list_machines`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineListing {
    /// The machine's name.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards that do not exist or do not work.
    pub dead_boards: Vec<BoardCoord>,
    /// Links that do not work: `[x, y, z, link]`.
    pub dead_links: Vec<[u32; 4]>,
}

impl MachineListing {
    /// The number of working boards, as the reference tools compute it.
    pub fn num_boards(&self) -> u32 {
        (self.width * self.height * 3).saturating_sub(self.dead_boards.len() as u32)
    }
}

/// The reply of `where_is`, when the location exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhereIsRecord {
    /// The machine.
    pub machine: String,
    /// The board's logical coordinate.
    pub logical: BoardCoord,
    /// The board's physical location.
    pub physical: PhysicalCoord,
    /// The chip in machine-wide coordinates.
    pub chip: ChipCoord,
    /// The chip relative to its board's Ethernet chip.
    pub board_chip: ChipCoord,
    /// The job using the board, if any.
    pub job_id: Option<u64>,
    /// The chip relative to that job's origin, if a job uses the board.
    pub job_chip: Option<ChipCoord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python_json;

    #[test]
    fn machine_info_matches_the_reference_reply() {
        let text = r#"{"width": 8, "height": 8, "connections": [[[0, 0], "127.0.1.1"]], "machine_name": "test-machine", "boards": [[0, 0, 0]]}"#;
        let info: JobMachineInfo = serde_json::from_str(text).unwrap();
        assert_eq!(info.connections.as_ref().unwrap()[0].1, "127.0.1.1");
        assert_eq!(python_json::to_string(&info), text);
    }

    #[test]
    fn job_state_record_accepts_servers_without_keepalivehost() {
        let r: JobStateRecord = serde_json::from_str(
            r#"{"state": 4, "power": null, "keepalive": null, "reason": "bye", "start_time": null}"#,
        )
        .unwrap();
        assert_eq!(r.state, JobState::Destroyed);
        assert_eq!(r.reason.as_deref(), Some("bye"));
        assert_eq!(r.keepalivehost, None);
    }

    #[test]
    fn list_jobs_entry_round_trips() {
        let text = r#"{"job_id": 2, "owner": "bob", "start_time": 1795587206.06, "keepalive": 60.0, "state": 1, "power": null, "args": [2, 1], "kwargs": {}, "allocated_machine_name": null, "boards": null, "keepalivehost": "127.0.0.1"}"#;
        let job: JobListing = serde_json::from_str(text).unwrap();
        assert_eq!(job.state, JobState::Queued);
        assert_eq!(python_json::to_string(&job), text);
    }

    #[test]
    fn machine_listing_counts_boards() {
        let m: MachineListing = serde_json::from_str(
            r#"{"name": "special", "tags": ["special"], "width": 1, "height": 1, "dead_boards": [[0,0,1],[0,0,2]], "dead_links": []}"#,
        )
        .unwrap();
        assert_eq!(m.num_boards(), 1);
    }
}
