//! The controller's jobs, live and dying, behind the one door that records
//! what changed.
//!
//! Every change to a job must reach two places: the state file (the job's
//! row is rewritten) and, when a client could see it, the `notify_job`
//! watchers. Marking those by hand at each site is easy to forget, and a
//! forgotten mark silently loses durability or a notification. So the jobs
//! are private here: the only ways to change one are [`JobTable::insert`],
//! [`JobTable::get_mut`] (a guard that marks the job unsaved, and notifies
//! when its state, power or allocation changed, when dropped),
//! [`JobTable::kill`], [`JobTable::remove_dying`] and
//! [`JobTable::touch`] and [`JobTable::bmp_request_finished`]. The two
//! changes that are deliberately neither saved nor notified touch fields
//! that are not recorded: a keepalive touch (on restart every keepalive
//! timer restarts anyway, so a deadline is never shortened) and the count
//! of a job's outstanding BMP requests (a restart issues outstanding power
//! work again); saving them would rewrite a job's row, which for a
//! whole-machine job is ~100 KB, once per BMP of the machine.
//!
//! The same door records each job's history ([`super::job_history`]): a
//! change of state or power made through the guard is appended with the
//! time the controller last gave ([`JobTable::set_clock`]), to the
//! microsecond after the job's creation ([`job_history::change_time`]),
//! and the first
//! time a job becomes ready its wait is counted.

use crate::core::job::Job;
use crate::core::job_history::{self, EndedHistories, StateChange, WaitHistogram};
use spalloc_protocol::JobState;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};

/// Live jobs (queued, powering, ready) and dying ones (destroyed, boards
/// still being powered off), with the sets of jobs changed since they were
/// last taken.
#[derive(Debug, Clone, Default)]
pub struct JobTable {
    live: BTreeMap<u64, Job>,
    dying: BTreeMap<u64, Job>,
    /// Jobs whose record changed (or that are gone) since the last
    /// [`JobTable::take_unsaved`].
    unsaved: BTreeSet<u64>,
    /// Jobs a `notify_job` watcher should hear about since the last
    /// [`JobTable::take_notify`].
    notify: BTreeSet<u64>,
    /// Now, as of the controller's current call: the time of history entries.
    clock: f64,
    /// Histories of recently destroyed jobs.
    ended: EndedHistories,
    /// Completed waits (creation to first ready).
    waits: WaitHistogram,
}

/// What a client sees of a job: a change to it is notified.
fn visible(job: &Job) -> (JobState, Option<bool>, bool) {
    (job.state, job.power, job.allocation.is_some())
}

/// A job borrowed for change. When dropped it marks the job unsaved, and to
/// be notified if its state, power or allocation changed.
pub struct JobMut<'a> {
    job: &'a mut Job,
    before: (JobState, Option<bool>, bool),
    unsaved: &'a mut BTreeSet<u64>,
    notify: &'a mut BTreeSet<u64>,
    clock: f64,
    waits: &'a mut WaitHistogram,
}

impl Deref for JobMut<'_> {
    type Target = Job;
    fn deref(&self) -> &Job {
        self.job
    }
}

impl DerefMut for JobMut<'_> {
    fn deref_mut(&mut self) -> &mut Job {
        self.job
    }
}

impl Drop for JobMut<'_> {
    fn drop(&mut self) {
        self.unsaved.insert(self.job.id);
        if visible(self.job) != self.before {
            self.notify.insert(self.job.id);
        }
        let (state, power) = (self.job.state, self.job.power);
        if (state, power) != (self.before.0, self.before.1) {
            if state == JobState::Ready && !job_history::was_ready(&self.job.history) {
                self.waits.observe(self.clock - self.job.start_time);
            }
            job_history::record(
                &mut self.job.history,
                StateChange {
                    state,
                    power,
                    time: job_history::change_time(self.job.start_time, self.clock),
                },
            );
        }
    }
}

impl JobTable {
    /// Adds a new live job (saved and notified).
    pub fn insert(&mut self, job: Job) {
        self.unsaved.insert(job.id);
        self.notify.insert(job.id);
        self.live.insert(job.id, job);
    }

    /// Adds a job being torn down, as found in the records on restore.
    pub fn insert_dying(&mut self, job: Job) {
        self.unsaved.insert(job.id);
        self.dying.insert(job.id, job);
    }

