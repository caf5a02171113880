//! The controller: every job's life cycle, on top of the job queue.
//!
//! It owns the jobs, the retired-reason cache, the outstanding BMP work and
//! the sets of changed jobs and machines. It never blocks, sleeps or reads the
//! clock: every entry point that depends on time takes `now` (Unix seconds),
//! BMP work leaves through [`Controller::take_bmp_requests`] and comes back
//! through [`Controller::bmp_request_done`], and notifications leave through
//! [`Controller::take_changes`]. That makes the whole life cycle testable
//! without sockets or sleeps.

use crate::core::bmp_request::BmpRequest;
use crate::core::coordinates::Board;
use crate::core::issue_report::{IssueReport, IssueReports};
use crate::core::job::{job_allocation, Job, JobSpec};
use crate::core::job_queue::{JobQueue, Placed, QueueSnapshot};
use crate::core::machine::{Machine, Physical};
use crate::core::retired::{RetiredEntry, RetiredJobs};
use crate::core::tombstone::{Tombstone, Tombstones};
use crate::core::where_is::{self, WhereIsQuery};
use serde::{Deserialize, Serialize};
use spalloc_protocol::{
    Connection, JobListing, JobMachineInfo, JobState, JobStateRecord, MachineListing, WhereIsRecord,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tracing::{info, warn};

/// Reason given to jobs that no machine could ever run.
pub const REASON_NO_MACHINE: &str = "No suitable machines available.";
/// Reason given to jobs whose keepalive ran out.
pub const REASON_TIMED_OUT: &str = "Job timed out.";
/// Prefix of the reason of a job destroyed before it got boards.
pub const CANCELLED_PREFIX: &str = "Cancelled: ";

/// Settings of the controller that come from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerSettings {
    /// How many destroyed jobs' reasons to remember.
    pub max_retired_jobs: usize,
    /// Seconds between a job's power-off and its boards' reuse.
    pub seconds_before_free: f64,
}

/// What changed since the last call to [`Controller::take_changes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Jobs whose state, power or allocation changed.
    pub jobs: BTreeSet<u64>,
    /// Machines whose allocations changed.
    pub machines: BTreeSet<String>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.machines.is_empty()
    }
}

/// The board slots and link settings destined for one BMP.
type BmpWork = (Vec<u32>, Vec<(u32, spalloc_protocol::Link, bool)>);

/// The state of the whole allocation service.
#[derive(Debug, Clone)]
pub struct Controller {
    pub(crate) settings: ControllerSettings,
    pub(crate) queue: JobQueue,
    /// Live jobs: queued, powering or ready.
    pub(crate) jobs: BTreeMap<u64, Job>,
    /// Destroyed jobs whose boards are still being powered off; their boards
    /// are released when the last BMP request completes.
    dying: BTreeMap<u64, Job>,
    pub(crate) retired: RetiredJobs,
    next_job_id: u64,
    next_bmp_request_id: u64,
    /// BMP request ID → job ID, for requests not yet completed.
    in_flight: BTreeMap<u64, u64>,
    outbox: Vec<BmpRequest>,
    pub(crate) changes: Changes,
    /// Bumped by every change worth saving (not by keepalive touches).
    revision: u64,
    /// Jobs changed (or gone) since the last [`Controller::take_job_changes`].
    dirty: BTreeSet<u64>,
    /// What the v2 API shows of destroyed jobs (in memory only).
    pub(crate) tombstones: Tombstones,
    /// Users' reports of broken boards (in memory only).
    pub(crate) issue_reports: IssueReports,
}

impl Controller {
    /// A controller for these machines (highest priority first).
    pub fn new(settings: ControllerSettings, machines: Vec<Machine>) -> Controller {
        let machines = machines.into_iter().map(Arc::new).collect();
        Controller {
            settings,
            queue: JobQueue::new(machines, settings.seconds_before_free),
            jobs: BTreeMap::new(),
            dying: BTreeMap::new(),
            retired: RetiredJobs::new(settings.max_retired_jobs),
            next_job_id: 1,
            next_bmp_request_id: 1,
            in_flight: BTreeMap::new(),
            outbox: Vec::new(),
            changes: Changes::default(),
            revision: 0,
            dirty: BTreeSet::new(),
            tombstones: Tombstones::new(settings.max_retired_jobs),
            issue_reports: IssueReports::default(),
        }
    }

