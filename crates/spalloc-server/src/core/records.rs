//! What durable state is made of: records an operator would recognise
//! (each job, each destroyed job's reason, the next job ID, each machine's
//! definition), never the allocator's or the queues' insides.
//!
//! [`Controller::records`](crate::core::controller::Controller::records)
//! gives them all, [`Controller::take_record_changes`](crate::core::controller::Controller::take_record_changes)
//! those changed since the last call (what a store writes), and
//! [`Controller::from_records`](crate::core::controller::Controller::from_records)
//! rebuilds a controller, allocators and queues included, from them.

use crate::core::board_service::BoardRecords;
use crate::core::cooling::CoolingBoards;
use crate::core::coordinates::Board;
use crate::core::job::Job;
use crate::core::machine::{Machine, Physical};
use crate::core::retired::RetiredEntry;
use crate::core::scheduler::Scheduler;
use crate::core::tombstone::{Tombstone, TombstoneChange};
use crate::core::usage::UsageRecord;
use serde::{Deserialize, Serialize};
use spalloc_protocol::Link;
use std::collections::BTreeSet;

/// A machine's definition as recorded: the configuration it was built from,
/// field by field (maps as lists of pairs, so that the record is plain
/// JSON). Two machines are the same when their records are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// Unique name.
    pub name: String,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Dead boards.
    pub dead_boards: Vec<Board>,
    /// Dead links.
    pub dead_links: Vec<(Board, Link)>,
    /// Each board's physical location.
    pub board_locations: Vec<(Board, Physical)>,
    /// Each (cabinet, frame)'s BMP address.
    pub bmp_ips: Vec<((u32, u32), String)>,
    /// Each board's Ethernet chip address.
    pub spinnaker_ips: Vec<(Board, String)>,
}

impl From<&Machine> for MachineRecord {
    fn from(m: &Machine) -> MachineRecord {
        MachineRecord {
            name: m.name.clone(),
            tags: m.tags.clone(),
            width: m.width,
            height: m.height,
            dead_boards: m.dead_boards.iter().copied().collect(),
            dead_links: m.dead_links.iter().copied().collect(),
            board_locations: m.board_locations.iter().map(|(b, p)| (*b, *p)).collect(),
            bmp_ips: m.bmp_ips.iter().map(|(k, v)| (*k, v.clone())).collect(),
            spinnaker_ips: m
                .spinnaker_ips
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
        }
    }
}

impl From<MachineRecord> for Machine {
    fn from(r: MachineRecord) -> Machine {
        Machine {
            name: r.name,
            tags: r.tags,
            width: r.width,
            height: r.height,
            dead_boards: r.dead_boards.into_iter().collect(),
            dead_links: r.dead_links.into_iter().collect(),
            board_locations: r.board_locations.into_iter().collect(),
            bmp_ips: r.bmp_ips.into_iter().collect(),
            spinnaker_ips: r.spinnaker_ips.into_iter().collect(),
            // Not recorded: the scheduling policy always comes from the
            // configuration, applied over the recorded machines on restore.
            scheduler: Scheduler::default(),
            quarantine_after_reports: 0,
        }
    }
}

/// Everything durable about a controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Records {
    /// The next job ID to hand out (never goes back).
    pub next_job_id: u64,
    /// The machines, highest priority first.
    pub machines: Vec<MachineRecord>,
    /// Live jobs and jobs being torn down (state `DESTROYED`), by ID.
    pub jobs: Vec<Job>,
    /// Remembered reasons of destroyed jobs, oldest first, with their
    /// insertion numbers: `(number, job, reason)`.
    pub retired: Vec<RetiredEntry>,
    /// Boards out of service and issue reports.
    #[serde(default)]
    pub boards: BoardRecords,
    /// Finished jobs' usage, by job ID (never pruned).
    #[serde(default)]
    pub usage: Vec<UsageRecord>,
    /// Freed boards still waiting out `seconds_before_free`, by job.
    #[serde(default)]
    pub cooling: Vec<CoolingBoards>,
    /// What the v2 API still shows of destroyed jobs, by job ID.
    #[serde(default)]
    pub tombstones: Vec<(u64, Tombstone)>,
}

/// The records changed since the last
/// [`Controller::take_record_changes`](crate::core::controller::Controller::take_record_changes).
///
/// Serializable because the store's change journal (`store::journal`)
/// writes change sets as they are; empty parts are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordChanges {
    /// The next job ID.
    pub next_job_id: u64,
    /// Every machine, if any machine changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machines: Option<Vec<MachineRecord>>,
    /// Changed jobs: the new record, or `None` if the job is gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<(u64, Option<Job>)>,
    /// Reasons recorded or changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredEntry>,
    /// Reasons numbered below this are forgotten (evicted).
    pub retired_floor: u64,
    /// Every board record, if any changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<BoardRecords>,
    /// Usage of jobs finished since (never forgotten).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<UsageRecord>,
    /// Changed records of boards waiting to be freed, by job: the new
    /// record, or `None` if the wait is over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cooling: Vec<(u64, Option<CoolingBoards>)>,
    /// Tombstones recorded (`Some`) or forgotten (`None`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<TombstoneChange>,
}

impl RecordChanges {
    /// Whether nothing but the counters is in it.
    pub fn is_empty(&self) -> bool {
        self.machines.is_none()
            && self.jobs.is_empty()
            && self.retired.is_empty()
            && self.boards.is_none()
            && self.usage.is_empty()
            && self.cooling.is_empty()
            && self.tombstones.is_empty()
    }
}
