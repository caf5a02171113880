//! The writer thread: commits change sets in groups, off the server's lock.
//!
//! The server hands each turn's [`RecordChanges`] to [`Writer::submit`]
//! with a sequence number and carries on. The thread takes everything
//! queued, commits it in one transaction (so a slow disk costs one commit
//! per group, not per change, and with `synchronous = FULL` one flush per
//! group), and reports the last sequence number committed. The server
//! releases what it held for those turns only then.
//!
//! A failed commit is reported with its error; the thread then drops every
//! change queued after it until [`Writer::reset`], because those changes
//! were made on top of the refused ones. The server rolls its controller
//! back to [`Writer::committed_records`] (a copy of what the file holds,
//! kept here so that a rollback does not need the failing disk) and
//! submits everything again.

use super::Store;
use crate::core::job::Job;
use crate::core::records::{MachineRecord, RecordChanges, Records};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tracing::error;

/// Called on the writer thread after each group: the last sequence number
/// in it, and whether it was committed.
pub type Report = Box<dyn Fn(u64, Result<(), String>) + Send>;

enum Message {
    Changes {
        seq: u64,
        changes: RecordChanges,
        all: bool,
    },
    Reset,
}

/// What the file holds, as of the last successful commit.
#[derive(Debug, Default)]
struct Mirror {
    next_job_id: u64,
    machines: Vec<MachineRecord>,
    jobs: BTreeMap<u64, Job>,
    retired: BTreeMap<u64, (u64, Option<String>)>,
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
        }
    }

    fn apply(&mut self, changes: RecordChanges, all: bool) {
        if all {
            self.jobs.clear();
            self.retired.clear();
        }
        self.next_job_id = changes.next_job_id;
        if let Some(machines) = changes.machines {
            self.machines = machines;
        }
        for (id, job) in changes.jobs {
            match job {
                Some(job) => self.jobs.insert(id, job),
                None => self.jobs.remove(&id),
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
        }
    }
}

/// The handle of a running writer thread; dropping it lets the thread
/// finish what is queued and end.
pub struct Writer {
    queue: mpsc::Sender<Message>,
    mirror: Arc<Mutex<Mirror>>,
    path: PathBuf,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.path).finish()
    }
}

impl Writer {
    /// Starts the thread for `store`, whose file holds `committed` (as
    /// read when it was opened).
    pub fn spawn(mut store: Store, committed: Option<Records>, report: Report) -> Writer {
        let path = store.path().to_owned();
        let mirror = Arc::new(Mutex::new(
            committed.map(Mirror::from_records).unwrap_or_default(),
        ));
        let (queue, inbox) = mpsc::channel::<Message>();
        let thread_mirror = Arc::clone(&mirror);
        let spawned = std::thread::Builder::new()
            .name("spalloc-store".into())
            .spawn(move || {
                let mut discarding = false;
                while let Ok(first) = inbox.recv() {
                    let mut group = Vec::new();
                    for message in std::iter::once(first).chain(inbox.try_iter()) {
                        match message {
                            Message::Reset => {
                                discarding = false;
                                group.clear();
                            }
                            Message::Changes { .. } if discarding => {}
                            Message::Changes { seq, changes, all } => {
                                group.push((seq, changes, all));
                            }
                        }
                    }
                    let Some(last) = group.last().map(|g| g.0) else {
                        continue;
                    };
                    let batch: Vec<(RecordChanges, bool)> =
                        group.into_iter().map(|(_, c, all)| (c, all)).collect();
                    match store.commit(&batch) {
                        Ok(()) => {
                            let mut mirror =
                                thread_mirror.lock().unwrap_or_else(|p| p.into_inner());
                            for (changes, all) in batch {
                                mirror.apply(changes, all);
                            }
                            drop(mirror);
                            report(last, Ok(()));
                        }
                        Err(e) => {
                            discarding = true;
                            report(last, Err(e));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            // Nothing would ever be committed: every change is refused.
            error!(error = %e, "cannot start the state writer thread");
        }
        Writer {
            queue,
            mirror,
            path,
        }
    }

    /// Queues a change set for commit.
    pub fn submit(&self, seq: u64, changes: RecordChanges, all: bool) -> Result<(), String> {
        self.queue
            .send(Message::Changes { seq, changes, all })
            .map_err(|_| "the state writer thread has stopped".to_owned())
    }

    /// After a failed commit has been handled: accept changes again.
    pub fn reset(&self) {
        let _ = self.queue.send(Message::Reset);
    }

    /// What the file holds as of the last successful commit.
    pub fn committed_records(&self) -> Records {
        self.mirror
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records()
    }

    /// The state file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}
