//! What a simulated board says back to one SCP datagram, with no I/O: the
//! version command (answered like SC&MP, naming the board) and memory reads
//! and writes on a small per-board memory, so that the proxy, the local
//! forwarder and SpiNNMan can be tested end to end without hardware.
//!
//! The datagram layout is SpiNNaker's SCP over UDP (the same as the BMP
//! packets of `bmp::scp::packet`, seen from the other side): two bytes of
//! padding, an 8-byte SDP header, then command (or result code) and
//! sequence number (u16 each), up to three u32 arguments and data, all
//! little-endian. It is written here by hand because no maintained crate
//! speaks SCP, and the board side is only a few fixed offsets.

/// SCP command: read the software version.
pub const CMD_VER: u16 = 0;
/// SCP command: read memory (`arg1` address, `arg2` length, `arg3` unit).
pub const CMD_READ: u16 = 2;
/// SCP command: write memory (`arg1` address, `arg2` length, `arg3` unit,
/// then the data).
pub const CMD_WRITE: u16 = 3;

/// Result code: success.
pub const RC_OK: u16 = 0x80;
/// Result code: the packet is too short for its command.
pub const RC_LEN: u16 = 0x81;
/// Result code: unknown command.
pub const RC_CMD: u16 = 0x83;
/// Result code: a bad argument (address, length or unit).
pub const RC_ARG: u16 = 0x84;

/// The most data one SCP read or write carries (SC&MP's buffer size).
pub const MAX_DATA: usize = 256;
/// Where the simulated memory starts: the base of SDRAM, where SpiNNMan
/// and ybug read and write user data.
pub const MEMORY_BASE: u32 = 0x6000_0000;
/// How much memory each simulated board has: small, as it exists only to
/// show that reads return what writes stored.
pub const MEMORY_SIZE: usize = 64 * 1024;
/// The software name in the version reply (what SpiNNMan checks for).
pub const SOFTWARE_NAME: &str = "SC&MP";
/// The version the simulated SC&MP reports.
pub const SOFTWARE_VERSION: &str = "4.0.0";

/// Padding + SDP header + command + sequence number.
const HEADER_LEN: usize = 2 + 8 + 4;
/// Offset of the first argument.
const ARGS_AT: usize = HEADER_LEN;

/// One simulated board: its name (in version replies) and its memory.
#[derive(Debug, Clone)]
pub struct SimulatedBoard {
    description: String,
    memory: Vec<u8>,
}

impl SimulatedBoard {
    /// A board whose version reply names it `description` (no `/`, which
    /// separates the software name from the hardware in the reply: any is
    /// replaced) and whose memory is all zero.
    pub fn new(description: &str) -> SimulatedBoard {
        SimulatedBoard {
            description: description.replace(['/', '\0'], "-"),
            memory: vec![0; MEMORY_SIZE],
        }
    }

    /// The reply to one datagram, or `None` when it is not an SCP request
    /// (too short for the header, or a reply-less SDP packet): real boards
    /// drop those too.
    pub fn handle(&mut self, datagram: &[u8]) -> Option<Vec<u8>> {
        if datagram.len() < HEADER_LEN {
            return None;
        }
        // SDP flags bit 7: the sender expects a reply.
        if datagram[2] & 0x80 == 0 {
            return None;
        }
        let command = u16::from_le_bytes([datagram[10], datagram[11]]);
        let args = &datagram[ARGS_AT..];
        let (rc, payload) = match command {
            CMD_VER => (RC_OK, self.version_payload()),
            CMD_READ => self.read(args),
            CMD_WRITE => self.write(args),
            _ => (RC_CMD, Vec::new()),
        };
        Some(reply(datagram, rc, &payload))
    }

