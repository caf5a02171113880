//! The job endpoints other than creation ([`super::create`]): the paged
//! list, state (long-pollable), keepalive, destroy, the sub-machine, power,
//! the job-relative chip lookup and issue reports.
//!
//! A job is visible to its owner and to administrators only; everybody else
//! gets 404, as from allocserv. Legacy-protocol jobs have no authenticated
//! owner, so only administrators see them.

use super::query::Query;
use super::shapes::{self, JobFacts};
use super::{hash_of, ApiRequest, ApiUser, Body, Failure, Outcome, Reply};
use crate::core::coordinates::Board;
use crate::core::issue_report::IssueReport;
use crate::core::job::Job;
use crate::core::machine::Physical;
use crate::core::tombstone::Tombstone;
use crate::service::Service;
use serde::Deserialize;
use serde_json::{json, Value};
use spalloc_protocol::{JobState, WhereIsQuery};

/// allocserv's cap on `limit`.
pub const LIMIT_LIMIT: i64 = 200;

/// A job as the caller may see it.
enum Visible<'a> {
    Live(&'a Job),
    Destroyed {
        reason: Option<&'a str>,
        tombstone: &'a Tombstone,
    },
}

fn no_such_job() -> Failure {
    Failure::not_found("no such job")
}

/// The job if `user` may see it; 404 otherwise (whether or not it exists).
fn visible<'a>(service: &'a Service, user: &ApiUser, id: u64) -> Result<Visible<'a>, Failure> {
    if let Some(job) = service.controller.job(id) {
        return if user.may_see_job(&job.owner, job.original_request.is_some()) {
            Ok(Visible::Live(job))
        } else {
            Err(no_such_job())
        };
    }
    match service.controller.destroyed_job(id) {
        Some((reason, Some(tombstone)))
            if user.may_see_job(&tombstone.owner, tombstone.original_request.is_some()) =>
        {
            Ok(Visible::Destroyed { reason, tombstone })
        }
        _ => Err(no_such_job()),
    }
}

/// The live job if `user` may control it: 404 for an unknown or invisible
/// job, 410 for a destroyed one.
pub(crate) fn live<'a>(service: &'a Service, user: &ApiUser, id: u64) -> Result<&'a Job, Failure> {
    match visible(service, user, id)? {
        Visible::Live(job) => Ok(job),
        Visible::Destroyed { .. } => Err(Failure {
            status: 410,
            message: "job is destroyed".into(),
        }),
    }
}

fn job_url(request: &ApiRequest, id: u64) -> String {
    format!("{}/jobs/{id}", request.base)
}

/// The IDs `user` may see, newest first, destroyed ones too if `deleted`.
fn visible_ids(service: &Service, user: &ApiUser, deleted: bool) -> Vec<u64> {
    let c = &service.controller;
    let mut ids: Vec<u64> = c
        .live_jobs()
        .filter(|j| user.may_see_job(&j.owner, j.original_request.is_some()))
        .map(|j| j.id)
        .collect();
    if deleted {
        ids.extend(
            c.destroyed_job_ids()
                .filter(|id| visible(service, user, *id).is_ok()),
        );
    }
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

/// What a long-poll on the job list waits for: the caller's jobs changing.
pub fn list_fingerprint(service: &Service, user: &ApiUser) -> u64 {
    hash_of(visible_ids(service, user, true))
}

/// `GET /jobs?wait&deleted&limit=100&start=0`: job URLs, newest first, in
/// pages with `next`/`prev` links in the body and a `Link` header.
/// Unlike allocserv, which lists every live job and lets the details 404,
/// only the jobs the caller may see are listed: SpiNNMan starts a
/// keepalive thread for every URL it is given.
pub fn list(service: &Service, request: &ApiRequest, q: &Query) -> Outcome {
    let deleted = q.flag("deleted")?;
    q.flag("wait")?;
    let limit = match q.int("limit", 100, i64::MIN, i64::MAX)? {
        l if !(1..=LIMIT_LIMIT).contains(&l) => {
            return Err(Failure::bad(format!(
                "limit must not be bigger than {LIMIT_LIMIT}"
            )))
        }
        l => l as usize,
    };
    let start = match q.int("start", 0, i64::MIN, i64::MAX)? {
        s if s < 0 => return Err(Failure::bad("start must not be less than 0")),
        s => usize::try_from(s).unwrap_or(usize::MAX),
    };
    let ids = visible_ids(service, request.user, deleted);
    let page: Vec<String> = ids
        .iter()
        .skip(start)
        .take(limit)
        .map(|id| job_url(request, *id))
        .collect();
    let page_url = |s: usize| {
        let mut pairs: Vec<(String, String)> = q
            .pairs()
            .iter()
            .filter(|(k, _)| k != "start" && k != "wait")
            .cloned()
            .collect();
        pairs.push(("wait".into(), "false".into()));
        pairs.push(("start".into(), s.to_string()));
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{}/jobs?{}", request.base, query.join("&"))
    };
    let mut body = json!({ "jobs": page });
    let mut links = Vec::new();
    if start > 0 {
        let prev = page_url(start.saturating_sub(limit));
        links.push(format!("<{prev}>; rel=\"prev\""));
        body["prev"] = json!(prev);
    }
    if page.len() == limit {
        let next = page_url(start.saturating_add(limit));
        links.push(format!("<{next}>; rel=\"next\""));
        body["next"] = json!(next);
    }
    let mut reply = Reply::json(body);
    if !links.is_empty() {
        reply.link = Some(links.join(", "));
    }
    Ok(reply)
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "QUEUED",
        JobState::Power => "POWER",
        JobState::Ready => "READY",
        JobState::Destroyed => "DESTROYED",
        _ => "UNKNOWN",
    }
}

