//! `list_usage(owner=None, since=None, until=None, start=None, limit=None)`:
//! board-seconds of finished and running jobs (an extension; the reference
//! has no usage at all), and the quota keys of a job's state. See
//! [`crate::core::usage`] for what is charged to whom.
//!
//! The legacy protocol is unauthenticated and `list_jobs` already shows
//! everybody's jobs, so `list_usage` does too; `owner` narrows it.
//!
//! The reply: `{"jobs": [...], "matched": N, "total_board_seconds": X,
//! "by_owner": {owner: X}, "by_group": {group: X}, "groups": [...]}`, jobs
//! newest first, each `{"job_id", "owner", "group", "legacy", "machine",
//! "boards", "start_time", "finish_time" (null while running),
//! "board_seconds", "reason"}`; `groups` gives each charged group's standing:
//! `{"group", "used", "quota" (null if unlimited), "remaining"}`.

use super::args::{as_float, as_int, optional, python_str};
use super::Call;
use crate::core::controller::Controller;
use crate::core::usage::{UsageQuery, UsageReport};
use serde_json::{json, Value};

/// The most rows one reply carries (and the default).
pub const MAX_ROWS: usize = 1000;

/// `list_usage(...)`.
pub fn list_usage(mut call: Call) -> Result<Value, String> {
    let bound = call.bind(
        "list_usage",
        &[
            optional("owner"),
            optional("since"),
            optional("until"),
            optional("start"),
            optional("limit"),
        ],
    )?;
    let time = |v: &Value| -> Result<Option<f64>, String> {
        match v {
            Value::Null => Ok(None),
            v => as_float(v).map(Some),
        }
    };
    let count = |name: &str, v: &Value, default: usize| -> Result<usize, String> {
        match v {
            Value::Null => Ok(default),
            v => as_int(v)
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| format!("{name} must be a non-negative integer")),
        }
    };
    let query = UsageQuery {
        owner: match &bound[0] {
            Value::Null => None,
            v => Some(python_str(v)),
        },
        legacy: None,
        since: time(&bound[1])?,
        until: time(&bound[2])?,
        start: count("start", &bound[3], 0)?,
        limit: count("limit", &bound[4], MAX_ROWS)?.min(MAX_ROWS),
    };
    let controller = &call.service.controller;
    let report = controller.usage_report(&query, call.now);
    Ok(report_json(controller, &report, call.now))
}

/// A report as the legacy reply shows it.
fn report_json(controller: &Controller, report: &UsageReport, now: f64) -> Value {
    let jobs: Vec<Value> = report
        .jobs
        .iter()
        .map(|r| {
            json!({
                "job_id": r.job_id,
                "owner": r.owner,
                "group": r.group,
                "legacy": r.legacy,
                "machine": r.machine,
                "boards": r.boards,
                "start_time": r.start_time,
                "finish_time": r.finish_time,
                "board_seconds": r.board_seconds,
                "reason": r.reason,
            })
        })
        .collect();
    let groups: Vec<Value> = report
        .by_group
        .keys()
        .map(|g| {
            let s = controller.group_standing(g, now);
            json!({"group": g, "used": s.used, "quota": s.quota, "remaining": s.remaining()})
        })
        .collect();
    json!({
        "jobs": jobs,
        "matched": report.matched,
        "total_board_seconds": report.total,
        "by_owner": report.by_owner,
        "by_group": report.by_group,
        "groups": groups,
    })
}
