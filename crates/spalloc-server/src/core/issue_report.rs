//! Problems users report with their jobs' boards (the v2 API's
//! `report-issue` and the legacy protocol's `report_problem`), kept for
//! the operators and counted toward taking a board out of service.
//!
//! A report is *open* until its board is returned to service by an admin:
//! only open reports count toward a machine's `quarantine_after_reports`
//! (distinct jobs, so one user reporting the same board from one job ten
//! times counts once), and returning a board closes its reports so that
//! it is not taken out again by the reports that took it out. Closed
//! reports stay listed (an operator may want the history).

use crate::core::coordinates::Board;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// One reported board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueReport {
    /// The job the reporter was running.
    pub job_id: u64,
    /// Who reported it.
    pub reporter: String,
    /// The machine.
    pub machine: String,
    /// The board.
    pub board: Board,
    /// What is wrong, in the reporter's words.
    pub issue: String,
    /// Unix time of the report.
    pub time: f64,
}

/// A report as kept: with whether it still counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptReport {
    /// The report.
    #[serde(flatten)]
    pub report: IssueReport,
    /// Whether its board has been returned to service since (it no
    /// longer counts toward taking the board out).
    #[serde(default)]
    pub closed: bool,
}

/// Every report received, oldest first, up to a bound.
#[derive(Debug, Clone, Default)]
pub struct IssueReports {
    reports: VecDeque<KeptReport>,
}

/// How many reports are kept; older ones are dropped first.
pub const MAX_ISSUE_REPORTS: usize = 10_000;

impl IssueReports {
    /// Records a report (open).
    pub fn record(&mut self, report: IssueReport) {
        self.keep(KeptReport {
            report,
            closed: false,
        });
    }

    /// Keeps a report as it was recorded (restoring).
    pub fn keep(&mut self, kept: KeptReport) {
        if self.reports.len() == MAX_ISSUE_REPORTS {
            self.reports.pop_front();
        }
        self.reports.push_back(kept);
    }

    /// The reports kept, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &IssueReport> {
        self.reports.iter().map(|k| &k.report)
    }

    /// The reports kept with whether each is closed, oldest first.
    pub fn kept(&self) -> impl Iterator<Item = &KeptReport> {
        self.reports.iter()
    }

    /// How many distinct jobs have open reports of a board.
    pub fn open_reporting_jobs(&self, machine: &str, board: Board) -> usize {
        self.reports
            .iter()
            .filter(|k| !k.closed && k.report.machine == machine && k.report.board == board)
            .map(|k| k.report.job_id)
            .collect::<BTreeSet<u64>>()
            .len()
    }

    /// Closes the open reports of a board; returns whether there were any.
    pub fn close(&mut self, machine: &str, board: Board) -> bool {
        let mut any = false;
        for k in &mut self.reports {
            if !k.closed && k.report.machine == machine && k.report.board == board {
                k.closed = true;
                any = true;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(job_id: u64, board: Board) -> IssueReport {
        IssueReport {
            job_id,
            reporter: "u".into(),
            machine: "m".into(),
            board,
            issue: "broken".into(),
            time: 1.0,
        }
    }

    #[test]
    fn only_distinct_jobs_with_open_reports_count() {
        let b = Board::new(0, 0, 1);
        let mut r = IssueReports::default();
        r.record(report(1, b));
        r.record(report(1, b));
        r.record(report(2, Board::new(0, 0, 2)));
        assert_eq!(r.open_reporting_jobs("m", b), 1);
        r.record(report(3, b));
        assert_eq!(r.open_reporting_jobs("m", b), 2);
        assert_eq!(r.open_reporting_jobs("other", b), 0);
        assert!(r.close("m", b));
        assert_eq!(r.open_reporting_jobs("m", b), 0);
        assert!(!r.close("m", b));
        assert_eq!(r.all().count(), 4, "closed reports stay listed");
        assert_eq!(r.kept().filter(|k| k.closed).count(), 3);
    }
}
