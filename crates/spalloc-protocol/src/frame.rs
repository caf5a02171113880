//! Newline-delimited framing.
//!
//! Both directions of the protocol carry one JSON value per line, terminated by
//! `\n`. [`LineBuffer`] accumulates whatever arrives from a socket and hands
//! out complete lines. It enforces a maximum line length so that a peer that
//! never sends a newline cannot make us buffer without bound (the reference
//! server has no such limit).

use thiserror::Error;

/// The default cap on one line: 1 MiB, far above any legitimate message.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 1 << 20;

/// The cap a client puts on one line from the server. Replies are bounded by
/// what the server lets one client have queued (16 MiB in ours), not by the
/// 1 MiB request limit: a `list_jobs` of a few thousand jobs passes 1 MiB, and
/// a client that refused it would fail for every user of a busy machine. The
/// cap still protects the client from a server that never sends a newline.
pub const MAX_REPLY_LINE_LENGTH: usize = 64 << 20;

/// Why a line could not be framed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The peer sent more than the limit without a newline.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// Accumulates bytes and yields complete lines (without their `\n`).
///
/// Once [`FrameError::LineTooLong`] has been returned, the stream cannot be
/// resynchronised reliably and the caller should drop the connection.
#[derive(Debug, Clone)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` that have already been returned as lines.
    consumed: usize,
    /// How far into `buf` we have already looked for a newline.
    scanned: usize,
    max_line_length: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE_LENGTH)
    }
}

impl LineBuffer {
    /// A buffer that refuses lines longer than `max_line_length` bytes.
    pub fn new(max_line_length: usize) -> Self {
        LineBuffer {
            buf: Vec::new(),
            consumed: 0,
            scanned: 0,
            max_line_length,
        }
    }

    /// Appends bytes received from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        // Compact lazily so that a burst of small lines costs one move.
        if self.consumed > 0 && self.consumed == self.buf.len() {
            self.buf.clear();
            self.consumed = 0;
            self.scanned = 0;
        } else if self.consumed > 4096 && self.consumed * 2 > self.buf.len() {
            self.buf.drain(..self.consumed);
            self.scanned -= self.consumed;
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Returns the next complete line, `Ok(None)` if no complete line is
    /// buffered yet, or an error if the pending line exceeds the limit.
    ///
    /// The returned slice excludes the `\n`; a trailing `\r` is kept (it is
    /// JSON whitespace, so parsers ignore it).
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let start = self.scanned.max(self.consumed);
        match self.buf[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let end = start + offset;
                if end - self.consumed > self.max_line_length {
                    return Err(FrameError::LineTooLong {
                        limit: self.max_line_length,
                    });
                }
                let line_start = self.consumed;
                self.consumed = end + 1;
                self.scanned = self.consumed;
                Ok(Some(&self.buf[line_start..end]))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() - self.consumed > self.max_line_length {
                    Err(FrameError::LineTooLong {
                        limit: self.max_line_length,
                    })
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Bytes received but not yet returned as a complete line.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.consumed
    }
}

/// Encodes one message as a line: Python-style JSON text followed by `\n`.
pub fn encode_line(value: &serde_json::Value) -> Vec<u8> {
    let mut out = crate::python_json::to_vec(value);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(buf: &mut LineBuffer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(line) = buf.next_line().unwrap() {
            out.push(String::from_utf8(line.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn splits_pipelined_lines_and_keeps_partial_tail() {
        let mut buf = LineBuffer::default();
        buf.extend(b"{\"a\": 1}\n{\"b\": 2}\r\n{\"c\"");
        assert_eq!(lines(&mut buf), vec!["{\"a\": 1}", "{\"b\": 2}\r"]);
        assert_eq!(buf.pending(), 4);
        buf.extend(b": 3}\n");
        assert_eq!(lines(&mut buf), vec!["{\"c\": 3}"]);
        assert_eq!(buf.pending(), 0);
    }

    #[test]
    fn refuses_overlong_lines_with_or_without_newline() {
        let mut buf = LineBuffer::new(8);
        buf.extend(b"123456789");
        assert_eq!(buf.next_line(), Err(FrameError::LineTooLong { limit: 8 }));
        let mut buf = LineBuffer::new(8);
        buf.extend(b"123456789\nok\n");
        assert!(buf.next_line().is_err());
        let mut buf = LineBuffer::new(8);
        buf.extend(b"12345678\n");
        assert_eq!(buf.next_line().unwrap(), Some(&b"12345678"[..]));
    }

    #[test]
    fn byte_at_a_time_delivery_yields_the_same_lines() {
        let input = b"{\"x\": [1, 2]}\n\n{\"y\": null}\n";
        let mut buf = LineBuffer::default();
        let mut out = Vec::new();
        for b in input {
            buf.extend(&[*b]);
            out.extend(lines(&mut buf));
        }
        assert_eq!(out, vec!["{\"x\": [1, 2]}", "", "{\"y\": null}"]);
    }

    #[test]
    fn encode_line_appends_newline() {
        let v = serde_json::json!({"return": 1});
        assert_eq!(encode_line(&v), b"{\"return\": 1}\n".to_vec());
    }
}
