//! Usage accounting and quotas (issue 16, item 4): board-seconds per job,
//! user and group, kept after the job is gone, and optional per-group
//! budgets in board-seconds.
//!
//! **What is charged.** A job is charged `boards × seconds` for every
//! stretch during which it holds boards: from the moment the allocator gives
//! them ([`Placed::at`](crate::core::job_queue::Placed::at)) until the job
//! gives them up, by being destroyed or by its power-on failing (it then
//! goes back to the queue, and is charged again for its next boards). This
//! is allocserv's `allocation_size × (death − allocation_timestamp)`; the
//! server's own power-off and free delay after that are not charged. A job
//! that never got boards is charged 0. The clock keeps running across a
//! server restart: the boards stay the job's.
//!
//! **Who is charged.** Every job's owner, and its group if it has one:
//! * a v2 job is charged to the group named in its create request (the
//!   user must be a member, or an administrator), or else to the first of
//!   the user's groups, in name order, that has quota left (allocserv's
//!   `selectGroup`); a user in no group has no group and no quota;
//! * a legacy job (whose owner is free text) is charged to the configured
//!   `legacy_group`, if any (`[quota] legacy_group`), so that an operator
//!   can cap the unauthenticated port as a whole.
//!
//! **History.** When a job ends its [`UsageRecord`] is written to the state
//! file's `usage_history` table in the same commit as the job's end; rows
//! are never pruned (unlike `max_retired_jobs`), and every row is held in
//! memory (64 bytes a job, its strings kept once: [`UsageHistory`]) so that
//! totals and quotas need no disk reads. A running job's usage so far is
//! computed on demand.
//!
//! **Quotas** (`[quota.groups]` in the configuration: board-seconds per
//! group; a group not listed is unlimited). A group's quota is a budget over
//! all of its recorded history: *used* is the sum of its finished jobs'
//! board-seconds plus its running jobs' so far; an administrator grants more
//! by raising the number. A create charged to a group with nothing left is
//! refused ("out of quota", as allocserv says it). While a group's running
//! jobs burn their budget, each of them carries a [`QuotaWarning`] once the
//! group has less than `warning_seconds` of its current burn rate left
//! (legacy `get_job_state` key `quota_warning`, v2 field `quota-warning`);
//! when it is spent every live job of the group is destroyed with a reason
//! naming the quota. Unlike allocserv, which compares each job alone with
//! the group's quota, the group's jobs are counted together.

use crate::core::controller::Controller;
use crate::core::job::{Job, JobSpec};
use crate::core::usage_history::UsageHistory;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest reason kept in a usage record, in bytes (reasons are free
/// text from `destroy_job`).
pub const MAX_REASON_BYTES: usize = 256;

/// The default [`QuotaSettings::warning_seconds`].
pub const DEFAULT_WARNING_SECONDS: f64 = 600.0;

/// What a job has used so far: recorded with the job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobUsage {
    /// The group it is charged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When it got the boards it holds now (`None` while it holds none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<f64>,
    /// How many boards it holds (or last held).
    #[serde(default)]
    pub boards: u32,
    /// Board-seconds of the boards it held before and gave up (left out
    /// of the record while 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub banked: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl JobUsage {
    /// Whether nothing is recorded (not written into the job's record).
    pub fn is_unset(&self) -> bool {
        *self == JobUsage::default()
    }

    /// Board-seconds used up to `now`.
    pub fn so_far(&self, now: f64) -> f64 {
        self.banked + self.burn_rate() * self.held_since.map_or(0.0, |t| (now - t).max(0.0))
    }

    /// Board-seconds per second while it holds boards.
    pub fn burn_rate(&self) -> f64 {
        if self.held_since.is_some() {
            f64::from(self.boards)
        } else {
            0.0
        }
    }

    /// It got `boards` boards at `at`.
    pub fn hold(&mut self, boards: u32, at: f64) {
        if let Some(since) = self.held_since {
            // Never happens in the controller (a job is placed only while
            // queued), but the time is never lost if it does.
            self.banked += f64::from(self.boards) * (at - since).max(0.0);
        }
        self.boards = boards;
        self.held_since = Some(at);
    }

    /// It gave its boards up at `now`.
    pub fn release(&mut self, now: f64) {
        self.banked = self.so_far(now);
        self.held_since = None;
    }
}

