//! Waiting for `spalloc`'s job over the v2 protocol, with the same status
//! lines as over the legacy one ([`Wait`]).
//!
//! The state is followed by long-polls (`GET …/jobs/{id}?wait=true`, held
//! by the server until the job changes or 30 s pass) on a thread of their
//! own, so that the live line's clock keeps running and Ctrl-C is taken at
//! once rather than after the poll. A failed poll is retried every
//! `reconnect_delay`; the line says "Reconnecting…" meanwhile, and after
//! `server_timeout` without the server the wait gives up, as over legacy.
//! The one difference: no estimate of the queue on the live line (see
//! [`wait_until_ready`]).

use super::quota_notice::QuotaNotices;
use super::reporter::Reporter;
use super::waiting::{interrupted, Wait, WaitEnd, WaitSettings, LIVE_REFRESH};
use super::EXIT_DESTROYED;
use crate::interrupt::InterruptibleSection;
use crate::queue_state::QueueNote;
use spalloc::v2::{Client, Job, JobStatus};
use spalloc::{JobState, JobStateRecord};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the wait looks for Ctrl-C between the poller's news.
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

/// What the poller thread reports.
type Polled = Result<JobStatus, spalloc::Error>;

/// How long a long-poll is waited for before the state is read again: a
/// long-poll waits for the *next* change, so one begun just after a change
/// (missed by the read before it) would sit out its 30 s.
const REREAD: Duration = Duration::from_secs(5);

/// Starts the thread that reads the job's state, then long-polls it, and
/// sends every answer (or failure) until the job is over or nobody
/// listens any more. It owns a detached handle (no keepalive, no destroy
/// on drop), so that a poll still held by the server when the wait ends
/// does not hold the tool up. The long-poll runs on a thread of its own,
/// so that the state can be read again meanwhile (every [`REREAD`]).
fn start_poller(job: Job, reconnect_delay: Duration) -> mpsc::Receiver<Polled> {
    let (sender, receiver) = mpsc::channel();
    let job = Arc::new(job);
    std::thread::spawn(move || {
        let mut pending: Option<mpsc::Receiver<Polled>> = None;
        let mut read_now = true;
        loop {
            let answer = if read_now {
                job.status(false)
            } else {
                let long_poll = pending.get_or_insert_with(|| {
                    let (tx, rx) = mpsc::channel();
                    let job = job.clone();
                    std::thread::spawn(move || {
                        let _ = tx.send(job.status(true));
                    });
                    rx
                });
                match long_poll.recv_timeout(REREAD) {
                    Ok(answer) => {
                        pending = None;
                        answer
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        read_now = true;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        pending = None;
                        read_now = true;
                        continue;
                    }
                }
            };
            let failed = answer.is_err();
            let over = match &answer {
                Ok(status) => matches!(
                    status.job_state(),
                    JobState::Ready | JobState::Destroyed | JobState::Unknown
                ),
                Err(e) => !e.is_communication_error() && !is_unavailable(e),
            };
            if sender.send(answer).is_err() || over {
                return;
            }
            if failed {
                std::thread::sleep(reconnect_delay.max(Duration::from_millis(100)));
            }
            // After a failure, read the state at once (it may have changed
            // while the server was away), then go back to long-polling.
            read_now = failed;
        }
    });
    receiver
}

/// A proxy's or a restarting server's "try later" (502, 503, 504).
fn is_unavailable(error: &spalloc::Error) -> bool {
    matches!(
        error,
        spalloc::Error::Http {
            status: 502..=504,
            ..
        }
    )
}

/// The legacy record for a v2 state, so that both protocols print alike.
fn record_of(status: &JobStatus) -> JobStateRecord {
    let mut record = JobStateRecord::unknown();
    record.state = status.job_state();
    record.reason = status.reason.clone();
    record
}

/// Follows the job's state until it is ready, destroyed, unknown, Ctrl-C
/// is pressed or the server has been gone for `server_timeout`.
pub fn wait_until_ready(
    client: &Client,
    job: Job,
    settings: &WaitSettings,
    section: &InterruptibleSection,
    reporter: &Reporter,
    quota: &mut QuotaNotices,
) -> WaitEnd {
    let job_id = settings.job_id;
    let mut wait = Wait::new(
        client.session().service_url().to_owned(),
        // No estimate of the queue: the v2 API shows a user only their
        // own jobs, so one made from its listings would call a machine full
        // of others' jobs idle (and the API says nothing of queues).
        Box::new(|| None),
        settings,
        section,
        reporter,
        quota,
    );
    let polled = start_poller(job, settings.reconnect_delay);
    let mut next_redraw = Instant::now();
    loop {
        if section.take_interrupt() {
            return interrupted(job_id);
        }
        if Instant::now() >= next_redraw {
            wait.redraw();
            next_redraw = Instant::now() + LIVE_REFRESH;
        }
        match polled.recv_timeout(INTERRUPT_CHECK) {
            Ok(Ok(status)) => {
                wait.connection_back();
                wait.quota_warning(status.quota_warning.clone().map(Into::into).as_ref());
                if let Some(end) = wait.new_state(&record_of(&status), QueueNote::default()) {
                    return end;
                }
                next_redraw = Instant::now();
            }
            Ok(Err(spalloc::Error::JobDestroyed { .. })) => {
                // The server does not know the job (any more).
                if let Some(end) = wait.new_state(&JobStateRecord::unknown(), QueueNote::default())
                {
                    return end;
                }
            }
            Ok(Err(e)) if e.is_communication_error() || is_unavailable(&e) => {
                if let Some(end) = wait.connection_lost(&e) {
                    return end;
                }
                next_redraw = Instant::now();
            }
            Ok(Err(e)) => {
                return WaitEnd::Exit {
                    code: EXIT_DESTROYED,
                    message: format!("Job {job_id}: {e}"),
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return WaitEnd::Exit {
                    code: EXIT_DESTROYED,
                    message: format!("Job {job_id}: the state poller stopped"),
                }
            }
        }
    }
}
