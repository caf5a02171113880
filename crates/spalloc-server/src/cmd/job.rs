//! Commands about one job.

use super::args::{as_job_id, bounded, optional, python_str, required};
use super::reply::JobStateReply;
use super::{create_job, to_value, Call};
use serde_json::Value;
use spalloc_protocol::JobMachineInfo;

/// `create_job(*args, **kwargs)`: returns the new job's ID.
pub fn create(call: Call) -> Result<Value, String> {
    let spec = create_job::parse(call.args, call.kwargs)?;
    let host = call.caller.host.clone();
    let controller = &mut call.service.controller;
    // Charged to the configured legacy group, if any: refused if it is out
    // of quota (see `core::usage`).
    let group = controller.legacy_group();
    let id = controller.create_charged_job(spec, host, None, group, call.now)?;
    Ok(Value::from(id))
}

/// Binds the single `job_id` parameter; `None` for values that name no job.
fn job_id(call: &mut Call, command: &str) -> Result<Option<u64>, String> {
    let bound = call.bind(command, &[required("job_id")])?;
    Ok(bound.first().and_then(as_job_id))
}

/// `job_keepalive(job_id)`.
pub fn keepalive(mut call: Call) -> Result<Value, String> {
    if let Some(id) = job_id(&mut call, "job_keepalive")? {
        let host = call.host().map(str::to_owned);
        call.service
            .controller
            .job_keepalive(id, host.as_deref(), call.now);
    }
    Ok(Value::Null)
}

/// `get_job_state(job_id)`; also a keepalive.
///
/// The reply adds this server's keys to the reference's (a queued job's
/// place and reason, a quota warning): see [`super::reply::JobExtras`].
pub fn state(mut call: Call) -> Result<JobStateReply, String> {
    let Some(id) = job_id(&mut call, "get_job_state")? else {
        return Ok(JobStateReply::unknown());
    };
    let host = call.host().map(str::to_owned);
    let controller = &mut call.service.controller;
    let record = controller.get_job_state(id, host.as_deref(), call.now);
    Ok(JobStateReply::new(controller, id, record, call.now))
}

/// `get_job_machine_info(job_id)`; also a keepalive.
pub fn machine_info(mut call: Call) -> Result<Value, String> {
    let info = match job_id(&mut call, "get_job_machine_info")? {
        Some(id) => {
            let host = call.host().map(str::to_owned);
            call.service
                .controller
                .get_job_machine_info(id, host.as_deref(), call.now)
        }
        None => JobMachineInfo::default(),
    };
    to_value(info)
}

/// `power_on_job_boards(job_id)` (`on`) and `power_off_job_boards(job_id)`.
pub fn power(mut call: Call, on: bool) -> Result<Value, String> {
    let command = if on {
        "power_on_job_boards"
    } else {
        "power_off_job_boards"
    };
    if let Some(id) = job_id(&mut call, command)? {
        let host = call.host().map(str::to_owned);
        call.service
            .controller
            .power_job(id, on, host.as_deref(), call.now);
    }
    Ok(Value::Null)
}

/// The longest destroy reason kept, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// `destroy_job(job_id, reason=None)`; not a keepalive.
pub fn destroy(mut call: Call) -> Result<Value, String> {
    let bound = call.bind("destroy_job", &[required("job_id"), optional("reason")])?;
    let reason = match &bound[1] {
        Value::Null => None,
        v => Some(python_str(v)),
    };
    if let Some(reason) = &reason {
        // Kept with the retired job and returned by get_job_state.
        bounded("reason", reason, MAX_REASON_BYTES)?;
    }
    if let Some(id) = as_job_id(&bound[0]) {
        call.service.controller.destroy_job(id, reason, call.now);
    }
    Ok(Value::Null)
}
