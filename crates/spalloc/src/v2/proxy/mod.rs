//! The job proxy, client side: datagram connections to a job's boards
//! through the server's websocket (`/spalloc/proxy/{job}`, allocserv's
//! protocol, reference §4.7), for users outside the boards' network.
//!
//! A [`Proxy`] is one websocket; on it, a [`BoardConnection`] is a UDP
//! "connection" to one board (SpiNNMan's proxied SC&MP connection), and an
//! [`UnconnectedChannel`] a server-side UDP socket that boards can send to
//! (their IPTags point at [`UnconnectedChannel::server_address`]) and that
//! can send to any board of the job. The API is blocking, like the rest of
//! the crate: one background thread per websocket does the I/O.
//!
//! ```
//! # let mut server_config = spalloc_server::ServerConfig::from_toml_str(
//! #     "ip = \"127.0.0.1\"\nport = 0\n[http]\nport = 0\n[[machine]]\nname = \"m\"\n\
//! #      width = 1\nheight = 1\nbase_ip = \"127.83.0.0\"\npower_delay = 0.02\n\
//! #      answer_scp = true\n")?;
//! # let server = spalloc_server::RunningServer::start(server_config)?;
//! # server.accounts().add_user(&spalloc_server::accounts::NewUser {
//! #     name: "ann".into(), role: spalloc_server::accounts::Role::User,
//! #     password: Some("secret".into()), groups: vec!["g".into()],
//! # }, spalloc_server::clock::now() as i64)?;
//! # let url = format!("http://{}/spalloc/", server.http_addr().unwrap());
//! # let scp_version_request = [0, 0, 0x87, 0xff, 0, 0xff, 0, 0, 0, 0, 0, 0, 1, 0,
//! #     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
//! use spalloc::v2::{Client, CreateJob, Credentials};
//! use std::time::Duration;
//!
//! let client = Client::builder(url)
//!     .credentials(Credentials::password("ann", "secret"))
//!     .build()?;
//! let job = client.create_job(&CreateJob::boards(1))?;
//! job.wait_until_ready(Some(Duration::from_secs(60)))?;
//! // The board whose Ethernet chip is (0, 0), SC&MP's port.
//! let board = job.connect_to_board(0, 0, 17893)?;
//! let reply = loop {
//!     board.send(&scp_version_request)?;   // UDP: resend until answered
//!     if let Some(reply) = board.recv(Duration::from_secs(1))? {
//!         break reply;
//!     }
//! };
//! assert!(String::from_utf8_lossy(&reply).contains("SC&MP"));
//! job.destroy(Some("finished"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout: `stream` opens the websocket (TCP, TLS, handshake),
//! `io` is the thread that owns it; this file is the API.

mod io;
mod stream;

use super::job::Job;
use crate::error::{Error, Result};
use io::{CloseReason, Opened, Shared, WAKE};
use serde_json::Value;
use spalloc_protocol::proxy_frame::ClientFrame;
use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use stream::Target;

/// Frames that may wait for the I/O thread; a caller sending faster than
/// the websocket carries them waits.
const OUTGOING_QUEUE: usize = 1024;

/// How long a call (opening a channel) waits for the server's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The websocket's end shared by the [`Proxy`] handle and its channels:
/// the last one dropped closes the websocket.
#[derive(Debug)]
struct Link {
    shared: Arc<Shared>,
    outgoing: SyncSender<Vec<u8>>,
    waker: mio::Waker,
}

impl Link {
    fn send(&self, frame: Vec<u8>) -> Result<()> {
        self.refuse_if_closed()?;
        self.outgoing.send(frame).map_err(|_| self.closed_error())?;
        self.waker.wake().map_err(|e| Error::ProxyClosed {
            code: None,
            reason: format!("cannot wake the proxy's thread: {e}"),
        })
    }

