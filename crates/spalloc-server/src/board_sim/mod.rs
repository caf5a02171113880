//! Simulated boards that answer: every board of a simulated machine with
//! `answer_scp = true` gets a UDP socket on its IP, port 17893 (SC&MP's),
//! answering SCP as [`scamp`] says. This is the thin I/O shell; the replies
//! are decided in [`scamp`], with no sockets.
//!
//! Boards are bound at start-up, and follow each reload
//! ([`SimulatedBoards::reconfigure`]): boards that appear start answering,
//! boards that go (or die, or stop answering) are unbound, and a board
//! whose IP now belongs to another board keeps its socket but answers as
//! the new one (with a fresh memory). An address that cannot be bound
//! (already in use, say by another server simulating the same machine) is
//! logged and skipped: the rest of the server, and the other boards, are
//! unaffected.

pub mod scamp;

use crate::config::{BmpBackend, ServerConfig};
use crate::core::machine::board_repr;
use scamp::SimulatedBoard;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// The UDP port SC&MP listens on.
pub const SCAMP_PORT: u16 = 17893;

/// One answering board.
#[derive(Debug)]
struct Answering {
    /// What its version reply names it.
    description: String,
    socket: Arc<UdpSocket>,
    task: JoinHandle<()>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The running simulated boards, by IP; dropping this stops them all.
#[derive(Debug, Default)]
pub struct SimulatedBoards {
    boards: BTreeMap<String, Answering>,
}

impl SimulatedBoards {
    /// The addresses that are answering.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.boards
            .values()
            .filter_map(|b| b.socket.local_addr().ok())
            .collect()
    }

    /// Makes the answering boards those of `config`: starts the new ones,
    /// stops the ones no longer in it, and re-describes the ones whose IP
    /// now belongs to another board. Must run inside a tokio runtime.
    pub fn reconfigure(&mut self, config: &ServerConfig) {
        let wanted = wanted_boards(config);
        let before = self.boards.len();
        self.boards.retain(|ip, _| wanted.contains_key(ip));
        let stopped = before - self.boards.len();
        let mut started = 0;
        for (ip, description) in wanted {
            if let Some(board) = self.boards.get_mut(&ip) {
                if board.description != description {
                    // The same address, another board: the socket stays
                    // bound, the answers change.
                    board.task.abort();
                    board.task = tokio::spawn(answer(
                        Arc::clone(&board.socket),
                        SimulatedBoard::new(&description),
                    ));
                    board.description = description;
                }
                continue;
            }
            match bind(&ip) {
                Ok(socket) => {
                    let socket = Arc::new(socket);
                    let task = tokio::spawn(answer(
                        Arc::clone(&socket),
                        SimulatedBoard::new(&description),
                    ));
                    self.boards.insert(
                        ip,
                        Answering {
                            description,
                            socket,
                            task,
                        },
                    );
                    started += 1;
                }
                Err(error) => {
                    warn!(%error, %ip, "simulated board cannot answer SCP: its address cannot be bound");
                }
            }
        }
        if started > 0 || stopped > 0 {
            info!(
                boards = self.boards.len(),
                started,
                stopped,
                port = SCAMP_PORT,
                "simulated boards answering SCP"
            );
        }
    }
}

/// Every board of `config` that should answer: IP to its description.
fn wanted_boards(config: &ServerConfig) -> BTreeMap<String, String> {
    let mut wanted = BTreeMap::new();
    for m in &config.machines {
        let BmpBackend::Simulated {
            answer_scp: true, ..
        } = m.bmp
        else {
            continue;
        };
        for (board, ip) in &m.machine.spinnaker_ips {
            if m.machine.dead_boards.contains(board) {
                continue;
            }
            let description = format!(
                "SpiNNaker board {} of {} at {ip}",
                board_repr(board),
                m.machine.name
            );
            wanted.insert(ip.clone(), description);
        }
    }
    wanted
}

/// Binds and starts every simulated board of `config` that should answer.
/// Must run inside a tokio runtime.
pub fn start(config: &ServerConfig) -> SimulatedBoards {
    let mut boards = SimulatedBoards::default();
    boards.reconfigure(config);
    boards
}

fn bind(ip: &str) -> std::io::Result<UdpSocket> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| std::io::Error::other(format!("{ip:?} is not an IP address")))?;
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, SCAMP_PORT))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Answers datagrams on `socket` until the task is aborted.
async fn answer(socket: Arc<UdpSocket>, mut board: SimulatedBoard) {
    let mut buffer = vec![0u8; 65536];
    loop {
        let (n, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                // ICMP port-unreachable from an earlier reply's sender shows
                // up here on some systems; it concerns no one else.
                debug!(%error, "simulated board receive error");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
        };
        if let Some(reply) = board.handle(&buffer[..n]) {
            if let Err(error) = socket.send_to(&reply, from).await {
                debug!(%error, %from, "simulated board could not reply");
            }
        }
    }
}
