//! `report_problem(address, x=None, y=None, p=None, description=...)`:
//! allocserv's legacy-protocol command for reporting a broken board (the
//! Python reference server has no such command). `address` is the IP
//! address of the board's Ethernet chip; `x`, `y` (and `p`) optionally
//! name the chip (and core) that misbehaved. The board must be held by a
//! live job: the report counts for that job toward taking the board out of
//! service (see [`crate::core::board_service`]). Returns `null`.

use super::args::{as_int, bounded, optional, python_str, required};
use super::Call;
use serde_json::Value;

/// allocserv's text when no description is given.
const DEFAULT_DESCRIPTION: &str = "It doesn't work and I don't know why.";

/// Longest description kept, in bytes (reports are kept and listed).
const MAX_DESCRIPTION: usize = 4096;

/// `report_problem(address, x=None, y=None, p=None, description=None)`.
pub fn report_problem(mut call: Call) -> Result<Value, String> {
    let bound = call.bind(
        "report_problem",
        &[
            required("address"),
            optional("x"),
            optional("y"),
            optional("p"),
            optional("description"),
        ],
    )?;
    let address = match &bound[0] {
        Value::String(s) => s.clone(),
        other => python_str(other),
    };
    let coordinate = |i: usize, name: &str| -> Result<Option<i64>, String> {
        match &bound[i] {
            Value::Null => Ok(None),
            v => as_int(v)
                .map(Some)
                .ok_or_else(|| format!("{name} must be an integer, not {}", python_str(v))),
        }
    };
    let (x, y, p) = (
        coordinate(1, "x")?,
        coordinate(2, "y")?,
        coordinate(3, "p")?,
    );
    let chip = match (x, y) {
        (Some(x), Some(y)) => Some((x, y, p)),
        (None, None) => None,
        _ => return Err("x and y must be given together".into()),
    };
    let description = match &bound[4] {
        Value::Null => DEFAULT_DESCRIPTION.to_owned(),
        Value::String(s) => s.clone(),
        other => python_str(other),
    };
    bounded("description", &description, MAX_DESCRIPTION)?;
    let reporter = format!("legacy client {}", call.host().unwrap_or("unknown"));
    call.service
        .controller
        .report_problem(&address, chip, &description, &reporter, call.now)?;
    Ok(Value::Null)
}
