//! `POST /jobs`: allocserv's `CreateJobRequest`, validated with its rules
//! and messages, turned into the same [`JobSpec`] the legacy `create_job`
//! builds, and created by the same controller operation.
//!
//! Forms: `num-boards`; `dimensions` (triads); `board` by triad
//! `{x, y, z}`, physical `{cabinet, frame, board}` or `{address}`; none of
//! these (one board). With `machine-name` or `tags` (exactly one, as
//! allocserv insists), `max-dead-boards` and `keepalive-interval` (ISO-8601,
//! 30 to 300 seconds). `dimensions` together with `board` is a rectangle
//! whose bottom-left triad is that board's; unlike allocserv's it does not
//! wrap around the machine's edges. Deliberate difference: the NMPI
//! charging fields are refused with a 400 saying so.

use super::board_by::BoardBy;
use super::duration::parse_seconds;
use super::jobs::json_body;
use super::{ApiRequest, Failure, Outcome, Reply, Role};
use crate::core::allocator::{AllocRequest, AllocShape};
use crate::core::coordinates::Board;
use crate::core::job::{JobSpec, Target};
use crate::core::machine::{Machine, Physical};
use crate::service::Service;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// allocserv's keepalive bounds (`spalloc.keepalive.min`/`max`), in seconds.
pub const KEEPALIVE_RANGE: (f64, f64) = (30.0, 300.0);

/// The minimum aspect ratio given to `num-boards` requests (the legacy
/// client's default).
pub const NUM_BOARDS_MIN_RATIO: f64 = 0.333;

/// The request body, as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CreateJobRequest {
    owner: Option<String>,
    group: Option<String>,
    nmpi_collab: Option<String>,
    nmpi_job_id: Option<i32>,
    /// An ISO-8601 string or, as Jackson also accepts, a number of seconds.
    keepalive_interval: Option<Value>,
    num_boards: Option<i32>,
    dimensions: Option<Dimensions>,
    board: Option<SpecificBoard>,
    machine_name: Option<String>,
    tags: Option<Vec<String>>,
    max_dead_boards: Option<i32>,
    /// This server's: boards the job must never be given, each named as
    /// `board` names one.
    avoid_boards: Option<Vec<SpecificBoard>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dimensions {
    width: i32,
    height: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecificBoard {
    x: Option<i32>,
    y: Option<i32>,
    z: Option<i32>,
    cabinet: Option<i32>,
    frame: Option<i32>,
    board: Option<i32>,
    address: Option<String>,
}

/// A non-negative coordinate, or allocserv-style 400.
fn coordinate(name: &str, v: i32) -> Result<u32, Failure> {
    u32::try_from(v).map_err(|_| Failure::bad(format!("{name} must not be negative")))
}

impl SpecificBoard {
    /// The board as echoed in `original-request`.
    fn echo(&self) -> Value {
        json!({"x": self.x, "y": self.y, "z": self.z, "cabinet": self.cabinet,
               "frame": self.frame, "board": self.board, "address": self.address})
    }

    fn identify(&self) -> Result<BoardBy, Failure> {
        if let (Some(x), Some(y), Some(z)) = (self.x, self.y, self.z) {
            let z = coordinate("z", z)?;
            if z > 2 {
                return Err(Failure::bad("z must be 0, 1 or 2"));
            }
            return Ok(BoardBy::Triad(Board {
                x: coordinate("x", x)?,
                y: coordinate("y", y)?,
                z,
            }));
        }
        if let (Some(c), Some(f), Some(b)) = (self.cabinet, self.frame, self.board) {
            return Ok(BoardBy::Physical(Physical {
                cabinet: coordinate("cabinet", c)?,
                frame: coordinate("frame", f)?,
                board: coordinate("board", b)?,
            }));
        }
        if let Some(address) = &self.address {
            if address.parse::<std::net::IpAddr>().is_err() {
                return Err(Failure::bad("address must be an IP address"));
            }
            return Ok(BoardBy::Address(address.clone()));
        }
        Err(Failure::bad(
            "at least one way of identifying a board must be given",
        ))
    }
}

/// A validated request: the job's spec and the request to echo.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest {
    /// What the controller creates.
    pub spec: JobSpec,
    /// The request with allocserv's defaults applied, echoed as `original-request`.
    pub original_request: Value,
}

