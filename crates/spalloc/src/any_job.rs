//! One job interface over both protocols: [`JobHandle`], implemented by the
//! legacy [`Job`](crate::Job), the v2 [`v2::Job`](crate::v2::Job) and
//! [`AnyJob`], which holds either. Code written against `JobHandle` (or
//! `AnyJob`) works with either server; [`JobBuilder::create_any`] picks the
//! protocol by address: a URL (`https://host/spalloc/`, in the builder or
//! as `url` in a config file) means v2, a host name the legacy port.
//!
//! ```no_run
//! use spalloc::{Job, JobHandle};
//! use std::time::Duration;
//!
//! let job = Job::builder().boards(3).url("https://spinnaker.cs.man.ac.uk/spalloc/").create_any()?;
//! job.wait_until_ready(Some(Duration::from_secs(300)))?;
//! println!("boot {:?}", job.hostname()?);
//! job.destroy(Some("done"))?;
//! # Ok::<(), spalloc::Error>(())
//! ```
//!
//! Legacy-only options (`min_ratio`, `require_torus`, `max_dead_links`)
//! have no v2 meaning: asking for them of a v2 server is an error naming
//! the option, not a silent difference.

use crate::config::{Config, DEFAULT_MIN_RATIO};
use crate::error::{Error, Result};
use crate::job::JobBuilder;
use crate::request::Allocation;
use crate::v2::{self, BoardSelector, CreateJob, Credentials};
use spalloc_protocol::{BoardCoord, JobState, PhysicalCoord};
use std::collections::BTreeMap;
use std::time::Duration;

/// What every job can do, over either protocol.
pub trait JobHandle {
    /// The job's ID.
    fn id(&self) -> u64;
    /// Its state.
    fn state(&self) -> Result<JobState>;
    /// Why it was destroyed, once it has been.
    fn reason(&self) -> Result<Option<String>>;
    /// Waits until it is ready; [`Error::JobDestroyed`] if it is destroyed
    /// first, [`Error::StateChangeTimeout`] after `timeout`.
    fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()>;
    /// The address of the board with chip (0, 0), once allocated.
    fn hostname(&self) -> Result<Option<String>>;
    /// Job-relative Ethernet chip to board address, once allocated.
    fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>>;
    /// The machine, once allocated.
    fn machine_name(&self) -> Result<Option<String>>;
    /// The boards (triad coordinates), once allocated.
    fn boards(&self) -> Result<Option<Vec<BoardCoord>>>;
    /// Whether the boards are powered on (`None` until known).
    fn power(&self) -> Result<Option<bool>>;
    /// Powers the boards on or off.
    fn set_power(&self, on: bool) -> Result<()>;
    /// The physical location of the board holding a job-relative chip.
    fn where_is_machine(&self, x: u32, y: u32) -> Result<Option<PhysicalCoord>>;
    /// Destroys the job.
    fn destroy(self, reason: Option<&str>) -> Result<()>
    where
        Self: Sized;
}

impl JobHandle for crate::Job {
    fn id(&self) -> u64 {
        crate::Job::id(self)
    }
    fn state(&self) -> Result<JobState> {
        crate::Job::state(self)
    }
    fn reason(&self) -> Result<Option<String>> {
        crate::Job::reason(self)
    }
    fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()> {
        crate::Job::wait_until_ready(self, timeout)
    }
    fn hostname(&self) -> Result<Option<String>> {
        crate::Job::hostname(self)
    }
    fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>> {
        crate::Job::connections(self)
    }
    fn machine_name(&self) -> Result<Option<String>> {
        crate::Job::machine_name(self)
    }
    fn boards(&self) -> Result<Option<Vec<BoardCoord>>> {
        crate::Job::boards(self)
    }
    fn power(&self) -> Result<Option<bool>> {
        crate::Job::power(self)
    }
    fn set_power(&self, on: bool) -> Result<()> {
        crate::Job::set_power(self, on)
    }
    fn where_is_machine(&self, x: u32, y: u32) -> Result<Option<PhysicalCoord>> {
        crate::Job::where_is_machine(self, i64::from(x), i64::from(y))
    }
    fn destroy(self, reason: Option<&str>) -> Result<()> {
        crate::Job::destroy(self, reason)
    }
}