/// What a long-poll on a job waits for: its state, power or boards changing
/// (or it vanishing). `None` if the caller may not see it.
pub fn fingerprint(service: &Service, user: &ApiUser, id: u64) -> Option<u64> {
    Some(match visible(service, user, id).ok()? {
        Visible::Live(j) => hash_of((
            state_name(j.state),
            j.power,
            j.allocation.as_ref().map(|a| a.allocation_id),
        )),
        Visible::Destroyed { reason, .. } => hash_of(("DESTROYED", reason)),
    })
}

/// `GET /jobs/{id}?wait`: the job's state. The shell has already held a
/// `wait=true` request until the job changed; such a long-poll by the owner
/// also counts as a keepalive (SpiNNMan's FEC long-polls for a job's whole
/// life, and its keepalive thread dies for good on one network error).
pub fn state(service: &mut Service, request: &ApiRequest, id: u64, q: &Query, now: f64) -> Outcome {
    if q.flag("wait")? && live(service, request.user, id).is_ok() {
        service.controller.job_keepalive(id, request.host, now);
    }
    let url = job_url(request, id);
    let mut body = match visible(service, request.user, id)? {
        Visible::Live(j) => shapes::job_state(
            &url,
            &JobFacts {
                state: state_name(j.state),
                owner: &j.owner,
                start_time: j.start_time,
                finish_time: None,
                reason: None,
                keepalive_host: j.keepalivehost.as_deref(),
                keepalive_time: j.last_keepalive(),
                original_request: j.original_request.as_ref(),
            },
        ),
        Visible::Destroyed { reason, tombstone } => shapes::job_state(
            &url,
            &JobFacts {
                state: "DESTROYED",
                owner: &tombstone.owner,
                start_time: tombstone.start_time,
                finish_time: Some(tombstone.finish_time),
                reason,
                keepalive_host: None,
                keepalive_time: None,
                original_request: tombstone.original_request.as_ref(),
            },
        ),
    };
    // An extension (see `core::usage`): while the job's group is about to
    // run out of quota, what is left and when the job will be destroyed.
    if let (Some(w), Value::Object(map)) = (service.controller.quota_warning(id, now), &mut body) {
        map.insert(
            "quota-warning".into(),
            json!({"message": w.message(), "seconds-left": w.seconds_left.floor(),
                   "group": w.standing.group, "remaining": w.standing.remaining()}),
        );
    }
    Ok(Reply::json(body))
}

/// `DELETE /jobs/{id}?reason=`: 204, also for a job already destroyed.
pub fn destroy(
    service: &mut Service,
    request: &ApiRequest,
    id: u64,
    q: &Query,
    now: f64,
) -> Outcome {
    if let Visible::Live(_) = visible(service, request.user, id)? {
        let reason = q.get("reason").unwrap_or("").to_owned();
        service.controller.destroy_job(id, Some(reason), now);
    }
    Ok(Reply::empty(204))
}

