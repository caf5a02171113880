//! A job as the controller keeps it.

use crate::core::allocator::{AllocRequest, Allocation};
use crate::core::coordinates::{Board, WrapAround};
use crate::core::job_history::StateChange;
use crate::core::python_set::{iteration_order, tuple_hash};
use crate::core::usage::JobUsage;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spalloc_protocol::{ChipCoord, JobState, Link};
use std::collections::BTreeSet;

/// Which machines a job may run on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Exactly this machine (`machine=` given).
    Machine(String),
    /// Any machine whose tags include all of these (`tags=`, default `{"default"}`).
    Tags(BTreeSet<String>),
}

/// The tag of the machines a job runs on when it names neither a machine
/// nor tags.
const DEFAULT_TAG: &str = "default";

impl Default for Target {
    /// Machines tagged `default` (`create_job` without `machine=` or `tags=`).
    fn default() -> Target {
        Target::Tags([DEFAULT_TAG.to_owned()].into())
    }
}

impl Target {
    /// Whether it is [`Target::default`], found without building one (a
    /// job's record asks on every write).
    pub fn is_default(&self) -> bool {
        matches!(self, Target::Tags(tags) if tags.len() == 1 && tags.contains(DEFAULT_TAG))
    }
}

/// A validated `create_job` request. Building one is the only place where
/// arguments are checked, and it happens before a job ID is taken, so a bad
/// request never leaves a "ghost job" behind (the reference's bug B1).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Who asked.
    pub owner: String,
    /// Seconds between keepalives before the job is destroyed; `None` = never.
    pub keepalive: Option<f64>,
    /// Where it may run.
    pub target: Target,
    /// What it needs.
    pub request: AllocRequest,
    /// A request no machine can ever satisfy whatever its shape (for example
    /// a negative `max_dead_boards`); it is cancelled at once, as the reference does.
    pub impossible: bool,
    /// The positional arguments as sent, echoed by `list_jobs`.
    pub args: Vec<Value>,
    /// The keyword arguments as sent minus `owner` and `keepalive`, echoed by `list_jobs`.
    pub kwargs: Map<String, Value>,
}

/// Where and what a job was given. Its durable form (compact, and what a
/// restore can recompute left out) is in [`crate::core::allocation_record`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobAllocation {
    /// The machine.
    pub machine: String,
    /// The allocator's ID for the allocation.
    pub allocation_id: u64,
    /// The boards.
    pub boards: BTreeSet<Board>,
    /// The boards in the order the reference iterates them (its Python set
    /// order): BMP commands, `boards` and `connections` follow it.
    pub boards_in_order: Vec<Board>,
    /// Links leaving the allocation, disabled on power-on, in the order the
    /// reference iterates them.
    pub periphery: Vec<(Board, Link)>,
    /// Which wrap-around links the allocation has.
    pub torus: WrapAround,
    /// The rectangle of triads the allocator handed out, as `[x, y, width,
    /// height]` (for a single board: its triad, 1 × 1): with the boards, what
    /// rebuilding the allocator from the job records needs.
    pub triads: [u32; 4],
    /// Width in chips.
    pub width: u32,
    /// Height in chips.
    pub height: u32,
    /// Every board's Ethernet chip (relative to the origin) and hostname.
    pub connections: Vec<(ChipCoord, String)>,
}

impl JobAllocation {
    /// The lexicographically smallest board: the allocation's origin.
    pub fn origin(&self) -> Option<Board> {
        self.boards.iter().next().copied()
    }

    /// The component-wise minimum of the boards, which `where_is` uses.
    pub fn min_corner(&self) -> Option<Board> {
        let x = self.boards.iter().map(|b| b.x).min()?;
        let y = self.boards.iter().map(|b| b.y).min()?;
        let z = self.boards.iter().map(|b| b.z).min()?;
        Some(Board { x, y, z })
    }
}

/// A live job (queued, powering or ready), or one being torn down. Its
/// durable form is in [`crate::core::job_record`].
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its ID.
    pub id: u64,
    /// Who created it.
    pub owner: String,
    /// Unix time of creation.
    pub start_time: f64,
    /// Keepalive interval, `None` = never expires.
    pub keepalive: Option<f64>,
    /// When it expires unless touched. Not recorded: a restart restarts
    /// every keepalive timer.
    pub keepalive_until: Option<f64>,
    /// IP of the last client that created or touched it.
    pub keepalivehost: Option<String>,
    /// Its state.
    pub state: JobState,
    /// Target power state while allocated.
    pub power: Option<bool>,
    /// `create_job` positional arguments as sent.
    pub args: Vec<Value>,
    /// `create_job` keyword arguments as sent, minus owner and keepalive.
    pub kwargs: Map<String, Value>,
    /// Where it may run (from the arguments), to queue it again on restore.
    pub target: Target,
    /// What it asked for (from the arguments), to queue it again on restore.
    pub request: AllocRequest,
    /// The allocation, once it has one.
    pub allocation: Option<JobAllocation>,
    /// BMP batches still outstanding; the job is ready when this reaches 0.
    /// Not recorded: a restart issues the outstanding work again.
    pub bmp_requests_until_ready: u32,
    /// The v2 REST API's create request with its defaults applied, echoed
    /// as `original-request`; `None` for a job created on the legacy port
    /// (which is what shows it to v2 administrators only).
    pub original_request: Option<Value>,
    /// The group it is charged to and the board-seconds it has used (see
    /// [`crate::core::usage`]).
    pub usage: JobUsage,
    /// Its changes of state and power, oldest first, starting with its
    /// creation (empty for a job recorded before histories were kept).
    pub history: Vec<StateChange>,
}

