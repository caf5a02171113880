//! One client connection: a reader that frames lines and runs them through
//! the service, and a writer that drains the client's outgoing queue.

use crate::clock;
use crate::cmd::Caller;
use crate::core::watch::ClientId;
use crate::server::shared::{Shared, CLIENT_QUEUE_LIMIT};
use spalloc_protocol::{FrameError, LineBuffer, ServerMessage};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info};

/// Serves one client until it disconnects, misbehaves or the server stops.
pub async fn serve(stream: TcpStream, client: ClientId, shared: Arc<Shared>, max_line: usize) {
    let peer = stream.peer_addr().ok();
    let host = peer.map(|p| p.ip().to_string());
    // Replies are small and latency matters; never let Nagle hold them back
    // (the reference's missing TCP_NODELAY costs ~40 ms per notified reply).
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let (outbox, inbox) = mpsc::channel(CLIENT_QUEUE_LIMIT);
    shared.with(|s| s.clients.insert(client, outbox));
    debug!(client, peer = ?peer, "client connected");
    let writer_task = tokio::spawn(write_loop(writer, inbox));

    let caller = Caller { client, host };
    let mut lines = LineBuffer::new(max_line);
    // Requests are short lines; a small buffer keeps an idle connection cheap
    // (16 KiB here cost ~15 KiB of resident memory per connection).
    let mut buf = vec![0u8; 4 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        lines.extend(&buf[..n]);
        let keep_going = shared.with(|state| {
            if !state.clients.contains_key(&client) {
                return false; // dropped for not reading its replies
            }
            loop {
                match lines.next_line() {
                    Ok(Some(line)) => {
                        if let Some(reply) = state.service.handle_line(&caller, line, clock::now())
                        {
                            state.send(client, reply.to_line());
                        }
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
    shared.with(|s| {
        s.clients.remove(&client);
        s.service.client_disconnected(client);
    });
    // Let the writer flush what is queued (e.g. the line-too-long reply),
    // then finish; it ends when the outbox is dropped above.
    let _ = writer_task.await;
    info!(client, peer = ?peer, "client disconnected");
}

/// Writes queued messages, batching whatever is ready into one write.
async fn write_loop(mut writer: OwnedWriteHalf, mut inbox: mpsc::Receiver<Vec<u8>>) {
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
    }
    let _ = writer.shutdown().await;
}
