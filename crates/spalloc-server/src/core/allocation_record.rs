//! How a [`JobAllocation`] is written in a job's durable record: compactly,
//! because every change of a job rewrites its row, and a row that spills over
//! half a database page costs the store a second page write per change.
//!
//! What a restore can recompute is left out: the set of `boards` (it is
//! `boards_in_order`), and the order of the `periphery` (the reference's set
//! order follows from the boards and the links). Boards are `[x, y, z]`
//! arrays and each board's links leaving the allocation are one bitmask
//! (`links_out`, bit `n` = link `n`, one entry per board of
//! `boards_in_order`); `torus` is left out when there is none, and
//! `width` and `height` (in chips) when they are what the number of boards
//! and the rectangle of triads give.
//!
//! Rows written by the earlier, verbose format (`boards`, boards as
//! `{"x", "y", "z"}` objects, `periphery` as `[board, link]` pairs) still
//! load: the reader accepts both.

use crate::core::coordinates::{Board, WrapAround};
use crate::core::job::{reference_link_order, size_in_chips, JobAllocation};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use spalloc_protocol::{ChipCoord, Link};
use std::collections::BTreeSet;

/// A board as read: `[x, y, z]`, or the older `{"x", "y", "z"}` object.
#[derive(Deserialize)]
#[serde(untagged)]
enum BoardIn {
    Array([u32; 3]),
    Object { x: u32, y: u32, z: u32 },
}

impl From<BoardIn> for Board {
    fn from(b: BoardIn) -> Board {
        match b {
            BoardIn::Array([x, y, z]) | BoardIn::Object { x, y, z } => Board { x, y, z },
        }
    }
}

/// The bitmask of `board`'s links in `periphery`.
fn links_out(board: &Board, periphery: &[(Board, Link)]) -> u8 {
    periphery
        .iter()
        .filter(|(b, _)| b == board)
        .fold(0u8, |mask, (_, l)| mask | (1 << l.to_wire()))
}

/// What is written, borrowed from the allocation (nothing is collected:
/// the lists are written straight from iterators).
#[derive(Serialize)]
struct AllocationOut<'a> {
    machine: &'a str,
    allocation_id: u64,
    boards_in_order: BoardsOut<'a>,
    links_out: LinksOut<'a>,
    #[serde(skip_serializing_if = "no_torus")]
    torus: WrapAround,
    triads: [u32; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    connections: &'a [(ChipCoord, String)],
}

fn no_torus(torus: &WrapAround) -> bool {
    *torus == WrapAround::NONE
}

/// Boards written as `[x, y, z]` arrays.
struct BoardsOut<'a>(&'a [Board]);

impl Serialize for BoardsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|b| [b.x, b.y, b.z]))
    }
}

/// Each board's links leaving the allocation, one bitmask per board.
struct LinksOut<'a> {
    boards: &'a [Board],
    periphery: &'a [(Board, Link)],
}

/// Up to this many boards, each board's links are found by scanning the
/// periphery (no allocation); beyond, through a sorted index, so that a
/// big allocation's record costs boards × log(boards), not boards ×
/// periphery.
const SCAN_LIMIT: usize = 8;

impl Serialize for LinksOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.boards.len() <= SCAN_LIMIT {
            serializer.collect_seq(self.boards.iter().map(|b| links_out(b, self.periphery)))
        } else {
            serializer.collect_seq(link_masks(self.boards, self.periphery))
        }
    }
}

/// Each board's bitmask of links in `periphery`, in the order of `boards`
/// (what [`links_out`] gives board by board).
fn link_masks(boards: &[Board], periphery: &[(Board, Link)]) -> Vec<u8> {
    let mut index: Vec<(Board, usize)> = boards.iter().copied().zip(0..).collect();
    index.sort_unstable();
    let mut masks = vec![0u8; boards.len()];
    for (board, link) in periphery {
        let first = index.partition_point(|(b, _)| b < board);
        for (_, i) in index[first..].iter().take_while(|(b, _)| b == board) {
            masks[*i] |= 1 << link.to_wire();
        }
    }
    masks
}

/// What is read (either format).
#[derive(Deserialize)]
struct AllocationIn {
    machine: String,
    allocation_id: u64,
    boards_in_order: Vec<BoardIn>,
    /// The earlier format: the periphery in its iteration order.
    #[serde(default)]
    periphery: Option<Vec<(BoardIn, Link)>>,
    /// The compact format: one bitmask per board of `boards_in_order`.
    #[serde(default)]
    links_out: Option<Vec<u8>>,
    #[serde(default)]
    torus: WrapAround,
    triads: [u32; 4],
    /// Absent when it is what the boards and the rectangle give.
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
    connections: Vec<(ChipCoord, String)>,
}

