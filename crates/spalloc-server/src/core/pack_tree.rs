//! Online 2-D rectangle packing over triads (§4.6), the "blackpawn
//! lightmap" tree of the reference.
//!
//! The exact choices (candidate corner order, split axis, smallest child
//! first) decide which triads a job gets, so they follow the reference
//! exactly; the differential tests against the Python server rely on it.

use serde::{Deserialize, Serialize};

use super::area_to_rect::{area_to_rect, AreaError};

/// Why [`PackTree::free`] failed; the messages are the reference's
/// `FreeError` texts. Either means the caller's bookkeeping is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FreeError {
    /// The region at that origin exists but is not allocated.
    #[error("Cannot free non-allocated region {x}, {y}.")]
    NotAllocated {
        /// Origin x of the region.
        x: u32,
        /// Origin y of the region.
        y: u32,
    },
    /// No region has its origin at that point.
    #[error("Cannot free {x}, {y} which is outside the region.")]
    Outside {
        /// The x that was asked for.
        x: u32,
        /// The y that was asked for.
        y: u32,
    },
}

/// A rectangular region that is free, allocated, or split in two.
///
/// Candidate filters are called as `filter(x, y, width, height)` and may
/// reject a placement (e.g. too many dead boards); they are `FnMut` so they
/// can remember what they accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackTree {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    allocated: bool,
    children: Option<Box<[PackTree; 2]>>,
}