/// `PUT /jobs/{id}/keepalive` (any body): `ok`.
pub fn keepalive(service: &mut Service, request: &ApiRequest, id: u64, now: f64) -> Outcome {
    live(service, request.user, id)?;
    service.controller.job_keepalive(id, request.host, now);
    Ok(Reply::text(200, "ok"))
}

/// Touches the job (these calls count as keepalives, as in allocserv) and
/// returns it.
fn access<'a>(
    service: &'a mut Service,
    request: &ApiRequest,
    id: u64,
    now: f64,
) -> Result<&'a Job, Failure> {
    live(service, request.user, id)?;
    service.controller.job_keepalive(id, request.host, now);
    service.controller.job(id).ok_or_else(no_such_job)
}

/// `GET /jobs/{id}/machine`: 204 until the job has boards.
pub fn sub_machine(service: &mut Service, request: &ApiRequest, id: u64, now: f64) -> Outcome {
    let job = access(service, request, id, now)?;
    let a = job.allocation.as_ref().ok_or_else(Failure::empty)?;
    Ok(Reply::json(shapes::sub_machine(
        request.base,
        &job_url(request, id),
        a,
    )))
}

/// `GET /jobs/{id}/machine/power`: `{"power": "ON" | "OFF"}`, 204 until allocated.
pub fn power(service: &mut Service, request: &ApiRequest, id: u64, now: f64) -> Outcome {
    let job = access(service, request, id, now)?;
    job.allocation.as_ref().ok_or_else(Failure::empty)?;
    let on = job.power.unwrap_or(false);
    Ok(Reply::json(json!({"power": if on { "ON" } else { "OFF" }})))
}

/// The body of `POST …/machine/power`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MachinePower {
    power: PowerState,
}

#[derive(Debug, Deserialize)]
enum PowerState {
    #[serde(rename = "ON")]
    On,
    #[serde(rename = "OFF")]
    Off,
}

/// Parses a JSON body, with serde's message (which names the field) on failure.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::bad(format!("bad request body: {e}")))
}

/// `POST /jobs/{id}/machine/power` `{"power": "ON" | "OFF"}`: 202; 204 until allocated.
pub fn set_power(service: &mut Service, request: &ApiRequest, id: u64, now: f64) -> Outcome {
    let MachinePower { power } = json_body(request.body)?;
    let job = access(service, request, id, now)?;
    job.allocation.as_ref().ok_or_else(Failure::empty)?;
    let on = matches!(power, PowerState::On);
    service.controller.power_job(id, on, request.host, now);
    Ok(Reply::empty(202))
}

/// `GET /jobs/{id}/chip?x=0&y=0`: where a job-relative chip is; 204 when
/// the chip is not on the job's boards (or it has none).
pub fn chip(service: &mut Service, request: &ApiRequest, id: u64, q: &Query, now: f64) -> Outcome {
    let x = q.int("x", 0, 0, 1 << 20)?;
    let y = q.int("y", 0, 0, 1 << 20)?;
    access(service, request, id, now)?;
    let record = service
        .controller
        .where_is(&WhereIsQuery::JobChip { job_id: id, x, y })
        .ok_or_else(Failure::empty)?;
    Ok(Reply::json(shapes::where_is(request.base, &record)))
}

/// The body of `POST /jobs/{id}/report-issue`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueReportRequest {
    issue: String,
    #[serde(default)]
    boards: Vec<ReportedBoard>,
}

/// One board of an issue report: by job-relative chip, triad, physical
/// location or IP address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportedBoard {
    machine: String,
    chip: Option<ChipLocation>,
    x: Option<u32>,
    y: Option<u32>,
    z: Option<u32>,
    cabinet: Option<u32>,
    frame: Option<u32>,
    board: Option<u32>,
    address: Option<String>,
}

/// A chip as allocserv's `ChipLocation` deserialises: `{"x": …, "y": …}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChipLocation {
    x: u32,
    y: u32,
}

