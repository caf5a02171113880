//! [`Job`]: one v2 job — its state (long-polled), allocation, power,
//! where-is and issue reports, kept alive by a background thread until it
//! is destroyed, closed or dropped.

use super::create::BoardSelector;
use super::keepalive::KeepaliveThread;
use super::session::{Body, Session};
use super::shapes::{self, JobStatus, SubMachine};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use spalloc_protocol::{BoardCoord, JobState, PhysicalCoord, WhereIsRecord};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::warn;

/// A board named in an issue report: by a chip of the job, or in any of
/// the ways a create request names a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedBoard {
    /// The board holding this job-relative chip.
    Chip {
        /// x.
        x: u32,
        /// y.
        y: u32,
    },
    /// A board by triad, physical location or IP address.
    Board(BoardSelector),
}

impl ReportedBoard {
    fn to_json(&self, machine: &str) -> Value {
        let mut value = match self {
            ReportedBoard::Chip { x, y } => json!({"chip": {"x": x, "y": y}}),
            ReportedBoard::Board(board) => board.to_json(),
        };
        if let Value::Object(map) = &mut value {
            map.insert("machine".into(), Value::from(machine));
        }
        value
    }
}

/// A v2 job.
///
/// A job from [`Client::create_job`](super::Client::create_job) or
/// [`Client::resume_job`](super::Client::resume_job) is kept alive by a
/// thread and destroyed when dropped (unless [closed](Job::close)); one
/// from [`Client::job`](super::Client::job) is only a handle.
#[derive(Debug)]
pub struct Job {
    session: Arc<Session>,
    id: u64,
    url: String,
    keepalive: Option<Duration>,
    keepalive_thread: Option<KeepaliveThread>,
    owned: bool,
    machine: Mutex<Option<SubMachine>>,
}

impl Job {
    pub(crate) fn start(
        session: Arc<Session>,
        id: u64,
        url: String,
        keepalive: Option<Duration>,
    ) -> Job {
        let keepalive_thread =
            keepalive.map(|interval| KeepaliveThread::start(session.clone(), &url, interval));
        Job {
            session,
            id,
            url,
            keepalive,
            keepalive_thread,
            owned: true,
            machine: Mutex::new(None),
        }
    }

    pub(crate) fn detached(session: Arc<Session>, id: u64, url: String) -> Job {
        Job {
            session,
            id,
            url,
            keepalive: None,
            keepalive_thread: None,
            owned: false,
            machine: Mutex::new(None),
        }
    }

    /// The job's ID.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The job's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The session the job's requests go through (for the job proxy).
    pub(crate) fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The keepalive interval this handle keeps the job alive at, if any.
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// The job's state record; with `wait`, after its next change (the
    /// server holds the request up to 30 s). A job the server no longer
    /// knows is [`Error::JobDestroyed`].
    pub fn status(&self, wait: bool) -> Result<JobStatus> {
        let answer = if wait {
            self.session
                .get_long_poll(&format!("{}?wait=true", self.url))
        } else {
            self.session.get(&self.url)
        };
        match answer {
            Ok(a) => a.json("the job's state"),
            Err(Error::Http {
                status: 404 | 410,
                message,
                ..
            }) => Err(Error::JobDestroyed {
                job_id: self.id,
                reason: Some(message),
            }),
            Err(e) => Err(e),
        }
    }

    /// The job's state.
    pub fn state(&self) -> Result<JobState> {
        Ok(self.status(false)?.job_state())
    }

    /// Why the job was destroyed, once it has been.
    pub fn reason(&self) -> Result<Option<String>> {
        Ok(self.status(false)?.reason)
    }

