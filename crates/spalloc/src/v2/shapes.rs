//! The JSON the v2 API answers, as typed records (allocserv's kebab-case
//! names; coordinates as arrays, except dead boards, which are objects).
//! Unknown fields are ignored so that newer servers still parse.

use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use spalloc_protocol::{BoardCoord, ChipCoord, JobState, PhysicalCoord, WhereIsRecord};

/// allocserv's `BoardCoords`: one board in every coordinate system.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BoardCoords {
    /// Triad x.
    pub x: u32,
    /// Triad y.
    pub y: u32,
    /// Board in the triad.
    pub z: u32,
    /// Cabinet.
    #[serde(default)]
    pub cabinet: u32,
    /// Frame.
    #[serde(default)]
    pub frame: u32,
    /// Board in the frame (hidden from some users).
    #[serde(default)]
    pub board: Option<u32>,
    /// The board's IP address (hidden from some users).
    #[serde(default)]
    pub address: Option<String>,
}

/// One end of a dead link.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LinkEnd {
    /// The board.
    pub board: BoardCoords,
    /// The link's direction from it (`N`, `SW`, …).
    pub direction: String,
}

/// A machine, from `GET /machines` (`dead-*`) or `GET /machines/{name}` (`down-*`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MachineInfo {
    /// Its name.
    pub name: String,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Its URL (listings only).
    #[serde(default)]
    pub uri: Option<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards out of service.
    #[serde(default, alias = "down-boards")]
    pub dead_boards: Vec<BoardCoords>,
    /// Links out of service, both ends of each.
    #[serde(default, alias = "down-links")]
    pub dead_links: Vec<Vec<LinkEnd>>,
}

/// `GET /jobs/{id}` (`JobStateResponse`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobStatus {
    /// `QUEUED`, `POWER`, `READY`, `DESTROYED` or `UNKNOWN`.
    pub state: String,
    /// The owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// When it was created (ISO-8601).
    #[serde(default)]
    pub start_time: Option<String>,
    /// When it was destroyed (ISO-8601).
    #[serde(default)]
    pub finish_time: Option<String>,
    /// Why it was destroyed.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who last kept it alive.
    #[serde(default)]
    pub keepalive_host: Option<String>,
    /// When it was last kept alive.
    #[serde(default)]
    pub keep_alive_time: Option<String>,
    /// The create request, as the server stored it.
    #[serde(default)]
    pub original_request: Option<Value>,
    /// This project's server only: present while the job's group is about
    /// to run out of its board-seconds quota.
    #[serde(default)]
    pub quota_warning: Option<QuotaWarning>,
}

/// The `quota-warning` of a running job's state (this project's server):
/// its group will run out of board-seconds soon, and then the job is
/// destroyed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct QuotaWarning {
    /// In words: what is left, and when the job will be destroyed.
    pub message: String,
    /// Seconds until then, at the group's current rate.
    #[serde(default)]
    pub seconds_left: Option<f64>,
    /// The group charged.
    #[serde(default)]
    pub group: Option<String>,
    /// Board-seconds the group has left.
    #[serde(default)]
    pub remaining: Option<f64>,
}

impl JobStatus {
    /// The state as the legacy protocol's enum.
    pub fn job_state(&self) -> JobState {
        match self.state.to_ascii_uppercase().as_str() {
            "QUEUED" => JobState::Queued,
            "POWER" => JobState::Power,
            "READY" => JobState::Ready,
            "DESTROYED" => JobState::Destroyed,
            _ => JobState::Unknown,
        }
    }
}

/// `GET /jobs/{id}/machine` (`SubMachineResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SubMachine {
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards per triad (1 for a single board, else 3).
    pub depth: u32,
    /// The machine.
    pub machine_name: String,
    /// Job-relative Ethernet chip and its board's IP address.
    pub connections: Vec<(ChipCoord, String)>,
    /// The boards, in machine triad coordinates.
    pub boards: Vec<BoardCoord>,
}

impl SubMachine {
    /// The address of the board with chip (0, 0).
    pub fn hostname(&self) -> Option<String> {
        self.connections
            .iter()
            .find(|(chip, _)| *chip == [0, 0])
            .map(|(_, ip)| ip.clone())
    }

    /// Width and height in chips, as the legacy protocol reports them: 8×8
    /// for one board, 12 per triad, plus the 4 overhanging chips when the
    /// allocation does not wrap around (a part of a larger machine).
    pub fn chip_size(&self, machine: Option<&MachineInfo>) -> (u32, u32) {
        if self.boards.len() == 1 {
            return (8, 8);
        }
        let wraps = machine.is_some_and(|m| m.width == self.width && m.height == self.height);
        let extra = if wraps { 0 } else { 4 };
        (self.width * 12 + extra, self.height * 12 + extra)
    }
}

/// allocserv's `WhereIs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct WhereIsShape {
    machine: String,
    chip: ChipCoord,
    board_chip: ChipCoord,
    logical_board_coordinates: BoardCoord,
    physical_board_coordinates: PhysicalCoord,
    #[serde(default)]
    job_id: Option<u64>,
    #[serde(default)]
    job_chip: Option<ChipCoord>,
}

/// A where-is answer as the legacy record, so both protocols print alike.
pub fn where_is_record(body: &str) -> Result<WhereIsRecord> {
    let w: WhereIsShape = serde_json::from_str(body)
        .map_err(|e| Error::ProtocolError(format!("where-is: unexpected answer ({e})")))?;
    Ok(WhereIsRecord {
        machine: w.machine,
        logical: w.logical_board_coordinates,
        physical: w.physical_board_coordinates,
        chip: w.chip,
        board_chip: w.board_chip,
        job_id: w.job_id,
        job_chip: w.job_chip,
    })
}

/// `GET /jobs` (one page).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobPage {
    pub jobs: Vec<String>,
    #[serde(default)]
    pub next: Option<String>,
}

/// `GET /machines`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MachineList {
    pub machines: Vec<MachineInfo>,
}

/// `POST /jobs` answer body (the `Location` header is what counts).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Created {
    #[serde(default)]
    pub job_id: Option<u64>,
    #[serde(default)]
    pub job_ref: Option<String>,
}

/// The job ID at the end of a job URL (`…/jobs/42` or `…/jobs/42/`).
pub fn job_id_of(url: &str) -> Option<u64> {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_come_from_the_end_of_job_urls() {
        assert_eq!(job_id_of("http://h/spalloc/srv/spalloc/jobs/42"), Some(42));
        assert_eq!(job_id_of("http://h/spalloc/srv/spalloc/jobs/42/"), Some(42));
        assert_eq!(job_id_of("http://h/jobs/"), None);
    }

    #[test]
    fn a_machine_parses_from_either_listing_shape() {
        let list = r#"{"name":"m","tags":["default"],"uri":"u","width":2,"height":1,
            "dead-boards":[{"x":1,"y":0,"z":2,"cabinet":0,"frame":0,"board":5,"address":null}],
            "dead-links":[]}"#;
        let one = r#"{"name":"m","tags":[],"width":2,"height":1,
            "down-boards":[{"x":1,"y":0,"z":2,"cabinet":0,"frame":0,"board":null}],"down-links":[]}"#;
        let a: MachineInfo = serde_json::from_str(list).unwrap();
        let b: MachineInfo = serde_json::from_str(one).unwrap();
        assert_eq!(a.dead_boards[0].z, 2);
        assert_eq!(b.dead_boards[0].board, None);
    }
}