    /// A counter bumped by every change that a [`Snapshot`] would show,
    /// except keepalive touches: compare it to decide whether to save.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Bumps [`Controller::revision`] so that the state is saved at the next
    /// flush; for changes made outside the methods that bump it themselves
    /// (such as a reload that only changes a machine's description).
    pub fn mark_changed(&mut self) {
        self.revision += 1;
    }

    /// The configured settings.
    pub fn settings(&self) -> ControllerSettings {
        self.settings
    }

    /// The machines in priority order.
    pub fn machines(&self) -> impl Iterator<Item = &Arc<Machine>> {
        self.queue.machines()
    }

    /// Creates a job from a validated request and returns its ID. A job no
    /// machine could ever run is created already cancelled, as the reference
    /// does, so the client learns why through `get_job_state`.
    pub fn create_job(&mut self, spec: JobSpec, host: Option<String>, now: f64) -> u64 {
        self.create_job_with_request(spec, host, None, now)
    }

    /// [`Controller::create_job`] for the v2 API, which keeps the request
    /// as sent (`original_request`) to echo it back.
    pub fn create_job_with_request(
        &mut self,
        spec: JobSpec,
        host: Option<String>,
        original_request: Option<serde_json::Value>,
        now: f64,
    ) -> u64 {
        let id = self.next_job_id;
        self.next_job_id += 1;
        self.revision += 1;
        self.dirty.insert(id);
        info!(
            job = id, owner = %spec.owner, host = host.as_deref().unwrap_or(""),
            args = ?spec.args, "create_job"
        );
        let mut job = Job::new(id, &spec, host, now);
        job.original_request = original_request;
        self.jobs.insert(id, job);
        self.changes.jobs.insert(id);
        let placed = if spec.impossible {
            None
        } else {
            self.queue.enqueue(id, spec.target, spec.request, now)
        };
        match placed {
            Some(placed) => self.on_placed(placed),
            None => self.destroy_job(id, Some(REASON_NO_MACHINE.to_owned()), now),
        }
        id
    }

    fn touch(&mut self, job_id: u64, host: Option<&str>, now: f64) -> Option<&mut Job> {
        let job = self.jobs.get_mut(&job_id)?;
        job.touch(host, now);
        Some(job)
    }

    /// `job_keepalive`: resets the job's timer. Unknown jobs are ignored.
    pub fn job_keepalive(&mut self, job_id: u64, host: Option<&str>, now: f64) {
        self.touch(job_id, host, now);
    }

    /// `get_job_state`; also a keepalive.
    pub fn get_job_state(&mut self, job_id: u64, host: Option<&str>, now: f64) -> JobStateRecord {
        if let Some(job) = self.touch(job_id, host, now) {
            return JobStateRecord {
                state: job.state,
                power: job.power,
                keepalive: job.keepalive,
                reason: None,
                start_time: Some(job.start_time),
                keepalivehost: job.keepalivehost.clone(),
            };
        }
        match self.retired.get(job_id) {
            Some(reason) => JobStateRecord {
                state: JobState::Destroyed,
                reason: reason.clone(),
                ..JobStateRecord::unknown()
            },
            None => JobStateRecord::unknown(),
        }
    }

    /// `get_job_machine_info`; also a keepalive. All `None` unless the job is
    /// live and allocated.
    pub fn get_job_machine_info(
        &mut self,
        job_id: u64,
        host: Option<&str>,
        now: f64,
    ) -> JobMachineInfo {
        let Some(job) = self.touch(job_id, host, now) else {
            return JobMachineInfo::default();
        };
        let Some(a) = &job.allocation else {
            return JobMachineInfo::default();
        };
        JobMachineInfo {
            width: Some(a.width),
            height: Some(a.height),
            connections: Some(
                a.connections
                    .iter()
                    .map(|(chip, host)| Connection(*chip, host.clone()))
                    .collect(),
            ),
            machine_name: Some(a.machine.clone()),
            boards: Some(a.boards_in_order.iter().map(|b| [b.x, b.y, b.z]).collect()),
        }
    }

    /// `power_on_job_boards` (`on = true`) or `power_off_job_boards`; also a
    /// keepalive. A queued, unknown or destroyed job is ignored.
    pub fn power_job(&mut self, job_id: u64, on: bool, host: Option<&str>, now: f64) {
        let allocated = self
            .touch(job_id, host, now)
            .is_some_and(|j| j.allocation.is_some());
        if allocated {
            self.set_job_power(job_id, on, on);
        }
    }

