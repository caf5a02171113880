//! One client connection: a reader that frames lines and runs them through
//! the service, and a writer that drains the client's outgoing queue.
//!
//! Hostile and broken clients are contained here: lines are capped in
//! length, the number of connections is capped ([`ConnectionLimit`]), a
//! client that sends requests faster than it reads the replies is slowed
//! down (its socket is not read while its replies are
//! [`backlogged`](crate::server::backlog)), a client that stops reading is
//! hung up on once nothing has been written to it for
//! [`ConnectionSettings::stall_timeout`] or its bounded queue fills with
//! notifications (even if the writer is blocked on it), and TCP keepalive
//! makes half-open connections (a peer that vanished without a FIN) fail and
//! be cleaned up.
//! There is deliberately no idle timeout: clients legitimately sit idle while
//! watching for notifications.

use crate::clock;
use crate::cmd::Caller;
use crate::core::watch::ClientId;
use crate::server::backlog::Backlog;
use crate::server::shared::{Outbox, Shared, CLIENT_QUEUE_LIMIT};
use spalloc_protocol::{FrameError, LineBuffer, ServerMessage};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// How long a connection's writer may take to flush its last replies after
/// the client has stopped sending, before the connection is cut anyway.
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
    /// How long a client may leave its replies unread (the writer making no
    /// progress at all) while more of its requests wait, before it is
    /// considered never to read and is disconnected.
    pub stall_timeout: Duration,
}

/// A line buffer that held a long line keeps its capacity; once empty and
/// this much has gone through it, it is replaced by a fresh one so that one
/// big request does not cost its connection memory for the rest of its life.
const LINE_BUFFER_RECYCLE: usize = 64 * 1024;

/// Why the reader stopped handling the buffered lines.
enum Batch {
    /// Every complete line was handled: read more from the socket.
    Drained,
    /// The replies reached [`REPLY_LEVEL`](crate::server::backlog::REPLY_LEVEL):
    /// wait for the writer before handling the rest.
    Paused,
    /// Close the connection (a line too long, or the client was dropped).
    Close,
}

/// Serves one client until it disconnects, misbehaves or the server stops.
pub async fn serve(
    stream: TcpStream,
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
    let (mut reader, writer) = stream.into_split();
    let (queue, inbox) = mpsc::channel(CLIENT_QUEUE_LIMIT);
    let backlog = Arc::new(Backlog::default());
    let (hangup_tx, mut hangup) = oneshot::channel::<()>();
    let outbox = Outbox::new(queue, Arc::clone(&backlog), hangup_tx);
    shared.with(|s| s.clients.insert(client, outbox));
    debug!(client, peer = ?peer, "client connected");
    let writer_task = tokio::spawn(write_loop(writer, inbox, Arc::clone(&backlog)));

    let caller = Caller { client, host };
    let mut lines = LineBuffer::new(settings.max_line);
    let mut through_buffer = 0usize;
    // Requests are short lines; a small buffer keeps an idle connection cheap
    // (16 KiB here cost ~15 KiB of resident memory per connection).
    let mut buf = vec![0u8; 4 * 1024];
    let mut hung_up = false;
    let mut batch = Batch::Drained;
    loop {
        match batch {
            Batch::Close => break,
            Batch::Paused => {
                // Stop reading the socket until the client has read enough
                // of its replies; TCP flow control then slows the sender.
                match wait_for_room(
                    &backlog,
                    &shared,
                    client,
                    settings.stall_timeout,
                    &mut hangup,
                )
                .await
                {
                    Room::Made => {}
                    Room::WriterGone => break,
                    Room::HungUp => {
                        hung_up = true;
                        break;
                    }
                    Room::Stalled => {
                        warn!(
                            client, peer = ?peer, queued = backlog.messages(),
                            "client has not read its replies for {:?} while sending more requests; \
                             disconnecting it",
                            settings.stall_timeout
                        );
                        hung_up = true;
                        break;
                    }
                }
            }
            Batch::Drained => {
                if lines.pending() == 0 && through_buffer > LINE_BUFFER_RECYCLE {
                    lines = LineBuffer::new(settings.max_line);
                    through_buffer = 0;
                }
                let n = tokio::select! {
                    read = reader.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    },
                    _ = &mut hangup => {
                        // Dropped by the server (its queue filled up): do not
                        // wait for a writer that may be blocked on it forever.
                        hung_up = true;
                        break;
                    }
                };
                lines.extend(&buf[..n]);
                through_buffer += n;
            }
        }
        batch = shared.with(|state| {
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
                        if let Some(reply) = state.service.handle_line(&caller, line, clock::now())
                        {
                            let line = reply.to_line();
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
        });
    }
    let dropped = shared.with(|s| {
        let dropped = s.clients.remove(&client).is_none();
        s.service.client_disconnected(client);
        dropped
    });
    hung_up |= dropped;
    // Let the writer flush what is queued (e.g. the line-too-long reply),
    // then finish; it ends when the outbox is dropped above. A client that
    // was dropped, or that does not read what is left, is cut off at once or
    // after a grace period; aborting the writer closes the socket.
    let mut writer_task = writer_task;
    if hung_up
        || tokio::time::timeout(FLUSH_GRACE, &mut writer_task)
            .await
            .is_err()
    {
        writer_task.abort();
    }
    info!(client, peer = ?peer, "client disconnected");
}

