//! The forwarder's I/O: one local UDP socket per board, carried both ways
//! over the library's proxy connections ([`spalloc::v2::proxy`]), which are
//! reopened when the websocket drops. Replies from a board go to whoever
//! last sent to that board's local port (as a board answers its last
//! sender).
//!
//! Threads: one per local socket for the whole run (local datagrams to the
//! board's current connection), and per websocket one per board (the
//! board's datagrams to the local sender); the caller's thread supervises:
//! it reconnects, and stops on Ctrl-C or when the server ends the proxy.

use spalloc::v2::proxy::{BoardConnection, Proxy};
use spalloc::v2::Job;
use spalloc_cli::interrupt::InterruptibleSection;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the threads look at whether they should stop.
const CHECK: Duration = Duration::from_millis(100);

/// One board as the forwarder serves it.
#[derive(Debug)]
pub struct Board {
    /// Ethernet chip X in job coordinates.
    pub x: u32,
    /// Ethernet chip Y.
    pub y: u32,
    /// The board's hostname (for the table only: the server decides).
    pub host: String,
    /// The local socket standing in for it.
    pub socket: UdpSocket,
    /// Who last sent to it (where its replies go).
    peer: Mutex<Option<SocketAddr>>,
    /// Its connection through the current websocket, if one is open.
    connection: RwLock<Option<Arc<BoardConnection>>>,
}

impl Board {
    /// A board served on `socket`.
    pub fn new(x: u32, y: u32, host: String, socket: UdpSocket) -> Board {
        Board {
            x,
            y,
            host,
            socket,
            peer: Mutex::new(None),
            connection: RwLock::new(None),
        }
    }

    fn connection(&self) -> Option<Arc<BoardConnection>> {
        self.connection.read().ok().and_then(|c| c.clone())
    }

    fn set_connection(&self, connection: Option<Arc<BoardConnection>>) {
        if let Ok(mut c) = self.connection.write() {
            *c = connection;
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.peer.lock().ok().and_then(|p| *p)
    }
}

/// Why forwarding stopped.
#[derive(Debug)]
pub enum Stop {
    /// Ctrl-C.
    Interrupted,
    /// The server closed the proxy for good (the job ended, or may not be
    /// proxied): why.
    Closed(String),
}

/// Forwards to the boards' UDP `port` until Ctrl-C or the server ends the
/// proxy, reopening the websocket (after `retry`) whenever it drops.
pub fn run(job: &Job, boards: &[Arc<Board>], port: u16, retry: Duration) -> Stop {
    let section = InterruptibleSection::enter();
    let stop = Arc::new(AtomicBool::new(false));
    let locals: Vec<_> = boards
        .iter()
        .map(|b| spawn_local_reader(Arc::clone(b), Arc::clone(&stop)))
        .collect();
    let stopped = supervise(job, boards, port, retry, &section);
    stop.store(true, Ordering::Relaxed);
    for b in boards {
        b.set_connection(None);
    }
    for t in locals {
        let _ = t.join();
    }
    stopped
}

fn supervise(
    job: &Job,
    boards: &[Arc<Board>],
    port: u16,
    retry: Duration,
    section: &InterruptibleSection,
) -> Stop {
    loop {
        match connect(job, boards, port) {
            Ok((proxy, readers, generation)) => {
                let closed = loop {
                    if section.take_interrupt() {
                        break None;
                    }
                    if let Some(e) = proxy.wait_closed(CHECK) {
                        break Some(e);
                    }
                };
                for b in boards {
                    b.set_connection(None);
                }
                generation.store(true, Ordering::Relaxed);
                drop(proxy);
                for t in readers {
                    let _ = t.join();
                }
                match closed {
                    None => return Stop::Interrupted,
                    Some(e) if e.is_final_proxy_close() => return Stop::Closed(e.to_string()),
                    Some(e) => eprintln!("spalloc-proxy: {e}; reconnecting"),
                }
            }
            Err(e) if is_final(&e) => return Stop::Closed(e.to_string()),
            Err(e) => eprintln!("spalloc-proxy: {e}; retrying"),
        }
        let until = Instant::now() + retry;
        while Instant::now() < until {
            if section.take_interrupt() {
                return Stop::Interrupted;
            }
            std::thread::sleep(CHECK.min(retry));
        }
    }
}

/// Whether a failure to open the proxy will not mend by retrying: the job
/// is gone, has no boards, or may not be proxied by this user.
fn is_final(e: &spalloc::Error) -> bool {
    use spalloc::Error;
    match e {
        Error::Http { status, .. } => matches!(status, 400..=499),
        Error::JobDestroyed { .. }
        | Error::InvalidRequest(_)
        | Error::ProxyRefused(_)
        | Error::Unauthorized { .. } => true,
        other => other.is_final_proxy_close(),
    }
}

type Connected = (Proxy, Vec<JoinHandle<()>>, Arc<AtomicBool>);

/// Opens the websocket and one connection per board (UDP `port`), and starts the
/// threads carrying the boards' datagrams to the local senders.
fn connect(job: &Job, boards: &[Arc<Board>], port: u16) -> spalloc::Result<Connected> {
    let proxy = job.proxy()?;
    let generation = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for b in boards {
        let connection = match proxy.open(b.x, b.y, port) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                generation.store(true, Ordering::Relaxed);
                for b in boards {
                    b.set_connection(None);
                }
                return Err(e);
            }
        };
        b.set_connection(Some(Arc::clone(&connection)));
        readers.push(spawn_board_reader(
            Arc::clone(b),
            connection,
            Arc::clone(&generation),
        ));
    }
    Ok((proxy, readers, generation))
}

/// Local datagrams to the board's current connection. Until a connection
/// is open they are lost, as UDP may lose them; the sender retries.
fn spawn_local_reader(board: Arc<Board>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = board.socket.set_read_timeout(Some(CHECK));
        let mut buffer = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = board.socket.recv_from(&mut buffer) else {
                continue;
            };
            if let Ok(mut peer) = board.peer.lock() {
                *peer = Some(from);
            }
            if let Some(connection) = board.connection() {
                // An error means the websocket closed: the supervisor
                // reconnects, and this datagram is lost.
                let _ = connection.send(&buffer[..n]);
            }
        }
    })
}

/// The board's datagrams to whoever last sent to its local port, until the
/// connection closes or `done`.
fn spawn_board_reader(
    board: Arc<Board>,
    connection: Arc<BoardConnection>,
    done: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            match connection.recv(CHECK) {
                Ok(Some(datagram)) => {
                    if let Some(peer) = board.peer() {
                        let _ = board.socket.send_to(&datagram, peer);
                    }
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
    })
}
