//! When each job changed state: queued, powering (on or off), ready,
//! destroyed, with the time of each change, for the dashboard's job page
//! and for the wait-time metric.
//!
//! The history is recorded by the one door through which jobs change
//! ([`super::job_table::JobTable`]), so no call site can forget it. It lives
//! in the job's record ([`super::job::Job::history`]), so it is saved with
//! the job and survives a restart. Once a job is destroyed its record
//! goes, so its history moves to [`EndedHistories`], a bounded memory of
//! the most recently destroyed jobs, which (like the v2 API's tombstones)
//! is not kept across a restart: the destroyed job's reason is, in the
//! retired-reason cache.
//!
//! Completed waits (creation to first ready) are counted in a fixed-bucket
//! [`WaitHistogram`], which `/metrics` exports: the core stays free of any
//! metrics library and of global state.

use spalloc_protocol::JobState;
use std::collections::BTreeMap;

/// One change of a job's state or power. Its durable form (an array, the
/// time as microseconds after the job's creation) is in
/// [`super::job_record`].
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The state it entered.
    pub state: JobState,
    /// The power it was asked for (`None` while queued).
    pub power: Option<bool>,
    /// Unix time of the change: a whole number of microseconds after the
    /// job's creation (see [`change_time`]).
    pub time: f64,
}

/// The time a change at `now` is recorded with, for a job created at
/// `start`: rounded to a whole number of microseconds after the creation.
/// Nothing reads history times more finely, and a whole number is what
/// lets the job's record write the time as a short integer
/// ([`micros_after`]) and read back exactly the same time.
pub fn change_time(start: f64, now: f64) -> f64 {
    let micros = ((now - start) * 1e6).round();
    if micros.is_finite() && micros.abs() < MAX_EXACT_MICROS {
        start + micros / 1e6
    } else {
        now
    }
}

/// Whole numbers of microseconds beyond this are not all exact in an
/// `f64` (2^53).
const MAX_EXACT_MICROS: f64 = 9_007_199_254_740_992.0;

/// `time` as whole microseconds after `start`, if [`at_micros`] gives it
/// back exactly (as it does for every time [`change_time`] gave).
pub fn micros_after(start: f64, time: f64) -> Option<i64> {
    let micros = ((time - start) * 1e6).round();
    if !(micros.is_finite() && micros.abs() < MAX_EXACT_MICROS) {
        return None;
    }
    // Exact: |micros| < 2^53 is a whole number.
    let micros = micros as i64;
    (at_micros(start, micros) == time).then_some(micros)
}

/// The time `micros` microseconds after `start`.
pub fn at_micros(start: f64, micros: i64) -> f64 {
    start + micros as f64 / 1e6
}

/// How many destroyed jobs' histories are remembered (as many as the v2
/// API's tombstones by default).
pub const MAX_ENDED_HISTORIES: usize = 10_000;

/// The histories of the most recently destroyed jobs, lowest ID evicted
/// first.
#[derive(Debug, Clone, Default)]
pub struct EndedHistories {
    by_job: BTreeMap<u64, Vec<StateChange>>,
}

impl EndedHistories {
    /// Remembers a destroyed job's history.
    pub fn insert(&mut self, job_id: u64, history: Vec<StateChange>) {
        self.by_job.insert(job_id, history);
        while self.by_job.len() > MAX_ENDED_HISTORIES {
            self.by_job.pop_first();
        }
    }

    /// A destroyed job's history, if still remembered.
    pub fn get(&self, job_id: u64) -> Option<&[StateChange]> {
        self.by_job.get(&job_id).map(Vec::as_slice)
    }
}

/// Upper bounds of the completed-wait buckets, in seconds: from one second
/// to about three days, each four times the last.
pub const WAIT_BUCKETS: [f64; 10] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0,
];

/// A histogram of how long jobs waited from creation until first ready,
/// since the server started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitHistogram {
    /// Waits in each bucket of [`WAIT_BUCKETS`] (not cumulative); the last
    /// entry counts the waits longer than every bound.
    counts: [u64; WAIT_BUCKETS.len() + 1],
    /// The sum of the waits, in seconds.
    sum: f64,
}

impl WaitHistogram {
    /// Counts one completed wait.
    pub fn observe(&mut self, seconds: f64) {
        let seconds = seconds.max(0.0);
        let bucket = WAIT_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(WAIT_BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum += seconds;
    }

    /// How many waits were counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the waits, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, count)` per bucket (not cumulative), ending with
    /// `(+inf, waits longer than every bound)`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        WAIT_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }
}

/// The most changes one job's history keeps: its creation and the latest
/// others (a client toggling power in a loop must not grow a record
/// without end).
pub const MAX_CHANGES: usize = 64;

/// Appends a change to a history, dropping the oldest change after the
/// creation when the history is full.
pub fn record(history: &mut Vec<StateChange>, change: StateChange) {
    if history.len() >= MAX_CHANGES {
        history.remove(1);
    }
    history.push(change);
}

/// Whether `history` already shows the job ready (so a later ready, after
/// a power cycle, is not another completed wait).
pub fn was_ready(history: &[StateChange]) -> bool {
    history.iter().any(|c| c.state == JobState::Ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_fall_in_the_first_bucket_that_holds_them_and_add_up() {
        let mut h = WaitHistogram::default();
        h.observe(0.5);
        h.observe(4.0);
        h.observe(5.0);
        h.observe(1e9);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 0.5 + 4.0 + 5.0 + 1e9);
        let b = h.buckets();
        assert_eq!(b[0], (1.0, 1));
        assert_eq!(b[1], (4.0, 1));
        assert_eq!(b[2], (16.0, 1));
        assert_eq!(b[3], (64.0, 0));
        assert_eq!(b.last(), Some(&(f64::INFINITY, 1)));
    }

    #[test]
    fn a_full_history_keeps_its_creation_and_the_latest_changes() {
        let change = |time: f64| StateChange {
            state: JobState::Power,
            power: Some(true),
            time,
        };
        let mut h = Vec::new();
        for t in 0..(MAX_CHANGES + 10) {
            record(&mut h, change(t as f64));
        }
        assert_eq!(h.len(), MAX_CHANGES);
        assert_eq!(h[0].time, 0.0);
        assert_eq!(h[1].time, 11.0);
        assert_eq!(h.last().map(|c| c.time), Some((MAX_CHANGES + 9) as f64));
    }

    #[test]
    fn a_change_time_is_whole_microseconds_after_creation_and_comes_back_exactly() {
        let start = 1_796_508_491.178_250_3;
        for now in [
            start,
            start + 0.013_712_9,
            start + 7.301_234_749,
            start - 2.5,
        ] {
            let t = change_time(start, now);
            assert!((t - now).abs() <= 0.5e-6, "{t} for {now}");
            let micros = micros_after(start, t).expect("whole microseconds");
            assert_eq!(at_micros(start, micros), t);
        }
        assert_eq!(micros_after(start, start), Some(0));
        assert_eq!(micros_after(1_000.25, 1_000.250_000_4), None);
        assert_eq!(change_time(start, f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn only_the_most_recent_ended_histories_are_kept() {
        let mut e = EndedHistories::default();
        for id in 0..(MAX_ENDED_HISTORIES as u64 + 5) {
            e.insert(id, Vec::new());
        }
        assert!(e.get(0).is_none());
        assert!(e.get(MAX_ENDED_HISTORIES as u64 + 4).is_some());
    }
}
