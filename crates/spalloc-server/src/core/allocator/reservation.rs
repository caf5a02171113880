//! Reservations for backfilling, and board counts for queue reasons.
//!
//! A backfilling queue lets later jobs start before its head, but only on
//! boards the head will not need. The head's *reservation* is a node of the
//! pack tree (a region that is split, allocated or partly allocated) that
//! would hold the head once it were empty. Nodes are what the pack tree
//! frees back into: as long as nothing new is allocated inside the node, it
//! merges back into one free region when the jobs now in it end, and the
//! head's placement is then tried there exactly as on an idle machine of
//! that size. Any other rectangle could be cut by the tree's splits and
//! never come free as one piece, so only nodes are reserved.
//!
//! Job durations are not known to the server, so the region chosen is the
//! one with the fewest boards in use (then the smallest), the best guess at
//! the one that empties first.

use super::{AllocRequest, AllocShape, Allocator, CandidateFilter, PackTree};
use crate::core::coordinates::Board;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A rectangle of triads held for the head of a backfilling queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Bottom-left triad.
    pub x: u32,
    /// See `x`.
    pub y: u32,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
}

impl Reservation {
    /// An empty region: allocating outside it is allocating anywhere.
    pub const NOTHING: Reservation = Reservation {
        x: 0,
        y: 0,
        width: 0,
        height: 0,
    };

    fn from_bounds((x, y, width, height): (u32, u32, u32, u32)) -> Reservation {
        Reservation {
            x,
            y,
            width,
            height,
        }
    }

    fn bounds(self) -> (u32, u32, u32, u32) {
        (self.x, self.y, self.width, self.height)
    }

    /// Whether the `w × h` triads at `(x, y)` share a triad with it.
    pub fn overlaps(self, x: u32, y: u32, w: u32, h: u32) -> bool {
        let (x, y, w, h) = (u64::from(x), u64::from(y), u64::from(w), u64::from(h));
        let (rx, ry, rw, rh) = (
            u64::from(self.x),
            u64::from(self.y),
            u64::from(self.width),
            u64::from(self.height),
        );
        x < rx + rw && rx < x + w && y < ry + rh && ry < y + h
    }

    /// Whether a board lies inside it.
    pub fn contains(self, b: Board) -> bool {
        self.overlaps(b.x, b.y, 1, 1)
    }
}

/// How many of a machine's boards are taken, for the words of a queue
/// reason ("22 of 24 in use").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardUsage {
    /// Live boards in allocated regions (including ones waiting for their
    /// delayed free).
    pub in_use: u64,
    /// Live (not dead) boards of the machine.
    pub live: u64,
}

/// What is free outside a reservation: a cheap necessary condition that
/// lets a backfill pass skip jobs that cannot possibly fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeOutside {
    /// Triads in free pack-tree regions.
    pub triads: u64,
    /// Free boards in shared single-board triads.
    pub shared_boards: u64,
}

impl FreeOutside {
    /// False if `req` certainly cannot be allocated in this much room.
    pub fn may_fit(self, req: &AllocRequest) -> bool {
        let triads = match req.shape {
            AllocShape::Board(_) => return self.triads > 0 || self.shared_boards > 0,
            AllocShape::Boards(n) => super::boards_to_triads(n),
            AllocShape::Triads(w, h) | AllocShape::TriadsAt(w, h, _) => w.saturating_mul(h),
        };
        u64::try_from(triads).is_ok_and(|t| t <= self.triads)
    }
}

/// A pack-tree node considered for a reservation.
struct Candidate {
    bounds: (u32, u32, u32, u32),
    in_use: u64,
}

impl Allocator {
    /// Live boards in the `w × h` triads at `(x, y)`.
    fn live_boards_in(&self, (x, y, w, h): (u32, u32, u32, u32)) -> u64 {
        let dead = self
            .topology
            .dead_boards
            .iter()
            .filter(|b| b.x >= x && b.x < x + w && b.y >= y && b.y < y + h)
            .count() as u64;
        u64::from(w) * u64::from(h) * 3 - dead
    }

    /// Boards handed out of each shared single-board triad, by triad.
    fn shared_in_use(&self) -> BTreeMap<(u32, u32), u64> {
        self.single_board_triads
            .iter()
            .chain(&self.full_single_board_triads)
            .map(|t| ((t.x, t.y), t.in_use.len() as u64))
            .collect()
    }

    /// Boards in use under `node`, recording every node on the way. An
    /// allocated leaf that is a shared triad counts the boards handed out
    /// of it, any other allocated leaf all its live boards.
    fn collect(
        &self,
        node: &PackTree,
        shared: &BTreeMap<(u32, u32), u64>,
        out: &mut Vec<Candidate>,
    ) -> u64 {
        let in_use = match node.children() {
            Some([a, b]) => self.collect(a, shared, out) + self.collect(b, shared, out),
            None if node.is_allocated() => {
                let (x, y, _, _) = node.bounds();
                shared
                    .get(&(x, y))
                    .copied()
                    .unwrap_or_else(|| self.live_boards_in(node.bounds()))
            }
            None => 0,
        };
        out.push(Candidate {
            bounds: node.bounds(),
            in_use,
        });
        in_use
    }

