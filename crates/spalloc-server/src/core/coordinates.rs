//! Coordinate maths for SpiNN-5 machines (§5 of the reference spec).
//!
//! Boards are addressed logically as `(x, y, z)`: `(x, y)` is a *triad* of
//! three boards and `z ∈ {0, 1, 2}` picks the board inside it (0 bottom-left,
//! 1 to its right, 2 above). Triads tile a hexagonal torus of `W × H`
//! triads. Chips are addressed on a `12W × 12H` grid; every board owns the
//! 48 chips of a hexagon rooted at its Ethernet chip.
//!
//! Everything here is pure arithmetic, so the allocator, the controller and
//! `where_is` all agree on one definition of the geometry.

use std::ops::{BitAnd, BitOr, BitOrAssign};

use serde::{Deserialize, Serialize};
use spalloc_protocol::Link;

/// A logical board coordinate.
///
/// The field order is `x, y, z`, so the derived `Ord` is the lexicographic
/// order the reference uses for `min(boards)` / `max(boards)` (§4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Board {
    /// Triad column.
    pub x: u32,
    /// Triad row.
    pub y: u32,
    /// Board within the triad (0, 1 or 2).
    pub z: u32,
}

impl Board {
    /// Builds a board coordinate; a `const fn` so tests and tables can use it.
    pub const fn new(x: u32, y: u32, z: u32) -> Self {
        Board { x, y, z }
    }
}

/// Which wrap-around (torus) links a set of boards uses, as a bit set:
/// `X = 1`, `Y = 2`, combined with `|`, exactly like the reference's
/// `WrapAround` IntEnum (the integer is what clients see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct WrapAround(u8);

impl WrapAround {
    /// No wrap-around links.
    pub const NONE: WrapAround = WrapAround(0);
    /// Wrap-around links along the X axis.
    pub const X: WrapAround = WrapAround(1);
    /// Wrap-around links along the Y axis.
    pub const Y: WrapAround = WrapAround(2);
    /// Wrap-around links along both axes.
    pub const BOTH: WrapAround = WrapAround(3);

    /// Builds a value from its integer form; bits other than X and Y are
    /// dropped so the value is always one of the four constants.
    pub const fn from_bits(bits: u8) -> Self {
        WrapAround(bits & 3)
    }

