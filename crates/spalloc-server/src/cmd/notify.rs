//! Subscribing to change notifications.

use super::args::{as_job_id, optional, python_str};
use super::Call;
use serde_json::Value;

/// `notify_job(job_id=None)` (`on`) and `no_notify_job(job_id=None)`.
pub fn job(mut call: Call, on: bool) -> Result<Value, String> {
    let command = if on { "notify_job" } else { "no_notify_job" };
    let bound = call.bind(command, &[optional("job_id")])?;
    let target = match &bound[0] {
        Value::Null => None,
        // An ID that is not an integer can never change: watching it is a no-op.
        v => match as_job_id(v) {
            Some(id) => Some(id),
            None => return Ok(Value::Null),
        },
    };
    let (watches, client) = (&mut call.service.watches, call.caller.client);
    if on {
        watches.notify_job(client, target);
    } else {
        watches.no_notify_job(client, target);
    }
    Ok(Value::Null)
}

/// `notify_machine(machine_name=None)` (`on`) and `no_notify_machine(machine_name=None)`.
pub fn machine(mut call: Call, on: bool) -> Result<Value, String> {
    let command = if on {
        "notify_machine"
    } else {
        "no_notify_machine"
    };
    let bound = call.bind(command, &[optional("machine_name")])?;
    let target = match &bound[0] {
        Value::Null => None,
        v => Some(python_str(v)),
    };
    let (watches, client) = (&mut call.service.watches, call.caller.client);
    if on {
        watches.notify_machine(client, target);
    } else {
        watches.no_notify_machine(client, target);
    }
    Ok(Value::Null)
}
