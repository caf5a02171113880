//! Where boards physically sit when the configuration does not say, and
//! reading a SpiNNer `ethernet_chips` CSV.

use crate::core::coordinates::{chip_to_board, Board};
use crate::core::machine::{all_boards, Physical};
use std::collections::BTreeMap;

/// Boards in one frame (one BMP) of a standard SpiNNaker cabinet.
pub const BOARDS_PER_FRAME: u32 = 24;
/// Frames in one standard cabinet.
pub const FRAMES_PER_CABINET: u32 = 5;

/// The standard layout: boards are numbered in (x, y, z) order (x slowest,
/// z fastest) and packed 24 to a frame and 5 frames to a cabinet, so board `i`
/// sits at cabinet `i / 120`, frame `(i / 24) % 5`, slot `i % 24`. This is the
/// layout of the reference kit's machines (`small.cfg`, `big.cfg`). Dead
/// boards keep their slot, so a board's location never depends on which
/// other boards are dead.
pub fn standard_layout(width: u32, height: u32) -> BTreeMap<Board, Physical> {
    all_boards(width, height)
        .enumerate()
        .map(|(i, b)| {
            let i = i as u32;
            let p = Physical {
                cabinet: i / (BOARDS_PER_FRAME * FRAMES_PER_CABINET),
                frame: (i / BOARDS_PER_FRAME) % FRAMES_PER_CABINET,
                board: i % BOARDS_PER_FRAME,
            };
            (b, p)
        })
        .collect()
}

/// Reads the CSV written by SpiNNer's `spinner-ethernet-chips`: a header, then
/// `board, cabinet, frame, x, y` per board, where (x, y) is the board's
/// Ethernet chip. The machine's size is inferred from the largest chip.
pub fn locations_from_spinner_csv(text: &str) -> Result<BTreeMap<Board, Physical>, String> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || n == 0 && line.chars().next().is_some_and(|c| c.is_alphabetic()) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("line {}: {s:?} is not a non-negative integer", n + 1))
        };
        if fields.len() != 5 {
            return Err(format!(
                "line {}: expected 5 fields (board, cabinet, frame, x, y), found {}",
                n + 1,
                fields.len()
            ));
        }
        rows.push((
            parse(fields[0])?,
            parse(fields[1])?,
            parse(fields[2])?,
            parse(fields[3])?,
            parse(fields[4])?,
        ));
    }
    let max_x = rows.iter().map(|r| r.3).max().unwrap_or(0);
    let max_y = rows.iter().map(|r| r.4).max().unwrap_or(0);
    let (w, h) = (max_x / 12 + 1, max_y / 12 + 1);
    let mut out = BTreeMap::new();
    for (board, cabinet, frame, x, y) in rows {
        let b = chip_to_board(i64::from(x), i64::from(y), w * 12, h * 12)
            .ok_or_else(|| format!("({x}, {y}) is not the Ethernet chip of any board"))?;
        let p = Physical {
            cabinet,
            frame,
            board,
        };
        if out.insert(b, p).is_some() {
            return Err(format!(
                "two rows give the Ethernet chip of board ({}, {}, {})",
                b.x, b.y, b.z
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_layout_matches_the_reference_kit() {
        // small.cfg: (x, 0, z) -> (0, 0, x*3 + z)
        let small = standard_layout(2, 1);
        for x in 0..2 {
            for z in 0..3 {
                assert_eq!(
                    small[&Board { x, y: 0, z }],
                    Physical {
                        cabinet: 0,
                        frame: 0,
                        board: x * 3 + z
                    }
                );
            }
        }
        // big.cfg: 10x10, board i -> (i // 120, (i // 24) % 5, i % 24)
        let big = standard_layout(10, 10);
        assert_eq!(
            big[&Board { x: 0, y: 8, z: 0 }],
            Physical {
                cabinet: 0,
                frame: 1,
                board: 0
            }
        );
        assert_eq!(
            big[&Board { x: 9, y: 9, z: 2 }],
            Physical {
                cabinet: 2,
                frame: 2,
                board: 11
            }
        );
    }

    #[test]
    fn spinner_csv_is_read() {
        let csv = "board,cabinet,frame,x,y\n0,0,0,0,0\n1,0,0,8,4\n2,0,0,4,8\n3,0,0,12,0\n";
        let loc = locations_from_spinner_csv(csv).unwrap();
        assert_eq!(loc.len(), 4);
        assert_eq!(loc[&Board { x: 0, y: 0, z: 1 }].board, 1);
        assert_eq!(loc[&Board { x: 1, y: 0, z: 0 }].board, 3);
        assert!(locations_from_spinner_csv("0,0,0,0,0\n1,0,0,0,0\n").is_err());
        assert!(locations_from_spinner_csv("0,0,0,x,0\n").is_err());
    }
}
