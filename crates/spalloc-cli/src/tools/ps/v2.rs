//! `spalloc-ps` over the v2 protocol: the jobs the user may see, made into
//! the legacy `list_jobs` entries so that the table and `--json` have the
//! same shape over both protocols.

use crate::failure::Failure;
use serde_json::{Map, Value};
use spalloc::v2::{Client, JobStatus};
use spalloc::{JobListing, JobState};

/// The jobs, as legacy listings; allocated jobs' boards and power are
/// read from their `machine` and `power` resources.
pub fn list_jobs(client: &Client) -> Result<Vec<JobListing>, Failure> {
    let mut listed = Vec::new();
    for (id, status) in client.jobs(false)? {
        let job = client.job(id)?;
        let allocated = match status.job_state() {
            JobState::Power | JobState::Ready => job.sub_machine()?,
            _ => None,
        };
        let power = match allocated {
            Some(_) => job.power()?,
            None => None,
        };
        listed.push(listing(id, &status, allocated, power));
    }
    listed.sort_by_key(|j| j.job_id);
    Ok(listed)
}

/// One job's listing.
pub fn listing(
    id: u64,
    status: &JobStatus,
    allocated: Option<spalloc::v2::SubMachine>,
    power: Option<bool>,
) -> JobListing {
    let request = status.original_request.clone().unwrap_or(Value::Null);
    let keepalive = request.get("keepalive-interval").and_then(seconds);
    let mut kwargs = match request {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    kwargs.remove("keepalive-interval");
    kwargs.remove("owner");
    JobListing {
        job_id: id,
        owner: status.owner.clone().unwrap_or_default(),
        start_time: status.start_time.as_deref().map_or(0.0, unix_time),
        keepalive,
        state: status.job_state(),
        power,
        args: Vec::new(),
        kwargs,
        allocated_machine_name: allocated.as_ref().map(|m| m.machine_name.clone()),
        boards: allocated.map(|m| m.boards),
        keepalivehost: status.keepalive_host.clone(),
    }
}

/// A duration as echoed (seconds) or as sent (ISO-8601 `PT60S`).
fn seconds(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .strip_prefix("PT")
            .and_then(|s| s.strip_suffix('S'))
            .and_then(|s| s.parse().ok()),
        _ => None,
    }
}

/// An RFC 3339 instant as Unix seconds (0 if unreadable).
fn unix_time(text: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_durations_read_as_the_legacy_numbers() {
        assert_eq!(unix_time("1970-01-01T00:01:40Z"), 100.0);
        assert_eq!(unix_time("1970-01-01T00:01:40.5Z"), 100.5);
        assert_eq!(seconds(&serde_json::json!(120.0)), Some(120.0));
        assert_eq!(seconds(&serde_json::json!("PT60S")), Some(60.0));
    }
}
