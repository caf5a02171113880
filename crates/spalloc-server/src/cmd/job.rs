//! Commands about one job.

use super::args::{as_job_id, bind, optional, python_str, required};
use super::{create_job, to_value, Caller};
use crate::service::Service;
use serde_json::{Map, Value};

/// `create_job(*args, **kwargs)`: returns the new job's ID.
pub fn create(
    service: &mut Service,
    caller: &Caller,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    now: f64,
) -> Result<Value, String> {
    let spec = create_job::parse(args, kwargs)?;
    let id = service
        .controller
        .create_job(spec, caller.host.clone(), now);
    Ok(Value::from(id))
}

fn job_id(
    command: &str,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Option<u64>, String> {
    let bound = bind(command, &[required("job_id")], args, kwargs)?;
    Ok(bound.first().and_then(as_job_id))
}

/// `job_keepalive(job_id)`.
pub fn keepalive(
    service: &mut Service,
    caller: &Caller,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    now: f64,
) -> Result<Value, String> {
    if let Some(id) = job_id("job_keepalive", args, kwargs)? {
        service
            .controller
            .job_keepalive(id, caller.host.as_deref(), now);
    }
    Ok(Value::Null)
}

/// `get_job_state(job_id)`.
pub fn state(
    service: &mut Service,
    caller: &Caller,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    now: f64,
) -> Result<Value, String> {
    let record = match job_id("get_job_state", args, kwargs)? {
        Some(id) => service
            .controller
            .get_job_state(id, caller.host.as_deref(), now),
        None => spalloc_protocol::JobStateRecord::unknown(),
    };
    to_value(record)
}

/// `get_job_machine_info(job_id)`.
pub fn machine_info(
    service: &mut Service,
    caller: &Caller,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    now: f64,
) -> Result<Value, String> {
    let info = match job_id("get_job_machine_info", args, kwargs)? {
        Some(id) => service
            .controller
            .get_job_machine_info(id, caller.host.as_deref(), now),
        None => spalloc_protocol::JobMachineInfo::default(),
    };
    to_value(info)
}

/// `power_on_job_boards(job_id)` and `power_off_job_boards(job_id)`.
pub fn power(
    service: &mut Service,
    caller: &Caller,
    on: bool,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    now: f64,
) -> Result<Value, String> {
    let command = if on {
        "power_on_job_boards"
    } else {
        "power_off_job_boards"
    };
    if let Some(id) = job_id(command, args, kwargs)? {
        service
            .controller
            .power_job(id, on, caller.host.as_deref(), now);
    }
    Ok(Value::Null)
}

/// `destroy_job(job_id, reason=None)`.
pub fn destroy(
    service: &mut Service,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    now: f64,
) -> Result<Value, String> {
    let bound = bind(
        "destroy_job",
        &[required("job_id"), optional("reason")],
        args,
        kwargs,
    )?;
    let reason = match &bound[1] {
        Value::Null => None,
        v => Some(python_str(v)),
    };
    if let Some(id) = as_job_id(&bound[0]) {
        service.controller.destroy_job(id, reason, now);
    }
    Ok(Value::Null)
}
