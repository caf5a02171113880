//! The rules of one proxy websocket, with no I/O: which board a channel
//! may reach, what each client frame asks the shell to do, and what is
//! answered. The shell ([`super::socket`]) owns the UDP sockets and the
//! websocket and does exactly what [`Action`] says.

use super::frame::{ClientFrame, ServerFrame};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The most channels one websocket may have open at once: each is a UDP
/// socket on the server, so a client cannot exhaust its file descriptors.
pub const MAX_CHANNELS: usize = 64;

/// What the shell must do for one client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this frame back; nothing else.
    Reply(ServerFrame),
    /// Open a UDP socket connected to `board`, then reply
    /// [`ServerFrame::Opened`] (or, if that fails, an error and
    /// [`ProxySession::forget`]).
    OpenConnected {
        /// Correlation ID of the call.
        corr: u32,
        /// The channel ID given to it.
        channel: u32,
        /// Where its datagrams go.
        board: SocketAddrV4,
    },
    /// Bind a UDP socket on the configured local address, then reply
    /// [`ServerFrame::OpenedUnconnected`] with its address.
    OpenUnconnected {
        /// Correlation ID of the call.
        corr: u32,
        /// The channel ID given to it.
        channel: u32,
    },
    /// Close the channel's socket and reply [`ServerFrame::Closed`].
    Close {
        /// Correlation ID of the call.
        corr: u32,
        /// The channel.
        channel: u32,
    },
    /// Send a datagram on a connected channel.
    Send {
        /// The channel.
        channel: u32,
        /// The datagram.
        payload: &'a [u8],
    },
    /// Send a datagram from an unconnected channel to a board.
    SendTo {
        /// The channel.
        channel: u32,
        /// The board.
        to: SocketAddrV4,
        /// The datagram.
        payload: &'a [u8],
    },
    /// Nothing (a message on a channel that is not open, as allocserv
    /// ignores them: the channel may have just been closed).
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connected,
    Unconnected,
}

/// One websocket's channels and the boards of its job.
#[derive(Debug)]
pub struct ProxySession {
    boards: BTreeMap<(u32, u32), Ipv4Addr>,
    board_ips: BTreeSet<Ipv4Addr>,
    channels: HashMap<u32, Kind>,
}

impl ProxySession {
    /// A session that can reach `boards`: Ethernet chip (x, y) in job
    /// coordinates to the board's IP.
    pub fn new(boards: BTreeMap<(u32, u32), Ipv4Addr>) -> ProxySession {
        let board_ips = boards.values().copied().collect();
        ProxySession {
            boards,
            board_ips,
            channels: HashMap::new(),
        }
    }

    /// Whether a datagram from `ip` may be forwarded to the client on an
    /// unconnected channel: only the job's boards may send.
    pub fn accepts_from(&self, ip: Ipv4Addr) -> bool {
        self.board_ips.contains(&ip)
    }

    /// Forgets a channel whose socket could not be opened (or has failed).
    pub fn forget(&mut self, channel: u32) {
        self.channels.remove(&channel);
    }

    /// How many channels are open.
    pub fn open_channels(&self) -> usize {
        self.channels.len()
    }

    /// What to do for `frame`; `new_channel` issues a fresh channel ID
    /// (never 0, unique across the server).
    pub fn handle<'a>(
        &mut self,
        frame: ClientFrame<'a>,
        new_channel: impl FnOnce() -> u32,
    ) -> Action<'a> {
        match frame {
            ClientFrame::Open { corr, x, y, port } => {
                let board = match self.board(x, y, port) {
                    Ok(board) => board,
                    Err(message) => return error(corr, message),
                };
                match self.add(Kind::Connected, new_channel) {
                    Ok(channel) => Action::OpenConnected {
                        corr,
                        channel,
                        board,
                    },
                    Err(message) => error(corr, message),
                }
            }
            ClientFrame::OpenUnconnected { corr } => {
                match self.add(Kind::Unconnected, new_channel) {
                    Ok(channel) => Action::OpenUnconnected { corr, channel },
                    Err(message) => error(corr, message),
                }
            }
            ClientFrame::Close { corr, channel } => {
                if self.channels.remove(&channel).is_some() {
                    Action::Close { corr, channel }
                } else {
                    Action::Reply(ServerFrame::Closed { corr, channel: 0 })
                }
            }
            ClientFrame::Message { channel, payload } => match self.channels.get(&channel) {
                Some(Kind::Connected) => Action::Send { channel, payload },
                _ => Action::Ignore,
            },
            ClientFrame::MessageTo {
                channel,
                x,
                y,
                port,
                payload,
            } => match (self.channels.get(&channel), self.board(x, y, port)) {
                (Some(Kind::Unconnected), Ok(to)) => Action::SendTo {
                    channel,
                    to,
                    payload,
                },
                // One-way: there is no correlation ID to answer an error to.
                _ => Action::Ignore,
            },
        }
    }

    fn board(&self, x: u32, y: u32, port: u32) -> Result<SocketAddrV4, &'static str> {
        let port = match u16::try_from(port) {
            Ok(p) if p != 0 => p,
            _ => return Err("bad port number"),
        };
        let ip = self
            .boards
            .get(&(x, y))
            .ok_or("unrecognised ethernet chip")?;
        Ok(SocketAddrV4::new(*ip, port))
    }

    fn add(&mut self, kind: Kind, new_channel: impl FnOnce() -> u32) -> Result<u32, &'static str> {
        if self.channels.len() >= MAX_CHANNELS {
            return Err("too many channels open on this proxy");
        }
        let channel = new_channel();
        self.channels.insert(channel, kind);
        Ok(channel)
    }
}

