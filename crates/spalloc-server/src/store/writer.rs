//! The writer: commits change sets in groups, off the server's lock, on
//! the thread that made them.
//!
//! The server hands each turn's [`RecordChanges`] to [`Writer::submit`]
//! (under its lock, which only queues them) and, once it has released its
//! lock, calls [`Writer::commit_pending`]. The first thread to get there
//! becomes the committer: it takes everything queued, commits it in one
//! transaction, reports the last sequence number committed, and carries on
//! while more is queued; a thread that finds a commit in progress leaves
//! its changes to that committer and returns at once. So a lone change is
//! committed with no hand-over to another thread (a thread hop costs more
//! than the commit), concurrent changes share a transaction (a slow disk
//! costs one commit per group, and with `synchronous = FULL` one flush per
//! group), and the server's lock is never held while the disk works. The
//! server releases what it held for those turns when the report arrives.
//!
//! With `synchronous = FULL` each commit waits for the disk; on a tokio
//! worker it runs in [`tokio::task::block_in_place`], so the worker's other
//! clients move to another thread meanwhile. Checkpoints (copying the WAL
//! back into the database file, which syncs the file) run on a thread of
//! their own ([`super::checkpoint`]), so no commit waits for them.
//!
//! A failed commit is reported with its error; every change queued after
//! it is then dropped until [`Writer::reset`], because those changes were
//! made on top of the refused ones. The server rolls its controller back to
//! [`Writer::committed_records`] (a copy of what the file holds, kept here
//! so that a rollback does not need the failing disk) and submits
//! everything again.

use super::checkpoint::Checkpointer;
use super::{Store, Synchronous};
use crate::core::board_service::BoardRecords;
use crate::core::cooling::CoolingBoards;
use crate::core::job::Job;
use crate::core::records::{MachineRecord, RecordChanges, Records};
use crate::core::usage::UsageRecord;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// Called by the committer after each group: the last sequence number in
/// it, and whether it was committed.
pub type Report = Box<dyn Fn(u64, Result<(), String>) + Send + Sync>;

/// What the file holds, as of the last successful commit.
#[derive(Debug, Default)]
struct Mirror {
    next_job_id: u64,
    machines: Vec<MachineRecord>,
    jobs: BTreeMap<u64, Job>,
    retired: BTreeMap<u64, (u64, Option<String>)>,
    boards: BoardRecords,
    usage: BTreeMap<u64, UsageRecord>,
    cooling: BTreeMap<u64, CoolingBoards>,
}

impl Mirror {
    fn from_records(r: Records) -> Mirror {
        Mirror {
            next_job_id: r.next_job_id,
            machines: r.machines,
            jobs: r.jobs.into_iter().map(|j| (j.id, j)).collect(),
            retired: r
                .retired
                .into_iter()
                .map(|(seq, id, reason)| (seq, (id, reason)))
                .collect(),
            boards: r.boards,
            usage: r.usage.into_iter().map(|u| (u.job_id, u)).collect(),
            cooling: r.cooling.into_iter().map(|e| (e.job_id, e)).collect(),
        }
    }

    fn apply(&mut self, changes: RecordChanges, all: bool) {
        if all {
            self.jobs.clear();
            self.retired.clear();
            self.cooling.clear();
        }
        self.next_job_id = changes.next_job_id;
        if let Some(machines) = changes.machines {
            self.machines = machines;
        }
        if let Some(boards) = changes.boards {
            self.boards = boards;
        }
        for record in changes.usage {
            self.usage.insert(record.job_id, record);
        }
        for (id, job) in changes.jobs {
            match job {
                Some(job) => self.jobs.insert(id, job),
                None => self.jobs.remove(&id),
            };
        }
        for (id, entry) in changes.cooling {
            match entry {
                Some(entry) => self.cooling.insert(id, entry),
                None => self.cooling.remove(&id),
            };
        }
        if !changes.retired.is_empty() {
            for (seq, id, reason) in changes.retired {
                self.retired.insert(seq, (id, reason));
            }
            self.retired = self.retired.split_off(&changes.retired_floor);
        }
    }

    fn records(&self) -> Records {
        Records {
            next_job_id: self.next_job_id,
            machines: self.machines.clone(),
            jobs: self.jobs.values().cloned().collect(),
            retired: self
                .retired
                .iter()
                .map(|(seq, (id, reason))| (*seq, *id, reason.clone()))
                .collect(),
            boards: self.boards.clone(),
            usage: self.usage.values().cloned().collect(),
            cooling: self.cooling.values().cloned().collect(),
        }
    }
}

