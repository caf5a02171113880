//! The controller: every job's life cycle, on top of the job queue.
//!
//! It owns the jobs, the retired-reason cache, the outstanding BMP work and
//! the sets of changed jobs and machines. It never blocks, sleeps or reads the
//! clock: every entry point that depends on time takes `now` (Unix seconds),
//! BMP work leaves through [`Controller::take_bmp_requests`] and comes back
//! through [`Controller::bmp_request_done`], and notifications leave through
//! [`Controller::take_changes`]. That makes the whole life cycle testable
//! without sockets or sleeps.
//!
//! Jobs live in a [`JobTable`], whose only ways to change a job also mark it
//! to be saved and (when a client could see the change) notified; durable
//! state leaves as [`Records`] through [`Controller::take_record_changes`]
//! and comes back through [`Controller::from_records`].

use crate::core::allocator::Claim;
use crate::core::bmp_request::BmpRequest;
use crate::core::board_service::{ServiceLog, Teardowns};
use crate::core::cooling::{claim_of, Cooling, CoolingBoards};
use crate::core::coordinates::Board;
use crate::core::issue_report::{IssueReport, IssueReports};
use crate::core::job::{job_allocation, Job, JobSpec};
use crate::core::job_queue::{JobQueue, Placed};
use crate::core::job_table::JobTable;
use crate::core::machine::{Machine, Physical};
use crate::core::records::{MachineRecord, RecordChanges, Records};
use crate::core::retired::RetiredJobs;
use crate::core::tombstone::{Tombstone, Tombstones};
use crate::core::usage::UsageBook;
use crate::core::where_is::{self, WhereIsQuery};
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
    /// Live jobs (queued, powering or ready), and destroyed jobs whose
    /// boards are still being powered off (released when the last BMP
    /// request completes).
    pub(crate) jobs: JobTable,
    pub(crate) retired: RetiredJobs,
    next_job_id: u64,
    next_bmp_request_id: u64,
    /// BMP request ID → job ID, for requests not yet completed.
    pub(crate) in_flight: BTreeMap<u64, u64>,
    /// Boards of jobs whose power-on failed, being powered off before they
    /// are freed (see [`crate::core::board_service`]).
    pub(crate) teardowns: Teardowns,
    outbox: Vec<BmpRequest>,
    /// Machines whose allocations changed, for `notify_machine` watchers.
    pub(crate) changed_machines: BTreeSet<String>,
    /// Whether the machines or their order changed since the last
    /// [`Controller::take_record_changes`].
    machines_unsaved: bool,
    /// What the v2 API shows of destroyed jobs (durable, as records).
    pub(crate) tombstones: Tombstones,
    /// Users' reports of broken boards.
    pub(crate) issue_reports: IssueReports,
    /// Why boards are out of service (see [`crate::core::board_service`]).
    pub(crate) service_log: ServiceLog,
    /// Finished jobs' usage and the quotas (see [`crate::core::usage`]).
    pub(crate) usage: UsageBook,
    /// Freed boards waiting out `seconds_before_free` (recorded).
    cooling: Cooling,
}

impl Controller {
    /// A controller for these machines (highest priority first).
    pub fn new(settings: ControllerSettings, machines: Vec<Machine>) -> Controller {
        let machines = machines.into_iter().map(Arc::new).collect();
        Controller {
            settings,
            queue: JobQueue::new(machines, settings.seconds_before_free),
            jobs: JobTable::default(),
            retired: RetiredJobs::new(settings.max_retired_jobs),
            next_job_id: 1,
            next_bmp_request_id: 1,
            in_flight: BTreeMap::new(),
            teardowns: Teardowns::default(),
            outbox: Vec::new(),
            changed_machines: BTreeSet::new(),
            machines_unsaved: true,
            tombstones: Tombstones::new(settings.max_retired_jobs),
            issue_reports: IssueReports::default(),
            service_log: ServiceLog::default(),
            usage: UsageBook::default(),
            cooling: Cooling::default(),
        }
    }

    /// Whether any record changed since the last
    /// [`Controller::take_record_changes`] (keepalive touches and reads
    /// change none).
    pub fn has_unsaved_changes(&self) -> bool {
        self.jobs.has_unsaved()
            || self.retired.has_unsaved()
            || self.machines_unsaved
            || self.service_log.unsaved
            || self.usage.has_unsaved()
            || self.cooling.has_unsaved()
            || self.tombstones.has_unsaved()
    }

