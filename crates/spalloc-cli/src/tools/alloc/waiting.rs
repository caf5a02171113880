//! Waiting for `spalloc`'s job to become ready, and for Enter afterwards.

use super::messages::{progress_suffix, state_message};
use super::reporter::Reporter;
use super::{EXIT_DESTROYED, EXIT_INTERRUPTED, EXIT_UNKNOWN};
use crate::interrupt::InterruptibleSection;
use crate::notification_wait::{wait_for_notification, WaitOutcome};
use crate::terminal::Style;
use spalloc::{JobState, ProtocolClient};
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
const LIVE_REFRESH: Duration = Duration::from_secs(1);
/// How often the state is re-read without a notification (a safety net for
/// lost notifications; the reference relies on notifications alone).
const STATE_REPOLL: Duration = Duration::from_secs(10);

/// Queued jobs created before `job_id` (the server queues in ID order).
fn queued_jobs_ahead(client: &ProtocolClient, job_id: u64) -> Option<usize> {
    let jobs = client.list_jobs().ok()?;
    Some(
        jobs.iter()
            .filter(|j| j.state == JobState::Queued && j.job_id < job_id)
            .count(),
    )
}

/// Follows the job's state, printing each change, until it is ready,
/// destroyed, unknown or Ctrl-C is pressed. A lost connection is retried
/// after `reconnect_delay` (the reference crashes there).
pub fn wait_until_ready(
    client: &ProtocolClient,
    job_id: u64,
    reconnect_delay: Duration,
    section: &InterruptibleSection,
    reporter: &Reporter,
) -> WaitEnd {
    let started = Instant::now();
    let live = reporter.terminal.is_enabled() && !reporter.quiet;
    let mut shown: Option<JobState> = None;
    let mut current: Option<(Style, String)> = None;
    let mut jobs_ahead: Option<usize> = None;
    let mut need_subscribe = true;
    let mut need_state = true;
    let mut last_poll = Instant::now();
    loop {
        if need_subscribe || need_state {
            let result = (|| -> Result<_, spalloc::Error> {
                if need_subscribe {
                    client.notify_job(Some(job_id))?;
                }
                client.get_job_state(job_id)
            })();
            match result {
                Ok(record) => {
                    need_subscribe = false;
                    need_state = false;
                    last_poll = Instant::now();
                    match record.state {
                        JobState::Ready => return WaitEnd::Ready,
                        JobState::Destroyed | JobState::Unknown => {
                            let code = if record.state == JobState::Destroyed {
                                EXIT_DESTROYED
                            } else {
                                EXIT_UNKNOWN
                            };
                            let message =
                                state_message(job_id, record.state, record.reason.as_deref())
                                    .map(|(_, m)| m)
                                    .unwrap_or_default();
                            return WaitEnd::Exit { code, message };
                        }
                        state => {
                            jobs_ahead = if live && state == JobState::Queued {
                                queued_jobs_ahead(client, job_id)
                            } else {
                                None
                            };
                            if shown != Some(state) {
                                shown = Some(state);
                                current = state_message(job_id, state, None);
                                if let (Some((style, text)), false) = (&current, live) {
                                    reporter.line(style, text);
                                }
                            }
                        }
                    }
                }
                Err(e) if e.is_communication_error() => {
                    client.close();
                    let _ = client.connect();
                    need_subscribe = true;
                    if wait_interruptibly(section, reconnect_delay.max(Duration::from_millis(100)))
                    {
                        return interrupted(job_id);
                    }
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
        if let (Some((style, text)), true) = (&current, live) {
            reporter.live(style, text, &progress_suffix(started.elapsed(), jobs_ahead));
        }
        match wait_for_notification(client, section, Some(LIVE_REFRESH)) {
            Ok(WaitOutcome::Notified) => need_state = true,
            Ok(WaitOutcome::TimedOut) => need_state = last_poll.elapsed() >= STATE_REPOLL,
            Ok(WaitOutcome::Interrupted) => return interrupted(job_id),
            Err(_) => need_subscribe = true,
        }
    }
}

fn interrupted(job_id: u64) -> WaitEnd {
    WaitEnd::Exit {
        code: EXIT_INTERRUPTED,
        message: format!("Job {job_id}: Keyboard interrupt."),
    }
}

/// Sleeps for `duration`; true if Ctrl-C was pressed meanwhile.
fn wait_interruptibly(section: &InterruptibleSection, duration: Duration) -> bool {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        if section.take_interrupt() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
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
