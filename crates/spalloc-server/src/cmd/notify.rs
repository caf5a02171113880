//! Subscribing to change notifications.

use super::args::{as_job_id, bind, optional, python_str};
use super::Caller;
use crate::service::Service;
use serde_json::{Map, Value};

/// `notify_job(job_id=None)` (`on`) and `no_notify_job(job_id=None)`.
pub fn job(
    service: &mut Service,
    caller: &Caller,
    on: bool,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value, String> {
    let command = if on { "notify_job" } else { "no_notify_job" };
    let bound = bind(command, &[optional("job_id")], args, kwargs)?;
    let target = match &bound[0] {
        Value::Null => None,
        // An ID that is not an integer can never change: watching it is a no-op.
        v => match as_job_id(v) {
            Some(id) => Some(id),
            None => return Ok(Value::Null),
        },
    };
    if on {
        service.watches.notify_job(caller.client, target);
    } else {
        service.watches.no_notify_job(caller.client, target);
    }
    Ok(Value::Null)
}

/// `notify_machine(machine_name=None)` (`on`) and `no_notify_machine(machine_name=None)`.
pub fn machine(
    service: &mut Service,
    caller: &Caller,
    on: bool,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value, String> {
    let command = if on {
        "notify_machine"
    } else {
        "no_notify_machine"
    };
    let bound = bind(command, &[optional("machine_name")], args, kwargs)?;
    let target = match &bound[0] {
        Value::Null => None,
        v => Some(python_str(v)),
    };
    if on {
        service.watches.notify_machine(caller.client, target);
    } else {
        service.watches.no_notify_machine(caller.client, target);
    }
    Ok(Value::Null)
}
