//! Board-level allocation on one machine (§4.2–§4.4, §4.8): single boards
//! packed into shared triads, "at least n boards" and "w × h triads"
//! rectangles on a [`PackTree`], and the delayed release of freed boards.
//!
//! The allocator is sans-I/O: the current time is always passed in as Unix
//! seconds, so the controller (and tests) decide what "now" is.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use spalloc_protocol::Link;

use super::area_to_rect::{area_to_rect, AreaError};
use super::candidate_filter::{CandidateFilter, Topology};
use super::coordinates::{Board, WrapAround};
use super::pack_tree::PackTree;

mod reservation;
mod rooted;
pub use reservation::{BoardUsage, FreeOutside, Reservation};

/// The shape of an allocation request, decided from the positional
/// arguments of `create_job` like the reference's `_alloc_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AllocShape {
    /// One board: anywhere (`[]` or `[1]`, `None`) or a specific one
    /// (`[x, y, z]`).
    Board(Option<Board>),
    /// At least `n` boards as a rectangle of `ceil(n / 3)` triads (`[n]`,
    /// `n != 1`). `n <= 0` is never possible.
    Boards(i64),
    /// Exactly `w × h` triads (`[w, h]`).
    Triads(i64, i64),
    /// Exactly `w × h` triads whose bottom-left triad is the given board's
    /// (the v2 API's `dimensions` with a root `board`; see [`rooted`]).
    TriadsAt(i64, i64, Board),
}

/// A complete allocation request: the shape plus the keyword constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocRequest {
    /// What to allocate.
    pub shape: AllocShape,
    /// Minimum aspect ratio, used only by [`AllocShape::Boards`].
    // The defaults are left out of job records (they are rewritten on
    // every change of the job), and read back when absent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_ratio: f64,
    /// Most dead or unreachable boards tolerated (`None`: any, as long as
    /// the bottom-left board works). Ignored for single boards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dead_boards: Option<u32>,
    /// Most dead internal links tolerated (`None`: any). Ignored for single
    /// boards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dead_links: Option<u32>,
    /// Only accept allocations with wrap-around links.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_torus: bool,
    /// Boards the job must never be given (the user's avoid-list), on
    /// whichever machine it runs. Not considered by
    /// [`Allocator::alloc_possible`]: a job avoiding boards waits rather
    /// than being cancelled.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub avoid_boards: BTreeSet<Board>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// A request the reference would refuse with an exception. Display is
/// exactly the reference's message, which clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// `require_torus` with a single-board form.
    #[error("require_torus must be False when allocating boards.")]
    TorusWithBoard,
    /// The rectangle chooser refused the request (a negative ratio).
    #[error(transparent)]
    Area(#[from] AreaError),
}

impl AllocRequest {
    /// Checks what the reference raises as exceptions so the caller can
    /// refuse the request *before* creating a job (fixing bug B1, ghost
    /// jobs).
    ///
    /// The reference raises the ratio error only when `area_to_rect` is
    /// reached; that never happens for `n <= 0` (such jobs are cancelled as
    /// impossible instead), so those are not refused here either.
    pub fn validate(&self) -> Result<(), AllocError> {
        match self.shape {
            AllocShape::Board(_) if self.require_torus => Err(AllocError::TorusWithBoard),
            AllocShape::Boards(n) if n > 0 && self.min_ratio < 0.0 => {
                Err(AreaError::NegativeRatio.into())
            }
            _ => Ok(()),
        }
    }
}

/// A successful allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Per-allocator sequence number (from 1), used to free it.
    pub id: u64,
    /// The live boards allocated.
    pub boards: BTreeSet<Board>,
    /// The boards in the order the reference adds them to its set (the
    /// candidate filter's search order), from which its BMP command order
    /// follows (see [`super::python_set`]).
    #[serde(default)]
    pub board_order: Vec<Board>,
    /// Links leaving the boards, to be disabled on power-on.
    pub periphery: BTreeSet<(Board, Link)>,
    /// Which wrap-around links join the boards.
    pub torus: WrapAround,
    /// Bottom-left triad of the rectangle allocated (for a single board:
    /// its triad).
    pub x: u32,
    /// See `x`.
    pub y: u32,
    /// Width of the rectangle in triads (1 for a single board).
    pub width: u32,
    /// Height of the rectangle in triads (1 for a single board).
    pub height: u32,
}

/// How an allocation is released: a pack-tree rectangle, or one board of a
/// shared single-board triad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum AllocKind {
    Triads,
    Board,
}

/// A live allocation's release information (the reference's
/// `allocation_types` and `allocation_board`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct LiveAllocation {
    kind: AllocKind,
    board: Board,
}

/// A freed allocation waiting for `seconds_before_free` to pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct PendingFree {
    freed_at: f64,
    kind: AllocKind,
    board: Board,
}

/// One slot of a [`PySmallSet`] hash table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Slot {
    Empty,
    Dummy,
    Key(u32),
}

/// A model of CPython's `set` for the small integers 0..=2 (the free z's
/// of a single-board triad).
///
/// The reference hands out "any" free board with `set.pop()`, whose result
/// depends on the hash table's history (dummy slots, the search finger), not
/// just on its contents: e.g. `{0,1,2}` popped twice, then 0 and 1 added
/// back, pops 2, 1, 0. To give the same boards as the reference this
/// mirrors CPython 3.11's `set_add_entry`, `set_pop`, `set_discard` and
/// table resizing for keys whose hash is themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PySmallSet {
    table: Vec<Slot>,
    fill: usize,
    used: usize,
    finger: usize,
}

/// CPython's `LINEAR_PROBES`.
const LINEAR_PROBES: usize = 9;
/// CPython's `PySet_MINSIZE`.
const SET_MIN_SIZE: usize = 8;

