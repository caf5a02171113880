//! One client connection: a reader that frames lines and runs them through
//! the service, and a writer that drains the client's outgoing queue.
//!
//! Hostile and broken clients are contained here: lines are capped in
//! length, the number of connections is capped ([`ConnectionLimit`]), a
//! client that stops reading is hung up on once its bounded queue fills (even
//! if the writer is blocked on it), and TCP keepalive makes half-open
//! connections (a peer that vanished without a FIN) fail and be cleaned up.
//! There is deliberately no idle timeout: clients legitimately sit idle while
//! watching for notifications.

use crate::clock;
use crate::cmd::Caller;
use crate::core::watch::ClientId;
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

/// Turns away a connection beyond the cap: one exception line, then close.
pub async fn refuse(mut stream: TcpStream, max: usize) {
    warn!(peer = ?stream.peer_addr().ok(), max, "too many connections; refusing one");
    let reply = ServerMessage::Exception(format!(
        "too many connections (the server allows {max}); try again later"
    ));
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(&reply.to_line()).await;
        let _ = stream.shutdown().await;
    })
    .await;
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

/// Serves one client until it disconnects, misbehaves or the server stops.
pub async fn serve(stream: TcpStream, client: ClientId, shared: Arc<Shared>, max_line: usize) {
    let peer = stream.peer_addr().ok();
    let host = peer.map(|p| p.ip().to_string());
    // Replies are small and latency matters; never let Nagle hold them back
    // (the reference's missing TCP_NODELAY costs ~40 ms per notified reply).
    let _ = stream.set_nodelay(true);
    enable_keepalive(&stream);
    let (mut reader, writer) = stream.into_split();
    let (queue, inbox) = mpsc::channel(CLIENT_QUEUE_LIMIT);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let (hangup_tx, mut hangup) = oneshot::channel::<()>();
    let outbox = Outbox::new(queue, Arc::clone(&queued_bytes), hangup_tx);
    shared.with(|s| s.clients.insert(client, outbox));
    debug!(client, peer = ?peer, "client connected");
    let writer_task = tokio::spawn(write_loop(writer, inbox, queued_bytes));

    let caller = Caller { client, host };
    let mut lines = LineBuffer::new(max_line);
    // Requests are short lines; a small buffer keeps an idle connection cheap
    // (16 KiB here cost ~15 KiB of resident memory per connection).
    let mut buf = vec![0u8; 4 * 1024];
    let mut hung_up = false;
    loop {
        let n = tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = &mut hangup => {
                // Dropped by the server (its queue filled up): do not wait
                // for a writer that may be blocked on it forever.
                hung_up = true;
                break;
            }
        };
        lines.extend(&buf[..n]);
        let keep_going = shared.with(|state| {
            if !state.clients.contains_key(&client) {
                return false; // dropped for not reading its replies
            }
            loop {
                match lines.next_line() {
                    Ok(Some(line)) => {
                        let started = std::time::Instant::now();
                        if let Some(reply) = state.service.handle_line(&caller, line, clock::now())
                        {
                            state.send(client, reply.to_line());
                        }
                        crate::metrics::events::global()
                            .legacy_command(state.service.last_command, started.elapsed());
                    }
                    Ok(None) => return true,
                    Err(FrameError::LineTooLong { limit }) => {
                        let reply = ServerMessage::Exception(format!(
                            "request line longer than {limit} bytes; closing the connection"
                        ));
                        state.send(client, reply.to_line());
                        return false;
                    }
                }
            }
        });
        if !keep_going {
            break;
        }
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

/// Writes queued messages, batching whatever is ready into one write.
async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut inbox: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(4096);
    while let Some(first) = inbox.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 64 * 1024 {
            match inbox.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
        queued_bytes.fetch_sub(batch.len(), Ordering::AcqRel);
    }
    let _ = writer.shutdown().await;
}
