//! The high-level interface: request boards, keep them alive, wait for them.
//!
//! A [`Job`] connects to a server, requests boards (or takes over an
//! existing job), keeps the job alive from a background thread, and lets you
//! wait until the boards are powered on and find out their addresses.
//! Dropping a `Job` destroys it, freeing the boards, unless it was
//! [closed](Job::close) first.
//!
//! Every option not given to the [`JobBuilder`] comes from the config files
//! (see the [`config`] module), so with a config file naming your server
//! and yourself, this is the manual's `with Job(3) as j:`:
//!
//! ```no_run
//! use spalloc::Job;
//! # fn my_boot(_: &str, _: u32, _: u32) {}
//! # fn my_application(_: &str) {}
//!
//! Job::builder().boards(3).run(|j| {
//!     let hostname = j.hostname()?.unwrap_or_default();
//!     my_boot(&hostname, j.width()?.unwrap_or(0), j.height()?.unwrap_or(0));
//!     my_application(&hostname);
//!     Ok::<(), spalloc::Error>(())
//! })??;
//! # Ok::<(), spalloc::Error>(())
//! ```
//!
//! and the finer-grained form:
//!
//! ```no_run
//! use spalloc::Job;
//! use std::time::Duration;
//!
//! let j = Job::builder().boards(6).owner("me@example.com").create()?;
//! j.wait_until_ready(Some(Duration::from_secs(60)))?;
//! println!("{:?} {:?}x{:?}", j.hostname()?, j.width()?, j.height()?);
//! j.destroy(None)?;
//! # Ok::<(), spalloc::Error>(())
//! ```
//!
//! Network failures do not lose the job: waiting, keepalives, queries and
//! destruction all reconnect after `reconnect_delay` and carry on (the
//! reference gave up on a dropped connection in all these places).

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::keepalive::KeepaliveThread;
use crate::protocol_client::ProtocolClient;
use crate::request::{Allocation, JobOptions, WhereIs, WireNumber};
use spalloc_protocol::{BoardCoord, JobMachineInfo, JobState, JobStateRecord, PhysicalCoord};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Options for creating (or resuming) a [`Job`].
///
/// Every setter overrides the value from the config files; everything not
/// set comes from them (or their defaults). Setting a value to "none" (e.g.
/// [`JobBuilder::no_keepalive`]) overrides the config too, as an explicit
/// `None` does in the reference.
///
/// Giving a machine without tags clears the configured tags, and giving tags
/// without a machine clears the configured machine, since a job cannot have
/// both.
#[derive(Debug, Clone, Default)]
#[must_use = "a JobBuilder does nothing until create() or run() is called"]
pub struct JobBuilder {
    config: Option<Config>,
    config_files: Option<Vec<PathBuf>>,
    pub(crate) allocation: Allocation,
    pub(crate) resume_job_id: Option<u64>,
    hostname: Option<String>,
    port: Option<u16>,
    reconnect_delay: Option<Duration>,
    pub(crate) timeout: Option<Option<Duration>>,
    owner: Option<String>,
    pub(crate) keepalive: Option<Option<WireNumber>>,
    pub(crate) machine: Option<Option<String>>,
    pub(crate) tags: Option<Option<Vec<String>>>,
    pub(crate) min_ratio: Option<f64>,
    pub(crate) max_dead_boards: Option<Option<u32>>,
    pub(crate) max_dead_links: Option<Option<u32>>,
    pub(crate) require_torus: Option<bool>,
    /// Boards the job must never be given (this project's server only).
    pub(crate) avoid_boards: Vec<BoardCoord>,
    /// The v2 service's URL (see [`crate::any_job`]).
    pub(crate) url: Option<String>,
    pub(crate) credentials: Option<crate::v2::Credentials>,
    pub(crate) ca_cert: Option<PathBuf>,
}

impl JobBuilder {
    /// A builder for one board, with everything else from the config files.
    pub fn new() -> Self {
        JobBuilder::default()
    }

    /// Uses this configuration instead of reading config files.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Reads these config files instead of the default search path; an
    /// empty list means built-in defaults only (`config_filenames=[]`).
    pub fn config_files<I, P>(mut self, files: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.config_files = Some(files.into_iter().map(Into::into).collect());
        self
    }

