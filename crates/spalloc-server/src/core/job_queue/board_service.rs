//! Boards out of service, and putting a job back in the queue at its old
//! place: the queue side of failure-aware scheduling (issue 16, item 3).
//!
//! A board out of service is handed to no new job, like a dead board, but
//! unlike one it does not change what the machine could *ever* run: jobs
//! that need it stay queued (their reason says the machine is out of
//! service) instead of being cancelled, and start once it is back.
//! Allocations already holding it are left alone; when they end, the board
//! is not handed out again.

use super::{JobQueue, PendingJob, Placed};
use crate::core::allocator::AllocRequest;
use crate::core::coordinates::Board;
use crate::core::job::Target;
use std::collections::BTreeSet;

/// Why a board's service state could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// No machine of that name.
    #[error("no machine named {0:?}")]
    NoMachine(String),
    /// The board is not a live board of the machine.
    #[error("board ({}, {}, {}) is not a live board of {machine}", board.x, board.y, board.z)]
    NoBoard {
        /// The machine.
        machine: String,
        /// The board asked for.
        board: Board,
    },
}

impl JobQueue {
    /// Takes a live board out of service (`in_service = false`) or returns
    /// it, then allocates what now fits. Changing nothing is not an error.
    pub fn set_in_service(
        &mut self,
        machine: &str,
        board: Board,
        in_service: bool,
        now: f64,
    ) -> Result<Vec<Placed>, ServiceError> {
        let m = self
            .machines
            .iter_mut()
            .find(|m| m.machine.name == machine)
            .ok_or_else(|| ServiceError::NoMachine(machine.to_owned()))?;
        if !m.machine.is_live(&board) {
            return Err(ServiceError::NoBoard {
                machine: machine.to_owned(),
                board,
            });
        }
        let changed = if in_service {
            m.out_of_service.remove(&board)
        } else {
            m.out_of_service.insert(board)
        };
        if !changed {
            return Ok(Vec::new());
        }
        m.allocator
            .set_unusable(&m.unusable(), &m.machine.dead_links);
        // The head's reserved region may no longer be one it fits in.
        m.reservation = None;
        Ok(self.process(now))
    }

    /// The boards of a machine out of service (`None`: no such machine).
    pub fn out_of_service(&self, machine: &str) -> Option<&BTreeSet<Board>> {
        self.machines
            .iter()
            .find(|m| m.machine.name == machine)
            .map(|m| &m.out_of_service)
    }

    /// Queues a job again at the place its ID gives it (ahead of every job
    /// created after it), on every machine that could ever run it, and
    /// allocates what fits: for a job whose boards failed to power on, so
    /// that it does not lose its turn. Returns `None`, queueing nothing, if
    /// no machine could ever run it or it is already pending or allocated.
    pub fn requeue(
        &mut self,
        job_id: u64,
        target: Target,
        request: AllocRequest,
        now: f64,
    ) -> Option<Vec<Placed>> {
        if self.pending.contains_key(&job_id) || self.allocated.contains_key(&job_id) {
            return None;
        }
        let possible: Vec<usize> = self
            .candidates(&target)
            .filter(|&i| self.machines[i].capability.alloc_possible(&request))
            .collect();
        if possible.is_empty() {
            return None;
        }
        for i in possible {
            let m = &mut self.machines[i];
            let at = m
                .queue
                .iter()
                .position(|&id| id > job_id)
                .unwrap_or(m.queue.len());
            m.queue.insert(at, job_id);
            // A new head chooses its own reservation.
            m.reservation = None;
        }
        self.pending.insert(job_id, PendingJob { target, request });
        Some(self.process(now))
    }
}

impl JobQueue {
    /// Takes a job's allocation away from it without freeing the boards,
    /// under `token`: the job can be queued again while its old boards are
    /// powered off. False if the job holds no boards.
    pub fn detach(&mut self, job_id: u64, token: u64) -> bool {
        match self.allocated.remove(&job_id) {
            Some(held) => {
                self.detached.insert(token, held);
                true
            }
            None => false,
        }
    }

