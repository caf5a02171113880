//! Accepting or rejecting a rectangle of triads as an allocation (§4.5):
//! which live boards it really gives (reachable from its bottom-left
//! board), which links leave it, and whether it wraps around the torus.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use spalloc_protocol::Link;

use super::coordinates::{board_down_link, Board, WrapAround};

/// The parts of a machine that allocation depends on: its size in triads
/// and what is broken. Dead links are from the sender's point of view;
/// links into dead boards are implicitly dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards that must never be allocated.
    pub dead_boards: BTreeSet<Board>,
    /// Links known not to work, as `(board, link leaving it)`.
    pub dead_links: BTreeSet<(Board, Link)>,
}

impl Topology {
    /// The board at the other end of `link` from `board`, and the wrap bits
    /// the link crosses.
    fn neighbour(&self, board: Board, link: Link) -> (Board, WrapAround) {
        let (x, y, z, wrapped) =
            board_down_link(board.x, board.y, board.z, link, self.width, self.height);
        (Board::new(x, y, z), wrapped)
    }
}

/// What an accepted candidate gives the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The live boards reachable from the candidate's bottom-left board.
    pub boards: BTreeSet<Board>,
    /// The same boards in the order the search reached them, which decides
    /// the order the reference sends their BMP commands in.
    pub visit_order: Vec<Board>,
    /// Links leaving the set (including those into dead boards); they are
    /// disabled on power-on to isolate the job.
    pub periphery: BTreeSet<(Board, Link)>,
    /// Which wrap-around links join boards of the set.
    pub torus: WrapAround,
}

/// The request's constraints, applied to each candidate rectangle the pack
/// tree proposes. Remembers the last accepted candidate, as the reference
/// does, so the allocator can read the result after the pack tree returns.
#[derive(Debug)]
pub struct CandidateFilter<'a> {
    topology: &'a Topology,
    max_dead_boards: Option<u32>,
    max_dead_links: Option<u32>,
    require_torus: bool,
    expected_boards: Option<i64>,
    /// Boards the request must never be given.
    avoided: Option<&'a BTreeSet<Board>>,
    accepted: Option<Accepted>,
}

/// Link counts of a board set, split as the dead-link limit needs them.
struct LinkClasses {
    dead: usize,
    dead_wrap: usize,
    periphery: BTreeSet<(Board, Link)>,
    torus: WrapAround,
}

impl<'a> CandidateFilter<'a> {
    /// A filter for one request. `expected_boards` is the number of boards
    /// the dead-board limit is measured against; `None` means the
    /// candidate's full `w * h * 3` (the "boards" form passes the requested
    /// count so spare boards offset dead ones).
    pub fn new(
        topology: &'a Topology,
        max_dead_boards: Option<u32>,
        max_dead_links: Option<u32>,
        require_torus: bool,
        expected_boards: Option<i64>,
    ) -> Self {
        CandidateFilter {
            topology,
            max_dead_boards,
            max_dead_links,
            require_torus,
            expected_boards,
            avoided: None,
            accepted: None,
        }
    }

    /// The same filter, also rejecting every candidate that would give
    /// the job one of `avoided` (a user's avoid-list): rejected whole,
    /// rather than counted as dead (which would leave an avoided board
    /// idle inside the job's rectangle).
    pub fn avoiding(mut self, avoided: &'a BTreeSet<Board>) -> Self {
        self.avoided = Some(avoided).filter(|a| !a.is_empty());
        self
    }

    /// The last candidate accepted, if any.
    pub fn accepted(&self) -> Option<&Accepted> {
        self.accepted.as_ref()
    }

    /// Consumes the filter, returning the last accepted candidate.
    pub fn into_accepted(self) -> Option<Accepted> {
        self.accepted
    }

    /// Tests the `width × height` rectangle of triads at `(x, y)`; on
    /// success remembers its boards, periphery and torus.
    pub fn check(&mut self, x: u32, y: u32, width: u32, height: u32) -> bool {
        let (boards, visit_order) = self.enumerate_boards(x, y, width, height);
        if self.avoided.is_some_and(|a| !a.is_disjoint(&boards)) {
            return false;
        }
        if !self.dead_boards_ok(&boards, width, height) {
            return false;
        }
        let links = self.classify_links(&boards);
        if self.require_torus && links.torus.is_none() {
            return false;
        }
        if let Some(max) = self.max_dead_links {
            let mut dead = links.dead;
            if self.require_torus {
                dead += links.dead_wrap;
            }
            if dead > usize::try_from(max).unwrap_or(usize::MAX) {
                return false;
            }
        }
        self.accepted = Some(Accepted {
            boards,
            visit_order,
            periphery: links.periphery,
            torus: links.torus,
        });
        true
    }

