//! The per-machine job queues (spalloc-server.md §4.1).
//!
//! Machines are kept in priority order, each with its allocator and a FIFO of
//! job IDs. A job is queued on every machine that could ever satisfy it.
//!
//! How a queue is served is the machine's [`Scheduler`]:
//!
//! * **FIFO** (the default, the reference's behaviour): only the head of
//!   each queue is tried, so a large job at the head blocks smaller ones
//!   behind it on that machine (fairness over utilisation), while jobs that
//!   fit elsewhere can still overtake it there.
//! * **Backfill**: the head is tried first, exactly as FIFO. If it does not
//!   fit, it gets a [`Reservation`] (the region of the machine it will take
//!   once the jobs in it end; see [`crate::core::allocator::Reservation`]),
//!   which it keeps until it starts. Later jobs are then tried in queue
//!   order, and start at once if they fit entirely outside the reservation,
//!   so nothing they take can delay the head. Reservations live in memory
//!   only: after a restart or a change of the machine's dead boards the head
//!   chooses again.

use crate::core::allocator::{AllocRequest, AllocShape, Allocation, Allocator, Claim, Reservation};
use crate::core::coordinates::Board;
use crate::core::job::Target;
use crate::core::machine::Machine;
use crate::core::queue_status::WaitReason;
use crate::core::scheduler::Scheduler;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

mod board_service;
pub use board_service::ServiceError;

/// A job that was just given boards.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The job.
    pub job_id: u64,
    /// The machine it landed on.
    pub machine: Arc<Machine>,
    /// What it got.
    pub allocation: Allocation,
    /// When (Unix seconds): its usage is charged from then.
    pub at: f64,
}

#[derive(Debug, Clone)]
struct QueuedMachine {
    machine: Arc<Machine>,
    /// Allocates boards: its dead boards are the machine's and those out of
    /// service.
    allocator: Allocator,
    /// An idle allocator with only the machine's dead boards: what the
    /// machine could ever run once every board is back in service (so a
    /// board out of service keeps jobs queued instead of cancelling them).
    capability: Allocator,
    /// Boards taken out of service at run time (see `board_service`).
    out_of_service: BTreeSet<Board>,
    queue: VecDeque<u64>,
    /// A backfilling machine's head job and the region held for it.
    reservation: Option<(u64, Reservation)>,
}

impl QueuedMachine {
    /// An idle machine with an empty queue, every board in service.
    fn new(machine: Arc<Machine>, seconds_before_free: f64) -> QueuedMachine {
        let allocator = Allocator::new(
            machine.width,
            machine.height,
            &machine.dead_boards,
            &machine.dead_links,
            seconds_before_free,
        );
        QueuedMachine {
            capability: allocator.clone(),
            allocator,
            machine,
            out_of_service: BTreeSet::new(),
            queue: VecDeque::new(),
            reservation: None,
        }
    }

    /// The dead boards allocations avoid: the machine's and those out of
    /// service.
    fn unusable(&self) -> BTreeSet<Board> {
        self.machine
            .dead_boards
            .union(&self.out_of_service)
            .copied()
            .collect()
    }
}

#[derive(Debug, Clone)]
struct PendingJob {
    target: Target,
    request: AllocRequest,
}

/// All machines' queues and allocators.
#[derive(Debug, Clone, Default)]
pub struct JobQueue {
    machines: Vec<QueuedMachine>,
    /// Jobs waiting for boards, by ID (IDs grow, so this is creation order).
    pending: BTreeMap<u64, PendingJob>,
    /// Jobs holding boards: machine name and allocation ID.
    allocated: BTreeMap<u64, (String, u64)>,
    /// Allocations taken from their jobs but not yet freed, by token (see
    /// [`JobQueue::detach`]).
    detached: BTreeMap<u64, (String, u64)>,
}

impl JobQueue {
    /// Queues for these machines, in priority order.
    pub fn new(machines: Vec<Arc<Machine>>, seconds_before_free: f64) -> JobQueue {
        let machines = machines
            .into_iter()
            .map(|m| QueuedMachine::new(m, seconds_before_free))
            .collect();
        JobQueue {
            machines,
            pending: BTreeMap::new(),
            allocated: BTreeMap::new(),
            detached: BTreeMap::new(),
        }
    }

