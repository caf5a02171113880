//! Opening the proxy's websocket: TCP (non-blocking, registered with a
//! [`mio::Poll`]), TLS for `wss://` (rustls, with the session's trusted
//! certificates), and the websocket handshake with the authentication
//! headers, all bounded by one deadline.
//!
//! The socket is non-blocking from the start so that the I/O thread can
//! wait for "readable or something to send" in one `poll`; the handshakes
//! are driven by the same poll until they complete.

use crate::error::{Error, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

/// The poll token of the websocket's socket.
pub const SOCKET: Token = Token(0);

/// The largest frame the server sends: one datagram and five words.
const MAX_FRAME: usize = spalloc_protocol::proxy_frame::MAX_PAYLOAD + 20;

/// The websocket's byte stream: plain TCP or TLS over it.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Where and as whom to open the websocket.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Extra request headers (authentication).
    pub headers: Vec<(String, String)>,
    /// Trusted certificates for `wss://`.
    pub tls: Arc<rustls::ClientConfig>,
    /// The longest the connection and both handshakes may take.
    pub timeout: Duration,
}

fn closed(reason: impl Into<String>) -> Error {
    Error::ProxyClosed {
        code: None,
        reason: reason.into(),
    }
}

/// Opens the websocket; the returned poll has its socket registered under
/// [`SOCKET`] for reading and writing.
pub fn open(target: &Target) -> Result<(WebSocket<Stream>, Poll)> {
    let deadline = Instant::now() + target.timeout;
    let url = url::Url::parse(&target.url)
        .map_err(|e| closed(format!("bad proxy URL {:?}: {e}", target.url)))?;
    let secure = match url.scheme() {
        "ws" => false,
        "wss" => true,
        other => {
            return Err(closed(format!(
                "proxy URL {:?}: the scheme {other:?} is not ws or wss",
                target.url
            )))
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| closed(format!("proxy URL {:?} has no host", target.url)))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .unwrap_or(if secure { 443 } else { 80 });
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| closed(format!("bad proxy URL {:?}: {e}", target.url)))?;
    for (name, value) in &target.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| closed(format!("bad header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| closed(format!("bad value for header {name}: {e}")))?;
        request.headers_mut().insert(name, value);
    }

    let addresses: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| closed(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        match std::net::TcpStream::connect_timeout(&address, left.max(Duration::from_millis(1))) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        closed(format!(
            "cannot connect to {host}:{port}: {}",
            last.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        ))
    })?;
    let io = |e: io::Error| closed(format!("connection to {host}:{port}: {e}"));
    // Datagrams are small and latency matters more than packing.
    tcp.set_nodelay(true).map_err(io)?;
    tcp.set_nonblocking(true).map_err(io)?;
    let mut tcp = TcpStream::from_std(tcp);
    let mut poll = Poll::new().map_err(io)?;
    poll.registry()
        .register(&mut tcp, SOCKET, Interest::READABLE | Interest::WRITABLE)
        .map_err(io)?;

    let stream = if secure {
        let name = ServerName::try_from(host.clone())
            .map_err(|e| closed(format!("{host} is not a TLS server name: {e}")))?;
        let connection = ClientConnection::new(Arc::clone(&target.tls), name)
            .map_err(|e| closed(format!("TLS set-up failed: {e}")))?;
        Stream::Tls(Box::new(StreamOwned::new(connection, tcp)))
    } else {
        Stream::Plain(tcp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    let mut events = Events::with_capacity(4);
    let mut attempt = tungstenite::client::client_with_config(request, stream, Some(config));
    loop {
        match attempt {
            Ok((ws, _response)) => return Ok((ws, poll)),
            Err(HandshakeError::Failure(e)) => return Err(refused(&target.url, e)),
            Err(HandshakeError::Interrupted(mid)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(closed(format!(
                        "timed out opening the proxy at {}",
                        target.url
                    )));
                }
                poll.poll(&mut events, Some(left)).map_err(io)?;
                attempt = mid.handshake();
            }
        }
    }
}

/// The error of a failed handshake: the server's HTTP refusal (401, 404...)
/// said plainly.
fn refused(url: &str, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default();
            Error::Http {
                what: format!("the proxy at {url}"),
                status,
                message: body,
            }
        }
        other => closed(format!("cannot open the proxy at {url}: {other}")),
    }
}
