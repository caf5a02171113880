//! The writer: makes change sets durable in groups, off the server's lock,
//! on the thread that made them, and applies them to SQLite on a thread of
//! its own.
//!
//! The server hands each turn's [`RecordChanges`] to [`Writer::submit`]
//! (under its lock, which only queues them) and, once it has released its
//! lock, calls [`Writer::commit_pending`]. The first thread to get there
//! becomes the committer: it takes everything queued, appends it to the
//! change journal in one write ([`super::journal`]), reports the last
//! sequence number committed, and carries on while more is queued; a thread
//! that finds a commit in progress leaves its changes to that committer and
//! returns at once. So a lone change is made durable with no hand-over to
//! another thread (a thread hop costs more than the write), concurrent
//! changes share a write (with `synchronous = FULL`, one flush per group),
//! and the server's lock is never held while the disk works. The server
//! releases what it held for those turns when the report arrives.
//!
//! The applier thread writes what the journal holds into the SQLite tables
//! every [`APPLY_EVERY`] (sooner once [`APPLY_AFTER`] change sets wait), as
//! one transaction of the batch's net effect, then empties the journal file
//! the batch came from. Nothing waits for it; if SQLite refuses (a full
//! disk), the changes stay in the journal, it tries again, and a restart
//! applies them. Checkpoints (copying SQLite's WAL back into the database
//! file, which syncs the file) run on a thread of their own
//! ([`super::checkpoint`]).
//!
//! With `synchronous = FULL` each journal write waits for the disk; on a
//! tokio worker it runs in [`tokio::task::block_in_place`], so the worker's
//! other clients move to another thread meanwhile.
//!
//! A failed write is reported with its error; every change queued after it
//! is then dropped until [`Writer::reset`], because those changes were made
//! on top of the refused ones. The server rolls its controller back to
//! [`Writer::committed_records`] (what the file holds, tables and journal
//! together, kept in memory so that a rollback does not need the failing
//! disk) and submits everything again.

use super::checkpoint::Checkpointer;
use super::journal::{Entry, Journal};
use super::mirror::Mirror;
use super::{Store, Synchronous};
use crate::core::records::{RecordChanges, Records};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tracing::{error, info, warn};

/// How often the applier writes the journal's changes into SQLite.
pub const APPLY_EVERY: Duration = Duration::from_millis(20);

/// How many waiting change sets wake the applier before [`APPLY_EVERY`].
pub const APPLY_AFTER: usize = 4096;

/// How long the applier waits before trying again after SQLite refused a
/// batch.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Called by the committer after each group: the last sequence number in
/// it, and whether it was committed.
pub type Report = Box<dyn Fn(u64, Result<(), String>) + Send + Sync>;

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

/// What the applier has to do.
#[derive(Default)]
struct Batches {
    /// Journaled, not yet taken by the applier, oldest first.
    waiting: Vec<Arc<Entry>>,
    /// Taken by the applier and not yet in SQLite (kept across failed
    /// rounds), oldest first.
    in_flight: Vec<Arc<Entry>>,
    /// The writer is gone: apply what is left and stop.
    stop: bool,
}

/// What the committer and the applier share.
struct Durable {
    /// Locked by the committer of the moment, and briefly by the applier
    /// to switch and empty files. Lock order: `journal`, then `batches`,
    /// then `mirror`.
    journal: Mutex<Journal>,
    batches: Mutex<Batches>,
    wake: Condvar,
    /// What SQLite holds.
    mirror: Mutex<Mirror>,
}

struct Inner {
    queue: Mutex<Queue>,
    durable: Arc<Durable>,
    /// The journal number of the server's change set 0.
    base: u64,
    report: Report,
    synchronous: Synchronous,
    path: PathBuf,
    applier: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.durable.batches).stop = true;
        self.durable.wake.notify_all();
        if let Some(thread) = lock(&self.applier).take() {
            let _ = thread.join();
        }
    }
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
    /// A writer for `store` and its `journal`, whose file holds
    /// `committed` (as read when it was opened, tables and journal
    /// together), `unapplied` being the journal's entries the tables do not
    /// hold yet (see [`super::Opened::unapplied`]); `report` hears of each
    /// group committed or refused. Starts the applier and checkpoint
    /// threads.
    pub fn spawn(
        store: Store,
        journal: Journal,
        committed: Option<Mirror>,
        unapplied: Vec<Entry>,
        report: Report,
    ) -> Writer {
        let path = store.path().to_owned();
        let synchronous = store.synchronous();
        let base = store.journal_seq();
        let durable = Arc::new(Durable {
            journal: Mutex::new(journal),
            batches: Mutex::new(Batches {
                waiting: unapplied.into_iter().map(Arc::new).collect(),
                ..Batches::default()
            }),
            wake: Condvar::new(),
            mirror: Mutex::new(committed.unwrap_or_default()),
        });
        let shared = Arc::clone(&durable);
        let applier = std::thread::Builder::new()
            .name("spalloc-apply".into())
            .spawn(move || apply_loop(store, &shared));
        let applier = match applier {
            Ok(thread) => Some(thread),
            Err(e) => {
                // The journal then keeps every change until the next start
                // applies it; nothing is lost, the journal just grows.
                error!(error = %e, "cannot start the state file's applier thread");
                None
            }
        };
        Writer {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue::default()),
                durable,
                base,
                report,
                synchronous,
                path,
                applier: Mutex::new(applier),
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
            let started = std::time::Instant::now();
            let result = self.blocking(|| self.journal(group));
            crate::metrics::events::global().store_commit(result.is_ok(), started.elapsed());
            if result.is_err() {
                let mut queue = lock(&self.inner.queue);
                queue.discarding = true;
                queue.pending.clear();
            }
            // Reported while still the committer, so reports arrive in order.
            (self.inner.report)(last, result);
            // The round ends here; the next one takes what was queued
            // meanwhile (unless a newcomer has).
        }
    }

    /// Appends a group to the journal and hands it to the applier.
    fn journal(&self, group: Vec<(u64, RecordChanges, bool)>) -> Result<(), String> {
        let base = self.inner.base;
        let durable = &self.inner.durable;
        let mut journal = lock(&durable.journal);
        let sets: Vec<(u64, &RecordChanges, bool)> = group
            .iter()
            .map(|(seq, changes, all)| (base + seq, changes, *all))
            .collect();
        journal.append(&sets).map_err(|e| e.to_string())?;
        // Handed over under the journal's lock, so that the applier, which
        // switches files under it too, takes everything in the file it
        // switched away from.
        let mut batches = lock(&durable.batches);
        batches
            .waiting
            .extend(group.into_iter().map(|(seq, changes, all)| {
                Arc::new(Entry {
                    seq: base + seq,
                    changes,
                    all,
                })
            }));
        let wake = batches.waiting.len() >= APPLY_AFTER;
        drop(batches);
        drop(journal);
        if wake {
            durable.wake.notify_one();
        }
        Ok(())
    }

    /// Runs a journal write; one that waits for the disk gives its tokio
    /// worker's other tasks to another thread meanwhile.
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

    /// What the file holds as of the last successful commit: the tables,
    /// and the journal's changes not yet applied to them.
    pub fn committed_records(&self) -> Records {
        let durable = &self.inner.durable;
        let batches = lock(&durable.batches);
        let mut mirror = lock(&durable.mirror).clone();
        for set in batches.in_flight.iter().chain(&batches.waiting) {
            mirror.apply(&set.changes, set.all);
        }
        mirror.records()
    }

    /// The state file.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.path
    }
}