impl PySmallSet {
    fn new() -> Self {
        PySmallSet {
            table: vec![Slot::Empty; SET_MIN_SIZE],
            fill: 0,
            used: 0,
            finger: 0,
        }
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    fn contains(&self, key: u32) -> bool {
        self.table.contains(&Slot::Key(key))
    }

    fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// `set.add(key)`.
    fn add(&mut self, key: u32) {
        if self.contains(key) {
            return;
        }
        let mask = self.mask();
        let hash = key as usize;
        let mut i = hash & mask;
        let mut perturb = hash;
        let mut freeslot = None;
        let unused = 'probe: loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                match self.table[j] {
                    Slot::Empty => break 'probe j,
                    Slot::Dummy => freeslot = Some(j),
                    Slot::Key(_) => {}
                }
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & mask;
        };
        self.used += 1;
        if let Some(slot) = freeslot {
            self.table[slot] = Slot::Key(key);
            return;
        }
        self.table[unused] = Slot::Key(key);
        self.fill += 1;
        if self.fill * 5 >= mask * 3 {
            self.resize(self.used * 4);
        }
    }

    /// CPython's `set_table_resize`.
    fn resize(&mut self, min_used: usize) {
        let mut new_size = SET_MIN_SIZE;
        while new_size <= min_used {
            new_size <<= 1;
        }
        if new_size == SET_MIN_SIZE && self.table.len() == SET_MIN_SIZE && self.fill == self.used {
            return;
        }
        let old = std::mem::replace(&mut self.table, vec![Slot::Empty; new_size]);
        self.fill = self.used;
        for slot in old {
            if let Slot::Key(k) = slot {
                self.insert_clean(k);
            }
        }
    }

    /// CPython's `set_insert_clean` (no dummies, key known absent).
    fn insert_clean(&mut self, key: u32) {
        let mask = self.mask();
        let hash = key as usize;
        let mut i = hash & mask;
        let mut perturb = hash;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                if self.table[j] == Slot::Empty {
                    self.table[j] = Slot::Key(key);
                    return;
                }
            }
            perturb >>= 5;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }

    /// `set.pop()`; `None` if empty.
    fn pop(&mut self) -> Option<u32> {
        if self.used == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.finger & mask;
        loop {
            if let Slot::Key(k) = self.table[i] {
                self.table[i] = Slot::Dummy;
                self.used -= 1;
                self.finger = i + 1;
                return Some(k);
            }
            i = (i + 1) & mask;
        }
    }

    /// `set.discard(key)`; true if it was present.
    fn discard(&mut self, key: u32) -> bool {
        match self.table.iter().position(|s| *s == Slot::Key(key)) {
            Some(i) => {
                self.table[i] = Slot::Dummy;
                self.used -= 1;
                true
            }
            None => false,
        }
    }
}

/// A triad allocated (as 1×1 in the pack tree) to serve single-board jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SharedTriad {
    x: u32,
    y: u32,
    /// Live boards not in use, with the reference's pop order.
    free: PySmallSet,
    /// Boards currently allocated (or waiting to be freed).
    in_use: BTreeSet<u32>,
}

/// Allocates boards of one machine. See the module documentation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocator {
    topology: Topology,
    seconds_before_free: f64,
    next_id: u64,
    pack_tree: PackTree,
    live: BTreeMap<u64, LiveAllocation>,
    /// Shared triads with a free board, in the reference's dict insertion
    /// order (the first one serves "any board" requests).
    single_board_triads: Vec<SharedTriad>,
    /// Shared triads with no free board.
    full_single_board_triads: Vec<SharedTriad>,
    to_free: VecDeque<PendingFree>,
}

impl Allocator {
    /// An idle allocator for a `width × height`-triad machine. Boards freed
    /// become allocatable again `seconds_before_free` seconds later.
    pub fn new(
        width: u32,
        height: u32,
        dead_boards: &BTreeSet<Board>,
        dead_links: &BTreeSet<(Board, Link)>,
        seconds_before_free: f64,
    ) -> Self {
        Allocator {
            topology: Topology {
                width,
                height,
                dead_boards: dead_boards.clone(),
                dead_links: dead_links.clone(),
            },
            seconds_before_free,
            next_id: 1,
            pack_tree: PackTree::new(0, 0, width, height),
            live: BTreeMap::new(),
            single_board_triads: Vec::new(),
            full_single_board_triads: Vec::new(),
            to_free: VecDeque::new(),
        }
    }

    /// Seconds between a free and the boards' reuse.
    pub fn seconds_before_free(&self) -> f64 {
        self.seconds_before_free
    }

    /// The machine's width in triads.
    pub fn width(&self) -> u32 {
        self.topology.width
    }

    /// The machine's height in triads.
    pub fn height(&self) -> u32 {
        self.topology.height
    }

    /// The dead boards new allocations avoid.
    pub fn dead_boards(&self) -> &BTreeSet<Board> {
        &self.topology.dead_boards
    }

    /// The dead links new allocations take into account.
    pub fn dead_links(&self) -> &BTreeSet<(Board, Link)> {
        &self.topology.dead_links
    }

    /// Replaces the dead boards and links (a config reload that changes
    /// only those). New allocations respect them; existing allocations
    /// are untouched. Newly dead boards in shared single-board triads stop
    /// being handed out.
    pub fn set_dead(
        &mut self,
        dead_boards: &BTreeSet<Board>,
        dead_links: &BTreeSet<(Board, Link)>,
    ) {
        self.topology.dead_boards = dead_boards.clone();
        self.topology.dead_links = dead_links.clone();
        let mut still_free = Vec::with_capacity(self.single_board_triads.len());
        for mut triad in std::mem::take(&mut self.single_board_triads) {
            for z in 0..3 {
                if dead_boards.contains(&Board::new(triad.x, triad.y, z)) {
                    triad.free.discard(z);
                }
            }
            if triad.free.is_empty() {
                self.full_single_board_triads.push(triad);
            } else {
                still_free.push(triad);
            }
        }
        self.single_board_triads = still_free;
    }

    /// [`Allocator::set_dead`], and boards of shared single-board triads that
    /// are alive again and not in use are handed out again at once (a board
    /// back in service), their triad going to the end of the shared list
    /// if it had no free board.
    pub fn set_unusable(
        &mut self,
        dead_boards: &BTreeSet<Board>,
        dead_links: &BTreeSet<(Board, Link)>,
    ) {
        self.set_dead(dead_boards, dead_links);
        let revive = |triad: &mut SharedTriad| {
            for z in 0..3 {
                let b = Board::new(triad.x, triad.y, z);
                if !dead_boards.contains(&b)
                    && !triad.in_use.contains(&z)
                    && !triad.free.contains(z)
                {
                    triad.free.add(z);
                }
            }
        };
        self.single_board_triads.iter_mut().for_each(revive);
        let full = std::mem::take(&mut self.full_single_board_triads);
        for mut triad in full {
            revive(&mut triad);
            if triad.free.is_empty() {
                self.full_single_board_triads.push(triad);
            } else {
                self.single_board_triads.push(triad);
            }
        }
    }

