//! Finished jobs' usage records, held compactly: the history is never
//! pruned, so its size per job is the server's memory per job ever run.
//!
//! Why not a `BTreeMap<u64, UsageRecord>`: measured under `massif`, each
//! record took about 850 bytes there (a 150-byte record by value in B-tree
//! leaves that job IDs arriving in order leave half full, plus a heap block
//! for each of its strings), which made a server that had run 130,000 jobs
//! use 160 MB, and twice that with a state file (the store's rollback
//! mirror keeps a second history). Here a record is one 64-byte row in a
//! vector sorted by job ID, and its strings (owners, groups, machines and
//! reasons repeat from job to job) are kept once each in an [`Interner`].

use crate::core::usage::UsageRecord;
use std::collections::HashMap;
use std::num::NonZeroU32;

/// Each distinct string once, named by a number.
#[derive(Debug, Clone, Default)]
struct Interner {
    strings: Vec<Box<str>>,
    numbers: HashMap<Box<str>, NonZeroU32>,
}

impl Interner {
    /// The number of `s`, adding it if new.
    fn intern(&mut self, s: &str) -> NonZeroU32 {
        if let Some(&n) = self.numbers.get(s) {
            return n;
        }
        // Numbers start at 1 (`None` is free in an `Option<NonZeroU32>`);
        // four thousand million distinct strings do not fit in memory anyway.
        let n = u32::try_from(self.strings.len() + 1)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(NonZeroU32::MAX);
        self.strings.push(s.into());
        self.numbers.insert(s.into(), n);
        n
    }

    fn get(&self, n: NonZeroU32) -> &str {
        self.strings
            .get(n.get() as usize - 1)
            .map_or("", |s| s.as_ref())
    }
}

/// One record, its strings by number.
#[derive(Debug, Clone, Copy)]
struct Row {
    job_id: u64,
    start_time: f64,
    finish_time: Option<f64>,
    board_seconds: f64,
    boards: u32,
    owner: NonZeroU32,
    group: Option<NonZeroU32>,
    machine: Option<NonZeroU32>,
    reason: Option<NonZeroU32>,
    legacy: bool,
}

/// The records, by job ID.
#[derive(Debug, Clone, Default)]
pub struct UsageHistory {
    rows: Vec<Row>,
    strings: Interner,
}

impl UsageHistory {
    /// Adds `record`, replacing (and returning) the one of the same job.
    pub fn insert(&mut self, record: &UsageRecord) -> Option<UsageRecord> {
        let row = Row {
            job_id: record.job_id,
            start_time: record.start_time,
            finish_time: record.finish_time,
            board_seconds: record.board_seconds,
            boards: record.boards,
            owner: self.strings.intern(&record.owner),
            group: record.group.as_deref().map(|s| self.strings.intern(s)),
            machine: record.machine.as_deref().map(|s| self.strings.intern(s)),
            reason: record.reason.as_deref().map(|s| self.strings.intern(s)),
            legacy: record.legacy,
        };
        // Jobs mostly end in the order they were created: the place is
        // nearly always at or near the end.
        match self.rows.binary_search_by_key(&row.job_id, |r| r.job_id) {
            Ok(at) => {
                let old = self.record(&self.rows[at]);
                self.rows[at] = row;
                Some(old)
            }
            Err(at) => {
                self.rows.insert(at, row);
                None
            }
        }
    }

    /// The record of job `job_id`.
    pub fn get(&self, job_id: u64) -> Option<UsageRecord> {
        let at = self.rows.binary_search_by_key(&job_id, |r| r.job_id).ok()?;
        Some(self.record(&self.rows[at]))
    }

    /// Every record, by job ID.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = UsageRecord> + '_ {
        self.rows.iter().map(|row| self.record(row))
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn record(&self, row: &Row) -> UsageRecord {
        let text = |n: NonZeroU32| self.strings.get(n).to_owned();
        UsageRecord {
            job_id: row.job_id,
            owner: text(row.owner),
            group: row.group.map(text),
            legacy: row.legacy,
            machine: row.machine.map(text),
            boards: row.boards,
            start_time: row.start_time,
            finish_time: row.finish_time,
            board_seconds: row.board_seconds,
            reason: row.reason.map(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn record(job_id: u64, owner: &str, reason: Option<&str>) -> UsageRecord {
        UsageRecord {
            job_id,
            owner: owner.to_owned(),
            group: (job_id % 2 == 0).then(|| "even".to_owned()),
            legacy: job_id % 3 == 0,
            machine: (job_id % 5 != 0).then(|| "m".to_owned()),
            boards: (job_id % 7) as u32,
            start_time: job_id as f64,
            finish_time: (job_id % 4 != 0).then_some(job_id as f64 + 1.5),
            board_seconds: job_id as f64 * 0.25,
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_row_takes_64_bytes_whatever_its_strings() {
        assert_eq!(std::mem::size_of::<Row>(), 64);
    }

    #[test]
    fn strings_that_repeat_are_kept_once() {
        let mut h = UsageHistory::default();
        for id in 1..=1000 {
            h.insert(&record(id, "alice", Some("Destroyed by alice")));
        }
        // alice, even, m, the reason.
        assert_eq!(h.strings.strings.len(), 4);
        assert_eq!(h.len(), 1000);
    }

    proptest! {
        #[test]
        fn it_answers_as_a_map_by_job_id_would(
            inserts in proptest::collection::vec(
                (1u64..60, 0usize..4, proptest::option::of(0usize..3)),
                0..120,
            ),
        ) {
            let owners = ["alice", "bob", "", "ünïcode"];
            let reasons = ["done", "Destroyed by bob", ""];
            let mut h = UsageHistory::default();
            let mut model = BTreeMap::new();
            for (id, owner, reason) in inserts {
                let r = record(id, owners[owner], reason.map(|i| reasons[i]));
                let old = h.insert(&r);
                prop_assert_eq!(old, model.insert(id, r));
            }
            prop_assert_eq!(h.len(), model.len());
            prop_assert_eq!(h.iter().collect::<Vec<_>>(), model.values().cloned().collect::<Vec<_>>());
            for id in 0..61 {
                prop_assert_eq!(h.get(id), model.get(&id).cloned());
            }
        }
    }
}
