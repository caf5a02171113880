//! `spalloc-ps --history`: finished (and running) jobs with the
//! board-seconds they used, and the totals, over either protocol (the
//! server's `list_usage` command, or its v2 `GET usage`). At most the
//! newest 1000 jobs are listed; the totals count every matching job.

use crate::failure::Failure;
use crate::output::{print_json, print_line};
use crate::render::{render_table, render_timestamp, TableCell};
use crate::terminal::{Style, Terminal};
use serde_json::Value;
use spalloc::usage::{GroupUsage, UsageReport, UsageRow};

/// Over the legacy protocol: `owner`'s jobs, or everybody's.
pub fn run_legacy(
    client: &spalloc::ProtocolClient,
    owner: Option<&str>,
    machine: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    show(client.list_usage(owner)?, machine, json)
}

/// Over v2: the logged-in user's jobs, or (administrators) `user`'s.
pub fn run_v2(
    client: &spalloc::v2::Client,
    user: Option<&str>,
    machine: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let answer = client.usage(user)?;
    show(from_v2(&answer), machine, json)
}

fn show(mut report: UsageReport, machine: Option<&str>, json: bool) -> Result<(), Failure> {
    if let Some(m) = machine {
        report.jobs.retain(|r| r.machine.as_deref() == Some(m));
    }
    if json {
        return print_json(&report);
    }
    print_line(&render(&report, &Terminal::stderr()))
}

/// The table and the totals.
pub fn render(report: &UsageReport, terminal: &Terminal) -> String {
    let header = [
        "ID",
        "Owner",
        "Group",
        "Machine",
        "Boards",
        "Created at",
        "Ended at",
        "Board-seconds",
        "Reason",
    ];
    let mut rows = vec![header
        .iter()
        .map(|h| TableCell::text(*h).styled(Style::UNDERSCORE_BRIGHT))
        .collect::<Vec<_>>()];
    for r in &report.jobs {
        rows.push(vec![
            TableCell::number(r.job_id),
            TableCell::text(r.owner.clone()),
            TableCell::text(r.group.clone().unwrap_or_default()),
            TableCell::text(r.machine.clone().unwrap_or_default()),
            TableCell::number(r.boards),
            TableCell::text(render_timestamp(r.start_time)),
            match r.finish_time {
                Some(t) => TableCell::text(render_timestamp(t)),
                None => TableCell::text("running").styled(Style::GREEN),
            },
            TableCell::number(format!("{:.0}", r.board_seconds)),
            TableCell::text(r.reason.clone().unwrap_or_default()),
        ]);
    }
    let mut text = render_table(&rows, terminal);
    text.push_str(&format!(
        "\nTotal: {:.0} board-seconds ({:.2} board-hours) over {} jobs",
        report.total_board_seconds,
        report.total_board_seconds / 3600.0,
        report.matched
    ));
    if report.matched > report.jobs.len() {
        text.push_str(&format!(" ({} listed)", report.jobs.len()));
    }
    for g in &report.groups {
        text.push_str(&format!(
            "\nGroup {}: {:.0} board-seconds used",
            g.group, g.used
        ));
        if let (Some(quota), Some(left)) = (g.quota, g.remaining) {
            text.push_str(&format!(" of its {quota:.0} quota ({left:.0} left)"));
        }
    }
    text
}

/// The v2 reply as the legacy report (times from RFC 3339 to Unix seconds).
fn from_v2(v: &Value) -> UsageReport {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let time = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
    };
    let list = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    UsageReport {
        jobs: list("jobs")
            .iter()
            .map(|j| UsageRow {
                job_id: j.get("id").and_then(Value::as_u64).unwrap_or(0),
                owner: text(j, "owner").unwrap_or_default(),
                group: text(j, "group"),
                machine: text(j, "machine"),
                boards: j
                    .get("boards")
                    .and_then(Value::as_u64)
                    .and_then(|b| u32::try_from(b).ok())
                    .unwrap_or(0),
                start_time: time(j, "start-time").unwrap_or(0.0),
                finish_time: time(j, "finish-time"),
                board_seconds: number(j, "board-seconds").unwrap_or(0.0),
                reason: text(j, "reason"),
            })
            .collect(),
        matched: v
            .get("matched")
            .and_then(Value::as_u64)
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(0),
        total_board_seconds: number(v, "total-board-seconds").unwrap_or(0.0),
        groups: list("groups")
            .iter()
            .map(|g| GroupUsage {
                group: text(g, "name").unwrap_or_default(),
                used: number(g, "used-board-seconds").unwrap_or(0.0),
                quota: number(g, "quota"),
                remaining: number(g, "remaining"),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_report_reads_as_the_legacy_one_and_renders_its_totals() {
        let v = serde_json::json!({
            "matched": 2, "total-board-seconds": 7200.0,
            "groups": [{"name": "g", "used-board-seconds": 9000.0, "quota": 10000.0, "remaining": 1000.0}],
            "jobs": [{"id": 4, "owner": "u", "group": "g", "machine": "m", "boards": 3,
                      "start-time": "1970-01-01T00:01:40Z", "finish-time": null,
                      "board-seconds": 7200.0, "reason": null, "running": true}]
        });
        let report = from_v2(&v);
        assert_eq!(report.jobs[0].start_time, 100.0);
        assert_eq!(report.jobs[0].finish_time, None);
        assert_eq!(report.groups[0].remaining, Some(1000.0));
        let text = render(&report, &Terminal::forced(false));
        assert!(text.contains("running"), "{text}");
        assert!(
            text.contains("Total: 7200 board-seconds (2.00 board-hours) over 2 jobs (1 listed)"),
            "{text}"
        );
        assert!(
            text.contains("Group g: 9000 board-seconds used of its 10000 quota (1000 left)"),
            "{text}"
        );
    }
}
