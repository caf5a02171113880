//! The protocol's commands: argument binding and validation, then a call
//! into the [`Service`]. One module per group of commands:
//!
//! * [`create_job`]: the one command with real validation;
//! * [`job`]: `job_keepalive`, `get_job_state`, `get_job_machine_info`,
//!   `power_on_job_boards`, `power_off_job_boards`, `destroy_job`;
//! * [`notify`]: `notify_job`, `no_notify_job`, `notify_machine`, `no_notify_machine`;
//! * [`listing`]: `version`, `list_jobs`, `list_machines`;
//! * [`location`]: `get_board_position`, `get_board_at_position`, `where_is`.
//!
//! Everything here is sans-I/O: the shell passes the client's identity and
//! the time in.

pub mod args;
pub mod create_job;
pub mod job;
pub mod listing;
pub mod location;
pub mod notify;

use crate::core::watch::ClientId;
use crate::service::Service;
use serde_json::Value;
use spalloc_protocol::Request;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The connection.
    pub client: ClientId,
    /// The peer's IP address, recorded as a job's `keepalivehost`.
    pub host: Option<String>,
}

/// Every command the server understands, for error messages and docs.
pub const COMMANDS: [&str; 16] = [
    "version",
    "create_job",
    "job_keepalive",
    "get_job_state",
    "get_job_machine_info",
    "power_on_job_boards",
    "power_off_job_boards",
    "destroy_job",
    "notify_job",
    "no_notify_job",
    "notify_machine",
    "no_notify_machine",
    "list_jobs",
    "list_machines",
    "get_board_position",
    "get_board_at_position",
];

/// Runs one request; `Err` is the message of an `exception` reply.
pub fn dispatch(
    service: &mut Service,
    caller: &Caller,
    request: Request,
    now: f64,
) -> Result<Value, String> {
    let Request {
        command,
        args,
        mut kwargs,
    } = request;
    // The reference reserves this name for its own use and drops it.
    kwargs.remove("client");
    match command.as_str() {
        "version" => listing::version(args, kwargs),
        "create_job" => job::create(service, caller, args, kwargs, now),
        "job_keepalive" => job::keepalive(service, caller, args, kwargs, now),
        "get_job_state" => job::state(service, caller, args, kwargs, now),
        "get_job_machine_info" => job::machine_info(service, caller, args, kwargs, now),
        "power_on_job_boards" => job::power(service, caller, true, args, kwargs, now),
        "power_off_job_boards" => job::power(service, caller, false, args, kwargs, now),
        "destroy_job" => job::destroy(service, args, kwargs, now),
        "notify_job" => notify::job(service, caller, true, args, kwargs),
        "no_notify_job" => notify::job(service, caller, false, args, kwargs),
        "notify_machine" => notify::machine(service, caller, true, args, kwargs),
        "no_notify_machine" => notify::machine(service, caller, false, args, kwargs),
        "list_jobs" => listing::list_jobs(service, args, kwargs),
        "list_machines" => listing::list_machines(service, args, kwargs),
        "get_board_position" => location::board_position(service, args, kwargs),
        "get_board_at_position" => location::board_at_position(service, args, kwargs),
        "where_is" => location::where_is(service, args, kwargs),
        other => Err(format!(
            "unknown command: {other:?} (known commands: {}, where_is)",
            COMMANDS.join(", ")
        )),
    }
}

/// Serialises a reply value; the records only hold JSON-safe data.
fn to_value<T: serde::Serialize>(v: T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("internal error: {e}"))
}
