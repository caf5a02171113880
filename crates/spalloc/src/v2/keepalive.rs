//! The thread that keeps a v2 job alive: `PUT …/keepalive` every half
//! interval, through the shared session (so a server that forgot the
//! session is logged into again), retrying every few seconds while the
//! server is unreachable (so a restart of the server does not lose the
//! job), and stopping only when told or when the server says the job is
//! gone.

use super::session::{Body, Session};
use crate::error::{Error, Result};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{info, warn};

/// The longest pause between tries while the server is unreachable.
pub const RETRY_DELAY: Duration = Duration::from_secs(2);

/// A running keepalive thread; [`KeepaliveThread::stop`] ends it.
#[derive(Debug)]
pub struct KeepaliveThread {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

/// Sends one keepalive.
pub fn send(session: &Session, job_url: &str) -> Result<()> {
    session
        .request(
            "PUT",
            &format!("{job_url}/keepalive"),
            &Body::Text("alive".into()),
            Duration::from_secs(10),
        )
        .map(|_| ())
}

impl KeepaliveThread {
    /// Starts keeping `job_url` alive at `interval` (sending every half of it).
    pub fn start(session: Arc<Session>, job_url: &str, interval: Duration) -> KeepaliveThread {
        let (stop, stopped) = channel::<()>();
        let job_url = job_url.to_owned();
        let period = (interval / 2).max(Duration::from_millis(100));
        let handle = std::thread::spawn(move || {
            let mut wait = Duration::ZERO;
            let mut failing = false;
            loop {
                match stopped.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                match send(&session, &job_url) {
                    Ok(()) => {
                        if failing {
                            info!("keeping {job_url} alive again");
                        }
                        failing = false;
                        wait = period;
                    }
                    Err(Error::Http {
                        status: 404 | 410, ..
                    }) => {
                        warn!("{job_url} is gone; no longer keeping it alive");
                        return;
                    }
                    Err(e) => {
                        warn!("could not keep {job_url} alive ({e}); will keep trying");
                        failing = true;
                        wait = period.min(RETRY_DELAY);
                    }
                }
            }
        });
        KeepaliveThread { stop, handle }
    }

    /// Stops the thread and waits for it (at most one request's time).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}
