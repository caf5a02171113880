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
    /// Each remembered job's insertion number (for incremental saving).
    seqs: HashMap<u64, u64>,
    /// How many distinct jobs were ever inserted: the next insertion number.
    inserted: u64,
    /// Jobs inserted or updated since the last [`RetiredJobs::take_unsaved`].
    unsaved: Vec<u64>,
}

/// One remembered reason with its insertion number, as saved.
pub type RetiredEntry = (u64, u64, Option<String>);

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
            self.seqs.insert(job_id, self.inserted);
            self.inserted += 1;
        }
        self.unsaved.push(job_id);
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
                self.seqs.remove(&old);
            }
        }
    }

    /// The reason of a remembered job: `Some(reason)` if remembered (the
    /// reason itself may be `None`).
    pub fn get(&self, job_id: u64) -> Option<&Option<String>> {
        self.reasons.get(&job_id)
    }

    /// `(insertion number, job, reason)` of the jobs inserted or updated
    /// since the last call (every remembered job if `all`), oldest first.
    pub fn take_unsaved(&mut self, all: bool) -> Vec<RetiredEntry> {
        let ids = std::mem::take(&mut self.unsaved);
        let mut out: Vec<RetiredEntry> = if all {
            self.order.iter().filter_map(|id| self.entry(*id)).collect()
        } else {
            ids.into_iter().filter_map(|id| self.entry(id)).collect()
        };
        out.sort_by_key(|e| e.0);
        out.dedup_by_key(|e| e.0);
        out
    }

    fn entry(&self, id: u64) -> Option<RetiredEntry> {
        Some((*self.seqs.get(&id)?, id, self.reasons.get(&id)?.clone()))
    }

    /// The lowest insertion number still remembered: saved entries below it
    /// have been evicted.
    pub fn floor(&self) -> u64 {
        self.inserted - self.order.len() as u64
    }

    /// Every remembered reason as `(insertion number, job, reason)`, oldest
    /// first (what a state file holds).
    pub fn entries(&self) -> Vec<RetiredEntry> {
        self.order.iter().filter_map(|id| self.entry(*id)).collect()
    }

    /// Puts back reasons read from a state file (see
    /// [`RetiredJobs::entries`]), keeping their insertion numbers so that
    /// later ones follow on. They count as saved.
    pub fn restore(&mut self, mut entries: Vec<RetiredEntry>) {
        entries.sort_by_key(|e| e.0);
        for (seq, id, reason) in entries {
            if self.reasons.insert(id, reason).is_none() {
                self.order.push_back(id);
            }
            self.seqs.insert(id, seq);
            self.inserted = self.inserted.max(seq + 1);
        }
        self.trim();
    }

    /// Whether reasons were recorded since the last
    /// [`RetiredJobs::take_unsaved`].
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty()
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
        assert_eq!(r.floor(), 2);
        assert_eq!(r.take_unsaved(false), vec![(2, 3, Some("c".into()))]);
        assert_eq!(r.take_unsaved(false), vec![]);
        r.insert(3, Some("d".into()));
        assert_eq!(r.take_unsaved(true), vec![(2, 3, Some("d".into()))]);
        let mut zero = RetiredJobs::new(0);
        zero.insert(1, None);
        assert!(zero.get(1).is_none());
    }
}
