//! The four dashboard pages. Each reads what it shows from the controller
//! under the service lock, renders with `maud` (escaped by construction)
//! and changes nothing.

use super::map::{self, BoardJob};
use super::{layout, Viewer, JOB_PAGE, MACHINE_PAGE};
use crate::core::controller::Controller;
use crate::core::coordinates::Board;
use crate::core::job::Job;
use crate::core::job_history::StateChange;
use crate::core::machine::Machine;
use crate::http::auth::{Principal, Role};
use crate::http::HttpState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use spalloc_protocol::JobState;
use std::collections::{BTreeMap, BTreeSet};

/// Which board each job holds on `machine`.
fn board_jobs(controller: &Controller, machine: &str) -> BTreeMap<Board, BoardJob> {
    let mut boards = BTreeMap::new();
    for job in controller.live_jobs() {
        let Some(allocation) = job.allocation.as_ref().filter(|a| a.machine == machine) else {
            continue;
        };
        for b in &allocation.boards {
            boards.insert(
                *b,
                BoardJob {
                    id: job.id,
                    owner: job.owner.clone(),
                },
            );
        }
    }
    boards
}

/// The boards of `machine` out of service.
fn out_of_service(controller: &Controller, machine: &str) -> BTreeSet<Board> {
    controller
        .boards_out_of_service(machine)
        .cloned()
        .unwrap_or_default()
}

/// Whether a queued job could go to `machine`: it names it, or names no
/// machine and asks for tags the machine has (`default` if none).
fn waits_for(job: &Job, machine: &Machine) -> bool {
    if let Some(name) = job.kwargs.get("machine").and_then(|v| v.as_str()) {
        return name == machine.name;
    }
    match job.kwargs.get("tags").and_then(|v| v.as_array()) {
        Some(tags) => tags
            .iter()
            .all(|t| t.as_str().is_some_and(|t| machine.tags.contains(t))),
        None => machine.tags.contains("default"),
    }
}

/// A Unix time as an RFC 3339 instant.
pub fn time(t: f64) -> String {
    let since_epoch = std::time::Duration::from_secs_f64(t.max(0.0));
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + since_epoch).to_string()
}

