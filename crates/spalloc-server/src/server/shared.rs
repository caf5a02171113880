//! State shared by every task of a running server: the service behind one
//! lock, each client's outgoing queue, and the BMP workers' inboxes.
//!
//! Every mutation of the service goes through [`Shared::with`], which, while
//! still holding the lock, hands new BMP work to the workers and queues the
//! resulting notifications for the clients. Doing that under the lock keeps
//! a client's reply ahead of the notifications its own request caused, as
//! in the reference.
//!
//! With a state file, [`State::flush`] first commits the controller's
//! snapshot whenever it changed, and only then releases the replies queued
//! during `f` (held until then), the notifications and the BMP work: nothing
//! a client or a BMP sees can be lost by a crash.

use crate::bmp::BmpDispatcher;
use crate::core::watch::ClientId;
use crate::service::Service;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// How many unsent messages a client may have queued before we give up on
/// it: a client that never reads must not make the server's memory grow.
pub const CLIENT_QUEUE_LIMIT: usize = 4096;

/// How many bytes of unsent messages a client may have queued before we give
/// up on it: the message count alone does not bound memory, since one
/// `list_jobs` reply can be large.
pub const CLIENT_QUEUE_BYTES: usize = 16 << 20;

/// The sending side of a client's outgoing queue. Dropping it (removing the
/// client from [`State::clients`]) also hangs up the connection, even when
/// its writer is stuck on a client that never reads.
pub struct Outbox {
    queue: mpsc::Sender<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    _hangup: oneshot::Sender<()>,
}

impl Outbox {
    /// An outbox feeding `queue`; `queued_bytes` counts the bytes queued and
    /// not yet written (the writer subtracts what it has written), and
    /// `hangup`'s receiver completes when the outbox is dropped.
    pub fn new(
        queue: mpsc::Sender<Vec<u8>>,
        queued_bytes: Arc<AtomicUsize>,
        hangup: oneshot::Sender<()>,
    ) -> Outbox {
        Outbox {
            queue,
            queued_bytes,
            _hangup: hangup,
        }
    }

    /// Queues a line without waiting; fails if the queue is full (in
    /// messages, [`CLIENT_QUEUE_LIMIT`], or bytes, [`CLIENT_QUEUE_BYTES`]) or
    /// closed.
    pub fn try_send(&self, line: Vec<u8>) -> Result<(), mpsc::error::TrySendError<Vec<u8>>> {
        let len = line.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        let result = if before + len > CLIENT_QUEUE_BYTES {
            Err(mpsc::error::TrySendError::Full(line))
        } else {
            self.queue.try_send(line)
        };
        if result.is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        }
        result
    }
}

/// Mutable server state behind the lock.
pub struct State {
    /// The sans-I/O service.
    pub service: Service,
    /// Outgoing queues of connected clients.
    pub clients: HashMap<ClientId, Outbox>,
    /// Where BMP requests go.
    pub bmp: BmpDispatcher,
    /// The state file, if the server keeps one.
    pub store: Option<Store>,
    /// The controller revision last saved.
    saved_revision: u64,
    /// Replies waiting for the state to be committed.
    held: Vec<(ClientId, Vec<u8>)>,
    /// "State changed" signal for long-polls: bumped by each flush after a
    /// change (the controller revision last signalled).
    changed: tokio::sync::watch::Sender<u64>,
}

impl State {
    /// A state with no clients, saving to `store` if given.
    pub fn new(service: Service, bmp: BmpDispatcher, store: Option<Store>) -> State {
        State {
            service,
            clients: HashMap::new(),
            bmp,
            store,
            saved_revision: u64::MAX,
            held: Vec::new(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Queues a message for a client; it leaves at the next [`State::flush`],
    /// after the change that caused it is committed.
    pub fn send(&mut self, client: ClientId, line: Vec<u8>) {
        self.held.push((client, line));
    }

    /// Commits the controller's snapshot if it changed since the last save.
    /// A failed save is logged and retried at the next change; the server
    /// keeps serving.
    pub fn save(&mut self) {
        let Some(store) = &mut self.store else {
            return;
        };
        let revision = self.service.controller.revision();
        if revision == self.saved_revision {
            return;
        }
        // After a failure (or at first) everything is saved again.
        let all = self.saved_revision == u64::MAX;
        let controller = &mut self.service.controller;
        let jobs = controller.take_job_changes(all);
        let (retired, floor) = controller.take_retired_changes(all);
        let snapshot = controller.snapshot_without_jobs();
        match store.save(&snapshot, &jobs, &retired, floor, all) {
            Ok(()) => self.saved_revision = revision,
            Err(e) => {
                tracing::error!(error = %e, "could not save the state");
                self.saved_revision = u64::MAX;
            }
        }
    }

    /// Hands a message to a client's queue. A client whose queue is full or
    /// whose writer has gone is disconnected (its outbox dropped, which ends
    /// its writer; the reader notices and cleans up).
    fn deliver(&mut self, client: ClientId, line: Vec<u8>) {
        let Some(outbox) = self.clients.get(&client) else {
            return;
        };
        if let Err(e) = outbox.try_send(line) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                warn!(
                    client,
                    "client is not reading its replies; disconnecting it"
                );
            }
            self.clients.remove(&client);
            self.service.client_disconnected(client);
        }
    }

    /// Saves the state if it changed, then hands out held replies, new BMP
    /// work and pending notifications.
    pub fn flush(&mut self) {
        self.save();
        let revision = self.service.controller.revision();
        self.changed
            .send_if_modified(|r| std::mem::replace(r, revision) != revision);
        for (client, line) in std::mem::take(&mut self.held) {
            self.deliver(client, line);
        }
        for request in self.service.take_bmp_requests() {
            self.bmp.dispatch(request);
        }
        for (client, note) in self.service.take_notifications() {
            let line = spalloc_protocol::frame::encode_line(&note.to_value());
            self.deliver(client, line);
        }
    }
}

/// The lock around [`State`].
pub struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Wraps the initial state.
    pub fn new(state: State) -> Shared {
        Shared {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving rather
        // than poisoning every other client.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver told of every committed change (for long-polls).
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.lock().changed.subscribe()
    }

    /// Runs `f` on the state, then flushes BMP work and notifications.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.lock();
        let result = f(&mut state);
        state.flush();
        result
    }
}
