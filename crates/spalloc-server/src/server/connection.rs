//! One client connection, served by one task: it frames lines, runs them
//! through the service, and writes the replies and the notifications other
//! tasks queue for the client (see [`crate::server::outbox`]).
//!
//! Hostile and broken clients are contained here: lines are capped in
//! length, the number of connections is capped ([`ConnectionLimit`]), a
//! client that sends requests faster than it reads the replies is slowed
//! down (its socket is not read while its replies are
//! [`backlogged`](crate::server::backlog)), a client that stops reading is
//! hung up on once nothing has been written to it for
//! [`ConnectionSettings::stall_timeout`] or its bounded queue fills with
//! notifications (even while its socket takes nothing), and TCP keepalive
//! makes half-open connections (a peer that vanished without a FIN) fail and
//! be cleaned up.
//! There is deliberately no idle timeout: clients legitimately sit idle while
//! watching for notifications.

use crate::clock;
use crate::cmd::Caller;
use crate::core::watch::ClientId;
use crate::server::backlog::Backlog;
use crate::server::outbox::{self, Inbox};
use crate::server::shared::Shared;
use spalloc_protocol::{FrameError, LineBuffer, ServerMessage};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::WriteHalf;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How long a connection may take to flush its last replies after the
/// client has stopped sending, before it is cut anyway.
pub const FLUSH_GRACE: Duration = Duration::from_secs(10);

/// Idle time before the first TCP keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Counts live connections against the `max_connections` cap.
#[derive(Debug)]
pub struct ConnectionLimit {
    live: AtomicUsize,
    max: usize,
}

/// One taken place under a [`ConnectionLimit`]; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<ConnectionLimit>);

impl ConnectionLimit {
    /// A limit of `max` simultaneous connections.
    pub fn new(max: usize) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            live: AtomicUsize::new(0),
            max,
        })
    }

    /// Takes a place, or `None` if `max` connections are already live.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(self)))
    }

    /// How many connections are live.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Turns away a connection: one exception line saying why, then close. Done
/// at once (a fresh socket's send buffer always has room for one line), so
/// that a flood of refused clients holds no descriptors.
pub fn refuse(stream: TcpStream, why: &str) {
    let reply = ServerMessage::Exception(why.to_owned());
    let _ = stream.try_write(&reply.to_line());
}

/// Logs refused connections without flooding the log: the first of a
/// burst at once, then a count at most every [`RefusalLog::EVERY`].
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl RefusalLog {
    /// The least time between two log lines.
    pub const EVERY: Duration = Duration::from_secs(10);

    /// Records one refusal; returns how many to report now, if it is time.
    pub fn refused(&mut self) -> Option<u64> {
        self.unlogged += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// What a connection beyond `max_connections` is told.
pub fn too_many_connections(max: usize) -> String {
    format!("too many connections (the server allows {max}); try again later")
}

/// Turns on TCP keepalive so that a peer that vanished (power cut, cable
/// pulled, NAT state lost) is detected and its connection cleaned up.
fn enable_keepalive(stream: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "freebsd"))]
    let keepalive = keepalive
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        debug!(error = %e, "could not enable TCP keepalive");
    }
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// The longest request line accepted.
    pub max_line: usize,
    /// How long a client may leave its replies unread (nothing at all
    /// written to it) while more of its requests wait, before it is
    /// considered never to read and is disconnected.
    pub stall_timeout: Duration,
}

/// A line buffer that held a long line keeps its capacity; once empty and
/// this much has gone through it, it is replaced by a fresh one so that one
/// big request does not cost its connection memory for the rest of its life.
const LINE_BUFFER_RECYCLE: usize = 64 * 1024;

/// Why the connection stopped handling the buffered lines.
enum Batch {
    /// Every complete line was handled: read more from the socket.
    Drained,
    /// The replies reached [`REPLY_LEVEL`](crate::server::backlog::REPLY_LEVEL):
    /// wait for the client to read some before handling the rest.
    Paused,
    /// Close the connection (a line too long, or the client was dropped).
    Close,
}

