//! Boards in and out of service (allocserv's admin `boards` page), and the
//! board issue reports users sent.
//!
//! A board out of service is given to no new job; a job holding it keeps
//! it until it ends (see [`crate::core::board_service`]). The form names a
//! board by its logical `(x, y, z)` or its physical cabinet, frame and
//! slot; each board out of service has a button to return it.

use super::{csrf_input, layout, Admin, AdminForm, BOARDS_PAGE};
use crate::core::controller::Controller;
use crate::core::coordinates::Board;
use crate::core::machine::{Machine, Physical};
use crate::http::auth::Principal;
use crate::http::HttpState;
use crate::web::{JOB_PAGE, MACHINE_PAGE};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /spalloc/system/admin/boards`.
pub async fn page(State(state): State<HttpState>, Admin(viewer): Admin) -> Response {
    let body = state
        .shared
        .read(|s| body(&s.service.controller, &viewer, None));
    layout::page("boards", &viewer, body)
}

/// What the boards form posts.
#[derive(Debug, Deserialize)]
pub struct BoardChange {
    machine: String,
    /// `true` to return the board to service, `false` to take it out.
    in_service: String,
    #[serde(default)]
    x: String,
    #[serde(default)]
    y: String,
    #[serde(default)]
    z: String,
    #[serde(default)]
    cabinet: String,
    #[serde(default)]
    frame: String,
    #[serde(default)]
    board: String,
}

/// A form number: `None` if left empty, `Err` if not a number.
fn number(field: &str, text: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{field} must be a whole number, not {text:?}"))
}

/// The board a form names, by logical or physical coordinates.
fn named_board(c: &Controller, form: &BoardChange) -> Result<Board, String> {
    let logical = (
        number("x", &form.x)?,
        number("y", &form.y)?,
        number("z", &form.z)?,
    );
    let physical = (
        number("cabinet", &form.cabinet)?,
        number("frame", &form.frame)?,
        number("board", &form.board)?,
    );
    match (logical, physical) {
        ((Some(x), Some(y), Some(z)), _) => Ok(Board { x, y, z }),
        (_, (Some(cabinet), Some(frame), Some(board))) => {
            let p = Physical {
                cabinet,
                frame,
                board,
            };
            c.get_board_at_position(&form.machine, p).ok_or_else(|| {
                format!(
                    "{} has no board at cabinet {cabinet}, frame {frame}, slot {board}",
                    form.machine
                )
            })
        }
        _ => Err("give the board's x, y and z, or its cabinet, frame and board".into()),
    }
}

/// `POST /spalloc/system/admin/boards`: takes a board out of service or
/// returns it, then shows the page again with what happened.
pub async fn change(
    State(state): State<HttpState>,
    AdminForm(viewer, form): AdminForm<BoardChange>,
) -> Response {
    let in_service = form.in_service == "true";
    let mut changes = state.shared.subscribe_changes();
    changes.borrow_and_update();
    let (outcome, change_set) = state.shared.with(|s| {
        let c = &mut s.service.controller;
        let outcome = named_board(c, &form).and_then(|board| {
            c.set_board_in_service(&form.machine, board, in_service, crate::clock::now())
                .map(|()| board)
                .map_err(|e| e.to_string())
        });
        (outcome, s.change_set())
    });
    let (status, message) = match outcome {
        Ok(board) => {
            tracing::info!(
                admin = %viewer.user, machine = %form.machine, board = ?board, in_service,
                "board service changed from the dashboard"
            );
            if let Err(refused) = crate::http::api::committed(&state, change_set, changes).await {
                return refused;
            }
            let done = if in_service {
                "returned to service"
            } else {
                "taken out of service"
            };
            (
                StatusCode::OK,
                format!(
                    "Board ({}, {}, {}) of {} {done}.",
                    board.x, board.y, board.z, form.machine
                ),
            )
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("Nothing changed: {e}.")),
    };
    let body = state
        .shared
        .read(|s| body(&s.service.controller, &viewer, Some(&message)));
    (status, layout::page("boards", &viewer, body)).into_response()
}

/// Which job holds each board of `machine`.
fn holders(c: &Controller, machine: &str) -> BTreeMap<Board, (u64, String)> {
    c.live_jobs()
        .filter_map(|j| Some((j, j.allocation.as_ref().filter(|a| a.machine == machine)?)))
        .flat_map(|(j, a)| a.boards.iter().map(|b| (*b, (j.id, j.owner.clone()))))
        .collect()
}

fn physical(m: &Machine, b: &Board) -> String {
    m.board_locations.get(b).map_or(String::new(), |p| {
        format!("cabinet {}, frame {}, slot {}", p.cabinet, p.frame, p.board)
    })
}

/// The boards page: the form, then each machine's boards out of service.
fn body(c: &Controller, viewer: &Principal, message: Option<&str>) -> Markup {
    let machines: Vec<_> = c.machines().collect();
    html! {
        h1 { "Boards" }
        @if let Some(m) = message { p id="result" { (m) } }
        h2 { "Take a board out of service" }
        p { "No new job is given a board out of service; a job holding it keeps it until it ends." }
        form id="take-out" method="post" action=(BOARDS_PAGE) {
            (csrf_input(viewer))
            input type="hidden" name="in_service" value="false";
            label { "Machine " select name="machine" {
                @for m in &machines { option value=(m.name) { (m.name) } }
            } }
            fieldset {
                legend { "Logical" }
                label { "x " input type="number" name="x" min="0" size="4"; } " "
                label { "y " input type="number" name="y" min="0" size="4"; } " "
                label { "z " input type="number" name="z" min="0" max="2" size="2"; }
            }
            fieldset {
                legend { "or physical" }
                label { "cabinet " input type="number" name="cabinet" min="0" size="4"; } " "
                label { "frame " input type="number" name="frame" min="0" size="4"; } " "
                label { "board " input type="number" name="board" min="0" size="4"; }
            }
            p { button type="submit" id="take-out-button" { "Take out of service" } }
        }
        h2 { "Out of service" }
        @for m in &machines {
            @let off = c.boards_out_of_service(&m.name).cloned().unwrap_or_default();
            @let held = holders(c, &m.name);
            h3 { a href=(format!("{MACHINE_PAGE}{}", m.name)) { (m.name) } }
            @if off.is_empty() { p { "Every working board is in service." } }
            @else {
                table class="out-of-service" data-machine=(m.name) {
                    tr { th { "Board" } th { "Physical" } th { "IP" } th { "Held by" } th {} }
                    @for b in &off {
                        tr data-board=(format!("{},{},{}", b.x, b.y, b.z)) {
                            td { "(" (b.x) ", " (b.y) ", " (b.z) ")" }
                            td { (physical(m, b)) }
                            td { (m.spinnaker_ips.get(b).map_or("", String::as_str)) }
                            td { @if let Some((id, owner)) = held.get(b) {
                                a href=(format!("{JOB_PAGE}{id}")) { "job " (id) } " (" (owner) ")"
                            } }
                            td {
                                form method="post" action=(BOARDS_PAGE) {
                                    (csrf_input(viewer))
                                    input type="hidden" name="in_service" value="true";
                                    input type="hidden" name="machine" value=(m.name);
                                    input type="hidden" name="x" value=(b.x);
                                    input type="hidden" name="y" value=(b.y);
                                    input type="hidden" name="z" value=(b.z);
                                    button type="submit" class="return" { "Return to service" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /spalloc/system/admin/reports`: the board issue reports, newest
