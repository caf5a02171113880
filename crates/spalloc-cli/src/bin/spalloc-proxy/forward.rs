//! The forwarder's I/O: one local UDP socket per board, one websocket to
//! the server's proxy, datagrams carried both ways, the websocket reopened
//! when it drops. Replies from a board go to whoever last sent to that
//! board's local port (as a board answers its last sender).

use super::channels::Channels;
use futures_util::{SinkExt, StreamExt};
use spalloc_protocol::proxy_frame::{ClientFrame, ServerFrame};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// One board as the forwarder serves it.
#[derive(Debug, Clone)]
pub struct Board {
    /// Ethernet chip X in job coordinates.
    pub x: u32,
    /// Ethernet chip Y.
    pub y: u32,
    /// The board's hostname (for the table only: the server decides).
    pub host: String,
    /// The local socket standing in for it.
    pub socket: Arc<UdpSocket>,
    /// Who last sent to it (where its replies go).
    pub peer: Arc<Mutex<Option<SocketAddr>>>,
}

/// Why forwarding stopped.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// The server closed the proxy for good (the job ended, or may not be
    /// proxied): its reason.
    Closed(String),
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://` or `wss://` URL of `/spalloc/proxy/{job}`.
    pub url: String,
    /// The `Authorization` header value, if any.
    pub authorization: Option<String>,
    /// The boards' UDP port (SC&MP's, 17893).
    pub board_port: u32,
}

/// Forwards until Ctrl-C or the server ends the proxy, reconnecting (after
/// `retry`) whenever the websocket drops.
pub async fn run(target: &Target, boards: &[Board], retry: Duration) -> Stop {
    loop {
        let result = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Interrupted,
            result = once(target, boards) => result,
        };
        match result {
            Ok(stop) => return stop,
            Err(why) => eprintln!("spalloc-proxy: connection lost ({why}); reconnecting"),
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Stop::Interrupted,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

/// One websocket connection: opens a channel per board, then forwards.
/// `Err` when the connection is lost (worth reconnecting).
async fn once(target: &Target, boards: &[Board]) -> Result<Stop, String> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(auth) = &target.authorization {
        let value = HeaderValue::from_str(auth).map_err(|e| e.to_string())?;
        request.headers_mut().insert("authorization", value);
    }
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => {
                format!("the server refused the proxy: HTTP {}", r.status())
            }
            e => e.to_string(),
        })?;
    let (mut sink, mut stream) = ws.split();
    for (i, b) in boards.iter().enumerate() {
        let open = ClientFrame::Open {
            corr: u32::try_from(i).map_err(|e| e.to_string())?,
            x: b.x,
            y: b.y,
            port: target.board_port,
        };
        sink.send(Message::Binary(open.encode().into()))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut channels = Channels::default();
    // Datagrams from local clients, with the board they are for.
    let (local_tx, mut local_rx) = mpsc::channel::<(usize, Vec<u8>)>(1024);
    let readers: Vec<_> = boards
        .iter()
        .enumerate()
        .map(|(i, b)| tokio::spawn(read_local(i, b.clone(), local_tx.clone())))
        .collect();
    let _abort = AbortOnDrop(readers);
    loop {
        tokio::select! {
            Some((board, payload)) = local_rx.recv() => {
                // Until the board's channel is open, datagrams are lost,
                // as UDP may lose them; the sender retries.
                if let Some(channel) = channels.channel_of(board) {
                    let frame = ClientFrame::Message { channel, payload: &payload };
                    sink.send(Message::Binary(frame.encode().into()))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            received = stream.next() => {
                let message = match received {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("the server closed the connection".into()),
                };
                match message {
                    Message::Binary(bytes) => match ServerFrame::decode(&bytes) {
                        Some(ServerFrame::Opened { corr, channel }) => {
                            channels.opened(corr, channel, boards.len());
                        }
                        Some(ServerFrame::Message { channel, payload }) => {
                            if let Some(b) = channels.board_of(channel).and_then(|i| boards.get(i)) {
                                let peer = b.peer.lock().ok().and_then(|p| *p);
                                if let Some(peer) = peer {
                                    let _ = b.socket.send_to(&payload, peer).await;
                                }
                            }
                        }
                        Some(ServerFrame::Error { corr, message }) => {
                            let board = usize::try_from(corr).ok().and_then(|i| boards.get(i));
                            let name = board.map_or_else(String::new, |b| format!(" for board ({}, {})", b.x, b.y));
                            return Ok(Stop::Closed(format!("the proxy refused a channel{name}: {message}")));
                        }
                        _ => {}
                    },
                    Message::Close(frame) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        // 1001: the job ended or lost its boards; 1007/1011:
                        // the server will not proxy this job. Anything else
                        // (a restart, a network drop) is worth retrying.
                        if matches!(code, 1001 | 1007 | 1008 | 1011) {
                            return Ok(Stop::Closed(format!("{reason} (close code {code})")));
                        }
                        return Err(format!("closed with code {code} {reason}"));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Reads datagrams sent to one board's local socket.
async fn read_local(index: usize, board: Board, out: mpsc::Sender<(usize, Vec<u8>)>) {
    let mut buffer = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = board.socket.recv_from(&mut buffer).await else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        if let Ok(mut peer) = board.peer.lock() {
            *peer = Some(from);
        }
        if out.send((index, buffer[..n].to_vec())).await.is_err() {
            return;
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