fn may_act(viewer: &Principal, job: &Job) -> bool {
    viewer.role == Role::Admin || (viewer.role >= Role::User && viewer.user == job.owner)
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

/// `GET /spalloc/system/list_machines`.
pub async fn machines(State(state): State<HttpState>, Viewer(viewer): Viewer) -> Response {
    let body = state.shared.read(|s| {
        let c = &s.service.controller;
        let rows: Vec<Markup> = c
            .machines()
            .map(|m| {
                let in_use = board_jobs(c, &m.name);
                let jobs: std::collections::BTreeSet<u64> = in_use.values().map(|j| j.id).collect();
                let queued = c
                    .live_jobs()
                    .filter(|j| j.state == JobState::Queued && waits_for(j, m))
                    .count();
                let live = m.live_boards().count();
                let utilisation = if live == 0 {
                    0.0
                } else {
                    100.0 * in_use.len() as f64 / live as f64
                };
                html! {
                    tr {
                        td { a href=(format!("{MACHINE_PAGE}{}", m.name)) { (m.name) } }
                        td { (m.tags.iter().cloned().collect::<Vec<_>>().join(", ")) }
                        td class="boards" { (live) }
                        td class="in-use" { (in_use.len()) }
                        td { (m.dead_boards.len()) }
                        td { (format!("{utilisation:.0}%")) }
                        td { (jobs.len()) }
                        td { (queued) }
                    }
                }
            })
            .collect();
        html! {
            h1 { "Machines" }
            table id="machines" {
                tr { th { "Name" } th { "Tags" } th { "Boards" } th { "In use" } th { "Dead" } th { "Utilisation" } th { "Jobs" } th { "Queued" } }
                @for row in rows { (row) }
            }
        }
    });
    layout::page("machines", &viewer, body)
}

/// `GET /spalloc/system/machine_info/{name}`.
pub async fn machine(
    State(state): State<HttpState>,
    Path(name): Path<String>,
    Viewer(viewer): Viewer,
) -> Response {
    let body = state
        .shared
        .read(|s| machine_body(&s.service.controller, &name));
    match body {
        Some(body) => layout::page(&name, &viewer, body),
        None => not_found(format!("no machine named {name:?}")),
    }
}

/// The body of a machine's page, or `None` if there is no such machine.
pub fn machine_body(c: &Controller, name: &str) -> Option<Markup> {
    let m = c.machine(name)?;
    let jobs = board_jobs(c, &m.name);
    let queued: Vec<&Job> = c
        .live_jobs()
        .filter(|j| j.state == JobState::Queued && waits_for(j, m))
        .collect();
    let running: std::collections::BTreeSet<(u64, String)> =
        jobs.values().map(|j| (j.id, j.owner.clone())).collect();
    Some(html! {
        h1 { "Machine " (m.name) }
        p { (m.width) " × " (m.height) " triads; " (m.live_boards().count()) " boards, "
            span id="in-use" { (jobs.len()) } " in use, " (m.dead_boards.len()) " dead, "
            span id="out-of-service" { (out_of_service(c, &m.name).len()) } " out of service, "
            (m.dead_links.len()) " dead links." }
        div class="map" { (map::render(m, &jobs, &out_of_service(c, &m.name), None)) }
        h2 { "Jobs on it" }
        @if running.is_empty() { p { "None." } }
        ul id="running" {
            @for (id, owner) in &running {
                li { a href=(format!("{JOB_PAGE}{id}")) { "Job " (id) } " (" (owner) ")" }
            }
        }
        h2 { "Queued for it" }
        @if queued.is_empty() { p { "None." } }
        ul id="queued" {
            @for j in &queued {
                li { a href=(format!("{JOB_PAGE}{}", j.id)) { "Job " (j.id) } " (" (j.owner) "), since " (time(j.start_time)) }
            }
        }
    })
}

/// The jobs page's filter.
#[derive(Debug, Deserialize)]
pub struct JobsFilter {
    mine: Option<String>,
}

/// `GET /spalloc/system/list_jobs[?mine=1]`.
pub async fn jobs(
    State(state): State<HttpState>,
    Query(filter): Query<JobsFilter>,
    Viewer(viewer): Viewer,
) -> Response {
    let mine = filter.mine.is_some_and(|m| m != "0" && m != "false");
    let body = state.shared.read(|s| {
        let c = &s.service.controller;
        let jobs: Vec<&Job> = c
            .live_jobs()
            .filter(|j| !mine || j.owner == viewer.user)
            .collect();
        html! {
            h1 { "Jobs" }
            p { @if mine { "Yours only. " a href=(super::JOBS_PAGE) { "Show everyone's" } }
                @else { a href=(format!("{}?mine=1", super::JOBS_PAGE)) { "Show only mine" } } }
            table id="jobs" {
                tr { th { "ID" } th { "Owner" } th { "State" } th { "Power" } th { "Boards" } th { "Machine" } th { "Created" } th { "Keepalive" } }
                @for j in &jobs {
                    tr data-job=(j.id) {
                        td { a href=(format!("{JOB_PAGE}{}", j.id)) { (j.id) } }
                        td { (j.owner) }
                        td { (j.state.name()) }
                        td { (match j.power { Some(true) => "on", Some(false) => "off", None => "" }) }
                        td { (j.allocation.as_ref().map_or(0, |a| a.boards.len())) }
                        td { (j.allocation.as_ref().map_or("", |a| a.machine.as_str())) }
                        td { (time(j.start_time)) }
                        td { (j.keepalive.map_or("never expires".to_owned(), |k| format!("{k} s"))) }
                    }
                }
            }
            @if jobs.is_empty() { p { "No jobs." } }
        }
    });
    layout::page("jobs", &viewer, body)
}

/// What a history entry says of a job.
fn describe_change(change: &StateChange) -> &'static str {
    match (change.state, change.power) {
        (JobState::Queued, _) => "queued",
        (JobState::Power, Some(false)) => "powering off",
        (JobState::Power, _) => "powering on",
        (JobState::Ready, Some(false)) => "ready (powered off)",
        (JobState::Ready, _) => "ready",
        (JobState::Destroyed, _) => "destroyed",
        _ => "unknown",
    }
}