/// A finished job's usage, as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The job.
    pub job_id: u64,
    /// Who created it.
    pub owner: String,
    /// The group charged, if any.
    pub group: Option<String>,
    /// Whether it came through the legacy protocol (whose owners are
    /// unauthenticated: the v2 API shows them to administrators only).
    pub legacy: bool,
    /// The machine of its (last) boards, if it had any.
    pub machine: Option<String>,
    /// How many boards it (last) held.
    pub boards: u32,
    /// Unix time of creation.
    pub start_time: f64,
    /// Unix time of its end (for a running job: `None`).
    pub finish_time: Option<f64>,
    /// Board-seconds used.
    pub board_seconds: f64,
    /// Why it ended, cut to [`MAX_REASON_BYTES`].
    pub reason: Option<String>,
}

impl UsageRecord {
    /// A job's usage as of `now`; `reason` and `finish_time` are set for a
    /// finished job.
    fn of(job: &Job, now: f64, finished: Option<Option<&str>>) -> UsageRecord {
        UsageRecord {
            job_id: job.id,
            owner: job.owner.clone(),
            group: job.usage.group.clone(),
            legacy: job.original_request.is_none(),
            machine: job.allocation.as_ref().map(|a| a.machine.clone()),
            boards: job.usage.boards,
            start_time: job.start_time,
            finish_time: finished.map(|_| now),
            board_seconds: job.usage.so_far(now),
            reason: finished.flatten().map(cut_reason),
        }
    }
}

/// A reason cut to [`MAX_REASON_BYTES`] at a character boundary.
fn cut_reason(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// The quota part of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSettings {
    /// Each limited group's budget, in board-seconds.
    pub groups: BTreeMap<String, f64>,
    /// The group legacy jobs are charged to.
    pub legacy_group: Option<String>,
    /// Warn a group's running jobs when fewer than this many seconds of its
    /// budget are left at its current rate.
    pub warning_seconds: f64,
}

impl Default for QuotaSettings {
    fn default() -> QuotaSettings {
        QuotaSettings {
            groups: BTreeMap::new(),
            legacy_group: None,
            warning_seconds: DEFAULT_WARNING_SECONDS,
        }
    }
}

/// Where a group stands against its quota.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStanding {
    /// The group.
    pub group: String,
    /// Board-seconds used: finished jobs plus running jobs so far.
    pub used: f64,
    /// Its quota, `None` if unlimited.
    pub quota: Option<f64>,
    /// Board-seconds per second its running jobs burn.
    pub burn_rate: f64,
}

impl GroupStanding {
    /// Board-seconds left (`None` if unlimited); never negative.
    pub fn remaining(&self) -> Option<f64> {
        self.quota.map(|q| (q - self.used).max(0.0))
    }

    /// Whether it has nothing left.
    pub fn is_spent(&self) -> bool {
        self.quota.is_some_and(|q| self.used >= q)
    }

    /// Seconds until its running jobs spend what is left (`None` if
    /// unlimited or burning nothing).
    pub fn seconds_left(&self) -> Option<f64> {
        let remaining = self.remaining()?;
        (self.burn_rate > 0.0).then(|| remaining / self.burn_rate)
    }

    /// The message a refused create, or a destroyed job, is given.
    pub fn out_of_quota(&self) -> String {
        format!(
            "out of quota: group {} has used {:.0} of its {:.0} board-seconds",
            self.group,
            self.used,
            self.quota.unwrap_or(0.0)
        )
    }
}

/// A running job's warning that its group's quota is running out.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaWarning {
    /// Where its group stands.
    pub standing: GroupStanding,
    /// Seconds until the job is destroyed at the current rate.
    pub seconds_left: f64,
}

impl QuotaWarning {
    /// In words, for the job state and the tools.
    pub fn message(&self) -> String {
        format!(
            "group {} has {:.0} board-seconds of quota left: at this rate the job will be \
             destroyed in about {:.0} s",
            self.standing.group,
            self.standing.remaining().unwrap_or(0.0),
            self.seconds_left
        )
    }
}

/// Which usage to report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageQuery {
    /// Only this owner's jobs.
    pub owner: Option<String>,
    /// Only jobs created through v2 (`Some(false)`) or legacy (`Some(true)`).
    pub legacy: Option<bool>,
    /// Only jobs that ended at or after this time (running jobs always match).
    pub since: Option<f64>,
    /// Only jobs that ended before this time (running jobs never match).
    pub until: Option<f64>,
    /// Skip this many rows (newest first).
    pub start: usize,
    /// At most this many rows.
    pub limit: usize,
}