    /// How many live boards are in use.
    pub fn usage(&self) -> BoardUsage {
        let mut nodes = Vec::new();
        let in_use = self.collect(&self.pack_tree, &self.shared_in_use(), &mut nodes);
        BoardUsage {
            in_use,
            live: self.live_boards_in(self.pack_tree.bounds()),
        }
    }

    /// Would `req` be allocated in the region `bounds` if it were one free
    /// region? The same placement code as [`Allocator::alloc`], run on an
    /// empty pack tree of that size.
    fn fits_when_empty(&self, req: &AllocRequest, bounds: (u32, u32, u32, u32)) -> bool {
        let (x, y, w, h) = bounds;
        let mut tree = PackTree::new(x, y, w, h);
        match req.shape {
            AllocShape::Board(Some(b)) => {
                Reservation::from_bounds(bounds).contains(b)
                    && !self.topology.dead_boards.contains(&b)
            }
            AllocShape::Board(None) => (x..x + w).any(|tx| {
                (y..y + h).any(|ty| {
                    (0..3).any(|z| !self.topology.dead_boards.contains(&Board::new(tx, ty, z)))
                })
            }),
            AllocShape::Boards(n) => {
                let triads = super::boards_to_triads(n);
                if triads <= 0 || (req.require_torus && triads != self.triad_count()) {
                    return false;
                }
                let mut filter = self.filter(req, Some(n));
                matches!(
                    tree.alloc_area(triads, req.min_ratio, &mut |x, y, w, h| filter
                        .check(x, y, w, h)),
                    Ok(Some(_))
                )
            }
            AllocShape::Triads(tw, th) => {
                let (Ok(tw), Ok(th)) = (u32::try_from(tw), u32::try_from(th)) else {
                    return false;
                };
                if req.require_torus && (tw, th) != (self.width(), self.height()) {
                    return false;
                }
                let mut filter: CandidateFilter<'_> = self.filter(req, None);
                tree.alloc(tw, th, &mut |x, y, w, h| filter.check(x, y, w, h))
                    .is_some()
            }
            AllocShape::TriadsAt(tw, th, root) => {
                let (Ok(tw), Ok(th)) = (u32::try_from(tw), u32::try_from(th)) else {
                    return false;
                };
                Reservation::from_bounds(bounds).contains(root)
                    && tree.alloc_at(root.x, root.y, tw, th)
                    && self.rooted_possible(tw.into(), th.into(), root, req)
            }
        }
    }

    /// The region to hold for `req`, the head of a backfilling queue that
    /// cannot be allocated now: the pack-tree node with the fewest boards in
    /// use (then the smallest, then the first found) that would hold it once
    /// empty. `None` if no node would (the request is impossible here).
    pub fn reservation_for(&self, req: &AllocRequest) -> Option<Reservation> {
        if req.validate().is_err() {
            return None;
        }
        let mut nodes = Vec::new();
        self.collect(&self.pack_tree, &self.shared_in_use(), &mut nodes);
        let least = match req.shape {
            AllocShape::Board(_) => 1,
            AllocShape::Boards(n) => u64::try_from(super::boards_to_triads(n)).ok()?,
            AllocShape::Triads(w, h) | AllocShape::TriadsAt(w, h, _) => {
                u64::try_from(w.saturating_mul(h)).ok()?
            }
        };
        nodes.retain(|c| u64::from(c.bounds.2) * u64::from(c.bounds.3) >= least);
        // Stable: equal candidates keep the tree's (children first) order.
        nodes.sort_by_key(|c| (c.in_use, u64::from(c.bounds.2) * u64::from(c.bounds.3)));
        nodes
            .into_iter()
            .find(|c| self.fits_when_empty(req, c.bounds))
            .map(|c| Reservation::from_bounds(c.bounds))
    }

    /// Whether `reserved` is still a node of the pack tree that is not
    /// entirely free, i.e. still a region that will come free as one piece.
    pub fn reservation_holds(&self, reserved: Reservation) -> bool {
        self.pack_tree.has_node(reserved.bounds())
            && !self.region_is_free_leaf(&self.pack_tree, reserved.bounds())
    }

    fn region_is_free_leaf(&self, node: &PackTree, bounds: (u32, u32, u32, u32)) -> bool {
        if node.bounds() == bounds {
            return node.is_free_leaf();
        }
        node.children().is_some_and(|c| {
            c.iter().any(|child| {
                Reservation::from_bounds(child.bounds()).overlaps(bounds.0, bounds.1, 1, 1)
                    && self.region_is_free_leaf(child, bounds)
            })
        })
    }

    /// Free room outside `reserved` (see [`FreeOutside`]).
    pub fn free_outside(&self, reserved: Reservation) -> FreeOutside {
        fn free_triads(node: &PackTree, reserved: Reservation) -> u64 {
            let (x, y, w, h) = node.bounds();
            match node.children() {
                Some([a, b]) => free_triads(a, reserved) + free_triads(b, reserved),
                None if node.is_free_leaf() && !reserved.overlaps(x, y, w, h) => {
                    u64::from(w) * u64::from(h)
                }
                None => 0,
            }
        }
        FreeOutside {
            triads: free_triads(&self.pack_tree, reserved),
            shared_boards: self
                .single_board_triads
                .iter()
                .filter(|t| !reserved.overlaps(t.x, t.y, 1, 1))
                .map(|t| t.free.used as u64)
                .sum(),
        }
    }
}