impl PackTree {
    /// A free region with bottom-left corner `(x, y)`.
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        PackTree {
            x,
            y,
            width,
            height,
            allocated: false,
            children: None,
        }
    }

    /// The region's `(x, y, width, height)`.
    pub fn bounds(&self) -> (u32, u32, u32, u32) {
        (self.x, self.y, self.width, self.height)
    }

    /// True if this node is an unsplit, unallocated region, i.e. everything
    /// in it is free and fully merged. For the root, that means "idle".
    pub fn is_free_leaf(&self) -> bool {
        !self.allocated && self.children.is_none()
    }

    /// Whether this region is allocated as a whole (a leaf given to a job).
    pub fn is_allocated(&self) -> bool {
        self.allocated
    }

    /// The two halves of a split region; `None` for a leaf.
    pub fn children(&self) -> Option<&[PackTree; 2]> {
        self.children.as_deref()
    }

    /// Whether this tree has a node (split, allocated or free) with exactly
    /// these bounds.
    pub fn has_node(&self, bounds: (u32, u32, u32, u32)) -> bool {
        if self.bounds() == bounds {
            return true;
        }
        let (x, y, _, _) = bounds;
        self.children().is_some_and(|c| {
            c.iter()
                .any(|child| child.contains(x, y) && child.has_node(bounds))
        })
    }

    /// Whether `(x, y)` lies inside this region.
    fn contains(&self, x: u32, y: u32) -> bool {
        u64::from(self.x) <= u64::from(x)
            && u64::from(x) < u64::from(self.x) + u64::from(self.width)
            && u64::from(self.y) <= u64::from(y)
            && u64::from(y) < u64::from(self.y) + u64::from(self.height)
    }

    fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Splits along a horizontal line: child 0 is below `y`, child 1 from
    /// `y` up.
    fn hsplit(&mut self, y: u32) {
        assert!(self.is_free_leaf(), "hsplit of a non-free-leaf");
        let below = y - self.y;
        self.children = Some(Box::new([
            PackTree::new(self.x, self.y, self.width, below),
            PackTree::new(self.x, y, self.width, self.height - below),
        ]));
    }

    /// Splits along a vertical line: child 0 is left of `x`, child 1 from
    /// `x` rightwards.
    fn vsplit(&mut self, x: u32) {
        assert!(self.is_free_leaf(), "vsplit of a non-free-leaf");
        let left = x - self.x;
        self.children = Some(Box::new([
            PackTree::new(self.x, self.y, left, self.height),
            PackTree::new(x, self.y, self.width - left, self.height),
        ]));
    }

    /// The children's indices, smallest area first (stable: child 0 wins a
    /// tie), the order in which allocation tries them.
    fn smallest_first(children: &[PackTree; 2]) -> [usize; 2] {
        if children[1].area() < children[0].area() {
            [1, 0]
        } else {
            [0, 1]
        }
    }

    /// Allocates a `width × height` rectangle somewhere in this region and
    /// returns its bottom-left corner, or `None` if no placement fits and is
    /// accepted by `filter`. Zero-sized requests always fail.
    pub fn alloc(
        &mut self,
        width: u32,
        height: u32,
        filter: &mut dyn FnMut(u32, u32, u32, u32) -> bool,
    ) -> Option<(u32, u32)> {
        if self.allocated || width > self.width || height > self.height {
            return None;
        }
        if width == 0 || height == 0 {
            return None;
        }
        if let Some(children) = self.children.as_mut() {
            let order = Self::smallest_first(children);
            return order
                .into_iter()
                .find_map(|i| children[i].alloc(width, height, filter));
        }
        let (x, y) = self.find_acceptable(width, height, filter)?;
        Some(self.carve(x, y, width, height))
    }

    /// The first of the four corner placements (bottom-left, top-left,
    /// bottom-right, top-right; duplicates skipped) that `filter` accepts.
    fn find_acceptable(
        &self,
        width: u32,
        height: u32,
        filter: &mut dyn FnMut(u32, u32, u32, u32) -> bool,
    ) -> Option<(u32, u32)> {
        let xs = [self.x, self.x + (self.width - width)];
        let ys = [self.y, self.y + (self.height - height)];
        let mut tried: Vec<(u32, u32)> = Vec::with_capacity(4);
        for x in xs {
            for y in ys {
                if !tried.contains(&(x, y)) && filter(x, y, width, height) {
                    return Some((x, y));
                }
                tried.push((x, y));
            }
        }
        None
    }

    /// Allocates the `width × height` piece at `(x, y)` of this free leaf,
    /// splitting it (at most twice) so the piece becomes a leaf of its own.
    fn carve(&mut self, x: u32, y: u32, width: u32, height: u32) -> (u32, u32) {
        if width == self.width && height == self.height {
            assert!((x, y) == (self.x, self.y), "exact fit off origin");
            self.allocated = true;
            return (self.x, self.y);
        }
        let dw = self.width - width;
        let dh = self.height - height;
        let child = if dh > dw {
            self.hsplit(if y != self.y { y } else { y + height });
            usize::from(y != self.y)
        } else {
            self.vsplit(if x != self.x { x } else { x + width });
            usize::from(x != self.x)
        };
        let Some(children) = self.children.as_mut() else {
            unreachable!("just split");
        };
        let child = &mut children[child];
        if child.width != width {
            child.vsplit(if x != child.x { x } else { child.x + width });
            child.allocate_child(usize::from(x != child.x))
        } else if child.height != height {
            child.hsplit(if y != child.y { y } else { child.y + height });
            child.allocate_child(usize::from(y != child.y))
        } else {
            child.allocated = true;
            (child.x, child.y)
        }
    }

    /// Marks child `i` (of a node just split) allocated; returns its origin.
    fn allocate_child(&mut self, i: usize) -> (u32, u32) {
        let Some(children) = self.children.as_mut() else {
            unreachable!("just split");
        };
        children[i].allocated = true;
        (children[i].x, children[i].y)
    }

    /// Allocates a rectangle of at least `area` cells, at least as square as
    /// `min_ratio`, choosing the shape per leaf with [`area_to_rect`].
    /// Returns `(x, y, width, height)`.
    ///
    /// Errors only for what `area_to_rect` refuses (a negative ratio, or a
    /// non-positive area once a leaf is reached).
    pub fn alloc_area(
        &mut self,
        area: i64,
        min_ratio: f64,
        filter: &mut dyn FnMut(u32, u32, u32, u32) -> bool,
    ) -> Result<Option<(u32, u32, u32, u32)>, AreaError> {
        if self.allocated || area > i64::try_from(self.area()).unwrap_or(i64::MAX) {
            return Ok(None);
        }
        if let Some(children) = self.children.as_mut() {
            for i in Self::smallest_first(children) {
                if let Some(found) = children[i].alloc_area(area, min_ratio, filter)? {
                    return Ok(Some(found));
                }
            }
            return Ok(None);
        }
        let Some((w, h)) = area_to_rect(area, self.width, self.height, min_ratio)? else {
            return Ok(None);
        };
        Ok(self.alloc(w, h, filter).map(|(x, y)| (x, y, w, h)))
    }

    /// Allocates exactly the `width × height` rectangle whose bottom-left
    /// corner is `(x, y)`, if it lies wholly in one free leaf, cutting that
    /// leaf (left, right, below, above) until the rectangle is a leaf of its
    /// own. `false` (and the tree unchanged) if it does not: a rectangle
    /// rooted at a given board, as allocserv's "dimensions at a board".
    pub fn alloc_at(&mut self, x: u32, y: u32, width: u32, height: u32) -> bool {
        let inside = |n: &PackTree| {
            u64::from(n.x) <= u64::from(x)
                && u64::from(n.y) <= u64::from(y)
                && u64::from(x) + u64::from(width) <= u64::from(n.x) + u64::from(n.width)
                && u64::from(y) + u64::from(height) <= u64::from(n.y) + u64::from(n.height)
        };
        if width == 0 || height == 0 || self.allocated || !inside(self) {
            return false;
        }
        if let Some(children) = self.children.as_mut() {
            return children.iter_mut().any(|c| c.alloc_at(x, y, width, height));
        }
        if (x, y, width, height) == (self.x, self.y, self.width, self.height) {
            self.allocated = true;
            return true;
        }
        if x > self.x {
            self.vsplit(x);
        } else if x + width < self.x + self.width {
            self.vsplit(x + width);
        } else if y > self.y {
            self.hsplit(y);
        } else {
            self.hsplit(y + height);
        }
        self.alloc_at(x, y, width, height)
    }

    /// Allocates exactly the 1×1 cell `(x, y)` if it is free, splitting
    /// along the side with the most room first (left, right, above, below).
    pub fn request(&mut self, x: u32, y: u32) -> Option<(u32, u32)> {
        if !self.contains(x, y) {
            return None;
        }
        if let Some(children) = self.children.as_mut() {
            return children[0]
                .request(x, y)
                .or_else(|| children[1].request(x, y));
        }
        if self.allocated {
            return None;
        }
        if self.width == 1 && self.height == 1 {
            self.allocated = true;
            return Some((self.x, self.y));
        }
        let left = x - self.x;
        let right = self.x + self.width - x - 1;
        let above = self.y + self.height - y - 1;
        let below = y - self.y;
        let largest = left.max(right).max(above).max(below);
        if left == largest {
            self.vsplit(x);
        } else if right == largest {
            self.vsplit(x + 1);
        } else if above == largest {
            self.hsplit(y + 1);
        } else {
            self.hsplit(y);
        }
        self.request(x, y)
    }

    /// Frees the allocation whose bottom-left corner is `(x, y)`, merging
    /// sibling regions that become entirely free.
    pub fn free(&mut self, x: u32, y: u32) -> Result<(), FreeError> {
        if self.children.is_none() && (x, y) == (self.x, self.y) {
            if !self.allocated {
                return Err(FreeError::NotAllocated { x, y });
            }
            self.allocated = false;
            return Ok(());
        }
        let Some(children) = self.children.as_mut() else {
            return Err(FreeError::Outside { x, y });
        };
        let Some(child) = children.iter_mut().find(|c| c.contains(x, y)) else {
            return Err(FreeError::Outside { x, y });
        };
        child.free(x, y)?;
        if children.iter().all(PackTree::is_free_leaf) {
            self.children = None;
        }
        Ok(())
    }
}

