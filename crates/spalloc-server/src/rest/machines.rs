//! The service description and the machine endpoints: listing, one
//! machine (long-pollable), and the four where-is lookups.

use super::query::Query;
use super::route::WhereBy;
use super::{hash_of, shapes, ApiRequest, Failure, Outcome, Reply};
use crate::core::coordinates::Board;
use crate::service::Service;
use serde_json::json;
use spalloc_protocol::WhereIsQuery;

/// `GET /`.
pub fn describe_service(request: &ApiRequest) -> Reply {
    Reply::json(shapes::service_description(
        request.base,
        request.user.csrf.as_ref(),
    ))
}

/// `GET /machines`: every machine, no paging (there are few).
pub fn list(service: &Service, request: &ApiRequest) -> Reply {
    let machines: Vec<_> = service
        .controller
        .machines()
        .map(|m| shapes::brief_machine(request.base, m))
        .collect();
    Reply::json(json!({ "machines": machines }))
}

fn no_such_machine() -> Failure {
    Failure::not_found("no such machine")
}

/// `GET /machines/{name}`.
pub fn describe(service: &Service, request: &ApiRequest, name: &str) -> Outcome {
    let m = service
        .controller
        .machine(name)
        .ok_or_else(no_such_machine)?;
    Ok(Reply::json(shapes::machine(request.base, m)))
}

/// What a long-poll on a machine waits for: its description or the jobs on it changing.
pub fn fingerprint(service: &Service, name: &str) -> Option<u64> {
    let m = service.controller.machine(name)?;
    let jobs: Vec<(u64, Vec<Board>)> = service
        .controller
        .live_jobs()
        .filter_map(|j| {
            let a = j.allocation.as_ref().filter(|a| a.machine == name)?;
            Some((j.id, a.boards.iter().copied().collect()))
        })
        .collect();
    Some(hash_of((format!("{m:?}"), jobs)))
}

/// The four lookups: `logical-board?x&y&z=0`, `physical-board?cabinet=0&frame=0&board`,
/// `chip?x&y`, `board-ip?address`. 404 when nothing is there.
pub fn where_is(
    service: &Service,
    request: &ApiRequest,
    name: &str,
    by: WhereBy,
    q: &Query,
) -> Outcome {
    let m = service
        .controller
        .machine(name)
        .ok_or_else(no_such_machine)?;
    let machine = m.name.clone();
    let query = match by {
        WhereBy::Logical => WhereIsQuery::Board {
            machine,
            x: q.int("x", 0, 0, i64::from(m.width.saturating_sub(1)))?,
            y: q.int("y", 0, 0, i64::from(m.height.saturating_sub(1)))?,
            z: q.int("z", 0, 0, 2)?,
        },
        WhereBy::Physical => WhereIsQuery::Physical {
            machine,
            cabinet: q.int("cabinet", 0, 0, 31)?,
            frame: q.int("frame", 0, 0, 31)?,
            board: q.int("board", 0, 0, 23)?,
        },
        WhereBy::Chip => WhereIsQuery::Chip {
            machine,
            x: q.int("x", 0, 0, i64::from(m.width) * 12 - 1)?,
            y: q.int("y", 0, 0, i64::from(m.height) * 12 - 1)?,
        },
        WhereBy::Address => {
            let address = q
                .get("address")
                .ok_or_else(|| Failure::bad("address must be an IP address"))?;
            let board = m
                .spinnaker_ips
                .iter()
                .find(|(_, ip)| ip.as_str() == address)
                .map(|(b, _)| *b)
                .ok_or_else(|| Failure::not_found("failed to locate board"))?;
            WhereIsQuery::Board {
                machine,
                x: board.x.into(),
                y: board.y.into(),
                z: board.z.into(),
            }
        }
    };
    let record = service
        .controller
        .where_is(&query)
        .ok_or_else(|| Failure::not_found("failed to locate board"))?;
    Ok(Reply::json(shapes::where_is(request.base, &record)))
}