    /// True if nothing is allocated and nothing is waiting to be freed.
    pub fn is_idle(&self) -> bool {
        self.live.is_empty() && self.to_free.is_empty() && self.pack_tree.is_free_leaf()
    }

    /// Could `req` ever be met on this machine when it is idle (§4.3)?
    /// Deliberately conservative: only the four corner placements are
    /// tested. Invalid requests (see [`AllocRequest::validate`]) are never
    /// possible.
    pub fn alloc_possible(&self, req: &AllocRequest) -> bool {
        if req.validate().is_err() {
            return false;
        }
        match req.shape {
            AllocShape::Board(board) => self.board_possible(board),
            AllocShape::Boards(n) => self.boards_possible(n, req),
            AllocShape::Triads(w, h) => self.triads_possible(w, h, req),
            AllocShape::TriadsAt(w, h, root) => self.rooted_possible(w, h, root, req),
        }
    }

    fn board_possible(&self, board: Option<Board>) -> bool {
        if let Some(b) = board {
            if !self.in_machine(b) || self.topology.dead_boards.contains(&b) {
                return false;
            }
        }
        let boards = u64::from(self.width()) * u64::from(self.height()) * 3;
        (self.topology.dead_boards.len() as u64) < boards
    }

    fn boards_possible(&self, n: i64, req: &AllocRequest) -> bool {
        let triads = boards_to_triads(n);
        if triads <= 0 || (req.require_torus && triads != self.triad_count()) {
            return false;
        }
        let Ok(Some((w, h))) = area_to_rect(triads, self.width(), self.height(), req.min_ratio)
        else {
            return false;
        };
        self.any_corner_accepted(w, h, req, Some(n))
    }

    fn triads_possible(&self, w: i64, h: i64, req: &AllocRequest) -> bool {
        let (Ok(w), Ok(h)) = (u32::try_from(w), u32::try_from(h)) else {
            return false;
        };
        if w > self.width() || h > self.height() || w == 0 || h == 0 {
            return false;
        }
        if req.require_torus && (w, h) != (self.width(), self.height()) {
            return false;
        }
        self.any_corner_accepted(w, h, req, None)
    }

    /// Whether the filter accepts a `w × h` rectangle in one of the idle
    /// machine's four corners.
    fn any_corner_accepted(
        &self,
        w: u32,
        h: u32,
        req: &AllocRequest,
        expected: Option<i64>,
    ) -> bool {
        let mut filter = self.filter(req, expected);
        let (right, top) = (self.width() - w, self.height() - h);
        [(0, 0), (right, 0), (0, top), (right, top)]
            .into_iter()
            .any(|(x, y)| filter.check(x, y, w, h))
    }

