//! Commands that report on the whole server.

use super::args::bind;
use super::to_value;
use crate::service::Service;
use serde_json::{Map, Value};

/// The version `version` reports. The reference clients accept only plain
/// dotted integers in `[0.1.0, 7.0.0)` ("v6 of the server is the Java-based
/// one", and the Python server's own `1!7.0.0` is refused), so we report the
/// protocol level they expect rather than this package's version, which
/// `spalloc-server --version` prints.
pub const PROTOCOL_VERSION: &str = "6.0.0";

/// `version()`.
pub fn version(args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Value, String> {
    bind("version", &[], args, kwargs)?;
    Ok(Value::from(PROTOCOL_VERSION))
}

/// `list_jobs()`.
pub fn list_jobs(
    service: &mut Service,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value, String> {
    bind("list_jobs", &[], args, kwargs)?;
    to_value(service.controller.list_jobs())
}

/// `list_machines()`.
pub fn list_machines(
    service: &mut Service,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value, String> {
    bind("list_machines", &[], args, kwargs)?;
    to_value(service.controller.list_machines())
}
