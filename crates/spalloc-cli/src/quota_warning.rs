//! The quota extension of this project's server: while a running job's
//! group is about to run out of its board-seconds quota, `get_job_state`
//! adds `quota_warning` (a sentence saying what is left and when the job
//! will be destroyed) and `quota_seconds_left`; the v2 job state has
//! `quota-warning` (read by the library as
//! [`spalloc::v2::QuotaWarning`]). Other servers send neither. Read from
//! the raw reply, so that the protocol's record types keep the reference's
//! shape.

use serde_json::{Map, Value};
use spalloc::ProtocolClient;

/// A job's quota warning, from either protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaWarning {
    /// In words.
    pub message: String,
    /// Seconds until the job is destroyed at its group's current rate, if
    /// the server says.
    pub seconds_left: Option<f64>,
}

impl From<spalloc::v2::QuotaWarning> for QuotaWarning {
    fn from(warning: spalloc::v2::QuotaWarning) -> Self {
        QuotaWarning {
            message: warning.message,
            seconds_left: warning.seconds_left,
        }
    }
}

/// The warning in a legacy job state record, if the server gives one.
pub fn quota_warning(record: &Value) -> Option<QuotaWarning> {
    let message = record.get("quota_warning").and_then(Value::as_str)?;
    Some(QuotaWarning {
        message: message.to_owned(),
        seconds_left: record.get("quota_seconds_left").and_then(Value::as_f64),
    })
}

/// Asks the server for a job's state and returns its quota warning (also a
/// keepalive, as every `get_job_state`).
pub fn fetch_quota_warning(
    client: &ProtocolClient,
    job_id: u64,
) -> Result<Option<QuotaWarning>, spalloc::Error> {
    let reply = client.call("get_job_state", vec![job_id.into()], Map::new())?;
    Ok(quota_warning(&reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_is_read_when_present_and_absent_otherwise() {
        let warned = serde_json::json!({"state": 3, "quota_warning": "group g has 10 left",
                                        "quota_seconds_left": 10.0});
        assert_eq!(
            quota_warning(&warned),
            Some(QuotaWarning {
                message: "group g has 10 left".into(),
                seconds_left: Some(10.0)
            })
        );
        let bare = serde_json::json!({"state": 3, "quota_warning": "w"});
        assert_eq!(quota_warning(&bare).and_then(|w| w.seconds_left), None);
        assert_eq!(quota_warning(&serde_json::json!({"state": 3})), None);
    }
}