    /// The version reply's payload: virtual and physical CPU, chip (0, 0)
    /// (a board on its own is its own chip 0, 0), buffer size, version
    /// number 0xFFFF (meaning "see the string"), build date, then
    /// `SC&MP/<description>\0` and `4.0.0\0`.
    fn version_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.description.len() + 16);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(MAX_DATA as u16).to_le_bytes());
        out.extend_from_slice(&0xffffu16.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(SOFTWARE_NAME.as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.description.as_bytes());
        out.push(0);
        out.extend_from_slice(SOFTWARE_VERSION.as_bytes());
        out.push(0);
        out
    }

    fn read(&self, args: &[u8]) -> (u16, Vec<u8>) {
        let Some((address, length, unit)) = three_args(args) else {
            return (RC_LEN, Vec::new());
        };
        match self.span(address, length, unit) {
            Some(range) => (RC_OK, self.memory[range].to_vec()),
            None => (RC_ARG, Vec::new()),
        }
    }

    fn write(&mut self, args: &[u8]) -> (u16, Vec<u8>) {
        let Some((address, length, unit)) = three_args(args) else {
            return (RC_LEN, Vec::new());
        };
        let data = &args[12..];
        let Some(range) = self.span(address, length, unit) else {
            return (RC_ARG, Vec::new());
        };
        if data.len() < range.len() {
            return (RC_LEN, Vec::new());
        }
        let n = range.len();
        self.memory[range].copy_from_slice(&data[..n]);
        (RC_OK, Vec::new())
    }

    /// The memory range of an access, if it is within the board's memory,
    /// at most [`MAX_DATA`] long and aligned to its unit (0 bytes, 1
    /// half-words, 2 words), as SC&MP requires.
    fn span(&self, address: u32, length: u32, unit: u32) -> Option<std::ops::Range<usize>> {
        let align = match unit {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => return None,
        };
        let length = usize::try_from(length).ok()?;
        if length == 0 || length > MAX_DATA || address % align != 0 || length % align as usize != 0
        {
            return None;
        }
        let start = usize::try_from(address.checked_sub(MEMORY_BASE)?).ok()?;
        let end = start.checked_add(length)?;
        (end <= self.memory.len()).then_some(start..end)
    }
}

fn three_args(args: &[u8]) -> Option<(u32, u32, u32)> {
    let word = |i: usize| -> Option<u32> {
        let bytes: [u8; 4] = args.get(i * 4..i * 4 + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes))
    };
    Some((word(0)?, word(1)?, word(2)?))
}

