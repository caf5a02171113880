//! Usage reports (a server extension, issue 16): the board-seconds of
//! finished and running jobs, and the quotas of the groups charged, as the
//! legacy `list_usage` command replies.

use serde::{Deserialize, Serialize};

/// One job's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The job.
    pub job_id: u64,
    /// Who created it.
    pub owner: String,
    /// The group charged, if any.
    #[serde(default)]
    pub group: Option<String>,
    /// The machine of its (last) boards, if it had any.
    #[serde(default)]
    pub machine: Option<String>,
    /// How many boards it (last) held.
    #[serde(default)]
    pub boards: u32,
    /// Unix time of creation.
    pub start_time: f64,
    /// Unix time of its end; `None` while it runs.
    #[serde(default)]
    pub finish_time: Option<f64>,
    /// Board-seconds used (so far, for a running job).
    pub board_seconds: f64,
    /// Why it ended.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Where a group stands against its quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupUsage {
    /// The group.
    pub group: String,
    /// Board-seconds its jobs (every member's) used.
    pub used: f64,
    /// Its quota in board-seconds; `None` if unlimited.
    #[serde(default)]
    pub quota: Option<f64>,
    /// Board-seconds left; `None` if unlimited.
    #[serde(default)]
    pub remaining: Option<f64>,
}

/// A usage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The jobs (newest first; at most one page).
    pub jobs: Vec<UsageRow>,
    /// How many jobs matched (the page may hold fewer).
    pub matched: usize,
    /// Board-seconds of every matching job.
    pub total_board_seconds: f64,
    /// The groups charged.
    #[serde(default)]
    pub groups: Vec<GroupUsage>,
}
