//! The background thread that keeps a job alive.
//!
//! The server destroys a job that hears nothing about it for `keepalive`
//! seconds. While a [`Job`](crate::Job) exists, a thread sends `job_keepalive`
//! every `keepalive / 2` seconds on its own connection (the reference uses a
//! helper process; a thread does the same without the process handshake).
//!
//! Unlike the reference helper, which died on the first dropped connection
//! and never started when the timeout was `None`, this thread survives:
//! after a failure it waits `reconnect_delay` and tries again on a new
//! connection, until the job is closed or destroyed.

use crate::protocol_client::ProtocolClient;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tracing::{debug, warn};

/// The shortest period the thread will use, so that a zero keepalive does
/// not make it spin.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// A running keepalive thread; stopped by [`KeepaliveThread::stop`] or on drop.
#[derive(Debug)]
pub(crate) struct KeepaliveThread {
    stop: Option<mpsc::Sender<()>>,
    client: Arc<ProtocolClient>,
    handle: Option<JoinHandle<()>>,
}

impl KeepaliveThread {
    /// Starts sending keepalives for `job_id` every `keepalive / 2`.
    ///
    /// No call waits longer than one period (or `timeout`, if shorter): a
    /// late keepalive reply is of no use, and this bounds how long stopping
    /// the thread can take.
    pub(crate) fn spawn(
        hostname: &str,
        port: u16,
        job_id: u64,
        keepalive: Duration,
        timeout: Option<Duration>,
        reconnect_delay: Duration,
    ) -> std::io::Result<KeepaliveThread> {
        let period = (keepalive / 2).max(MIN_PERIOD);
        let call_timeout = Some(timeout.map_or(period, |t| t.min(period)).max(MIN_PERIOD));
        let client = Arc::new(ProtocolClient::new(hostname, port).with_timeout(call_timeout));
        let (tx, rx) = mpsc::channel();
        let thread_client = client.clone();
        let handle = thread::Builder::new()
            .name(format!("spalloc-keepalive-{job_id}"))
            .spawn(move || run(&rx, &thread_client, job_id, period, reconnect_delay))?;
        Ok(KeepaliveThread {
            stop: Some(tx),
            client,
            handle: Some(handle),
        })
    }

    /// Stops the thread and waits for it to finish.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
            // Interrupt a keepalive blocked on the network.
            self.client.close();
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for KeepaliveThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Waits `delay` unless told to stop; true if it is time to stop.
fn stop_requested(rx: &mpsc::Receiver<()>, delay: Duration) -> bool {
    !matches!(rx.recv_timeout(delay), Err(RecvTimeoutError::Timeout))
}

fn run(
    rx: &mpsc::Receiver<()>,
    client: &ProtocolClient,
    job_id: u64,
    period: Duration,
    reconnect_delay: Duration,
) {
    while !stop_requested(rx, period) {
        loop {
            match client.job_keepalive(job_id) {
                Ok(()) => {
                    debug!(job_id, "keepalive sent");
                    break;
                }
                Err(e) if e.is_communication_error() => {
                    warn!("Spalloc server is unreachable ({e}), will keep trying...");
                    // The failed call dropped the connection; the next call
                    // opens a new one (unless we were closed, i.e. stopping).
                    if stop_requested(rx, reconnect_delay.max(MIN_PERIOD)) {
                        return;
                    }
                }
                Err(e) => {
                    // A server exception: nothing a retry would fix now.
                    warn!("keepalive for job {job_id} failed: {e}");
                    break;
                }
            }
        }
    }
}