impl Serialize for JobAllocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The size is written only when it is not what a restore computes.
        let (width, height) = self.computed_size();
        AllocationOut {
            machine: &self.machine,
            allocation_id: self.allocation_id,
            boards_in_order: BoardsOut(&self.boards_in_order),
            links_out: LinksOut {
                boards: &self.boards_in_order,
                periphery: &self.periphery,
            },
            torus: self.torus,
            triads: self.triads,
            width: (self.width != width).then_some(self.width),
            height: (self.height != height).then_some(self.height),
            connections: &self.connections,
        }
        .serialize(serializer)
    }
}

impl JobAllocation {
    /// The size in chips its boards and rectangle give.
    fn computed_size(&self) -> (u32, u32) {
        size_in_chips(
            self.boards_in_order.len(),
            [self.triads[2], self.triads[3]],
            self.torus,
        )
    }
}

impl<'de> Deserialize<'de> for JobAllocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JobAllocation, D::Error> {
        let r = AllocationIn::deserialize(deserializer)?;
        let boards_in_order: Vec<Board> = r.boards_in_order.into_iter().map(Board::from).collect();
        let periphery = match (r.periphery, r.links_out) {
            (Some(old), _) => old.into_iter().map(|(b, l)| (b.into(), l)).collect(),
            (None, Some(masks)) => {
                if masks.len() != boards_in_order.len() {
                    return Err(serde::de::Error::custom(format!(
                        "links_out has {} entries for {} boards",
                        masks.len(),
                        boards_in_order.len()
                    )));
                }
                let set: BTreeSet<(Board, Link)> = boards_in_order
                    .iter()
                    .zip(masks)
                    .flat_map(|(b, mask)| {
                        Link::ALL
                            .into_iter()
                            .filter(move |l| mask & (1 << l.to_wire()) != 0)
                            .map(move |l| (*b, l))
                    })
                    .collect();
                reference_link_order(&boards_in_order, &set)
            }
            (None, None) => Vec::new(),
        };
        let (width, height) =
            size_in_chips(boards_in_order.len(), [r.triads[2], r.triads[3]], r.torus);
        Ok(JobAllocation {
            machine: r.machine,
            allocation_id: r.allocation_id,
            boards: boards_in_order.iter().copied().collect(),
            boards_in_order,
            periphery,
            torus: r.torus,
            triads: r.triads,
            width: r.width.unwrap_or(width),
            height: r.height.unwrap_or(height),
            connections: r.connections,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job record's allocation as the earlier format wrote it.
    const OLD_FORMAT: &str = r#"{"machine":"huge-machine","allocation_id":2,"boards":[{"x":0,"y":1,"z":0},{"x":0,"y":1,"z":1},{"x":0,"y":1,"z":2}],"boards_in_order":[{"x":0,"y":1,"z":2},{"x":0,"y":1,"z":0},{"x":0,"y":1,"z":1}],"periphery":[[{"x":0,"y":1,"z":2},2],[{"x":0,"y":1,"z":1},1],[{"x":0,"y":1,"z":0},4],[{"x":0,"y":1,"z":2},1],[{"x":0,"y":1,"z":0},0],[{"x":0,"y":1,"z":2},4],[{"x":0,"y":1,"z":0},3],[{"x":0,"y":1,"z":1},0],[{"x":0,"y":1,"z":2},3],[{"x":0,"y":1,"z":0},5],[{"x":0,"y":1,"z":1},5],[{"x":0,"y":1,"z":1},2]],"torus":0,"triads":[0,1,1,1],"width":16,"height":16,"connections":[[[4,8],"127.3.0.41"],[[0,0],"127.3.0.25"],[[8,4],"127.3.0.33"]]}"#;

    #[test]
    fn an_allocation_written_in_the_earlier_format_loads_with_its_order_kept() {
        let a: JobAllocation = serde_json::from_str(OLD_FORMAT).expect("old format loads");
        let b = |x, y, z| Board { x, y, z };
        assert_eq!(a.boards_in_order, vec![b(0, 1, 2), b(0, 1, 0), b(0, 1, 1)]);
        assert_eq!(a.boards, a.boards_in_order.iter().copied().collect());
        assert_eq!(a.periphery.len(), 12);
        assert_eq!(
            a.periphery[0],
            (b(0, 1, 2), Link::from_wire(2).expect("link"))
        );
        assert_eq!(a.connections[0], ([4, 8], "127.3.0.41".to_owned()));
    }

    #[test]
    fn an_allocation_rewritten_compactly_reads_back_equal_and_much_shorter() {
        let a: JobAllocation = serde_json::from_str(OLD_FORMAT).expect("old format loads");
        let compact = serde_json::to_string(&a).expect("writes");
        let back: JobAllocation = serde_json::from_str(&compact).expect("compact loads");
        assert_eq!(back, a);
        assert!(
            compact.len() * 2 < OLD_FORMAT.len(),
            "{} bytes against {}: {compact}",
            compact.len(),
            OLD_FORMAT.len()
        );
    }

    #[test]
    fn a_whole_job_row_of_the_earlier_format_loads_and_its_rewrite_is_shorter() {
        let row = r#"{"id":2,"owner":"bench","start_time":1796508491.1782503,"keepalive":60.0,"keepalivehost":"127.0.0.1","state":3,"power":true,"args":[2],"kwargs":{},"target":{"Tags":["default"]},"request":{"shape":{"Boards":2},"min_ratio":0.0,"max_dead_boards":null,"max_dead_links":null,"require_torus":false},"allocation":OLD,"usage":{"held_since":1796508491.1782503,"boards":3,"banked":0.0}}"#.replace("OLD", OLD_FORMAT);
        let job: crate::core::job::Job = serde_json::from_str(&row).expect("old row loads");
        assert_eq!(job.id, 2);
        assert_eq!(job.args, vec![serde_json::json!(2)]);
        assert_eq!(job.request.max_dead_boards, None);
        assert!(!job.request.require_torus);
        let allocation = job.allocation.as_ref().expect("allocated");
        assert_eq!(allocation.boards.len(), 3);
        let rewritten = serde_json::to_string(&job).expect("writes");
        let back: crate::core::job::Job = serde_json::from_str(&rewritten).expect("loads");
        assert_eq!(back, job);
        assert!(
            rewritten.len() * 3 < row.len() * 2,
            "{} bytes against {}: {rewritten}",
            rewritten.len(),
            row.len()
        );
    }

    #[test]
    fn a_size_the_rectangle_gives_is_left_out_and_any_other_is_kept() {
        let mut a: JobAllocation = serde_json::from_str(OLD_FORMAT).expect("old format loads");
        assert_eq!((a.width, a.height), (16, 16));
        let text = serde_json::to_string(&a).expect("writes");
        assert!(
            !text.contains("\"width\"") && !text.contains("\"height\""),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<JobAllocation>(&text).expect("loads"),
            a
        );
        a.height = 12;
        let text = serde_json::to_string(&a).expect("writes");
        assert!(
            !text.contains("\"width\"") && text.contains("\"height\":12"),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<JobAllocation>(&text).expect("loads"),
            a
        );
    }

    #[test]
    fn a_big_allocations_link_masks_are_what_the_board_by_board_scan_gives() {
        let mut boards: Vec<Board> = (0..4)
            .flat_map(|x| (0..4).flat_map(move |y| (0..3).map(move |z| Board { x, y, z })))
            .collect();
        boards.reverse();
        boards.push(boards[5]); // a repeated board gets the same mask
        let outside = Board { x: 9, y: 9, z: 0 };
        let periphery: Vec<(Board, Link)> = boards
            .iter()
            .chain([&outside])
            .flat_map(|b| Link::ALL.into_iter().map(move |l| (*b, l)))
            .filter(|(b, l)| (b.x + 2 * b.y + b.z + l.to_wire() as u32) % 3 == 0)
            .collect();
        assert!(boards.len() > SCAN_LIMIT);
        let scanned: Vec<u8> = boards.iter().map(|b| links_out(b, &periphery)).collect();
        assert!(scanned.iter().any(|m| *m != 0));
        assert_eq!(link_masks(&boards, &periphery), scanned);
    }

    #[test]
    fn a_links_out_list_of_the_wrong_length_is_a_clear_error() {
        let text = r#"{"machine":"m","allocation_id":1,"boards_in_order":[[0,0,0]],"links_out":[1,2],"torus":0,"triads":[0,0,1,1],"width":8,"height":8,"connections":[]}"#;
        let err = serde_json::from_str::<JobAllocation>(text).expect_err("refused");
        assert!(
            err.to_string()
                .contains("links_out has 2 entries for 1 boards"),
            "{err}"
        );
    }
}
