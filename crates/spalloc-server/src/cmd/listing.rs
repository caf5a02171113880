//! Commands that report on the whole server.

use super::reply::JobExtras;
use super::{to_value, Call};
use serde_json::Value;

/// The version `version` reports. The reference clients accept only plain
/// dotted integers in `[0.1.0, 7.0.0)` ("v6 of the server is the Java-based
/// one", and the Python server's own `1!7.0.0` is refused), so we report the
/// protocol level they expect rather than this package's version, which
/// `spalloc-server --version` prints.
pub const PROTOCOL_VERSION: &str = "6.0.0";

/// `version()`.
pub fn version(mut call: Call) -> Result<Value, String> {
    call.bind("version", &[])?;
    Ok(Value::from(PROTOCOL_VERSION))
}

/// `list_jobs()`: every live job, oldest first. Queued jobs carry
/// `queue_position` and `queue_reason` as in `get_job_state`, so that
/// `spalloc-ps` can show them without a `get_job_state` per job (which
/// would also keep abandoned jobs alive while someone watches the table).
pub fn list_jobs(mut call: Call) -> Result<Value, String> {
    call.bind("list_jobs", &[])?;
    let controller = &call.service.controller;
    let mut value = to_value(controller.list_jobs())?;
    if let Value::Array(entries) = &mut value {
        for entry in entries {
            if let Some(id) = entry.get("job_id").and_then(Value::as_u64) {
                JobExtras::of(controller, id, call.now).add_to(entry);
            }
        }
    }
    Ok(value)
}

/// `list_machines()`: every machine, in priority order.
pub fn list_machines(mut call: Call) -> Result<Value, String> {
    call.bind("list_machines", &[])?;
    to_value(call.service.controller.list_machines())
}
