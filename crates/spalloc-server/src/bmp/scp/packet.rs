//! SCP-over-SDP packets as a BMP expects them (reference §6.7): encoding of
//! the four requests the server sends and decoding of the replies, with no
//! I/O, so that every byte can be checked in unit tests.
//!
//! A request is two bytes of padding, an 8-byte SDP header, the SCP command
//! and sequence number (u16 each), then three u32 arguments and optional
//! data, all little-endian. A reply echoes the sequence number after a
//! result code. The layouts are exactly those SpiNNMan 1!7.0.0 sends.

use spalloc_protocol::Link;
use thiserror::Error;

/// SCP command: read the software version (of the BMP itself or of a board's
/// BMP processor).
pub const CMD_VER: u16 = 0;
/// SCP command: read an FPGA register through the BMP.
pub const CMD_LINK_READ: u16 = 17;
/// SCP command: write an FPGA register through the BMP.
pub const CMD_LINK_WRITE: u16 = 18;
/// SCP command: switch boards on or off.
pub const CMD_BMP_POWER: u16 = 57;

/// Result code of a successful command.
pub const RC_OK: u16 = 0x80;

/// Result codes after which SpiNNMan resends the same packet (if it has
/// retries left): RC_LEN, RC_TIMEOUT, RC_P2P_NOREPLY and RC_P2P_TIMEOUT.
pub const RETRY_CODES: [u16; 4] = [0x81, 0x86, 0x8b, 0x8e];

/// The FPGA register holding the FPGA's ID in its two low bits.
pub const FPGA_FLAG_REGISTER: u32 = 0x0004_0004;
/// The bits of the FLAG register that hold the FPGA's ID.
pub const FPGA_FLAG_ID_MASK: u32 = 0x3;
/// How many FPGAs a board has.
pub const N_FPGAS: u32 = 3;
/// The software name a BMP reports to CMD_VER.
pub const BMP_NAME: &str = "BC&MP";

/// Length of padding + SDP header + SCP command and sequence.
const HEADER_LEN: usize = 2 + 8 + 4;

/// One SCP request to a BMP, before a sequence number is given to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// CMD_VER to the BMP (`board` 0 is the frame's BMP itself, as at
    /// start-up) or to the processor managing one board.
    Version {
        /// Board slot (the SDP destination CPU).
        board: u32,
    },
    /// CMD_BMP_POWER for a set of boards, always addressed to board 0 (a
    /// BMP bug makes some boards ignore power commands sent elsewhere).
    Power {
        /// On or off.
        on: bool,
        /// Board slots (0 to 31).
        boards: Vec<u32>,
    },
    /// CMD_LINK_READ of one FPGA register.
    ReadFpga {
        /// Board slot.
        board: u32,
        /// FPGA 0, 1 or 2.
        fpga: u32,
        /// Register address.
        register: u32,
    },
    /// CMD_LINK_WRITE of one u32 to an FPGA register.
    WriteFpga {
        /// Board slot.
        board: u32,
        /// FPGA 0, 1 or 2.
        fpga: u32,
        /// Register address.
        register: u32,
        /// The value.
        value: u32,
    },
}

impl Request {
    /// The SCP command code, for logs and errors.
    pub fn command(&self) -> u16 {
        match self {
            Request::Version { .. } => CMD_VER,
            Request::Power { .. } => CMD_BMP_POWER,
            Request::ReadFpga { .. } => CMD_LINK_READ,
            Request::WriteFpga { .. } => CMD_LINK_WRITE,
        }
    }