    /// The machines in priority order.
    pub fn machines(&self) -> impl Iterator<Item = &Arc<Machine>> {
        self.machines.iter().map(|m| &m.machine)
    }

    /// A machine by name.
    pub fn machine(&self, name: &str) -> Option<&Arc<Machine>> {
        self.machines
            .iter()
            .find(|m| m.machine.name == name)
            .map(|m| &m.machine)
    }

    fn candidates(&self, target: &Target) -> impl Iterator<Item = usize> + '_ {
        let target = target.clone();
        self.machines
            .iter()
            .enumerate()
            .filter(move |(_, m)| match &target {
                Target::Machine(name) => m.machine.name == *name,
                Target::Tags(tags) => tags.is_subset(&m.machine.tags),
            })
            .map(|(i, _)| i)
    }

    /// Queues a job on every machine that could ever run it and allocates
    /// what can be allocated now. Returns `None` if no machine could ever
    /// run it (the caller cancels it).
    pub fn enqueue(
        &mut self,
        job_id: u64,
        target: Target,
        request: AllocRequest,
        now: f64,
    ) -> Option<Vec<Placed>> {
        let possible: Vec<usize> = self
            .candidates(&target)
            .filter(|&i| self.machines[i].capability.alloc_possible(&request))
            .collect();
        if possible.is_empty() {
            return None;
        }
        for i in possible {
            self.machines[i].queue.push_back(job_id);
        }
        self.pending.insert(job_id, PendingJob { target, request });
        Some(self.process(now))
    }

    /// Whether a job is waiting for boards.
    pub fn is_pending(&self, job_id: u64) -> bool {
        self.pending.contains_key(&job_id)
    }

    /// How many pending jobs stand ahead of this one in the queue where it is
    /// nearest the head (for clients that show progress).
    pub fn position(&self, job_id: u64) -> Option<usize> {
        self.machines
            .iter()
            .filter_map(|m| {
                m.queue
                    .iter()
                    .filter(|id| self.pending.contains_key(id))
                    .position(|&id| id == job_id)
            })
            .min()
    }

    /// Allocates what each machine's policy allows until nothing more fits:
    /// one head per machine per round in priority order, plus (on a
    /// backfilling machine whose head does not fit) every later job that
    /// fits outside the head's reservation.
    pub fn process(&mut self, now: f64) -> Vec<Placed> {
        let mut placed = Vec::new();
        loop {
            let mut changed = false;
            for m in &mut self.machines {
                let mut jobs = Jobs {
                    pending: &mut self.pending,
                    allocated: &mut self.allocated,
                    placed: &mut placed,
                };
                changed |= match m.machine.scheduler {
                    Scheduler::Fifo => m.place_head(&mut jobs, now),
                    Scheduler::Backfill => m.backfill(&mut jobs, now),
                };
            }
            if !changed {
                return placed;
            }
        }
    }

    /// The head job of a backfilling machine and the region reserved for
    /// it, if it is waiting for one.
    pub fn reservation(&self, machine: &str) -> Option<(u64, Reservation)> {
        self.machines
            .iter()
            .find(|m| m.machine.name == machine)?
            .reservation
    }

    /// Removes a pending job from every queue, then allocates what the jobs
    /// that stood behind it can now get.
    pub fn cancel(&mut self, job_id: u64, now: f64) -> Vec<Placed> {
        // Queues skip IDs that are no longer pending, so removing it from the
        // pending map is enough; the stale entries are dropped lazily.
        if self.pending.remove(&job_id).is_some() {
            self.process(now)
        } else {
            Vec::new()
        }
    }

    /// Gives an allocated job's boards back (after its power-off) and
    /// allocates what now fits. The boards become usable
    /// `seconds_before_free` later.
    pub fn release(&mut self, job_id: u64, now: f64) -> Vec<Placed> {
        if let Some((machine, allocation_id)) = self.allocated.remove(&job_id) {
            if let Some(m) = self.machines.iter_mut().find(|m| m.machine.name == machine) {
                m.allocator.free(allocation_id, now);
            }
        }
        self.process(now)
    }

    /// Performs due delayed frees, then allocates what now fits.
    pub fn check_free(&mut self, now: f64) -> Vec<Placed> {
        let mut any = false;
        for m in &mut self.machines {
            any |= m.allocator.check_free(now);
        }
        if any {
            self.process(now)
        } else {
            Vec::new()
        }
    }

    /// Whether every allocator is idle (nothing allocated or waiting to be freed).
    pub fn is_idle(&self) -> bool {
        self.allocated.is_empty() && self.machines.iter().all(|m| m.allocator.is_idle())
    }

    /// Appends a machine (lowest priority) with an idle allocator. Call
    /// [`JobQueue::regenerate`] afterwards so that pending jobs see it.
    pub fn add_machine(&mut self, machine: Arc<Machine>, seconds_before_free: f64) {
        self.machines
            .push(QueuedMachine::new(machine, seconds_before_free));
    }

    /// Empties a machine's queue so that nothing more is allocated on it
    /// (the first step of removing it).
    pub fn close_machine(&mut self, name: &str) {
        if let Some(m) = self.machines.iter_mut().find(|m| m.machine.name == name) {
            m.queue.clear();
        }
    }

    /// The jobs holding boards on a machine, in ID order.
    pub fn allocated_on(&self, name: &str) -> Vec<u64> {
        self.allocated
            .iter()
            .filter(|(_, (machine, _))| machine == name)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Removes a machine with its allocator and queue, and forgets every
    /// allocation on it, so that a later [`JobQueue::release`] of one of its
    /// jobs frees nothing (not even on a new machine of the same name).
    /// Returns whether it existed. Call [`JobQueue::regenerate`] afterwards.
    pub fn remove_machine(&mut self, name: &str) -> bool {
        self.allocated.retain(|_, (machine, _)| machine != name);
        self.detached.retain(|_, (machine, _)| machine != name);
        let before = self.machines.len();
        self.machines.retain(|m| m.machine.name != name);
        self.machines.len() != before
    }

    /// Replaces a machine's description in place, keeping its allocator and
    /// allocations; only its tags, dead boards and dead links may differ
    /// (the caller checks). Returns whether it existed. Call
    /// [`JobQueue::regenerate`] afterwards.
    pub fn modify_machine(&mut self, machine: Arc<Machine>) -> bool {
        let Some(m) = self
            .machines
            .iter_mut()
            .find(|m| m.machine.name == machine.name)
        else {
            return false;
        };
        m.out_of_service
            .retain(|b| b.x < machine.width && b.y < machine.height);
        m.capability = Allocator::new(
            machine.width,
            machine.height,
            &machine.dead_boards,
            &machine.dead_links,
            m.allocator.seconds_before_free(),
        );
        m.machine = machine;
        m.allocator.set_dead(&m.unusable(), &m.machine.dead_links);
        // The reserved region may hold boards that are dead now.
        m.reservation = None;
        true
    }

    /// Re-sorts the machines into this priority order; machines not named
    /// keep their relative order after the named ones.
    pub fn reorder(&mut self, names: &[String]) {
        let rank = |m: &QueuedMachine| {
            names
                .iter()
                .position(|n| *n == m.machine.name)
                .unwrap_or(usize::MAX)
        };
        self.machines.sort_by_key(rank);
    }

    /// Clears every queue and re-enqueues every pending job in creation
    /// order, allocating what fits as it goes (the reference's queue
    /// regeneration after a machine change). Jobs no machine could ever run
    /// any more are dropped and returned second; the caller cancels them.
    pub fn regenerate(&mut self, now: f64) -> (Vec<Placed>, Vec<u64>) {
        for m in &mut self.machines {
            m.queue.clear();
            m.reservation = None;
        }
        let mut placed = Vec::new();
        let mut impossible = Vec::new();
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            // Jobs allocated while re-enqueueing earlier ones are no longer pending.
            let Some(job) = self.pending.get(&id) else {
                continue;
            };
            let possible: Vec<usize> = self
                .candidates(&job.target)
                .filter(|&i| self.machines[i].capability.alloc_possible(&job.request))
                .collect();
            if possible.is_empty() {
                self.pending.remove(&id);
                impossible.push(id);
                continue;
            }
            for i in possible {
                self.machines[i].queue.push_back(id);
            }
            placed.extend(self.process(now));
        }
        (placed, impossible)
    }
}