    /// Like [`Link::send`] for a frame that may be lost (a datagram): a
    /// full queue drops it, as a full UDP buffer would.
    fn send_datagram(&self, frame: Vec<u8>) -> Result<()> {
        self.refuse_if_closed()?;
        match self.outgoing.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(self.closed_error()),
        }
        let _ = self.waker.wake();
        Ok(())
    }

    /// The close, once the websocket has closed. The I/O thread may still
    /// be winding down then, taking frames it will never send: without this
    /// a send right after a close seen by `recv` was reported as sent.
    fn refuse_if_closed(&self) -> Result<()> {
        match self.shared.closed() {
            Some(_) => Err(self.closed_error()),
            None => Ok(()),
        }
    }

    fn closed_error(&self) -> Error {
        let reason = self.shared.closed().unwrap_or(CloseReason {
            code: None,
            reason: "the proxy's thread ended".into(),
        });
        Error::ProxyClosed {
            code: reason.code,
            reason: reason.reason,
        }
    }

    /// Sends a call and waits for the channel it opens.
    fn call(&self, frame: impl FnOnce(u32) -> Vec<u8>) -> Result<Opened> {
        let corr = self.shared.next_corr();
        let replied = self
            .shared
            .expect_reply(corr)
            .map_err(|r| Error::ProxyClosed {
                code: r.code,
                reason: r.reason,
            })?;
        self.send(frame(corr))?;
        match replied.recv_timeout(CALL_TIMEOUT) {
            Ok(Ok(opened)) => Ok(opened),
            Ok(Err(message)) => Err(Error::ProxyRefused(message)),
            Err(RecvTimeoutError::Disconnected) => Err(self.closed_error()),
            Err(RecvTimeoutError::Timeout) => {
                self.shared.forget_call(corr);
                Err(Error::ProxyClosed {
                    code: None,
                    reason: "the proxy did not answer".into(),
                })
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}

/// One websocket to a job's proxy. Cheap to share; channels opened on it
/// keep it open after the handle is dropped.
#[derive(Debug, Clone)]
pub struct Proxy {
    link: Arc<Link>,
}

impl Proxy {
    /// Opens the websocket at `target` (a job state's `proxy-ref`, with the
    /// headers that authenticate it). Usually [`Job::proxy`] does this.
    pub fn connect(target: &Target) -> Result<Proxy> {
        let (ws, poll) = stream::open(target)?;
        let waker = mio::Waker::new(poll.registry(), WAKE).map_err(|e| Error::ProxyClosed {
            code: None,
            reason: format!("cannot set up the proxy's thread: {e}"),
        })?;
        let (outgoing, queued) = mpsc::sync_channel(OUTGOING_QUEUE);
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("spalloc-proxy-io".into())
            .spawn(move || io::run(ws, poll, queued, &thread_shared))
            .map_err(|e| Error::ProxyClosed {
                code: None,
                reason: format!("cannot start the proxy's thread: {e}"),
            })?;
        Ok(Proxy {
            link: Arc::new(Link {
                shared,
                outgoing,
                waker,
            }),
        })
    }

    /// Opens a connection to the board whose Ethernet chip is at
    /// job-relative (`x`, `y`), on its UDP `port` (17893 for SC&MP). A chip
    /// that is not a board of the job is [`Error::ProxyRefused`].
    pub fn open(&self, x: u32, y: u32, port: u16) -> Result<BoardConnection> {
        let opened = self.link.call(|corr| {
            ClientFrame::Open {
                corr,
                x,
                y,
                port: u32::from(port),
            }
            .encode()
        })?;
        Ok(BoardConnection {
            channel: Channel::new(&self.link, opened),
            chip: (x, y),
        })
    }

    /// Opens an unconnected channel: a UDP socket on the server (on its
    /// configured proxy address) that any board of the job may send to,
    /// and that sends to any of them.
    pub fn open_unconnected(&self) -> Result<UnconnectedChannel> {
        let opened = self
            .link
            .call(|corr| ClientFrame::OpenUnconnected { corr }.encode())?;
        let address = opened.address.ok_or_else(|| {
            Error::ProtocolError("the proxy opened a connected channel instead".into())
        })?;
        Ok(UnconnectedChannel {
            channel: Channel::new(&self.link, opened),
            address,
        })
    }

    /// Why the websocket closed (an [`Error::ProxyClosed`]), once it has.
    pub fn closed(&self) -> Option<Error> {
        self.link.shared.closed().map(|r| Error::ProxyClosed {
            code: r.code,
            reason: r.reason,
        })
    }

    /// Waits until the websocket closes (its reason, as [`Proxy::closed`])
    /// or `timeout` passes (`None`).
    pub fn wait_closed(&self, timeout: Duration) -> Option<Error> {
        self.link
            .shared
            .wait_closed(timeout)
            .map(|r| Error::ProxyClosed {
                code: r.code,
                reason: r.reason,
            })
    }
}

/// One open channel: its ID, its datagrams, and the websocket.
#[derive(Debug)]
struct Channel {
    link: Arc<Link>,
    id: u32,
    incoming: Mutex<Receiver<Vec<u8>>>,
}

impl Channel {
    fn new(link: &Arc<Link>, opened: Opened) -> Channel {
        Channel {
            link: Arc::clone(link),
            id: opened.channel,
            incoming: Mutex::new(opened.incoming),
        }
    }

    fn recv(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let incoming = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
        match incoming.recv_timeout(timeout) {
            Ok(datagram) => Ok(Some(datagram)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.link.closed_error()),
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.link.shared.forget_channel(self.id);
        let corr = self.link.shared.next_corr();
        let _ = self.link.send_datagram(
            ClientFrame::Close {
                corr,
                channel: self.id,
            }
            .encode(),
        );
    }
}

/// A datagram connection to one board of a job through its proxy (as a
/// connected UDP socket to the board would be). `send` and `recv` may be
/// used from different threads at once.
#[derive(Debug)]
pub struct BoardConnection {
    channel: Channel,
    chip: (u32, u32),
}

impl BoardConnection {
    /// The board's Ethernet chip, in job coordinates.
    pub fn chip(&self) -> (u32, u32) {
        self.chip
    }

    /// Sends one datagram to the board (at most
    /// [`MAX_PAYLOAD`](spalloc_protocol::proxy_frame::MAX_PAYLOAD) bytes).
    /// As with UDP, it may be lost; an error means the proxy has closed.
    pub fn send(&self, datagram: &[u8]) -> Result<()> {
        check_size(datagram)?;
        let frame = ClientFrame::Message {
            channel: self.channel.id,
            payload: datagram,
        };
        self.channel.link.send(frame.encode())
    }

    /// The next datagram from the board, waiting up to `timeout`: `None`
    /// if none came; an error if the proxy has closed.
    pub fn recv(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.channel.recv(timeout)
    }
}

/// A server-side UDP socket of the proxy that any board of the job may
/// send to, and that sends to any of them.
#[derive(Debug)]
pub struct UnconnectedChannel {
    channel: Channel,
    address: SocketAddrV4,
}

impl UnconnectedChannel {
    /// The socket's address on the server: where boards send (an IPTag's
    /// target).
    pub fn server_address(&self) -> SocketAddrV4 {
        self.address
    }

    /// Sends one datagram to the board whose Ethernet chip is at
    /// job-relative (`x`, `y`), on its UDP `port`.
    pub fn send_to(&self, x: u32, y: u32, port: u16, datagram: &[u8]) -> Result<()> {
        check_size(datagram)?;
        let frame = ClientFrame::MessageTo {
            channel: self.channel.id,
            x,
            y,
            port: u32::from(port),
            payload: datagram,
        };
        self.channel.link.send(frame.encode())
    }

    /// The next datagram a board sent to the socket, waiting up to
    /// `timeout`: `None` if none came; an error if the proxy has closed.
    pub fn recv(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        self.channel.recv(timeout)
    }
}

fn check_size(datagram: &[u8]) -> Result<()> {
    let max = spalloc_protocol::proxy_frame::MAX_PAYLOAD;
    if datagram.len() > max {
        return Err(Error::InvalidRequest(format!(
            "a datagram of {} bytes is over UDP's {max}",
            datagram.len()
        )));
    }
    Ok(())
}

impl Job {
    /// The URL of the job's proxy: its state's `proxy-ref`, present once
    /// the job has boards (an error before).
    pub fn proxy_url(&self) -> Result<String> {
        let state: Value = self.session().get(self.url())?.json("the job's state")?;
        state
            .get("proxy-ref")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "job {} cannot be proxied yet: it has no boards (no proxy-ref)",
                    self.id()
                ))
            })
    }

    /// Opens a websocket to the job's proxy, authenticated as the client's
    /// requests are.
    pub fn proxy(&self) -> Result<Proxy> {
        let url = self.proxy_url()?;
        let headers = self.session().websocket_headers()?;
        let (tls, timeout) = self.session().websocket_settings();
        Proxy::connect(&Target {
            url,
            headers,
            tls,
            timeout,
        })
    }

    /// Opens a connection to one board of the job through a new proxy
    /// websocket (as SpiNNMan's `connect_to_board`): the board whose
    /// Ethernet chip is at job-relative (`x`, `y`), UDP `port`.
    pub fn connect_to_board(&self, x: u32, y: u32, port: u16) -> Result<BoardConnection> {
        self.proxy()?.open(x, y, port)
    }
}
