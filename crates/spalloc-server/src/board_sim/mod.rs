//! Simulated boards that answer: every board of a simulated machine with
//! `answer_scp = true` gets a UDP socket on its IP, port 17893 (SC&MP's),
//! answering SCP as [`scamp`] says. This is the thin I/O shell; the replies
//! are decided in [`scamp`], with no sockets.
//!
//! Boards are bound once at start-up, from the configuration then in force.
//! An address that cannot be bound (already in use, say by another server
//! simulating the same machine) is logged and skipped: the rest of the
//! server, and the other boards, are unaffected.

pub mod scamp;

use crate::config::{BmpBackend, ServerConfig};
use crate::core::machine::board_repr;
use scamp::SimulatedBoard;
use std::net::{IpAddr, SocketAddr};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// The UDP port SC&MP listens on.
pub const SCAMP_PORT: u16 = 17893;

/// The running simulated boards; dropping this stops them all.
#[derive(Debug, Default)]
pub struct SimulatedBoards {
    tasks: Vec<JoinHandle<()>>,
    addresses: Vec<SocketAddr>,
}

impl SimulatedBoards {
    /// The addresses that are answering.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }
}

impl Drop for SimulatedBoards {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds and starts every simulated board of `config` that should answer.
/// Must run inside a tokio runtime.
pub fn start(config: &ServerConfig) -> SimulatedBoards {
    let mut boards = SimulatedBoards::default();
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
            match bind(ip) {
                Ok(socket) => {
                    if let Ok(address) = socket.local_addr() {
                        boards.addresses.push(address);
                    }
                    let board = SimulatedBoard::new(&description);
                    boards.tasks.push(tokio::spawn(answer(socket, board)));
                }
                Err(error) => {
                    warn!(%error, %ip, "simulated board cannot answer SCP: its address cannot be bound");
                }
            }
        }
    }
    if !boards.addresses.is_empty() {
        info!(
            boards = boards.addresses.len(),
            port = SCAMP_PORT,
            "simulated boards answering SCP"
        );
    }
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
async fn answer(socket: UdpSocket, mut board: SimulatedBoard) {
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
