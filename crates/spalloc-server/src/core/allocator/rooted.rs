//! Rectangles rooted at a given board: allocserv's "dimensions at a board"
//! (`dimensions` with `board` in a v2 create request), `w × h` triads
//! whose bottom-left triad is the root board's.
//!
//! allocserv lets such a rectangle wrap around the machine's edges; here it
//! must lie within the machine (a pack-tree region cannot wrap), so a root
//! too near the top or right edge makes the request impossible. The root
//! board itself must be usable; the rest honours `max-dead-boards` (and
//! dead links) like any rectangle, through the same candidate filter.

use super::{AllocRequest, Allocation, Allocator, Reservation};
use crate::core::coordinates::Board;

impl Allocator {
    /// Could a `w × h` rectangle rooted at `root` be allocated on this
    /// machine when idle?
    pub(super) fn rooted_possible(&self, w: i64, h: i64, root: Board, req: &AllocRequest) -> bool {
        let Some((w, h)) = self.rooted_fits(w, h, root, req) else {
            return false;
        };
        self.filter(req, None)
            .avoiding(&req.avoid_boards)
            .check(root.x, root.y, w, h)
    }

    /// The rectangle `w × h` at `root` if it lies in the machine, its root
    /// is usable, and it is a whole machine when a torus is required.
    fn rooted_fits(&self, w: i64, h: i64, root: Board, req: &AllocRequest) -> Option<(u32, u32)> {
        let (w, h) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
        let fits = w > 0
            && h > 0
            && self.in_machine(root)
            && u64::from(root.x) + u64::from(w) <= u64::from(self.width())
            && u64::from(root.y) + u64::from(h) <= u64::from(self.height())
            && !self.topology.dead_boards.contains(&root);
        let torus_ok =
            !req.require_torus || (w, h, root.x, root.y) == (self.width(), self.height(), 0, 0);
        (fits && torus_ok).then_some((w, h))
    }

    /// Allocates the `w × h` rectangle rooted at `root` now, if it is free,
    /// outside `avoid`, and accepted by the candidate filter.
    pub(super) fn alloc_rooted(
        &mut self,
        w: i64,
        h: i64,
        root: Board,
        req: &AllocRequest,
        avoid: Option<Reservation>,
    ) -> Option<Allocation> {
        let (w, h) = self.rooted_fits(w, h, root, req)?;
        if super::overlaps(avoid, root.x, root.y, w, h) {
            return None;
        }
        let mut filter = self.filter(req, None).avoiding(&req.avoid_boards);
        if !filter.check(root.x, root.y, w, h) {
            return None;
        }
        let accepted = filter.into_accepted()?;
        if !self.pack_tree.alloc_at(root.x, root.y, w, h) {
            return None;
        }
        Some(self.record_rectangle(root.x, root.y, w, h, accepted))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AllocRequest, AllocShape, Allocator};
    use crate::core::coordinates::Board;
    use std::collections::BTreeSet;

    fn rooted(w: i64, h: i64, x: u32, y: u32, max_dead: Option<u32>) -> AllocRequest {
        AllocRequest {
            shape: AllocShape::TriadsAt(w, h, Board::new(x, y, 0)),
            min_ratio: 0.0,
            max_dead_boards: max_dead,
            max_dead_links: None,
            require_torus: false,
            avoid_boards: BTreeSet::new(),
        }
    }

    fn machine(w: u32, h: u32, dead: &[(u32, u32, u32)]) -> Allocator {
        let dead: BTreeSet<Board> = dead.iter().map(|&(x, y, z)| Board::new(x, y, z)).collect();
        Allocator::new(w, h, &dead, &BTreeSet::new(), 0.0)
    }

    #[test]
    fn the_rectangle_starts_at_the_root_board() {
        let mut a = machine(4, 3, &[]);
        let got = a.alloc(&rooted(2, 2, 1, 1, Some(0)), 0.0).expect("fits");
        assert_eq!((got.x, got.y, got.width, got.height), (1, 1, 2, 2));
        assert_eq!(got.boards.len(), 12);
        assert!(got.boards.contains(&Board::new(1, 1, 0)));
        assert!(got.boards.contains(&Board::new(2, 2, 2)));
        // The same place again is taken; another rooted elsewhere is not.
        assert!(a.alloc(&rooted(1, 1, 2, 2, Some(0)), 0.0).is_none());
        let other = a.alloc(&rooted(1, 3, 0, 0, Some(0)), 0.0).expect("fits");
        assert_eq!((other.x, other.y), (0, 0));
        // Freed, the root is free again.
        a.free(got.id, 0.0);
        assert!(a.alloc(&rooted(1, 1, 2, 2, Some(0)), 0.0).is_some());
    }

    #[test]
    fn dead_boards_count_against_max_dead_boards_and_a_dead_root_is_refused() {
        let a = machine(3, 2, &[(1, 0, 2), (0, 1, 0)]);
        assert!(!a.alloc_possible(&rooted(2, 1, 0, 0, Some(0))));
        assert!(a.alloc_possible(&rooted(2, 1, 0, 0, Some(1))));
        let mut b = a.clone();
        let got = b.alloc(&rooted(2, 1, 0, 0, Some(1)), 0.0).expect("fits");
        assert_eq!(got.boards.len(), 5);
        // The root board itself must work, whatever the tolerance.
        assert!(!a.alloc_possible(&rooted(1, 1, 0, 1, None)));
    }

    #[test]
    fn a_rectangle_that_would_leave_the_machine_is_impossible() {
        let a = machine(3, 2, &[]);
        assert!(!a.alloc_possible(&rooted(2, 1, 2, 0, None)));
        assert!(!a.alloc_possible(&rooted(1, 2, 0, 1, None)));
        assert!(!a.alloc_possible(&rooted(0, 1, 0, 0, None)));
        assert!(!a.alloc_possible(&rooted(1, 1, 3, 0, None)));
        assert!(a.alloc_possible(&rooted(3, 2, 0, 0, None)));
    }
}
