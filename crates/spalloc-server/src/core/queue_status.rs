//! Queue transparency: where a queued job stands and why it waits, in
//! words a user understands. One function, [`Controller::queue_status`],
//! serves every protocol (the legacy `get_job_state` extra keys and the v2
//! job state), so they never disagree.

use crate::core::allocator::Reservation;
use crate::core::controller::Controller;
use std::fmt;

/// Why a queued job has no boards yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// It is in no machine's queue: no machine with the requested tags (or
    /// of the requested name) could ever hold it.
    NoMachine,
    /// It is at the head of the queue, but the machine cannot hold it even
    /// when idle: too many of its boards are out of service.
    OutOfService {
        /// The machine.
        machine: String,
    },
    /// Not enough free boards: at the head of the queue, or (on a
    /// backfilling machine) behind a head whose reserved boards it may not
    /// use.
    Boards {
        /// The machine where it is nearest the head.
        machine: String,
        /// Boards it asked for.
        wanted: u64,
        /// Live boards of the machine in use (or waiting to be freed).
        in_use: u64,
        /// Live boards of the machine.
        live: u64,
        /// The head job whose reservation it waits outside of, if it is not
        /// the head itself.
        reserved_for: Option<u64>,
        /// How many boards the job asked never to be given (its
        /// avoid-list), which may be why free boards do not suit it.
        avoided: usize,
    },
    /// Behind another job at the head of a first-come first-served queue.
    Behind {
        /// The machine.
        machine: String,
        /// The job at the head of that machine's queue.
        head: u64,
    },
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::NoMachine => {
                f.write_str("no machine with the requested tags could ever hold it")
            }
            WaitReason::OutOfService { machine } => write!(
                f,
                "machine {machine} is out of service: too few of its boards are in service to hold it"
            ),
            WaitReason::Boards {
                machine,
                wanted,
                in_use,
                live,
                reserved_for,
                avoided,
            } => {
                let plural = if *wanted == 1 { "" } else { "s" };
                write!(f, "waiting for {wanted} free board{plural} on {machine}")?;
                if let Some(head) = reserved_for {
                    write!(
                        f,
                        " outside those reserved for job {head} at the head of the queue"
                    )?;
                }
                write!(f, "; {in_use} of {live} in use")?;
                if *avoided > 0 {
                    let plural = if *avoided == 1 { "" } else { "s" };
                    write!(f, "; it avoids {avoided} board{plural}")?;
                }
                Ok(())
            }
            WaitReason::Behind { machine, head } => {
                write!(f, "behind job {head} at the head of the queue on {machine}")
            }
        }
    }
}

/// A queued job's place in line.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStatus {
    /// Its position (1 = head) in the queue of the machine where it stands
    /// nearest the head; 0 with [`WaitReason::NoMachine`].
    pub position: usize,
    /// Why it waits.
    pub reason: WaitReason,
    /// When it was queued (Unix seconds: its creation time).
    pub queued_at: f64,
}

impl Controller {
    /// Where a queued job stands and why it waits; `None` for a job that is
    /// not queued (allocated, destroyed or unknown). Not a keepalive.
    pub fn queue_status(&self, job_id: u64) -> Option<QueueStatus> {
        let job = self.jobs.live(job_id)?;
        let (position, reason) = self.queue.wait_reason(job_id)?;
        Some(QueueStatus {
            position,
            reason,
            queued_at: job.start_time,
        })
    }

    /// On a backfilling machine whose head job waits: that job and the
    /// region held for it (for tests and diagnostics).
    pub fn reservation(&self, machine: &str) -> Option<(u64, Reservation)> {
        self.queue.reservation(machine)
    }
}
