//! State shared by every task of a running server: the service behind one
//! lock, each client's outgoing queue, and the BMP workers' inboxes.
//!
//! Every mutation of the service goes through [`Shared::with`], which, while
//! still holding the lock, hands new BMP work to the workers and queues the
//! resulting notifications for the clients. Doing that under the lock keeps
//! a client's reply ahead of the notifications its own request caused, as
//! in the reference.
//!
//! With a state file, [`State::flush`] hands the records a turn changed to
//! the store's writer (`store::writer`) and holds the turn's replies,
//! notifications and BMP work until the writer reports the commit
//! ([`Shared::committed`]): nothing a client or a BMP sees can be lost by a
//! crash. [`Shared::with`] then releases the lock and has the writer
//! commit on the same thread (or leave it to a commit already running,
//! which takes it next), so the lock is never held while the disk works
//! and a lone change costs no hand-over to another thread. A turn that
//! changed nothing is answered at once, unless an earlier change is still
//! being committed (its answer could show that change) or the client has
//! held replies (which it must receive first).
//!
//! A commit that fails refuses the changes it carried: the controller is
//! rolled back to what the file holds (rebuilt from the writer's copy of
//! the committed records, as on a restart), every held reply becomes an
//! exception saying so, and held notifications and BMP work are dropped
//! (the rebuilt controller issues its own). Calls that change nothing keep
//! working meanwhile, and the next change tries the disk again.

use crate::bmp::BmpDispatcher;
use crate::clock;
use crate::config::ServerConfig;
use crate::core::bmp_request::BmpRequest;
use crate::core::controller::Controller;
use crate::core::watch::ClientId;
use crate::server::outbox::Outbox;
use crate::service::Service;
use crate::store::writer::Writer;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use tracing::{error, info, warn};

/// How many unsent messages a client may have queued before we give up on
/// it: a client that never reads must not make the server's memory grow.
/// Its requests stop being read at half this
/// ([`REPLY_LEVEL`](crate::server::backlog::REPLY_LEVEL)), so only
/// unread notifications reach it.
pub const CLIENT_QUEUE_LIMIT: usize = 4096;

/// How many bytes of unsent messages a client may have queued before we give
/// up on it (the message count alone does not bound memory). A message is
/// refused only once the queue already holds this much, so one reply of any
/// size is always taken while the queue is below the reply level: a listing
/// never costs its reader the connection (see `cmd::create_job` for how big
/// one job's record can be).
pub const CLIENT_QUEUE_BYTES: usize = 16 << 20;

/// Something a turn produced, held until the turn's changes are committed.
enum Output {
    Reply(ClientId, Vec<u8>),
    Notification(ClientId, Vec<u8>),
    Bmp(BmpRequest),
    /// A reload's new BMP back ends (see [`State::reconfigure_bmp`]).
    BmpReconfigure(Box<BmpReconfiguration>),
}

/// What [`BmpDispatcher::reconfigure`] takes.
struct BmpReconfiguration {
    config: ServerConfig,
    gone: Vec<String>,
    fresh: Vec<String>,
}

/// The state file's side of [`State`]: the writer and what waits for it.
struct Journal {
    writer: Writer,
    /// The last change set handed to the writer.
    submitted: u64,
    /// The last change set committed.
    committed: u64,
    /// Whether the next change set must rewrite every record (at first,
    /// and after a failed commit).
    rewrite_all: bool,
    /// Outputs waiting for the commit of their change set, in order.
    waiting: VecDeque<(u64, Output)>,
    /// The last change set committed successfully.
    ok_through: u64,
    /// The change sets refused by the last failed commit (inclusive).
    refused: (u64, u64),
    /// How many replies each client has waiting (its later replies wait
    /// too, to stay in order).
    waiting_replies: HashMap<ClientId, usize>,
}

/// Mutable server state behind the lock.
pub struct State {
    /// The sans-I/O service.
    pub service: Service,
    /// Outgoing queues of connected clients.
    pub clients: HashMap<ClientId, Outbox>,
    /// Where BMP requests go.
    pub bmp: BmpDispatcher,
    journal: Option<Journal>,
    /// Replies of the current turn.
    held: Vec<(ClientId, Vec<u8>)>,
    /// BMP work and back-end changes of the current turn, in order, ahead
    /// of the controller's other BMP work (a reload's).
    held_bmp: Vec<Output>,
    /// Bumped by every turn that changed something and by every commit
    /// report: HTTP long-polls and replies waiting for a commit watch it.
    changed: tokio::sync::watch::Sender<u64>,
}