    /// Frees the allocation detached under `token` (its boards powered off)
    /// and allocates what now fits. Nothing is freed if its machine was
    /// removed meanwhile.
    pub fn free_detached(&mut self, token: u64, now: f64) -> Vec<Placed> {
        if let Some((machine, allocation_id)) = self.detached.remove(&token) {
            if let Some(m) = self.machines.iter_mut().find(|m| m.machine.name == machine) {
                m.allocator.free(allocation_id, now);
            }
        }
        self.process(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allocator::AllocShape;
    use crate::core::machine::{Machine, MachineSpec, Physical};
    use crate::core::queue_status::WaitReason;
    use std::sync::Arc;

    /// A `w × h`-triad machine, every board located.
    fn machine(w: u32, h: u32) -> Arc<Machine> {
        let mut spec = MachineSpec {
            name: "m".into(),
            tags: ["default".to_owned()].into(),
            width: Some(w),
            height: Some(h),
            ..Default::default()
        };
        let mut slot = 0;
        for x in 0..w {
            for y in 0..h {
                for z in 0..3 {
                    let b = Board::new(x, y, z);
                    spec.board_locations.insert(
                        b,
                        Physical {
                            cabinet: 0,
                            frame: 0,
                            board: slot,
                        },
                    );
                    spec.spinnaker_ips.insert(b, format!("10.0.0.{slot}"));
                    slot += 1;
                }
            }
        }
        spec.bmp_ips.insert((0, 0), "10.0.1.0".into());
        Arc::new(Machine::new(spec).unwrap())
    }

    fn request(shape: AllocShape) -> AllocRequest {
        AllocRequest {
            shape,
            min_ratio: 0.333,
            max_dead_boards: None,
            max_dead_links: None,
            require_torus: false,
            avoid_boards: Default::default(),
        }
    }

    fn default_tags() -> Target {
        Target::Tags(["default".to_owned()].into())
    }

    #[test]
    fn a_board_out_of_service_is_handed_to_no_one_and_its_job_waits_for_it_to_return() {
        let mut q = JobQueue::new(vec![machine(1, 1)], 0.0);
        for z in 0..2 {
            q.set_in_service("m", Board::new(0, 0, z), false, 0.0)
                .unwrap();
        }
        let one = request(AllocShape::Board(None));
        let placed = q.enqueue(1, default_tags(), one, 0.0).unwrap();
        assert_eq!(placed[0].allocation.boards, [Board::new(0, 0, 2)].into());
        // A specific board out of service: queued, not cancelled.
        let wanted = request(AllocShape::Board(Some(Board::new(0, 0, 0))));
        assert_eq!(q.enqueue(2, default_tags(), wanted, 1.0), Some(vec![]));
        let (position, reason) = q.wait_reason(2).unwrap();
        assert_eq!(position, 1);
        assert_eq!(
            reason,
            WaitReason::OutOfService {
                machine: "m".into()
            }
        );
        let back = q
            .set_in_service("m", Board::new(0, 0, 0), true, 2.0)
            .unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].job_id, 2);
        assert_eq!(q.out_of_service("m"), Some(&[Board::new(0, 0, 1)].into()));
    }

    #[test]
    fn unknown_machines_and_boards_are_refused_and_change_nothing() {
        let mut q = JobQueue::new(vec![machine(1, 1)], 0.0);
        assert_eq!(
            q.set_in_service("x", Board::new(0, 0, 0), false, 0.0),
            Err(ServiceError::NoMachine("x".into()))
        );
        let err = q
            .set_in_service("m", Board::new(1, 0, 0), false, 0.0)
            .unwrap_err();
        assert_eq!(err.to_string(), "board (1, 0, 0) is not a live board of m");
        assert_eq!(q.out_of_service("m"), Some(&BTreeSet::new()));
        assert_eq!(q.out_of_service("x"), None);
    }

    #[test]
    fn a_requeued_job_goes_back_ahead_of_the_jobs_created_after_it() {
        let mut q = JobQueue::new(vec![machine(1, 1)], 0.0);
        let triad = request(AllocShape::Triads(1, 1));
        assert_eq!(
            q.enqueue(1, default_tags(), triad.clone(), 0.0)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            q.enqueue(2, default_tags(), triad.clone(), 0.0),
            Some(vec![])
        );
        assert_eq!(
            q.enqueue(4, default_tags(), triad.clone(), 0.0),
            Some(vec![])
        );
        // Job 3 had started, its boards failed to power on and were given
        // back: it returns between 2 and 4.
        assert_eq!(
            q.requeue(3, default_tags(), triad.clone(), 0.0),
            Some(vec![])
        );
        assert_eq!(q.wait_reason(3).map(|(p, _)| p), Some(2));
        assert_eq!(q.wait_reason(4).map(|(p, _)| p), Some(3));
        // Already queued, or impossible anywhere: refused.
        assert_eq!(q.requeue(3, default_tags(), triad.clone(), 0.0), None);
        let huge = request(AllocShape::Triads(2, 2));
        assert_eq!(q.requeue(5, default_tags(), huge, 0.0), None);
        let released = q.release(1, 1.0);
        assert_eq!(released.iter().map(|p| p.job_id).collect::<Vec<_>>(), [2]);
        let released = q.release(2, 2.0);
        assert_eq!(released.iter().map(|p| p.job_id).collect::<Vec<_>>(), [3]);
    }
}