/// A usage report: rows (newest job first) and totals.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    /// The matching jobs, running ones included, after paging.
    pub jobs: Vec<UsageRecord>,
    /// How many jobs matched before paging.
    pub matched: usize,
    /// Board-seconds of every matching job (not only the page).
    pub total: f64,
    /// Board-seconds of the matching jobs per owner.
    pub by_owner: BTreeMap<String, f64>,
    /// Board-seconds of the matching jobs per group charged.
    pub by_group: BTreeMap<String, f64>,
}

/// The history and the quota settings.
#[derive(Debug, Clone, Default)]
pub struct UsageBook {
    settings: QuotaSettings,
    /// Finished jobs' usage by job ID.
    history: UsageHistory,
    /// Each group's finished jobs' board-seconds.
    finished_by_group: BTreeMap<String, f64>,
    /// Jobs finished since the last [`UsageBook::take_unsaved`].
    unsaved: Vec<u64>,
}

impl UsageBook {
    /// Records a finished job (a job already recorded is replaced).
    fn finish(&mut self, record: UsageRecord) {
        self.add(&record);
        self.unsaved.push(record.job_id);
    }

    fn add(&mut self, record: &UsageRecord) {
        if let Some(old) = self.history.insert(record) {
            if let Some(g) = &old.group {
                *self.finished_by_group.entry(g.clone()).or_default() -= old.board_seconds;
            }
        }
        if let Some(g) = &record.group {
            *self.finished_by_group.entry(g.clone()).or_default() += record.board_seconds;
        }
    }

    /// Puts back records read from a state file (they count as saved).
    pub fn restore(&mut self, records: Vec<UsageRecord>) {
        for r in &records {
            self.add(r);
        }
    }

    /// Every finished job's record, by job ID.
    pub fn records(&self) -> Vec<UsageRecord> {
        self.history.iter().collect()
    }

    /// The records of jobs finished since the last call. Even when every
    /// other record is rewritten (the first save after start-up) only these:
    /// the store never deletes a usage row, and every other record of the
    /// book came from the file ([`UsageBook::restore`]). Rewriting the whole
    /// history made each start-up write all of it again, in one change set
    /// as large as the history (the server's memory tripled at start-up).
    pub fn take_unsaved(&mut self) -> Vec<UsageRecord> {
        let ids = std::mem::take(&mut self.unsaved);
        ids.iter().filter_map(|id| self.history.get(*id)).collect()
    }

    /// Whether jobs finished since the last [`UsageBook::take_unsaved`].
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved.is_empty()
    }

    /// A finished job's record.
    pub fn finished(&self, job_id: u64) -> Option<UsageRecord> {
        self.history.get(job_id)
    }
}

impl Controller {
    /// The quota settings in force.
    pub fn quota_settings(&self) -> &QuotaSettings {
        &self.usage.settings
    }

    /// Puts new quota settings in force (start-up, reload); a group now over
    /// its quota is dealt with at the next [`Controller::tick`].
    pub fn set_quota_settings(&mut self, settings: QuotaSettings) {
        self.usage.settings = settings;
    }

    /// The history and settings (for tests and the store).
    pub fn usage_book(&self) -> &UsageBook {
        &self.usage
    }

    /// Where a group stands at `now`.
    pub fn group_standing(&self, group: &str, now: f64) -> GroupStanding {
        let mut used = self
            .usage
            .finished_by_group
            .get(group)
            .copied()
            .unwrap_or(0.0);
        let mut burn_rate = 0.0;
        for job in self.jobs.live_jobs() {
            if job.usage.group.as_deref() == Some(group) {
                used += job.usage.so_far(now);
                burn_rate += job.usage.burn_rate();
            }
        }
        GroupStanding {
            group: group.to_owned(),
            used,
            quota: self.usage.settings.groups.get(group).copied(),
            burn_rate,
        }
    }

    /// The group a new job is charged to: `requested` if given (the owner
    /// must be in it, unless `any_group`: administrators may charge any
    /// group), else the first of `member_of` with quota left; `Ok(None)`
    /// for a user in no group. `Err` is the message of the refusal.
    pub fn choose_group(
        &self,
        owner: &str,
        requested: Option<&str>,
        member_of: &[String],
        any_group: bool,
        now: f64,
    ) -> Result<Option<String>, String> {
        if let Some(group) = requested {
            if !any_group && !member_of.iter().any(|g| g == group) {
                return Err(format!(
                    "group {group} does not exist or {owner} is not a member of it"
                ));
            }
            return Ok(Some(group.to_owned()));
        }
        let mut groups: Vec<&String> = member_of.iter().collect();
        groups.sort();
        if groups.is_empty() {
            return Ok(None);
        }
        groups
            .iter()
            .find(|g| !self.group_standing(g, now).is_spent())
            .map(|g| Some((*g).clone()))
            .ok_or_else(|| {
                format!("out of quota: {owner} is not a member of any group with quota left")
            })
    }