    /// The command's name as the reference kit's fake BMP logs it.
    pub fn name(&self) -> &'static str {
        command_name(self.command())
    }

    /// The request that disables (`enable == false`) or enables one link of
    /// a board, through the STOP register of the FPGA that drives it.
    pub fn link_stop(board: u32, link: Link, enable: bool) -> Request {
        let (fpga, register) = link_stop_register(link);
        Request::WriteFpga {
            board,
            fpga,
            register,
            value: u32::from(!enable),
        }
    }

    /// The bytes of the UDP datagram for this request with sequence `seq`.
    pub fn encode(&self, seq: u16) -> Vec<u8> {
        let (cpu, args, data) = match self {
            Request::Version { board } => (*board, [0, 0, 0], None),
            Request::Power { on, boards } => {
                let mask = boards
                    .iter()
                    .filter(|b| **b < 32)
                    .fold(0u32, |m, b| m | (1 << b));
                // arg1: power command in the low bits, delay in ms << 16 (0).
                (0, [u32::from(*on), mask, 0], None)
            }
            Request::ReadFpga {
                board,
                fpga,
                register,
            } => (*board, [*register, 4, *fpga], None),
            Request::WriteFpga {
                board,
                fpga,
                register,
                value,
            } => (*board, [*register, 4, *fpga], Some(*value)),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + 16);
        out.extend_from_slice(&[0, 0]);
        // SDP: flags (reply expected), tag, dest port/cpu, src port/cpu,
        // dest y, dest x, src y, src x.
        out.extend_from_slice(&[0x87, 0xff, (cpu & 0x1f) as u8, 0xff, 0, 0, 0, 0]);
        out.extend_from_slice(&self.command().to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        for a in args {
            out.extend_from_slice(&a.to_le_bytes());
        }
        if let Some(v) = data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// The reference kit's name for an SCP command code.
pub fn command_name(cmd: u16) -> &'static str {
    match cmd {
        CMD_VER => "CMD_VER",
        CMD_LINK_READ => "CMD_LINK_READ",
        CMD_LINK_WRITE => "CMD_LINK_WRITE",
        CMD_BMP_POWER => "CMD_BMP_POWER",
        _ => "CMD_UNKNOWN",
    }
}

/// The FPGA and STOP register address that control one link (register map
/// of the spinnaker_fpgas design, STOP at offset 0x5C).
pub fn link_stop_register(link: Link) -> (u32, u32) {
    const STOP: u32 = 0x5c;
    match link {
        Link::East => (0, STOP),
        Link::South => (0, 0x0001_0000 + STOP),
        Link::SouthWest => (1, STOP),
        Link::West => (1, 0x0001_0000 + STOP),
        Link::North => (2, STOP),
        Link::NorthEast => (2, 0x0001_0000 + STOP),
    }
}

/// The parts of a reply the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The result code (`RC_OK` on success).
    pub rc: u16,
    /// The echoed sequence number.
    pub seq: u16,
    /// Everything after the sequence number.
    pub payload: Vec<u8>,
}

/// A reply or payload that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than padding + SDP + SCP headers.
    #[error("reply of {0} bytes is too short for an SCP header")]
    TooShort(usize),
    /// A CMD_LINK_READ reply without a u32.
    #[error("FPGA register reply has {0} bytes of data, not 4")]
    BadRegister(usize),
    /// A CMD_VER reply that cannot be parsed.
    #[error("bad version reply: {0}")]
    BadVersion(String),
}

impl Reply {
    /// Decodes a datagram received from a BMP. The SDP header is not
    /// checked, as in SpiNNMan.
    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort(bytes.len()));
        }
        Ok(Reply {
            rc: u16::from_le_bytes([bytes[10], bytes[11]]),
            seq: u16::from_le_bytes([bytes[12], bytes[13]]),
            payload: bytes[HEADER_LEN..].to_vec(),
        })
    }

    /// The register value carried by a CMD_LINK_READ reply.
    pub fn register_value(&self) -> Result<u32, DecodeError> {
        match self.payload.get(..4) {
            Some(&[a, b, c, d]) => Ok(u32::from_le_bytes([a, b, c, d])),
            _ => Err(DecodeError::BadRegister(self.payload.len())),
        }
    }
}

/// What a CMD_VER reply says about the software answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Software name, e.g. `BC&MP` for a BMP or `SC&MP` for SCAMP.
    pub name: String,
    /// Hardware description after the `/`.
    pub hardware: String,
    /// (major, minor, patch).
    pub version: (u32, u32, u32),
}

impl VersionInfo {
    /// Parses the payload of a CMD_VER reply: 12 bytes of fields, then
    /// `name/hardware\0` and, when `version_no` is 0xFFFF, `major.minor.patch\0`
    /// (older software encodes the version as `version_no = major*100+minor`).
    pub fn decode(payload: &[u8]) -> Result<VersionInfo, DecodeError> {
        let bad = |why: &str| DecodeError::BadVersion(why.to_owned());
        if payload.len() < 12 {
            return Err(bad("shorter than 12 bytes"));
        }
        let version_no = u16::from_le_bytes([payload[6], payload[7]]);
        // Like SpiNNMan, drop the last byte (the final NUL) before decoding.
        let text = &payload[12..payload.len().saturating_sub(1).max(12)];
        let text = std::str::from_utf8(text).map_err(|_| bad("text is not UTF-8"))?;
        let (name_hw, version) = if version_no < 0xffff {
            (
                text.trim_end_matches('\0'),
                (u32::from(version_no / 100), u32::from(version_no % 100), 0),
            )
        } else {
            let (name_hw, rest) = text.split_once('\0').unwrap_or((text, ""));
            (
                name_hw,
                parse_version(rest).ok_or_else(|| bad("unparsable version number"))?,
            )
        };
        let (name, hardware) = name_hw
            .split_once('/')
            .ok_or_else(|| bad("no '/' between name and hardware"))?;
        Ok(VersionInfo {
            name: name.to_owned(),
            hardware: hardware.to_owned(),
            version,
        })
    }
}