/// Rebuilding a tree from the rectangles allocated in it (restoring from job
/// records, which keep their rectangles but not the tree).
impl PackTree {
    /// A tree for the region `(x, y, width, height)` in which exactly
    /// `rects` (`[x, y, width, height]` each) are allocated, or `None` if
    /// they overlap, leave the region, or cannot be separated by straight
    /// cuts (rectangles that came out of one tree always can).
    ///
    /// The tree's shape may differ from the one the rectangles were
    /// allocated in (free space is merged as far as the cuts allow), so
    /// later placements may differ from those of a server that never
    /// restarted; which triads are free does not.
    pub fn rebuild(x: u32, y: u32, width: u32, height: u32, rects: &[[u32; 4]]) -> Option<Self> {
        let mut node = PackTree::new(x, y, width, height);
        if rects.is_empty() {
            return Some(node);
        }
        let inside = |r: &[u32; 4]| {
            r[2] > 0
                && r[3] > 0
                && r[0] >= x
                && r[1] >= y
                && u64::from(r[0]) + u64::from(r[2]) <= u64::from(x) + u64::from(width)
                && u64::from(r[1]) + u64::from(r[3]) <= u64::from(y) + u64::from(height)
        };
        if !rects.iter().all(inside) {
            return None;
        }
        if rects.len() == 1 && rects[0] == [x, y, width, height] {
            node.allocated = true;
            return Some(node);
        }
        // A vertical cut at `c` crosses no rectangle: split there.
        let vertical = rects
            .iter()
            .flat_map(|r| [r[0], r[0] + r[2]])
            .filter(|&c| c > x && c < x + width)
            .find(|&c| rects.iter().all(|r| r[0] >= c || r[0] + r[2] <= c));
        if let Some(c) = vertical {
            let (left, right): (Vec<[u32; 4]>, Vec<[u32; 4]>) =
                rects.iter().partition(|r| r[0] < c);
            node.children = Some(Box::new([
                PackTree::rebuild(x, y, c - x, height, &left)?,
                PackTree::rebuild(c, y, x + width - c, height, &right)?,
            ]));
            return Some(node);
        }
        let horizontal = rects
            .iter()
            .flat_map(|r| [r[1], r[1] + r[3]])
            .filter(|&c| c > y && c < y + height)
            .find(|&c| rects.iter().all(|r| r[1] >= c || r[1] + r[3] <= c));
        let c = horizontal?;
        let (below, above): (Vec<[u32; 4]>, Vec<[u32; 4]>) = rects.iter().partition(|r| r[1] < c);
        node.children = Some(Box::new([
            PackTree::rebuild(x, y, width, c - y, &below)?,
            PackTree::rebuild(x, c, width, y + height - c, &above)?,
        ]));
        Some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_is_allocated_exactly_where_asked_and_freed_again() {
        let mut t = PackTree::new(0, 0, 5, 4);
        assert!(t.alloc_at(1, 1, 2, 2));
        assert!(t.has_node((1, 1, 2, 2)));
        // Overlapping it, or leaving the region, is refused.
        assert!(!t.alloc_at(2, 2, 2, 2));
        assert!(!t.alloc_at(4, 3, 2, 1));
        assert!(!t.alloc_at(0, 0, 0, 1));
        // Beside it is fine, and so is everything once it is freed.
        assert!(t.alloc_at(3, 0, 2, 4));
        t.free(1, 1).expect("frees");
        t.free(3, 0).expect("frees");
        assert!(t.is_free_leaf());
        assert!(t.alloc_at(0, 0, 5, 4));
    }

    fn accept_all(_: u32, _: u32, _: u32, _: u32) -> bool {
        true
    }

    fn leaf_bounds(t: &PackTree, out: &mut Vec<(u32, u32, u32, u32, bool)>) {
        match &t.children {
            None => out.push((t.x, t.y, t.width, t.height, t.allocated)),
            Some(c) => {
                leaf_bounds(&c[0], out);
                leaf_bounds(&c[1], out);
            }
        }
    }

    fn leaves(t: &PackTree) -> Vec<(u32, u32, u32, u32, bool)> {
        let mut out = Vec::new();
        leaf_bounds(t, &mut out);
        out
    }

    #[test]
    fn exact_fit_allocates_root() {
        let mut t = PackTree::new(0, 0, 3, 2);
        assert_eq!(t.alloc(3, 2, &mut accept_all), Some((0, 0)));
        assert!(t.allocated);
        assert_eq!(t.alloc(1, 1, &mut accept_all), None);
        assert_eq!(t.free(0, 0), Ok(()));
        assert!(t.is_free_leaf());
    }

    #[test]
    fn too_big_or_zero_fails() {
        let mut t = PackTree::new(0, 0, 3, 2);
        assert_eq!(t.alloc(4, 1, &mut accept_all), None);
        assert_eq!(t.alloc(1, 3, &mut accept_all), None);
        assert_eq!(t.alloc(0, 1, &mut accept_all), None);
        assert!(t.is_free_leaf());
    }

    #[test]
    fn vsplit_when_width_slack_not_smaller() {
        // dw = 3 >= dh = 0: vertical split at x + W.
        let mut t = PackTree::new(0, 0, 4, 1);
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 0)));
        assert_eq!(leaves(&t), vec![(0, 0, 1, 1, true), (1, 0, 3, 1, false)]);
    }

    #[test]
    fn hsplit_when_height_slack_larger() {
        let mut t = PackTree::new(0, 0, 1, 4);
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 0)));
        assert_eq!(leaves(&t), vec![(0, 0, 1, 1, true), (0, 1, 1, 3, false)]);
    }

    #[test]
    fn double_split() {
        // 4x4, allocate 1x2: dw=3 >= dh=2 -> vsplit at 1, child (0,0,1,4)
        // has the right width, wrong height -> hsplit at 2.
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.alloc(1, 2, &mut accept_all), Some((0, 0)));
        assert_eq!(
            leaves(&t),
            vec![(0, 0, 1, 2, true), (0, 2, 1, 2, false), (1, 0, 3, 4, false)]
        );
        // 4x4, allocate 2x1: dw=2 < dh=3 -> hsplit at 1, child (0,0,4,1)
        // wrong width -> vsplit at 2.
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.alloc(2, 1, &mut accept_all), Some((0, 0)));
        assert_eq!(
            leaves(&t),
            vec![(0, 0, 2, 1, true), (2, 0, 2, 1, false), (0, 1, 4, 3, false)]
        );
    }

    #[test]
    fn candidate_order_and_splits_away_from_origin() {
        // Reject all but the top-right corner.
        let mut tried = Vec::new();
        let mut filter = |x, y, w, h| {
            tried.push((x, y, w, h));
            (x, y) == (2, 3)
        };
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.alloc(2, 1, &mut filter), Some((2, 3)));
        assert_eq!(
            tried,
            vec![(0, 0, 2, 1), (0, 3, 2, 1), (2, 0, 2, 1), (2, 3, 2, 1)]
        );
        // dh=3 > dw=2 -> hsplit at y=3; child 1 (0,3,4,1) -> vsplit at 2.
        assert_eq!(
            leaves(&t),
            vec![(0, 0, 4, 3, false), (0, 3, 2, 1, false), (2, 3, 2, 1, true)]
        );
    }

    #[test]
    fn duplicate_candidates_are_tried_once() {
        let mut tried = Vec::new();
        let mut filter = |x, y, w, h| {
            tried.push((x, y, w, h));
            false
        };
        let mut t = PackTree::new(0, 0, 4, 1);
        assert_eq!(t.alloc(2, 1, &mut filter), None);
        assert_eq!(tried, vec![(0, 0, 2, 1), (2, 0, 2, 1)]);
        let mut count = 0;
        let mut t = PackTree::new(0, 0, 2, 2);
        assert_eq!(
            t.alloc(2, 2, &mut |_, _, _, _| {
                count += 1;
                false
            }),
            None
        );
        assert_eq!(count, 1);
        assert!(t.is_free_leaf());
    }

    #[test]
    fn smallest_child_first() {
        // After a 1x1 at (0,0) in 4x1: children (0,0,1,1) alloc'd and
        // (1,0,3,1). Then a 1x1 in a 4x4 case: choose smaller child.
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.alloc(1, 2, &mut accept_all), Some((0, 0)));
        // The free (0,2,1,2) leaf (area 2) is tried before (1,0,3,4).
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 2)));
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 3)));
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((1, 0)));
    }

    #[test]
    fn fill_and_free_everything_merges() {
        let mut t = PackTree::new(0, 0, 3, 3);
        let mut got = Vec::new();
        while let Some(xy) = t.alloc(1, 1, &mut accept_all) {
            got.push(xy);
        }
        assert_eq!(got.len(), 9);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        for (x, y) in got {
            assert_eq!(t.free(x, y), Ok(()));
        }
        assert!(t.is_free_leaf());
    }

    #[test]
    fn alloc_area_examples() {
        // Per-leaf shape choice: 4x4 after one 1x1, area 2 -> (1, 2).
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 0)));
        assert_eq!(
            t.alloc_area(2, 0.0, &mut accept_all),
            Ok(Some((0, 1, 1, 2)))
        );
        let mut t = PackTree::new(0, 0, 2, 2);
        assert_eq!(t.alloc_area(5, 0.0, &mut accept_all), Ok(None));
        assert_eq!(
            t.alloc_area(4, 0.0, &mut accept_all),
            Ok(Some((0, 0, 2, 2)))
        );
        assert_eq!(t.alloc_area(1, 0.0, &mut accept_all), Ok(None));
        let mut t = PackTree::new(0, 0, 2, 2);
        assert_eq!(
            t.alloc_area(1, -1.0, &mut accept_all),
            Err(AreaError::NegativeRatio)
        );
        // Ratio cannot be met in a 1-wide machine.
        let mut t = PackTree::new(0, 0, 1, 10);
        assert_eq!(t.alloc_area(4, 0.5, &mut accept_all), Ok(None));
    }

    #[test]
    fn request_specific_cells() {
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.request(1, 1), Some((1, 1)));
        assert_eq!(t.request(1, 1), None);
        assert_eq!(t.request(4, 0), None);
        // Largest side first: l=1, r=2, a=2, b=1 -> r -> vsplit(2).
        let top = t.children.as_ref().unwrap();
        assert_eq!(top[0].bounds(), (0, 0, 2, 4));
        assert_eq!(top[1].bounds(), (2, 0, 2, 4));
        assert_eq!(t.request(3, 3), Some((3, 3)));
        assert_eq!(t.free(1, 1), Ok(()));
        assert_eq!(t.free(3, 3), Ok(()));
        assert!(t.is_free_leaf());
    }

    #[test]
    fn request_priorities() {
        // left largest
        let mut t = PackTree::new(0, 0, 3, 1);
        t.request(2, 0);
        assert_eq!(t.children.as_ref().unwrap()[0].bounds(), (0, 0, 2, 1));
        // above largest (l=r=0, a=2, b=0)
        let mut t = PackTree::new(0, 0, 1, 3);
        t.request(0, 0);
        assert_eq!(t.children.as_ref().unwrap()[0].bounds(), (0, 0, 1, 1));
        // below largest
        let mut t = PackTree::new(0, 0, 1, 3);
        t.request(0, 2);
        assert_eq!(t.children.as_ref().unwrap()[0].bounds(), (0, 0, 1, 2));
    }

    #[test]
    fn free_errors() {
        let mut t = PackTree::new(0, 0, 4, 4);
        assert_eq!(t.free(0, 0), Err(FreeError::NotAllocated { x: 0, y: 0 }));
        assert_eq!(t.free(1, 0), Err(FreeError::Outside { x: 1, y: 0 }));
        assert_eq!(t.alloc(2, 2, &mut accept_all), Some((0, 0)));
        assert_eq!(t.free(5, 5), Err(FreeError::Outside { x: 5, y: 5 }));
        assert_eq!(t.free(1, 1), Err(FreeError::Outside { x: 1, y: 1 }));
        assert_eq!(t.free(2, 0), Err(FreeError::NotAllocated { x: 2, y: 0 }));
        assert_eq!(
            FreeError::NotAllocated { x: 2, y: 0 }.to_string(),
            "Cannot free non-allocated region 2, 0."
        );
        assert_eq!(
            FreeError::Outside { x: 5, y: 5 }.to_string(),
            "Cannot free 5, 5 which is outside the region."
        );
        assert_eq!(t.free(0, 0), Ok(()));
        assert!(t.is_free_leaf());
    }

    #[test]
    fn partial_free_keeps_split() {
        let mut t = PackTree::new(0, 0, 2, 1);
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 0)));
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((1, 0)));
        assert_eq!(t.free(0, 0), Ok(()));
        assert!(!t.is_free_leaf());
        assert_eq!(t.alloc(2, 1, &mut accept_all), None);
        assert_eq!(t.alloc(1, 1, &mut accept_all), Some((0, 0)));
    }

    #[test]
    fn serde_round_trip() {
        let mut t = PackTree::new(0, 0, 3, 3);
        t.alloc(1, 2, &mut accept_all);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<PackTree>(&json).unwrap(), t);
    }

    #[test]
    fn a_rebuilt_tree_frees_exactly_like_the_original() {
        let mut t = PackTree::new(0, 0, 6, 4);
        let a = t.alloc(2, 2, &mut accept_all).expect("a");
        let b = t.alloc(3, 1, &mut accept_all).expect("b");
        let c = t.request(5, 3).expect("c");
        let rects = [[a.0, a.1, 2, 2], [b.0, b.1, 3, 1], [c.0, c.1, 1, 1]];
        let mut r = PackTree::rebuild(0, 0, 6, 4, &rects).expect("separable");
        assert_eq!(r.request(c.0, c.1), None, "allocated cells stay allocated");
        assert_eq!(r.request(a.0, a.1), None);
        for (x, y) in [a, b, c] {
            assert_eq!(r.free(x, y), Ok(()));
        }
        assert!(r.is_free_leaf(), "everything merged back");
    }

    #[test]
    fn overlapping_or_outside_rectangles_cannot_be_rebuilt() {
        assert!(PackTree::rebuild(0, 0, 4, 4, &[[0, 0, 2, 2], [1, 1, 2, 2]]).is_none());
        assert!(PackTree::rebuild(0, 0, 4, 4, &[[3, 3, 2, 1]]).is_none());
        assert!(PackTree::rebuild(0, 0, 4, 4, &[[0, 0, 4, 4], [0, 0, 4, 4]]).is_none());
        // A pinwheel cannot come out of a tree.
        let pinwheel = [[0, 0, 2, 1], [2, 0, 1, 2], [1, 2, 2, 1], [0, 1, 1, 2]];
        assert!(PackTree::rebuild(0, 0, 3, 3, &pinwheel).is_none());
    }
}