    /// Asks for the given allocation form.
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// Any single board (the default; `Job()`).
    pub fn one_board(self) -> Self {
        self.allocation(Allocation::OneBoard)
    }

    /// At least `n` boards (`Job(n)`); see [`JobBuilder::min_ratio`].
    pub fn boards(self, n: u32) -> Self {
        self.allocation(Allocation::Boards(n))
    }

    /// Exactly `width` × `height` triads (`Job(w, h)`).
    pub fn triads(self, width: u32, height: u32) -> Self {
        self.allocation(Allocation::Triads { width, height })
    }

    /// The board at logical coordinate (x, y, z) (`Job(x, y, z)`), usually
    /// with [`JobBuilder::machine`].
    pub fn board_at(self, x: u32, y: u32, z: u32) -> Self {
        self.allocation(Allocation::Board { x, y, z })
    }

    /// Takes over an existing job instead of creating one, keeping it alive
    /// with the keepalive it was created with. All requirements are ignored.
    pub fn resume(mut self, job_id: u64) -> Self {
        self.resume_job_id = Some(job_id);
        self
    }

    /// The server's host name.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// The server's port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// How long to wait between reconnection attempts.
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = Some(delay);
        self
    }

    /// How long to wait for each reply from the server; `None` for ever.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The job's owner, by convention an e-mail address.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Seconds without keepalive after which the server destroys the job.
    /// Pass an `f64` to send `60.0`, an integer to send `60`.
    pub fn keepalive(mut self, seconds: impl Into<WireNumber>) -> Self {
        self.keepalive = Some(Some(seconds.into()));
        self
    }

    /// No keepalive: the job lives until destroyed. Use with extreme caution.
    pub fn no_keepalive(mut self) -> Self {
        self.keepalive = Some(None);
        self
    }

    /// The machine to run on (clears configured tags unless tags are set).
    pub fn machine(mut self, machine: impl Into<String>) -> Self {
        self.machine = Some(Some(machine.into()));
        self
    }

    /// Any machine with the right tags, whatever the config says.
    pub fn any_machine(mut self) -> Self {
        self.machine = Some(None);
        self
    }

    /// Tags the machine must have (clears a configured machine unless a
    /// machine is set).
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = Some(Some(tags.into_iter().map(Into::into).collect()));
        self
    }

    /// The server's default tags (`tags=None`), whatever the config says.
    pub fn default_tags(mut self) -> Self {
        self.tags = Some(None);
        self
    }

    /// How square an N-board allocation must at least be (0.0 any, 1.0 square).
    pub fn min_ratio(mut self, ratio: f64) -> Self {
        self.min_ratio = Some(ratio);
        self
    }

    /// Dead boards allowed in the allocation; `None` for any number.
    pub fn max_dead_boards(mut self, n: Option<u32>) -> Self {
        self.max_dead_boards = Some(n);
        self
    }

    /// Dead links allowed in the allocation; `None` for any number.
    pub fn max_dead_links(mut self, n: Option<u32>) -> Self {
        self.max_dead_links = Some(n);
        self
    }

    /// Require wrap-around links (usually means a whole machine).
    pub fn require_torus(mut self, require: bool) -> Self {
        self.require_torus = Some(require);
        self
    }

    /// Never give the job the board at `(x, y, z)` (may be called several
    /// times). Only this project's server knows avoid-lists: the reference
    /// server refuses the request (see
    /// [`JobOptions::is_unsupported_avoid_boards`]).
    pub fn avoid_board(mut self, x: u32, y: u32, z: u32) -> Self {
        self.avoid_boards.push([x, y, z]);
        self
    }

    /// Speaks v2 to this service URL (`https://host/spalloc/`) instead of
    /// the legacy protocol to `hostname`; used by [`JobBuilder::create_any`].
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The v2 credentials (default: from the environment and config files,
    /// see [`crate::v2::credentials`]).
    pub fn credentials(mut self, credentials: crate::v2::Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// A PEM file of certificates to trust for the v2 service.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_cert = Some(path.into());
        self
    }

    /// The configuration: the one given, or the files read.
    pub(crate) fn load_config(&self) -> Result<Config> {
        Ok(match (&self.config, &self.config_files) {
            (Some(c), _) => c.clone(),
            (None, Some(files)) => Config::from_files(files)?,
            (None, None) => Config::load()?,
        })
    }

    /// Creates (or resumes) the job over the protocol its address names:
    /// v2 when a URL is given (here or as `url` in a config file), the
    /// legacy protocol to `hostname` otherwise.
    pub fn create_any(self) -> Result<crate::AnyJob> {
        let config = self.load_config()?;
        match self.url.clone().or_else(|| config.url.clone()) {
            Some(url) => crate::any_job::create_v2(&self, &config, &url).map(crate::AnyJob::V2),
            None => self
                .create()
                .map(|job| crate::AnyJob::Legacy(Box::new(job))),
        }
    }

    /// The settings after applying overrides to the config: connection
    /// settings, then the request (`None` when resuming).
    fn resolve(&self) -> Result<(Settings, JobOptions)> {
        let config = self.load_config()?;
        let hostname = self.hostname.clone().or(config.hostname.clone()).ok_or_else(|| {
            Error::InvalidRequest(
                "a hostname must be specified: pass one, or set `hostname` in the [spalloc] section of a config file".into(),
            )
        })?;
        let settings = Settings {
            hostname,
            port: self.port.unwrap_or(config.port),
            timeout: self.timeout.unwrap_or_else(|| config.timeout_duration()),
            reconnect_delay: self
                .reconnect_delay
                .unwrap_or_else(|| config.reconnect_delay_duration()),
        };
        let (machine, tags) = match (&self.machine, &self.tags) {
            (Some(m), Some(t)) => (m.clone(), t.clone()),
            (Some(m), None) => (
                m.clone(),
                if m.is_some() {
                    None
                } else {
                    config.tags.clone()
                },
            ),
            (None, Some(t)) => (
                if t.is_some() {
                    None
                } else {
                    config.machine.clone()
                },
                t.clone(),
            ),
            (None, None) => (config.machine.clone(), config.tags.clone()),
        };
        let owner = self.owner.clone().or(config.owner.clone());
        let options = JobOptions {
            owner: owner.unwrap_or_default(),
            keepalive: self
                .keepalive
                .unwrap_or_else(|| config.keepalive.map(WireNumber::Float)),
            machine,
            tags,
            min_ratio: self.min_ratio.unwrap_or(config.min_ratio),
            max_dead_boards: self.max_dead_boards.unwrap_or(config.max_dead_boards),
            max_dead_links: self.max_dead_links.unwrap_or(config.max_dead_links),
            require_torus: self.require_torus.unwrap_or(config.require_torus),
            avoid_boards: self.avoid_boards.clone(),
        };
        if self.resume_job_id.is_none() {
            if self.owner.is_none() && config.owner.is_none() {
                return Err(Error::InvalidRequest(
                    "an owner must be specified: pass one, or set `owner` (by convention your e-mail address) in the [spalloc] section of a config file".into(),
                ));
            }
            if options.machine.is_some() && options.tags.is_some() {
                return Err(Error::InvalidRequest(
                    "only one of tags and machine may be specified (check the config files for a `machine` or `tags` you did not mean)".into(),
                ));
            }
        }
        Ok((settings, options))
    }

    /// Connects, checks the server version, and creates (or resumes) the job.
    /// Does not wait for it to be ready: see [`Job::wait_until_ready`].
    pub fn create(self) -> Result<Job> {
        let (settings, options) = self.resolve()?;
        let client = ProtocolClient::new(settings.hostname.clone(), settings.port)
            .with_timeout(settings.timeout);
        client.connect()?;
        client.check_version()?;
        let (id, keepalive) = match self.resume_job_id {
            Some(id) => {
                let record = client.get_job_state(id)?;
                if matches!(record.state, JobState::Unknown | JobState::Destroyed) {
                    return Err(Error::JobDestroyed {
                        job_id: id,
                        reason: Some(match record.reason {
                            Some(r) => format!("job does not exist: {}: {r}", record.state),
                            None => format!("job does not exist: {}", record.state),
                        }),
                    });
                }
                info!("Spalloc resumed job {id}");
                (id, record.keepalive)
            }
            None => {
                let id = client.create_job(&self.allocation, &options)?;
                info!("Created spalloc job {id}");
                (id, options.keepalive.map(WireNumber::as_f64))
            }
        };
        let mut job = Job {
            id,
            client,
            keepalive: keepalive.and_then(config::seconds),
            keepalive_thread: None,
            machine_info: Mutex::new(None),
            finished: false,
            settings,
        };
        if let Some(period) = job.keepalive {
            match KeepaliveThread::spawn(
                &job.settings.hostname,
                job.settings.port,
                id,
                period,
                job.settings.timeout,
                job.settings.reconnect_delay,
            ) {
                Ok(thread) => job.keepalive_thread = Some(thread),
                Err(e) => {
                    // Destroy rather than leave a job nobody keeps alive.
                    let _ = job.destroy_inner(Some("could not start keepalive thread"));
                    return Err(Error::ProtocolError(format!(
                        "could not start the keepalive thread: {e}"
                    )));
                }
            }
        }
        Ok(job)
    }

    /// The manual's `with Job(...) as j:` block: creates the job, waits (for
    /// ever) until it is ready, runs `f`, and destroys the job however `f`
    /// ends (returning, or panicking). If the job cannot become ready it is
    /// destroyed and the error returned.
    pub fn run<R>(self, f: impl FnOnce(&Job) -> R) -> Result<R> {
        let job = self.create()?;
        job.wait_until_ready(None)?; // on error, dropping `job` destroys it
        let result = f(&job);
        if let Err(e) = job.destroy(None) {
            warn!("Could not destroy spalloc job: {e}");
        }
        Ok(result)
    }
}

