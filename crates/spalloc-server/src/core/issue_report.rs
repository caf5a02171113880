//! Problems users report with their jobs' boards (the v2 API's
//! `report-issue`), kept for the operators.
//!
//! The interface is deliberately small ([`IssueReports::record`],
//! [`IssueReports::all`]) so that a durable store can replace the in-memory
//! list without touching the callers. Unlike allocserv, a report never takes
//! boards out of service by itself: an operator decides.

use crate::core::coordinates::Board;

/// One reported board.
#[derive(Debug, Clone, PartialEq)]
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

/// Every report received, oldest first, up to a bound.
#[derive(Debug, Clone, Default)]
pub struct IssueReports {
    reports: std::collections::VecDeque<IssueReport>,
}

/// How many reports are kept; older ones are dropped first.
pub const MAX_ISSUE_REPORTS: usize = 10_000;

impl IssueReports {
    /// Records a report.
    pub fn record(&mut self, report: IssueReport) {
        if self.reports.len() == MAX_ISSUE_REPORTS {
            self.reports.pop_front();
        }
        self.reports.push_back(report);
    }

    /// The reports kept, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &IssueReport> {
        self.reports.iter()
    }
}