/// How a connection ends.
enum Ending {
    /// The client stopped sending, or sent a line too long: what is queued
    /// for it is still written, within [`FLUSH_GRACE`].
    Finished,
    /// The server hung up (see [`crate::server::outbox`]), the client never
    /// read its replies, or the socket failed: closed at once.
    Cut,
}

/// How often a connection whose replies wait for the state file's commit
/// (and not for the client) looks again, should the commit not wake it.
const COMMIT_POLL: Duration = Duration::from_millis(5);

/// Serves one client until it disconnects, misbehaves or the server stops.
///
/// One task reads the requests, handles them and writes the replies and
/// the notifications that other tasks queue for the client: a reply is
/// written as soon as it is produced, with no hand-over to another task,
/// and the task waits for the socket to take more only when it did not
/// take everything at once.
pub async fn serve(
    mut stream: TcpStream,
    client: ClientId,
    shared: Arc<Shared>,
    settings: ConnectionSettings,
) {
    let peer = stream.peer_addr().ok();
    let host = peer.map(|p| p.ip().to_string());
    // Replies are small and latency matters; never let Nagle hold them back
    // (the reference's missing TCP_NODELAY costs ~40 ms per notified reply).
    let _ = stream.set_nodelay(true);
    enable_keepalive(&stream);
    let (outbox, mut inbox) = outbox::channel();
    shared.with(|s| s.clients.insert(client, outbox));
    debug!(client, peer = ?peer, "client connected");
    let (mut reader, mut writer) = stream.split();

    let caller = Caller { client, host };
    let mut lines = LineBuffer::new(settings.max_line);
    let mut through_buffer = 0usize;
    // Requests are short lines; a small buffer keeps an idle connection cheap
    // (16 KiB here cost ~15 KiB of resident memory per connection).
    let mut buf = vec![0u8; 4 * 1024];
    let mut batch = Batch::Drained;
    // While the client is behind with its replies and more of its requests
    // wait: when it is cut off unless something gets written before.
    let mut stall_deadline: Option<Instant> = None;
    let ending = loop {
        if inbox.is_hung_up() {
            // Dropped by the server (its queue filled up): do not wait for
            // a client that may never read.
            break Ending::Cut;
        }
        inbox.collect();
        match inbox.write(&writer) {
            Ok(true) => stall_deadline = None,
            Ok(false) => {}
            Err(_) => break Ending::Cut,
        }
        match batch {
            Batch::Close => break Ending::Finished,
            Batch::Paused => {
                batch = handle_lines(&shared, &caller, &mut lines, inbox.backlog());
                if !matches!(batch, Batch::Paused) {
                    stall_deadline = None;
                    continue;
                }
                // Stop reading the socket until the client has read enough
                // of its replies; TCP flow control then slows the sender.
                // Held up by the disk rather than by the client (its replies
                // wait for a commit), there is no stall to time.
                let behind = !inbox.backlog().reply_budget().has_room();
                let stall_at = if behind {
                    *stall_deadline.get_or_insert_with(|| Instant::now() + settings.stall_timeout)
                } else {
                    stall_deadline = None;
                    Instant::now()
                };
                if !inbox.listen() {
                    continue;
                }
                tokio::select! {
                    biased;
                    () = inbox.woken() => {}
                    ready = writer.writable(), if inbox.has_unsent() => {
                        if ready.is_err() {
                            break Ending::Cut;
                        }
                    }
                    () = tokio::time::sleep(COMMIT_POLL), if !behind => {}
                    () = tokio::time::sleep_until(stall_at), if behind => {
                        warn!(
                            client, peer = ?peer, queued = inbox.backlog().messages(),
                            "client has not read its replies for {:?} while sending more requests; \
                             disconnecting it",
                            settings.stall_timeout
                        );
                        break Ending::Cut;
                    }
                }
                inbox.stop_listening();
            }
            Batch::Drained => {
                if lines.pending() == 0 && through_buffer > LINE_BUFFER_RECYCLE {
                    lines = LineBuffer::new(settings.max_line);
                    through_buffer = 0;
                }
                if !inbox.listen() {
                    continue;
                }
                tokio::select! {
                    biased;
                    read = reader.read(&mut buf) => {
                        inbox.stop_listening();
                        match read {
                            Ok(0) | Err(_) => break Ending::Finished,
                            Ok(n) => {
                                lines.extend(&buf[..n]);
                                through_buffer += n;
                                batch = handle_lines(&shared, &caller, &mut lines, inbox.backlog());
                            }
                        }
                    }
                    () = inbox.woken() => inbox.stop_listening(),
                    ready = writer.writable(), if inbox.has_unsent() => {
                        inbox.stop_listening();
                        if ready.is_err() {
                            break Ending::Cut;
                        }
                    }
                }
            }
        }
    };
    inbox.stop_listening();
    let mut cut = matches!(ending, Ending::Cut);
    if !cut {
        await_commits(&shared, client, &mut inbox).await;
    }
    let dropped = shared.with(|s| {
        let dropped = s.clients.remove(&client).is_none();
        s.service.client_disconnected(client);
        dropped
    });
    cut |= dropped;
    if !cut {
        // Write what is queued (e.g. the line-too-long reply) and say
        // goodbye; a client that does not read it is cut off after a grace
        // period. Dropping the socket closes it.
        inbox.collect();
        let _ = tokio::time::timeout(FLUSH_GRACE, flush(&mut inbox, &mut writer)).await;
    }
    info!(client, peer = ?peer, "client disconnected");
}

