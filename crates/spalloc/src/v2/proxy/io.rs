//! The proxy's I/O thread: the one owner of the websocket. It writes the
//! frames callers queue, reads the server's frames and hands each to the
//! call or channel it belongs to, and sleeps in one `poll` until the socket
//! is readable or a caller wakes it (so a datagram is sent at once, without
//! a polling interval).
//!
//! When the websocket closes, for whatever reason, the reason is recorded,
//! every waiting call and channel is dropped (their callers see
//! [`Error::ProxyClosed`](crate::Error::ProxyClosed)), and the thread ends.

use super::stream::Stream;
use mio::{Events, Poll, Token};
use spalloc_protocol::proxy_frame::{ClientFrame, ServerFrame};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tracing::debug;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// The poll token of the callers' wake-ups.
pub const WAKE: Token = Token(1);

/// Datagrams that may wait, per channel, for the caller to receive them;
/// beyond that they are dropped, as a full UDP socket buffer drops them.
pub const CHANNEL_QUEUE: usize = 1024;

/// How long the websocket may be idle before a ping keeps it (and any
/// NAT or proxy on the way) alive, as SpiNNMan's `_ProxyPing` does.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// A channel just opened, as handed to the caller that asked for it.
#[derive(Debug)]
pub struct Opened {
    /// The channel's ID.
    pub channel: u32,
    /// Its datagrams.
    pub incoming: Receiver<Vec<u8>>,
    /// For an unconnected channel, the server-side address boards send to.
    pub address: Option<SocketAddrV4>,
}

/// The answer to a call: the opened channel, or the server's refusal.
pub type CallReply = Result<Opened, String>;

/// Why the websocket closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The server's close code, if it sent one.
    pub code: Option<u16>,
    /// Its reason, or what broke the connection.
    pub reason: String,
}

/// What the callers and the I/O thread share.
#[derive(Debug, Default)]
pub struct Shared {
    state: Mutex<State>,
    closed_signal: Condvar,
    /// Set by the last handle's drop: close the websocket and end.
    pub stop: AtomicBool,
    next_corr: AtomicU32,
}

#[derive(Debug, Default)]
struct State {
    calls: HashMap<u32, SyncSender<CallReply>>,
    channels: HashMap<u32, SyncSender<Vec<u8>>>,
    closed: Option<CloseReason>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh correlation ID.
    pub fn next_corr(&self) -> u32 {
        self.next_corr.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a call: its reply arrives on the returned receiver. `Err`
    /// if the websocket has closed.
    pub fn expect_reply(&self, corr: u32) -> Result<Receiver<CallReply>, CloseReason> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let (reply, replied) = mpsc::sync_channel(1);
        state.calls.insert(corr, reply);
        Ok(replied)
    }

    /// Gives up waiting for a call's reply.
    pub fn forget_call(&self, corr: u32) {
        self.lock().calls.remove(&corr);
    }

    /// Stops delivering a channel's datagrams (it is being closed).
    pub fn forget_channel(&self, channel: u32) {
        self.lock().channels.remove(&channel);
    }

    /// Why the websocket closed, once it has.
    pub fn closed(&self) -> Option<CloseReason> {
        self.lock().closed.clone()
    }

    /// Waits until the websocket closes or `timeout` passes.
    pub fn wait_closed(&self, timeout: Duration) -> Option<CloseReason> {
        let state = self.lock();
        let (state, _) = self
            .closed_signal
            .wait_timeout_while(state, timeout, |s| s.closed.is_none())
            .unwrap_or_else(|p| p.into_inner());
        state.closed.clone()
    }

    fn close(&self, reason: CloseReason) {
        let mut state = self.lock();
        if state.closed.is_none() {
            debug!(?reason, "job proxy closed");
            state.closed = Some(reason);
        }
        state.calls.clear();
        state.channels.clear();
        self.closed_signal.notify_all();
    }

