//! Boards out of service, and jobs whose boards fail to power on (issue 16,
//! item 3: the core part; the store, the configuration and the admin
//! commands come later).
//!
//! A board out of service is handed to no new job. Jobs that could only
//! run with it stay queued, their reason saying the machine is out of
//! service, and start when it returns; jobs holding it keep it until they
//! end.
//!
//! When a job's boards fail their power-on checks, the reference destroys
//! the job. [`Controller::power_on_failed`] is the failure-aware
//! alternative a shell calls instead of reporting the failure to
//! [`Controller::bmp_request_done`]: the boards that failed go out of
//! service, the job's old boards are powered off and freed in the
//! background (a [`Teardowns`] entry, not the job's: the job itself goes
//! back to the queue at its old place, ahead of every job created after
//! it, and may get new boards at once).
//!
//! Neither the boards out of service nor the teardowns are recorded yet:
//! after a restart every board is in service, and boards that were being
//! powered off are free.

use crate::core::controller::{Controller, REASON_NO_MACHINE};
use crate::core::coordinates::Board;
use crate::core::job_queue::ServiceError;
use spalloc_protocol::JobState;
use std::collections::{BTreeMap, BTreeSet};
use tracing::warn;

/// A failed job's old boards being powered off.
#[derive(Debug, Clone, PartialEq)]
struct Teardown {
    job_id: u64,
    machine: String,
    boards: BTreeSet<Board>,
    /// BMP requests (power-ons that were in flight, then the power-offs)
    /// still to complete.
    outstanding: BTreeSet<u64>,
}

/// Old boards of jobs whose power-on failed, until they are powered off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Teardowns {
    /// By the ID of the request that failed.
    by_failure: BTreeMap<u64, Teardown>,
    /// BMP request ID → the failure it belongs to.
    requests: BTreeMap<u64, u64>,
}

impl Teardowns {
    /// Every teardown's job, machine and boards (still held).
    pub fn held(&self) -> impl Iterator<Item = (u64, &str, &BTreeSet<Board>)> {
        self.by_failure
            .values()
            .map(|t| (t.job_id, t.machine.as_str(), &t.boards))
    }

    /// Whether no old boards are being powered off.
    pub fn is_empty(&self) -> bool {
        self.by_failure.is_empty()
    }
}

impl Controller {
    /// Takes a live board of a machine out of service (`in_service =
    /// false`) or returns it, then allocates what now fits; watchers of the
    /// machine are told. Unknown machines and boards are refused and
    /// nothing changes.
    pub fn set_board_in_service(
        &mut self,
        machine: &str,
        board: Board,
        in_service: bool,
        now: f64,
    ) -> Result<(), ServiceError> {
        let placed = self.queue.set_in_service(machine, board, in_service, now)?;
        self.changed_machines.insert(machine.to_owned());
        self.on_placed(placed);
        Ok(())
    }

    /// The boards of a machine out of service (`None`: no such machine).
    pub fn boards_out_of_service(&self, machine: &str) -> Option<&BTreeSet<Board>> {
        self.queue.out_of_service(machine)
    }

    /// Reports that power-on request `request_id` failed on `failed`
    /// boards (those of the request's BMP that did not pass the checks).
    /// Those boards go out of service; the job gives its boards back (they
    /// are powered off, then freed) and is queued again at its old place.
    /// If it is not a live job being powered on, the request is simply
    /// complete. A job no machine could run any more is cancelled.
    pub fn power_on_failed(&mut self, request_id: u64, failed: &[Board], now: f64) {
        let Some(&job_id) = self.in_flight.get(&request_id) else {
            self.teardown_request_done(request_id, now);
            return;
        };
        let powering_on = self.jobs.live(job_id).and_then(|j| {
            let a = j.allocation.as_ref()?;
            (j.state == JobState::Power && j.power == Some(true)).then(|| {
                (
                    a.machine.clone(),
                    a.boards.clone(),
                    j.target.clone(),
                    j.request,
                )
            })
        });
        let Some((machine, boards, target, request)) = powering_on else {
            self.bmp_request_done(request_id, Ok(()), now);
            return;
        };
        self.in_flight.remove(&request_id);
        warn!(job = job_id, machine = %machine, boards = ?failed, "boards failed to power on");
        // The job's other power-ons in flight, then power-offs of all its
        // boards, now belong to the teardown.
        self.set_job_power(job_id, false, false);
        let outstanding: BTreeSet<u64> = self
            .in_flight
            .iter()
            .filter(|(_, &job)| job == job_id)
            .map(|(&request, _)| request)
            .collect();
        for request in &outstanding {
            self.in_flight.remove(request);
            self.teardowns.requests.insert(*request, request_id);
        }
        // Not held in the queue only if its machine was removed meanwhile:
        // then there is nothing left to free.
        if self.queue.detach(job_id, request_id) {
            self.teardowns.by_failure.insert(
                request_id,
                Teardown {
                    job_id,
                    machine: machine.clone(),
                    boards,
                    outstanding,
                },
            );
        }
        self.changed_machines.insert(machine.clone());
        if let Some(mut job) = self.jobs.get_mut(job_id) {
            job.usage.release(now);
            job.allocation = None;
            job.state = JobState::Queued;
            job.power = None;
            job.bmp_requests_until_ready = 0;
        }
        for b in failed {
            // A board of another machine, or a dead one, is simply ignored.
            if let Ok(placed) = self.queue.set_in_service(&machine, *b, false, now) {
                self.on_placed(placed);
            }
        }
        match self.queue.requeue(job_id, target, request, now) {
            Some(placed) => self.on_placed(placed),
            None => self.destroy_job(job_id, Some(REASON_NO_MACHINE.to_owned()), now),
        }
        self.finish_teardown_if_done(request_id, now);
    }

    /// Counts a completed request toward its teardown, if it belongs to
    /// one; true if it did.
    pub(crate) fn teardown_request_done(&mut self, request_id: u64, now: f64) -> bool {
        let Some(failure) = self.teardowns.requests.remove(&request_id) else {
            return false;
        };
        if let Some(t) = self.teardowns.by_failure.get_mut(&failure) {
            t.outstanding.remove(&request_id);
        }
        self.finish_teardown_if_done(failure, now);
        true
    }

    /// Frees a teardown's boards once every request of it is complete.
    fn finish_teardown_if_done(&mut self, failure: u64, now: f64) {
        let done = self
            .teardowns
            .by_failure
            .get(&failure)
            .is_some_and(|t| t.outstanding.is_empty());
        if !done {
            return;
        }
        if let Some(t) = self.teardowns.by_failure.remove(&failure) {
            self.changed_machines.insert(t.machine.clone());
            let placed = self.queue.free_detached(failure, now);
            self.on_placed(placed);
        }
    }
}
