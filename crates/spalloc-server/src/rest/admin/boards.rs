//! `GET` and `PUT /admin/board?machine=…&…`: whether a board is enabled
//! (in service), and taking it out of service or returning it.
//!
//! The board is named by triad (`x`, `y`, `z`), physical location
//! (`cabinet`, `frame`, `board`) or `address`, tried in that order as
//! allocserv does. The answer is `text/plain` `true` or `false`; a `PUT`
//! carries the new state the same way and answers the state after it.
//! Enabled means live and in service: a board configured dead is never
//! enabled, and cannot be enabled here (it is not in the machine's
//! wiring); changing the state goes through the core's
//! [`set_board_in_service`](crate::core::controller::Controller::set_board_in_service),
//! which allocates what the change lets run.

use super::super::board_by::BoardBy;
use super::super::query::Query;
use super::super::{ApiRequest, Failure, Outcome, Reply};
use crate::core::coordinates::Board;
use crate::core::machine::{Machine, Physical};
use crate::rest::route::Method;
use crate::service::Service;

/// The largest coordinate or board number accepted (allocserv's
/// validators bound them similarly; this only keeps numbers sane).
const MAX_COORDINATE: i64 = 1 << 16;

/// allocserv's message when no way of naming a board is given.
const NEED_COORDINATES: &str = "You need to supply coordinates (as x=&y=&z=, c=&f=&b= or address=)";

/// `GET` or `PUT /admin/board`.
pub fn board(
    service: &mut Service,
    request: &ApiRequest,
    method: Method,
    q: &Query,
    now: f64,
) -> Outcome {
    let machine_name = q
        .get("machine")
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Failure::bad("machine name is required"))?;
    let by = board_by(q)?;
    let wanted = match method {
        Method::Put => Some(enabled_body(request.body)?),
        _ => None,
    };
    let no_board = || Failure::not_found("no such board");
    let machine = service
        .controller
        .machine(machine_name)
        .ok_or_else(no_board)?;
    let board = by.find_on(machine).ok_or_else(no_board)?;
    if let Some(enabled) = wanted {
        if !machine.is_live(&board) {
            if enabled {
                return Err(Failure::bad(
                    "that board is dead in the machine's configuration; \
                     it cannot be enabled here",
                ));
            }
        } else {
            service
                .controller
                .set_board_in_service(machine_name, board, enabled, now)
                .map_err(|e| Failure::bad(e.to_string()))?;
        }
    }
    let machine = service
        .controller
        .machine(machine_name)
        .ok_or_else(no_board)?;
    let enabled = is_enabled(service, machine, board);
    Ok(Reply::text(200, if enabled { "true" } else { "false" }))
}

/// Whether a board is live and in service.
fn is_enabled(service: &Service, machine: &Machine, board: Board) -> bool {
    machine.is_live(&board)
        && !service
            .controller
            .boards_out_of_service(&machine.name)
            .is_some_and(|out| out.contains(&board))
}

/// The board the query names.
fn board_by(q: &Query) -> Result<BoardBy, Failure> {
    let number = |name: &str, max: i64| -> Result<Option<u32>, Failure> {
        if q.get(name).is_none() {
            return Ok(None);
        }
        let v = q.int(name, 0, 0, max)?;
        Ok(u32::try_from(v).ok())
    };
    let (x, y, z) = (
        number("x", MAX_COORDINATE)?,
        number("y", MAX_COORDINATE)?,
        number("z", 2)?,
    );
    if let (Some(x), Some(y), Some(z)) = (x, y, z) {
        return Ok(BoardBy::Triad(Board { x, y, z }));
    }
    let (c, f, b) = (
        number("cabinet", MAX_COORDINATE)?,
        number("frame", MAX_COORDINATE)?,
        number("board", MAX_COORDINATE)?,
    );
    if let (Some(cabinet), Some(frame), Some(board)) = (c, f, b) {
        return Ok(BoardBy::Physical(Physical {
            cabinet,
            frame,
            board,
        }));
    }
    if let Some(address) = q.get("address") {
        if address.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(Failure::bad("address must be an IP address (dotted quad)"));
        }
        return Ok(BoardBy::Address(address.to_owned()));
    }
    Err(Failure::bad(NEED_COORDINATES))
}

/// A `PUT` body: `true` or `false` (as JAX-RS reads a `boolean` from
/// `text/plain`, case-insensitively; surrounding blanks ignored).
fn enabled_body(body: &[u8]) -> Result<bool, Failure> {
    let text = std::str::from_utf8(body).map(str::trim).unwrap_or("");
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Failure::bad(
            "the body must be true or false (text/plain): whether the board is enabled",
        ))
    }
}