    /// `destroy_job`: cancels a queued job or tears down an allocated one.
    /// Unknown and already destroyed jobs are ignored.
    pub fn destroy_job(&mut self, job_id: u64, reason: Option<String>, now: f64) {
        let Some(mut job) = self.jobs.remove(&job_id) else {
            return;
        };
        self.tombstones.insert(
            job_id,
            Tombstone {
                owner: job.owner.clone(),
                start_time: job.start_time,
                finish_time: now,
                original_request: job.original_request.clone(),
            },
        );
        self.revision += 1;
        self.dirty.insert(job_id);
        self.changes.jobs.insert(job_id);
        info!(
            job = job_id,
            reason = reason.as_deref().unwrap_or(""),
            "destroy_job"
        );
        match &job.allocation {
            None => {
                let reason = format!("{CANCELLED_PREFIX}{}", reason.unwrap_or_default());
                self.retired.insert(job_id, Some(reason));
                // Jobs queued behind it may fit now.
                let placed = self.queue.cancel(job_id, now);
                self.on_placed(placed);
            }
            Some(a) => {
                self.changes.machines.insert(a.machine.clone());
                self.retired.insert(job_id, reason);
                job.state = JobState::Destroyed;
                self.dying.insert(job_id, job);
                self.set_job_power(job_id, false, false);
                // A job with no BMP work outstanding releases at once.
                if self
                    .dying
                    .get(&job_id)
                    .is_some_and(|j| j.bmp_requests_until_ready == 0)
                {
                    self.dying.remove(&job_id);
                    let placed = self.queue.release(job_id, now);
                    self.on_placed(placed);
                }
            }
        }
    }

    /// Destroys expired jobs and performs due delayed frees. Call it at least
    /// every `timeout_check_interval`.
    pub fn tick(&mut self, now: f64) {
        let expired: Vec<u64> = self
            .jobs
            .values()
            .filter(|j| j.expired(now))
            .map(|j| j.id)
            .collect();
        for id in expired {
            self.destroy_job(id, Some(REASON_TIMED_OUT.to_owned()), now);
        }
        let placed = self.queue.check_free(now);
        self.on_placed(placed);
    }

    /// BMP work to hand to the back ends, in the order it was decided.
    pub fn take_bmp_requests(&mut self) -> Vec<BmpRequest> {
        std::mem::take(&mut self.outbox)
    }