impl State {
    /// A state with no clients, committing its changes through `writer` if
    /// given (see [`Shared::new`] for how its reports come back).
    pub fn new(service: Service, bmp: BmpDispatcher, writer: Option<Writer>) -> State {
        State {
            service,
            clients: HashMap::new(),
            bmp,
            journal: writer.map(|writer| Journal {
                writer,
                submitted: 0,
                committed: 0,
                rewrite_all: true,
                waiting: VecDeque::new(),
                ok_through: 0,
                refused: (1, 0),
                waiting_replies: HashMap::new(),
            }),
            held: Vec::new(),
            held_bmp: Vec::new(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The last change set handed to the state file's writer (0 without one).
    pub fn change_set(&self) -> u64 {
        self.journal.as_ref().map_or(0, |j| j.submitted)
    }

    /// Whether change set `seq` is committed (`Some(true)`), refused
    /// (`Some(false)`), or still being written (`None`).
    pub fn commit_outcome(&self, seq: u64) -> Option<bool> {
        let Some(j) = &self.journal else {
            return Some(true);
        };
        if (j.refused.0..=j.refused.1).contains(&seq) {
            Some(false)
        } else if j.ok_through >= seq {
            Some(true)
        } else {
            None
        }
    }

    /// The state file, if the server keeps one (other modules open their
    /// own connection to it).
    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.journal.as_ref().map(|j| j.writer.path())
    }

    /// Queues a message for a client; it leaves at the next [`State::flush`],
    /// after the change that caused it is committed.
    pub fn send(&mut self, client: ClientId, line: Vec<u8>) {
        self.held.push((client, line));
    }

    /// Adopts a reload's BMP back ends once the turn's changes are
    /// committed, like every other output of the turn: first `before` (the
    /// power-offs of jobs destroyed with their machine, for the old
    /// machine's workers), then the dispatcher's reconfiguration (see
    /// [`BmpDispatcher::reconfigure`]), then `after` (work for the new
    /// configuration's workers). Work of later turns follows them.
    pub fn reconfigure_bmp(
        &mut self,
        before: Vec<BmpRequest>,
        config: ServerConfig,
        gone: Vec<String>,
        fresh: Vec<String>,
        after: Vec<BmpRequest>,
    ) {
        self.held_bmp.extend(before.into_iter().map(Output::Bmp));
        self.held_bmp
            .push(Output::BmpReconfigure(Box::new(BmpReconfiguration {
                config,
                gone,
                fresh,
            })));
        self.held_bmp.extend(after.into_iter().map(Output::Bmp));
    }

    /// How many of a client's replies wait for a commit: they count
    /// towards its backlog (see [`crate::server::backlog`]).
    pub fn replies_waiting(&self, client: ClientId) -> usize {
        self.journal
            .as_ref()
            .and_then(|j| j.waiting_replies.get(&client))
            .copied()
            .unwrap_or(0)
    }

    /// Whether every change made so far is committed.
    pub fn is_committed(&self) -> bool {
        self.journal
            .as_ref()
            .map_or(true, |j| j.committed == j.submitted)
    }

    /// Hands a message to a client's queue. A client whose queue is full is
    /// disconnected (its outbox dropped, which hangs up its connection).
    fn deliver(&mut self, client: ClientId, line: Vec<u8>) {
        let Some(outbox) = self.clients.get(&client) else {
            return;
        };
        if outbox.try_send(line).is_err() {
            warn!(
                client,
                "client is not reading what it is sent (its queue is full); disconnecting it"
            );
            self.clients.remove(&client);
            self.service.client_disconnected(client);
        }
    }

    /// Hands the turn's changed records to the writer, then hands out (or,
    /// until they are committed, holds) the turn's replies, BMP work and
    /// notifications.
    pub fn flush(&mut self) {
        let mut outputs: Vec<Output> = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(c, l)| Output::Reply(c, l))
            .collect();
        outputs.append(&mut self.held_bmp);
        outputs.extend(
            self.service
                .take_bmp_requests()
                .into_iter()
                .map(Output::Bmp),
        );
        for (client, note) in self.service.take_notifications() {
            let line = spalloc_protocol::frame::encode_line(&note.to_value());
            outputs.push(Output::Notification(client, line));
        }
        if self.service.controller.has_unsaved_changes()
            || outputs.iter().any(|o| !matches!(o, Output::Reply(..)))
        {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        let Some(journal) = &mut self.journal else {
            // Nothing to save them to: without this, every later turn
            // would count as a change (and wake every HTTP long-poll).
            self.service.controller.discard_record_changes();
            for output in outputs {
                self.release(output);
            }
            return;
        };
        if self.service.controller.has_unsaved_changes() {
            let all = journal.rewrite_all;
            let changes = self.service.controller.take_record_changes(all);
            journal.rewrite_all = false;
            journal.submitted += 1;
            journal.writer.submit(journal.submitted, changes, all);
        }
        if journal.committed == journal.submitted {
            for output in outputs {
                self.release(output);
            }
            return;
        }
        let seq = journal.submitted;
        for output in outputs {
            self.hold(seq, output);
        }
    }

    /// Holds an output until change set `seq` is committed.
    fn hold(&mut self, seq: u64, output: Output) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        if let Output::Reply(client, _) = &output {
            *journal.waiting_replies.entry(*client).or_default() += 1;
        }
        journal.waiting.push_back((seq, output));
    }

    fn release(&mut self, output: Output) {
        match output {
            Output::Reply(client, line) | Output::Notification(client, line) => {
                self.deliver(client, line);
            }
            Output::Bmp(request) => self.bmp.dispatch(request),
            Output::BmpReconfigure(r) => self.bmp.reconfigure(&r.config, &r.gone, &r.fresh),
        }
    }

    /// The writer's report on the change sets up to `seq`: on success their
    /// outputs leave; on failure every uncommitted change is refused (see
    /// the module documentation).
    pub fn committed(&mut self, seq: u64, result: Result<(), String>) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        match result {
            Ok(()) => {
                journal.committed = journal.committed.max(seq);
                journal.ok_through = journal.ok_through.max(seq);
                self.changed.send_modify(|n| *n = n.wrapping_add(1));
                let mut released = Vec::new();
                while journal.waiting.front().is_some_and(|(s, _)| *s <= seq) {
                    if let Some((_, output)) = journal.waiting.pop_front() {
                        if let Output::Reply(client, _) = &output {
                            if let Some(n) = journal.waiting_replies.get_mut(client) {
                                *n -= 1;
                                if *n == 0 {
                                    journal.waiting_replies.remove(client);
                                }
                            }
                        }
                        released.push(output);
                    }
                }
                for output in released {
                    self.release(output);
                }
            }
            Err(e) => {
                error!(
                    error = %e,
                    file = %journal.writer.path().display(),
                    "cannot commit to the state file; the changes are refused and undone"
                );
                let refusal = spalloc_protocol::ServerMessage::Exception(format!(
                    "the server could not save this change to its state file ({e}); \
                     it was not made, try again later"
                ))
                .to_line();
                let waiting = std::mem::take(&mut journal.waiting);
                journal.waiting_replies.clear();
                journal.refused = (journal.ok_through + 1, journal.submitted);
                journal.committed = journal.submitted;
                self.changed.send_modify(|n| *n = n.wrapping_add(1));
                let records = journal.writer.committed_records();
                journal.writer.reset();
                roll_back(&mut self.service.controller, records);
                // The rebuilt controller is what the file holds: nothing to
                // write (rewriting it all could fail again on a full disk
                // and hold up every read).
                let _ = self.service.controller.take_record_changes(false);
                // Undone: forget what the rolled-back turns would notify.
                self.service.take_notifications();
                for (_, output) in waiting {
                    match output {
                        Output::Reply(client, _) => self.deliver(client, refusal.clone()),
                        // The rolled-back controller keeps the reloaded
                        // machines: their back ends are needed all the same.
                        reconfigure @ Output::BmpReconfigure(_) => self.release(reconfigure),
                        Output::Notification(..) | Output::Bmp(_) => {}
                    }
                }
                info!("state rolled back to the last commit");
            }
        }
    }
}

