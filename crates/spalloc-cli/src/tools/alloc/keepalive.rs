//! The thread that keeps `spalloc`'s job alive on its own connection.
//!
//! Like the reference's helper process it sends `job_keepalive` every
//! `keepalive / 2` seconds; unlike it, it survives a dropped connection
//! (retrying after `reconnect_delay`) and ignores Ctrl-C.

use spalloc::ProtocolClient;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running keepalive thread; stopped by [`Keepalive::stop`] or on drop.
#[derive(Debug)]
pub struct Keepalive {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keepalive {
    /// Starts sending keepalives for `job_id` every `period`.
    pub fn start(
        hostname: String,
        port: u16,
        timeout: Option<Duration>,
        reconnect_delay: Duration,
        job_id: u64,
        period: Duration,
    ) -> Keepalive {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("spalloc-keepalive".to_owned())
            .spawn(move || {
                let client = ProtocolClient::new(hostname, port).with_timeout(timeout);
                let mut wait = Duration::ZERO;
                loop {
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    wait = match client.job_keepalive(job_id) {
                        Ok(()) => period,
                        Err(_) => {
                            client.close();
                            let _ = client.connect();
                            reconnect_delay.max(Duration::from_millis(100))
                        }
                    };
                }
            })
            .ok();
        Keepalive {
            stop: Some(stop),
            thread,
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        self.stop();
    }
}
