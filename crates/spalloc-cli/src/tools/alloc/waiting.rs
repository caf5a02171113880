//! Waiting for `spalloc`'s job to become ready, and for Enter afterwards.
//!
//! The wait survives the server going away: the connection is retried every
//! `reconnect_delay`, the status line says so (with the clock still running),
//! and after `server_timeout` without the server the wait gives up, since
//! the job may have been lost with it.

use super::messages::{clock, progress_suffixes, state_message, QueueNote};
use super::quota_notice::QuotaNotices;
use super::reporter::Reporter;
use super::{EXIT_DESTROYED, EXIT_INTERRUPTED, EXIT_SERVER_GONE, EXIT_UNKNOWN};
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::queue_state::{estimate_queue_note, job_state_reply};
use crate::quota_warning::QuotaWarning;
use crate::terminal::Style;
use spalloc::{JobState, JobStateRecord, ProtocolClient};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitEnd {
    /// The boards are powered on.
    Ready,
    /// Give up with this status and red message.
    Exit {
        /// The exit status.
        code: i32,
        /// What to print.
        message: String,
    },
}

/// How often the live line is redrawn on a terminal.
pub(super) const LIVE_REFRESH: Duration = Duration::from_secs(1);
/// How often the state is re-read without a notification (a safety net for
/// lost notifications; the reference relies on notifications alone).
const STATE_REPOLL: Duration = Duration::from_secs(10);

/// What `spalloc` waits with: the server, the job and how patient to be.
#[derive(Debug)]
pub struct WaitSettings {
    /// The job being waited for.
    pub job_id: u64,
    /// Pause between reconnection attempts.
    pub reconnect_delay: Duration,
    /// Give up after this long without the server; `None`: never.
    pub server_timeout: Option<Duration>,
}

/// Where the job stands, estimated from the listings, for servers that do
/// not say; `None` if the listings cannot be read.
fn estimated_queue_note(client: &ProtocolClient, job_id: u64) -> Option<QueueNote> {
    let jobs = client.list_jobs().ok()?;
    let machines = client.list_machines().ok()?;
    Some(estimate_queue_note(job_id, &jobs, &machines))
}

/// A short account of a lost connection, for the status line.
pub fn short_reason(error: &spalloc::Error) -> String {
    match error {
        spalloc::Error::Connect { source, .. } => source.to_string(),
        spalloc::Error::ConnectionClosed => "connection closed".to_owned(),
        spalloc::Error::ProtocolTimeout(_) => "no answer".to_owned(),
        other => other.to_string(),
    }
}

/// The state of one wait, between the loop's steps; shared by the legacy
/// loop below and the v2 one in [`super::v2_wait`].
pub(super) struct Wait<'a> {
    /// The server as the status line names it (`host:port`, or a URL).
    server: String,
    /// Where a queued job stands, for servers that do not say.
    estimate: Box<dyn Fn() -> Option<QueueNote> + 'a>,
    settings: &'a WaitSettings,
    section: &'a InterruptibleSection,
    reporter: &'a Reporter,
    live: bool,
    started: Instant,
    /// The last state announced.
    shown: Option<JobState>,
    /// The live line's text and colour.
    current: Option<(Style, String)>,
    queue: QueueNote,
    /// Since when the server has been out of reach, and why.
    lost: Option<(Instant, String)>,
    /// The quota warnings printed.
    quota: &'a mut QuotaNotices,
}