/// `major.minor.patch` at the start of `text`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .map_or(rest, |end| &rest[..end]);
    Some((major, minor, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    // The expected strings were produced by SpiNNMan 1!7.0.0 itself
    // (`b"\0\0" + request.bytestring` after update_sdp_header_for_udp_send).

    #[test]
    fn set_power_on_boards_0_1_2_is_the_reference_example() {
        let r = Request::Power {
            on: true,
            boards: vec![0, 1, 2],
        };
        assert_eq!(
            hex(&r.encode(0x1234)),
            "00 00 87 ff 00 ff 00 00 00 00 39 00 34 12 01 00 00 00 07 00 00 00 00 00 00 00"
        );
    }

    #[test]
    fn power_is_always_sent_to_board_0() {
        let on = Request::Power {
            on: true,
            boards: vec![5, 3],
        };
        assert_eq!(
            hex(&on.encode(1)),
            "00 00 87 ff 00 ff 00 00 00 00 39 00 01 00 01 00 00 00 28 00 00 00 00 00 00 00"
        );
        let off = Request::Power {
            on: false,
            boards: vec![4],
        };
        assert_eq!(
            hex(&off.encode(2)),
            "00 00 87 ff 00 ff 00 00 00 00 39 00 02 00 00 00 00 00 10 00 00 00 00 00 00 00"
        );
    }

    #[test]
    fn version_requests_carry_three_zero_arguments() {
        assert_eq!(
            hex(&Request::Version { board: 0 }.encode(0x1234)),
            "00 00 87 ff 00 ff 00 00 00 00 00 00 34 12 00 00 00 00 00 00 00 00 00 00 00 00"
        );
        assert_eq!(
            hex(&Request::Version { board: 3 }.encode(3)),
            "00 00 87 ff 03 ff 00 00 00 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 00 00"
        );
    }

    #[test]
    fn fpga_read_and_write() {
        let read = Request::ReadFpga {
            board: 3,
            fpga: 2,
            register: FPGA_FLAG_REGISTER,
        };
        assert_eq!(
            hex(&read.encode(4)),
            "00 00 87 ff 03 ff 00 00 00 00 11 00 04 00 04 00 04 00 04 00 00 00 02 00 00 00"
        );
        let write = Request::link_stop(3, Link::West, false);
        assert_eq!(
            hex(&write.encode(5)),
            "00 00 87 ff 03 ff 00 00 00 00 12 00 05 00 5c 00 01 00 04 00 00 00 01 00 00 00 01 00 00 00"
        );
        assert_eq!(
            Request::link_stop(0, Link::East, true),
            Request::WriteFpga {
                board: 0,
                fpga: 0,
                register: 0x5c,
                value: 0
            }
        );
    }

    #[test]
    fn the_link_register_map_is_the_reference_one() {
        let map: Vec<_> = Link::ALL
            .iter()
            .map(|l| (*l, link_stop_register(*l)))
            .collect();
        assert_eq!(
            map,
            [
                (Link::East, (0, 0x5c)),
                (Link::NorthEast, (2, 0x1005c)),
                (Link::North, (2, 0x5c)),
                (Link::West, (1, 0x1005c)),
                (Link::SouthWest, (1, 0x5c)),
                (Link::South, (0, 0x1005c)),
            ]
        );
    }

    fn reply_bytes(rc: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 7, 0xff, 0xff, 0, 0, 0, 0, 0];
        v.extend_from_slice(&rc.to_le_bytes());
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn replies_decode_and_bad_ones_are_errors_not_panics() {
        let r = Reply::decode(&reply_bytes(0x80, 0xbeef, &[1, 2, 3, 4])).unwrap();
        assert_eq!((r.rc, r.seq), (RC_OK, 0xbeef));
        assert_eq!(r.register_value(), Ok(0x0403_0201));
        assert_eq!(Reply::decode(&[0; 13]), Err(DecodeError::TooShort(13)));
        let empty = Reply::decode(&reply_bytes(0x80, 1, &[])).unwrap();
        assert_eq!(empty.register_value(), Err(DecodeError::BadRegister(0)));
        for len in 0..40 {
            let _ = Reply::decode(&vec![0xff; len]).map(|r| VersionInfo::decode(&r.payload));
        }
    }

    fn version_payload(version_no: u16, text: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&version_no.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(text);
        v
    }

    #[test]
    fn version_blocks_of_both_formats() {
        let v = VersionInfo::decode(&version_payload(0xffff, b"BC&MP/Fake\x002.0.0\x00")).unwrap();
        assert_eq!(
            v,
            VersionInfo {
                name: "BC&MP".into(),
                hardware: "Fake".into(),
                version: (2, 0, 0)
            }
        );
        let old = VersionInfo::decode(&version_payload(112, b"BC&MP/Spin5-BMP\x00")).unwrap();
        assert_eq!(old.version, (1, 12, 0));
        assert!(VersionInfo::decode(&version_payload(0xffff, b"BC&MP\x002.0.0\x00")).is_err());
        assert!(VersionInfo::decode(&version_payload(0xffff, b"BC&MP/x\x00two\x00")).is_err());
        assert!(VersionInfo::decode(&[0; 11]).is_err());
        assert!(VersionInfo::decode(&version_payload(0xffff, &[0xc3, 0x28, 0])).is_err());
    }
}
