//! File descriptors: every client connection costs one, and running out of
//! them makes `accept` fail while new clients sit in the kernel's backlog,
//! connected but never answered.
//!
//! So at start-up the soft `RLIMIT_NOFILE` is raised to the hard limit
//! ([`raise_limit`]), `max_connections` is lowered to what the limit leaves
//! room for ([`connection_budget`], logged), and the accept loop keeps one
//! descriptor in reserve ([`Reserve`]): when `accept` fails for want of
//! descriptors, the reserve is given up to accept the waiting client, tell it
//! why and close it, instead of leaving it hanging.

use std::fs::File;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Descriptors kept for everything that is not a client connection: the
/// listener, the state file and its journal, BMP sockets, the runtime's own,
/// the reserve, and connections being refused.
pub const SPARE_DESCRIPTORS: u64 = 64;

/// Raises the soft limit on open files to the hard limit and returns the
/// limit now in force (`None`: unlimited or unknown).
#[cfg(unix)]
pub fn raise_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        // An unlimited hard limit cannot be the soft one (Linux caps it at
        // fs.nr_open, macOS at OPEN_MAX): try decreasing finite values.
        let wanted = limit.maximum.map_or(vec![1 << 20, 1 << 16, 10240], |max| {
            vec![max, max.min(1 << 20), max.min(10240)]
        });
        for current in wanted {
            if Some(current) <= limit.current {
                break;
            }
            let new = Rlimit {
                current: Some(current),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, new) {
                Ok(()) => {
                    debug!(
                        from = ?limit.current, to = current,
                        "raised the soft limit on open files"
                    );
                    break;
                }
                Err(e) => debug!(error = %e, current, "could not raise the open-file limit"),
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

/// No limit to raise off Unix.
#[cfg(not(unix))]
pub fn raise_limit() -> Option<u64> {
    None
}

/// The number of descriptors open now, approximately: the lowest free one
/// (descriptors are allocated lowest first).
fn in_use() -> u64 {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        if let Ok(probe) = File::open("/dev/null") {
            return u64::try_from(probe.as_raw_fd()).unwrap_or(0);
        }
    }
    0
}

/// The `max_connections` that the open-file `limit` allows: the configured
/// value, or less (logged) if the limit leaves no room for that many.
pub fn connection_budget(configured: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let room = limit.saturating_sub(in_use() + SPARE_DESCRIPTORS).max(1);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if room < configured {
        warn!(
            max_connections = room,
            configured,
            open_file_limit = limit,
            "the open-file limit leaves room for fewer connections than max_connections; \
             raise the limit (e.g. LimitNOFILE= in a systemd unit) to allow more"
        );
        room
    } else {
        info!(
            max_connections = configured,
            open_file_limit = limit,
            "connection limit"
        );
        configured
    }
}

/// One descriptor held back so that a client can still be accepted, and
/// told to come back later, when every other one is in use.
pub struct Reserve(Option<File>);

impl Reserve {
    /// Takes the reserve descriptor.
    pub fn new() -> Reserve {
        Reserve(File::open(null_device()).ok())
    }

    /// Gives the descriptor up (so that `accept` can use it); `false` if
    /// there was none to give.
    pub fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes the descriptor back, if one is free again; `false` if not.
    pub fn refill(&mut self) -> bool {
        if self.0.is_none() {
            self.0 = File::open(null_device()).ok();
        }
        self.0.is_some()
    }
}

impl Default for Reserve {
    fn default() -> Self {
        Reserve::new()
    }
}

fn null_device() -> &'static str {
    if cfg!(windows) {
        "NUL"
    } else {
        "/dev/null"
    }
}

/// Whether an `accept` error means the process or system ran out of
/// descriptors (EMFILE, ENFILE) or buffers (ENOBUFS, ENOMEM).
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        if let Some(code) = e.raw_os_error() {
            let errno = Errno::from_raw_os_error(code);
            return [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM].contains(&errno);
        }
    }
    let _ = e;
    false
}

/// The accept loop's state while it is out of descriptors: how long to
/// pause before the next try (doubling up to a second while the shortage
/// lasts) and a log line at most every [`Starved::LOG_EVERY`] instead of
/// one per failed `accept`.
#[derive(Debug, Default)]
pub struct Starved {
    pause: Option<Duration>,
    last_log: Option<Instant>,
    failures: u64,
    turned_away: u64,
}

impl Starved {
    /// The least time between two log lines about the shortage.
    pub const LOG_EVERY: Duration = Duration::from_secs(10);

    /// Records a failed `accept` (and whether its client was turned away
    /// with a message); returns how long to pause before accepting again.
    pub fn failed(&mut self, e: &std::io::Error, turned_away: bool, live: usize) -> Duration {
        self.failures += 1;
        self.turned_away += u64::from(turned_away);
        let now = Instant::now();
        if self
            .last_log
            .map_or(true, |t| now.duration_since(t) >= Self::LOG_EVERY)
        {
            warn!(
                error = %e, live_connections = live, failures = self.failures,
                turned_away = self.turned_away,
                "out of file descriptors: new clients are told to try again later"
            );
            self.last_log = Some(now);
            self.failures = 0;
            self.turned_away = 0;
        }
        let pause = self.pause.map_or(Duration::from_millis(10), |p| {
            (p * 2).min(Duration::from_secs(1))
        });
        // A client turned away made room in the backlog: try again soon.
        let pause = if turned_away {
            Duration::from_millis(10)
        } else {
            pause
        };
        self.pause = Some(pause);
        pause
    }

    /// A connection was accepted: the shortage is over.
    pub fn ended(&mut self) {
        if self.pause.take().is_some() {
            info!("file descriptors available again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_limit_lowers_the_connection_budget_and_a_large_one_does_not() {
        assert_eq!(connection_budget(1024, None), 1024);
        assert_eq!(connection_budget(1024, Some(1 << 20)), 1024);
        let small = connection_budget(1024, Some(256));
        assert!(small < 256 - SPARE_DESCRIPTORS as usize + 1, "{small}");
        assert!(small >= 1);
        assert_eq!(connection_budget(1024, Some(3)), 1);
    }

    #[test]
    fn a_lasting_shortage_is_logged_rarely_and_waited_out_ever_longer() {
        let mut starved = Starved::default();
        let e = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..10).map(|_| starved.failed(&e, false, 5)).collect();
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(pauses[9], Duration::from_secs(1));
        // Nine failures since the first (logged) one wait for the next log line.
        assert_eq!(starved.failures, 9);
        starved.ended();
        assert_eq!(starved.failed(&e, false, 5), Duration::from_millis(10));
    }

    #[test]
    fn the_reserve_can_be_released_and_refilled() {
        let mut reserve = Reserve::new();
        assert!(reserve.release());
        assert!(!reserve.release());
        assert!(reserve.refill());
        assert!(reserve.release());
    }
}