/// `POST /jobs/{id}/report-issue`: records each board (which must be the
/// job's) and answers `{"action": …}`. As in allocserv, a board that is
/// not the job's is not an HTTP error: the action says what was wrong and
/// nothing is recorded.
pub fn report_issue(service: &mut Service, request: &ApiRequest, id: u64, now: f64) -> Outcome {
    let report: IssueReportRequest = json_body(request.body)?;
    if report.issue.trim().is_empty() {
        return Err(Failure::bad("an issue description must be given"));
    }
    let job = live(service, request.user, id)?;
    let mut boards = Vec::new();
    for b in &report.boards {
        match locate_reported(service, job, b) {
            Ok(board) => boards.push((b.machine.clone(), board)),
            Err(action) => return Ok(Reply::json(json!({ "action": action }))),
        }
    }
    for (machine, board) in boards {
        service.controller.report_issue(IssueReport {
            job_id: id,
            reporter: request.user.name.clone(),
            machine,
            board,
            issue: report.issue.clone(),
            time: now,
        });
    }
    Ok(Reply::json(json!({"action": "report noted"})))
}

/// The reported board, if it is one of the job's; else allocserv's message.
fn locate_reported(service: &Service, job: &Job, b: &ReportedBoard) -> Result<Board, String> {
    let id = job.id;
    let a = job
        .allocation
        .as_ref()
        .filter(|a| a.machine == b.machine)
        .ok_or_else(|| format!("job {id} has no boards on machine {}", b.machine))?;
    let machine = service
        .controller
        .machine(&a.machine)
        .ok_or_else(|| format!("no such machine: {}", b.machine))?;
    let board = if let Some(chip) = &b.chip {
        let r = service
            .controller
            .where_is(&WhereIsQuery::JobChip {
                job_id: id,
                x: chip.x.into(),
                y: chip.y.into(),
            })
            .ok_or_else(|| format!("chip ({},{}) not in job's allocation", chip.x, chip.y))?;
        Board {
            x: r.logical[0],
            y: r.logical[1],
            z: r.logical[2],
        }
    } else if let (Some(x), Some(y), Some(z)) = (b.x, b.y, b.z) {
        let board = Board { x, y, z };
        if !machine.board_locations.contains_key(&board) {
            return Err(format!("triad ({x},{y},{z}) not in machine"));
        }
        if !a.boards.contains(&board) {
            return Err(format!("triad ({x},{y},{z}) not allocated to job {id}"));
        }
        board
    } else if let (Some(cabinet), Some(frame), Some(n)) = (b.cabinet, b.frame, b.board) {
        let board = machine
            .board_at(Physical {
                cabinet,
                frame,
                board: n,
            })
            .ok_or_else(|| format!("physical board [{cabinet},{frame},{n}] not in machine"))?;
        if !a.boards.contains(&board) {
            return Err(format!(
                "physical board [{cabinet},{frame},{n}] not allocated to job {id}"
            ));
        }
        board
    } else if let Some(address) = &b.address {
        let board = machine
            .spinnaker_ips
            .iter()
            .find(|(_, ip)| *ip == address)
            .map(|(b, _)| *b)
            .ok_or_else(|| format!("board at {address} not in machine"))?;
        if !a.boards.contains(&board) {
            return Err(format!("board at {address} not allocated to job {id}"));
        }
        board
    } else {
        return Err("at least one way of identifying a board must be given".into());
    };
    Ok(board)
}

/// `fast-data-*`, `router`: allocserv drives the job's boards itself for
/// these, with its own SpiNNaker transceiver (the extra monitors'
/// data-speed-up protocol, router resets with diagnostic filters). This
/// server speaks only plain SCP memory reads and writes to boards
/// ([`super::board_io`]); fast data and router resets need SC&MP's extra
/// monitors and SpiNNMan's router-clearing sequence, which nothing here
/// has (nor do the simulated boards), so these answer 501 (after the usual
/// 404 for a job the caller may not see, and 410 for a destroyed one).
/// Clients do that I/O themselves, directly or through the job proxy. See
/// `docs/v2-endpoints.md`.
pub fn board_io(service: &Service, request: &ApiRequest, id: u64) -> Outcome {
    live(service, request.user, id)?;
    Ok(Reply {
        status: 501,
        body: Body::Text(
            "this server does not do fast data transfers or router resets for clients \
             (they need SC&MP's extra monitor cores): do them from the client, directly \
             or through the job proxy"
                .into(),
        ),
        location: None,
        link: None,
    })
}