    /// Forgets which records changed, without building them: for a server
    /// with no state file, so that "something changed" stays true only for
    /// the turn that changed it (and the sets of changed jobs do not grow).
    pub fn discard_record_changes(&mut self) {
        self.jobs.take_unsaved();
        let _ = self.retired.take_unsaved(false);
        let _ = self.cooling.take_unsaved(false);
        self.machines_unsaved = false;
    }

    /// Marks the machine definitions to be saved (a reload changed them).
    pub(crate) fn machines_changed(&mut self) {
        self.machines_unsaved = true;
    }

    /// The ID the next BMP request will get.
    pub fn next_bmp_request_id(&self) -> u64 {
        self.next_bmp_request_id
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
        self.create_job_in_group(spec, host, original_request, None, now)
    }

    /// [`Controller::create_job_with_request`] for a job charged to `group`
    /// (see [`crate::core::usage`]; no quota is checked here).
    pub(crate) fn create_job_in_group(
        &mut self,
        spec: JobSpec,
        host: Option<String>,
        original_request: Option<serde_json::Value>,
        group: Option<String>,
        now: f64,
    ) -> u64 {
        self.jobs.set_clock(now);
        let id = self.next_job_id;
        self.next_job_id += 1;
        info!(
            job = id, owner = %spec.owner, host = host.as_deref().unwrap_or(""),
            args = ?spec.args, "create_job"
        );
        let mut job = Job::new(id, &spec, host, now);
        job.original_request = original_request;
        job.usage.group = group;
        self.jobs.insert(job);
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

    fn touch(&mut self, job_id: u64, host: Option<&str>, now: f64) -> Option<&Job> {
        self.jobs.touch(job_id, host, now)
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
        self.jobs.set_clock(now);
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
        self.jobs.set_clock(now);
        let Some(mut job) = self.jobs.kill(job_id) else {
            return;
        };
        self.record_job_end(&mut job, reason.as_deref(), now);
        self.tombstones.insert(
            job_id,
            Tombstone {
                owner: job.owner.clone(),
                start_time: job.start_time,
                finish_time: now,
                original_request: job.original_request.clone(),
            },
        );
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
                self.changed_machines.insert(a.machine.clone());
                self.retired.insert(job_id, reason);
                job.state = JobState::Destroyed;
                self.jobs.insert_dying(job);
                self.set_job_power(job_id, false, false);
                self.release_if_powered_off(job_id, now);
            }
        }
    }

    /// Destroys expired jobs and performs due delayed frees. Call it at least
    /// every `timeout_check_interval`.
    pub fn tick(&mut self, now: f64) {
        self.jobs.set_clock(now);
        let expired: Vec<u64> = self
            .jobs
            .live_jobs()
            .filter(|j| j.expired(now))
            .map(|j| j.id)
            .collect();
        for id in expired {
            self.destroy_job(id, Some(REASON_TIMED_OUT.to_owned()), now);
        }
        self.enforce_quotas(now);
        let placed = self.queue.check_free(now);
        self.on_placed(placed);
        self.cooling.expire(now, self.settings.seconds_before_free);
    }

    /// BMP work to hand to the back ends, in the order it was decided.
    pub fn take_bmp_requests(&mut self) -> Vec<BmpRequest> {
        std::mem::take(&mut self.outbox)
    }

    /// Reports that a BMP request finished: `Err(bmp_ip)` if it failed after
    /// its retries. A failure destroys the job with the reference's reason.
    pub fn bmp_request_done(&mut self, request_id: u64, result: Result<(), String>, now: f64) {
        self.jobs.set_clock(now);
        if self.teardown_request_done(request_id, now) {
            return;
        }
        let Some(job_id) = self.in_flight.remove(&request_id) else {
            return;
        };
        if let Err(bmp_ip) = result {
            warn!(job = job_id, bmp = %bmp_ip, "BMP requests failed");
            if self.jobs.is_live(job_id) {
                let reason =
                    format!("Machine configuration failed. Error: Requests failed on BMP {bmp_ip}");
                self.destroy_job(job_id, Some(reason), now);
            }
        }
        // Counting the request is not a recorded change; becoming ready is.
        let Some(outstanding) = self.jobs.bmp_request_finished(job_id) else {
            return;
        };
        if outstanding == 0 {
            if let Some(mut job) = self.jobs.get_mut(job_id) {
                if job.state != JobState::Destroyed {
                    job.state = JobState::Ready;
                }
            }
        }
        self.release_if_powered_off(job_id, now);
    }

    /// Releases a dying job's boards once no BMP work is outstanding for it.
    fn release_if_powered_off(&mut self, job_id: u64, now: f64) {
        if self
            .jobs
            .dying(job_id)
            .is_some_and(|j| j.bmp_requests_until_ready == 0)
        {
            let job = self.jobs.remove_dying(job_id);
            if self.queue.is_allocated(job_id) {
                if let Some(cooling) = job.as_ref().and_then(|j| CoolingBoards::of(j, now)) {
                    self.cooling.add(cooling, self.settings.seconds_before_free);
                }
            }
            let placed = self.queue.release(job_id, now);
            self.on_placed(placed);
        }
    }

    /// The jobs and machines that changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        Changes {
            jobs: self.jobs.take_notify(),
            machines: std::mem::take(&mut self.changed_machines),
        }
    }

    /// `list_jobs`: every live job, oldest first.
    pub fn list_jobs(&self) -> Vec<JobListing> {
        self.jobs
            .live_jobs()
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
            self.jobs.live_map(),
        )
    }

    /// How many jobs wait ahead of this one on its best machine, if queued.
    pub fn queue_position(&self, job_id: u64) -> Option<usize> {
        self.queue.position(job_id)
    }

    /// Whether nothing is allocated, queued, or waiting for power or a free
    /// (every machine is back to its start state).
    pub fn is_idle(&self) -> bool {
        self.jobs.is_empty() && self.queue.is_idle()
    }

    /// Checks the core's central invariant: no board belongs to two jobs at
    /// once, counting jobs still being torn down (their boards are not free
    /// until their power-off is done). `Err` names the board and both jobs.
    /// Tests, fuzzers and soak runs call it after every step.
    pub fn check_board_ownership(&self) -> Result<(), String> {
        let mut owner: BTreeMap<(&str, Board), u64> = BTreeMap::new();
        for job in self.jobs.live_jobs().chain(self.jobs.dying_jobs()) {
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
        for (job, machine, boards) in self.teardowns.held() {
            for b in boards {
                if let Some(other) = owner.insert((machine, *b), job) {
                    return Err(format!(
                        "board ({}, {}, {}) of {machine} is in jobs {other} and {job} (being powered off)",
                        b.x, b.y, b.z
                    ));
                }
            }
        }
        Ok(())
    }

    /// A live job (queued, powering or ready), without touching its keepalive.
    pub fn job(&self, job_id: u64) -> Option<&Job> {
        self.jobs.live(job_id)
    }

    /// A machine by name.
    pub fn machine(&self, name: &str) -> Option<&Arc<Machine>> {
        self.queue.machine(name)
    }

    /// What is remembered of a destroyed job: its reason (`Some(None)` when
    /// it has none) and, if still known, its tombstone.
    pub fn destroyed_job(&self, job_id: u64) -> Option<(Option<&str>, Option<&Tombstone>)> {
        if self.jobs.is_live(job_id) {
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

    /// Every board issue reported, oldest first.
    pub fn issue_reports(&self) -> impl Iterator<Item = &IssueReport> {
        self.issue_reports.all()
    }

    /// A job's changes of state, oldest first: a live job's, or a
    /// recently destroyed one's (see [`crate::core::job_history`]).
    pub fn job_history(&self, job_id: u64) -> Option<&[crate::core::job_history::StateChange]> {
        self.jobs.history(job_id)
    }

    /// How long jobs waited from creation to first ready, since start-up.
    pub fn completed_waits(&self) -> &crate::core::job_history::WaitHistogram {
        self.jobs.waits()
    }

    /// The jobs a BMP back end should know about (for tests and diagnostics).
    pub fn live_jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.live_jobs()
    }

    pub(crate) fn on_placed(&mut self, placed: Vec<Placed>) {
        for p in placed {
            let Some(mut job) = self.jobs.get_mut(p.job_id) else {
                continue;
            };
            let allocation = job_allocation(&p.machine, &p.allocation);
            info!(
                job = p.job_id, machine = %allocation.machine,
                boards = allocation.boards.len(), "allocated"
            );
            job.usage.hold(
                u32::try_from(allocation.boards.len()).unwrap_or(u32::MAX),
                p.at,
            );
            job.allocation = Some(allocation);
            drop(job);
            self.changed_machines.insert(p.machine.name.clone());
            self.set_job_power(p.job_id, true, true);
        }
    }

    /// Queues power (and, when powering on, periphery link isolation) for all
    /// of a job's boards, one request per BMP, and marks the job as powering.
    pub(crate) fn set_job_power(&mut self, job_id: u64, power: bool, isolate_links: bool) {
        let Some(alloc) = self.jobs.any(job_id).and_then(|j| j.allocation.as_ref()) else {
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
        let machine = Arc::clone(machine);
        let Some(mut job) = self.jobs.get_mut(job_id) else {
            return;
        };
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
    }
}

/// A reason given to a job whose record cannot be put back on restore (its
/// boards overlap another job's, or lie outside its machine).
pub const REASON_BAD_RECORD: &str = "Job record damaged in the state file.";

impl Controller {
    /// Every durable record (see [`Records`]). Outstanding BMP work is not
    /// in it: restoring issues it again.
    pub fn records(&self) -> Records {
        Records {
            next_job_id: self.next_job_id,
            machines: self
                .machines()
                .map(|m| MachineRecord::from(m.as_ref()))
                .collect(),
            jobs: self
                .jobs
                .live_jobs()
                .chain(self.jobs.dying_jobs())
                .map(recorded)
                .collect::<BTreeMap<u64, Job>>()
                .into_values()
                .collect(),
            retired: self.retired.entries(),
            boards: self.board_records(),
            usage: self.usage.records(),
            cooling: self.cooling.entries(),
            tombstones: self.tombstones.entries(),
        }
    }

    /// The records changed since the last call; with `all`, every record
    /// (for a store that must be rewritten whole, e.g. after a failed
    /// commit).
    pub fn take_record_changes(&mut self, all: bool) -> RecordChanges {
        let unsaved = self.jobs.take_unsaved();
        let ids: Vec<u64> = if all {
            self.jobs
                .live_jobs()
                .chain(self.jobs.dying_jobs())
                .map(|j| j.id)
                .collect()
        } else {
            unsaved.into_iter().collect()
        };
        let machines = (all || self.machines_unsaved).then(|| {
            self.machines()
                .map(|m| MachineRecord::from(m.as_ref()))
                .collect()
        });
        self.machines_unsaved = false;
        let boards = (all || self.service_log.unsaved).then(|| self.board_records());
        self.service_log.unsaved = false;
        RecordChanges {
            next_job_id: self.next_job_id,
            machines,
            jobs: ids
                .into_iter()
                .map(|id| (id, self.jobs.any(id).map(|j| recorded(j).1)))
                .collect(),
            retired: self.retired.take_unsaved(all),
            retired_floor: self.retired.floor(),
            boards,
            usage: self.usage.take_unsaved(),
            cooling: self.cooling.take_unsaved(all),
            tombstones: self.tombstones.take_unsaved(all),
        }
    }

    /// A controller carrying on from `records`, for the `configured`
    /// machines, at time `now`:
    ///
    /// * the allocators and queues are rebuilt from the jobs (each job's
    ///   boards are recorded, so nothing is placed again): allocated jobs
    ///   keep their boards, queued jobs are queued again in creation order;
    /// * every live job's keepalive timer restarts at `now` (as the
    ///   reference does on a warm start), so no deadline is ever shortened;
    /// * power work that was in flight is issued again: a powering job gets
    ///   its power request again, a dying job its power-off, after which its
    ///   boards are freed as usual;
    /// * the recorded machines are then reconfigured to the configured ones
    ///   exactly as a reload would ([`Controller::reconfigure`]): jobs on a
    ///   removed or reshaped machine are destroyed with
    ///   [`MACHINE_REMOVED`](crate::core::reconfigure::MACHINE_REMOVED),
    ///   a machine whose tags or dead boards changed is modified in place,
    ///   and queued jobs no machine can run any more are cancelled;
    /// * the boards out of service and the issue reports are put back
    ///   (see [`crate::core::board_service`]); boards of a machine removed
    ///   or reshaped by the reconfiguration are back in service;
    /// * a job whose record cannot be put back (its boards overlap another
    ///   job's or lie outside its machine) is destroyed with
    ///   [`REASON_BAD_RECORD`], and the rest carries on.
    ///
    /// Boards freed less than `seconds_before_free` before the restore
    /// ([`crate::core::cooling`]) stay unallocatable until that long after
    /// their free, as if there had been no restart.
    pub fn from_records(
        settings: ControllerSettings,
        records: Records,
        configured: Vec<Machine>,
        now: f64,
    ) -> Controller {
        Controller::from_records_numbering_bmp_requests_from(settings, records, configured, now, 1)
    }

    /// [`Controller::from_records`], numbering BMP requests from
    /// `first_bmp_request` (a controller replacing another in the same
    /// process must not reuse its request IDs).
    pub fn from_records_numbering_bmp_requests_from(
        settings: ControllerSettings,
        records: Records,
        configured: Vec<Machine>,
        now: f64,
        first_bmp_request: u64,
    ) -> Controller {
        let saved: Vec<Machine> = if records.machines.is_empty() {
            configured.clone()
        } else {
            records.machines.into_iter().map(Machine::from).collect()
        };
        let mut c = Controller::new(settings, saved);
        c.jobs.set_clock(now);
        c.next_bmp_request_id = first_bmp_request;
        c.next_job_id = records.next_job_id;
        c.retired.restore(records.retired);
        c.usage.restore(records.usage);
        c.tombstones.restore(records.tombstones);
        let mut claims: BTreeMap<String, Vec<(u64, Claim)>> = BTreeMap::new();
        let mut jobs = BTreeMap::new();
        for mut job in records.jobs {
            if job.id >= c.next_job_id {
                c.next_job_id = job.id + 1; // IDs never go back
            }
            job.bmp_requests_until_ready = 0;
            job.keepalive_until = job.keepalive.map(|k| now + k);
            if let Some((machine, claim)) = claim_of(&job) {
                claims.entry(machine).or_default().push((job.id, claim));
            } else if job.state != JobState::Destroyed {
                c.queue
                    .add_pending(job.id, job.target.clone(), job.request.clone());
            }
            jobs.insert(job.id, job);
        }
        // Boards waiting to be freed, oldest free first (the allocator
        // frees in order); a record whose job is in the records too is
        // stale (the job holds the boards).
        let mut cooling: Vec<CoolingBoards> = records
            .cooling
            .into_iter()
            .filter(|e| !jobs.contains_key(&e.job_id))
            .collect();
        cooling.sort_by(|a, b| a.freed_at.total_cmp(&b.freed_at));
        for entry in &cooling {
            claims
                .entry(entry.machine.clone())
                .or_default()
                .push((entry.job_id, entry.claim()));
        }
        // Live jobs' boards first: a dying job may still hold boards of an
        // older machine of the same name (reshaped by a reload), which live
        // jobs on the new one may have been given since; boards waiting to
        // be freed last.
        let mut refused = BTreeSet::new();
        for (machine, claims) in &mut claims {
            claims.sort_by_key(|(id, _)| match jobs.get(id) {
                Some(j) if j.state == JobState::Destroyed => 1,
                Some(_) => 0,
                None => 2,
            });
            refused.extend(c.queue.rebuild_machine(machine, claims));
        }
        c.cooling.restore(cooling.iter().cloned());
        for entry in &cooling {
            if refused.contains(&entry.job_id) {
                c.cooling.forget(entry.job_id);
            } else {
                c.queue.free_at(entry.job_id, entry.freed_at);
            }
        }
        c.cooling.expire(now, settings.seconds_before_free);
        let mut reissue = Vec::new();
        for (id, job) in jobs {
            let dying = job.state == JobState::Destroyed;
            if dying && (refused.contains(&id) || job.allocation.is_none()) {
                // Its boards are not (or no longer) on a machine we have:
                // nothing is left to power off or free.
                info!(job = id, "job being torn down is gone with its machine");
                c.jobs.notify_gone(id);
                continue;
            }
            if refused.contains(&id) {
                warn!(job = id, "job record cannot be restored; destroying it");
                c.retired.insert(id, Some(REASON_BAD_RECORD.to_owned()));
                c.jobs.notify_gone(id);
                continue;
            }
            if job.state == JobState::Destroyed {
                c.jobs.insert_dying(job);
                reissue.push((id, false));
            } else {
                if job.state == JobState::Power {
                    reissue.push((id, job.power.unwrap_or(true)));
                }
                c.jobs.insert(job);
            }
        }
        // Boards out of service first (nothing placed from here on may be
        // given one), then machines (jobs on a removed or reshaped machine
        // are destroyed), then the queues, then the power work that was in
        // flight for the jobs still there.
        c.restore_board_records(records.boards, now);
        c.reconfigure(settings, configured, now);
        let (placed, impossible) = c.queue.regenerate(now);
        c.on_placed(placed);
        for id in impossible {
            c.destroy_job(id, Some(REASON_NO_MACHINE.to_owned()), now);
        }
        for (id, power) in reissue {
            let pending = c
                .jobs
                .any(id)
                .map(|j| (j.state, j.bmp_requests_until_ready));
            match pending {
                Some((JobState::Power, 0)) => c.set_job_power(id, power, power),
                Some((JobState::Destroyed, 0)) => {
                    c.set_job_power(id, false, false);
                    c.release_if_powered_off(id, now);
                }
                _ => {}
            }
        }
        let placed = c.queue.process(now);
        c.on_placed(placed);
        c
    }
}

/// A job as recorded: without what a restart recomputes (the keepalive
/// deadline, outstanding BMP work).
fn recorded(job: &Job) -> (u64, Job) {
    let mut job = job.clone();
    job.keepalive_until = None;
    job.bmp_requests_until_ready = 0;
    (job.id, job)
}