    /// Long-polls until the state differs from `old` or `timeout` passes;
    /// returns the state then.
    pub fn wait_for_state_change(
        &self,
        old: JobState,
        timeout: Option<Duration>,
    ) -> Result<JobState> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let state = self.state()?;
            if state != old {
                return Ok(state);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(state);
            }
            self.long_poll(deadline)?;
        }
    }

    /// One long-poll, cut short at `deadline` by a read timeout (a cut-short
    /// poll is not an error: the caller re-reads the state).
    fn long_poll(&self, deadline: Option<Instant>) -> Result<()> {
        match self.status(true) {
            Ok(_) => Ok(()),
            Err(e @ Error::Transport { .. }) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    Ok(())
                } else {
                    // The server may be restarting: wait a little, then retry.
                    warn!("lost contact with the spalloc server while waiting ({e}); retrying");
                    std::thread::sleep(Duration::from_secs(1));
                    Ok(())
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until the job is ready (powered on and allocated); a destroyed
    /// job is [`Error::JobDestroyed`] with the server's reason, and running
    /// out of time [`Error::StateChangeTimeout`].
    pub fn wait_until_ready(&self, timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let status = match self.status(false) {
                Ok(s) => s,
                Err(Error::Transport { .. }) if !deadline.is_some_and(|d| Instant::now() >= d) => {
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                Err(e) => return Err(e),
            };
            match status.job_state() {
                JobState::Ready => return Ok(()),
                JobState::Destroyed | JobState::Unknown => {
                    return Err(Error::JobDestroyed {
                        job_id: self.id,
                        reason: status.reason,
                    })
                }
                JobState::Queued | JobState::Power => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::StateChangeTimeout);
            }
            self.long_poll(deadline)?;
        }
    }

    /// The allocation: boards, connections, machine; `None` until allocated.
    pub fn sub_machine(&self) -> Result<Option<SubMachine>> {
        let mut cached = self.machine.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cached.as_ref() {
            return Ok(Some(m.clone()));
        }
        let answer = self.session.get(&format!("{}/machine", self.url))?;
        if answer.status == 204 || answer.body.trim().is_empty() {
            return Ok(None);
        }
        let machine: SubMachine = answer.json("the job's machine")?;
        *cached = Some(machine.clone());
        Ok(Some(machine))
    }

    /// The address of the board with chip (0, 0), once allocated.
    pub fn hostname(&self) -> Result<Option<String>> {
        Ok(self.sub_machine()?.and_then(|m| m.hostname()))
    }

    /// Job-relative Ethernet chip to board IP, once allocated.
    pub fn connections(&self) -> Result<Option<BTreeMap<(u32, u32), String>>> {
        Ok(self.sub_machine()?.map(|m| {
            m.connections
                .iter()
                .map(|(c, ip)| ((c[0], c[1]), ip.clone()))
                .collect()
        }))
    }

    /// The machine the job is on, once allocated.
    pub fn machine_name(&self) -> Result<Option<String>> {
        Ok(self.sub_machine()?.map(|m| m.machine_name))
    }

    /// The boards (triad coordinates), once allocated.
    pub fn boards(&self) -> Result<Option<Vec<BoardCoord>>> {
        Ok(self.sub_machine()?.map(|m| m.boards))
    }

    /// Whether the boards are on; `None` until allocated.
    pub fn power(&self) -> Result<Option<bool>> {
        let answer = self.session.get(&format!("{}/machine/power", self.url))?;
        if answer.status == 204 || answer.body.trim().is_empty() {
            return Ok(None);
        }
        let v: Value = answer.json("the job's power")?;
        Ok(v.get("power").and_then(Value::as_str).map(|p| p == "ON"))
    }

    /// Switches the boards on (which also resets them) or off.
    pub fn set_power(&self, on: bool) -> Result<()> {
        self.session.request(
            "POST",
            &format!("{}/machine/power", self.url),
            &Body::Json(json!({"power": if on { "ON" } else { "OFF" }})),
            Duration::from_secs(30),
        )?;
        Ok(())
    }

    /// Where a job-relative chip is; `None` if it is not the job's.
    pub fn where_is_chip(&self, x: u32, y: u32) -> Result<Option<WhereIsRecord>> {
        let answer = self
            .session
            .get(&format!("{}/chip?x={x}&y={y}", self.url))?;
        if answer.status == 204 || answer.body.trim().is_empty() {
            return Ok(None);
        }
        shapes::where_is_record(&answer.body).map(Some)
    }

    /// The physical location of the board holding a job-relative chip.
    pub fn where_is_machine(&self, x: u32, y: u32) -> Result<Option<PhysicalCoord>> {
        Ok(self.where_is_chip(x, y)?.map(|r| r.physical))
    }

    /// Tells the operators that boards of the job are broken; answers the
    /// server's action (e.g. `report noted`).
    pub fn report_issue(&self, issue: &str, boards: &[ReportedBoard]) -> Result<String> {
        let machine = if boards.is_empty() {
            String::new()
        } else {
            self.machine_name()?.ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "job {} has no boards yet, so none can be reported",
                    self.id
                ))
            })?
        };
        let body = json!({
            "issue": issue,
            "boards": boards.iter().map(|b| b.to_json(&machine)).collect::<Vec<_>>(),
        });
        let answer = self.session.request(
            "POST",
            &format!("{}/report-issue", self.url),
            &Body::Json(body),
            Duration::from_secs(30),
        )?;
        let v: Value = answer.json("the issue report's answer")?;
        Ok(v.get("action")
            .and_then(Value::as_str)
            .unwrap_or("report noted")
            .to_owned())
    }

    /// Keeps the job alive once, now.
    pub fn keepalive_now(&self) -> Result<()> {
        super::keepalive::send(&self.session, &self.url)
    }

    fn destroy_inner(&mut self, reason: Option<&str>) -> Result<()> {
        self.owned = false;
        if let Some(t) = self.keepalive_thread.take() {
            t.stop();
        }
        let mut url = self.url.clone();
        if let Some(r) = reason {
            url.push_str("?reason=");
            url.push_str(&super::client::encode(r));
        }
        match self
            .session
            .request("DELETE", &url, &Body::Empty, Duration::from_secs(30))
        {
            Ok(_) => Ok(()),
            Err(Error::Http {
                status: 404 | 410, ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Destroys the job, freeing its boards (a job already gone is fine).
    pub fn destroy(mut self, reason: Option<&str>) -> Result<()> {
        self.destroy_inner(reason)
    }

    /// Stops keeping the job alive *without* destroying it.
    pub fn close(mut self) {
        self.owned = false;
        if let Some(t) = self.keepalive_thread.take() {
            t.stop();
        }
    }
}

impl Drop for Job {
    /// Destroys an owned job unless it was destroyed or closed already.
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = self.destroy_inner(None) {
                warn!("Could not destroy spalloc job {}: {e}", self.id);
            }
        } else if let Some(t) = self.keepalive_thread.take() {
            t.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_board_is_named_as_a_create_request_names_it_plus_its_machine() {
        let chip = ReportedBoard::Chip { x: 8, y: 4 }.to_json("m");
        assert_eq!(chip, json!({"chip": {"x": 8, "y": 4}, "machine": "m"}));
        let triad = ReportedBoard::Board(BoardSelector::Triad { x: 1, y: 0, z: 2 }).to_json("m");
        assert_eq!(triad, json!({"x": 1, "y": 0, "z": 2, "machine": "m"}));
        let ip = ReportedBoard::Board(BoardSelector::Address("10.0.0.1".into())).to_json("m");
        assert_eq!(ip, json!({"address": "10.0.0.1", "machine": "m"}));
    }
}
