//! The proxy websocket's binary frames (allocserv's `ProxyCore` protocol,
//! reference §4.7 and the SpiNNMan contract §3.11), decoded and encoded
//! with no I/O. Every frame is little-endian u32 words, an operation code
//! first; MESSAGE and MESSAGE_TO carry a UDP payload after their words.
//!
//! Written by hand: it is six fixed layouts, and no crate implements it.
//! Shared by the server's proxy and the `spalloc-proxy` local forwarder.

use std::net::Ipv4Addr;
use thiserror::Error;

/// Operation: open a channel to a board (client), or its reply (server).
pub const OP_OPEN: u32 = 0;
/// Operation: close a channel, or its reply.
pub const OP_CLOSE: u32 = 1;
/// Operation: a datagram on a connected channel, in either direction.
pub const OP_MESSAGE: u32 = 2;
/// Operation: open a channel bound to a server-side UDP socket, or its reply.
pub const OP_OPEN_UNCONNECTED: u32 = 3;
/// Operation: a datagram to a board through an unconnected channel.
pub const OP_MESSAGE_TO: u32 = 4;
/// Operation: the server's answer to a call that failed.
pub const OP_ERROR: u32 = 5;

/// The longest error message sent, in bytes (allocserv's limit).
pub const MAX_ERROR_BYTES: usize = 1000;

/// The longest UDP payload accepted: an IPv4 datagram's maximum.
pub const MAX_PAYLOAD: usize = 65_507;

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// Open a channel to the board whose Ethernet chip is at job-relative
    /// (`x`, `y`), UDP `port`.
    Open {
        /// Correlation ID, echoed in the reply.
        corr: u32,
        /// Ethernet chip X in job coordinates.
        x: u32,
        /// Ethernet chip Y.
        y: u32,
        /// The board's UDP port (checked later: 0 or >65535 is an ERROR
        /// reply, not a protocol violation).
        port: u32,
    },
    /// Close a channel.
    Close {
        /// Correlation ID.
        corr: u32,
        /// The channel.
        channel: u32,
    },
    /// Send `payload` on a connected channel.
    Message {
        /// The channel.
        channel: u32,
        /// The datagram, unchanged.
        payload: &'a [u8],
    },
    /// Open a channel with a server-side UDP socket of its own.
    OpenUnconnected {
        /// Correlation ID.
        corr: u32,
    },
    /// Send `payload` from an unconnected channel to a board.
    MessageTo {
        /// The channel.
        channel: u32,
        /// Ethernet chip X in job coordinates.
        x: u32,
        /// Ethernet chip Y.
        y: u32,
        /// The board's UDP port.
        port: u32,
        /// The datagram, unchanged.
        payload: &'a [u8],
    },
}

/// A frame that breaks the protocol; the websocket is closed with BAD_DATA
/// (1007) and this as the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Shorter than one word.
    #[error("frame of {0} bytes has no operation code")]
    NoOperation(usize),
    /// An operation the protocol does not have (or a server-only one).
    #[error("unknown proxy operation {0}")]
    UnknownOperation(u32),
    /// The wrong size for its operation.
    #[error("{name} frame of {len} bytes: expected {expected}")]
    BadLength {
        /// Operation name.
        name: &'static str,
        /// Bytes received.
        len: usize,
        /// What was expected, in words.
        expected: &'static str,
    },
}

