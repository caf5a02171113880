//! The reference's standard IP scheme (`Machine.with_standard_ips`): every
//! (cabinet, frame) owns a block of addresses; the BMP and each board's
//! Ethernet chip sit at fixed offsets in it.

use crate::core::coordinates::Board;
use crate::core::machine::Physical;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The strides and offsets of the scheme, as 32-bit integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpScheme {
    /// Address of cabinet 0, frame 0.
    pub base: u32,
    /// Added per cabinet (default `0.0.5.0`).
    pub cabinet_stride: u32,
    /// Added per frame (default `0.0.1.0`).
    pub frame_stride: u32,
    /// Added per board slot (default `0.0.0.8`).
    pub board_stride: u32,
    /// Offset of the BMP within a frame's block (default `0.0.0.0`).
    pub bmp_offset: u32,
    /// Offset of a board's Ethernet chip within its slot (default `0.0.0.1`).
    pub spinnaker_offset: u32,
}

/// Parses an IP-like string as the reference does: four decimal numbers
/// separated by any single character, each at most 255.
pub fn parse_ip(text: &str) -> Result<u32, String> {
    let malformed = || format!("Malformed IPv4 address '{text}'");
    let bytes = text.as_bytes();
    let mut octets = Vec::with_capacity(4);
    let mut i = 0;
    while octets.len() < 4 {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(malformed());
        }
        let value: u32 = text[start..i].parse().map_err(|_| malformed())?;
        if value > 255 {
            return Err(malformed());
        }
        octets.push(value);
        if octets.len() < 4 {
            // Exactly one separator character, any character (the reference's
            // regex has an unescaped '.').
            match text[i..].chars().next() {
                Some(c) => i += c.len_utf8(),
                None => return Err(malformed()),
            }
        }
    }
    if i != bytes.len() {
        return Err(malformed());
    }
    Ok(octets.iter().fold(0, |acc, o| (acc << 8) | o))
}

/// Formats a 32-bit address as dotted quad.
pub fn format_ip(value: u32) -> String {
    Ipv4Addr::from(value).to_string()
}

impl IpScheme {
    /// The scheme with the reference's default strides and offsets.
    pub fn with_base(base: u32) -> IpScheme {
        IpScheme {
            base,
            cabinet_stride: 0x0000_0500,
            frame_stride: 0x0000_0100,
            board_stride: 0x0000_0008,
            bmp_offset: 0,
            spinnaker_offset: 1,
        }
    }

    fn frame_base(&self, cabinet: u32, frame: u32) -> u32 {
        self.base
            .wrapping_add(cabinet.wrapping_mul(self.cabinet_stride))
            .wrapping_add(frame.wrapping_mul(self.frame_stride))
    }

    /// BMP addresses for every frame that holds a board, and Ethernet
    /// addresses for every located board.
    pub fn assign(
        &self,
        locations: &BTreeMap<Board, Physical>,
    ) -> (BTreeMap<(u32, u32), String>, BTreeMap<Board, String>) {
        let mut bmps = BTreeMap::new();
        let mut boards = BTreeMap::new();
        for (board, p) in locations {
            let frame = self.frame_base(p.cabinet, p.frame);
            bmps.entry(p.bmp())
                .or_insert_with(|| format_ip(frame.wrapping_add(self.bmp_offset)));
            let ip = frame
                .wrapping_add(p.board.wrapping_mul(self.board_stride))
                .wrapping_add(self.spinnaker_offset);
            boards.insert(*board, format_ip(ip));
        }
        (bmps, boards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_reference() {
        assert_eq!(parse_ip("192.168.0.0"), Ok(0xC0A8_0000));
        assert_eq!(parse_ip("0.0.5.0"), Ok(0x500));
        assert_eq!(parse_ip("1-2-3-4"), Ok(0x0102_0304));
        assert_eq!(
            parse_ip("1.2.3.256"),
            Err("Malformed IPv4 address '1.2.3.256'".into())
        );
        assert!(parse_ip("1.2.3").is_err());
        assert!(parse_ip("1.2.3.4.5").is_err());
        assert!(parse_ip("a.b.c.d").is_err());
    }

    #[test]
    fn standard_scheme_matches_the_reference_layout() {
        let mut loc = BTreeMap::new();
        loc.insert(
            Board { x: 0, y: 0, z: 0 },
            Physical {
                cabinet: 0,
                frame: 0,
                board: 0,
            },
        );
        loc.insert(
            Board { x: 0, y: 0, z: 1 },
            Physical {
                cabinet: 0,
                frame: 0,
                board: 5,
            },
        );
        loc.insert(
            Board { x: 1, y: 0, z: 0 },
            Physical {
                cabinet: 1,
                frame: 2,
                board: 23,
            },
        );
        let (bmps, boards) = IpScheme::with_base(parse_ip("192.168.0.0").unwrap()).assign(&loc);
        assert_eq!(bmps[&(0, 0)], "192.168.0.0");
        assert_eq!(bmps[&(1, 2)], "192.168.7.0");
        assert_eq!(boards[&Board { x: 0, y: 0, z: 0 }], "192.168.0.1");
        assert_eq!(boards[&Board { x: 0, y: 0, z: 1 }], "192.168.0.41");
        assert_eq!(boards[&Board { x: 1, y: 0, z: 0 }], "192.168.7.185");
    }
}
