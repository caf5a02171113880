//! The network half of `GET`/`POST /jobs/{id}/memory`: SCP memory reads
//! and writes (`CMD_READ`, `CMD_WRITE`) to the Ethernet chip of a job's
//! board, in pieces of at most 256 bytes (SC&MP's buffer), each retried a
//! few times when no answer comes. What to access was decided by
//! [`crate::rest::board_io::memory_access`] under the service lock; this
//! runs without it.
//!
//! SCP over UDP is written by hand (two bytes of padding, the 8-byte SDP
//! header, command, sequence number, three arguments, data; all
//! little-endian), as in `bmp::scp::packet` and `board_sim::scamp`: no
//! maintained crate speaks it. Replies are decoded with
//! [`crate::bmp::scp::packet::Reply`].

use crate::bmp::scp::packet::Reply as ScpReply;
use crate::board_sim::SCAMP_PORT;
use crate::rest::board_io::{read_reply, write_reply, MemoryAccess, MemoryOp};
use crate::rest::Reply;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// SC&MP's `CMD_READ`.
const CMD_READ: u16 = 2;
/// SC&MP's `CMD_WRITE`.
const CMD_WRITE: u16 = 3;
/// SCP's success result code.
const RC_OK: u16 = 0x80;
/// The most data one SCP packet carries.
const CHUNK: u32 = 256;
/// How long to wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);
/// How many times a piece is sent before giving up.
const ATTEMPTS: usize = 3;

/// Why an access failed, as the client hears it.
enum Fault {
    /// The board answered with an error code (a bad address, say): 400.
    Refused(String),
    /// No answer, or the network refused: 504.
    Unreachable(String),
}

/// Performs `access` and answers the request.
pub async fn perform(access: MemoryAccess) -> Reply {
    match run(&access).await {
        Ok(Some(data)) => read_reply(data),
        Ok(None) => write_reply(),
        Err(Fault::Refused(m)) => Reply::text(400, m),
        Err(Fault::Unreachable(m)) => Reply::text(504, m),
    }
}

async fn run(access: &MemoryAccess) -> Result<Option<Vec<u8>>, Fault> {
    let ip: std::net::IpAddr = access
        .board_ip
        .parse()
        .map_err(|_| Fault::Unreachable(format!("bad board address {}", access.board_ip)))?;
    let board = SocketAddr::new(ip, SCAMP_PORT);
    let unreachable = |e: std::io::Error| Fault::Unreachable(format!("board at {board}: {e}"));
    let local: SocketAddr = if ip.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(unreachable)?;
    socket.connect(board).await.map_err(unreachable)?;
    let mut seq: u16 = 0;
    let mut out = Vec::new();
    let total = match &access.op {
        MemoryOp::Read(n) => *n,
        MemoryOp::Write(data) => data.len() as u32,
    };
    let mut done = 0u32;
    while done < total {
        let n = CHUNK.min(total - done);
        let address = access.address + done;
        seq = seq.wrapping_add(1);
        let packet = match &access.op {
            MemoryOp::Read(_) => packet(access.chip, CMD_READ, seq, [address, n, 0], &[]),
            MemoryOp::Write(data) => {
                let piece = &data[done as usize..(done + n) as usize];
                packet(access.chip, CMD_WRITE, seq, [address, n, 0], piece)
            }
        };
        let reply = exchange(&socket, &packet, seq, board).await?;
        if reply.rc != RC_OK {
            return Err(Fault::Refused(format!(
                "the board at {board} refused the access at {address:#x} (SCP result {:#x})",
                reply.rc
            )));
        }
        if let MemoryOp::Read(_) = access.op {
            if reply.payload.len() < n as usize {
                return Err(Fault::Refused(format!(
                    "the board at {board} sent {} bytes, not {n}",
                    reply.payload.len()
                )));
            }
            out.extend_from_slice(&reply.payload[..n as usize]);
        }
        done += n;
    }
    Ok(matches!(access.op, MemoryOp::Read(_)).then_some(out))
}

/// Sends `packet` until its answer (the reply with its sequence number)
/// comes, at most [`ATTEMPTS`] times.
async fn exchange(
    socket: &UdpSocket,
    packet: &[u8],
    seq: u16,
    board: SocketAddr,
) -> Result<ScpReply, Fault> {
    let mut buffer = vec![0u8; 2048];
    for _ in 0..ATTEMPTS {
        socket
            .send(packet)
            .await
            .map_err(|e| Fault::Unreachable(format!("board at {board}: {e}")))?;
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        // Until the deadline; an error (ICMP "port unreachable" and the
        // like) sends the piece again at once.
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            match ScpReply::decode(&buffer[..n]) {
                Ok(reply) if reply.seq == seq => return Ok(reply),
                // A late answer to an earlier attempt, or junk.
                _ => continue,
            }
        }
    }
    Err(Fault::Unreachable(format!(
        "no answer from the board at {board}"
    )))
}

/// An SCP request to SC&MP on chip `(x, y)`, core 0, port 0.
pub(crate) fn packet(
    chip: (u32, u32),
    command: u16,
    seq: u16,
    args: [u32; 3],
    data: &[u8],
) -> Vec<u8> {
    let (x, y) = chip;
    let mut out = Vec::with_capacity(26 + data.len());
    // Padding; flags (reply expected), tag, destination port/core,
    // source port/core, destination y and x, source y and x.
    out.extend_from_slice(&[0, 0, 0x87, 0xff, 0x00, 0xff, y as u8, x as u8, 0, 0]);
    out.extend_from_slice(&command.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    for a in args {
        out.extend_from_slice(&a.to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}
