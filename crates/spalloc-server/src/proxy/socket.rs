//! The proxy's I/O shell: one task per websocket, moving frames between it
//! and the UDP sockets of its channels, doing what [`ProxySession`] decides.
//!
//! Limits, as allocserv has them: at most [`SEND_BUFFER_BYTES`] of frames
//! wait to be sent to the client (board datagrams beyond that are dropped,
//! as UDP would drop them), and a send that takes longer than
//! [`SEND_TIME_LIMIT`] closes the websocket. A frame that breaks the
//! protocol closes the websocket with 1007 (BAD_DATA) and its reason; a UDP
//! socket that cannot be opened is an ERROR reply to that call only.

use super::frame::{ClientFrame, ServerFrame};
use super::session::{Action, ProxySession};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// Bytes of frames that may wait to be sent to one client.
pub const SEND_BUFFER_BYTES: usize = 512 * 1024;
/// How long sending one frame to the client may take.
pub const SEND_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Close code for a protocol violation.
pub const CLOSE_BAD_DATA: u16 = 1007;
/// Close code for a server-side failure, or a job that cannot be proxied.
pub const CLOSE_SERVER_ERROR: u16 = 1011;
/// Close code when the job's boards go away.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Where the proxy's unconnected channels bind their UDP sockets: an
/// address of the server that the boards can send to (their IPTags point
/// at it), from `[proxy] unconnected_address` (see [`crate::config::proxy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySettings {
    /// The local address (port 0: a free port per channel).
    pub local_host: Ipv4Addr,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            local_host: Ipv4Addr::LOCALHOST,
        }
    }
}

/// Channel IDs are unique across the server and never 0.
static NEXT_CHANNEL: AtomicU32 = AtomicU32::new(1);