impl JobHandle for v2::Job {
    fn id(&self) -> u64 {
        v2::Job::id(self)
    }
    fn state(&self) -> Result<JobState> {
        v2::Job::state(self)
    }
    fn reason(&self) -> Result<Option<String>> {
        v2::Job::reason(self)
    }
    fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()> {
        v2::Job::wait_until_ready(self, timeout)
    }
    fn hostname(&self) -> Result<Option<String>> {
        v2::Job::hostname(self)
    }
    fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>> {
        v2::Job::connections(self)
    }
    fn machine_name(&self) -> Result<Option<String>> {
        v2::Job::machine_name(self)
    }
    fn boards(&self) -> Result<Option<Vec<BoardCoord>>> {
        v2::Job::boards(self)
    }
    fn power(&self) -> Result<Option<bool>> {
        v2::Job::power(self)
    }
    fn set_power(&self, on: bool) -> Result<()> {
        v2::Job::set_power(self, on)
    }
    fn where_is_machine(&self, x: u32, y: u32) -> Result<Option<PhysicalCoord>> {
        v2::Job::where_is_machine(self, x, y)
    }
    fn destroy(self, reason: Option<&str>) -> Result<()> {
        v2::Job::destroy(self, reason)
    }
}

impl<T: JobHandle> JobHandle for Box<T> {
    fn id(&self) -> u64 {
        (**self).id()
    }
    fn state(&self) -> Result<JobState> {
        (**self).state()
    }
    fn reason(&self) -> Result<Option<String>> {
        (**self).reason()
    }
    fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()> {
        (**self).wait_until_ready(timeout)
    }
    fn hostname(&self) -> Result<Option<String>> {
        (**self).hostname()
    }
    fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>> {
        (**self).connections()
    }
    fn machine_name(&self) -> Result<Option<String>> {
        (**self).machine_name()
    }
    fn boards(&self) -> Result<Option<Vec<BoardCoord>>> {
        (**self).boards()
    }
    fn power(&self) -> Result<Option<bool>> {
        (**self).power()
    }
    fn set_power(&self, on: bool) -> Result<()> {
        (**self).set_power(on)
    }
    fn where_is_machine(&self, x: u32, y: u32) -> Result<Option<PhysicalCoord>> {
        (**self).where_is_machine(x, y)
    }
    fn destroy(self, reason: Option<&str>) -> Result<()> {
        (*self).destroy(reason)
    }
}

/// A job over either protocol.
#[derive(Debug)]
pub enum AnyJob {
    /// Over the legacy protocol (boxed: it is much the larger).
    Legacy(Box<crate::Job>),
    /// Over the v2 REST API.
    V2(v2::Job),
}

macro_rules! either {
    ($self:expr, $job:ident => $e:expr) => {
        match $self {
            AnyJob::Legacy($job) => $e,
            AnyJob::V2($job) => $e,
        }
    };
}

impl JobHandle for AnyJob {
    fn id(&self) -> u64 {
        either!(self, j => JobHandle::id(j))
    }
    fn state(&self) -> Result<JobState> {
        either!(self, j => JobHandle::state(j))
    }
    fn reason(&self) -> Result<Option<String>> {
        either!(self, j => JobHandle::reason(j))
    }
    fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()> {
        either!(self, j => JobHandle::wait_until_ready(j, timeout))
    }
    fn hostname(&self) -> Result<Option<String>> {
        either!(self, j => JobHandle::hostname(j))
    }
    fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>> {
        either!(self, j => JobHandle::connections(j))
    }
    fn machine_name(&self) -> Result<Option<String>> {
        either!(self, j => JobHandle::machine_name(j))
    }
    fn boards(&self) -> Result<Option<Vec<BoardCoord>>> {
        either!(self, j => JobHandle::boards(j))
    }
    fn power(&self) -> Result<Option<bool>> {
        either!(self, j => JobHandle::power(j))
    }
    fn set_power(&self, on: bool) -> Result<()> {
        either!(self, j => JobHandle::set_power(j, on))
    }
    fn where_is_machine(&self, x: u32, y: u32) -> Result<Option<PhysicalCoord>> {
        either!(self, j => JobHandle::where_is_machine(j, x, y))
    }
    fn destroy(self, reason: Option<&str>) -> Result<()> {
        either!(self, j => JobHandle::destroy(j, reason))
    }
}

