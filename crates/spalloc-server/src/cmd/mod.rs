//! The protocol's commands: argument binding and validation, then a call
//! into the [`Service`]. One module per group of commands:
//!
//! * [`create_job`]: the one command with real validation;
//! * [`job`]: `job_keepalive`, `get_job_state`, `get_job_machine_info`,
//!   `power_on_job_boards`, `power_off_job_boards`, `destroy_job`;
//! * [`notify`]: `notify_job`, `no_notify_job`, `notify_machine`, `no_notify_machine`;
//! * [`listing`]: `version`, `list_jobs`, `list_machines`;
//! * [`location`]: `get_board_position`, `get_board_at_position`, `where_is`;
//! * [`report`]: `report_problem` (allocserv's, not the Python reference's).
//! * [`usage`]: `list_usage` (an extension: board-seconds and quotas).
//!
//! The commands themselves are the [`Command`] enum; [`dispatch`] matches
//! every variant, so adding one without a handler does not compile. The
//! handlers call the controller's operations, which the v2 REST API
//! ([`crate::rest`]) calls too: one rule, two front ends.
//!
//! Everything here is sans-I/O: the shell passes the client's identity and
//! the time in.

pub mod args;
pub mod command;
pub mod create_job;
pub mod job;
pub mod listing;
pub mod location;
pub mod notify;
pub mod reply;
pub mod report;
pub mod usage;

use crate::core::watch::ClientId;
use crate::service::Service;
pub use command::Command;
use serde_json::{Map, Value};
use spalloc_protocol::Request;

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The connection.
    pub client: ClientId,
    /// The peer's IP address, recorded as a job's `keepalivehost`.
    pub host: Option<String>,
}

/// One command invocation: who asked, when, with what arguments, and the
/// service to run it on.
pub struct Call<'a> {
    /// The service.
    pub service: &'a mut Service,
    /// Who sent it.
    pub caller: &'a Caller,
    /// When (Unix seconds).
    pub now: f64,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
}

impl Call<'_> {
    /// Binds the arguments to `command`'s parameters, Python style.
    pub fn bind(&mut self, command: &str, params: &[args::Param]) -> Result<Vec<Value>, String> {
        args::bind(
            command,
            params,
            std::mem::take(&mut self.args),
            std::mem::take(&mut self.kwargs),
        )
    }

    /// The caller's IP address, for keepalive bookkeeping.
    pub fn host(&self) -> Option<&str> {
        self.caller.host.as_deref()
    }
}

/// Runs one request; `Err` is the message of an `exception` reply.
pub fn dispatch(
    service: &mut Service,
    caller: &Caller,
    request: Request,
    now: f64,
) -> Result<reply::Reply, String> {
    let Request {
        command,
        args,
        mut kwargs,
    } = request;
    // The reference reserves this name for its own use and drops it.
    kwargs.remove("client");
    let call = Call {
        service,
        caller,
        now,
        args,
        kwargs,
    };
    let Some(command) = Command::from_name(&command) else {
        return Err(format!(
            "unknown command: {command:?} (known commands: {})",
            Command::names().collect::<Vec<_>>().join(", ")
        ));
    };
    let value = match command {
        Command::GetJobState => return job::state(call).map(reply::Reply::JobState),
        Command::Version => listing::version(call),
        Command::CreateJob => job::create(call),
        Command::JobKeepalive => job::keepalive(call),
        Command::GetJobMachineInfo => job::machine_info(call),
        Command::PowerOnJobBoards => job::power(call, true),
        Command::PowerOffJobBoards => job::power(call, false),
        Command::DestroyJob => job::destroy(call),
        Command::NotifyJob => notify::job(call, true),
        Command::NoNotifyJob => notify::job(call, false),
        Command::NotifyMachine => notify::machine(call, true),
        Command::NoNotifyMachine => notify::machine(call, false),
        Command::ListJobs => listing::list_jobs(call),
        Command::ListMachines => listing::list_machines(call),
        Command::GetBoardPosition => location::board_position(call),
        Command::GetBoardAtPosition => location::board_at_position(call),
        Command::WhereIs => location::where_is(call),
        Command::ReportProblem => report::report_problem(call),
        Command::ListUsage => usage::list_usage(call),
    };
    value.map(reply::Reply::Value)
}

/// Serialises a reply value; the records only hold JSON-safe data.
fn to_value<T: serde::Serialize>(v: T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("internal error: {e}"))
}