    /// Reports that a BMP request finished: `Err(bmp_ip)` if it failed after
    /// its retries. A failure destroys the job with the reference's reason.
    pub fn bmp_request_done(&mut self, request_id: u64, result: Result<(), String>, now: f64) {
        let Some(job_id) = self.in_flight.remove(&request_id) else {
            return;
        };
        self.revision += 1;
        self.dirty.insert(job_id);
        if let Err(bmp_ip) = result {
            warn!(job = job_id, bmp = %bmp_ip, "BMP requests failed");
            if self.jobs.contains_key(&job_id) {
                let reason =
                    format!("Machine configuration failed. Error: Requests failed on BMP {bmp_ip}");
                self.destroy_job(job_id, Some(reason), now);
            }
        }
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.bmp_requests_until_ready = job.bmp_requests_until_ready.saturating_sub(1);
            if job.bmp_requests_until_ready == 0 {
                job.state = JobState::Ready;
                self.changes.jobs.insert(job_id);
            }
        } else if let Some(job) = self.dying.get_mut(&job_id) {
            job.bmp_requests_until_ready = job.bmp_requests_until_ready.saturating_sub(1);
            if job.bmp_requests_until_ready == 0 {
                self.dying.remove(&job_id);
                let placed = self.queue.release(job_id, now);
                self.on_placed(placed);
            }
        }
    }

    /// The jobs and machines that changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// `list_jobs`: every live job, oldest first.
    pub fn list_jobs(&self) -> Vec<JobListing> {
        self.jobs
            .values()
            .map(|j| JobListing {
                job_id: j.id,
                owner: j.owner.clone(),
                start_time: j.start_time,
                keepalive: j.keepalive,
                state: j.state,
                power: j.power,
                args: j.args.clone(),
                kwargs: j.kwargs.clone(),
                allocated_machine_name: j.allocation.as_ref().map(|a| a.machine.clone()),
                boards: j
                    .allocation
                    .as_ref()
                    .map(|a| a.boards_in_order.iter().map(|b| [b.x, b.y, b.z]).collect()),
                keepalivehost: Some(j.keepalivehost.clone().unwrap_or_default()),
            })
            .collect()
    }

    /// `list_machines`, in priority order.
    pub fn list_machines(&self) -> Vec<MachineListing> {
        self.machines()
            .map(|m| MachineListing {
                name: m.name.clone(),
                tags: m.tags.iter().cloned().collect(),
                width: m.width,
                height: m.height,
                dead_boards: m.dead_boards.iter().map(|b| [b.x, b.y, b.z]).collect(),
                dead_links: m
                    .dead_links
                    .iter()
                    .map(|(b, l)| [b.x, b.y, b.z, l.to_wire() as u32])
                    .collect(),
            })
            .collect()
    }

    /// `get_board_position`: logical board → physical location, no wrapping.
    pub fn get_board_position(&self, machine: &str, board: Board) -> Option<Physical> {
        self.queue
            .machine(machine)?
            .board_locations
            .get(&board)
            .copied()
    }

    /// `get_board_at_position`: physical location → logical board.
    pub fn get_board_at_position(&self, machine: &str, p: Physical) -> Option<Board> {
        self.queue.machine(machine)?.board_at(p)
    }

    /// `where_is` in any of its four forms.
    pub fn where_is(&self, query: &WhereIsQuery) -> Option<WhereIsRecord> {
        where_is::locate(
            query,
            |name| self.queue.machine(name).map(|m| m.as_ref()),
            &self.jobs,
        )
    }

    /// How many jobs wait ahead of this one on its best machine, if queued.
    pub fn queue_position(&self, job_id: u64) -> Option<usize> {
        self.queue.position(job_id)
    }

    /// Whether nothing is allocated, queued, or waiting for power or a free
    /// (every machine is back to its start state).
    pub fn is_idle(&self) -> bool {
        self.jobs.is_empty() && self.dying.is_empty() && self.queue.is_idle()
    }

    /// Checks the core's central invariant: no board belongs to two jobs at
    /// once, counting jobs still being torn down (their boards are not free
    /// until their power-off is done). `Err` names the board and both jobs.
    /// Tests, fuzzers and soak runs call it after every step.
    pub fn check_board_ownership(&self) -> Result<(), String> {
        let mut owner: BTreeMap<(&str, Board), u64> = BTreeMap::new();
        for job in self.jobs.values().chain(self.dying.values()) {
            let Some(a) = &job.allocation else {
                continue;
            };
            for b in &a.boards {
                if let Some(other) = owner.insert((a.machine.as_str(), *b), job.id) {
                    return Err(format!(
                        "board ({}, {}, {}) of {} is in jobs {other} and {}",
                        b.x, b.y, b.z, a.machine, job.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// A live job (queued, powering or ready), without touching its keepalive.
    pub fn job(&self, job_id: u64) -> Option<&Job> {
        self.jobs.get(&job_id)
    }

    /// A machine by name.
    pub fn machine(&self, name: &str) -> Option<&Arc<Machine>> {
        self.queue.machine(name)
    }

    /// What is remembered of a destroyed job: its reason (`Some(None)` when
    /// it has none) and, if still known, its tombstone.
    pub fn destroyed_job(&self, job_id: u64) -> Option<(Option<&str>, Option<&Tombstone>)> {
        if self.jobs.contains_key(&job_id) {
            return None;
        }
        let tombstone = self.tombstones.get(job_id);
        match (self.retired.get(job_id), tombstone) {
            (None, None) => None,
            (reason, tombstone) => Some((reason.and_then(|r| r.as_deref()), tombstone)),
        }
    }

    /// IDs of the jobs destroyed recently enough to have a tombstone, newest first.
    pub fn destroyed_job_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.tombstones.ids_newest_first()
    }

    /// Records a user's report of a broken board.
    pub fn report_issue(&mut self, report: IssueReport) {
        info!(
            job = report.job_id, reporter = %report.reporter, machine = %report.machine,
            board = ?report.board, issue = %report.issue, "board issue reported"
        );
        self.issue_reports.record(report);
    }

    /// Every board issue reported, oldest first.
    pub fn issue_reports(&self) -> impl Iterator<Item = &IssueReport> {
        self.issue_reports.all()
    }

    /// The jobs a BMP back end should know about (for tests and diagnostics).
    pub fn live_jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }

    pub(crate) fn on_placed(&mut self, placed: Vec<Placed>) {
        for p in placed {
            let Some(job) = self.jobs.get_mut(&p.job_id) else {
                continue;
            };
            let allocation = job_allocation(&p.machine, &p.allocation);
            info!(
                job = p.job_id, machine = %allocation.machine,
                boards = allocation.boards.len(), "allocated"
            );
            job.allocation = Some(allocation);
            self.revision += 1;
            self.dirty.insert(p.job_id);
            self.changes.machines.insert(p.machine.name.clone());
            self.set_job_power(p.job_id, true, true);
        }
    }

    /// Queues power (and, when powering on, periphery link isolation) for all
    /// of a job's boards, one request per BMP, and marks the job as powering.
    fn set_job_power(&mut self, job_id: u64, power: bool, isolate_links: bool) {
        let Some(job) = self
            .jobs
            .get_mut(&job_id)
            .or_else(|| self.dying.get_mut(&job_id))
        else {
            return;
        };
        let Some(alloc) = &job.allocation else {
            return;
        };
        let Some(machine) = self.queue.machine(&alloc.machine) else {
            return;
        };
        let mut per_bmp: BTreeMap<(u32, u32), BmpWork> = BTreeMap::new();
        for b in &alloc.boards_in_order {
            if let Some(p) = machine.board_locations.get(b) {
                per_bmp.entry(p.bmp()).or_default().0.push(p.board);
            }
        }
        if isolate_links {
            for (b, link) in &alloc.periphery {
                if let Some(p) = machine.board_locations.get(b) {
                    per_bmp
                        .entry(p.bmp())
                        .or_default()
                        .1
                        .push((p.board, *link, false));
                }
            }
        }
        self.revision += 1;
        self.dirty.insert(job_id);
        for (bmp, (boards, links)) in per_bmp {
            let id = self.next_bmp_request_id;
            self.next_bmp_request_id += 1;
            self.in_flight.insert(id, job_id);
            self.outbox.push(BmpRequest {
                id,
                job_id,
                machine: machine.name.clone(),
                bmp,
                bmp_ip: machine.bmp_ips.get(&bmp).cloned().unwrap_or_default(),
                power,
                boards,
                links,
            });
            job.bmp_requests_until_ready += 1;
        }
        if job.state != JobState::Destroyed {
            job.state = JobState::Power;
            job.power = Some(power);
        }
        self.changes.jobs.insert(job_id);
    }
}

/// Everything a [`Controller`] must remember across a restart: jobs with
/// their allocations, jobs being torn down, retired reasons, the queues and
/// allocators, and the ID counters. Machine descriptions are not saved; they
/// come from the configuration on restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The next job ID to hand out.
    pub next_job_id: u64,
    /// The next BMP request ID.
    pub next_bmp_request_id: u64,
    /// Live jobs (queued, powering or ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<Job>,
    /// Destroyed jobs whose boards are still being powered off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dying: Vec<Job>,
    /// Remembered reasons of destroyed jobs, oldest first (the state file
    /// keeps them apart, see [`Controller::take_retired_changes`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<(u64, Option<String>)>,
    /// The queues and allocators.
    pub queue: QueueSnapshot,
}

impl Controller {
    /// The durable state, for [`Controller::restore`]. Outstanding BMP work
    /// is not included: restoring re-issues it.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.snapshot_without_jobs();
        snapshot.jobs = self.jobs.values().cloned().collect();
        snapshot.dying = self.dying.values().cloned().collect();
        snapshot.retired = self.retired.iter().map(|(id, r)| (id, r.clone())).collect();
        snapshot
    }

    /// [`Controller::snapshot`] minus the jobs, dying jobs and retired
    /// reasons, which can be many and change a few at a time: a state file
    /// saves those incrementally, with [`Controller::take_job_changes`] and
    /// [`Controller::take_retired_changes`].
    pub fn snapshot_without_jobs(&self) -> Snapshot {
        Snapshot {
            next_job_id: self.next_job_id,
            next_bmp_request_id: self.next_bmp_request_id,
            jobs: Vec::new(),
            dying: Vec::new(),
            retired: Vec::new(),
            queue: self.queue.snapshot(),
        }
    }

    /// The jobs changed since the last call (every live and dying job if
    /// `all`): `(id, Some((dying, job)))` for a live or dying job, `(id,
    /// None)` for one that is gone.
    pub fn take_job_changes(&mut self, all: bool) -> Vec<(u64, Option<(bool, Job)>)> {
        let ids = std::mem::take(&mut self.dirty);
        let ids: Vec<u64> = if all {
            self.jobs.keys().chain(self.dying.keys()).copied().collect()
        } else {
            ids.into_iter().collect()
        };
        ids.into_iter()
            .map(|id| {
                let job = match (self.jobs.get(&id), self.dying.get(&id)) {
                    (Some(j), _) => Some((false, j.clone())),
                    (None, Some(j)) => Some((true, j.clone())),
                    (None, None) => None,
                };
                (id, job)
            })
            .collect()
    }

    /// The retired reasons recorded or changed since the last call (all of
    /// them if `all`) as `(insertion number, job, reason)`, and the lowest
    /// insertion number still remembered (older saved ones were evicted).
    pub fn take_retired_changes(&mut self, all: bool) -> (Vec<RetiredEntry>, u64) {
        (self.retired.take_unsaved(all), self.retired.floor())
    }

    /// A controller for `machines` (the configured ones) carrying on from a
    /// snapshot, at time `now`:
    ///
    /// * every live job's keepalive timer restarts at `now` (as the
    ///   reference does on a warm start), so no deadline is ever shortened;
    /// * power work that was in flight is issued again: a powering job gets
    ///   its power request again, a dying job its power-off, after which its
    ///   boards are freed as usual;
    /// * jobs holding boards on a machine that is gone or whose description
    ///   changed are destroyed with
    ///   [`MACHINE_REMOVED`](crate::core::reconfigure::MACHINE_REMOVED)
    ///   (their boards are not powered off: the machine is not what they
    ///   were allocated on). New and changed machines start idle, and the
    ///   queues are regenerated as by
    ///   [`Controller::reconfigure`]: queued jobs are re-queued in creation
    ///   order, and those no machine can run any more are cancelled with
    ///   [`REASON_NO_MACHINE`]. (Machine descriptions are not saved, so a
    ///   machine that only changed its tags or dead boards is treated as
    ///   changed, not modified in place as a reload would.)
    pub fn restore(
        settings: ControllerSettings,
        machines: Vec<Machine>,
        snapshot: Snapshot,
        now: f64,
    ) -> Controller {
        let machines = machines.into_iter().map(Arc::new).collect();
        let (queue, lost, differs) =
            JobQueue::restore(machines, settings.seconds_before_free, snapshot.queue);
        for name in &lost {
            warn!(machine = %name, "machine changed or removed since the state was saved");
        }
        let mut c = Controller::new(settings, Vec::new());
        c.queue = queue;
        c.next_job_id = snapshot.next_job_id;
        c.next_bmp_request_id = snapshot.next_bmp_request_id;
        for (id, reason) in snapshot.retired {
            c.retired.insert(id, reason);
        }
        let mut reissue = Vec::new();
        for mut job in snapshot.jobs {
            job.bmp_requests_until_ready = 0;
            job.keepalive_until = job.keepalive.map(|k| now + k);
            let kept = if job.allocation.is_some() {
                c.queue.is_allocated(job.id)
            } else {
                c.queue.is_pending(job.id)
            };
            if !kept {
                let reason = crate::core::reconfigure::MACHINE_REMOVED;
                info!(job = job.id, reason, "destroy_job on restore");
                c.retired.insert(job.id, Some(reason.to_owned()));
                c.changes.jobs.insert(job.id);
                continue;
            }
            if job.state == JobState::Power {
                reissue.push((job.id, job.power.unwrap_or(true)));
            }
            c.jobs.insert(job.id, job);
        }
        for (id, power) in reissue {
            c.set_job_power(id, power, power);
        }
        for mut job in snapshot.dying {
            if !c.queue.is_allocated(job.id) {
                continue; // its machine is gone: nothing left to free
            }
            let id = job.id;
            job.bmp_requests_until_ready = 0;
            c.dying.insert(id, job);
            c.set_job_power(id, false, false);
            if c.dying
                .get(&id)
                .is_some_and(|j| j.bmp_requests_until_ready == 0)
            {
                c.dying.remove(&id);
                let placed = c.queue.release(id, now);
                c.on_placed(placed);
            }
        }
        if differs {
            let (placed, impossible) = c.queue.regenerate(now);
            c.on_placed(placed);
            for id in impossible {
                c.destroy_job(id, Some(REASON_NO_MACHINE.to_owned()), now);
            }
        }
        let placed = c.queue.process(now);
        c.on_placed(placed);
        c.revision += 1;
        c
    }
}
