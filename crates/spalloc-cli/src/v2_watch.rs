//! `--watch` over the v2 protocol, for `spalloc-job`, `spalloc-ps` and
//! `spalloc-machine`: where the legacy tools wait for a notification, these
//! wait for a long-poll (`?wait=true`, which the server holds until what is
//! watched changes, or 30 s), or, where the API has none, for a fixed
//! period. Each wait runs on a thread of its own so that Ctrl-C ends the
//! watch at once, and what is watched is re-read at least every
//! [`POLL_PERIOD`] (a long-poll begun just after a change waits for the next
//! one); a snapshot is shown only when it differs from the last one.

use crate::failure::Failure;
use crate::interrupt::InterruptibleSection;
use crate::output::{print_line, write_stdout};
use crate::terminal::Terminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often Ctrl-C is looked for while a wait is under way.
const INTERRUPT_CHECK: Duration = Duration::from_millis(100);

/// The least time between two reads, so that a server that answers a
/// long-poll at once (or a failing one) is not asked in a tight loop.
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// How often to re-read what has no long-poll in the API, and the longest
/// a long-poll is waited for before reading again.
pub const POLL_PERIOD: Duration = Duration::from_secs(5);

/// A wait for the next change: a long-poll, or a sleep.
pub type ChangeWait = Arc<dyn Fn() -> spalloc::Result<()> + Send + Sync>;

/// A wait that just sleeps for [`POLL_PERIOD`].
pub fn poll_period() -> ChangeWait {
    Arc::new(|| {
        std::thread::sleep(POLL_PERIOD);
        Ok(())
    })
}

/// What a watch shows and how: JSON lines or a screen redrawn in place.
pub struct Watch<'a> {
    /// `--json`: one line per change, no screen clearing.
    pub json: bool,
    /// Where the screen is cleared.
    pub terminal: &'a Terminal,
}

impl Watch<'_> {
    /// Reads with `read`, shows changed snapshots with `show` (which says
    /// whether to go on), and waits with `wait`, until `show` says stop or
    /// Ctrl-C (which ends the watch normally, as over legacy).
    pub fn run<T: PartialEq>(
        &self,
        mut read: impl FnMut() -> Result<T, Failure>,
        mut show: impl FnMut(&T) -> Result<bool, Failure>,
        wait: ChangeWait,
    ) -> Result<(), Failure> {
        let section = InterruptibleSection::enter();
        let mut last: Option<T> = None;
        let mut pending: Option<mpsc::Receiver<spalloc::Result<()>>> = None;
        loop {
            let read_at = Instant::now();
            let now = read()?;
            if last.as_ref() != Some(&now) {
                if !self.json {
                    if last.is_some() {
                        print_line("")?;
                    }
                    write_stdout(&self.terminal.clear_screen())?;
                }
                if !show(&now)? {
                    return Ok(());
                }
                last = Some(now);
            }
            let receiver = pending.get_or_insert_with(|| start_wait(&wait));
            let gap = || MIN_GAP.saturating_sub(read_at.elapsed());
            let go_on = match wait_interruptibly(receiver, &section)? {
                Waited::Changed => {
                    pending = None;
                    sleep_interruptibly(gap(), &section)
                }
                // A long-poll waits for the *next* change, so one that began
                // just after a change (missed by the read before it) would
                // sit out its 30 s: re-read meanwhile, leaving it running.
                Waited::StillWaiting => true,
                Waited::Interrupted => false,
            };
            if !go_on {
                // As over legacy: the interrupted wait ends its snapshot
                // with a blank line.
                if !self.json {
                    print_line("")?;
                }
                return Ok(());
            }
        }
    }
}

/// How one slice of waiting ended.
enum Waited {
    /// The wait returned: something may have changed.
    Changed,
    /// [`POLL_PERIOD`] passed with the wait still under way.
    StillWaiting,
    /// Ctrl-C.
    Interrupted,
}

/// Runs `wait` on a thread of its own; its answer comes on the receiver.
/// A wait nobody listens to any more ends by itself (a long-poll within
/// its 30 s).
fn start_wait(wait: &ChangeWait) -> mpsc::Receiver<spalloc::Result<()>> {
    let (sender, receiver) = mpsc::channel();
    let wait = wait.clone();
    std::thread::spawn(move || {
        let _ = sender.send(wait());
    });
    receiver
}

/// Waits for the pending wait, at most [`POLL_PERIOD`], noticing Ctrl-C.
fn wait_interruptibly(
    receiver: &mpsc::Receiver<spalloc::Result<()>>,
    section: &InterruptibleSection,
) -> Result<Waited, Failure> {
    let end = Instant::now() + POLL_PERIOD;
    loop {
        if section.take_interrupt() {
            return Ok(Waited::Interrupted);
        }
        if Instant::now() >= end {
            return Ok(Waited::StillWaiting);
        }
        match receiver.recv_timeout(INTERRUPT_CHECK) {
            Ok(Ok(())) | Err(RecvTimeoutError::Disconnected) => return Ok(Waited::Changed),
            Ok(Err(e)) => return Err(e.into()),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Sleeps `duration`; false if Ctrl-C came meanwhile.
fn sleep_interruptibly(duration: Duration, section: &InterruptibleSection) -> bool {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        if section.take_interrupt() {
            return false;
        }
        std::thread::sleep(INTERRUPT_CHECK.min(end.saturating_duration_since(Instant::now())));
    }
    true
}