/// Replaces a controller whose changes could not be committed by one
/// rebuilt from the committed `records`, keeping its settings, machines
/// and BMP request numbering (so that late completions of its requests
/// are ignored, not mistaken for the new ones').
fn roll_back(controller: &mut Controller, records: crate::core::records::Records) {
    let machines = controller.machines().map(|m| m.as_ref().clone()).collect();
    let mut rebuilt = Controller::from_records_numbering_bmp_requests_from(
        controller.settings(),
        records,
        machines,
        clock::now(),
        controller.next_bmp_request_id(),
    );
    rebuilt.set_quota_settings(controller.quota_settings().clone());
    std::mem::swap(controller, &mut rebuilt);
}

impl crate::bmp::Completions for Shared {
    fn bmp_requests_done(
        &self,
        done: Vec<(
            crate::core::bmp_request::BmpRequest,
            Result<(), crate::core::bmp_request::BmpFailure>,
        )>,
    ) {
        self.with(|state| {
            let now = clock::now();
            for (request, result) in done {
                state
                    .service
                    .controller
                    .bmp_request_finished(&request, result, now);
            }
        });
    }
}

/// The lock around [`State`], and the state file's writer, which commits
/// what a turn submitted once the lock is released.
pub struct Shared {
    state: Mutex<State>,
    writer: Option<Writer>,
}

impl Shared {
    /// Wraps the initial state.
    pub fn new(state: State) -> Shared {
        let writer = state.journal.as_ref().map(|j| j.writer.clone());
        Shared {
            state: Mutex::new(state),
            writer,
        }
    }

    /// The writer's report (see [`State::committed`]), then a flush of what
    /// a rollback issued.
    pub fn committed(&self, seq: u64, result: Result<(), String>) {
        let mut state = self.lock();
        state.committed(seq, result);
        state.flush();
    }

    /// Commits what the turns so far submitted (on this thread, unless
    /// another is committing already: see `store::writer`).
    fn commit_pending(&self) {
        if let Some(writer) = &self.writer {
            writer.commit_pending();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving rather
        // than poisoning every other client.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver told of every change and commit (for HTTP long-polls and
    /// HTTP replies waiting for their commit).
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.lock().changed.subscribe()
    }

    /// Reads the state without changing it (so without a flush, which would
    /// signal a change to every long-poll): for pages and metrics.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Runs `f` on the state, then flushes BMP work and notifications.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.lock();
        let result = f(&mut state);
        state.flush();
        drop(state);
        self.commit_pending();
        result
    }
}

#[cfg(test)]
mod tests;
