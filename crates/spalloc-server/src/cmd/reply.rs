//! What a command answers, and the line that carries it.
//!
//! Most commands answer a JSON value. `get_job_state`, the call clients
//! poll, answers a typed record ([`JobStateReply`]) that is serialised
//! straight into its reply line: building a `serde_json::Value` map from
//! the record (hashing each key) and serialising that was a fifth of the
//! server's work for the call. The line is the same either way (a test
//! checks).

use crate::core::controller::Controller;
use serde::Serialize;
use serde_json::Value;
use spalloc_protocol::{JobStateRecord, ServerMessage};

/// A command's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Any JSON value.
    Value(Value),
    /// A job's state.
    JobState(JobStateReply),
}

/// `get_job_state`'s answer: the reference's record, then this server's
/// extensions ([`JobExtras`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStateReply {
    /// The reference's keys.
    #[serde(flatten)]
    pub record: JobStateRecord,
    /// This server's keys, each only when it applies.
    #[serde(flatten)]
    pub extras: JobExtras,
}

/// The keys this server adds to a job's record (a `get_job_state` reply or
/// a `list_jobs` entry), each only when it applies, so that other records
/// keep exactly the reference's keys (the Python clients read the keys
/// they know and ignore the rest). One place, so both replies say the same.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobExtras {
    /// A queued job's place in its machine's queue (1 = head; 0 if it is
    /// in no queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
    /// Why a queued job waits, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_reason: Option<String>,
    /// That the job's group is about to run out of quota, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_warning: Option<String>,
    /// Whole seconds the group's quota has left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_seconds_left: Option<f64>,
}

impl JobExtras {
    /// Job `id`'s queue status and quota warning at `now`.
    pub fn of(controller: &Controller, id: u64, now: f64) -> Self {
        let queue = controller.queue_status(id);
        let quota = controller.quota_warning(id, now);
        JobExtras {
            queue_position: queue.as_ref().map(|s| s.position),
            queue_reason: queue.map(|s| s.reason.to_string()),
            quota_seconds_left: quota.as_ref().map(|w| w.seconds_left.floor()),
            quota_warning: quota.map(|w| w.message()),
        }
    }

    /// Adds the keys that apply to `record`, a JSON object.
    pub fn add_to(self, record: &mut Value) {
        if self == JobExtras::default() {
            return; // most jobs: nothing to add (list_jobs calls this per job)
        }
        if let (Ok(Value::Object(extras)), Value::Object(map)) =
            (serde_json::to_value(self), record)
        {
            map.extend(extras);
        }
    }
}

impl JobStateReply {
    /// Job `id`'s `record`, with its extensions at `now`.
    pub fn new(controller: &Controller, id: u64, record: JobStateRecord, now: f64) -> Self {
        JobStateReply {
            record,
            extras: JobExtras::of(controller, id, now),
        }
    }

    /// The answer for an ID no job has.
    pub fn unknown() -> Self {
        JobStateReply {
            record: JobStateRecord::unknown(),
            extras: JobExtras::default(),
        }
    }
}

/// The reply line of an answer, or of an exception's message.
pub fn line(answer: &Result<Reply, String>) -> Vec<u8> {
    match answer {
        Ok(Reply::Value(v)) => ServerMessage::return_line(v),
        Ok(Reply::JobState(r)) => ServerMessage::return_line(r),
        Err(message) => ServerMessage::Exception(message.clone()).to_line(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spalloc_protocol::JobState;

    #[test]
    fn a_job_state_line_is_the_line_of_its_json_value() {
        let record = JobStateRecord {
            state: JobState::Ready,
            power: Some(true),
            keepalive: Some(60.0),
            reason: None,
            start_time: Some(1_733_443_200.123_456),
            keepalivehost: Some("10.0.0.1".into()),
        };
        let queued = JobStateReply {
            record: JobStateRecord {
                state: JobState::Queued,
                power: None,
                ..record.clone()
            },
            extras: JobExtras {
                queue_position: Some(3),
                queue_reason: Some("waiting for 2 boards".into()),
                quota_warning: Some("group g has 10 s left".into()),
                quota_seconds_left: Some(10.0),
            },
        };
        let plain = JobStateReply {
            record,
            ..JobStateReply::unknown()
        };
        for reply in [plain, queued, JobStateReply::unknown()] {
            let typed = line(&Ok(Reply::JobState(reply.clone())));
            let value = serde_json::to_value(&reply).expect("value");
            assert_eq!(
                String::from_utf8_lossy(&typed),
                String::from_utf8_lossy(&ServerMessage::Return(value).to_line())
            );
        }
    }
}