fn word(bytes: &[u8], index: usize) -> u32 {
    let at = index * 4;
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

impl<'a> ClientFrame<'a> {
    /// Decodes one binary websocket message from the client.
    pub fn decode(bytes: &'a [u8]) -> Result<ClientFrame<'a>, FrameError> {
        if bytes.len() < 4 {
            return Err(FrameError::NoOperation(bytes.len()));
        }
        let exact = |name, words: usize, expected| {
            if bytes.len() == words * 4 {
                Ok(())
            } else {
                Err(FrameError::BadLength {
                    name,
                    len: bytes.len(),
                    expected,
                })
            }
        };
        let at_least = |name, words: usize, expected| {
            if bytes.len() >= words * 4 && bytes.len() - words * 4 <= MAX_PAYLOAD {
                Ok(())
            } else {
                Err(FrameError::BadLength {
                    name,
                    len: bytes.len(),
                    expected,
                })
            }
        };
        match word(bytes, 0) {
            OP_OPEN => {
                exact("OPEN", 5, "5 words")?;
                Ok(ClientFrame::Open {
                    corr: word(bytes, 1),
                    x: word(bytes, 2),
                    y: word(bytes, 3),
                    port: word(bytes, 4),
                })
            }
            OP_CLOSE => {
                exact("CLOSE", 3, "3 words")?;
                Ok(ClientFrame::Close {
                    corr: word(bytes, 1),
                    channel: word(bytes, 2),
                })
            }
            OP_MESSAGE => {
                at_least("MESSAGE", 2, "2 words and a datagram")?;
                Ok(ClientFrame::Message {
                    channel: word(bytes, 1),
                    payload: &bytes[8..],
                })
            }
            OP_OPEN_UNCONNECTED => {
                exact("OPEN_UNCONNECTED", 2, "2 words")?;
                Ok(ClientFrame::OpenUnconnected {
                    corr: word(bytes, 1),
                })
            }
            OP_MESSAGE_TO => {
                at_least("MESSAGE_TO", 5, "5 words and a datagram")?;
                Ok(ClientFrame::MessageTo {
                    channel: word(bytes, 1),
                    x: word(bytes, 2),
                    y: word(bytes, 3),
                    port: word(bytes, 4),
                    payload: &bytes[20..],
                })
            }
            op => Err(FrameError::UnknownOperation(op)),
        }
    }

    /// The bytes of this frame, as a client sends it.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClientFrame::Open { corr, x, y, port } => words(&[OP_OPEN, *corr, *x, *y, *port]),
            ClientFrame::Close { corr, channel } => words(&[OP_CLOSE, *corr, *channel]),
            ClientFrame::Message { channel, payload } => {
                let mut out = words(&[OP_MESSAGE, *channel]);
                out.extend_from_slice(payload);
                out
            }
            ClientFrame::OpenUnconnected { corr } => words(&[OP_OPEN_UNCONNECTED, *corr]),
            ClientFrame::MessageTo {
                channel,
                x,
                y,
                port,
                payload,
            } => {
                let mut out = words(&[OP_MESSAGE_TO, *channel, *x, *y, *port]);
                out.extend_from_slice(payload);
                out
            }
        }
    }
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// A channel was opened.
    Opened {
        /// The call's correlation ID.
        corr: u32,
        /// The new channel (never 0).
        channel: u32,
    },
    /// A channel was closed (`channel` 0: it was not open).
    Closed {
        /// The call's correlation ID.
        corr: u32,
        /// The closed channel, or 0.
        channel: u32,
    },
    /// A datagram from a board.
    Message {
        /// The channel it arrived on.
        channel: u32,
        /// The datagram, unchanged.
        payload: Vec<u8>,
    },
    /// An unconnected channel was opened, with the server-side address
    /// boards can send to.
    OpenedUnconnected {
        /// The call's correlation ID.
        corr: u32,
        /// The new channel.
        channel: u32,
        /// The server-side socket's IPv4 address.
        ip: Ipv4Addr,
        /// Its port.
        port: u16,
    },
    /// A call failed.
    Error {
        /// The call's correlation ID.
        corr: u32,
        /// Why (cut to [`MAX_ERROR_BYTES`] on a character boundary).
        message: String,
    },
}

