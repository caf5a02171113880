//! The JSON shapes of the replies, as allocserv's Jackson writes them
//! (kebab-case names, coordinates as arrays, dead boards as objects,
//! `null`-valued optional fields left out), in allocserv's field order.
//! The golden tests in `tests/http_golden.rs` pin each one.

use super::time_format::instant;
use crate::core::coordinates::{board_down_link, Board};
use crate::core::job::JobAllocation;
use crate::core::machine::Machine;
use serde_json::{json, Map, Value};
use spalloc_protocol::{Link, WhereIsRecord};

/// The version the service description reports: this package's.
pub fn version() -> Value {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    json!({
        "major-version": parts.next().unwrap_or(0),
        "minor-version": parts.next().unwrap_or(0),
        "revision": parts.next().unwrap_or(0),
    })
}

/// `GET /`: the service description.
pub fn service_description(base: &str, csrf: Option<&(String, String)>) -> Value {
    let mut v = json!({
        "version": version(),
        "jobs-ref": format!("{base}/jobs"),
        "machines-ref": format!("{base}/machines"),
    });
    if let (Some((header, token)), Some(o)) = (csrf, v.as_object_mut()) {
        o.insert("csrf-header".into(), json!(header));
        o.insert("csrf-token".into(), json!(token));
    }
    v
}

/// allocserv's `BoardCoords`: one board in every coordinate system, as an object.
pub fn board_coords(machine: &Machine, b: Board) -> Value {
    let physical = machine.board_locations.get(&b);
    json!({
        "x": b.x, "y": b.y, "z": b.z,
        "cabinet": physical.map_or(0, |p| p.cabinet),
        "frame": physical.map_or(0, |p| p.frame),
        "board": physical.map(|p| p.board),
        "address": machine.spinnaker_ips.get(&b),
    })
}

/// The direction name of a link. allocserv names board-to-board links by
/// its FPGA directions; this server's machine model has the legacy
/// protocol's six links, written the same short way.
fn direction(link: Link) -> &'static str {
    match link {
        Link::East => "E",
        Link::NorthEast => "NE",
        Link::North => "N",
        Link::West => "W",
        Link::SouthWest => "SW",
        Link::South => "S",
    }
}

/// allocserv's `DownLink`: both ends of a dead link, `[{board, direction}, {board, direction}]`.
fn down_links(machine: &Machine) -> Vec<Value> {
    machine
        .dead_links
        .iter()
        .map(|(b, link)| {
            let (x, y, z, _) = board_down_link(b.x, b.y, b.z, *link, machine.width, machine.height);
            let other = Board { x, y, z };
            json!([
                {"board": board_coords(machine, *b), "direction": direction(*link)},
                {"board": board_coords(machine, other), "direction": direction(link.opposite())},
            ])
        })
        .collect()
}

fn dead_boards(machine: &Machine) -> Vec<Value> {
    machine
        .dead_boards
        .iter()
        .map(|b| board_coords(machine, *b))
        .collect()
}

/// One machine of `GET /machines` (`BriefMachineDescription`).
pub fn brief_machine(base: &str, m: &Machine) -> Value {
    json!({
        "name": m.name,
        "tags": m.tags,
        "uri": format!("{base}/machines/{}", m.name),
        "width": m.width,
        "height": m.height,
        "dead-boards": dead_boards(m),
        "dead-links": down_links(m),
    })
}

/// `GET /machines/{name}` (`MachineResponse`): note `down-*`, not `dead-*`.
pub fn machine(base: &str, m: &Machine) -> Value {
    let me = format!("{base}/machines/{}", m.name);
    json!({
        "name": m.name,
        "tags": m.tags,
        "width": m.width,
        "height": m.height,
        "down-boards": dead_boards(m),
        "down-links": down_links(m),
        "lookup-by-physical-board": format!("{me}/physical-board"),
        "lookup-by-logical-board": format!("{me}/logical-board"),
        "lookup-by-chip": format!("{me}/chip"),
        "lookup-by-address": format!("{me}/board-ip"),
    })
}

