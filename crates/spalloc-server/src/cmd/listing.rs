//! Commands that report on the whole server.

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

/// `list_jobs()`: every live job, oldest first.
pub fn list_jobs(mut call: Call) -> Result<Value, String> {
    call.bind("list_jobs", &[])?;
    to_value(call.service.controller.list_jobs())
}

/// `list_machines()`: every machine, in priority order.
pub fn list_machines(mut call: Call) -> Result<Value, String> {
    call.bind("list_machines", &[])?;
    to_value(call.service.controller.list_machines())
}
