//! `get_job_state` with the queue extension that newer servers add for a
//! queued job, read without changing the protocol's record type (which
//! stays the reference's shape).

use serde_json::{Map, Value};
use spalloc::{JobStateRecord, ProtocolClient};

/// A `get_job_state` reply with the queue extension some servers add for a
/// queued job (`queue_position`, 1 at the head of its machine's queue, and
/// `queue_reason`, a sentence); the reference sends neither.
pub fn job_state_with_queue(
    client: &ProtocolClient,
    job_id: u64,
) -> Result<(JobStateRecord, Option<u64>, Option<String>), spalloc::Error> {
    let reply = client.call("get_job_state", vec![job_id.into()], Map::new())?;
    let position = reply.get("queue_position").and_then(Value::as_u64);
    let reason = reply
        .get("queue_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let record = serde_json::from_value(reply).map_err(|e| {
        spalloc::Error::ProtocolError(format!("unexpected reply to \"get_job_state\": {e}"))
    })?;
    Ok((record, position, reason))
}
