//! Benchmark tooling for spalloc servers: a small blocking protocol client
//! ([`Conn`]), latency statistics ([`Stats`]) and `/proc` readings of a
//! server process ([`proc_cpu_seconds`], [`proc_rss_kib`]).
//!
//! The `spalloc-load` binary built on it drives any server that speaks the
//! spalloc v1 protocol (ours or the Python reference) the same way, so that
//! the two can be compared with one load generator.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Job state numbers of the protocol.
pub mod state {
    /// Waiting for boards.
    pub const QUEUED: u64 = 1;
    /// Boards allocated, power or links being set.
    pub const POWER: u64 = 2;
    /// Boards ready.
    pub const READY: u64 = 3;
    /// Destroyed (or never existed).
    pub const DESTROYED: u64 = 4;
}

/// What can go wrong while benchmarking: always a readable message.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// An error with context prepended to an underlying cause.
    pub fn context(what: impl fmt::Display, cause: impl fmt::Display) -> Error {
        Error(format!("{what}: {cause}"))
    }
}

/// Result with an [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// One request line, as the reference client writes it
/// (`{"command": ..., "args": [...], "kwargs": {...}}` plus a newline).
pub fn request_line(command: &str, args: Value, kwargs: Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"command": command, "args": args, "kwargs": kwargs}))
        .unwrap_or_default();
    line.push(b'\n');
    line
}

/// One blocking connection to a server. Notifications that arrive before a
/// reply are kept for [`Conn::wait_notification`].
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    /// Notifications received while waiting for replies, oldest first.
    pub notifications: VecDeque<Value>,
}

impl Conn {
    /// Connects (TCP_NODELAY on, as the reference client's sockets behave for
    /// small writes) with a read timeout of `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Conn> {
        let stream =
            TcpStream::connect(addr).map_err(|e| Error::context(format!("connect {addr}"), e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::context("TCP_NODELAY", e))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| Error::context("read timeout", e))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8192),
            start: 0,
            notifications: VecDeque::new(),
        })
    }

    /// Reads one raw line (without its newline). `Ok(None)` on a timeout.
    pub fn read_raw_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let line = self.buf[self.start..self.start + i].to_vec();
                self.start += i + 1;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(Some(line));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Error("connection closed by the server".into())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(Error::context("read", e)),
            }
        }
    }

    /// Reads the next non-blank message; a timeout is an error.
    fn read_message(&mut self) -> Result<Value> {
        loop {
            let Some(line) = self.read_raw_line()? else {
                return Err(Error("timed out waiting for the server".into()));
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&line).map_err(|e| {
                Error::context(
                    format!(
                        "server sent a line that is not JSON ({:?})",
                        String::from_utf8_lossy(&line)
                    ),
                    e,
                )
            });
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, line: &[u8]) -> Result<()> {
        self.stream
            .write_all(line)
            .map_err(|e| Error::context("write", e))
    }

    /// Sends a pre-encoded request line and returns the reply's `return`
    /// value; an `exception` reply is an error.
    pub fn call_line(&mut self, line: &[u8]) -> Result<Value> {
        self.send(line)?;
        loop {
            let mut msg = self.read_message()?;
            if let Some(obj) = msg.as_object_mut() {
                if let Some(v) = obj.remove("return") {
                    return Ok(v);
                }
                if let Some(e) = obj.get("exception") {
                    return Err(Error(format!("server exception: {e}")));
                }
            }
            self.notifications.push_back(msg);
        }
    }

    /// Encodes and makes one call.
    pub fn call(&mut self, command: &str, args: Value, kwargs: Value) -> Result<Value> {
        self.call_line(&request_line(command, args, kwargs))
    }

    /// The next notification (a kept one first), or `None` after `timeout`.
    pub fn wait_notification(&mut self, timeout: Duration) -> Result<Option<Value>> {
        if let Some(n) = self.notifications.pop_front() {
            return Ok(Some(n));
        }
        let old = self.stream.read_timeout().ok().flatten();
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_micros(100))))
            .map_err(|e| Error::context("read timeout", e))?;
        let line = self.read_raw_line();
        let _ = self.stream.set_read_timeout(old);
        match line? {
            None => Ok(None),
            Some(line) => serde_json::from_slice(&line)
                .map(Some)
                .map_err(|e| Error::context("notification is not JSON", e)),
        }
    }
}

/// Latency statistics over a set of samples in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile (nearest rank), microseconds.
    pub p99_us: f64,
    /// Largest sample, microseconds.
    pub max_us: f64,
}

impl Stats {
    /// Statistics of `samples` (seconds; sorted in place).
    pub fn of(samples: &mut [f64]) -> Stats {
        samples.sort_by(f64::total_cmp);
        Stats {
            n: samples.len(),
            p50_us: percentile(samples, 0.50) * 1e6,
            p99_us: percentile(samples, 0.99) * 1e6,
            max_us: samples.last().copied().unwrap_or(f64::NAN) * 1e6,
        }
    }
}

/// Nearest-rank percentile of sorted values (`q` in 0..=1); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Median of values (NaN when empty); the mean of the middle two for an even count.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Kernel clock ticks per second for `/proc/PID/stat` (100 on Linux for
/// every architecture this runs on; `USER_HZ` is fixed by the kernel ABI).
pub const CLOCK_TICKS: f64 = 100.0;

/// User plus system CPU seconds used so far by process `pid` (all its
/// threads), from `/proc/PID/stat`; 10 ms resolution.
pub fn proc_cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::context(&path, e))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| Error(format!("{path}: unexpected format")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64 / CLOCK_TICKS)
            .ok_or_else(|| Error(format!("{path}: no CPU field {i}")))
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    Ok(field(11)? + field(12)?)
}

/// Resident memory (`VmRSS`) and its peak (`VmHWM`) of process `pid`, KiB.
pub fn proc_rss_kib(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::context(&path, e))?;
    let get = |key: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error(format!("{path}: no {key}")))
    };
    Ok((get("VmRSS:")?, get("VmHWM:")?))
}

/// CPU seconds of an optional server process; `None` when not given or unreadable.
pub fn maybe_cpu(pid: Option<u32>) -> Option<f64> {
    pid.and_then(|p| proc_cpu_seconds(p).ok())
}
