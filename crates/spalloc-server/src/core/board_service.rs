//! Boards out of service, and jobs whose boards fail to power on (issue 16,
//! item 3).
//!
//! A board out of service is handed to no new job. Jobs that could only
//! run with it stay queued, their reason saying the machine is out of
//! service, and start when it returns; jobs holding it keep it until they
//! end. A board goes out of service when
//!
//! * it fails its power-on checks ([`Controller::bmp_request_finished`]
//!   with [`BmpFailure::PowerOnChecks`], or [`Controller::power_on_failed`]);
//! * open reports of it from `quarantine_after_reports` distinct jobs
//!   arrive (its machine's setting; 0 never), through
//!   [`Controller::report_issue`] (v2 `report-issue`) or
//!   [`Controller::report_problem`] (legacy `report_problem`);
//! * an admin takes it out ([`Controller::set_board_in_service`]).
//!
//! Only an admin returns it ([`Controller::set_board_in_service`] with
//! `true`), which closes its reports (see [`crate::core::issue_report`]).
//! [`Controller::boards_out_of_service_all`] and
//! [`Controller::issue_reports_kept`] are what admin front ends list.
//!
//! When a job's boards fail their power-on checks, the reference destroys
//! the job. [`Controller::power_on_failed`] is the failure-aware
//! alternative: the boards that failed go out of service, the job's old
//! boards are powered off and freed in the background (a [`Teardowns`]
//! entry, not the job's: the job itself goes back to the queue at its old
//! place, ahead of every job created after it, and may get new boards at
//! once). A BMP that fails outright (no reply, an error code) still
//! destroys the job, as in the reference.
//!
//! The boards out of service (with why and since when) and the reports are
//! durable ([`BoardRecords`], written whole when they change: both change
//! rarely); the teardowns are not: after a restart, boards that were being
//! powered off are free.

use crate::core::bmp_request::{BmpFailure, BmpRequest};
use crate::core::controller::{Controller, REASON_NO_MACHINE};
use crate::core::coordinates::Board;
use crate::core::issue_report::{IssueReport, KeptReport};
use crate::core::job_queue::ServiceError;
use crate::core::machine::Physical;
use serde::{Deserialize, Serialize};
use spalloc_protocol::JobState;
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// A board out of service, as admins list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfService {
    /// The machine.
    pub machine: String,
    /// The board.
    pub board: Board,
    /// Unix time it was taken out.
    pub since: f64,
    /// Why, in words.
    pub reason: String,
}

/// What is durable about boards' service: the boards out of service and
/// the issue reports, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardRecords {
    /// Boards out of service, by machine and board.
    pub out_of_service: Vec<OutOfService>,
    /// Reports kept.
    pub reports: Vec<KeptReport>,
}

/// Why and since when each board out of service is (the set itself is the
/// job queue's, which allocation reads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceLog {
    reasons: BTreeMap<(String, Board), (f64, String)>,
    /// Whether anything durable changed since it was last saved.
    pub(crate) unsaved: bool,
}

/// The reason of a board an admin took out of service.
pub const REASON_ADMIN: &str = "taken out of service by an admin";

/// A failed job's old boards being powered off.
#[derive(Debug, Clone, PartialEq)]
struct Teardown {
    job_id: u64,
    machine: String,
    boards: BTreeSet<Board>,
    /// BMP requests (power-ons that were in flight, then the power-offs)
    /// still to complete.
    outstanding: BTreeSet<u64>,
}

/// Old boards of jobs whose power-on failed, until they are powered off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Teardowns {
    /// By the ID of the request that failed.
    by_failure: BTreeMap<u64, Teardown>,
    /// BMP request ID → the failure it belongs to.
    requests: BTreeMap<u64, u64>,
}

impl Teardowns {
    /// Every teardown's job, machine and boards (still held).
    pub fn held(&self) -> impl Iterator<Item = (u64, &str, &BTreeSet<Board>)> {
        self.by_failure
            .values()
            .map(|t| (t.job_id, t.machine.as_str(), &t.boards))
    }