/// Change sets waiting for a committer.
#[derive(Default)]
struct Queue {
    /// `(sequence number, changes, rewrite every record)`, oldest first.
    pending: Vec<(u64, RecordChanges, bool)>,
    /// Whether a thread is committing (it takes whatever is queued next).
    committing: bool,
    /// After a failed commit, until [`Writer::reset`]: changes are dropped.
    discarding: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    /// Locked only by the committer of the moment, so never contended.
    store: Mutex<Store>,
    mirror: Mutex<Mirror>,
    report: Report,
    synchronous: Synchronous,
    checkpointer: Option<Checkpointer>,
    path: PathBuf,
}

/// A handle on the state file's writer; clones share it.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// One round of a committer; dropping it gives up the role.
struct Round<'a>(&'a Mutex<Queue>);

impl Drop for Round<'_> {
    fn drop(&mut self) {
        lock(self.0).committing = false;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while committing would be a bug; the data behind these locks
    // stays consistent (each is replaced whole), so keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Writer {
    /// A writer for `store`, whose file holds `committed` (as read when it
    /// was opened); `report` hears of each group committed or refused.
    /// Starts the checkpoint thread.
    pub fn spawn(store: Store, committed: Option<Records>, report: Report) -> Writer {
        let path = store.path().to_owned();
        let synchronous = store.synchronous();
        let checkpointer = Checkpointer::spawn(&store);
        Writer {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                store: Mutex::new(store),
                mirror: Mutex::new(committed.map(Mirror::from_records).unwrap_or_default()),
                report,
                synchronous,
                checkpointer,
                path,
            }),
        }
    }

    /// Queues a change set for commit by the next [`Writer::commit_pending`].
    pub fn submit(&self, seq: u64, changes: RecordChanges, all: bool) {
        let mut queue = lock(&self.inner.queue);
        if !queue.discarding {
            queue.pending.push((seq, changes, all));
        }
    }

    /// Commits what is queued, unless another thread is committing (which
    /// then commits it too). Call it without holding the lock that
    /// [`Report`] takes.
    pub fn commit_pending(&self) {
        loop {
            let group = {
                let mut queue = lock(&self.inner.queue);
                if queue.committing || queue.pending.is_empty() {
                    return;
                }
                queue.committing = true;
                std::mem::take(&mut queue.pending)
            };
            // Gives up the committer's role when this round ends, even by a
            // panic (which would otherwise stop every later commit).
            let _round = Round(&self.inner.queue);
            let last = group.last().map_or(0, |g| g.0);
            let batch: Vec<(RecordChanges, bool)> =
                group.into_iter().map(|(_, c, all)| (c, all)).collect();
            let started = std::time::Instant::now();
            let result = self.blocking(|| lock(&self.inner.store).commit(&batch));
            crate::metrics::events::global().store_commit(result.is_ok(), started.elapsed());
            match &result {
                Ok(()) => {
                    let mut mirror = lock(&self.inner.mirror);
                    for (changes, all) in batch {
                        mirror.apply(changes, all);
                    }
                    drop(mirror);
                    if let Some(checkpointer) = &self.inner.checkpointer {
                        checkpointer.committed();
                    }
                }
                Err(_) => {
                    let mut queue = lock(&self.inner.queue);
                    queue.discarding = true;
                    queue.pending.clear();
                }
            }
            // Reported while still the committer, so reports arrive in order.
            (self.inner.report)(last, result);
            // The round ends here; the next one takes what was queued
            // meanwhile (unless a newcomer has).
        }
    }

    /// Runs a commit; one that waits for the disk gives its tokio worker's
    /// other tasks to another thread meanwhile.
    fn blocking<T>(&self, commit: impl FnOnce() -> T) -> T {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let multi_thread =
            Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if self.inner.synchronous == Synchronous::Full && multi_thread {
            tokio::task::block_in_place(commit)
        } else {
            commit()
        }
    }

    /// After a failed commit has been handled: accept changes again.
    pub fn reset(&self) {
        lock(&self.inner.queue).discarding = false;
    }

    /// What the file holds as of the last successful commit.
    pub fn committed_records(&self) -> Records {
        lock(&self.inner.mirror).records()
    }

    /// The state file.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }
}
