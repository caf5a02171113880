//! Commands that translate between coordinate systems.

use super::args::{as_int, required};
use super::{to_value, Call};
use crate::core::coordinates::Board;
use crate::core::machine::Physical;
use crate::core::where_is::WhereIsQuery;
use serde_json::Value;

const POSITION_PARAMS: [super::args::Param; 4] = [
    required("machine_name"),
    required("x"),
    required("y"),
    required("z"),
];

/// The four numbers of a board or location, or `None` if any is not a
/// non-negative integer (such a board cannot exist).
fn triple(bound: &[Value]) -> Option<(u32, u32, u32)> {
    let n = |v: &Value| as_int(v).and_then(|i| u32::try_from(i).ok());
    Some((n(&bound[1])?, n(&bound[2])?, n(&bound[3])?))
}

/// `get_board_position(machine_name, x, y, z)`: `[cabinet, frame, board]` or null.
pub fn board_position(mut call: Call) -> Result<Value, String> {
    let bound = call.bind("get_board_position", &POSITION_PARAMS)?;
    let (Some(machine), Some((x, y, z))) = (bound[0].as_str(), triple(&bound)) else {
        return Ok(Value::Null);
    };
    match call
        .service
        .controller
        .get_board_position(machine, Board { x, y, z })
    {
        Some(p) => to_value([p.cabinet, p.frame, p.board]),
        None => Ok(Value::Null),
    }
}

/// `get_board_at_position(machine_name, x, y, z)` where x, y, z are really
/// cabinet, frame and board (the reference's naming): `[x, y, z]` or null.
pub fn board_at_position(mut call: Call) -> Result<Value, String> {
    let bound = call.bind("get_board_at_position", &POSITION_PARAMS)?;
    let (Some(machine), Some((cabinet, frame, board))) = (bound[0].as_str(), triple(&bound)) else {
        return Ok(Value::Null);
    };
    match call.service.controller.get_board_at_position(
        machine,
        Physical {
            cabinet,
            frame,
            board,
        },
    ) {
        Some(b) => to_value([b.x, b.y, b.z]),
        None => Ok(Value::Null),
    }
}

/// `where_is(**kwargs)` with one of the key sets `{machine, x, y, z}`,
/// `{machine, cabinet, frame, board}`, `{machine, chip_x, chip_y}` or
/// `{job_id, chip_x, chip_y}`.
pub fn where_is(call: Call) -> Result<Value, String> {
    let Call {
        service,
        args,
        kwargs,
        ..
    } = call;
    if !args.is_empty() {
        return Err(format!(
            "SpallocServer.where_is() takes 2 positional arguments but {} were given",
            args.len() + 2
        ));
    }
    let Some(query) = WhereIsQuery::from_kwargs(&kwargs)? else {
        return Ok(Value::Null);
    };
    match service.controller.where_is(&query) {
        Some(record) => to_value(record),
        None => Ok(Value::Null),
    }
}
