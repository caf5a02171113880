//! The queue extension that newer servers add to a queued job's record:
//! `queue_position` (1 at the head of its machine's queue) and
//! `queue_reason` (a sentence such as "waiting for 3 free boards; 20 of 24
//! in use"). The reference sends neither. They are read from the raw reply,
//! so that the protocol's record types keep the reference's shape.
//!
//! `spalloc-ps` reads them from `list_jobs` only: asking `get_job_state` of
//! every queued job would touch each job's keepalive (as the reference
//! server counts it), keeping abandoned jobs alive while anyone watches.

use crate::quota_warning::QuotaWarning;
use serde_json::{Map, Value};
use spalloc::{JobListing, JobState, JobStateRecord, MachineListing, ProtocolClient};

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

/// A `get_job_state` reply with this project's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStateReply {
    /// The reference's record.
    pub record: JobStateRecord,
    /// Where a queued job stands (`queue_position`, 1 at the head of its
    /// machine's queue, and `queue_reason`, a sentence); empty from the
    /// reference.
    pub queue: QueueNote,
    /// A running job's quota warning (see [`crate::quota_warning`]).
    pub quota_warning: Option<QuotaWarning>,
}

/// `get_job_state`, with the extensions some servers add.
pub fn job_state_reply(
    client: &ProtocolClient,
    job_id: u64,
) -> Result<JobStateReply, spalloc::Error> {
    let reply = client.call("get_job_state", vec![job_id.into()], Map::new())?;
    let queue = queue_note(&reply);
    let quota_warning = crate::quota_warning::quota_warning(&reply);
    let record = serde_json::from_value(reply).map_err(|e| unexpected("get_job_state", e))?;
    Ok(JobStateReply {
        record,
        queue,
        quota_warning,
    })
}

/// For servers without the extension: the queued jobs ahead of `job_id`
/// (the server queues in ID order) and how busy the machines it may run on
/// are, worked out from `list_jobs` and `list_machines` (neither of which is
/// a keepalive).
pub fn estimate_queue_note(
    job_id: u64,
    jobs: &[JobListing],
    machines: &[MachineListing],
) -> QueueNote {
    let ahead = jobs
        .iter()
        .filter(|j| j.state == JobState::Queued && j.job_id < job_id)
        .count();
    let reason = jobs.iter().find(|j| j.job_id == job_id).and_then(|job| {
        let busy: Vec<(String, usize, u32)> = candidate_machines(job, machines)
            .map(|machine| {
                let in_use: usize = jobs
                    .iter()
                    .filter(|j| j.allocated_machine_name.as_deref() == Some(&machine.name))
                    .filter_map(|j| j.boards.as_ref().map(Vec::len))
                    .sum();
                (machine.name.clone(), in_use, machine.num_boards())
            })
            .collect();
        match busy.as_slice() {
            [] => None,
            [(name, in_use, live)] => Some(format!(
                "waiting for boards on {name}; {in_use} of {live} in use"
            )),
            several => Some(format!(
                "waiting for boards: {}",
                several
                    .iter()
                    .map(|(name, in_use, live)| format!("{in_use} of {live} in use on {name}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    });
    QueueNote {
        position: None,
        reason,
        jobs_ahead: Some(ahead),
    }
}

/// The machines a job asked for: the one named by its `machine` keyword, or
/// those with all of its `tags` (by default, `default`).
fn candidate_machines<'a>(
    job: &'a JobListing,
    machines: &'a [MachineListing],
) -> impl Iterator<Item = &'a MachineListing> + 'a {
    let named = job.kwargs.get("machine").and_then(Value::as_str);
    let tags: Vec<&str> = match job.kwargs.get("tags") {
        Some(Value::Array(tags)) => tags.iter().filter_map(Value::as_str).collect(),
        _ => vec!["default"],
    };
    machines.iter().filter(move |m| match named {
        Some(name) => m.name == name,
        None => tags.iter().all(|t| m.tags.iter().any(|mt| mt == t)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine(name: &str, tags: &[&str]) -> MachineListing {
        MachineListing {
            name: name.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            width: 1,
            height: 1,
            dead_boards: vec![],
            dead_links: vec![],
        }
    }

    fn job(id: u64, state: JobState, on: Option<(&str, usize)>, kwargs: Value) -> JobListing {
        JobListing {
            job_id: id,
            owner: "me".to_owned(),
            start_time: 0.0,
            keepalive: None,
            state,
            power: None,
            args: vec![],
            kwargs: kwargs.as_object().cloned().unwrap_or_default(),
            allocated_machine_name: on.map(|(m, _)| m.to_owned()),
            boards: on.map(|(_, n)| vec![[0, 0, 0]; n]),
            keepalivehost: None,
        }
    }

    #[test]
    fn without_the_extension_the_busy_machines_are_counted_from_the_listings() {
        let machines = [machine("m1", &["default"]), machine("m2", &["big"])];
        let jobs = [
            job(1, JobState::Ready, Some(("m1", 2)), json!({})),
            job(2, JobState::Ready, Some(("m2", 3)), json!({})),
            job(3, JobState::Queued, None, json!({"tags": ["default"]})),
            job(4, JobState::Queued, None, json!({})),
            job(5, JobState::Queued, None, json!({"machine": "m2"})),
        ];
        let note = estimate_queue_note(4, &jobs, &machines);
        assert_eq!(note.jobs_ahead, Some(1));
        assert_eq!(
            note.reason.as_deref(),
            Some("waiting for boards on m1; 2 of 3 in use")
        );
        let note = estimate_queue_note(5, &jobs, &machines);
        assert_eq!(
            note.reason.as_deref(),
            Some("waiting for boards on m2; 3 of 3 in use")
        );
        assert_eq!(estimate_queue_note(9, &jobs, &machines).reason, None);
        let both = [machine("m1", &["default"]), machine("m3", &["default"])];
        assert_eq!(
            estimate_queue_note(4, &jobs, &both).reason.as_deref(),
            Some("waiting for boards: 2 of 3 in use on m1, 0 of 3 in use on m3")
        );
    }
}