/// A reply to `request`: the SDP header with source and destination
/// swapped and no reply expected, the result code, the request's sequence
/// number, then `payload`.
fn reply(request: &[u8], rc: u16, payload: &[u8]) -> Vec<u8> {
    let sdp = &request[2..10];
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[0, 0]);
    // flags (no reply), tag, dest port/cpu <- src, src port/cpu <- dest,
    // dest y, x <- src y, x; src y, x <- dest y, x.
    out.extend_from_slice(&[0x07, sdp[1], sdp[3], sdp[2], sdp[6], sdp[7], sdp[4], sdp[5]]);
    out.extend_from_slice(&rc.to_le_bytes());
    out.extend_from_slice(&request[12..14]);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmp::scp::packet::{Reply, VersionInfo};
    use proptest::prelude::*;

    /// An SCP request to chip (0, 0) as SpiNNMan sends it (the encoder
    /// the server's memory reads and writes use).
    fn request(command: u16, seq: u16, args: [u32; 3], data: &[u8]) -> Vec<u8> {
        crate::http::board_io::packet((0, 0), command, seq, args, data)
    }

    #[test]
    fn a_version_request_gets_an_scamp_reply_naming_the_board() {
        let mut board = SimulatedBoard::new("SpiNNaker demo board (1, 0, 2) at 127.0.1.9");
        let bytes = board
            .handle(&request(CMD_VER, 7, [0, 0, 0], &[]))
            .unwrap_or_default();
        let reply = Reply::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((reply.rc, reply.seq), (RC_OK, 7));
        let info = VersionInfo::decode(&reply.payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.name, "SC&MP");
        assert_eq!(info.hardware, "SpiNNaker demo board (1, 0, 2) at 127.0.1.9");
        assert_eq!(info.version, (4, 0, 0));
    }

    #[test]
    fn a_slash_in_the_description_cannot_break_the_version_reply() {
        let mut board = SimulatedBoard::new("a/b");
        let bytes = board
            .handle(&request(CMD_VER, 1, [0, 0, 0], &[]))
            .unwrap_or_default();
        let reply = Reply::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let info = VersionInfo::decode(&reply.payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.hardware, "a-b");
    }

    #[test]
    fn the_reply_swaps_the_sdp_source_and_destination() {
        let mut board = SimulatedBoard::new("b");
        let mut req = request(CMD_VER, 1, [0, 0, 0], &[]);
        req[2..10].copy_from_slice(&[0x87, 0x05, 0x21, 0xff, 1, 2, 3, 4]);
        let bytes = board.handle(&req).unwrap_or_default();
        assert_eq!(&bytes[2..10], &[0x07, 0x05, 0xff, 0x21, 3, 4, 1, 2]);
    }

    #[test]
    fn memory_reads_return_what_writes_stored() {
        let mut board = SimulatedBoard::new("b");
        let data = b"hello, board";
        let w = board
            .handle(&request(CMD_WRITE, 3, [MEMORY_BASE + 16, 12, 0], data))
            .unwrap_or_default();
        assert_eq!(Reply::decode(&w).map(|r| r.rc), Ok(RC_OK));
        let r = board
            .handle(&request(CMD_READ, 4, [MEMORY_BASE + 16, 12, 0], &[]))
            .unwrap_or_default();
        let reply = Reply::decode(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((reply.rc, reply.seq), (RC_OK, 4));
        assert_eq!(reply.payload, data);
    }

    #[test]
    fn accesses_outside_the_memory_or_misaligned_or_too_long_are_refused() {
        let mut board = SimulatedBoard::new("b");
        let end = MEMORY_BASE + MEMORY_SIZE as u32;
        for args in [
            [MEMORY_BASE - 4, 4, 2],
            [end - 2, 4, 0],
            [MEMORY_BASE + 1, 4, 2],
            [MEMORY_BASE, 257, 0],
            [MEMORY_BASE, 0, 0],
            [MEMORY_BASE, 4, 3],
            [u32::MAX, 4, 0],
        ] {
            let r = board.handle(&request(CMD_READ, 1, args, &[]));
            assert_eq!(
                r.as_deref()
                    .map(Reply::decode)
                    .and_then(Result::ok)
                    .map(|r| r.rc),
                Some(RC_ARG),
                "{args:?}"
            );
        }
    }

    #[test]
    fn a_write_with_less_data_than_its_length_changes_nothing() {
        let mut board = SimulatedBoard::new("b");
        let w = board.handle(&request(CMD_WRITE, 1, [MEMORY_BASE, 8, 0], b"abc"));
        assert_eq!(w.map(|b| Reply::decode(&b).map(|r| r.rc)), Some(Ok(RC_LEN)));
        let r = board
            .handle(&request(CMD_READ, 2, [MEMORY_BASE, 8, 0], &[]))
            .unwrap_or_default();
        assert_eq!(Reply::decode(&r).map(|r| r.payload), Ok(vec![0; 8]));
    }

    #[test]
    fn an_unknown_command_gets_rc_cmd_and_a_runt_gets_nothing() {
        let mut board = SimulatedBoard::new("b");
        let r = board
            .handle(&request(99, 5, [0, 0, 0], &[]))
            .unwrap_or_default();
        assert_eq!(Reply::decode(&r).map(|r| (r.rc, r.seq)), Ok((RC_CMD, 5)));
        assert_eq!(board.handle(&[0, 0, 0x87]), None);
        let mut no_reply = request(CMD_VER, 1, [0, 0, 0], &[]);
        no_reply[2] = 0x07;
        assert_eq!(board.handle(&no_reply), None);
    }

    proptest! {
        #[test]
        fn any_datagram_gets_at_most_one_reply_echoing_its_sequence(
            bytes in proptest::collection::vec(any::<u8>(), 0..400)
        ) {
            let mut board = SimulatedBoard::new("b");
            if let Some(r) = board.handle(&bytes) {
                let reply = Reply::decode(&r);
                prop_assert!(reply.is_ok());
                prop_assert_eq!(&r[12..14], &bytes[12..14]);
            }
        }
    }
}