impl ServerFrame {
    /// The bytes of this frame.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ServerFrame::Opened { corr, channel } => words(&[OP_OPEN, *corr, *channel]),
            ServerFrame::Closed { corr, channel } => words(&[OP_CLOSE, *corr, *channel]),
            ServerFrame::Message { channel, payload } => {
                let mut out = Vec::with_capacity(8 + payload.len());
                out.extend_from_slice(&OP_MESSAGE.to_le_bytes());
                out.extend_from_slice(&channel.to_le_bytes());
                out.extend_from_slice(payload);
                out
            }
            ServerFrame::OpenedUnconnected {
                corr,
                channel,
                ip,
                port,
            } => {
                let mut out = words(&[OP_OPEN_UNCONNECTED, *corr, *channel]);
                // The address in network order, then the port as a word.
                out.extend_from_slice(&ip.octets());
                out.extend_from_slice(&u32::from(*port).to_le_bytes());
                out
            }
            ServerFrame::Error { corr, message } => {
                let mut out = words(&[OP_ERROR, *corr]);
                let mut end = message.len().min(MAX_ERROR_BYTES);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&message.as_bytes()[..end]);
                out
            }
        }
    }

    /// Decodes a server frame (for clients: the local forwarder and tests).
    /// `None` for anything that is not one of the layouts above.
    pub fn decode(bytes: &[u8]) -> Option<ServerFrame> {
        if bytes.len() < 8 {
            return None;
        }
        let (op, second) = (word(bytes, 0), word(bytes, 1));
        match (op, bytes.len()) {
            (OP_OPEN, 12) => Some(ServerFrame::Opened {
                corr: second,
                channel: word(bytes, 2),
            }),
            (OP_CLOSE, 12) => Some(ServerFrame::Closed {
                corr: second,
                channel: word(bytes, 2),
            }),
            (OP_MESSAGE, _) => Some(ServerFrame::Message {
                channel: second,
                payload: bytes[8..].to_vec(),
            }),
            (OP_OPEN_UNCONNECTED, 20) => Some(ServerFrame::OpenedUnconnected {
                corr: second,
                channel: word(bytes, 2),
                ip: Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]),
                port: u16::try_from(word(bytes, 4)).ok()?,
            }),
            (OP_ERROR, _) => Some(ServerFrame::Error {
                corr: second,
                message: String::from_utf8_lossy(&bytes[8..]).into_owned(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_open_is_five_words_and_its_reply_is_exactly_twelve_bytes() {
        let open = words(&[0, 7, 1, 2, 17893]);
        assert_eq!(
            ClientFrame::decode(&open),
            Ok(ClientFrame::Open {
                corr: 7,
                x: 1,
                y: 2,
                port: 17893
            })
        );
        let reply = ServerFrame::Opened {
            corr: 7,
            channel: 9,
        }
        .encode();
        assert_eq!(reply, words(&[0, 7, 9]));
    }

    #[test]
    fn an_open_unconnected_reply_carries_the_address_in_network_order() {
        let reply = ServerFrame::OpenedUnconnected {
            corr: 1,
            channel: 2,
            ip: Ipv4Addr::new(127, 0, 0, 1),
            port: 40000,
        }
        .encode();
        assert_eq!(reply.len(), 20);
        assert_eq!(&reply[12..16], &[127, 0, 0, 1]);
        assert_eq!(&reply[16..20], &40000u32.to_le_bytes());
    }

    #[test]
    fn a_message_keeps_its_payload_unchanged() {
        let mut bytes = words(&[2, 5]);
        bytes.extend_from_slice(&[0, 0, 0x87, 1, 2, 3]);
        assert_eq!(
            ClientFrame::decode(&bytes),
            Ok(ClientFrame::Message {
                channel: 5,
                payload: &[0, 0, 0x87, 1, 2, 3]
            })
        );
    }

    #[test]
    fn unknown_operations_and_wrong_lengths_are_protocol_errors() {
        assert_eq!(
            ClientFrame::decode(&words(&[5, 1])),
            Err(FrameError::UnknownOperation(5))
        );
        assert_eq!(
            ClientFrame::decode(&[0, 0]),
            Err(FrameError::NoOperation(2))
        );
        assert!(matches!(
            ClientFrame::decode(&words(&[0, 1, 2, 3])),
            Err(FrameError::BadLength { name: "OPEN", .. })
        ));
        assert!(matches!(
            ClientFrame::decode(&words(&[1, 1, 2, 3])),
            Err(FrameError::BadLength { name: "CLOSE", .. })
        ));
        assert!(matches!(
            ClientFrame::decode(&words(&[4, 1, 2, 3])),
            Err(FrameError::BadLength { .. })
        ));
    }

    #[test]
    fn an_error_message_is_cut_to_1000_bytes_on_a_character_boundary() {
        let message = "é".repeat(600);
        let bytes = ServerFrame::Error { corr: 3, message }.encode();
        assert!(bytes.len() - 8 <= MAX_ERROR_BYTES);
        assert!(std::str::from_utf8(&bytes[8..]).is_ok());
    }

    fn client_frame() -> impl Strategy<Value = (u8, [u32; 4], Vec<u8>)> {
        (
            0u8..5,
            any::<[u32; 4]>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
    }

    proptest! {
        #[test]
        fn every_client_frame_decodes_to_itself((op, w, payload) in client_frame()) {
            let frame = match op {
                0 => ClientFrame::Open { corr: w[0], x: w[1], y: w[2], port: w[3] },
                1 => ClientFrame::Close { corr: w[0], channel: w[1] },
                2 => ClientFrame::Message { channel: w[0], payload: &payload },
                3 => ClientFrame::OpenUnconnected { corr: w[0] },
                _ => ClientFrame::MessageTo {
                    channel: w[0], x: w[1], y: w[2], port: w[3], payload: &payload,
                },
            };
            let bytes = frame.encode();
            prop_assert_eq!(ClientFrame::decode(&bytes), Ok(frame));
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            let _ = ClientFrame::decode(&bytes);
            let _ = ServerFrame::decode(&bytes);
        }

        #[test]
        fn every_server_frame_decodes_to_itself(
            op in 0u8..5, w in any::<[u32; 2]>(), port in any::<u16>(),
            ip in any::<[u8; 4]>(), payload in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            let frame = match op {
                0 => ServerFrame::Opened { corr: w[0], channel: w[1] },
                1 => ServerFrame::Closed { corr: w[0], channel: w[1] },
                2 => ServerFrame::Message { channel: w[0], payload },
                3 => ServerFrame::OpenedUnconnected {
                    corr: w[0], channel: w[1], ip: Ipv4Addr::from(ip), port,
                },
                _ => ServerFrame::Error {
                    corr: w[0], message: String::from_utf8_lossy(&payload).into_owned(),
                },
            };
            let bytes = frame.encode();
            prop_assert_eq!(ServerFrame::decode(&bytes), Some(frame));
        }
    }
}