    /// Breadth-first search from `(x, y, 0)` over working links, staying
    /// inside the rectangle (wrapping around the machine torus), collecting
    /// live boards, and the order it reached them in.
    fn enumerate_boards(
        &self,
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    ) -> (BTreeSet<Board>, Vec<Board>) {
        let t = self.topology;
        let in_rect = |b: Board| {
            let (bx, by) = (u64::from(b.x), u64::from(b.y));
            u64::from(x) <= bx
                && bx < u64::from(x) + u64::from(width)
                && u64::from(y) <= by
                && by < u64::from(y) + u64::from(height)
        };
        let mut boards = BTreeSet::new();
        let mut order = Vec::new();
        let mut to_visit = VecDeque::from([Board::new(x, y, 0)]);
        while let Some(board) = to_visit.pop_front() {
            if t.dead_boards.contains(&board) || !boards.insert(board) {
                continue;
            }
            order.push(board);
            for link in Link::ALL {
                if t.dead_links.contains(&(board, link)) {
                    continue;
                }
                let (next, _) = t.neighbour(board, link);
                if in_rect(next) {
                    to_visit.push_back(next);
                }
            }
        }
        (boards, order)
    }

    /// The dead-board limit: with a limit, `expected - found` must not
    /// exceed it; either way at least one board must be found.
    fn dead_boards_ok(&self, boards: &BTreeSet<Board>, width: u32, height: u32) -> bool {
        if boards.is_empty() {
            return false;
        }
        let Some(max) = self.max_dead_boards else {
            return true;
        };
        let expected = self
            .expected_boards
            .unwrap_or(i64::from(width) * i64::from(height) * 3);
        let found = i64::try_from(boards.len()).unwrap_or(i64::MAX);
        expected.saturating_sub(found) <= i64::from(max)
    }

