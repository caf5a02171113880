//! `GET /usage`: the board-seconds the caller's jobs used, finished and
//! running, with their groups' quotas (an extension: allocserv has no
//! usage or quota endpoint). See [`crate::core::usage`] for what is
//! charged to whom.
//!
//! Query parameters (all optional): `since` and `until` (Unix seconds: jobs
//! that ended in `[since, until)`; running jobs match unless `until` is
//! given), `start` and `limit` (paging, newest job first; `limit` 1 to
//! 1000, default 100). Administrators may add `user=NAME` (anyone's jobs,
//! legacy jobs of that owner included) or `all=true` (everybody's); anyone
//! else asking for another user gets 403.
//!
//! The reply: `{"user", "matched", "total-board-seconds", "by-group":
//! {group: X}, "groups": [{"name", "used-board-seconds", "quota",
//! "remaining"}], "jobs": [{"id", "owner", "group", "machine", "boards",
//! "start-time", "finish-time", "board-seconds", "reason", "running"}],
//! "next"?}`; `total-board-seconds` and `by-group` count every matching
//! job, not only the page; `groups` gives the standing (all members' use)
//! of the caller's groups and of every group charged.

use super::query::Query;
use super::time_format::instant;
use super::{ApiRequest, Failure, Outcome, Reply, Role};
use crate::core::usage::UsageQuery;
use crate::service::Service;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The most rows one page may ask for.
pub const LIMIT_LIMIT: i64 = 1000;

/// A time parameter: Unix seconds.
fn time(q: &Query, name: &str) -> Result<Option<f64>, Failure> {
    match q.get(name) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .map(Some)
            .ok_or_else(|| Failure::bad(format!("{name} must be a time in Unix seconds"))),
    }
}

/// `GET /usage`.
pub fn usage(service: &Service, request: &ApiRequest, q: &Query, now: f64) -> Outcome {
    let admin = request.user.role == Role::Admin;
    let all = q.flag("all")?;
    let asked = q.get("user").map(str::trim).filter(|u| !u.is_empty());
    if (all || asked.is_some_and(|u| u != request.user.name)) && !admin {
        return Err(Failure::forbidden(
            "only administrators may see other users' usage",
        ));
    }
    let user = asked.unwrap_or(&request.user.name).to_owned();
    let limit = q.int("limit", 100, 1, LIMIT_LIMIT)? as usize;
    let start = q.int("start", 0, 0, i64::MAX)?;
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let query = UsageQuery {
        owner: (!all).then(|| user.clone()),
        // A user's own view is of their v2 jobs: a legacy job's owner is
        // unauthenticated text that anybody may have typed.
        legacy: (!admin).then_some(false),
        since: time(q, "since")?,
        until: time(q, "until")?,
        start,
        limit,
    };
    let controller = &service.controller;
    let report = controller.usage_report(&query, now);
    let jobs: Vec<Value> = report
        .jobs
        .iter()
        .map(|r| {
            json!({
                "id": r.job_id,
                "job-ref": format!("{}/jobs/{}", request.base, r.job_id),
                "owner": r.owner,
                "group": r.group,
                "machine": r.machine,
                "boards": r.boards,
                "start-time": instant(r.start_time),
                "finish-time": r.finish_time.and_then(instant),
                "board-seconds": r.board_seconds,
                "reason": r.reason,
                "running": r.finish_time.is_none(),
            })
        })
        .collect();
    let mut groups: BTreeSet<&String> = report.by_group.keys().collect();
    if user == request.user.name {
        groups.extend(request.user.groups.iter());
    }
    let standings: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let s = controller.group_standing(g, now);
            json!({
                "name": g,
                "used-board-seconds": s.used,
                "quota": s.quota,
                "remaining": s.remaining(),
            })
        })
        .collect();
    let mut body = json!({
        "user": if all { Value::Null } else { json!(user) },
        "matched": report.matched,
        "total-board-seconds": report.total,
        "by-group": report.by_group,
        "groups": standings,
        "jobs": jobs,
    });
    let mut reply_link = None;
    if start.saturating_add(limit) < report.matched {
        let mut pairs: Vec<String> = q
            .pairs()
            .iter()
            .filter(|(k, _)| k != "start")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        pairs.push(format!("start={}", start + limit));
        let next = format!("{}/usage?{}", request.base, pairs.join("&"));
        reply_link = Some(format!("<{next}>; rel=\"next\""));
        body["next"] = json!(next);
    }
    let mut reply = Reply::json(body);
    reply.link = reply_link;
    Ok(reply)
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
