//! The quota extension of this project's server: while a running job's
//! group is about to run out of its board-seconds quota, `get_job_state`
//! adds `quota_warning` (a sentence saying what is left and when the job
//! will be destroyed) and `quota_seconds_left`. Other servers send neither.
//! Read from the raw reply, so that the protocol's record types keep the
//! reference's shape.

use serde_json::{Map, Value};
use spalloc::ProtocolClient;

/// The warning in a job's state record, if the server gives one.
pub fn quota_warning(record: &Value) -> Option<String> {
    record
        .get("quota_warning")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Asks the server for a job's state and returns its quota warning (also a
/// keepalive, as every `get_job_state`).
pub fn fetch_quota_warning(
    client: &ProtocolClient,
    job_id: u64,
) -> Result<Option<String>, spalloc::Error> {
    let reply = client.call("get_job_state", vec![job_id.into()], Map::new())?;
    Ok(quota_warning(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_is_read_when_present_and_absent_otherwise() {
        let warned = serde_json::json!({"state": 3, "quota_warning": "group g has 10 left"});
        assert_eq!(
            quota_warning(&warned).as_deref(),
            Some("group g has 10 left")
        );
        assert_eq!(quota_warning(&serde_json::json!({"state": 3})), None);
    }
}
