//! Waiting for a server notification while still noticing Ctrl-C.

use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use spalloc::ProtocolClient;
use std::time::Duration;

/// How long each wait slice lasts before Ctrl-C is checked again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A notification arrived.
    Notified,
    /// Ctrl-C was pressed.
    Interrupted,
    /// `limit` passed with neither.
    TimedOut,
}

/// Waits (for at most `limit`, or forever) for a notification, checking for
/// Ctrl-C between short slices. The server sees nothing of the slicing.
pub fn wait_for_notification(
    client: &ProtocolClient,
    section: &InterruptibleSection,
    limit: Option<Duration>,
) -> Result<WaitOutcome, Failure> {
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    loop {
        if section.take_interrupt() {
            return Ok(WaitOutcome::Interrupted);
        }
        let slice = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(WaitOutcome::TimedOut);
                }
                left.min(POLL_INTERVAL)
            }
            None => POLL_INTERVAL,
        };
        match client.wait_for_notification(Some(slice)) {
            Ok(_) => return Ok(WaitOutcome::Notified),
            Err(spalloc::Error::ProtocolTimeout(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