/// Validates a create request from `user` against the configured machines.
pub fn validate(
    service: &Service,
    user: &super::ApiUser,
    body: &[u8],
) -> Result<ValidRequest, Failure> {
    let req: CreateJobRequest = json_body(body)?;
    let keepalive = match &req.keepalive_interval {
        None | Some(Value::Null) => return Err(Failure::bad("keepalive-interval is required")),
        Some(Value::String(s)) => parse_seconds(s).map_err(Failure::bad)?,
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| Failure::bad("keepalive-interval must be a duration"))?,
        Some(_) => {
            return Err(Failure::bad(
                "keepalive-interval must be an ISO-8601 duration such as \"PT120S\"",
            ))
        }
    };
    let (min, max) = KEEPALIVE_RANGE;
    if !(min..=max).contains(&keepalive) {
        return Err(Failure::bad("keepalive-interval must be 30 to 300 seconds"));
    }
    if req.num_boards.is_some_and(|n| n < 1) {
        return Err(Failure::bad("number of boards must be at least 1 if given"));
    }
    if req.machine_name.is_some() == req.tags.is_some() {
        return Err(Failure::bad("either machine-name or tags must be supplied"));
    }
    if req
        .machine_name
        .as_deref()
        .is_some_and(|m| m.trim().is_empty())
    {
        return Err(Failure::bad("machine-name, if given, must be non-blank"));
    }
    if req.tags.iter().flatten().any(|t| t.trim().is_empty()) {
        return Err(Failure::bad("tags must not be blank"));
    }
    if req.num_boards.is_some() && (req.dimensions.is_some() || req.board.is_some()) {
        return Err(Failure::bad(
            "either specify num-boards or dimensions and/or board",
        ));
    }
    let owner = match req.owner.as_deref().map(str::trim) {
        Some(o) if !o.is_empty() => {
            if user.role != Role::Admin {
                return Err(Failure::bad(
                    "Only admin and NMPI users can specify an owner",
                ));
            }
            o.to_owned()
        }
        _ => user.name.clone(),
    };
    let charged = [
        req.group.is_some(),
        req.nmpi_collab.is_some(),
        req.nmpi_job_id.is_some(),
    ];
    if charged.iter().filter(|c| **c).count() > 1 {
        return Err(Failure::bad(
            "At most one of group, nmpiCollabId or nmpiJobId can be specified",
        ));
    }
    if req.nmpi_collab.is_some() || req.nmpi_job_id.is_some() {
        return Err(Failure::bad(
            "NMPI collabs and jobs are not supported by this server; give a group or nothing",
        ));
    }
    let max_dead_boards = match req.max_dead_boards {
        None => 0,
        Some(n) => u32::try_from(n)
            .map_err(|_| Failure::bad("the maximum number of dead boards must not be negative"))?,
    };
    let tags: Vec<String> = match (&req.tags, &req.machine_name) {
        (Some(t), _) => t.iter().map(|t| t.trim().to_owned()).collect(),
        (None, _) => Vec::new(),
    };
    let mut target = match &req.machine_name {
        Some(name) => {
            if service.controller.machine(name).is_none() {
                return Err(Failure::bad(format!("no such machine: {name}")));
            }
            Target::Machine(name.clone())
        }
        None => {
            let wanted: BTreeSet<String> = tags.iter().cloned().collect();
            if candidates(service, &Target::Tags(wanted.clone())).is_empty() {
                return Err(Failure::bad(
                    "no machine available which matches allocation request",
                ));
            }
            Target::Tags(wanted)
        }
    };
    let (shape, args) = match (&req.num_boards, &req.dimensions, &req.board) {
        // One board is a board, not a triad (as the legacy `create_job(1)`).
        (Some(1), _, _) => (AllocShape::Board(None), vec![json!(1)]),
        (Some(n), _, _) => (AllocShape::Boards(i64::from(*n)), vec![json!(n)]),
        (None, Some(d), root) => {
            if d.width < 1 || d.height < 1 {
                return Err(Failure::bad(
                    "dimensions must be at least 1 triad wide and high",
                ));
            }
            let (w, h) = (i64::from(d.width), i64::from(d.height));
            let shape = match root {
                None => AllocShape::Triads(w, h),
                Some(b) => {
                    let (machine, board) = resolve_board(service, &target, b.identify()?)?;
                    if let Some(m) = machine {
                        target = Target::Machine(m);
                    }
                    AllocShape::TriadsAt(w, h, board)
                }
            };
            (shape, vec![json!(d.width), json!(d.height)])
        }
        (None, None, Some(b)) => {
            let (machine, board) = resolve_board(service, &target, b.identify()?)?;
            if let Some(m) = machine {
                target = Target::Machine(m);
            }
            (
                AllocShape::Board(Some(board)),
                vec![json!(board.x), json!(board.y), json!(board.z)],
            )
        }
        (None, None, None) => (AllocShape::Board(None), Vec::new()),
    };
    let request = AllocRequest {
        shape,
        min_ratio: NUM_BOARDS_MIN_RATIO,
        max_dead_boards: Some(max_dead_boards),
        max_dead_links: None,
        require_torus: false,
        avoid_boards: avoided_boards(service, &target, req.avoid_boards.as_deref())?,
    };
    request
        .validate()
        .map_err(|e| Failure::bad(e.to_string()))?;
    let mut kwargs = Map::new();
    kwargs.insert("machine".into(), json!(req.machine_name));
    kwargs.insert("tags".into(), json!(req.tags));
    kwargs.insert("max_dead_boards".into(), json!(max_dead_boards));
    let board_echo = req.board.as_ref().map(SpecificBoard::echo);
    let original_request = json!({
        "owner": owner,
        "group": req.group,
        "nmpi-collab": req.nmpi_collab,
        "nmpi-job-id": req.nmpi_job_id,
        "keepalive-interval": keepalive,
        "num-boards": req.num_boards,
        "dimensions": req.dimensions.as_ref().map(|d| json!({"width": d.width, "height": d.height})),
        "board": board_echo,
        "machine-name": req.machine_name,
        "tags": tags,
        "max-dead-boards": max_dead_boards,
    });
    let mut original_request = original_request;
    if let (Some(avoid), Value::Object(map)) = (&req.avoid_boards, &mut original_request) {
        let echo: Vec<Value> = avoid.iter().map(SpecificBoard::echo).collect();
        map.insert("avoid-boards".into(), Value::Array(echo));
    }
    Ok(ValidRequest {
        spec: JobSpec {
            owner,
            keepalive: Some(keepalive),
            target,
            request,
            impossible: false,
            args,
            kwargs,
        },
        original_request,
    })
}