    /// Whether no old boards are being powered off.
    pub fn is_empty(&self) -> bool {
        self.by_failure.is_empty()
    }
}

impl Controller {
    /// Takes a live board of a machine out of service (`in_service =
    /// false`, as an admin) or returns it (closing its reports), then
    /// allocates what now fits; watchers of the machine are told. Unknown
    /// machines and boards are refused and nothing changes.
    pub fn set_board_in_service(
        &mut self,
        machine: &str,
        board: Board,
        in_service: bool,
        now: f64,
    ) -> Result<(), ServiceError> {
        if in_service {
            self.return_board_to_service(machine, board, now)
        } else {
            self.take_board_out_of_service(machine, board, REASON_ADMIN, now)
        }
    }

    /// Takes a live board out of service, saying why; a board already out
    /// keeps its first reason.
    pub fn take_board_out_of_service(
        &mut self,
        machine: &str,
        board: Board,
        reason: &str,
        now: f64,
    ) -> Result<(), ServiceError> {
        self.jobs.set_clock(now);
        let already = self
            .queue
            .out_of_service(machine)
            .is_some_and(|s| s.contains(&board));
        let placed = self.queue.set_in_service(machine, board, false, now)?;
        if !already {
            warn!(machine, board = ?board, reason, "board taken out of service");
            self.service_log
                .reasons
                .insert((machine.to_owned(), board), (now, reason.to_owned()));
            self.service_log.unsaved = true;
            self.changed_machines.insert(machine.to_owned());
        }
        self.on_placed(placed);
        Ok(())
    }

    /// Returns a live board to service and closes its open reports.
    pub fn return_board_to_service(
        &mut self,
        machine: &str,
        board: Board,
        now: f64,
    ) -> Result<(), ServiceError> {
        self.jobs.set_clock(now);
        let placed = self.queue.set_in_service(machine, board, true, now)?;
        let was_out = self
            .service_log
            .reasons
            .remove(&(machine.to_owned(), board))
            .is_some();
        let closed = self.issue_reports.close(machine, board);
        if was_out || closed {
            info!(machine, board = ?board, "board returned to service");
            self.service_log.unsaved = true;
        }
        self.changed_machines.insert(machine.to_owned());
        self.on_placed(placed);
        Ok(())
    }

    /// The boards of a machine out of service (`None`: no such machine).
    pub fn boards_out_of_service(&self, machine: &str) -> Option<&BTreeSet<Board>> {
        self.queue.out_of_service(machine)
    }

    /// Every board out of service, machine by machine in priority order,
    /// with why and since when.
    pub fn boards_out_of_service_all(&self) -> Vec<OutOfService> {
        let mut out = Vec::new();
        for m in self.machines() {
            let Some(boards) = self.queue.out_of_service(&m.name) else {
                continue;
            };
            for board in boards {
                let (since, reason) = self
                    .service_log
                    .reasons
                    .get(&(m.name.clone(), *board))
                    .cloned()
                    .unwrap_or((0.0, String::new()));
                out.push(OutOfService {
                    machine: m.name.clone(),
                    board: *board,
                    since,
                    reason,
                });
            }
        }
        out
    }

    /// Every report kept, oldest first, with whether it is closed (its
    /// board returned to service since).
    pub fn issue_reports_kept(&self) -> impl Iterator<Item = &KeptReport> {
        self.issue_reports.kept()
    }

    /// Records a user's report of a broken board, and takes the board out
    /// of service if open reports of it now come from its machine's
    /// `quarantine_after_reports` distinct jobs (0: never).
    pub fn report_issue(&mut self, report: IssueReport) {
        info!(
            job = report.job_id, reporter = %report.reporter, machine = %report.machine,
            board = ?report.board, issue = %report.issue, "board issue reported"
        );
        let (machine, board, now) = (report.machine.clone(), report.board, report.time);
        self.issue_reports.record(report);
        self.service_log.unsaved = true;
        let threshold = self
            .machine(&machine)
            .map_or(0, |m| m.quarantine_after_reports);
        let jobs = self.issue_reports.open_reporting_jobs(&machine, board);
        if threshold > 0 && jobs >= threshold as usize {
            let reason = format!("reported broken from {jobs} jobs");
            // A board no longer live (its machine changed) is left alone.
            let _ = self.take_board_out_of_service(&machine, board, &reason, now);
        }
    }