/// The applier thread: every [`APPLY_EVERY`], or when woken, writes the
/// journaled change sets into SQLite and empties the journal file they
/// came from; when the writer is gone, applies what is left, empties the
/// journal and ends.
fn apply_loop(mut store: Store, durable: &Durable) {
    let checkpointer = Checkpointer::spawn(&store);
    let mut failing = false;
    loop {
        let stop = wait_for_work(durable);
        let batch = take_batch(durable);
        if batch.is_empty() {
            if stop {
                return;
            }
            continue;
        }
        let through = batch.last().map_or(0, |s| s.seq);
        let sets: Vec<(&RecordChanges, bool)> = batch.iter().map(|s| (&s.changes, s.all)).collect();
        let started = std::time::Instant::now();
        let result = store.commit_through(&sets, Some(through));
        let waiting = {
            let batches = lock(&durable.batches);
            batches.waiting.len() + if result.is_ok() { 0 } else { batch.len() }
        };
        crate::metrics::events::global().store_apply(result.is_ok(), started.elapsed(), waiting);
        match result {
            Ok(()) => {
                if failing {
                    info!(file = %store.path().display(), "the state file's tables are written again");
                    failing = false;
                }
                applied(durable, batch.len(), through);
                if let Some(checkpointer) = &checkpointer {
                    checkpointer.committed();
                }
            }
            Err(e) => {
                if !failing {
                    warn!(
                        error = %e,
                        file = %store.path().display(),
                        "cannot write the journal's changes into the state file's tables; they \
                         stay in the journal (nothing is lost) and will be tried again"
                    );
                    failing = true;
                }
                if stop {
                    return; // the next start applies them
                }
                let batches = lock(&durable.batches);
                let _ = durable.wake.wait_timeout(batches, RETRY_AFTER);
            }
        }
    }
}

/// Waits until change sets wait and [`APPLY_EVERY`] has passed (or
/// [`APPLY_AFTER`] of them wait, or the writer stops); returns whether it
/// stops.
fn wait_for_work(durable: &Durable) -> bool {
    let mut batches = lock(&durable.batches);
    loop {
        if batches.stop {
            return true;
        }
        let (next, timeout) = durable
            .wake
            .wait_timeout(batches, APPLY_EVERY)
            .unwrap_or_else(|p| p.into_inner());
        batches = next;
        let enough = batches.waiting.len() >= APPLY_AFTER;
        if batches.stop
            || enough
            || (timeout.timed_out()
                && !(batches.waiting.is_empty() && batches.in_flight.is_empty()))
        {
            return batches.stop;
        }
    }
}

/// Switches the committer to the other journal file if it is empty, and
/// takes every waiting change set (with those of a failed round).
fn take_batch(durable: &Durable) -> Vec<Arc<Entry>> {
    let mut journal = lock(&durable.journal);
    let mut batches = lock(&durable.batches);
    journal.switch();
    let waiting = std::mem::take(&mut batches.waiting);
    batches.in_flight.extend(waiting);
    batches.in_flight.clone()
}

/// The first `count` change sets in flight are in SQLite, through journal
/// entry `through`: the mirror takes them, and the journal file not
/// appended to is emptied if they were all it held.
fn applied(durable: &Durable, count: usize, through: u64) {
    let mut journal = lock(&durable.journal);
    {
        let mut batches = lock(&durable.batches);
        let mut mirror = lock(&durable.mirror);
        for set in batches.in_flight.drain(..count) {
            mirror.apply(&set.changes, set.all);
        }
    }
    if let Err(e) = journal.release_through(through) {
        // It is kept, and the committer stays on the other file; the
        // next round tries again.
        warn!(error = %e, "cannot empty a journal file of the state file");
    }
    let done = {
        let batches = lock(&durable.batches);
        batches.stop && batches.waiting.is_empty()
    };
    if done {
        // Nothing will be appended any more: empty the other file too.
        if journal.switch() {
            let _ = journal.release_through(through);
        }
    }
}