    fn filter(&self, req: &AllocRequest, expected: Option<i64>) -> CandidateFilter<'_> {
        CandidateFilter::new(
            &self.topology,
            req.max_dead_boards,
            req.max_dead_links,
            req.require_torus,
            expected,
        )
    }

    fn in_machine(&self, b: Board) -> bool {
        b.x < self.width() && b.y < self.height() && b.z < 3
    }

    fn triad_count(&self) -> i64 {
        i64::from(self.width()) * i64::from(self.height())
    }

    /// Tries to allocate `req` now (§4.4), after first releasing frees whose
    /// delay has passed (as the reference does). `None` if it does not fit
    /// at the moment (or the request is invalid).
    pub fn alloc(&mut self, req: &AllocRequest, now: f64) -> Option<Allocation> {
        self.alloc_avoiding(req, now, None)
    }

    /// [`Allocator::alloc`], but only on boards outside `reserved`: how a
    /// backfilled job starts without touching what the head of its queue
    /// waits for. Shared single-board triads inside it are not used either.
    pub fn alloc_outside(
        &mut self,
        req: &AllocRequest,
        now: f64,
        reserved: Reservation,
    ) -> Option<Allocation> {
        self.alloc_avoiding(req, now, Some(reserved))
    }

    fn alloc_avoiding(
        &mut self,
        req: &AllocRequest,
        now: f64,
        avoid: Option<Reservation>,
    ) -> Option<Allocation> {
        self.check_free(now);
        if req.validate().is_err() {
            return None;
        }
        match req.shape {
            AllocShape::Board(board) => self.alloc_board(board, avoid, &req.avoid_boards),
            AllocShape::Boards(n) => self.alloc_boards(n, req, avoid),
            AllocShape::Triads(w, h) => self.alloc_triads(w, h, req, avoid),
            AllocShape::TriadsAt(w, h, root) => self.alloc_rooted(w, h, root, req, avoid),
        }
    }

    fn alloc_triads(
        &mut self,
        w: i64,
        h: i64,
        req: &AllocRequest,
        avoid: Option<Reservation>,
    ) -> Option<Allocation> {
        let (w, h) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
        if req.require_torus && (w, h) != (self.width(), self.height()) {
            return None;
        }
        if w == 0 || h == 0 {
            return None;
        }
        let mut filter = CandidateFilter::new(
            &self.topology,
            req.max_dead_boards,
            req.max_dead_links,
            req.require_torus,
            None,
        )
        .avoiding(&req.avoid_boards);
        let (x, y) = self.pack_tree.alloc(w, h, &mut |x, y, w, h| {
            !overlaps(avoid, x, y, w, h) && filter.check(x, y, w, h)
        })?;
        let accepted = filter.into_accepted()?;
        Some(self.record_rectangle(x, y, w, h, accepted))
    }

    fn alloc_boards(
        &mut self,
        n: i64,
        req: &AllocRequest,
        avoid: Option<Reservation>,
    ) -> Option<Allocation> {
        let triads = boards_to_triads(n);
        if triads <= 0 || (req.require_torus && triads != self.triad_count()) {
            return None;
        }
        let mut filter = CandidateFilter::new(
            &self.topology,
            req.max_dead_boards,
            req.max_dead_links,
            req.require_torus,
            Some(n),
        )
        .avoiding(&req.avoid_boards);
        let (x, y, w, h) = self
            .pack_tree
            .alloc_area(triads, req.min_ratio, &mut |x, y, w, h| {
                !overlaps(avoid, x, y, w, h) && filter.check(x, y, w, h)
            })
            .ok()??;
        let accepted = filter.into_accepted()?;
        Some(self.record_rectangle(x, y, w, h, accepted))
    }

    /// Registers a pack-tree rectangle allocation and builds its result.
    fn record_rectangle(
        &mut self,
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        accepted: super::candidate_filter::Accepted,
    ) -> Allocation {
        let id = self.new_id(AllocKind::Triads, Board::new(x, y, 0));
        Allocation {
            id,
            boards: accepted.boards,
            board_order: accepted.visit_order,
            periphery: accepted.periphery,
            torus: accepted.torus,
            x,
            y,
            width,
            height,
        }
    }

    fn new_id(&mut self, kind: AllocKind, board: Board) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(id, LiveAllocation { kind, board });
        id
    }

    /// One board, reusing a shared triad's free board when possible, else
    /// claiming a new 1×1 triad from the pack tree.
    fn alloc_board(
        &mut self,
        board: Option<Board>,
        avoid: Option<Reservation>,
        avoided: &BTreeSet<Board>,
    ) -> Option<Allocation> {
        if let Some(b) = board {
            if !self.in_machine(b)
                || self.topology.dead_boards.contains(&b)
                || overlaps(avoid, b.x, b.y, 1, 1)
                || avoided.contains(&b)
            {
                return None;
            }
        }
        if let Some(allocation) = self.take_shared_board(board, avoid, avoided) {
            return Some(allocation);
        }
        let (x, y) = match board {
            Some(b) => self.pack_tree.request(b.x, b.y)?,
            None => {
                let dead = &self.topology.dead_boards;
                self.pack_tree.alloc(1, 1, &mut |x, y, _, _| {
                    !overlaps(avoid, x, y, 1, 1)
                        && (0..3).any(|z| {
                            let b = Board::new(x, y, z);
                            !dead.contains(&b) && !avoided.contains(&b)
                        })
                })?
            }
        };
        let mut free = PySmallSet::new();
        for z in 0..3 {
            if !self.topology.dead_boards.contains(&Board::new(x, y, z)) {
                free.add(z);
            }
        }
        self.single_board_triads.push(SharedTriad {
            x,
            y,
            free,
            in_use: BTreeSet::new(),
        });
        self.take_shared_board(board, avoid, avoided)
    }

    /// Takes a free board from the shared triads: the first triad's
    /// `set.pop()` for "any" (the first outside `avoid`), or exactly the
    /// requested one if it is free.
    fn take_shared_board(
        &mut self,
        board: Option<Board>,
        avoid: Option<Reservation>,
        avoided: &BTreeSet<Board>,
    ) -> Option<Allocation> {
        let (index, z) = match board {
            // With boards to avoid: the first free board that is not one
            // of them (without, the reference's choice below).
            None if !avoided.is_empty() => {
                let (index, z) = self
                    .single_board_triads
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| !overlaps(avoid, t.x, t.y, 1, 1))
                    .find_map(|(i, t)| {
                        (0..3)
                            .find(|&z| {
                                t.free.contains(z) && !avoided.contains(&Board::new(t.x, t.y, z))
                            })
                            .map(|z| (i, z))
                    })?;
                self.single_board_triads[index].free.discard(z);
                (index, z)
            }
            None => {
                let index = self
                    .single_board_triads
                    .iter()
                    .position(|t| !overlaps(avoid, t.x, t.y, 1, 1))?;
                (index, self.single_board_triads[index].free.pop()?)
            }
            Some(b) => {
                let index = self
                    .single_board_triads
                    .iter()
                    .position(|t| (t.x, t.y) == (b.x, b.y))?;
                if !self.single_board_triads[index].free.discard(b.z) {
                    return None;
                }
                (index, b.z)
            }
        };
        let triad = &mut self.single_board_triads[index];
        triad.in_use.insert(z);
        let taken = Board::new(triad.x, triad.y, z);
        if triad.free.is_empty() {
            let full = self.single_board_triads.remove(index);
            self.full_single_board_triads.push(full);
        }
        let id = self.new_id(AllocKind::Board, taken);
        Some(Allocation {
            id,
            boards: [taken].into_iter().collect(),
            board_order: vec![taken],
            periphery: Link::ALL.into_iter().map(|l| (taken, l)).collect(),
            torus: WrapAround::NONE,
            x: taken.x,
            y: taken.y,
            width: 1,
            height: 1,
        })
    }

    /// Queues the release of an allocation; its boards become allocatable
    /// `seconds_before_free` after `now` (§4.8). Unknown IDs are ignored.
    pub fn free(&mut self, allocation_id: u64, now: f64) {
        if let Some(live) = self.live.remove(&allocation_id) {
            self.to_free.push_back(PendingFree {
                freed_at: now,
                kind: live.kind,
                board: live.board,
            });
        }
    }

    /// Releases every queued free at least `seconds_before_free` old, in
    /// order; true if anything was released.
    pub fn check_free(&mut self, now: f64) -> bool {
        let mut changed = false;
        while let Some(next) = self.to_free.front().copied() {
            if now - next.freed_at < self.seconds_before_free {
                break;
            }
            self.to_free.pop_front();
            self.release(next.kind, next.board);
            changed = true;
        }
        changed
    }

    fn release(&mut self, kind: AllocKind, board: Board) {
        match kind {
            AllocKind::Triads => {
                let freed = self.pack_tree.free(board.x, board.y);
                debug_assert!(freed.is_ok(), "{freed:?}");
            }
            AllocKind::Board => self.release_board(board),
        }
    }

    /// Returns a single board to its shared triad; the triad goes back to
    /// the pack tree once none of its boards is in use.
    fn release_board(&mut self, board: Board) {
        let xy = (board.x, board.y);
        if let Some(i) = self
            .full_single_board_triads
            .iter()
            .position(|t| (t.x, t.y) == xy)
        {
            // As the reference: back into the dict, at the end, with a
            // fresh set.
            let mut triad = self.full_single_board_triads.remove(i);
            triad.free = PySmallSet::new();
            self.single_board_triads.push(triad);
        }
        let Some(i) = self
            .single_board_triads
            .iter()
            .position(|t| (t.x, t.y) == xy)
        else {
            debug_assert!(false, "freed board {board:?} of no shared triad");
            return;
        };
        let triad = &mut self.single_board_triads[i];
        triad.in_use.remove(&board.z);
        if !self.topology.dead_boards.contains(&board) {
            triad.free.add(board.z);
        }
        if triad.in_use.is_empty() {
            self.single_board_triads.remove(i);
            let freed = self.pack_tree.free(board.x, board.y);
            debug_assert!(freed.is_ok(), "{freed:?}");
        } else if triad.free.is_empty() {
            let full = self.single_board_triads.remove(i);
            self.full_single_board_triads.push(full);
        }
    }
}