    /// The legacy protocol's `report_problem(address, x, y, p,
    /// description)`: the board whose Ethernet chip has `address`, which
    /// must be held by a live job (the report counts for that job). The
    /// chip and core, if given, go into the report's text.
    pub fn report_problem(
        &mut self,
        address: &str,
        chip: Option<(i64, i64, Option<i64>)>,
        description: &str,
        reporter: &str,
        now: f64,
    ) -> Result<(), String> {
        let found = self.machines().find_map(|m| {
            m.spinnaker_ips
                .iter()
                .find(|(b, ip)| ip.as_str() == address && m.is_live(b))
                .map(|(b, _)| (m.name.clone(), *b))
        });
        let Some((machine, board)) = found else {
            return Err(format!("no board has the address {address}"));
        };
        let job_id = self
            .jobs
            .live_jobs()
            .find(|j| {
                j.allocation
                    .as_ref()
                    .is_some_and(|a| a.machine == machine && a.boards.contains(&board))
            })
            .map(|j| j.id)
            .ok_or_else(|| format!("the board at {address} is not allocated to a job"))?;
        let issue = match chip {
            Some((x, y, Some(p))) => format!("chip ({x}, {y}) core {p}: {description}"),
            Some((x, y, None)) => format!("chip ({x}, {y}): {description}"),
            None => description.to_owned(),
        };
        self.report_issue(IssueReport {
            job_id,
            reporter: reporter.to_owned(),
            machine,
            board,
            issue,
            time: now,
        });
        Ok(())
    }

