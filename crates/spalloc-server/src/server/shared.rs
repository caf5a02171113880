//! State shared by every task of a running server: the service behind one
//! lock, each client's outgoing queue, and the BMP workers' inboxes.
//!
//! Every mutation of the service goes through [`Shared::with`], which, while
//! still holding the lock, hands new BMP work to the workers and queues the
//! resulting notifications for the clients. Doing that under the lock keeps
//! a client's reply ahead of the notifications its own request caused, as
//! in the reference.

use crate::bmp::BmpDispatcher;
use crate::core::watch::ClientId;
use crate::service::Service;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// How many unsent messages a client may have queued before we give up on
/// it: a client that never reads must not make the server's memory grow.
pub const CLIENT_QUEUE_LIMIT: usize = 4096;

/// The sending side of a client's outgoing queue. Dropping it (removing the
/// client from [`State::clients`]) also hangs up the connection, even when
/// its writer is stuck on a client that never reads.
pub struct Outbox {
    queue: mpsc::Sender<Vec<u8>>,
    _hangup: oneshot::Sender<()>,
}

impl Outbox {
    /// An outbox feeding `queue`; `hangup`'s receiver completes when the
    /// outbox is dropped.
    pub fn new(queue: mpsc::Sender<Vec<u8>>, hangup: oneshot::Sender<()>) -> Outbox {
        Outbox {
            queue,
            _hangup: hangup,
        }
    }

    /// Queues a line without waiting; fails if the queue is full or closed.
    pub fn try_send(&self, line: Vec<u8>) -> Result<(), mpsc::error::TrySendError<Vec<u8>>> {
        self.queue.try_send(line)
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
}

impl State {
    /// Queues a message for a client. A client whose queue is full or whose
    /// writer has gone is disconnected (its outbox dropped, which ends its
    /// writer; the reader notices and cleans up).
    pub fn send(&mut self, client: ClientId, line: Vec<u8>) {
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

    /// Hands out new BMP work and pending notifications.
    pub fn flush(&mut self) {
        for request in self.service.take_bmp_requests() {
            self.bmp.dispatch(request);
        }
        for (client, note) in self.service.take_notifications() {
            let line = spalloc_protocol::frame::encode_line(&note.to_value());
            self.send(client, line);
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

    /// Runs `f` on the state, then flushes BMP work and notifications.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.lock();
        let result = f(&mut state);
        state.flush();
        result
    }
}
