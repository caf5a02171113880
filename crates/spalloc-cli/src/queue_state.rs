//! The queue extension that newer servers add to a queued job's record:
//! `queue_position` (1 at the head of its machine's queue) and
//! `queue_reason` (a sentence such as "waiting for 3 free boards; 20 of 24
//! in use"). The reference sends neither. They are read from the raw reply,
//! so that the protocol's record types keep the reference's shape.
//!
//! `spalloc-ps` reads them from `list_jobs` only: asking `get_job_state` of
//! every queued job would touch each job's keepalive (as the reference
//! server counts it), keeping abandoned jobs alive while anyone watches.

use serde_json::{Map, Value};
use spalloc::{JobListing, JobStateRecord, ProtocolClient};

/// Where a queued job stands and what it waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueNote {
    /// The server's `queue_position` (1: at the head of its machine's queue).
    pub position: Option<u64>,
    /// The server's `queue_reason`, such as "waiting for 3 free boards; 20
    /// of 24 in use".
    pub reason: Option<String>,
    /// Queued jobs created before this one, counted from `list_jobs` when
    /// the server gives no position.
    pub jobs_ahead: Option<usize>,
}

impl QueueNote {
    /// Where the job is and what it waits for, as the server says; `None`
    /// when it says nothing (the reference server).
    pub fn describe(&self) -> Option<String> {
        join(self.position.and_then(place), self.reason.clone())
    }
}

/// Where `position` (1 at the head) is, in words; `None` for 0, which a
/// server sends for a job that is in no queue.
pub fn place(position: u64) -> Option<String> {
    let ahead = usize::try_from(position).ok()?.checked_sub(1)?;
    Some(ahead_text(ahead))
}

/// `ahead` queued jobs before this one, in words.
pub fn ahead_text(ahead: usize) -> String {
    match ahead {
        0 => "at the head of the queue".to_owned(),
        1 => "1 queued job ahead".to_owned(),
        n => format!("{n} queued jobs ahead"),
    }
}

/// A place and a reason as one phrase (`place: reason`), either alone, or `None`.
pub fn join(place: Option<String>, reason: Option<String>) -> Option<String> {
    match (place, reason) {
        (Some(place), Some(reason)) => Some(format!("{place}: {reason}")),
        (place, reason) => place.or(reason),
    }
}

/// The extension's two keys in one reply object.
fn queue_note(record: &Value) -> QueueNote {
    QueueNote {
        position: record.get("queue_position").and_then(Value::as_u64),
        reason: record
            .get("queue_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        jobs_ahead: None,
    }
}

fn unexpected(command: &str, error: serde_json::Error) -> spalloc::Error {
    spalloc::Error::ProtocolError(format!("unexpected reply to {command:?}: {error}"))
}

/// `list_jobs`, each job with its queue note (empty unless the server adds
/// the extension to the listing).
pub fn list_jobs_with_queue(
    client: &ProtocolClient,
) -> Result<Vec<(JobListing, QueueNote)>, spalloc::Error> {
    let reply = client.call("list_jobs", vec![], Map::new())?;
    let Value::Array(entries) = reply else {
        return Err(spalloc::Error::ProtocolError(
            "unexpected reply to \"list_jobs\": not a list".to_owned(),
        ));
    };
    entries
        .into_iter()
        .map(|entry| {
            let note = queue_note(&entry);
            let job = serde_json::from_value(entry).map_err(|e| unexpected("list_jobs", e))?;
            Ok((job, note))
        })
        .collect()
}

/// A `get_job_state` reply with the queue extension some servers add for a
/// queued job (`queue_position`, 1 at the head of its machine's queue, and
/// `queue_reason`, a sentence); the reference sends neither.
pub fn job_state_with_queue(
    client: &ProtocolClient,
    job_id: u64,
) -> Result<(JobStateRecord, QueueNote), spalloc::Error> {
    let reply = client.call("get_job_state", vec![job_id.into()], Map::new())?;
    let note = queue_note(&reply);
    let record = serde_json::from_value(reply).map_err(|e| unexpected("get_job_state", e))?;
    Ok((record, note))
}