    /// Reports a finished BMP request as its back end saw it: boards that
    /// failed their power-on checks take the failure-aware path
    /// ([`Controller::power_on_failed`]); anything else goes to
    /// [`Controller::bmp_request_done`] (a failed BMP destroys the job, as
    /// in the reference).
    pub fn bmp_request_finished(
        &mut self,
        request: &BmpRequest,
        result: Result<(), BmpFailure>,
        now: f64,
    ) {
        match result {
            Ok(()) => self.bmp_request_done(request.id, Ok(()), now),
            Err(BmpFailure::Bmp(ip)) => self.bmp_request_done(request.id, Err(ip), now),
            Err(BmpFailure::PowerOnChecks { bmp_ip, slots }) => {
                let (cabinet, frame) = request.bmp;
                let failed: Vec<Board> = self
                    .machine(&request.machine)
                    .map(|m| {
                        slots
                            .iter()
                            .filter_map(|&board| {
                                m.board_at(Physical {
                                    cabinet,
                                    frame,
                                    board,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if failed.is_empty() {
                    // Slots the machine does not have: the BMP is confused.
                    self.bmp_request_done(request.id, Err(bmp_ip), now);
                } else {
                    self.power_on_failed(request.id, &failed, now);
                }
            }
        }
    }

    /// The durable board records (see [`BoardRecords`]).
    pub fn board_records(&self) -> BoardRecords {
        BoardRecords {
            out_of_service: self.boards_out_of_service_all(),
            reports: self.issue_reports.kept().cloned().collect(),
        }
    }

    /// Puts recorded board records back (restoring): the reports, and the
    /// boards out of service that are still live boards of a configured
    /// machine (others are dropped with a log line).
    pub(crate) fn restore_board_records(&mut self, records: BoardRecords, now: f64) {
        for kept in records.reports {
            self.issue_reports.keep(kept);
        }
        for o in records.out_of_service {
            match self.queue.set_in_service(&o.machine, o.board, false, now) {
                Ok(placed) => {
                    self.service_log
                        .reasons
                        .insert((o.machine, o.board), (o.since, o.reason));
                    self.on_placed(placed);
                }
                Err(e) => warn!(error = %e, "a board recorded out of service is gone"),
            }
        }
    }

    /// Reports that power-on request `request_id` failed on `failed`
    /// boards (those of the request's BMP that did not pass the checks).
    /// Those boards go out of service; the job gives its boards back (they
    /// are powered off, then freed) and is queued again at its old place.
    /// If it is not a live job being powered on, the request is simply
    /// complete. A job no machine could run any more is cancelled.
    pub fn power_on_failed(&mut self, request_id: u64, failed: &[Board], now: f64) {
        self.jobs.set_clock(now);
        let Some(&job_id) = self.in_flight.get(&request_id) else {
            self.teardown_request_done(request_id, now);
            return;
        };
        let powering_on = self.jobs.live(job_id).and_then(|j| {
            let a = j.allocation.as_ref()?;
            (j.state == JobState::Power && j.power == Some(true)).then(|| {
                (
                    a.machine.clone(),
                    a.boards.clone(),
                    j.target.clone(),
                    j.request.clone(),
                )
            })
        });
        let Some((machine, boards, target, request)) = powering_on else {
            self.bmp_request_done(request_id, Ok(()), now);
            return;
        };
        self.in_flight.remove(&request_id);
        warn!(job = job_id, machine = %machine, boards = ?failed, "boards failed to power on");
        // The job's other power-ons in flight, then power-offs of all its
        // boards, now belong to the teardown.
        self.set_job_power(job_id, false, false);
        let outstanding: BTreeSet<u64> = self
            .in_flight
            .iter()
            .filter(|(_, &job)| job == job_id)
            .map(|(&request, _)| request)
            .collect();
        for request in &outstanding {
            self.in_flight.remove(request);
            self.teardowns.requests.insert(*request, request_id);
        }
        // Not held in the queue only if its machine was removed meanwhile:
        // then there is nothing left to free.
        if self.queue.detach(job_id, request_id) {
            self.teardowns.by_failure.insert(
                request_id,
                Teardown {
                    job_id,
                    machine: machine.clone(),
                    boards,
                    outstanding,
                },
            );
        }
        self.changed_machines.insert(machine.clone());
        if let Some(mut job) = self.jobs.get_mut(job_id) {
            job.usage.release(now);
            job.allocation = None;
            job.state = JobState::Queued;
            job.power = None;
            job.bmp_requests_until_ready = 0;
        }
        let reason = format!("failed its power-on checks (job {job_id})");
        for b in failed {
            // A board of another machine, or a dead one, is simply ignored.
            let _ = self.take_board_out_of_service(&machine, *b, &reason, now);
        }
        match self.queue.requeue(job_id, target, request, now) {
            Some(placed) => self.on_placed(placed),
            None => self.destroy_job(job_id, Some(REASON_NO_MACHINE.to_owned()), now),
        }
        self.finish_teardown_if_done(request_id, now);
    }

    /// Counts a completed request toward its teardown, if it belongs to
    /// one; true if it did.
    pub(crate) fn teardown_request_done(&mut self, request_id: u64, now: f64) -> bool {
        let Some(failure) = self.teardowns.requests.remove(&request_id) else {
            return false;
        };
        if let Some(t) = self.teardowns.by_failure.get_mut(&failure) {
            t.outstanding.remove(&request_id);
        }
        self.finish_teardown_if_done(failure, now);
        true
    }

    /// Frees a teardown's boards once every request of it is complete.
    fn finish_teardown_if_done(&mut self, failure: u64, now: f64) {
        let done = self
            .teardowns
            .by_failure
            .get(&failure)
            .is_some_and(|t| t.outstanding.is_empty());
        if !done {
            return;
        }
        if let Some(t) = self.teardowns.by_failure.remove(&failure) {
            self.changed_machines.insert(t.machine.clone());
            let placed = self.queue.free_detached(failure, now);
            self.on_placed(placed);
        }
    }
}