/// The job tables a machine's queue moves jobs between while it is served.
struct Jobs<'a> {
    pending: &'a mut BTreeMap<u64, PendingJob>,
    allocated: &'a mut BTreeMap<u64, (String, u64)>,
    placed: &'a mut Vec<Placed>,
}

impl QueuedMachine {
    /// Records that the job at `index` of the queue got `allocation`.
    fn record(
        &mut self,
        index: usize,
        job_id: u64,
        allocation: Allocation,
        jobs: &mut Jobs,
        now: f64,
    ) {
        self.queue.remove(index);
        jobs.pending.remove(&job_id);
        jobs.allocated
            .insert(job_id, (self.machine.name.clone(), allocation.id));
        jobs.placed.push(Placed {
            job_id,
            machine: Arc::clone(&self.machine),
            allocation,
            at: now,
        });
    }

    /// Drops queue entries of jobs no longer pending (placed elsewhere or
    /// cancelled) from the front, then tries the head; true if it was
    /// placed.
    fn place_head(&mut self, jobs: &mut Jobs, now: f64) -> bool {
        while let Some(&head) = self.queue.front() {
            let Some(job) = jobs.pending.get(&head) else {
                self.queue.pop_front();
                continue;
            };
            if let Some(allocation) = self.allocator.alloc(&job.request, now) {
                self.record(0, head, allocation, jobs, now);
                return true;
            }
            return false;
        }
        false
    }

