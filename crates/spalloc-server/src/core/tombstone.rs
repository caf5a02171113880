//! What the v2 REST API still shows of a destroyed job: its owner (who alone,
//! with administrators, may read it), times and original request, for a
//! bounded number of jobs.
//!
//! Tombstones are durable records, like the retired-reason cache
//! ([`super::retired`]) beside them: a job destroyed before a restart still
//! answers 410 with its owner, times and reason afterwards (allocserv keeps
//! them in its database too). Changes are handed to the store as
//! `(job, Some(tombstone))` for one recorded and `(job, None)` for one
//! forgotten ([`Tombstones::take_unsaved`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A destroyed job, as the v2 API describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Who created it.
    pub owner: String,
    /// Unix time of creation.
    pub start_time: f64,
    /// Unix time of destruction.
    pub finish_time: f64,
    /// The v2 create request, `None` for a legacy job.
    pub original_request: Option<Value>,
}

/// A tombstone change for the store: recorded (`Some`) or forgotten (`None`).
pub type TombstoneChange = (u64, Option<Tombstone>);

/// Tombstones of the most recently destroyed jobs, oldest (lowest ID) evicted first.
#[derive(Debug, Clone, Default)]
pub struct Tombstones {
    by_job: BTreeMap<u64, Tombstone>,
    capacity: usize,
    /// Jobs recorded or forgotten since the last [`Tombstones::take_unsaved`].
    unsaved: BTreeSet<u64>,
}

impl Tombstones {
    /// Holds at most `capacity` tombstones.
    pub fn new(capacity: usize) -> Tombstones {
        Tombstones {
            by_job: BTreeMap::new(),
            capacity,
            unsaved: BTreeSet::new(),
        }
    }

    /// Records a destroyed job, evicting the oldest beyond the capacity.
    pub fn insert(&mut self, job_id: u64, tombstone: Tombstone) {
        self.by_job.insert(job_id, tombstone);
        self.unsaved.insert(job_id);
        self.trim();
    }

    /// Changes the capacity, evicting at once if it shrinks.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    fn trim(&mut self) {
        while self.by_job.len() > self.capacity {
            if let Some((old, _)) = self.by_job.pop_first() {
                self.unsaved.insert(old);
            }
        }
    }

    /// A destroyed job's tombstone, if still remembered.
    pub fn get(&self, job_id: u64) -> Option<&Tombstone> {
        self.by_job.get(&job_id)
    }

    /// The remembered jobs' IDs, newest first.
    pub fn ids_newest_first(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_job.keys().rev().copied()
    }

    /// Every tombstone, by job ID (what a state file holds).
    pub fn entries(&self) -> Vec<(u64, Tombstone)> {
        self.by_job.iter().map(|(id, t)| (*id, t.clone())).collect()
    }

    /// The changes since the last call, by job ID; with `all`, every
    /// tombstone (for a store rewritten whole).
    pub fn take_unsaved(&mut self, all: bool) -> Vec<TombstoneChange> {
        let unsaved = std::mem::take(&mut self.unsaved);
        if all {
            return self
                .entries()
                .into_iter()
                .map(|(id, t)| (id, Some(t)))
                .collect();
        }
        unsaved
            .into_iter()
            .map(|id| (id, self.by_job.get(&id).cloned()))
            .collect()
    }

    /// Whether anything changed since the last [`Tombstones::take_unsaved`].
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty()
    }

    /// Puts back tombstones read from a state file; they count as saved
    /// (but any beyond the capacity are forgotten, and that is a change).
    pub fn restore(&mut self, entries: Vec<(u64, Tombstone)>) {
        self.by_job.extend(entries);
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stone(owner: &str) -> Tombstone {
        Tombstone {
            owner: owner.into(),
            start_time: 1.0,
            finish_time: 2.0,
            original_request: None,
        }
    }

    #[test]
    fn the_oldest_tombstones_are_forgotten_first() {
        let mut t = Tombstones::new(2);
        t.insert(1, stone("a"));
        t.insert(3, stone("c"));
        t.insert(2, stone("b"));
        assert!(t.get(1).is_none());
        assert_eq!(t.ids_newest_first().collect::<Vec<_>>(), [3, 2]);
        assert_eq!(t.get(2).map(|s| s.owner.as_str()), Some("b"));
    }

    #[test]
    fn recorded_and_forgotten_tombstones_are_handed_over_once() {
        let mut t = Tombstones::new(2);
        t.insert(1, stone("a"));
        t.insert(2, stone("b"));
        assert_eq!(
            t.take_unsaved(false),
            [(1, Some(stone("a"))), (2, Some(stone("b")))]
        );
        assert!(!t.has_unsaved());
        t.insert(3, stone("c"));
        assert_eq!(t.take_unsaved(false), [(1, None), (3, Some(stone("c")))]);
        assert_eq!(t.take_unsaved(false), []);
        assert_eq!(
            t.take_unsaved(true),
            [(2, Some(stone("b"))), (3, Some(stone("c")))]
        );
    }

    #[test]
    fn restored_tombstones_count_as_saved_and_answer_as_before() {
        let mut t = Tombstones::new(5);
        t.restore(vec![(4, stone("d")), (7, stone("e"))]);
        assert!(!t.has_unsaved());
        assert_eq!(t.get(7), Some(&stone("e")));
        assert_eq!(t.ids_newest_first().collect::<Vec<_>>(), [7, 4]);
    }
}