/// How waiting for the writer ended.
enum Room {
    /// The replies drained below the reply level.
    Made,
    /// The writer stopped (the client went away).
    WriterGone,
    /// The server dropped the client.
    HungUp,
    /// Nothing at all was written for the whole stall timeout.
    Stalled,
}

/// How often a reader whose replies wait for the state file's commit (and
/// not for the client) looks again.
const COMMIT_POLL: Duration = Duration::from_millis(5);

/// Waits until the client's backlog, with its replies waiting for a commit,
/// is below the reply level again.
async fn wait_for_room(
    backlog: &Backlog,
    shared: &Shared,
    client: ClientId,
    stall_timeout: Duration,
    hangup: &mut oneshot::Receiver<()>,
) -> Room {
    loop {
        if backlog.is_writer_gone() {
            return Room::WriterGone;
        }
        let queued = backlog.reply_budget();
        let mut budget = queued;
        budget.hold_back(shared.with(|s| s.replies_waiting(client)));
        if budget.has_room() {
            return Room::Made;
        }
        if queued.has_room() {
            // Held up by the disk, not by the client: no stall to time.
            tokio::select! {
                () = tokio::time::sleep(COMMIT_POLL) => {}
                _ = &mut *hangup => return Room::HungUp,
            }
            continue;
        }
        tokio::select! {
            progress = tokio::time::timeout(stall_timeout, backlog.progress()) => {
                if progress.is_err() {
                    return Room::Stalled;
                }
            }
            _ = &mut *hangup => return Room::HungUp,
        }
    }
}

/// Writes queued messages, batching whatever is ready into one write, and
/// reports every bit of progress to the backlog.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut inbox: mpsc::Receiver<Vec<u8>>,
    backlog: Arc<Backlog>,
) {
    let mut batch = Vec::with_capacity(4096);
    while let Some(first) = inbox.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        let mut messages = 1;
        while batch.len() < 64 * 1024 {
            match inbox.try_recv() {
                Ok(more) => {
                    batch.extend_from_slice(&more);
                    messages += 1;
                }
                Err(_) => break,
            }
        }
        let mut written = 0;
        while written < batch.len() {
            match writer.write(&batch[written..]).await {
                Ok(0) | Err(_) => {
                    backlog.writer_stopped();
                    return;
                }
                Ok(n) => {
                    written += n;
                    // The messages count as written once all of them are.
                    let done = if written == batch.len() { messages } else { 0 };
                    backlog.written(done, n);
                }
            }
        }
        if batch.capacity() > 256 * 1024 {
            // One huge listing must not keep its buffer for the connection's life.
            batch = Vec::with_capacity(4096);
        }
    }
    let _ = writer.shutdown().await;
    backlog.writer_stopped();
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