    /// A backfilling machine's turn: the head as FIFO; if it waits, it keeps
    /// (or gets) its reservation and later jobs start outside it. A failed
    /// request is not tried again in the same pass (nothing has been freed
    /// since), and the pass stops when no room is left outside.
    fn backfill(&mut self, jobs: &mut Jobs, now: f64) -> bool {
        if self.place_head(jobs, now) {
            self.reservation = None;
            return true;
        }
        let Some(head) = self.queue.front().copied() else {
            self.reservation = None;
            return false;
        };
        let Some(head_request) = jobs.pending.get(&head).map(|j| j.request.clone()) else {
            return false;
        };
        let reserved = match self.reservation {
            Some((job, r)) if job == head && self.allocator.reservation_holds(r) => Some(r),
            // None: it cannot run here until boards come back into service,
            // so there is nothing to hold for it yet and the jobs behind it
            // may use any board.
            _ => self.allocator.reservation_for(&head_request),
        };
        self.reservation = reserved.map(|r| (head, r));
        let reserved = reserved.unwrap_or(Reservation::NOTHING);
        let mut room = self.allocator.free_outside(reserved);
        let mut failed: Vec<AllocRequest> = Vec::new();
        let mut changed = false;
        let mut index = 1;
        while index < self.queue.len() && (room.triads > 0 || room.shared_boards > 0) {
            let id = self.queue[index];
            let Some(job) = jobs.pending.get(&id) else {
                self.queue.remove(index);
                continue;
            };
            let request = job.request.clone();
            if failed.contains(&request) || !room.may_fit(&request) {
                index += 1;
                continue;
            }
            match self.allocator.alloc_outside(&request, now, reserved) {
                Some(allocation) => {
                    self.record(index, id, allocation, jobs, now);
                    room = self.allocator.free_outside(reserved);
                    changed = true;
                }
                None => {
                    failed.push(request);
                    index += 1;
                }
            }
        }
        changed
    }
}

/// How many boards a request asks for, for the words of a queue reason.
fn boards_wanted(request: &AllocRequest) -> u64 {
    match request.shape {
        AllocShape::Board(_) => 1,
        AllocShape::Boards(n) => u64::try_from(n).unwrap_or(0),
        AllocShape::Triads(w, h) => {
            u64::try_from(w.saturating_mul(h).saturating_mul(3)).unwrap_or(0)
        }
    }
}