/// The boards of `avoid-boards`: a triad names the same board on every
/// machine; a physical location or address names the board at it on each
/// machine the job may run on that has one (so on a job that may run on
/// several machines it can avoid more than one board). One that names no
/// board of any of them is refused.
fn avoided_boards(
    service: &Service,
    target: &Target,
    avoid: Option<&[SpecificBoard]>,
) -> Result<BTreeSet<Board>, Failure> {
    let mut boards = BTreeSet::new();
    for b in avoid.unwrap_or_default() {
        let by = b.identify()?;
        if let BoardBy::Triad(board) = by {
            boards.insert(board);
            continue;
        }
        let before = boards.len();
        for m in candidates(service, target) {
            boards.extend(by.find_on(m));
        }
        if boards.len() == before {
            return Err(Failure::bad(
                "avoid-boards: no such board on any machine matching the request",
            ));
        }
    }
    Ok(boards)
}

/// The machines a target may run on.
fn candidates<'a>(service: &'a Service, target: &Target) -> Vec<&'a Arc<Machine>> {
    service
        .controller
        .machines()
        .filter(|m| match target {
            Target::Machine(name) => &m.name == name,
            Target::Tags(tags) => tags.is_subset(&m.tags),
        })
        .collect()
}

/// The logical board a `board` names, and the machine it was found on when
/// that took a search (physical locations and addresses are per machine).
fn resolve_board(
    service: &Service,
    target: &Target,
    by: BoardBy,
) -> Result<(Option<String>, Board), Failure> {
    if let BoardBy::Triad(b) = by {
        return Ok((None, b));
    }
    candidates(service, target)
        .into_iter()
        .find_map(|m| by.find_on(m).map(|b| (Some(m.name.clone()), b)))
        .ok_or_else(|| Failure::bad("no such board on any machine matching the request"))
}

/// `POST /jobs`: 201 with `Location` and `{"job-id", "job-ref"}`.
pub fn create_job(service: &mut Service, request: &ApiRequest, now: f64) -> Outcome {
    let ValidRequest {
        spec,
        original_request,
    } = validate(service, request.user, request.body)?;
    let host = request.host.map(str::to_owned);
    // The group charged (see `core::usage`): the one asked for, or the
    // owner's first with quota left. An administrator creating a job for
    // someone else may name any group (their groups are not the owner's).
    let requested = original_request.get("group").and_then(Value::as_str);
    let user = request.user;
    let member_of: &[String] = if spec.owner == user.name {
        &user.groups
    } else {
        &[]
    };
    let controller = &mut service.controller;
    let group = controller
        .choose_group(
            &spec.owner,
            requested,
            member_of,
            user.role == Role::Admin,
            now,
        )
        .map_err(Failure::bad)?;
    let id = controller
        .create_charged_job(spec, host, Some(original_request), group, now)
        .map_err(Failure::bad)?;
    let url = format!("{}/jobs/{id}", request.base);
    let mut reply = Reply::json(json!({"job-id": id, "job-ref": url}));
    reply.status = 201;
    reply.location = Some(url);
    Ok(reply)
}