#[derive(Debug, Clone)]
struct Settings {
    hostname: String,
    port: u16,
    timeout: Option<Duration>,
    reconnect_delay: Duration,
}

/// A job on a spalloc server: a request for boards, and then the boards.
///
/// Created with [`Job::builder`] (or [`Job::resume`]). State queries go to
/// the server every time; the allocation details are fetched once allocated
/// and cached. A background thread keeps the job alive until it is
/// [destroyed](Job::destroy), [closed](Job::close) or dropped.
#[derive(Debug)]
pub struct Job {
    id: u64,
    client: ProtocolClient,
    settings: Settings,
    keepalive: Option<Duration>,
    keepalive_thread: Option<KeepaliveThread>,
    machine_info: Mutex<Option<JobMachineInfo>>,
    finished: bool,
}

const NO_LONGER_RECOGNISED: &str = "Spalloc server no longer recognises job.";

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

impl Job {
    /// Starts describing a job; see [`JobBuilder`].
    pub fn builder() -> JobBuilder {
        JobBuilder::new()
    }

    /// Takes over (and keeps alive) an existing job, with the server details
    /// from the config files (`Job(resume_job_id=...)`).
    pub fn resume(job_id: u64) -> Result<Job> {
        JobBuilder::new().resume(job_id).create()
    }