    /// A live or dying job, for change.
    pub fn get_mut(&mut self, id: u64) -> Option<JobMut<'_>> {
        let job = match self.live.get_mut(&id) {
            Some(job) => job,
            None => self.dying.get_mut(&id)?,
        };
        Some(JobMut {
            before: visible(job),
            job,
            unsaved: &mut self.unsaved,
            notify: &mut self.notify,
            clock: self.clock,
            waits: &mut self.waits,
        })
    }

    /// Resets a live job's keepalive timer (neither saved nor notified; see
    /// the module documentation).
    pub fn touch(&mut self, id: u64, host: Option<&str>, now: f64) -> Option<&Job> {
        let job = self.live.get_mut(&id)?;
        job.touch(host, now);
        Some(job)
    }

    /// Counts one of a live or dying job's BMP requests as finished and
    /// returns how many are still outstanding (neither saved nor notified;
    /// see the module documentation). A change this leads to, such as the
    /// job becoming ready, goes through [`JobTable::get_mut`].
    pub fn bmp_request_finished(&mut self, id: u64) -> Option<u32> {
        let job = match self.live.get_mut(&id) {
            Some(job) => job,
            None => self.dying.get_mut(&id)?,
        };
        job.bmp_requests_until_ready = job.bmp_requests_until_ready.saturating_sub(1);
        Some(job.bmp_requests_until_ready)
    }

    /// Takes a live job out of the live set (destroyed): it is notified and
    /// its record rewritten or deleted. Returns it, so that the caller can
    /// keep it as dying with [`JobTable::insert_dying`] (its boards still
    /// being powered off) or drop it.
    pub fn kill(&mut self, id: u64) -> Option<Job> {
        let mut job = self.live.remove(&id)?;
        self.unsaved.insert(id);
        self.notify.insert(id);
        job_history::record(
            &mut job.history,
            StateChange {
                state: JobState::Destroyed,
                power: job.power,
                time: job_history::change_time(job.start_time, self.clock),
            },
        );
        self.ended.insert(id, job.history.clone());
        Some(job)
    }

    /// Sets the time of the changes that follow (the controller's `now`).
    pub fn set_clock(&mut self, now: f64) {
        self.clock = now;
    }

    /// A job's history: a live or dying job's own, else a recently
    /// destroyed one's (not kept across a restart).
    pub fn history(&self, id: u64) -> Option<&[StateChange]> {
        self.any(id)
            .map(|j| j.history.as_slice())
            .or_else(|| self.ended.get(id))
    }

    /// The completed waits so far.
    pub fn waits(&self) -> &WaitHistogram {
        &self.waits
    }

    /// Forgets a dying job whose boards are released.
    pub fn remove_dying(&mut self, id: u64) -> Option<Job> {
        let job = self.dying.remove(&id)?;
        self.unsaved.insert(id);
        Some(job)
    }

    /// A live job.
    pub fn live(&self, id: u64) -> Option<&Job> {
        self.live.get(&id)
    }

    /// Whether a job is live.
    pub fn is_live(&self, id: u64) -> bool {
        self.live.contains_key(&id)
    }

    /// A dying job.
    pub fn dying(&self, id: u64) -> Option<&Job> {
        self.dying.get(&id)
    }

    /// The live jobs by ID.
    pub fn live_map(&self) -> &BTreeMap<u64, Job> {
        &self.live
    }

    /// Live jobs, oldest first.
    pub fn live_jobs(&self) -> impl Iterator<Item = &Job> {
        self.live.values()
    }

    /// Dying jobs, oldest first.
    pub fn dying_jobs(&self) -> impl Iterator<Item = &Job> {
        self.dying.values()
    }

    /// A live or dying job.
    pub fn any(&self, id: u64) -> Option<&Job> {
        self.live.get(&id).or_else(|| self.dying.get(&id))
    }

    /// Whether there are no jobs at all.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.dying.is_empty()
    }

    /// The jobs whose records changed since the last call.
    pub fn take_unsaved(&mut self) -> BTreeSet<u64> {
        std::mem::take(&mut self.unsaved)
    }

    /// Whether any job's record changed since [`JobTable::take_unsaved`].
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty()
    }

    /// The jobs to notify since the last call.
    pub fn take_notify(&mut self) -> BTreeSet<u64> {
        std::mem::take(&mut self.notify)
    }

    /// Marks a job to be notified (a job destroyed on restore that was
    /// never put back in the table).
    pub fn notify_gone(&mut self, id: u64) {
        self.unsaved.insert(id);
        self.notify.insert(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allocator::{AllocRequest, AllocShape};
    use crate::core::job::{JobSpec, Target};

    fn job(id: u64) -> Job {
        let spec = JobSpec {
            owner: "me".into(),
            keepalive: Some(60.0),
            target: Target::Tags(BTreeSet::new()),
            request: AllocRequest {
                shape: AllocShape::Board(None),
                min_ratio: 0.0,
                max_dead_boards: None,
                max_dead_links: None,
                require_torus: false,
                avoid_boards: Default::default(),
            },
            impossible: false,
            args: Vec::new(),
            kwargs: serde_json::Map::new(),
        };
        Job::new(id, &spec, None, 0.0)
    }

    #[test]
    fn every_change_through_the_guard_is_saved_but_only_visible_ones_notified() {
        let mut t = JobTable::default();
        t.insert(job(1));
        assert_eq!(t.take_unsaved(), [1].into());
        assert_eq!(t.take_notify(), [1].into());
        if let Some(mut j) = t.get_mut(1) {
            j.bmp_requests_until_ready += 1;
        }
        assert_eq!(t.take_unsaved(), [1].into());
        assert!(t.take_notify().is_empty(), "nothing a client sees changed");
        if let Some(mut j) = t.get_mut(1) {
            j.state = JobState::Ready;
        }
        assert_eq!(t.take_notify(), [1].into());
    }

    #[test]
    fn state_changes_are_recorded_at_the_clock_and_the_first_ready_counts_one_wait() {
        let mut t = JobTable::default();
        t.insert(job(1));
        t.set_clock(3.0);
        if let Some(mut j) = t.get_mut(1) {
            j.state = JobState::Power;
            j.power = Some(true);
        }
        if let Some(mut j) = t.get_mut(1) {
            j.bmp_requests_until_ready = 0;
        }
        t.set_clock(5.0);
        if let Some(mut j) = t.get_mut(1) {
            j.state = JobState::Ready;
        }
        t.set_clock(9.0);
        for state in [JobState::Power, JobState::Ready] {
            if let Some(mut j) = t.get_mut(1) {
                j.state = state;
            }
        }
        let states: Vec<(JobState, f64)> = t
            .history(1)
            .expect("history")
            .iter()
            .map(|c| (c.state, c.time))
            .collect();
        assert_eq!(
            states,
            [
                (JobState::Queued, 0.0),
                (JobState::Power, 3.0),
                (JobState::Ready, 5.0),
                (JobState::Power, 9.0),
                (JobState::Ready, 9.0)
            ],
            "one entry per change, none for a change nobody sees"
        );
        assert_eq!(t.waits().count(), 1, "only the first ready ends a wait");
        assert_eq!(t.waits().sum(), 5.0);
    }

    #[test]
    fn a_killed_jobs_history_ends_destroyed_and_outlives_the_job() {
        let mut t = JobTable::default();
        t.insert(job(1));
        t.set_clock(7.0);
        drop(t.kill(1));
        let history = t.history(1).expect("remembered");
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].state, JobState::Destroyed);
        assert_eq!(history[1].time, 7.0);
    }

    #[test]
    fn keepalive_touches_are_neither_saved_nor_notified() {
        let mut t = JobTable::default();
        t.insert(job(1));
        t.take_unsaved();
        t.take_notify();
        assert!(t.touch(1, Some("h"), 5.0).is_some());
        assert!(!t.has_unsaved());
        assert!(t.take_notify().is_empty());
    }

    #[test]
    fn a_finished_bmp_request_is_counted_but_neither_saved_nor_notified() {
        let mut t = JobTable::default();
        t.insert(job(1));
        if let Some(mut j) = t.get_mut(1) {
            j.bmp_requests_until_ready = 2;
        }
        t.take_unsaved();
        t.take_notify();
        assert_eq!(t.bmp_request_finished(1), Some(1));
        assert_eq!(t.bmp_request_finished(1), Some(0));
        assert_eq!(t.bmp_request_finished(1), Some(0), "never below zero");
        assert!(!t.has_unsaved());
        assert!(t.take_notify().is_empty());
        assert_eq!(t.bmp_request_finished(2), None);
    }

    #[test]
    fn a_killed_job_is_saved_and_notified_and_its_release_saved() {
        let mut t = JobTable::default();
        t.insert(job(1));
        t.take_unsaved();
        t.take_notify();
        let dead = t.kill(1).expect("live");
        t.insert_dying(dead);
        assert_eq!(t.take_notify(), [1].into());
        assert_eq!(t.take_unsaved(), [1].into());
        assert!(t.remove_dying(1).is_some());
        assert_eq!(t.take_unsaved(), [1].into());
        assert!(t.is_empty());
    }
}