/// An allocation found in the job records, for [`Allocator::rebuild`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// One board of a shared single-board triad.
    Board(Board),
    /// A rectangle of triads `[x, y, width, height]` with these boards.
    Triads([u32; 4], BTreeSet<Board>),
}

impl Allocator {
    /// An allocator for a `width × height`-triad machine in which exactly
    /// `claims` are allocated (restoring from job records: the boards of
    /// each job are known, so nothing is placed again), and the allocation
    /// ID of each claim: `None` for one that overlaps an earlier claim or
    /// leaves the machine (a damaged record; the caller drops that job).
    /// Frees that were waiting for `seconds_before_free` are not in the
    /// records: those boards are free at once.
    pub fn rebuild(
        width: u32,
        height: u32,
        dead_boards: &BTreeSet<Board>,
        dead_links: &BTreeSet<(Board, Link)>,
        seconds_before_free: f64,
        claims: &[Claim],
    ) -> (Allocator, Vec<Option<u64>>) {
        let mut a = Allocator::new(width, height, dead_boards, dead_links, seconds_before_free);
        // Boards must be disjoint and inside; then the rectangles must come
        // out of one tree. All at once first; one at a time (dropping those
        // that do not fit) only for a damaged file.
        let mut taken: BTreeSet<Board> = BTreeSet::new();
        let mut accepted: Vec<bool> = claims
            .iter()
            .map(|claim| {
                let boards: Vec<Board> = match claim {
                    Claim::Board(b) => vec![*b],
                    Claim::Triads(_, boards) => boards.iter().copied().collect(),
                };
                let ok = boards
                    .iter()
                    .all(|b| b.x < width && b.y < height && b.z < 3 && !taken.contains(b));
                if ok {
                    taken.extend(boards);
                }
                ok
            })
            .collect();
        let rects_of = |accepted: &[bool]| -> Vec<[u32; 4]> {
            let mut rects = Vec::new();
            let mut triads = BTreeSet::new();
            for (claim, ok) in claims.iter().zip(accepted) {
                match claim {
                    _ if !ok => {}
                    Claim::Board(b) => {
                        if triads.insert((b.x, b.y)) {
                            rects.push([b.x, b.y, 1, 1]);
                        }
                    }
                    Claim::Triads(rect, _) => rects.push(*rect),
                }
            }
            rects
        };
        match PackTree::rebuild(0, 0, width, height, &rects_of(&accepted)) {
            Some(tree) => a.pack_tree = tree,
            None => {
                for i in 0..claims.len() {
                    if !accepted[i] {
                        continue;
                    }
                    let mut trial = accepted.clone();
                    for later in trial.iter_mut().skip(i + 1) {
                        *later = false;
                    }
                    if PackTree::rebuild(0, 0, width, height, &rects_of(&trial)).is_none() {
                        accepted[i] = false;
                    }
                }
                if let Some(tree) = PackTree::rebuild(0, 0, width, height, &rects_of(&accepted)) {
                    a.pack_tree = tree;
                }
            }
        }
        let mut ids = Vec::with_capacity(claims.len());
        for (claim, ok) in claims.iter().zip(accepted) {
            if !ok {
                ids.push(None);
                continue;
            }
            let id = match claim {
                Claim::Triads(rect, _) => {
                    a.new_id(AllocKind::Triads, Board::new(rect[0], rect[1], 0))
                }
                Claim::Board(b) => {
                    let index = match a.shared_triad(b.x, b.y) {
                        Some(i) => i,
                        None => {
                            let mut free = PySmallSet::new();
                            for z in 0..3 {
                                if !a.topology.dead_boards.contains(&Board::new(b.x, b.y, z)) {
                                    free.add(z);
                                }
                            }
                            a.single_board_triads.push(SharedTriad {
                                x: b.x,
                                y: b.y,
                                free,
                                in_use: BTreeSet::new(),
                            });
                            a.single_board_triads.len() - 1
                        }
                    };
                    let triad = &mut a.single_board_triads[index];
                    triad.free.discard(b.z);
                    triad.in_use.insert(b.z);
                    a.new_id(AllocKind::Board, *b)
                }
            };
            ids.push(Some(id));
        }
        let (full, free): (Vec<SharedTriad>, Vec<SharedTriad>) =
            std::mem::take(&mut a.single_board_triads)
                .into_iter()
                .partition(|t| t.free.is_empty());
        a.single_board_triads = free;
        a.full_single_board_triads = full;
        (a, ids)
    }

    fn shared_triad(&self, x: u32, y: u32) -> Option<usize> {
        self.single_board_triads
            .iter()
            .position(|t| (t.x, t.y) == (x, y))
    }
}

/// Whether the `w × h` triads at `(x, y)` overlap `avoid` (never, if none).
fn overlaps(avoid: Option<Reservation>, x: u32, y: u32, w: u32, h: u32) -> bool {
    avoid.is_some_and(|r| r.overlaps(x, y, w, h))
}