    /// Hands a server frame to whoever waits for it; a frame to send back
    /// (closing a channel nobody wants any more), if any.
    fn dispatch(&self, frame: ServerFrame) -> Option<Vec<u8>> {
        let mut state = self.lock();
        let opened = match frame {
            ServerFrame::Message { channel, payload } => {
                if let Some(sender) = state.channels.get(&channel) {
                    match sender.try_send(payload) {
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => {
                            state.channels.remove(&channel);
                        }
                    }
                }
                return None;
            }
            ServerFrame::Error { corr, message } => {
                if let Some(call) = state.calls.remove(&corr) {
                    let _ = call.try_send(Err(message));
                } else {
                    debug!(corr, %message, "job proxy error for no call of ours");
                }
                return None;
            }
            ServerFrame::Closed { .. } => return None,
            ServerFrame::Opened { corr, channel } => (corr, channel, None),
            ServerFrame::OpenedUnconnected {
                corr,
                channel,
                ip,
                port,
            } => (corr, channel, Some(SocketAddrV4::new(ip, port))),
        };
        let (corr, channel, address) = opened;
        let (sender, incoming) = mpsc::sync_channel(CHANNEL_QUEUE);
        // Registered before the caller hears of it, so that no datagram
        // arriving in between is lost.
        state.channels.insert(channel, sender);
        let delivered = state.calls.remove(&corr).is_some_and(|call| {
            call.try_send(Ok(Opened {
                channel,
                incoming,
                address,
            }))
            .is_ok()
        });
        if delivered {
            return None;
        }
        // The caller gave up: close the channel again.
        state.channels.remove(&channel);
        Some(
            ClientFrame::Close {
                corr: self.next_corr(),
                channel,
            }
            .encode(),
        )
    }
}

/// Runs the websocket until it closes or [`Shared::stop`] is set.
pub fn run(
    mut ws: WebSocket<Stream>,
    mut poll: Poll,
    outgoing: Receiver<Vec<u8>>,
    shared: &Shared,
) {
    let reason = serve(&mut ws, &mut poll, &outgoing, shared);
    shared.close(reason);
}

fn lost(what: impl std::fmt::Display) -> CloseReason {
    CloseReason {
        code: None,
        reason: format!("connection lost: {what}"),
    }
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == ErrorKind::WouldBlock)
}

fn serve(
    ws: &mut WebSocket<Stream>,
    poll: &mut Poll,
    outgoing: &Receiver<Vec<u8>>,
    shared: &Shared,
) -> CloseReason {
    let mut events = Events::with_capacity(8);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            let _ = ws.close(None);
            let _ = ws.flush();
            return CloseReason {
                code: None,
                reason: "closed by the client".into(),
            };
        }
        // Everything queued goes out, then one flush.
        loop {
            let bytes = match outgoing.try_recv() {
                Ok(bytes) => bytes,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    shared.stop.store(true, Ordering::Relaxed);
                    break;
                }
            };
            if let Err(e) = ws.write(Message::Binary(bytes.into())) {
                if !would_block(&e) {
                    return lost(e);
                }
            }
        }
        match ws.flush() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return lost(e),
        }
        // Everything readable is read (mio wakes on edges only).
        loop {
            match ws.read() {
                Ok(Message::Binary(bytes)) => match ServerFrame::decode(&bytes) {
                    Some(frame) => {
                        if let Some(reply) = shared.dispatch(frame) {
                            if let Err(e) = ws.write(Message::Binary(reply.into())) {
                                if !would_block(&e) {
                                    return lost(e);
                                }
                            }
                        }
                    }
                    None => debug!(len = bytes.len(), "job proxy: undecodable frame ignored"),
                },
                Ok(Message::Close(frame)) => {
                    let _ = ws.flush();
                    return match frame {
                        Some(f) => CloseReason {
                            code: Some(u16::from(f.code)),
                            reason: f.reason.to_string(),
                        },
                        None => CloseReason {
                            code: Some(u16::from(CloseCode::Status)),
                            reason: "closed by the server".into(),
                        },
                    };
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return lost("the server closed the connection");
                }
                Err(e) => return lost(e),
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = poll.poll(&mut events, Some(PING_INTERVAL)) {
            if e.kind() != ErrorKind::Interrupted {
                return lost(e);
            }
        }
        // No event at all in a ping interval: the websocket is idle.
        if events.is_empty() {
            if let Err(e) = ws.write(Message::Ping(Vec::new().into())) {
                if !would_block(&e) {
                    return lost(e);
                }
            }
        }
    }
}