impl JobQueue {
    /// Where a pending job stands and why it waits: its position (1 = head)
    /// in the queue of the machine where it is nearest the head (the
    /// higher-priority machine on a tie; 0 if it is in no queue) and the
    /// reason. `None` unless the job is pending.
    pub fn wait_reason(&self, job_id: u64) -> Option<(usize, WaitReason)> {
        let job = self.pending.get(&job_id)?;
        let mut best: Option<(usize, &QueuedMachine)> = None;
        for m in &self.machines {
            let position = m
                .queue
                .iter()
                .filter(|id| self.pending.contains_key(id))
                .position(|&id| id == job_id);
            if let Some(p) = position {
                if best.map_or(true, |(b, _)| p + 1 < b) {
                    best = Some((p + 1, m));
                }
            }
        }
        let Some((position, m)) = best else {
            return Some((0, WaitReason::NoMachine));
        };
        let machine = m.machine.name.clone();
        let head = m
            .queue
            .iter()
            .copied()
            .find(|id| self.pending.contains_key(id))
            .unwrap_or(job_id);
        let usage = m.allocator.usage();
        let reason = if position > 1 && m.machine.scheduler == Scheduler::Fifo {
            WaitReason::Behind { machine, head }
        } else if position == 1 && (usage.live == 0 || !m.allocator.alloc_possible(&job.request)) {
            WaitReason::OutOfService { machine }
        } else {
            WaitReason::Boards {
                machine,
                wanted: boards_wanted(&job.request),
                in_use: usage.in_use,
                live: usage.live,
                reserved_for: (position > 1).then_some(head),
                avoided: job.request.avoid_boards.len(),
            }
        };
        Some((position, reason))
    }
}

impl JobQueue {
    /// Puts back the allocations of one machine found in the job records
    /// (restoring): its allocator is rebuilt holding exactly those boards
    /// (see [`Allocator::rebuild`]). Returns the jobs whose claim was
    /// refused (a damaged record, or a machine that is not there).
    pub fn rebuild_machine(&mut self, name: &str, claims: &[(u64, Claim)]) -> Vec<u64> {
        let Some(m) = self.machines.iter_mut().find(|m| m.machine.name == name) else {
            return claims.iter().map(|(id, _)| *id).collect();
        };
        let just_claims: Vec<Claim> = claims.iter().map(|(_, c)| c.clone()).collect();
        let (allocator, ids) = Allocator::rebuild(
            m.machine.width,
            m.machine.height,
            &m.machine.dead_boards,
            &m.machine.dead_links,
            m.allocator.seconds_before_free(),
            &just_claims,
        );
        m.allocator = allocator;
        if !m.out_of_service.is_empty() {
            m.allocator.set_dead(&m.unusable(), &m.machine.dead_links);
        }
        let mut refused = Vec::new();
        for ((job_id, _), id) in claims.iter().zip(ids) {
            match id {
                Some(id) => {
                    self.allocated.insert(*job_id, (name.to_owned(), id));
                }
                None => refused.push(*job_id),
            }
        }
        refused
    }

    /// Frees an allocation put back by [`JobQueue::rebuild_machine`] as if
    /// freed at `freed_at` (restoring boards that were waiting out
    /// `seconds_before_free`; call in order of `freed_at`). Allocates
    /// nothing: the restore processes the queues afterwards.
    pub fn free_at(&mut self, job_id: u64, freed_at: f64) {
        if let Some((machine, allocation_id)) = self.allocated.remove(&job_id) {
            if let Some(m) = self.machines.iter_mut().find(|m| m.machine.name == machine) {
                m.allocator.free(allocation_id, freed_at);
            }
        }
    }

    /// Records a job as waiting for boards without queueing it anywhere
    /// yet (restoring): [`JobQueue::regenerate`] queues it.
    pub fn add_pending(&mut self, job_id: u64, target: Target, request: AllocRequest) {
        self.pending.insert(job_id, PendingJob { target, request });
    }

    /// Whether a job holds boards.
    pub fn is_allocated(&self, job_id: u64) -> bool {
        self.allocated.contains_key(&job_id)
    }
}