/// `ceil(n / 3)`: the triads needed for `n` boards (0 or less for `n <= 0`).
fn boards_to_triads(n: i64) -> i64 {
    n / 3 + i64::from(n % 3 > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(shape: AllocShape) -> AllocRequest {
        AllocRequest {
            shape,
            min_ratio: 0.0,
            max_dead_boards: None,
            max_dead_links: None,
            require_torus: false,
            avoid_boards: Default::default(),
        }
    }

    fn boards(list: &[(u32, u32, u32)]) -> BTreeSet<Board> {
        list.iter().map(|&(x, y, z)| Board::new(x, y, z)).collect()
    }

    fn idle(w: u32, h: u32, dead: &[(u32, u32, u32)]) -> Allocator {
        Allocator::new(w, h, &boards(dead), &BTreeSet::new(), 0.0)
    }

    #[test]
    fn validate_messages() {
        let mut r = req(AllocShape::Board(None));
        r.require_torus = true;
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "require_torus must be False when allocating boards."
        );
        let mut r = req(AllocShape::Boards(4));
        r.min_ratio = -1.0;
        assert_eq!(
            r.validate().unwrap_err().to_string(),
            "Aspect ratio cannot be negative."
        );
        // Never evaluated by the reference for n <= 0, nor for triads.
        r.shape = AllocShape::Boards(0);
        assert_eq!(r.validate(), Ok(()));
        r.shape = AllocShape::Triads(1, 1);
        assert_eq!(r.validate(), Ok(()));
        let mut r = req(AllocShape::Triads(2, 2));
        r.require_torus = true;
        assert_eq!(r.validate(), Ok(()));
    }

    #[test]
    fn boards_request_shape_depends_on_leaf() {
        // 4x4 machine after one 1x1: alloc(5) gets a 1x2 rectangle.
        let mut a = idle(4, 4, &[]);
        let first = a.alloc(&req(AllocShape::Triads(1, 1)), 0.0).unwrap();
        assert_eq!((first.x, first.y), (0, 0));
        let got = a.alloc(&req(AllocShape::Boards(5)), 0.0).unwrap();
        assert_eq!((got.width, got.height), (1, 2));
        assert_eq!(got.boards.len(), 6);
    }

    #[test]
    fn triad_in_3x2_machine() {
        let mut a = idle(3, 2, &[]);
        let got = a.alloc(&req(AllocShape::Triads(1, 1)), 0.0).unwrap();
        assert_eq!(got.id, 1);
        assert_eq!(got.boards, boards(&[(0, 0, 0), (0, 0, 1), (0, 0, 2)]));
        assert_eq!(got.periphery.len(), 12);
        assert_eq!(got.torus, WrapAround::NONE);
        assert_eq!((got.x, got.y, got.width, got.height), (0, 0, 1, 1));
    }

    #[test]
    fn full_machine_torus() {
        let mut a = idle(2, 2, &[]);
        let mut r = req(AllocShape::Triads(2, 2));
        r.require_torus = true;
        assert!(a.alloc_possible(&r));
        let got = a.alloc(&r, 0.0).unwrap();
        assert_eq!(got.torus, WrapAround::BOTH);
        assert!(got.periphery.is_empty());
        assert_eq!(got.boards.len(), 12);
        // require_torus needs the whole machine.
        let a = idle(2, 2, &[]);
        r.shape = AllocShape::Triads(1, 1);
        assert!(!a.alloc_possible(&r));
        r.shape = AllocShape::Boards(12);
        assert!(a.alloc_possible(&r));
        r.shape = AllocShape::Boards(9);
        assert!(!a.alloc_possible(&r));
    }

    #[test]
    fn dead_origin_board() {
        let mut a = idle(2, 2, &[(0, 0, 0)]);
        assert!(a.alloc_possible(&req(AllocShape::Triads(1, 1))));
        assert!(!a.alloc_possible(&req(AllocShape::Triads(2, 2))));
        assert_eq!(a.alloc(&req(AllocShape::Triads(2, 2)), 0.0), None);
        // The 1x1 skips the dead corner.
        let got = a.alloc(&req(AllocShape::Triads(1, 1)), 0.0).unwrap();
        assert_ne!((got.x, got.y), (0, 0));
    }

    #[test]
    fn dead_board_limits_and_boards_expected() {
        let mut r = req(AllocShape::Triads(1, 1));
        r.max_dead_boards = Some(0);
        let a = idle(1, 1, &[(0, 0, 1)]);
        assert!(!a.alloc_possible(&r));
        r.max_dead_boards = Some(1);
        assert!(a.alloc_possible(&r));
        // Two boards wanted: the spare board in the triad covers the dead
        // one.
        r.shape = AllocShape::Boards(2);
        r.max_dead_boards = Some(0);
        let mut a = idle(1, 1, &[(0, 0, 1)]);
        assert!(a.alloc_possible(&r));
        let got = a.alloc(&r, 0.0).unwrap();
        assert_eq!(got.boards, boards(&[(0, 0, 0), (0, 0, 2)]));
    }

    #[test]
    fn dead_links_limit() {
        let links: BTreeSet<(Board, Link)> = [(Board::new(0, 0, 0), Link::North)].into();
        let mut a = Allocator::new(2, 2, &BTreeSet::new(), &links, 0.0);
        let mut r = req(AllocShape::Triads(1, 1));
        r.max_dead_links = Some(0);
        // (0,0) is rejected but another corner works.
        assert!(a.alloc_possible(&r));
        let got = a.alloc(&r, 0.0).unwrap();
        assert_ne!((got.x, got.y), (0, 0));
    }

    #[test]
    fn single_boards_share_triads() {
        let mut a = idle(2, 1, &[]);
        let r = req(AllocShape::Board(None));
        let got: Vec<Allocation> = (0..3).map(|_| a.alloc(&r, 0.0).unwrap()).collect();
        for (z, g) in (0u32..).zip(&got) {
            assert_eq!(g.boards, boards(&[(0, 0, z)]));
            assert_eq!(g.periphery.len(), 6);
            assert_eq!(g.torus, WrapAround::NONE);
            assert_eq!((g.x, g.y, g.width, g.height), (0, 0, 1, 1));
        }
        let fourth = a.alloc(&r, 0.0).unwrap();
        assert_eq!(fourth.boards, boards(&[(1, 0, 0)]));
        // A triads request cannot use the partly used triads.
        assert_eq!(a.alloc(&req(AllocShape::Triads(1, 1)), 0.0), None);
    }

    #[test]
    fn single_board_skips_dead_boards_and_triads() {
        let mut a = idle(2, 1, &[(0, 0, 0), (0, 0, 1), (0, 0, 2), (1, 0, 0)]);
        let r = req(AllocShape::Board(None));
        assert!(a.alloc_possible(&r));
        assert_eq!(a.alloc(&r, 0.0).unwrap().boards, boards(&[(1, 0, 1)]));
        assert_eq!(a.alloc(&r, 0.0).unwrap().boards, boards(&[(1, 0, 2)]));
        assert_eq!(a.alloc(&r, 0.0), None);
        let all_dead = idle(1, 1, &[(0, 0, 0), (0, 0, 1), (0, 0, 2)]);
        assert!(!all_dead.alloc_possible(&r));
    }

    #[test]
    fn specific_boards() {
        let mut a = idle(2, 2, &[(1, 1, 1)]);
        let spec = |x, y, z| req(AllocShape::Board(Some(Board::new(x, y, z))));
        assert!(!a.alloc_possible(&spec(1, 1, 1)));
        assert!(!a.alloc_possible(&spec(2, 0, 0)));
        assert!(!a.alloc_possible(&spec(0, 0, 3)));
        assert!(a.alloc_possible(&spec(1, 1, 2)));
        assert_eq!(a.alloc(&spec(1, 1, 1), 0.0), None);
        let got = a.alloc(&spec(1, 0, 2), 0.0).unwrap();
        assert_eq!(got.boards, boards(&[(1, 0, 2)]));
        assert_eq!(a.alloc(&spec(1, 0, 2), 0.0), None);
        // Same triad, other board: reused.
        assert_eq!(
            a.alloc(&spec(1, 0, 0), 0.0).unwrap().boards,
            boards(&[(1, 0, 0)])
        );
        // "Any" takes the remaining board of that triad first.
        let any = a.alloc(&req(AllocShape::Board(None)), 0.0).unwrap();
        assert_eq!(any.boards, boards(&[(1, 0, 1)]));
        // A triad used by a rectangle cannot serve a specific board.
        let t = a.alloc(&req(AllocShape::Triads(1, 1)), 0.0).unwrap();
        let b = t.boards.iter().next().copied().unwrap();
        assert_eq!(a.alloc(&spec(b.x, b.y, 1), 0.0), None);
    }

    #[test]
    fn shared_triad_pop_order_follows_cpython() {
        // Boards 0 then 1 taken, board 0 freed: CPython's set.pop() search
        // finger makes the next "any" requests get 2 and then 0, where
        // "lowest first" would give 0 and then 2.
        let mut a = idle(1, 1, &[]);
        let r = req(AllocShape::Board(None));
        let b0 = a.alloc(&r, 0.0).unwrap();
        let _b1 = a.alloc(&r, 0.0).unwrap();
        a.free(b0.id, 0.0);
        let zs: Vec<u32> = (0..2)
            .map(|_| a.alloc(&r, 1.0).unwrap().boards.first().unwrap().z)
            .collect();
        assert_eq!(zs, vec![2, 0]);
    }

    #[test]
    fn python_small_set_model() {
        let mut s = PySmallSet::new();
        for z in 0..3 {
            s.add(z);
        }
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), Some(1));
        s.add(0);
        assert_eq!(s.pop(), Some(2));
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), None);
        let mut s = PySmallSet::new();
        for z in 0..3 {
            s.add(z);
        }
        s.pop();
        s.pop();
        s.add(0);
        s.add(1);
        assert_eq!((s.pop(), s.pop(), s.pop()), (Some(2), Some(1), Some(0)));
        assert!(s.is_empty());
        assert!(!s.discard(1));
    }

    #[test]
    fn delayed_free_timing() {
        let mut a = Allocator::new(1, 1, &BTreeSet::new(), &BTreeSet::new(), 30.0);
        let r = req(AllocShape::Triads(1, 1));
        let got = a.alloc(&r, 100.0).unwrap();
        a.free(got.id, 200.0);
        assert!(!a.is_idle());
        assert!(!a.check_free(229.9));
        assert_eq!(a.alloc(&r, 229.9), None);
        // alloc() runs check_free first.
        let again = a.alloc(&r, 230.0).unwrap();
        assert_eq!(again.id, 2);
        a.free(again.id, 300.0);
        assert!(a.check_free(330.0));
        assert!(!a.check_free(330.0));
        assert!(a.is_idle());
        // Unknown and repeated IDs are ignored.
        a.free(99, 400.0);
        a.free(again.id, 400.0);
        assert!(a.is_idle());
    }

    #[test]
    fn frees_are_released_in_order() {
        let mut a = Allocator::new(2, 1, &BTreeSet::new(), &BTreeSet::new(), 10.0);
        let r = req(AllocShape::Triads(1, 1));
        let first = a.alloc(&r, 0.0).unwrap();
        let second = a.alloc(&r, 0.0).unwrap();
        a.free(first.id, 0.0);
        a.free(second.id, 5.0);
        assert!(a.check_free(10.0));
        assert_eq!(a.alloc(&req(AllocShape::Triads(2, 1)), 10.0), None);
        assert!(a.alloc(&req(AllocShape::Triads(2, 1)), 15.0).is_some());
    }

    #[test]
    fn set_dead_affects_only_new_allocations() {
        let mut a = idle(1, 1, &[]);
        let r = req(AllocShape::Board(None));
        let b0 = a.alloc(&r, 0.0).unwrap();
        a.set_dead(&boards(&[(0, 0, 0), (0, 0, 1)]), &BTreeSet::new());
        // Board 1 is now dead: only board 2 is handed out.
        assert_eq!(a.alloc(&r, 0.0).unwrap().boards, boards(&[(0, 0, 2)]));
        assert_eq!(a.alloc(&r, 0.0), None);
        // The existing allocation of a now-dead board still frees cleanly.
        a.free(b0.id, 0.0);
        assert!(a.check_free(0.0));
        assert_eq!(a.dead_boards().len(), 2);
        assert!(a.dead_links().is_empty());
        assert!(!a.is_idle());
    }

    #[test]
    fn serde_round_trip() {
        let mut a = idle(2, 2, &[(1, 1, 1)]);
        a.alloc(&req(AllocShape::Board(None)), 0.0).unwrap();
        a.alloc(&req(AllocShape::Boards(4)), 0.0).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Allocator = serde_json::from_str(&json).unwrap();
        let r = req(AllocShape::Board(None));
        assert_eq!(a.alloc(&r, 1.0), b.alloc(&r, 1.0));
    }

    #[test]
    fn invalid_requests_never_allocate() {
        let mut a = idle(2, 2, &[]);
        let mut r = req(AllocShape::Board(None));
        r.require_torus = true;
        assert!(!a.alloc_possible(&r));
        assert_eq!(a.alloc(&r, 0.0), None);
        for shape in [
            AllocShape::Boards(0),
            AllocShape::Boards(-3),
            AllocShape::Boards(13),
            AllocShape::Triads(0, 1),
            AllocShape::Triads(-1, 1),
            AllocShape::Triads(3, 1),
            AllocShape::Triads(i64::MAX, 1),
        ] {
            assert!(!a.alloc_possible(&req(shape)), "{shape:?}");
            assert_eq!(a.alloc(&req(shape), 0.0), None, "{shape:?}");
        }
        assert!(a.is_idle());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Alloc(AllocRequest),
            Free(usize),
            Advance(f64),
            /// New dead boards; `true`: with [`Allocator::set_unusable`].
            SetDead(Vec<(u32, u32, u32)>, bool),
        }

        fn shape() -> impl Strategy<Value = AllocShape> {
            prop_oneof![
                Just(AllocShape::Board(None)),
                (0u32..5, 0u32..5, 0u32..3)
                    .prop_map(|(x, y, z)| AllocShape::Board(Some(Board::new(x, y, z)))),
                (-1i64..40).prop_map(AllocShape::Boards),
                (0i64..5, 0i64..5).prop_map(|(w, h)| AllocShape::Triads(w, h)),
            ]
        }

        fn request() -> impl Strategy<Value = AllocRequest> {
            (
                shape(),
                prop_oneof![Just(0.0), Just(0.333), Just(1.0)],
                proptest::option::of(0u32..4),
                proptest::option::of(0u32..3),
                proptest::bool::weighted(0.1),
            )
                .prop_map(|(shape, min_ratio, mdb, mdl, torus)| AllocRequest {
                    shape,
                    min_ratio,
                    max_dead_boards: mdb,
                    max_dead_links: mdl,
                    require_torus: torus && !matches!(shape, AllocShape::Board(_)),
                    avoid_boards: Default::default(),
                })
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => request().prop_map(Op::Alloc),
                2 => any::<usize>().prop_map(Op::Free),
                1 => (0.0f64..20.0).prop_map(Op::Advance),
                1 => (proptest::collection::vec((0u32..4, 0u32..4, 0u32..3), 0..4), any::<bool>())
                    .prop_map(|(list, revive)| Op::SetDead(list, revive)),
            ]
        }

        fn dead_set(list: &[(u32, u32, u32)], w: u32, h: u32) -> BTreeSet<Board> {
            list.iter()
                .filter(|&&(x, y, _)| x < w && y < h)
                .map(|&(x, y, z)| Board::new(x, y, z))
                .collect()
        }

        proptest! {
            #[test]
            fn allocations_never_overlap_and_everything_frees(
                w in 1u32..5,
                h in 1u32..5,
                dead in proptest::collection::vec((0u32..4, 0u32..4, 0u32..3), 0..5),
                ops in proptest::collection::vec(op(), 0..60),
            ) {
                const DELAY: f64 = 10.0;
                let initial_dead = dead_set(&dead, w, h);
                let mut dead_now = initial_dead.clone();
                let mut a = Allocator::new(w, h, &initial_dead, &BTreeSet::new(), DELAY);
                let mut now = 1000.0;
                // Allocations not yet freed, and freed ones whose boards are
                // still held until their delay passes.
                let mut live: Vec<Allocation> = Vec::new();
                let mut held: Vec<(f64, Allocation)> = Vec::new();
                for op in ops {
                    match op {
                        Op::Alloc(req) => {
                            held.retain(|(t, _)| now - t < DELAY);
                            if let Some(got) = a.alloc(&req, now) {
                                prop_assert!(!got.boards.is_empty());
                                for b in &got.boards {
                                    prop_assert!(b.x < w && b.y < h && b.z < 3, "{b:?}");
                                    prop_assert!(!dead_now.contains(b), "dead {b:?}");
                                    for other in live.iter().chain(held.iter().map(|(_, o)| o)) {
                                        prop_assert!(!other.boards.contains(b), "{b:?} twice");
                                    }
                                }
                                live.push(got);
                            }
                        }
                        Op::Free(i) if !live.is_empty() => {
                            let gone = live.remove(i % live.len());
                            a.free(gone.id, now);
                            held.push((now, gone));
                        }
                        Op::Free(_) => {}
                        Op::Advance(dt) => {
                            now += dt;
                            a.check_free(now);
                        }
                        Op::SetDead(list, revive) => {
                            dead_now = dead_set(&list, w, h);
                            if revive {
                                a.set_unusable(&dead_now, &BTreeSet::new());
                            } else {
                                a.set_dead(&dead_now, &BTreeSet::new());
                            }
                        }
                    }
                }
                for gone in live.drain(..) {
                    a.free(gone.id, now);
                }
                a.check_free(now + DELAY + 1.0);
                prop_assert!(a.is_idle());
                let full = AllocRequest {
                    shape: AllocShape::Triads(i64::from(w), i64::from(h)),
                    min_ratio: 0.0,
                    max_dead_boards: None,
                    max_dead_links: None,
                    require_torus: false,
                    avoid_boards: Default::default(),
                };
                let origin_alive = !dead_now.contains(&Board::new(0, 0, 0));
                prop_assert_eq!(a.alloc_possible(&full), origin_alive);
                prop_assert_eq!(a.alloc(&full, now + DELAY + 2.0).is_some(), origin_alive);
            }
        }
    }
}
