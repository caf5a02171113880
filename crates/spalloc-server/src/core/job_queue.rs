//! The per-machine job queues (spalloc-server.md §4.1).
//!
//! Machines are kept in priority order, each with its allocator and a FIFO of
//! job IDs. A job is queued on every machine that could ever satisfy it; only
//! the head of each queue is tried, so a large job at the head blocks smaller
//! ones behind it on that machine (as in the reference: fairness over
//! utilisation), while jobs that fit elsewhere can still overtake it there.

use crate::core::allocator::{AllocRequest, Allocation, Allocator};
use crate::core::job::Target;
use crate::core::machine::Machine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
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

/// One machine's queue and allocator as saved in a [`QueueSnapshot`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineQueueSnapshot {
    /// The machine's name.
    pub name: String,
    /// [`machine_fingerprint`] of the machine description it was saved with.
    pub fingerprint: u64,
    /// Its allocator, with every live allocation and pending free.
    pub allocator: Allocator,
    /// Its FIFO of job IDs.
    pub queue: Vec<u64>,
}

/// Everything a [`JobQueue`] holds except the machine descriptions, which
/// come from the configuration on restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// Per machine, in priority order.
    pub machines: Vec<MachineQueueSnapshot>,
    /// Jobs waiting for boards, where they may run and what they asked for.
    pub pending: Vec<(u64, Target, AllocRequest)>,
    /// Jobs holding boards: (job, machine, allocation ID).
    pub allocated: Vec<(u64, String, u64)>,
}

/// A stable digest of a machine's description (FNV-1a over its `Debug`
/// form, whose maps and sets are ordered), to tell whether a machine in the
/// configuration is the one a snapshot was taken with.
pub fn machine_fingerprint(machine: &Machine) -> u64 {
    format!("{machine:?}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

impl JobQueue {
    /// The queue's state, for [`JobQueue::restore`].
    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot {
            machines: self
                .machines
                .iter()
                .map(|m| MachineQueueSnapshot {
                    name: m.machine.name.clone(),
                    fingerprint: machine_fingerprint(&m.machine),
                    allocator: m.allocator.clone(),
                    queue: m.queue.iter().copied().collect(),
                })
                .collect(),
            pending: self
                .pending
                .iter()
                .map(|(&id, p)| (id, p.target.clone(), p.request))
                .collect(),
            allocated: self
                .allocated
                .iter()
                .map(|(&id, (m, a))| (id, m.clone(), *a))
                .collect(),
        }
    }

    /// Rebuilds a queue for `machines` (the configured ones, in priority
    /// order) from a snapshot. A machine whose description is unchanged gets
    /// its saved allocator and queue back; a new or changed one starts idle
    /// with an empty queue. Returns the queue, the names of the saved
    /// machines that are gone or changed (allocations on them are dropped:
    /// the caller destroys those jobs), and whether any machine differs, in
    /// which case the caller must [`JobQueue::regenerate`] the queues.
    pub fn restore(
        machines: Vec<Arc<Machine>>,
        seconds_before_free: f64,
        snapshot: QueueSnapshot,
    ) -> (JobQueue, BTreeSet<String>, bool) {
        let mut queue = JobQueue::new(machines, seconds_before_free);
        let mut saved: BTreeMap<String, MachineQueueSnapshot> = snapshot
            .machines
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let mut kept = BTreeSet::new();
        for m in &mut queue.machines {
            let Some(s) = saved.remove(&m.machine.name) else {
                continue;
            };
            if s.fingerprint == machine_fingerprint(&m.machine) {
                m.allocator = s.allocator;
                m.queue = s.queue.into_iter().collect();
                kept.insert(s.name);
            } else {
                saved.insert(s.name.clone(), s);
            }
        }
        let lost: BTreeSet<String> = saved.into_keys().collect();
        let differs = !lost.is_empty() || kept.len() != queue.machines.len();
        for (id, target, request) in snapshot.pending {
            queue.pending.insert(id, PendingJob { target, request });
        }
        for (id, machine, allocation) in snapshot.allocated {
            if kept.contains(&machine) {
                queue.allocated.insert(id, (machine, allocation));
            }
        }
        (queue, lost, differs)
    }

    /// Whether a job holds boards.
    pub fn is_allocated(&self, job_id: u64) -> bool {
        self.allocated.contains_key(&job_id)
    }
}