/// A job's state history as a table (nothing if none is known), the
/// destroyed entry with `reason`.
fn history(changes: Option<&[StateChange]>, reason: Option<&str>) -> Markup {
    let Some(changes) = changes.filter(|c| !c.is_empty()) else {
        return html! {};
    };
    html! {
        h2 { "History" }
        table id="history" {
            tr { th { "When" } th { "State" } th { "Reason" } }
            @for change in changes {
                tr data-state=(change.state.name()) {
                    td { (time(change.time)) }
                    td { (describe_change(change)) }
                    td { @if change.state == JobState::Destroyed { (reason.unwrap_or("")) } }
                }
            }
        }
    }
}

/// `GET /spalloc/system/job_info/{id}`.
pub async fn job(
    State(state): State<HttpState>,
    Path(id): Path<u64>,
    Viewer(viewer): Viewer,
) -> Response {
    let body = state.shared.read(|s| {
        let c = &s.service.controller;
        let Some(j) = c.job(id) else {
            let destroyed = c.destroyed_job(id);
            let reason = destroyed.and_then(|(reason, _)| reason);
            // After a restart only the tombstone's two times may be left.
            let from_tombstone: Option<Vec<StateChange>> =
                destroyed.and_then(|(_, t)| t).map(|t| {
                    vec![
                        StateChange { state: JobState::Queued, power: None, time: t.start_time },
                        StateChange { state: JobState::Destroyed, power: None, time: t.finish_time },
                    ]
                });
            let changes = c.job_history(id).or(from_tombstone.as_deref());
            return html! {
                h1 { "Job " (id) }
                p id="job-state" { "This job is gone (destroyed, or never existed)." }
                (history(changes, reason))
            };
        };
        let api = format!("{}/jobs/{id}", crate::http::api::API_PREFIX);
        let request_text = match &j.original_request {
            Some(r) => serde_json::to_string_pretty(r).unwrap_or_default(),
            None => format!(
                "create_job{:?} {}",
                j.args,
                serde_json::Value::Object(j.kwargs.clone())
            ),
        };
        // As in the API: only its owner and administrators see how to reach
        // a job and what it asked for; everyone sees whose boards are whose.
        let details = viewer.may_access_job_of(&j.owner);
        let allocation = j.allocation.as_ref();
        let machine = allocation.and_then(|a| c.machine(&a.machine));
        let root_ip = allocation
            .and_then(|a| a.connections.iter().find(|(chip, _)| *chip == [0, 0]))
            .map(|(_, ip)| ip.clone());
        html! {
            h1 { "Job " (id) }
            table id="job" {
                tr { th { "Owner" } td { (j.owner) } }
                tr { th { "State" } td id="job-state" { (j.state.name()) } }
                tr { th { "Power" } td { (match j.power { Some(true) => "on", Some(false) => "off", None => "" }) } }
                tr { th { "Created" } td { (time(j.start_time)) } }
                tr { th { "Keepalive" } td { (j.keepalive.map_or("never expires".to_owned(), |k| format!("{k} s"))) } }
                @if let Some(a) = allocation {
                    tr { th { "Machine" } td { a href=(format!("{MACHINE_PAGE}{}", a.machine)) { (a.machine) } } }
                    tr { th { "Boards" } td { (a.boards.len()) } }
                    tr { th { "Dimensions" } td { (a.width) " × " (a.height) " chips" } }
                    @if details { tr { th { "Root IP" } td { (root_ip.unwrap_or_default()) } } }
                }
                @if details { tr { th { "Request" } td { pre id="request" { (request_text) } } } }
            }
            (history(c.job_history(id), None))
            @if may_act(&viewer, j) {
                p class="actions" {
                    button type="button" id="power-on" data-method="POST" data-url=(format!("{api}/machine/power")) data-body=r#"{"power":"ON"}"# { "Power on" } " "
                    button type="button" id="power-off" data-method="POST" data-url=(format!("{api}/machine/power")) data-body=r#"{"power":"OFF"}"# { "Power off" } " "
                    button type="button" id="destroy" data-method="DELETE" data-url=(format!("{api}?reason=destroyed+from+the+dashboard")) data-confirm=(format!("Destroy job {id}?")) { "Destroy" }
                    " " span id="action-result" {}
                }
            }
            @if let Some(m) = machine {
                @let boards = board_jobs(c, &m.name);
                div class="map" { (map::render(m, &boards, &out_of_service(c, &m.name), Some(id))) }
            }
        }
    });
    layout::page(&format!("job {id}"), &viewer, body)
}