    /// The job's ID, for `spalloc-job` and for your logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The keepalive interval the server enforces for this job, if any.
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    fn lock_info(&self) -> MutexGuard<'_, Option<JobMachineInfo>> {
        self.machine_info
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits `reconnect_delay` (at most until `deadline`), then reconnects
    /// and re-checks the version. A failed connect is only logged: the
    /// caller's next call will try again.
    fn reconnect(&self, deadline: Option<Instant>) -> Result<()> {
        self.client.close();
        let delay = match remaining(deadline) {
            Some(left) => left.min(self.settings.reconnect_delay),
            None => self.settings.reconnect_delay,
        };
        std::thread::sleep(delay);
        match self
            .client
            .connect()
            .and_then(|()| self.client.check_version())
        {
            Ok(_) => {
                info!("Reconnected to spalloc server successfully.");
                Ok(())
            }
            Err(e) if e.is_communication_error() => {
                warn!("Spalloc server is unreachable ({e}), will keep trying...");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `op`, and once more after a reconnection if the connection failed.
    fn with_retry<T>(&self, op: impl Fn(&ProtocolClient) -> Result<T>) -> Result<T> {
        match op(&self.client) {
            Err(e) if e.is_communication_error() => {
                warn!("Spalloc server is unreachable ({e}), will keep trying...");
                self.reconnect(None)?;
                op(&self.client)
            }
            other => other,
        }
    }

    /// Runs `op` until it succeeds, reconnecting after each connection
    /// failure, until `deadline` (for ever if `None`). `Ok(None)` on timeout.
    fn until_deadline<T>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&ProtocolClient) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        loop {
            match op(&self.client) {
                Err(e) if e.is_communication_error() => {
                    warn!("Spalloc server is unreachable ({e}), will keep trying...");
                    if expired(deadline) {
                        return Ok(None);
                    }
                    self.reconnect(deadline)?;
                }
                other => return other,
            }
        }
    }

    /// The full `get_job_state` record (state, power, keepalive, reason).
    pub fn state_record(&self) -> Result<JobStateRecord> {
        self.with_retry(|c| c.get_job_state(self.id))
    }

    /// The job's current state (asks the server every time).
    pub fn state(&self) -> Result<JobState> {
        Ok(self.state_record()?.state)
    }

    /// Whether the boards are on (or powering on); `None` if none allocated.
    pub fn power(&self) -> Result<Option<bool>> {
        Ok(self.state_record()?.power)
    }

    /// Why the job was destroyed; `None` if it was not (or gave no reason).
    pub fn reason(&self) -> Result<Option<String>> {
        Ok(self.state_record()?.reason)
    }

    /// The allocation details, fetched from the server until the job is
    /// allocated, then cached.
    pub fn machine_info(&self) -> Result<JobMachineInfo> {
        if let Some(info) = self.lock_info().as_ref() {
            return Ok(info.clone());
        }
        let info = self.with_retry(|c| c.get_job_machine_info(self.id))?;
        if info.machine_name.is_some() {
            *self.lock_info() = Some(info.clone());
        }
        Ok(info)
    }

    /// The hostname of every Ethernet-connected chip, by chip coordinate;
    /// `None` until allocated.
    pub fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>> {
        Ok(self
            .machine_info()?
            .connections
            .map(|conns| conns.into_iter().map(|c| ((c.0[0], c.0[1]), c.1)).collect()))
    }

    /// The hostname of chip (0, 0), to boot the machine through; `None`
    /// until allocated (the reference raised `TypeError` instead).
    pub fn hostname(&self) -> Result<Option<String>> {
        Ok(self.connections()?.and_then(|mut c| c.remove(&(0, 0))))
    }

    /// The width of the allocated machine in chips; `None` until allocated.
    pub fn width(&self) -> Result<Option<u32>> {
        Ok(self.machine_info()?.width)
    }

    /// The height of the allocated machine in chips; `None` until allocated.
    pub fn height(&self) -> Result<Option<u32>> {
        Ok(self.machine_info()?.height)
    }

    /// The machine the job runs on; `None` until allocated.
    pub fn machine_name(&self) -> Result<Option<String>> {
        Ok(self.machine_info()?.machine_name)
    }

    /// The logical coordinates of the allocated boards; `None` until allocated.
    pub fn boards(&self) -> Result<Option<Vec<BoardCoord>>> {
        Ok(self.machine_info()?.boards)
    }

    /// Powers the boards on (resetting them if on) or off. Does not wait:
    /// use [`Job::wait_until_ready`]. Does nothing if no boards are allocated.
    pub fn set_power(&self, power: bool) -> Result<()> {
        self.with_retry(|c| {
            if power {
                c.power_on_job_boards(self.id)
            } else {
                c.power_off_job_boards(self.id)
            }
        })
    }

    /// Resets (power-cycles) the boards; `set_power(true)`.
    pub fn reset(&self) -> Result<()> {
        self.set_power(true)
    }

    /// The physical `[cabinet, frame, board]` of the board holding chip
    /// (x, y) of this job's machine; `None` if the chip is not in the job.
    pub fn where_is_machine(&self, chip_x: i64, chip_y: i64) -> Result<Option<PhysicalCoord>> {
        let query = WhereIs::JobChip {
            job_id: self.id,
            x: chip_x,
            y: chip_y,
        };
        Ok(self.with_retry(|c| c.where_is(&query))?.map(|r| r.physical))
    }

    /// Waits until the state is no longer `old_state`, for at most `timeout`
    /// (`None`: for ever). Returns the new state, or `old_state` on timeout.
    ///
    /// Keepalives are sent while waiting. A lost connection is re-made after
    /// `reconnect_delay` and the wait carries on. Unlike the reference, the
    /// state is also re-polled when no notification arrives within
    /// `keepalive / 2`, so a missed notification cannot stall the wait.
    pub fn wait_for_state_change(
        &self,
        old_state: JobState,
        timeout: Option<Duration>,
    ) -> Result<JobState> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        Ok(self
            .wait_for_change(old_state, deadline)?
            .map_or(old_state, |r| r.state))
    }