fn new_channel() -> u32 {
    loop {
        let id = NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// A frame waiting to be sent, holding its share of the send buffer.
type Outgoing = (Message, Option<OwnedSemaphorePermit>);

/// One open channel's socket and the task forwarding its datagrams.
struct Channel {
    socket: Arc<UdpSocket>,
    receiver: JoinHandle<()>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Serves one proxy websocket until the client leaves, breaks the protocol
/// or `ended` completes (the job was destroyed or its boards changed).
/// `boards` maps the job's Ethernet chips (job coordinates) to their IPs.
pub async fn serve(
    mut ws: WebSocket,
    boards: BTreeMap<(u32, u32), Ipv4Addr>,
    settings: ProxySettings,
    ended: impl Future<Output = ()>,
) {
    let mut session = ProxySession::new(boards.clone());
    let board_ips: Arc<Vec<Ipv4Addr>> = Arc::new(boards.values().copied().collect());
    let buffer = Arc::new(Semaphore::new(SEND_BUFFER_BYTES));
    let (out, mut outbox) = mpsc::unbounded_channel::<Outgoing>();
    let mut channels: HashMap<u32, Channel> = HashMap::new();
    tokio::pin!(ended);
    let close = loop {
        tokio::select! {
            () = &mut ended => {
                break Some((CLOSE_GOING_AWAY, "job destroyed or its boards changed".to_owned()));
            }
            Some((message, permit)) = outbox.recv() => {
                let sent = tokio::time::timeout(SEND_TIME_LIMIT, ws.send(message)).await;
                drop(permit);
                if !matches!(sent, Ok(Ok(()))) {
                    debug!("proxy client too slow or gone");
                    break None;
                }
            }
            received = ws.recv() => {
                let bytes = match received {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(_))) => {
                        break Some((CLOSE_BAD_DATA, "text frames are not part of the proxy protocol".to_owned()));
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                };
                let frame = match ClientFrame::decode(&bytes) {
                    Ok(frame) => frame,
                    Err(error) => break Some((CLOSE_BAD_DATA, error.to_string())),
                };
                let action = session.handle(frame, new_channel);
                let reply = act(action, &mut session, &mut channels, settings, &out, &buffer, &board_ips).await;
                if let Some(reply) = reply {
                    // Replies to calls wait for room rather than being dropped.
                    let bytes = reply.encode();
                    let permit = Arc::clone(&buffer)
                        .acquire_many_owned(permit_size(bytes.len()))
                        .await
                        .ok();
                    let _ = out.send((Message::Binary(bytes.into()), permit));
                }
            }
        }
    };
    channels.clear();
    if let Some((code, reason)) = close {
        info!(code, %reason, "closing proxy websocket");
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(SEND_TIME_LIMIT, ws.send(Message::Close(Some(frame)))).await;
    }
}

/// Closes a websocket at once with `code` and `reason` (a job that cannot
/// be proxied).
pub async fn refuse(mut ws: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(SEND_TIME_LIMIT, ws.send(Message::Close(Some(frame)))).await;
}

fn permit_size(len: usize) -> u32 {
    u32::try_from(len.clamp(1, SEND_BUFFER_BYTES)).unwrap_or(1)
}

/// Does what the session decided; returns the reply to send, if any.
async fn act(
    action: Action<'_>,
    session: &mut ProxySession,
    channels: &mut HashMap<u32, Channel>,
    settings: ProxySettings,
    out: &mpsc::UnboundedSender<Outgoing>,
    buffer: &Arc<Semaphore>,
    board_ips: &Arc<Vec<Ipv4Addr>>,
) -> Option<ServerFrame> {
    match action {
        Action::Reply(frame) => Some(frame),
        Action::Ignore => None,
        Action::OpenConnected {
            corr,
            channel,
            board,
        } => {
            let opened = async {
                let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
                socket.connect(board).await?;
                Ok::<_, std::io::Error>(Arc::new(socket))
            }
            .await;
            match opened {
                Ok(socket) => {
                    let receiver = tokio::spawn(forward_from_board(
                        Arc::clone(&socket),
                        channel,
                        None,
                        out.clone(),
                        Arc::clone(buffer),
                    ));
                    channels.insert(channel, Channel { socket, receiver });
                    debug!(channel, %board, "proxy channel opened");
                    Some(ServerFrame::Opened { corr, channel })
                }
                Err(error) => {
                    session.forget(channel);
                    Some(ServerFrame::Error {
                        corr,
                        message: format!("cannot open a socket to the board: {error}"),
                    })
                }
            }
        }
        Action::OpenUnconnected { corr, channel } => {
            let opened = UdpSocket::bind((settings.local_host, 0)).await;
            let bound = opened.and_then(|s| s.local_addr().map(|a| (s, a)));
            match bound {
                Ok((socket, SocketAddr::V4(address))) => {
                    let socket = Arc::new(socket);
                    let receiver = tokio::spawn(forward_from_board(
                        Arc::clone(&socket),
                        channel,
                        Some(Arc::clone(board_ips)),
                        out.clone(),
                        Arc::clone(buffer),
                    ));
                    channels.insert(channel, Channel { socket, receiver });
                    Some(ServerFrame::OpenedUnconnected {
                        corr,
                        channel,
                        ip: *address.ip(),
                        port: address.port(),
                    })
                }
                Ok((_, address)) => {
                    session.forget(channel);
                    Some(ServerFrame::Error {
                        corr,
                        message: format!("local address {address} is not IPv4"),
                    })
                }
                Err(error) => {
                    session.forget(channel);
                    Some(ServerFrame::Error {
                        corr,
                        message: format!("cannot open a local socket: {error}"),
                    })
                }
            }
        }
        Action::Close { corr, channel } => {
            channels.remove(&channel);
            Some(ServerFrame::Closed { corr, channel })
        }
        Action::Send { channel, payload } => {
            if let Some(c) = channels.get(&channel) {
                // UDP: a datagram that cannot be sent is lost, as on a wire.
                if let Err(error) = c.socket.send(payload).await {
                    debug!(channel, %error, "proxy datagram not sent");
                }
            }
            None
        }
        Action::SendTo {
            channel,
            to,
            payload,
        } => {
            if let Some(c) = channels.get(&channel) {
                if let Err(error) = c.socket.send_to(payload, to).await {
                    debug!(channel, %error, "proxy datagram not sent");
                }
            }
            None
        }
    }
}

/// Forwards every datagram arriving on `socket` to the client as MESSAGE
/// frames, dropping those that do not fit in the send buffer and, on an
/// unconnected channel (`only_from` given), those not from a board of the
/// job.
async fn forward_from_board(
    socket: Arc<UdpSocket>,
    channel: u32,
    only_from: Option<Arc<Vec<Ipv4Addr>>>,
    out: mpsc::UnboundedSender<Outgoing>,
    buffer: Arc<Semaphore>,
) {
    let mut data = vec![0u8; 65536];
    loop {
        let (n, from) = match socket.recv_from(&mut data).await {
            Ok(received) => received,
            Err(error) => {
                // A connected socket hears ICMP "port unreachable" as an
                // error; the channel stays usable.
                debug!(channel, %error, "proxy channel receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        if let Some(allowed) = &only_from {
            let from_board = matches!(from.ip(), IpAddr::V4(ip) if allowed.contains(&ip));
            if !from_board {
                continue;
            }
        }
        let frame = ServerFrame::Message {
            channel,
            payload: data[..n].to_vec(),
        }
        .encode();
        let Ok(permit) = Arc::clone(&buffer).try_acquire_many_owned(permit_size(frame.len()))
        else {
            debug!(channel, "proxy send buffer full: datagram dropped");
            continue;
        };
        if out
            .send((Message::Binary(frame.into()), Some(permit)))
            .is_err()
        {
            return;
        }
    }
}