    /// The integer form (0..=3), as sent to clients.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True if every bit of `other` is set in `self`.
    pub const fn contains(self, other: WrapAround) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if no wrap-around bit is set.
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for WrapAround {
    type Output = WrapAround;
    fn bitor(self, rhs: WrapAround) -> WrapAround {
        WrapAround(self.0 | rhs.0)
    }
}

impl BitOrAssign for WrapAround {
    fn bitor_assign(&mut self, rhs: WrapAround) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for WrapAround {
    type Output = WrapAround;
    fn bitand(self, rhs: WrapAround) -> WrapAround {
        WrapAround(self.0 & rhs.0)
    }
}

/// The step `(dx, dy, dz)` taken when following `link` out of a board with
/// index `z` (the full table of §5.1).
///
/// `z` outside `0..=2` is treated as 0, the same convention as
/// [`board_to_chip`], so that no input can make this panic.
pub fn link_to_vector(z: u32, link: Link) -> (i32, i32, i32) {
    match (z, link) {
        (1, Link::East) => (1, 0, -1),
        (1, Link::NorthEast) => (1, 0, 1),
        (1, Link::North) => (1, 1, -1),
        (1, Link::West) => (0, 0, 1),
        (1, Link::SouthWest) => (0, 0, -1),
        (1, Link::South) => (0, -1, 1),
        (2, Link::East) => (0, 0, -1),
        (2, Link::NorthEast) => (1, 1, -2),
        (2, Link::North) => (0, 1, -1),
        (2, Link::West) => (0, 1, -2),
        (2, Link::SouthWest) => (-1, 0, -1),
        (2, Link::South) => (0, 0, -2),
        (_, Link::East) => (0, -1, 2),
        (_, Link::NorthEast) => (0, 0, 1),
        (_, Link::North) => (0, 0, 2),
        (_, Link::West) => (-1, 0, 1),
        (_, Link::SouthWest) => (-1, -1, 2),
        (_, Link::South) => (-1, -1, 1),
    }
}

/// The board at the other end of `link` leaving board `(x, y, z)` in a
/// `width × height`-triad torus, and which wrap-around edges the link
/// crosses.
///
/// A `width` or `height` of 0 is treated as 1 so the modulo cannot divide
/// by zero (no real machine has a zero dimension).
pub fn board_down_link(
    x: u32,
    y: u32,
    z: u32,
    link: Link,
    width: u32,
    height: u32,
) -> (u32, u32, u32, WrapAround) {
    let z = if z < 3 { z } else { 0 };
    let (dx, dy, dz) = link_to_vector(z, link);
    let (x2, wrapped_x) = wrap_step(x, dx, width);
    let (y2, wrapped_y) = wrap_step(y, dy, height);
    let z2 = u32::try_from(i64::from(z) + i64::from(dz)).unwrap_or(0);
    let mut wrapped = WrapAround::NONE;
    if wrapped_x {
        wrapped |= WrapAround::X;
    }
    if wrapped_y {
        wrapped |= WrapAround::Y;
    }
    (x2, y2, z2, wrapped)
}

/// `(v + d) mod size`, and whether the modulo changed the value.
fn wrap_step(v: u32, d: i32, size: u32) -> (u32, bool) {
    let unwrapped = i64::from(v) + i64::from(d);
    let wrapped = unwrapped.rem_euclid(i64::from(size.max(1)));
    // `wrapped` lies in `0..size`, so it fits in a u32.
    (u32::try_from(wrapped).unwrap_or(0), wrapped != unwrapped)
}

/// The chip coordinate of the Ethernet chip (local chip (0, 0)) of board
/// `(x, y, z)`: `(12x, 12y)` plus `(8, 4)` for z=1 or `(4, 8)` for z=2; any
/// other z counts as 0, as in the reference.
///
/// Inputs are `i64` because `where_is` feeds it differences and
/// client-supplied values; the multiplication saturates instead of
/// overflowing for absurd inputs.
pub fn board_to_chip(x: i64, y: i64, z: i64) -> (i64, i64) {
    let (ox, oy) = match z {
        1 => (8, 4),
        2 => (4, 8),
        _ => (0, 0),
    };
    (
        x.saturating_mul(12).saturating_add(ox),
        y.saturating_mul(12).saturating_add(oy),
    )
}

/// The Ethernet-chip offsets of the three boards of a triad, indexed by z.
const TRIAD_ROOTS: [(i64, i64); 3] = [(0, 0), (8, 4), (4, 8)];

/// True if `(dx, dy)` is one of the 48 chips of a SpiNN-5 board relative to
/// its Ethernet chip: the hexagon `0<=dx<=7, 0<=dy<=7, -4<=dy-dx<=3`.
fn in_board_hexagon(dx: i64, dy: i64) -> bool {
    (0..=7).contains(&dx) && (0..=7).contains(&dy) && (-4..=3).contains(&(dy - dx))
}

/// For a chip at `(x mod 12, y mod 12)`, the Ethernet chip of the board that
/// owns it, relative to the triad origin `(0, 0)` (may be negative when the
/// chip belongs to the triad to the left or below), and that board's z.
fn owning_root(cx: i64, cy: i64) -> (i64, i64, u32) {
    for tx in [0i64, -12, 12] {
        for ty in [0i64, -12, 12] {
            for (z, (rx, ry)) in (0u32..).zip(TRIAD_ROOTS) {
                let (rx, ry) = (rx + tx, ry + ty);
                if in_board_hexagon(cx - rx, cy - ry) {
                    return (rx, ry, z);
                }
            }
        }
    }
    // The three hexagons tile the 12x12 triad cell (checked by a test over
    // all 144 positions), so this is unreachable.
    debug_assert!(false, "chip ({cx}, {cy}) is on no board");
    (0, 0, 0)
}

/// The chip's coordinate relative to the Ethernet chip of the board that
/// owns it (the reference's `get_local_chip_coordinate`, `board_chip` in
/// `where_is` replies). Always within `0..=7` in both axes.
pub fn board_chip(x: i64, y: i64) -> (u32, u32) {
    let (cx, cy) = (x.rem_euclid(12), y.rem_euclid(12));
    let (rx, ry, _) = owning_root(cx, cy);
    // In the hexagon, so both offsets are in 0..=7.
    (
        u32::try_from(cx - rx).unwrap_or(0),
        u32::try_from(cy - ry).unwrap_or(0),
    )
}

/// The board owning chip `(x, y)` on a torus of `width_chips × height_chips`
/// chips. Out-of-range and negative chip coordinates wrap around.
///
/// Returns `None` when a dimension is zero or not a multiple of 12 makes the
/// wrapped Ethernet chip land off a board root (the reference asserts in
/// that case; the server only ever uses multiples of 12).
pub fn chip_to_board(x: i64, y: i64, width_chips: u32, height_chips: u32) -> Option<Board> {
    if width_chips == 0 || height_chips == 0 {
        return None;
    }
    let (dx, dy) = board_chip(x, y);
    let ex = (i128::from(x) - i128::from(dx)).rem_euclid(i128::from(width_chips));
    let ey = (i128::from(y) - i128::from(dy)).rem_euclid(i128::from(height_chips));
    let z = match (ex % 12, ey % 12) {
        (0, 0) => 0,
        (8, 4) => 1,
        (4, 8) => 2,
        _ => return None,
    };
    Some(Board::new(
        u32::try_from(ex / 12).ok()?,
        u32::try_from(ey / 12).ok()?,
        z,
    ))
}

/// The size in chips of a `w × h`-triad system: 12 chips per triad, plus the
/// 4 chips of boards poking out of each edge that does not wrap around.
/// Saturates rather than overflowing for absurd sizes.
pub fn triad_dimensions_to_chips(w: u32, h: u32, torus: WrapAround) -> (u32, u32) {
    let extra = |bit| if torus.contains(bit) { 0 } else { 4 };
    (
        w.saturating_mul(12).saturating_add(extra(WrapAround::X)),
        h.saturating_mul(12).saturating_add(extra(WrapAround::Y)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_table_is_consistent_with_opposites() {
        // Following a link and then its opposite returns to the start.
        for z in 0..3u32 {
            for link in Link::ALL {
                let (dx, dy, dz) = link_to_vector(z, link);
                let z2 = u32::try_from(i64::from(z) + i64::from(dz)).unwrap();
                assert!(z2 < 3);
                assert_eq!(link_to_vector(z2, link.opposite()), (-dx, -dy, -dz));
            }
        }
    }

    #[test]
    fn link_table_spot_checks() {
        assert_eq!(link_to_vector(0, Link::East), (0, -1, 2));
        assert_eq!(link_to_vector(0, Link::South), (-1, -1, 1));
        assert_eq!(link_to_vector(1, Link::North), (1, 1, -1));
        assert_eq!(link_to_vector(1, Link::West), (0, 0, 1));
        assert_eq!(link_to_vector(2, Link::NorthEast), (1, 1, -2));
        assert_eq!(link_to_vector(2, Link::SouthWest), (-1, 0, -1));
    }

    #[test]
    fn board_down_link_vectors() {
        use WrapAround as W;
        assert_eq!(
            board_down_link(0, 0, 0, Link::North, 1, 1),
            (0, 0, 2, W::NONE)
        );
        assert_eq!(
            board_down_link(3, 2, 1, Link::North, 10, 10),
            (4, 3, 0, W::NONE)
        );
        assert_eq!(
            board_down_link(9, 8, 1, Link::NorthEast, 10, 10),
            (0, 8, 2, W::X)
        );
        assert_eq!(
            board_down_link(8, 9, 2, Link::NorthEast, 10, 10),
            (9, 0, 0, W::Y)
        );
        assert_eq!(
            board_down_link(9, 9, 2, Link::NorthEast, 10, 10),
            (0, 0, 0, W::BOTH)
        );
        assert_eq!(
            board_down_link(0, 0, 0, Link::South, 1, 1),
            (0, 0, 1, W::BOTH)
        );
    }

    #[test]
    fn wraparound_bits() {
        assert_eq!(WrapAround::X | WrapAround::Y, WrapAround::BOTH);
        assert!(WrapAround::BOTH.contains(WrapAround::X));
        assert!(!WrapAround::X.contains(WrapAround::Y));
        assert!(WrapAround::NONE.is_none());
        assert_eq!(WrapAround::from_bits(7), WrapAround::BOTH);
        assert_eq!(WrapAround::BOTH.bits(), 3);
    }

    #[test]
    fn board_to_chip_vectors() {
        assert_eq!(board_to_chip(0, 0, 1), (8, 4));
        assert_eq!(board_to_chip(0, 0, 2), (4, 8));
        assert_eq!(board_to_chip(2, 1, 0), (24, 12));
        assert_eq!(board_to_chip(2, 1, 1), (32, 16));
        assert_eq!(board_to_chip(2, 1, 2), (28, 20));
        assert_eq!(board_to_chip(1, 1, 7), (12, 12));
        assert_eq!(board_to_chip(-1, 0, 0), (-12, 0));
    }

    #[test]
    fn chip_to_board_vectors() {
        assert_eq!(chip_to_board(1, 1, 12, 12), Some(Board::new(0, 0, 0)));
        assert_eq!(chip_to_board(5, 0, 12, 12), Some(Board::new(0, 0, 2)));
        assert_eq!(chip_to_board(28, 20, 48, 48), Some(Board::new(2, 1, 2)));
        // Wrapping of negative and out-of-range input.
        assert_eq!(chip_to_board(-11, -11, 12, 12), Some(Board::new(0, 0, 0)));
        assert_eq!(
            chip_to_board(28 + 48, 20 - 96, 48, 48),
            Some(Board::new(2, 1, 2))
        );
        assert!(chip_to_board(i64::MIN, i64::MAX, 24, 24).is_some());
        assert_eq!(chip_to_board(0, 0, 0, 12), None);
    }

    #[test]
    fn where_is_geometry_example() {
        // test_server: job at origin (0,0,0), chip (5, 9) -> logical
        // (0, 0, 2), board_chip (1, 1).
        assert_eq!(chip_to_board(5, 9, 12, 12), Some(Board::new(0, 0, 2)));
        assert_eq!(board_chip(5, 9), (1, 1));
        assert_eq!(board_chip(0, 0), (0, 0));
        assert_eq!(board_chip(11, 11), (7, 3));
        assert_eq!(board_chip(-1, -1), (7, 3));
    }

    #[test]
    fn ethernet_chips_round_trip() {
        for x in 0..4u32 {
            for y in 0..3u32 {
                for z in 0..3u32 {
                    let (cx, cy) = board_to_chip(x.into(), y.into(), z.into());
                    assert_eq!(board_chip(cx, cy), (0, 0));
                    assert_eq!(chip_to_board(cx, cy, 48, 36), Some(Board::new(x, y, z)));
                }
            }
        }
    }

    /// The z table of §5.2, rows from y = 11 down to y = 0.
    const Z_TABLE: [[u32; 12]; 12] = [
        [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2],
        [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 1],
        [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1],
        [1, 1, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2],
        [0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2],
        [0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2],
        [0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2],
    ];

    #[test]
    fn z_table_matches_reference() {
        let mut counts = [0; 3];
        for (row, zs) in Z_TABLE.iter().enumerate() {
            let y = 11 - i64::try_from(row).unwrap();
            for (x, &z) in (0i64..).zip(zs.iter()) {
                // On a 2x2-triad torus, so chips of boards of neighbouring
                // triads wrap into the machine.
                let board = chip_to_board(x, y, 24, 24).unwrap();
                assert_eq!(board.z, z, "chip ({x}, {y})");
                counts[z as usize] += 1;
                // z=1 cells in columns 0-3 belong to the triad on the left,
                // z=2 cells in rows 0-3 to the triad below (wrapping).
                let expect_x = if z == 1 && x < 4 { 1 } else { 0 };
                let expect_y = if z == 2 && y < 4 { 1 } else { 0 };
                assert_eq!((board.x, board.y), (expect_x, expect_y), "chip ({x}, {y})");
                let (dx, dy) = board_chip(x, y);
                let (ex, ey) = board_to_chip(board.x.into(), board.y.into(), z.into());
                assert_eq!(
                    ((ex + i64::from(dx)) % 24, (ey + i64::from(dy)) % 24),
                    (x, y)
                );
            }
        }
        assert_eq!(counts, [48, 48, 48]);
    }

    #[test]
    fn triad_dimensions_to_chips_vectors() {
        use WrapAround as W;
        assert_eq!(triad_dimensions_to_chips(1, 1, W::NONE), (16, 16));
        assert_eq!(triad_dimensions_to_chips(1, 1, W::X), (12, 16));
        assert_eq!(triad_dimensions_to_chips(1, 1, W::Y), (16, 12));
        assert_eq!(triad_dimensions_to_chips(1, 1, W::BOTH), (12, 12));
        assert_eq!(triad_dimensions_to_chips(2, 1, W::NONE), (28, 16));
        assert_eq!(triad_dimensions_to_chips(1, 2, W::BOTH), (12, 24));
    }

    #[test]
    fn board_links_serde_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Holder {
            links: std::collections::BTreeSet<(Board, Link)>,
        }
        let h = Holder {
            links: [
                (Board::new(1, 2, 0), Link::South),
                (Board::new(0, 0, 2), Link::East),
            ]
            .into_iter()
            .collect(),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Holder>(r#"{"links":[[{"x":0,"y":0,"z":0},6]]}"#).is_err());
    }
}
