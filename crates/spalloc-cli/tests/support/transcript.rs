//! Collecting what a running tool writes, and waiting for it to show something.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long any wait for output or exit lasts before the test fails: generous,
/// because the machine may be busy with other builds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The bytes read so far from one stream, and whether it has ended.
#[derive(Debug, Default)]
struct Collected {
    bytes: Vec<u8>,
    ended: bool,
}

/// Everything read so far from one output stream (a pipe or a PTY master),
/// filled by a background thread.
#[derive(Debug, Clone)]
pub struct Transcript {
    shared: Arc<(Mutex<Collected>, Condvar)>,
    name: &'static str,
}

impl Transcript {
    /// Starts a thread copying `source` into a new transcript until end of
    /// file or a read error (a PTY master reports EIO once the tool exits).
    pub fn capture(name: &'static str, mut source: impl Read + Send + 'static) -> Transcript {
        let shared = Arc::new((Mutex::new(Collected::default()), Condvar::new()));
        let filler = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                let read = source.read(&mut chunk);
                let (lock, changed) = &*filler;
                let mut collected = lock_collected(lock);
                match read {
                    Ok(0) => collected.ended = true,
                    Ok(n) => collected.bytes.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => collected.ended = true,
                }
                let ended = collected.ended;
                drop(collected);
                changed.notify_all();
                if ended {
                    return;
                }
            }
        });
        Transcript { shared, name }
    }

    /// The text so far, with a terminal's `\r\n` line ends turned into `\n`.
    pub fn text(&self) -> String {
        let collected = lock_collected(&self.shared.0);
        normalise(&collected.bytes)
    }

    /// Waits until `condition` holds for the text, and returns the text; fails
    /// the test (showing `what` and the text) after [`PATIENCE`].
    pub fn wait_until(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let (lock, changed) = &*self.shared;
        let mut collected = lock_collected(lock);
        loop {
            let text = normalise(&collected.bytes);
            if condition(&text) {
                return text;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "{}: timed out waiting for {what}; got so far:\n{text:?}",
                    self.name
                );
            }
            if collected.ended {
                panic!(
                    "{}: the stream ended before {what}; got:\n{text:?}",
                    self.name
                );
            }
            collected = match changed.wait_timeout(collected, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Waits until the text contains `pattern`; returns the text.
    pub fn wait_for(&self, pattern: &str) -> String {
        self.wait_until(&format!("{pattern:?}"), |text| text.contains(pattern))
    }

    /// Waits until the stream ends (the tool exited and nothing else holds
    /// it open), or at most [`PATIENCE`]; returns the text either way.
    pub fn wait_for_end(&self) -> String {
        self.wait_for_end_within(PATIENCE)
    }

    /// Waits until the stream ends, or at most `patience`; returns the text
    /// either way.
    pub fn wait_for_end_within(&self, patience: Duration) -> String {
        let deadline = Instant::now() + patience;
        let (lock, changed) = &*self.shared;
        let mut collected = lock_collected(lock);
        while !collected.ended {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            collected = match changed.wait_timeout(collected, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        normalise(&collected.bytes)
    }
}

/// Locks the collected bytes, even if a panicking test poisoned the lock.
fn lock_collected(lock: &Mutex<Collected>) -> MutexGuard<'_, Collected> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes as text, with `\r\n` (a terminal's output line end) as `\n`.
fn normalise(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}