impl<'a> Wait<'a> {
    /// A wait for `settings.job_id` on `server`, which has just begun.
    pub(super) fn new(
        server: String,
        estimate: Box<dyn Fn() -> Option<QueueNote> + 'a>,
        settings: &'a WaitSettings,
        section: &'a InterruptibleSection,
        reporter: &'a Reporter,
        quota: &'a mut QuotaNotices,
    ) -> Wait<'a> {
        Wait {
            server,
            estimate,
            settings,
            section,
            reporter,
            live: reporter.terminal.is_enabled() && !reporter.quiet,
            started: Instant::now(),
            shown: None,
            current: None,
            queue: QueueNote::default(),
            lost: None,
            quota,
        }
    }

    /// Takes in the quota warning of a fresh state (printed if news).
    pub(super) fn quota_warning(&mut self, warning: Option<&QuotaWarning>) {
        self.quota
            .offer(self.settings.job_id, warning, self.reporter);
    }

    /// Redraws the live line (on a terminal only).
    pub(super) fn redraw(&self) {
        if !self.live {
            return;
        }
        let elapsed = self.started.elapsed();
        if let Some((since, reason)) = &self.lost {
            let text = format!(
                "Job {}: Reconnecting to {}...",
                self.settings.job_id, self.server
            );
            let (elapsed, gone) = (clock(elapsed), clock(since.elapsed()));
            let suffixes = [
                format!(" ({elapsed} elapsed; no server for {gone}: {reason})"),
                format!(" ({elapsed}; no server for {gone})"),
                format!(" ({elapsed})"),
            ];
            self.reporter.live(&Style::YELLOW, &text, &suffixes);
        } else if let Some((style, text)) = &self.current {
            self.reporter
                .live(style, text, &progress_suffixes(elapsed, &self.queue));
        }
    }

    /// Records a failure to reach the server; `Some` when it is time to give up.
    pub(super) fn connection_lost(&mut self, error: &spalloc::Error) -> Option<WaitEnd> {
        let reason = short_reason(error);
        let since = match &self.lost {
            Some((since, _)) => *since,
            None => {
                if !self.live {
                    self.reporter.line(
                        &Style::YELLOW,
                        &format!(
                            "Job {}: Lost the server ({reason}); reconnecting every {} s...",
                            self.settings.job_id,
                            self.settings.reconnect_delay.as_secs_f64()
                        ),
                    );
                }
                Instant::now()
            }
        };
        self.lost = Some((since, reason.clone()));
        let gone_for = since.elapsed();
        self.reporter.debug(&format!(
            "no answer from {} for {} s ({reason}); reconnecting in {} s{}",
            self.server,
            gone_for.as_secs(),
            self.settings.reconnect_delay.as_secs_f64(),
            match self.settings.server_timeout {
                Some(limit) => format!(", giving up after {} s", limit.as_secs()),
                None => String::new(),
            }
        ));
        match self.settings.server_timeout {
            Some(limit) if gone_for >= limit => Some(WaitEnd::Exit {
                code: EXIT_SERVER_GONE,
                message: format!(
                    "Job {}: Gave up after {} without the server at {} ({reason}); the job may have been lost with it (--server-timeout)",
                    self.settings.job_id,
                    clock(gone_for),
                    self.server
                ),
            }),
            _ => None,
        }
    }

    /// Records that the server answers again.
    pub(super) fn connection_back(&mut self) {
        if self.lost.take().is_some() {
            self.reporter
                .debug(&format!("reconnected to {}", self.server));
            if !self.live {
                self.reporter.line(
                    &Style::YELLOW,
                    &format!("Job {}: Reconnected.", self.settings.job_id),
                );
            }
        }
    }

    /// Sleeps `duration` in slices, keeping the clock on the line running;
    /// true if Ctrl-C (or SIGTERM, SIGHUP) came meanwhile.
    pub(super) fn pause(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        let mut next_redraw = Instant::now();
        while Instant::now() < end {
            if self.section.take_interrupt() {
                return true;
            }
            if Instant::now() >= next_redraw {
                self.redraw();
                next_redraw += LIVE_REFRESH;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Takes in a fresh state; `Some` when the wait is over.
    pub(super) fn new_state(
        &mut self,
        record: &JobStateRecord,
        queue: QueueNote,
    ) -> Option<WaitEnd> {
        let job_id = self.settings.job_id;
        match record.state {
            JobState::Ready => Some(WaitEnd::Ready),
            JobState::Destroyed | JobState::Unknown => {
                let code = if record.state == JobState::Destroyed {
                    EXIT_DESTROYED
                } else {
                    EXIT_UNKNOWN
                };
                let message = state_message(job_id, record.state, record.reason.as_deref())
                    .map(|(_, m)| m)
                    .unwrap_or_default();
                Some(WaitEnd::Exit { code, message })
            }
            state => {
                self.queue = match state {
                    JobState::Queued if self.live && queue.position.is_none() => {
                        (self.estimate)().unwrap_or(queue)
                    }
                    JobState::Queued => queue,
                    _ => QueueNote::default(),
                };
                if self.shown != Some(state) {
                    self.shown = Some(state);
                    self.current = state_message(job_id, state, None);
                    if let (Some((style, text)), false) = (&self.current, self.live) {
                        self.reporter.line(style, text);
                    }
                }
                None
            }
        }
    }
}

/// Follows the job's state, printing each change, until it is ready,
/// destroyed, unknown, Ctrl-C is pressed or the server has been gone for
/// `server_timeout`. A lost connection is retried after `reconnect_delay`
/// (the reference crashes there).
pub fn wait_until_ready(
    client: &ProtocolClient,
    settings: &WaitSettings,
    section: &InterruptibleSection,
    reporter: &Reporter,
    quota: &mut QuotaNotices,
) -> WaitEnd {
    let mut wait = Wait::new(
        format!("{}:{}", client.hostname(), client.port()),
        Box::new(|| estimated_queue_note(client, settings.job_id)),
        settings,
        section,
        reporter,
        quota,
    );
    let job_id = settings.job_id;
    let mut need_subscribe = true;
    let mut need_state = true;
    let mut last_poll = Instant::now();
    loop {
        if need_subscribe || need_state {
            let result = (|| {
                if need_subscribe {
                    client.notify_job(Some(job_id))?;
                }
                job_state_reply(client, job_id)
            })();
            match result {
                Ok(reply) => {
                    wait.connection_back();
                    need_subscribe = false;
                    need_state = false;
                    last_poll = Instant::now();
                    wait.quota_warning(reply.quota_warning.as_ref());
                    if let Some(end) = wait.new_state(&reply.record, reply.queue) {
                        return end;
                    }
                }
                Err(e) if e.is_communication_error() => {
                    if let Some(end) = wait.connection_lost(&e) {
                        return end;
                    }
                    client.close();
                    if wait.pause(settings.reconnect_delay.max(Duration::from_millis(100))) {
                        return interrupted(job_id);
                    }
                    let _ = client.connect();
                    need_subscribe = true;
                    continue;
                }
                Err(e) => {
                    return WaitEnd::Exit {
                        code: EXIT_DESTROYED,
                        message: format!("Job {job_id}: {e}"),
                    }
                }
            }
        }
        wait.redraw();
        match wait_for_notification(client, section, Some(LIVE_REFRESH)) {
            Ok(WaitOutcome::Notified) => need_state = true,
            Ok(WaitOutcome::TimedOut) => need_state = last_poll.elapsed() >= STATE_REPOLL,
            Ok(WaitOutcome::Interrupted) => return interrupted(job_id),
            Err(_) => need_subscribe = true,
        }
    }
}

/// The end of a wait cut short by Ctrl-C (or SIGTERM, SIGHUP).
pub(super) fn interrupted(job_id: u64) -> WaitEnd {
    WaitEnd::Exit {
        code: EXIT_INTERRUPTED,
        message: format!("Job {job_id}: Keyboard interrupt."),
    }
}

/// Waits for a line on stdin. True for Enter; false for end of input or
/// Ctrl-C (after which the caller ends the prompt's line).
pub fn wait_for_enter(section: &InterruptibleSection) -> bool {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let got_line = matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0);
        let _ = sender.send(got_line);
    });
    loop {
        if section.take_interrupt() {
            return false;
        }
        match receiver.recv_timeout(Duration::from_millis(100)) {
            Ok(got_line) => return got_line,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return false,
        }
    }
}
