//! Subscribing to change notifications. As in the reference, watching a
//! job or machine that does not exist is not an error, but here it is not
//! recorded either: only live jobs and configured machines can change, and
//! an unbounded list of names that never will must not cost memory. A
//! connection watches at most [`MAX_WATCHES_PER_CLIENT`] of each one by one.
//!
//! [`MAX_WATCHES_PER_CLIENT`]: crate::core::watch::MAX_WATCHES_PER_CLIENT

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
    let service = &mut *call.service;
    let (watches, client) = (&mut service.watches, call.caller.client);
    if !on {
        watches.no_notify_job(client, target);
        return Ok(Value::Null);
    }
    let jobs = &service.controller.jobs;
    // A job that is not live never changes again: watching it costs nothing.
    if target.is_some_and(|id| !jobs.is_live(id)) {
        return Ok(Value::Null);
    }
    watches
        .notify_job(client, target, |id| jobs.is_live(*id))
        .map_err(|e| e.to_string())?;
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
    let service = &mut *call.service;
    let (watches, client) = (&mut service.watches, call.caller.client);
    if !on {
        watches.no_notify_machine(client, target);
        return Ok(Value::Null);
    }
    let controller = &service.controller;
    let exists = |name: &String| controller.machines().any(|m| m.name == *name);
    // A name no machine has is never notified: watching it costs nothing
    // (a machine added later by a reload is covered by watching them all).
    if target.as_ref().is_some_and(|name| !exists(name)) {
        return Ok(Value::Null);
    }
    watches
        .notify_machine(client, target, exists)
        .map_err(|e| e.to_string())?;
    Ok(Value::Null)
}