impl Job {
    /// A newly created, queued job.
    pub fn new(id: u64, spec: &JobSpec, host: Option<String>, now: f64) -> Job {
        Job {
            id,
            owner: spec.owner.clone(),
            start_time: now,
            keepalive: spec.keepalive,
            keepalive_until: spec.keepalive.map(|k| now + k),
            keepalivehost: host,
            state: JobState::Queued,
            power: None,
            args: spec.args.clone(),
            kwargs: spec.kwargs.clone(),
            target: spec.target.clone(),
            request: spec.request.clone(),
            allocation: None,
            bmp_requests_until_ready: 0,
            original_request: None,
            usage: JobUsage::default(),
            history: vec![StateChange {
                state: JobState::Queued,
                power: None,
                time: now,
            }],
        }
    }

    /// Unix time of its last keepalive (creation counts), if it can expire.
    pub fn last_keepalive(&self) -> Option<f64> {
        Some(self.keepalive_until? - self.keepalive?)
    }

    /// Resets the keepalive timer and records who did it.
    pub fn touch(&mut self, host: Option<&str>, now: f64) {
        self.keepalive_until = self.keepalive.map(|k| now + k);
        if let Some(h) = host {
            self.keepalivehost = Some(h.to_owned());
        }
    }

    /// Whether its keepalive has run out.
    pub fn expired(&self, now: f64) -> bool {
        self.keepalive_until.is_some_and(|until| until < now)
    }
}

/// Turns an allocator result into the job's geometry (spalloc-server.md §4.9).
pub fn job_allocation(
    machine: &crate::core::machine::Machine,
    allocation: &Allocation,
) -> JobAllocation {
    use crate::core::coordinates::board_to_chip;
    let origin = allocation
        .boards
        .iter()
        .next()
        .copied()
        .unwrap_or(Board { x: 0, y: 0, z: 0 });
    let (width, height) = size_in_chips(
        allocation.boards.len(),
        [allocation.width, allocation.height],
        allocation.torus,
    );
    let boards_in_order = reference_order(&allocation.board_order, &allocation.boards);
    let periphery = reference_link_order(&boards_in_order, &allocation.periphery);
    let connections = boards_in_order
        .iter()
        .filter_map(|b| {
            let ip = machine.spinnaker_ips.get(b)?;
            let (cx, cy) = board_to_chip(
                i64::from(b.x) - i64::from(origin.x),
                i64::from(b.y) - i64::from(origin.y),
                i64::from(b.z) - i64::from(origin.z),
            );
            Some((
                [u32::try_from(cx).ok()?, u32::try_from(cy).ok()?],
                ip.clone(),
            ))
        })
        .collect();
    JobAllocation {
        machine: machine.name.clone(),
        allocation_id: allocation.id,
        boards: allocation.boards.clone(),
        boards_in_order,
        periphery,
        torus: allocation.torus,
        triads: [
            allocation.x,
            allocation.y,
            allocation.width,
            allocation.height,
        ],
        width,
        height,
        connections,
    }
}

/// An allocation's width and height in chips, from its number of boards and
/// its rectangle's `[width, height]` in triads.
pub(crate) fn size_in_chips(boards: usize, triads: [u32; 2], torus: WrapAround) -> (u32, u32) {
    if boards > 1 {
        // The reference derives the size from the largest board, which is
        // wrong when the top-right of the rectangle is dead (bug B3); the
        // rectangle the allocator chose is the truth.
        crate::core::coordinates::triad_dimensions_to_chips(triads[0], triads[1], torus)
    } else {
        (8, 8)
    }
}

/// `hash((x, y, z))` as CPython computes it.
fn board_hash(b: &Board) -> u64 {
    tuple_hash(&[b.x.into(), b.y.into(), b.z.into()])
}

/// The order the reference's set of boards iterates in, given the order the
/// allocator found them (falling back to sorted order if that is unknown).
fn reference_order(found: &[Board], boards: &BTreeSet<Board>) -> Vec<Board> {
    if found.len() == boards.len() {
        iteration_order(found, board_hash)
    } else {
        boards.iter().copied().collect()
    }
}

/// The order the reference's periphery set iterates in: it is filled board by
/// board (in board-set order), link by link.
pub(crate) fn reference_link_order(
    boards: &[Board],
    periphery: &BTreeSet<(Board, Link)>,
) -> Vec<(Board, Link)> {
    let added: Vec<(Board, Link)> = boards
        .iter()
        .flat_map(|b| Link::ALL.into_iter().map(move |l| (*b, l)))
        .filter(|p| periphery.contains(p))
        .collect();
    iteration_order(&added, |(b, l)| {
        tuple_hash(&[b.x.into(), b.y.into(), b.z.into(), l.to_wire() as u64])
    })
}

/// Serde for [`JobState`] as its protocol integer (the protocol crate has no
/// serde of its own). Use with `#[serde(with = "serde_job_state")]`.
pub mod serde_job_state {
    use serde::{Deserialize, Deserializer, Serializer};
    use spalloc_protocol::JobState;

    /// Writes the state's protocol integer.
    pub fn serialize<S: Serializer>(state: &JobState, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(state.to_wire())
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<JobState, D::Error> {
        Ok(JobState::from_wire(i64::deserialize(deserializer)?))
    }
}