    /// The group a legacy job is charged to.
    pub fn legacy_group(&self) -> Option<String> {
        self.usage.settings.legacy_group.clone()
    }

    /// Creates a job charged to `group`, unless that group's quota is spent
    /// (`Err` is the refusal's message, and nothing is created).
    pub fn create_charged_job(
        &mut self,
        spec: JobSpec,
        host: Option<String>,
        original_request: Option<serde_json::Value>,
        group: Option<String>,
        now: f64,
    ) -> Result<u64, String> {
        if let Some(g) = &group {
            let standing = self.group_standing(g, now);
            if standing.is_spent() {
                return Err(standing.out_of_quota());
            }
        }
        Ok(self.create_job_in_group(spec, host, original_request, group, now))
    }

    /// A live job's usage so far, or a finished job's record.
    pub fn job_usage(&self, job_id: u64, now: f64) -> Option<UsageRecord> {
        match self.jobs.live(job_id) {
            Some(job) => Some(UsageRecord::of(job, now, None)),
            None => self.usage.finished(job_id),
        }
    }

    /// The warning a running job carries when its group's quota will be
    /// spent within `warning_seconds` at the current rate.
    pub fn quota_warning(&self, job_id: u64, now: f64) -> Option<QuotaWarning> {
        let job = self.jobs.live(job_id)?;
        job.usage.held_since?;
        let group = job.usage.group.as_deref()?;
        self.usage.settings.groups.get(group)?;
        let standing = self.group_standing(group, now);
        let seconds_left = standing.seconds_left()?;
        (seconds_left <= self.usage.settings.warning_seconds).then_some(QuotaWarning {
            standing,
            seconds_left,
        })
    }

    /// Destroys every live job of each group whose quota is spent, with a
    /// reason naming the quota. Called by [`Controller::tick`].
    pub(crate) fn enforce_quotas(&mut self, now: f64) {
        if self.usage.settings.groups.is_empty() {
            return;
        }
        let mut spent: BTreeMap<String, String> = BTreeMap::new();
        for group in self.usage.settings.groups.keys() {
            let standing = self.group_standing(group, now);
            if standing.is_spent() {
                spent.insert(group.clone(), standing.out_of_quota());
            }
        }
        if spent.is_empty() {
            return;
        }
        let doomed: Vec<(u64, String)> = self
            .jobs
            .live_jobs()
            .filter_map(|j| {
                let reason = spent.get(j.usage.group.as_deref()?)?;
                Some((j.id, format!("Quota exceeded ({reason})")))
            })
            .collect();
        for (id, reason) in doomed {
            self.destroy_job(id, Some(reason), now);
        }
    }

    /// Records a job's end in the history (called as it is destroyed).
    pub(crate) fn record_job_end(&mut self, job: &mut Job, reason: Option<&str>, now: f64) {
        job.usage.release(now);
        self.usage.finish(UsageRecord::of(job, now, Some(reason)));
    }

    /// Usage matching `query` at `now`: finished jobs from the history and
    /// running jobs so far, newest job first.
    pub fn usage_report(&self, query: &UsageQuery, now: f64) -> UsageReport {
        let running = self.jobs.live_jobs().map(|j| UsageRecord::of(j, now, None));
        let matches = |r: &UsageRecord| {
            query.owner.as_ref().map_or(true, |o| *o == r.owner)
                && query.legacy.map_or(true, |l| l == r.legacy)
                && match r.finish_time {
                    None => query.until.is_none(),
                    Some(t) => {
                        query.since.map_or(true, |s| t >= s) && query.until.map_or(true, |u| t < u)
                    }
                }
        };
        let mut all: Vec<UsageRecord> = self
            .usage
            .history
            .iter()
            .chain(running)
            .filter(|r| matches(r))
            .collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.job_id));
        let mut report = UsageReport {
            jobs: Vec::new(),
            matched: all.len(),
            total: 0.0,
            by_owner: BTreeMap::new(),
            by_group: BTreeMap::new(),
        };
        for r in &all {
            report.total += r.board_seconds;
            *report.by_owner.entry(r.owner.clone()).or_default() += r.board_seconds;
            if let Some(g) = &r.group {
                *report.by_group.entry(g.clone()).or_default() += r.board_seconds;
            }
        }
        report.jobs = all
            .into_iter()
            .skip(query.start)
            .take(query.limit)
            .collect();
        report
    }
}

#[cfg(test)]
mod tests;
