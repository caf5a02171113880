//! Boards waiting out `seconds_before_free`, as records.
//!
//! When a destroyed job's boards are powered off, its allocation is freed,
//! but the boards become allocatable only `seconds_before_free` later (so
//! that a board is never powered on again straight after its power-off).
//! The job's own record is gone by then, so without a record of their own
//! those boards would be free at once after a restart, cutting the wait.
//! Each such allocation is recorded here with the time it was freed; a
//! restore puts the boards back in the allocator as freed at that time, so
//! a restart neither cuts nor extends the wait. A record is dropped once
//! its wait is over (checked on every tick); one left over is harmless (a
//! restore frees its boards at once).

use crate::core::allocator::{AllocShape, Claim};
use crate::core::coordinates::Board;
use crate::core::job::Job;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One freed allocation whose boards are not yet allocatable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoolingBoards {
    /// The job that held them (the record's key).
    pub job_id: u64,
    /// Its machine.
    pub machine: String,
    /// A single board of a shared triad (`true`), or a rectangle of triads.
    pub single_board: bool,
    /// The rectangle of triads `[x, y, width, height]`.
    pub triads: [u32; 4],
    /// The boards.
    pub boards: BTreeSet<Board>,
    /// Unix time of the free.
    pub freed_at: f64,
}

impl CoolingBoards {
    /// The allocation of `job` (which holds boards), freed at `now`.
    pub fn of(job: &Job, now: f64) -> Option<CoolingBoards> {
        let a = job.allocation.as_ref()?;
        Some(CoolingBoards {
            job_id: job.id,
            machine: a.machine.clone(),
            single_board: claim_of(job).is_some_and(|(_, claim)| matches!(claim, Claim::Board(_))),
            triads: a.triads,
            boards: a.boards.clone(),
            freed_at: now,
        })
    }

    /// What the allocator must hold for these boards on restore.
    pub fn claim(&self) -> Claim {
        match self.boards.iter().next() {
            Some(b) if self.single_board && self.boards.len() == 1 => Claim::Board(*b),
            _ => Claim::Triads(self.triads, self.boards.clone()),
        }
    }

    /// Whether the wait is over at `now`, for the allocator's rule
    /// (`now - freed_at >= seconds_before_free`).
    pub fn is_over(&self, now: f64, seconds_before_free: f64) -> bool {
        now - self.freed_at >= seconds_before_free
    }
}

/// The machine and allocator claim of a job holding boards: one board of a
/// shared triad for a single-board job, else its rectangle of triads.
pub fn claim_of(job: &Job) -> Option<(String, Claim)> {
    let a = job.allocation.as_ref()?;
    let claim = match (job.request.shape, a.boards.iter().next()) {
        (AllocShape::Board(_), Some(b)) if a.boards.len() == 1 => Claim::Board(*b),
        _ => Claim::Triads(a.triads, a.boards.clone()),
    };
    Some((a.machine.clone(), claim))
}

/// The allocations waiting out their delay, by job ID, with those changed
/// since they were last taken for the store.
#[derive(Debug, Clone, Default)]
pub struct Cooling {
    entries: BTreeMap<u64, CoolingBoards>,
    unsaved: BTreeSet<u64>,
}

impl Cooling {
    /// Records a freed allocation (none with no delay: nothing to carry).
    pub fn add(&mut self, entry: CoolingBoards, seconds_before_free: f64) {
        if seconds_before_free <= 0.0 {
            return;
        }
        self.unsaved.insert(entry.job_id);
        self.entries.insert(entry.job_id, entry);
    }

    /// Drops the records whose wait is over at `now`.
    pub fn expire(&mut self, now: f64, seconds_before_free: f64) {
        let over: Vec<u64> = self
            .entries
            .values()
            .filter(|e| e.is_over(now, seconds_before_free))
            .map(|e| e.job_id)
            .collect();
        for id in over {
            self.entries.remove(&id);
            self.unsaved.insert(id);
        }
    }

    /// Puts back records read on restore (they are what the file holds).
    pub fn restore(&mut self, entries: impl IntoIterator<Item = CoolingBoards>) {
        self.entries = entries.into_iter().map(|e| (e.job_id, e)).collect();
        self.unsaved.clear();
    }

    /// Forgets one record (its boards could not be put back).
    pub fn forget(&mut self, job_id: u64) {
        if self.entries.remove(&job_id).is_some() {
            self.unsaved.insert(job_id);
        }
    }

    /// Every record, by job ID.
    pub fn entries(&self) -> Vec<CoolingBoards> {
        self.entries.values().cloned().collect()
    }

    /// Whether a record changed since [`Cooling::take_unsaved`].
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty()
    }

    /// The records changed since the last call (the new record, or `None`
    /// if gone); with `all`, every record.
    pub fn take_unsaved(&mut self, all: bool) -> Vec<(u64, Option<CoolingBoards>)> {
        let unsaved = std::mem::take(&mut self.unsaved);
        if all {
            return self
                .entries
                .iter()
                .map(|(id, e)| (*id, Some(e.clone())))
                .collect();
        }
        unsaved
            .into_iter()
            .map(|id| (id, self.entries.get(&id).cloned()))
            .collect()
    }
}
