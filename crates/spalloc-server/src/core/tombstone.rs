//! What the v2 REST API still shows of a destroyed job: its owner (who alone,
//! with administrators, may read it), times and original request, for a
//! bounded number of jobs.
//!
//! The retired-reason cache ([`super::retired`]) answers the legacy
//! protocol and is durable; tombstones are in memory only, so after a
//! restart the v2 API no longer shows jobs destroyed before it (404), while
//! the legacy `get_job_state` still gives their reasons.

use serde_json::Value;
use std::collections::BTreeMap;

/// A destroyed job, as the v2 API describes it.
#[derive(Debug, Clone, PartialEq)]
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

/// Tombstones of the most recently destroyed jobs, oldest (lowest ID) evicted first.
#[derive(Debug, Clone, Default)]
pub struct Tombstones {
    by_job: BTreeMap<u64, Tombstone>,
    capacity: usize,
}

impl Tombstones {
    /// Holds at most `capacity` tombstones.
    pub fn new(capacity: usize) -> Tombstones {
        Tombstones {
            by_job: BTreeMap::new(),
            capacity,
        }
    }

    /// Records a destroyed job, evicting the oldest beyond the capacity.
    pub fn insert(&mut self, job_id: u64, tombstone: Tombstone) {
        self.by_job.insert(job_id, tombstone);
        while self.by_job.len() > self.capacity {
            self.by_job.pop_first();
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
}
