//! One UDP conversation with one BMP: send a request, wait for the reply
//! with the same sequence number, resend on a timeout or a "busy" result
//! code while retries remain (SpiNNMan's `SCPRequestPipeLine`, one request
//! at a time).
//!
//! The socket is connected to the BMP, so only its datagrams are received
//! and an ICMP "port unreachable" surfaces at once as an I/O error, as in
//! the reference (which then fails in milliseconds instead of timing out).

use super::packet::{command_name, DecodeError, Reply, Request, RC_OK, RETRY_CODES};
use std::io;
use std::time::Duration;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::debug;

/// Wait before resending a request the BMP answered with a retry code
/// (SpiNNMan sleeps 0.1 s).
pub const RETRY_CODE_DELAY: Duration = Duration::from_millis(100);

/// Largest datagram accepted from a BMP (SDP packets are at most 292 bytes).
const MAX_DATAGRAM: usize = 2048;

/// Why a command to a BMP failed.
#[derive(Debug, Error)]
pub enum ScpError {
    /// The socket could not be created, connected, written or read
    /// (typically "connection refused" when nothing listens).
    #[error("I/O error talking to BMP {bmp}: {source}")]
    Io {
        /// The BMP's address.
        bmp: String,
        /// The error.
        source: io::Error,
    },
    /// No reply after every attempt.
    #[error("{command} to BMP {bmp}: no reply after {attempts} attempt(s) of {timeout:?}")]
    Timeout {
        /// The BMP's address.
        bmp: String,
        /// The command's name.
        command: &'static str,
        /// How many times it was sent.
        attempts: u32,
        /// The wait for each.
        timeout: Duration,
    },
    /// The BMP answered with an error result code.
    #[error("{command} to BMP {bmp} failed with result code {rc:#04x}")]
    ResultCode {
        /// The BMP's address.
        bmp: String,
        /// The command's name.
        command: &'static str,
        /// The code.
        rc: u16,
    },
    /// The reply's payload is malformed.
    #[error("{command} to BMP {bmp}: {source}")]
    BadReply {
        /// The BMP's address.
        bmp: String,
        /// The command's name.
        command: &'static str,
        /// What is wrong.
        source: DecodeError,
    },
    /// The software answering is not a BMP this server can drive.
    #[error("the BMP at {bmp} is running {name} {version} which is incompatible with this server, required version is BC&MP 1.x or 2.x")]
    Incompatible {
        /// The BMP's address.
        bmp: String,
        /// The software name reported.
        name: String,
        /// Its version.
        version: String,
    },
    /// Some boards kept reporting the wrong FPGA ID after every power-on round.
    #[error("Could not get correct FPGA ID after {rounds} tries (BMP {bmp}, boards {boards:?})")]
    FpgaId {
        /// The BMP's address.
        bmp: String,
        /// How many power-on rounds were made.
        rounds: u32,
        /// The boards still wrong.
        boards: Vec<u32>,
    },
}

/// How long to wait for a reply and how often to resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Wait for each reply.
    pub timeout: Duration,
    /// Resends after the first send.
    pub retries: u32,
}

/// A UDP socket connected to one BMP, with its own sequence numbers.
pub struct ScpConnection {
    socket: UdpSocket,
    bmp: String,
    next_seq: u16,
}

impl ScpConnection {
    /// Opens a socket on an ephemeral port and connects it to `host:port`
    /// (`host` may be a name, resolved here).
    pub async fn connect(host: &str, port: u16) -> Result<ScpConnection, ScpError> {
        let io_error = |source| ScpError::Io {
            bmp: host.to_owned(),
            source,
        };
        let target = tokio::net::lookup_host((host, port))
            .await
            .map_err(io_error)?
            .next()
            .ok_or_else(|| io_error(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        let local = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(local).await.map_err(io_error)?;
        socket.connect(target).await.map_err(io_error)?;
        Ok(ScpConnection {
            socket,
            bmp: host.to_owned(),
            next_seq: 0,
        })
    }

    /// The BMP's address as configured, for errors and logs.
    pub fn bmp(&self) -> &str {
        &self.bmp
    }

    /// Sends `request` and returns the BMP's successful reply. Every
    /// resend reuses the sequence number; replies with another one (late
    /// answers to earlier requests) are ignored.
    pub async fn call(&mut self, request: &Request, attempts: Attempts) -> Result<Reply, ScpError> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let datagram = request.encode(seq);
        let command = command_name(request.command());
        let mut retries_left = attempts.retries;
        let mut sent = 0;
        loop {
            self.socket.send(&datagram).await.map_err(|e| self.io(e))?;
            sent += 1;
            match self.receive(seq, Instant::now() + attempts.timeout).await? {
                Some(reply) if reply.rc == RC_OK => return Ok(reply),
                Some(reply) if RETRY_CODES.contains(&reply.rc) && retries_left > 0 => {
                    debug!(bmp = %self.bmp, command, rc = reply.rc, "BMP busy; resending");
                    tokio::time::sleep(RETRY_CODE_DELAY).await;
                }
                Some(reply) => {
                    return Err(ScpError::ResultCode {
                        bmp: self.bmp.clone(),
                        command,
                        rc: reply.rc,
                    })
                }
                None if retries_left > 0 => {
                    debug!(bmp = %self.bmp, command, "no reply from BMP; resending");
                }
                None => {
                    return Err(ScpError::Timeout {
                        bmp: self.bmp.clone(),
                        command,
                        attempts: sent,
                        timeout: attempts.timeout,
                    })
                }
            }
            retries_left -= 1;
        }
    }

    /// The reply with sequence number `seq`, or `None` at the deadline.
    /// Datagrams that are not replies, or not to this request, are dropped.
    async fn receive(&self, seq: u16, deadline: Instant) -> Result<Option<Reply>, ScpError> {
        let mut buffer = [0u8; MAX_DATAGRAM];
        loop {
            let received = tokio::time::timeout_at(deadline, self.socket.recv(&mut buffer)).await;
            let Ok(received) = received else {
                return Ok(None);
            };
            let n = received.map_err(|e| self.io(e))?;
            match Reply::decode(&buffer[..n]) {
                Ok(reply) if reply.seq == seq => return Ok(Some(reply)),
                Ok(reply) => {
                    debug!(bmp = %self.bmp, seq = reply.seq, expected = seq, "stale BMP reply dropped")
                }
                Err(e) => debug!(bmp = %self.bmp, error = %e, "malformed BMP reply dropped"),
            }
        }
    }

    fn io(&self, source: io::Error) -> ScpError {
        ScpError::Io {
            bmp: self.bmp.clone(),
            source,
        }
    }
}