/// first.
pub async fn reports(State(state): State<HttpState>, Admin(viewer): Admin) -> Response {
    let body = state.shared.read(|s| {
        let c = &s.service.controller;
        let reports: Vec<_> = c.issue_reports().collect();
        html! {
            h1 { "Board reports" }
            p { "Problems users reported with their jobs' boards. A report takes no board out of service: "
                a href=(BOARDS_PAGE) { "do that here" } " if it should." }
            @if reports.is_empty() { p id="no-reports" { "No reports." } }
            @else {
                table id="reports" {
                    tr { th { "When" } th { "Machine" } th { "Board" } th { "Physical" } th { "Reporter" } th { "Job" } th { "Issue" } }
                    @for r in reports.iter().rev() {
                        tr {
                            td { (crate::web::pages::time(r.time)) }
                            td { a href=(format!("{MACHINE_PAGE}{}", r.machine)) { (r.machine) } }
                            td { "(" (r.board.x) ", " (r.board.y) ", " (r.board.z) ")" }
                            td { (c.machine(&r.machine).map(|m| physical(m, &r.board)).unwrap_or_default()) }
                            td { (r.reporter) }
                            td { a href=(format!("{JOB_PAGE}{}", r.job_id)) { (r.job_id) } }
                            td class="issue" { (r.issue) }
                        }
                    }
                }
            }
        }
    });
    layout::page("board reports", &viewer, body)
}