    fn wait_for_change(
        &self,
        old_state: JobState,
        deadline: Option<Instant>,
    ) -> Result<Option<JobStateRecord>> {
        let half_keepalive = self.keepalive.map(|k| k / 2);
        self.until_deadline(deadline, |c| {
            c.notify_job(Some(self.id))?;
            loop {
                let record = c.get_job_state(self.id)?;
                if record.state != old_state {
                    return Ok(Some(record));
                }
                if expired(deadline) {
                    return Ok(None);
                }
                if self.keepalive.is_some() {
                    c.job_keepalive(self.id)?;
                }
                let wait = match (half_keepalive, remaining(deadline)) {
                    (Some(k), Some(left)) => Some(k.min(left)),
                    (k, left) => k.or(left),
                };
                match c.wait_for_notification(wait) {
                    Ok(n) => {
                        debug!(?n, "notification");
                        while c.poll_notification().is_some() {}
                    }
                    Err(Error::ProtocolTimeout(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        })
    }

    /// Waits until the job is allocated and its boards powered, for at most
    /// `timeout` (`None`: for ever).
    ///
    /// Fails with [`Error::JobDestroyed`] (with the server's reason) if the
    /// job is destroyed or forgotten first, and [`Error::StateChangeTimeout`]
    /// if time runs out. The state is checked once even with a zero timeout.
    pub fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        info!("Waiting for boards to become ready...");
        let mut record = self
            .until_deadline(deadline, |c| c.get_job_state(self.id).map(Some))?
            .ok_or(Error::StateChangeTimeout)?;
        loop {
            match record.state {
                JobState::Ready => return Ok(()),
                JobState::Queued => info!("Job has been queued by the spalloc server."),
                JobState::Power => info!("Waiting for board power commands to complete."),
                JobState::Destroyed => {
                    return Err(Error::JobDestroyed {
                        job_id: self.id,
                        reason: record.reason,
                    })
                }
                JobState::Unknown => {
                    return Err(Error::JobDestroyed {
                        job_id: self.id,
                        reason: Some(NO_LONGER_RECOGNISED.into()),
                    })
                }
            }
            if expired(deadline) {
                return Err(Error::StateChangeTimeout);
            }
            record = self
                .wait_for_change(record.state, deadline)?
                .ok_or(Error::StateChangeTimeout)?;
        }
    }

    fn stop_keepalive(&mut self) {
        if let Some(thread) = self.keepalive_thread.take() {
            thread.stop();
        }
    }

    fn destroy_inner(&mut self, reason: Option<&str>) -> Result<()> {
        self.finished = true;
        let result = self.with_retry(|c| c.destroy_job(self.id, reason));
        self.stop_keepalive();
        self.client.close();
        result
    }

    /// Destroys the job, freeing its boards, and disconnects. A lost
    /// connection is re-made once (after `reconnect_delay`) before giving up.
    pub fn destroy(mut self, reason: Option<&str>) -> Result<()> {
        self.destroy_inner(reason)
    }

    /// Disconnects and stops keeping the job alive, *without* destroying it:
    /// the job lives on until its keepalive expires, or for ever without
    /// one. Most programs want [`Job::destroy`] (or to drop the job).
    pub fn close(mut self) {
        self.finished = true;
        self.stop_keepalive();
        self.client.close();
    }
}

impl Drop for Job {
    /// Destroys the job unless it was destroyed or closed already.
    fn drop(&mut self) {
        if !self.finished {
            if let Err(e) = self.destroy_inner(None) {
                warn!("Could not destroy spalloc job: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::FakeServer;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A scripted server for job 42: `states` are returned by successive
    /// `get_job_state` calls (the last one repeats); every line is logged
    /// with its connection number.
    struct Mock {
        server: FakeServer,
        log: Arc<Mutex<Vec<(usize, String)>>>,
    }

    fn mock(states: &'static [(u8, Option<&'static str>)]) -> Mock {
        let log = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicUsize::new(0));
        let log2 = log.clone();
        let server = FakeServer::start(move |index, mut conn| {
            while let Some(line) = conn.read_line() {
                log2.lock().unwrap().push((index, line.clone()));
                let req = spalloc_protocol::Request::parse(line.as_bytes()).unwrap();
                let reply = match req.command.as_str() {
                    "version" => "\"0.4.2\"".to_owned(),
                    "create_job" => "42".to_owned(),
                    "get_job_state" => {
                        let n = polls.fetch_add(1, Ordering::SeqCst);
                        let (state, reason) = states[n.min(states.len() - 1)];
                        let reason = reason.map_or("null".into(), |r| format!("\"{r}\""));
                        format!("{{\"state\": {state}, \"power\": null, \"keepalive\": 0.2, \"reason\": {reason}, \"start_time\": null}}")
                    }
                    "get_job_machine_info" => r#"{"width": 8, "height": 8, "connections": [[[0, 0], "10.0.0.1"]], "machine_name": "m", "boards": [[0, 0, 0]]}"#.to_owned(),
                    _ => "null".to_owned(),
                };
                conn.send(&format!("{{\"return\": {reply}}}"));
                if req.command == "job_keepalive" && index == 0 {
                    conn.send(r#"{"jobs_changed": [42]}"#);
                }
            }
        });
        Mock { server, log }
    }

    impl Mock {
        fn builder(&self) -> JobBuilder {
            Job::builder()
                .config_files(Vec::<PathBuf>::new())
                .hostname("127.0.0.1")
                .port(self.server.port())
                .owner("me")
                .timeout(Some(Duration::from_secs(5)))
                .reconnect_delay(Duration::from_millis(50))
        }

        fn lines(&self, conn: usize) -> Vec<String> {
            let log = self.log.lock().unwrap();
            log.iter()
                .filter(|(c, _)| *c == conn)
                .map(|(_, l)| l.clone())
                .collect()
        }

        fn wait_for(&self, what: impl Fn(&[(usize, String)]) -> bool) {
            let start = Instant::now();
            while !what(&self.log.lock().unwrap()) {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "condition not met"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    #[test]
    fn required_settings_are_checked_before_connecting() {
        let none = Job::builder().config_files(Vec::<PathBuf>::new());
        let e = none.clone().owner("me").create().unwrap_err();
        assert!(e.to_string().contains("hostname"), "{e}");
        let e = none.clone().hostname("h").create().unwrap_err();
        assert!(e.to_string().contains("owner"), "{e}");
        let config = Config {
            hostname: Some("h".into()),
            owner: Some("o".into()),
            tags: Some(vec!["t".into()]),
            machine: Some("m".into()),
            ..Config::default()
        };
        let e = Job::builder().config(config.clone()).create().unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
        // An explicit machine clears configured tags, and vice versa.
        let (_, o) = Job::builder()
            .config(config.clone())
            .machine("x")
            .resolve()
            .unwrap();
        assert_eq!((o.machine.as_deref(), o.tags), (Some("x"), None));
        let (_, o) = Job::builder().config(config).tags(["a"]).resolve().unwrap();
        assert_eq!((o.machine, o.tags), (None, Some(vec!["a".to_owned()])));
    }

    #[test]
    fn boards_to_avoid_reach_the_legacy_options() {
        let config = Config {
            hostname: Some("h".into()),
            owner: Some("o".into()),
            ..Config::default()
        };
        let builder = Job::builder().config(config).avoid_board(1, 0, 2);
        let (_, o) = builder.avoid_board(0, 0, 0).resolve().unwrap();
        assert_eq!(o.avoid_boards, vec![[1, 0, 2], [0, 0, 0]]);
    }

    #[test]
    fn config_values_are_sent_and_drop_destroys() {
        let m = mock(&[(3, None)]);
        let dir = std::env::temp_dir().join(format!("spalloc-job-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cfg");
        std::fs::write(
            &file,
            format!("[spalloc]\nhostname = 127.0.0.1\nport = {}\nowner = bob\nkeepalive = 1.0\nmachine = m\n\
                     min_ratio = 4.0\nmax_dead_boards = 5\nmax_dead_links = 6\nrequire_torus = True\n", m.server.port()),
        )
        .unwrap();
        let job = Job::builder()
            .config_files([&file])
            .triads(3, 2)
            .create()
            .unwrap();
        assert_eq!(job.id(), 42);
        assert_eq!(job.keepalive(), Some(Duration::from_secs(1)));
        drop(job);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            m.lines(0),
            [
                r#"{"command": "version", "args": [], "kwargs": {}}"#,
                r#"{"command": "create_job", "args": [3, 2], "kwargs": {"owner": "bob", "keepalive": 1.0, "machine": "m", "tags": null, "min_ratio": 4.0, "max_dead_boards": 5, "max_dead_links": 6, "require_torus": true}}"#,
                r#"{"command": "destroy_job", "args": [42], "kwargs": {"reason": null}}"#,
            ]
        );
    }

    #[test]
    fn keepalives_flow_on_their_own_connection_until_closed() {
        let m = mock(&[(3, None)]);
        let job = m.builder().keepalive(0.1).create().unwrap();
        m.wait_for(|log| {
            log.iter()
                .filter(|(c, l)| *c == 1 && l.contains("job_keepalive"))
                .count()
                >= 3
        });
        job.close();
        let n = m.lines(1).len();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(m.lines(1).len(), n, "keepalives continued after close");
        assert!(m.lines(0).iter().all(|l| !l.contains("destroy_job")));
        assert!(m
            .lines(1)
            .iter()
            .all(|l| l == r#"{"command": "job_keepalive", "args": [42], "kwargs": {}}"#));
    }

    #[test]
    fn wait_until_ready_follows_states_and_reads_machine_info() {
        let m = mock(&[(1, None), (1, None), (2, None), (3, None)]);
        let job = m.builder().keepalive(0.2).create().unwrap();
        job.wait_until_ready(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(job.hostname().unwrap().as_deref(), Some("10.0.0.1"));
        assert_eq!(job.width().unwrap(), Some(8));
        assert_eq!(job.machine_name().unwrap().as_deref(), Some("m"));
        assert_eq!(job.boards().unwrap(), Some(vec![[0, 0, 0]]));
        // Cached: one fetch for all those properties.
        let fetches = m
            .lines(0)
            .iter()
            .filter(|l| l.contains("machine_info"))
            .count();
        assert_eq!(fetches, 1);
        let lines = m.lines(0);
        assert!(lines
            .iter()
            .any(|l| l == r#"{"command": "notify_job", "args": [42], "kwargs": {}}"#));
        job.destroy(Some("done")).unwrap();
        assert_eq!(
            m.lines(0).last().unwrap(),
            r#"{"command": "destroy_job", "args": [42], "kwargs": {"reason": "done"}}"#
        );
    }

    #[test]
    fn destroyed_jobs_and_timeouts_are_errors() {
        let m = mock(&[(1, None), (4, Some("Job timed out."))]);
        let job = m.builder().create().unwrap();
        match job.wait_until_ready(None) {
            Err(Error::JobDestroyed { job_id: 42, reason }) => {
                assert_eq!(reason.as_deref(), Some("Job timed out."))
            }
            other => panic!("{other:?}"),
        }
        let m = mock(&[(1, None)]);
        let job = m.builder().no_keepalive().create().unwrap();
        let start = Instant::now();
        let e = job
            .wait_until_ready(Some(Duration::from_millis(200)))
            .unwrap_err();
        assert!(matches!(e, Error::StateChangeTimeout), "{e}");
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(
            job.wait_for_state_change(JobState::Queued, Some(Duration::ZERO))
                .unwrap(),
            JobState::Queued
        );
        let m = mock(&[(0, None)]);
        let e = m.builder().resume(42).create().unwrap_err();
        assert!(matches!(e, Error::JobDestroyed { .. }), "{e}");
        let m = mock(&[(4, Some("Timed out."))]);
        let e = m.builder().resume(42).create().unwrap_err();
        assert!(e.to_string().contains("destroyed: Timed out."), "{e}");
        assert!(m.lines(0).iter().all(|l| !l.contains("create_job")));
    }
}