fn error(corr: u32, message: &str) -> Action<'static> {
    Action::Reply(ServerFrame::Error {
        corr,
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> ProxySession {
        ProxySession::new(BTreeMap::from([
            ((0, 0), Ipv4Addr::new(127, 0, 1, 1)),
            ((8, 4), Ipv4Addr::new(127, 0, 1, 9)),
        ]))
    }

    #[test]
    fn an_open_to_a_board_of_the_job_gets_a_connected_channel() {
        let mut s = session();
        let action = s.handle(
            ClientFrame::Open {
                corr: 1,
                x: 8,
                y: 4,
                port: 17893,
            },
            || 42,
        );
        assert_eq!(
            action,
            Action::OpenConnected {
                corr: 1,
                channel: 42,
                board: "127.0.1.9:17893".parse().unwrap_or_else(|e| panic!("{e}"))
            }
        );
        let payload = [1, 2, 3];
        assert_eq!(
            s.handle(
                ClientFrame::Message {
                    channel: 42,
                    payload: &payload
                },
                || 0
            ),
            Action::Send {
                channel: 42,
                payload: &payload
            }
        );
    }

    #[test]
    fn an_open_to_a_chip_outside_the_job_or_a_bad_port_is_an_error_reply() {
        let mut s = session();
        for (x, y, port, message) in [
            (1, 0, 17893, "unrecognised ethernet chip"),
            (0, 0, 0, "bad port number"),
            (0, 0, 65536, "bad port number"),
        ] {
            let action = s.handle(
                ClientFrame::Open {
                    corr: 3,
                    x,
                    y,
                    port,
                },
                || 1,
            );
            assert_eq!(
                action,
                Action::Reply(ServerFrame::Error {
                    corr: 3,
                    message: message.into()
                })
            );
        }
        assert_eq!(s.open_channels(), 0);
    }

    #[test]
    fn closing_a_channel_twice_answers_zero_the_second_time() {
        let mut s = session();
        s.handle(ClientFrame::OpenUnconnected { corr: 0 }, || 5);
        assert_eq!(
            s.handle(
                ClientFrame::Close {
                    corr: 1,
                    channel: 5
                },
                || 0
            ),
            Action::Close {
                corr: 1,
                channel: 5
            }
        );
        assert_eq!(
            s.handle(
                ClientFrame::Close {
                    corr: 2,
                    channel: 5
                },
                || 0
            ),
            Action::Reply(ServerFrame::Closed {
                corr: 2,
                channel: 0
            })
        );
    }

    #[test]
    fn an_unconnected_channel_sends_only_to_the_jobs_boards_and_hears_only_them() {
        let mut s = session();
        s.handle(ClientFrame::OpenUnconnected { corr: 0 }, || 5);
        let payload = [9];
        assert_eq!(
            s.handle(
                ClientFrame::MessageTo {
                    channel: 5,
                    x: 0,
                    y: 0,
                    port: 54321,
                    payload: &payload
                },
                || 0
            ),
            Action::SendTo {
                channel: 5,
                to: SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, 1), 54321),
                payload: &payload
            }
        );
        assert_eq!(
            s.handle(
                ClientFrame::MessageTo {
                    channel: 5,
                    x: 4,
                    y: 0,
                    port: 1,
                    payload: &payload
                },
                || 0
            ),
            Action::Ignore
        );
        assert!(s.accepts_from(Ipv4Addr::new(127, 0, 1, 9)));
        assert!(!s.accepts_from(Ipv4Addr::new(127, 0, 0, 1)));
    }

    #[test]
    fn no_more_than_max_channels_can_be_open() {
        let mut s = session();
        for id in 1..=MAX_CHANNELS as u32 {
            assert!(matches!(
                s.handle(ClientFrame::OpenUnconnected { corr: 0 }, || id),
                Action::OpenUnconnected { .. }
            ));
        }
        assert!(matches!(
            s.handle(ClientFrame::OpenUnconnected { corr: 0 }, || 999),
            Action::Reply(ServerFrame::Error { .. })
        ));
    }

    proptest! {
        #[test]
        fn messages_only_ever_go_to_the_jobs_boards(
            ops in proptest::collection::vec((0u8..5, 0u32..10, 0u32..10, 0u32..70000), 0..60)
        ) {
            let mut s = session();
            let mut next = 0u32;
            for (op, a, b, port) in ops {
                let payload = [0u8; 4];
                let frame = match op {
                    0 => ClientFrame::Open { corr: 0, x: a, y: b, port },
                    1 => ClientFrame::Close { corr: 0, channel: a },
                    2 => ClientFrame::Message { channel: a, payload: &payload },
                    3 => ClientFrame::OpenUnconnected { corr: 0 },
                    _ => ClientFrame::MessageTo { channel: a, x: a, y: b, port, payload: &payload },
                };
                let action = s.handle(frame, || { next += 1; next });
                match action {
                    Action::OpenConnected { board, .. } | Action::SendTo { to: board, .. } => {
                        prop_assert!(s.accepts_from(*board.ip()));
                        prop_assert!(board.port() != 0);
                    }
                    _ => {}
                }
                prop_assert!(s.open_channels() <= MAX_CHANNELS);
            }
        }
    }
}
