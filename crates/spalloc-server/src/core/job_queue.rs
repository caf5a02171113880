//! The per-machine job queues (spalloc-server.md §4.1).
//!
//! Machines are kept in priority order, each with its allocator and a FIFO of
//! job IDs. A job is queued on every machine that could ever satisfy it; only
//! the head of each queue is tried, so a large job at the head blocks smaller
//! ones behind it on that machine (as in the reference: fairness over
//! utilisation), while jobs that fit elsewhere can still overtake it there.

use crate::core::allocator::{AllocRequest, Allocation, Allocator, Claim};
use crate::core::job::Target;
use crate::core::machine::Machine;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A job that was just given boards.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The job.
    pub job_id: u64,
    /// The machine it landed on.
    pub machine: Arc<Machine>,
    /// What it got.
    pub allocation: Allocation,
}

#[derive(Debug, Clone)]
struct QueuedMachine {
    machine: Arc<Machine>,
    allocator: Allocator,
    queue: VecDeque<u64>,
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
}

impl JobQueue {
    /// Queues for these machines, in priority order.
    pub fn new(machines: Vec<Arc<Machine>>, seconds_before_free: f64) -> JobQueue {
        let machines = machines
            .into_iter()
            .map(|m| QueuedMachine {
                allocator: Allocator::new(
                    m.width,
                    m.height,
                    &m.dead_boards,
                    &m.dead_links,
                    seconds_before_free,
                ),
                machine: m,
                queue: VecDeque::new(),
            })
            .collect();
        JobQueue {
            machines,
            pending: BTreeMap::new(),
            allocated: BTreeMap::new(),
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
            .filter(|&i| self.machines[i].allocator.alloc_possible(&request))
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

    /// Allocates heads of queues until nothing more fits (strict FIFO per machine).
    pub fn process(&mut self, now: f64) -> Vec<Placed> {
        let mut placed = Vec::new();
        loop {
            let mut changed = false;
            for m in &mut self.machines {
                while let Some(&head) = m.queue.front() {
                    let Some(job) = self.pending.get(&head) else {
                        m.queue.pop_front();
                        continue;
                    };
                    if let Some(allocation) = m.allocator.alloc(&job.request, now) {
                        m.queue.pop_front();
                        self.pending.remove(&head);
                        self.allocated
                            .insert(head, (m.machine.name.clone(), allocation.id));
                        placed.push(Placed {
                            job_id: head,
                            machine: Arc::clone(&m.machine),
                            allocation,
                        });
                        changed = true;
                    }
                    break;
                }
            }
            if !changed {
                return placed;
            }
        }
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
        self.machines.push(QueuedMachine {
            allocator: Allocator::new(
                machine.width,
                machine.height,
                &machine.dead_boards,
                &machine.dead_links,
                seconds_before_free,
            ),
            machine,
            queue: VecDeque::new(),
        });
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
        m.allocator
            .set_dead(&machine.dead_boards, &machine.dead_links);
        m.machine = machine;
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
                .filter(|&i| self.machines[i].allocator.alloc_possible(&job.request))
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