/// `WhereIsResponse`; the job fields only when a job holds the board.
pub fn where_is(base: &str, r: &WhereIsRecord) -> Value {
    let mut o = Map::new();
    if let Some(id) = r.job_id {
        o.insert("job-id".into(), json!(id));
        o.insert("job-ref".into(), json!(format!("{base}/jobs/{id}")));
        if let Some(chip) = r.job_chip {
            o.insert("job-chip".into(), json!(chip));
        }
    }
    o.insert("chip".into(), json!(r.chip));
    o.insert("logical-board-coordinates".into(), json!(r.logical));
    o.insert("machine".into(), json!(r.machine));
    o.insert(
        "machine-ref".into(),
        json!(format!("{base}/machines/{}", r.machine)),
    );
    o.insert("board-chip".into(), json!(r.board_chip));
    o.insert("physical-board-coordinates".into(), json!(r.physical));
    Value::Object(o)
}

/// The facts of one job that `JobStateResponse` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts<'a> {
    /// `QUEUED`, `POWER`, `READY` or `DESTROYED`.
    pub state: &'static str,
    /// Its owner.
    pub owner: &'a str,
    /// Unix time of creation.
    pub start_time: f64,
    /// Unix time of destruction, for a destroyed job.
    pub finish_time: Option<f64>,
    /// Why it was destroyed.
    pub reason: Option<&'a str>,
    /// Who last kept it alive (live jobs only).
    pub keepalive_host: Option<&'a str>,
    /// When it was last kept alive (live jobs only).
    pub keepalive_time: Option<f64>,
    /// The v2 create request.
    pub original_request: Option<&'a Value>,
}

/// `GET /jobs/{id}` (`JobStateResponse`).
pub fn job_state(job_url: &str, f: &JobFacts) -> Value {
    let mut o = Map::new();
    o.insert("state".into(), json!(f.state));
    o.insert("owner".into(), json!(f.owner));
    if let Some(t) = instant(f.start_time) {
        o.insert("start-time".into(), json!(t));
    }
    if let Some(t) = f.finish_time.and_then(instant) {
        o.insert("finish-time".into(), json!(t));
    }
    if let Some(r) = f.reason {
        o.insert("reason".into(), json!(r));
    }
    if let Some(h) = f.keepalive_host {
        o.insert("keepalive-host".into(), json!(h));
    }
    if let Some(t) = f.keepalive_time.and_then(instant) {
        o.insert("keep-alive-time".into(), json!(t));
    }
    o.insert(
        "keepalive-ref".into(),
        json!(format!("{job_url}/keepalive")),
    );
    o.insert("machine-ref".into(), json!(format!("{job_url}/machine")));
    o.insert(
        "power-ref".into(),
        json!(format!("{job_url}/machine/power")),
    );
    o.insert("chip-ref".into(), json!(format!("{job_url}/chip")));
    if let Some(r) = f.original_request {
        o.insert("original-request".into(), r.clone());
    }
    Value::Object(o)
}

/// `GET /jobs/{id}/machine` (`SubMachineResponse`). Width and height are in
/// triads and depth is boards per triad (1 for a single board, else 3).
pub fn sub_machine(base: &str, job_url: &str, a: &JobAllocation) -> Value {
    let distinct = |f: fn(&Board) -> u32| {
        a.boards
            .iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let depth = if a.boards.len() == 1 { 1 } else { 3 };
    json!({
        "width": distinct(|b| b.x),
        "height": distinct(|b| b.y),
        "depth": depth,
        "machine-name": a.machine,
        "connections": a.connections.iter().map(|(chip, ip)| json!([chip, ip])).collect::<Vec<_>>(),
        "boards": a.boards_in_order.iter().map(|b| json!([b.x, b.y, b.z])).collect::<Vec<_>>(),
        "power": format!("{job_url}/machine/power"),
        "machine-ref": format!("{base}/machines/{}", a.machine),
    })
}