    /// Sorts every link of every board in the set into internal (dead or
    /// not, wrapping or not) and peripheral, and collects the wrap bits.
    fn classify_links(&self, boards: &BTreeSet<Board>) -> LinkClasses {
        let t = self.topology;
        let mut classes = LinkClasses {
            dead: 0,
            dead_wrap: 0,
            periphery: BTreeSet::new(),
            torus: WrapAround::NONE,
        };
        for &board in boards {
            for link in Link::ALL {
                let (next, wrapped) = t.neighbour(board, link);
                if !boards.contains(&next) {
                    classes.periphery.insert((board, link));
                    continue;
                }
                classes.torus |= wrapped;
                if t.dead_links.contains(&(board, link)) {
                    if wrapped.is_none() {
                        classes.dead += 1;
                    } else {
                        classes.dead_wrap += 1;
                    }
                }
            }
        }
        classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(
        w: u32,
        h: u32,
        dead: &[(u32, u32, u32)],
        links: &[(u32, u32, u32, Link)],
    ) -> Topology {
        Topology {
            width: w,
            height: h,
            dead_boards: dead.iter().map(|&(x, y, z)| Board::new(x, y, z)).collect(),
            dead_links: links
                .iter()
                .map(|&(x, y, z, l)| (Board::new(x, y, z), l))
                .collect(),
        }
    }

    fn all_boards(x: u32, y: u32, w: u32, h: u32) -> BTreeSet<Board> {
        let mut s = BTreeSet::new();
        for bx in x..x + w {
            for by in y..y + h {
                for z in 0..3 {
                    s.insert(Board::new(bx, by, z));
                }
            }
        }
        s
    }

    #[test]
    fn single_triad_in_3x2_machine() {
        let t = topology(3, 2, &[], &[]);
        let mut f = CandidateFilter::new(&t, None, None, false, None);
        assert!(f.check(1, 1, 1, 1));
        let a = f.accepted().unwrap();
        assert_eq!(a.boards, all_boards(1, 1, 1, 1));
        assert_eq!(a.periphery.len(), 12);
        assert_eq!(a.torus, WrapAround::NONE);
    }

    #[test]
    fn full_machine_is_a_torus() {
        let t = topology(2, 2, &[], &[]);
        let mut f = CandidateFilter::new(&t, Some(0), Some(0), true, None);
        assert!(f.check(0, 0, 2, 2));
        let a = f.into_accepted().unwrap();
        assert_eq!(a.boards.len(), 12);
        assert!(a.periphery.is_empty());
        assert_eq!(a.torus, WrapAround::BOTH);
        // 1x2 machine fully allocated: also both.
        let t = topology(1, 2, &[], &[]);
        let mut f = CandidateFilter::new(&t, None, None, false, None);
        assert!(f.check(0, 0, 1, 2));
        assert_eq!(f.accepted().unwrap().torus, WrapAround::BOTH);
    }

    #[test]
    fn full_width_strip_wraps_in_x() {
        let t = topology(2, 3, &[], &[]);
        let mut f = CandidateFilter::new(&t, None, None, false, None);
        assert!(f.check(0, 0, 2, 1));
        assert_eq!(f.accepted().unwrap().torus, WrapAround::X);
    }

    #[test]
    fn require_torus_rejects_non_wrapping() {
        let t = topology(3, 2, &[], &[]);
        let mut f = CandidateFilter::new(&t, None, None, true, None);
        assert!(!f.check(0, 0, 1, 1));
        assert!(f.accepted().is_none());
    }

    #[test]
    fn dead_origin_board_rejects() {
        let t = topology(2, 2, &[(0, 0, 0)], &[]);
        let mut f = CandidateFilter::new(&t, None, None, false, None);
        assert!(!f.check(0, 0, 2, 2));
        assert!(f.check(1, 1, 1, 1));
    }

    #[test]
    fn dead_board_limits() {
        let t = topology(2, 2, &[(0, 0, 1)], &[]);
        let mut f = CandidateFilter::new(&t, Some(0), None, false, None);
        assert!(!f.check(0, 0, 1, 1));
        assert!(f.check(1, 0, 1, 1));
        let mut f = CandidateFilter::new(&t, Some(1), None, false, None);
        assert!(f.check(0, 0, 1, 1));
        let a = f.accepted().unwrap();
        assert_eq!(a.boards.len(), 2);
        // Links into the dead board are peripheral.
        assert_eq!(a.periphery.len(), 10);
        assert!(a
            .periphery
            .contains(&(Board::new(0, 0, 0), Link::NorthEast)));
        // Expected boards from a "boards" request: 2 boards wanted, a
        // triad with one dead board still gives 2.
        let mut f = CandidateFilter::new(&t, Some(0), None, false, Some(2));
        assert!(f.check(0, 0, 1, 1));
    }

    #[test]
    fn unreachable_boards_are_excluded() {
        // Cut every link out of (0,0,0) except... none: it is isolated.
        let links: Vec<_> = Link::ALL.iter().map(|&l| (0, 0, 0, l)).collect();
        let t = topology(1, 1, &[], &links);
        let mut f = CandidateFilter::new(&t, None, None, false, None);
        assert!(f.check(0, 0, 1, 1));
        assert_eq!(
            f.accepted().unwrap().boards,
            [Board::new(0, 0, 0)].into_iter().collect()
        );
        let mut f = CandidateFilter::new(&t, Some(1), None, false, None);
        assert!(!f.check(0, 0, 1, 1));
    }

    #[test]
    fn a_candidate_giving_an_avoided_board_is_rejected_whole() {
        let t = topology(2, 1, &[], &[]);
        let avoided: BTreeSet<Board> = [Board::new(0, 0, 2)].into();
        let mut f = CandidateFilter::new(&t, None, None, false, None).avoiding(&avoided);
        assert!(!f.check(0, 0, 1, 1));
        assert!(!f.check(0, 0, 2, 1));
        assert!(f.check(1, 0, 1, 1));
        assert!(f.accepted().unwrap().boards.is_disjoint(&avoided));
        // An avoided board that is dead anyway changes nothing.
        let t = topology(2, 1, &[(0, 0, 2)], &[]);
        let mut f = CandidateFilter::new(&t, None, None, false, None).avoiding(&avoided);
        assert!(f.check(0, 0, 1, 1));
    }

    #[test]
    fn dead_link_limits() {
        // (0,0,0) north -> (0,0,2), internal, not wrapping.
        let t = topology(2, 2, &[], &[(0, 0, 0, Link::North)]);
        let mut f = CandidateFilter::new(&t, None, Some(0), false, None);
        assert!(!f.check(0, 0, 1, 1));
        let mut f = CandidateFilter::new(&t, None, Some(1), false, None);
        assert!(f.check(0, 0, 1, 1));
        // A dead wrap link only counts when a torus is required.
        // In a 1x1 machine, (0,0,0) south wraps to (0,0,1).
        let t = topology(1, 1, &[], &[(0, 0, 0, Link::South)]);
        let mut f = CandidateFilter::new(&t, None, Some(0), false, None);
        assert!(f.check(0, 0, 1, 1));
        let mut f = CandidateFilter::new(&t, None, Some(0), true, None);
        assert!(!f.check(0, 0, 1, 1));
        let mut f = CandidateFilter::new(&t, None, Some(1), true, None);
        assert!(f.check(0, 0, 1, 1));
    }
}