/// The v2 request for a builder's settings: the legacy-only options are
/// refused by name, the rest translated.
pub(crate) fn v2_request(builder: &JobBuilder, config: &Config) -> Result<CreateJob> {
    let min_ratio = builder.min_ratio.unwrap_or(config.min_ratio);
    if min_ratio != DEFAULT_MIN_RATIO {
        return Err(legacy_only("min_ratio"));
    }
    if builder.require_torus.unwrap_or(config.require_torus) {
        return Err(legacy_only("require_torus"));
    }
    if builder
        .max_dead_links
        .unwrap_or(config.max_dead_links)
        .is_some()
    {
        return Err(legacy_only("max_dead_links"));
    }
    let mut request = match builder.allocation {
        Allocation::OneBoard => CreateJob::one_board(),
        Allocation::Boards(n) => CreateJob::boards(n),
        Allocation::Triads { width, height } => CreateJob::dimensions(width, height),
        Allocation::Board { x, y, z } => CreateJob::board(BoardSelector::Triad { x, y, z }),
    };
    let machine = builder.machine.clone().unwrap_or(config.machine.clone());
    let tags = builder.tags.clone().unwrap_or(config.tags.clone());
    match (machine, tags) {
        (Some(_), Some(_)) => {
            return Err(Error::InvalidRequest(
                "only one of tags and machine may be specified".into(),
            ))
        }
        (Some(m), None) => request = request.machine(m),
        (None, Some(t)) => request = request.tags(t),
        (None, None) => {}
    }
    if let Some(n) = builder.max_dead_boards.unwrap_or(config.max_dead_boards) {
        request = request.max_dead_boards(n);
    }
    let keepalive = builder
        .keepalive
        .unwrap_or_else(|| config.keepalive.map(crate::WireNumber::Float));
    request.keepalive = v2_keepalive(keepalive.map(|k| k.as_f64()))?;
    let avoided = builder.avoid_boards.iter();
    Ok(request.avoid_boards(avoided.map(|&[x, y, z]| BoardSelector::Triad { x, y, z })))
}

/// A legacy keepalive in seconds as a v2 interval: v2 always needs one,
/// so "never" becomes allocserv's longest, 300 s.
fn v2_keepalive(seconds: Option<f64>) -> Result<Duration> {
    let (_, max) = v2::create::KEEPALIVE_RANGE;
    match seconds {
        None => Ok(max),
        Some(s) => Duration::try_from_secs_f64(s).map_err(|_| {
            Error::InvalidRequest(format!("keepalive {s} is not a number of seconds"))
        }),
    }
}

fn legacy_only(option: &str) -> Error {
    Error::InvalidRequest(format!(
        "`{option}` is an option of the legacy protocol only; the v2 server cannot honour it (leave it out, or use a legacy server's host name)"
    ))
}

/// A v2 client for a builder's settings and a URL.
pub(crate) fn v2_client(builder: &JobBuilder, config: &Config, url: &str) -> Result<v2::Client> {
    let credentials = match &builder.credentials {
        Some(c) => c.clone(),
        None => Credentials::find(config, url)?,
    };
    let timeout = builder
        .timeout
        .unwrap_or_else(|| config.timeout_duration())
        .unwrap_or(Duration::from_secs(3600));
    v2::Client::builder(url)
        .credentials(credentials)
        .ca_cert_opt(builder.ca_cert.clone().or(config.ca_cert.clone()))
        .timeout(timeout)
        .build()
}

/// Creates (or resumes) a builder's job on a v2 server.
pub(crate) fn create_v2(builder: &JobBuilder, config: &Config, url: &str) -> Result<v2::Job> {
    let client = v2_client(builder, config, url)?;
    match builder.resume_job_id {
        Some(id) => {
            let keepalive = builder
                .keepalive
                .unwrap_or_else(|| config.keepalive.map(crate::WireNumber::Float));
            client.resume_job(id, Some(v2_keepalive(keepalive.map(|k| k.as_f64()))?))
        }
        None => client.create_job(&v2_request(builder, config)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_only_options_are_refused_by_name_on_v2() {
        let config = Config::default();
        for (builder, name) in [
            (JobBuilder::new().min_ratio(0.5), "min_ratio"),
            (JobBuilder::new().require_torus(true), "require_torus"),
            (JobBuilder::new().max_dead_links(Some(2)), "max_dead_links"),
        ] {
            let e = v2_request(&builder, &config).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn legacy_forms_become_their_v2_equivalents() {
        let config = Config::default();
        let r = v2_request(&JobBuilder::new().triads(2, 1).machine("m"), &config).unwrap();
        assert_eq!(
            r.to_json()["dimensions"],
            serde_json::json!({"width": 2, "height": 1})
        );
        assert_eq!(r.to_json()["machine-name"], "m");
        assert_eq!(r.to_json()["keepalive-interval"], "PT60S");
        let r = v2_request(&JobBuilder::new().board_at(1, 0, 2).no_keepalive(), &config).unwrap();
        assert_eq!(
            r.to_json()["board"],
            serde_json::json!({"x": 1, "y": 0, "z": 2})
        );
        assert_eq!(r.to_json()["keepalive-interval"], "PT300S");
    }

    #[test]
    fn boards_to_avoid_become_v2_triads() {
        let builder = JobBuilder::new()
            .boards(2)
            .avoid_board(1, 0, 2)
            .avoid_board(0, 0, 0);
        let r = v2_request(&builder, &Config::default()).unwrap();
        assert_eq!(
            r.to_json()["avoid-boards"],
            serde_json::json!([{"x": 1, "y": 0, "z": 2}, {"x": 0, "y": 0, "z": 0}])
        );
    }
}