/// Handles the complete lines buffered, under the server lock, until they
/// are all handled or the client's replies reach the reply level (counting
/// those that wait for the state file's commit).
fn handle_lines(
    shared: &Shared,
    caller: &Caller,
    lines: &mut LineBuffer,
    backlog: &Backlog,
) -> Batch {
    let client = caller.client;
    shared.with(|state| {
        if !state.clients.contains_key(&client) {
            return Batch::Close; // dropped for not reading its messages
        }
        let mut budget = backlog.reply_budget();
        budget.hold_back(state.replies_waiting(client));
        loop {
            if !budget.has_room() {
                return Batch::Paused;
            }
            match lines.next_line() {
                Ok(Some(line)) => {
                    let started = std::time::Instant::now();
                    if let Some(reply) = state.service.handle_line(caller, line, clock::now()) {
                        let line = crate::cmd::reply::line(&reply);
                        budget.spend(line.len());
                        state.send(client, line);
                    }
                    crate::metrics::events::global()
                        .legacy_command(state.service.last_command, started.elapsed());
                }
                Ok(None) => return Batch::Drained,
                Err(FrameError::LineTooLong { limit }) => {
                    let reply = ServerMessage::Exception(format!(
                        "request line longer than {limit} bytes; closing the connection"
                    ));
                    state.send(client, reply.to_line());
                    return Batch::Close;
                }
            }
        }
    })
}

/// Waits, within [`FLUSH_GRACE`], until none of the client's replies waits
/// for the state file's commit any more, so that a client that stops
/// sending right after a change still gets its reply.
async fn await_commits(shared: &Shared, client: ClientId, inbox: &mut Inbox) {
    let give_up = Instant::now() + FLUSH_GRACE;
    while shared.read(|s| s.replies_waiting(client)) > 0 && !inbox.is_hung_up() {
        inbox.collect();
        if !inbox.listen() {
            continue; // a commit delivered something meanwhile: look again
        }
        tokio::select! {
            () = inbox.woken() => {}
            () = tokio::time::sleep(COMMIT_POLL) => {}
            () = tokio::time::sleep_until(give_up) => return,
        }
        inbox.stop_listening();
    }
}

/// Writes everything left in `inbox`, then shuts the sending side down.
async fn flush(inbox: &mut Inbox, writer: &mut WriteHalf<'_>) {
    loop {
        if inbox.write(writer).is_err() {
            return;
        }
        if !inbox.has_unsent() {
            break;
        }
        if writer.writable().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_refusals_is_logged_once_with_its_count() {
        let mut log = RefusalLog::default();
        assert_eq!(log.refused(), Some(1));
        assert!((0..1000).all(|_| log.refused().is_none()));
        log.last = log.last.map(|t| t - RefusalLog::EVERY);
        assert_eq!(log.refused(), Some(1001));
    }
}
