//! A copy, in memory, of what the state file holds (its tables and its
//! change journal together), kept by the writer so that a commit the disk
//! refuses can be rolled back without reading the failing disk.

use crate::core::board_service::BoardRecords;
use crate::core::cooling::CoolingBoards;
use crate::core::job::Job;
use crate::core::records::{MachineRecord, RecordChanges, Records};
use crate::core::usage_history::UsageHistory;
use std::collections::BTreeMap;

/// What the file holds, as of the last change applied to it.
#[derive(Debug, Default, Clone)]
pub struct Mirror {
    next_job_id: u64,
    machines: Vec<MachineRecord>,
    jobs: BTreeMap<u64, Job>,
    retired: BTreeMap<u64, (u64, Option<String>)>,
    boards: BoardRecords,
    usage: UsageHistory,
    cooling: BTreeMap<u64, CoolingBoards>,
    tombstones: BTreeMap<u64, crate::core::tombstone::Tombstone>,
}

impl Mirror {
    /// A mirror of `r`. Built from a borrow, so that a server starting on a
    /// big state file holds the records it read once (for the controller)
    /// beside this compact copy, not two copies of them.
    pub fn of(r: &Records) -> Mirror {
        Mirror {
            next_job_id: r.next_job_id,
            machines: r.machines.clone(),
            jobs: r.jobs.iter().map(|j| (j.id, j.clone())).collect(),
            retired: r
                .retired
                .iter()
                .map(|(seq, id, reason)| (*seq, (*id, reason.clone())))
                .collect(),
            boards: r.boards.clone(),
            usage: r.usage.iter().fold(UsageHistory::default(), |mut h, u| {
                h.insert(u);
                h
            }),
            cooling: r.cooling.iter().map(|e| (e.job_id, e.clone())).collect(),
            tombstones: r.tombstones.iter().cloned().collect(),
        }
    }

    /// Applies one change set (as [`super::Store::commit`] writes it).
    pub fn apply(&mut self, changes: &RecordChanges, all: bool) {
        if all {
            self.jobs.clear();
            self.retired.clear();
            self.cooling.clear();
            self.tombstones.clear();
        }
        for (id, tombstone) in &changes.tombstones {
            match tombstone {
                Some(t) => self.tombstones.insert(*id, t.clone()),
                None => self.tombstones.remove(id),
            };
        }
        self.next_job_id = changes.next_job_id;
        if let Some(machines) = &changes.machines {
            self.machines.clone_from(machines);
        }
        if let Some(boards) = &changes.boards {
            self.boards.clone_from(boards);
        }
        for record in &changes.usage {
            self.usage.insert(record);
        }
        for (id, job) in &changes.jobs {
            match job {
                Some(job) => self.jobs.insert(*id, job.clone()),
                None => self.jobs.remove(id),
            };
        }
        for (id, entry) in &changes.cooling {
            match entry {
                Some(entry) => self.cooling.insert(*id, entry.clone()),
                None => self.cooling.remove(id),
            };
        }
        if !changes.retired.is_empty() {
            for (seq, id, reason) in &changes.retired {
                self.retired.insert(*seq, (*id, reason.clone()));
            }
            self.retired = self.retired.split_off(&changes.retired_floor);
        }
    }

    /// The records it holds.
    pub fn records(&self) -> Records {
        Records {
            next_job_id: self.next_job_id,
            machines: self.machines.clone(),
            jobs: self.jobs.values().cloned().collect(),
            retired: self
                .retired
                .iter()
                .map(|(seq, (id, reason))| (*seq, *id, reason.clone()))
                .collect(),
            boards: self.boards.clone(),
            usage: self.usage.iter().collect(),
            cooling: self.cooling.values().cloned().collect(),
            tombstones: self
                .tombstones
                .iter()
                .map(|(id, t)| (*id, t.clone()))
                .collect(),
        }
    }
}
