//! Remembering why destroyed jobs were destroyed, for a bounded number of jobs.
//!
//! This cache only answers `get_job_state` for dead jobs. Unlike the
//! reference (bug B2), nothing else depends on it: a job whose boards are
//! still being powered off is tracked elsewhere, so evicting its reason early
//! can never leak boards.

use std::collections::{HashMap, VecDeque};

/// Reasons of destroyed jobs, oldest evicted first.
#[derive(Debug, Clone, Default)]
pub struct RetiredJobs {
    order: VecDeque<u64>,
    reasons: HashMap<u64, Option<String>>,
    capacity: usize,
}

impl RetiredJobs {
    /// A cache holding at most `capacity` reasons.
    pub fn new(capacity: usize) -> Self {
        RetiredJobs {
            capacity,
            ..Default::default()
        }
    }

    /// Records a destroyed job's reason, evicting the oldest if full.
    pub fn insert(&mut self, job_id: u64, reason: Option<String>) {
        if self.reasons.insert(job_id, reason).is_none() {
            self.order.push_back(job_id);
        }
        self.trim();
    }

    /// Changes the capacity, evicting at once if it shrinks.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.trim();
    }

    fn trim(&mut self) {
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.reasons.remove(&old);
            }
        }
    }

    /// The reason of a remembered job: `Some(reason)` if remembered (the
    /// reason itself may be `None`).
    pub fn get(&self, job_id: u64) -> Option<&Option<String>> {
        self.reasons.get(&job_id)
    }

    /// Remembered jobs, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Option<String>)> {
        self.order
            .iter()
            .filter_map(|id| self.reasons.get(id).map(|r| (*id, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_first_and_on_shrink() {
        let mut r = RetiredJobs::new(2);
        r.insert(1, Some("a".into()));
        r.insert(2, None);
        r.insert(3, Some("c".into()));
        assert!(r.get(1).is_none());
        assert_eq!(r.get(2), Some(&None));
        r.set_capacity(1);
        assert!(r.get(2).is_none());
        assert_eq!(r.get(3), Some(&Some("c".into())));
        let mut zero = RetiredJobs::new(0);
        zero.insert(1, None);
        assert!(zero.get(1).is_none());
    }
}
