//! The low-level blocking client: one TCP connection, one call at a time.
//!
//! [`ProtocolClient`] presents the server as a set of remote procedures. A
//! call sends one request line and reads lines until the reply (a `return`
//! or an `exception`); any notification that arrives in between is queued
//! for [`ProtocolClient::wait_for_notification`].
//!
//! A client may be shared between threads (`&ProtocolClient` is enough): each
//! call holds the connection for its whole duration, so requests and replies
//! never interleave. A thread blocked in a call or a wait delays the others;
//! give each long-lived activity (like the keepalive of a [`Job`](crate::Job))
//! its own client, as the reference does.
//!
//! ```no_run
//! use spalloc::ProtocolClient;
//! use std::time::Duration;
//!
//! // Connect to a spalloc server.
//! let client = ProtocolClient::new("hostname", 22244);
//! client.connect()?;
//! // Call commands by name...
//! println!("{}", client.call("version", vec![], Default::default())?); // "0.1.0"
//! // ...or through typed methods.
//! println!("{}", client.version()?);
//! // Wait for an event.
//! client.notify_job(None)?;
//! println!("{:?}", client.wait_for_notification(Some(Duration::from_secs(10)))?);
//! client.close();
//! # Ok::<(), spalloc::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::request::{Allocation, JobOptions, WhereIs};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use spalloc_protocol::{
    BoardCoord, FrameError, JobListing, JobMachineInfo, JobStateRecord, LineBuffer, MachineListing,
    Notification, PhysicalCoord, Request, ServerMessage, WhereIsRecord, MAX_REPLY_LINE_LENGTH,
};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A blocking connection to a spalloc server.
///
/// Creating a client does not connect; call [`ProtocolClient::connect`]. If
/// the connection is lost (or dropped after a timeout), the next call opens a
/// new one, unless [`ProtocolClient::close`] was called, after which calls
/// fail with [`Error::NotConnected`] until `connect` is called again.
#[derive(Debug)]
pub struct ProtocolClient {
    hostname: String,
    port: u16,
    timeout: Mutex<Option<Duration>>,
    conn: Mutex<Conn>,
    /// A clone of the socket, so that `close` can interrupt a blocked call.
    closer: Mutex<Option<TcpStream>>,
    notifications: Mutex<VecDeque<Notification>>,
}

#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
    buf: LineBuffer,
    /// Set by `close()`: no lazy reconnection.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

fn timeout_text(timeout: Option<Duration>) -> String {
    match timeout {
        Some(t) => format!("no reply within {:.3} s", t.as_secs_f64()),
        None => "no reply".into(),
    }
}

impl ProtocolClient {
    /// A client for `hostname:port`, not yet connected, with no timeout.
    pub fn new(hostname: impl Into<String>, port: u16) -> Self {
        ProtocolClient {
            hostname: hostname.into(),
            port,
            timeout: Mutex::new(None),
            conn: Mutex::new(Conn {
                stream: None,
                buf: LineBuffer::new(MAX_REPLY_LINE_LENGTH),
                closed: false,
            }),
            closer: Mutex::new(None),
            notifications: Mutex::new(VecDeque::new()),
        }
    }

    /// A client with a default timeout, connected. The usual way to start.
    pub fn connect_to(
        hostname: impl Into<String>,
        port: u16,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        let client = ProtocolClient::new(hostname, port).with_timeout(timeout);
        client.connect()?;
        Ok(client)
    }

    /// Sets the default timeout (builder style); see [`ProtocolClient::set_timeout`].
    pub fn with_timeout(self, timeout: Option<Duration>) -> Self {
        self.set_timeout(timeout);
        self
    }

    /// Sets the timeout for connecting and for every call that does not give
    /// its own; `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        *lock(&self.timeout) = timeout;
    }

    /// The default timeout.
    pub fn timeout(&self) -> Option<Duration> {
        *lock(&self.timeout)
    }

    /// The server's host name, as given.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// (Re)connects to the server, closing any current connection first.
    /// Queued notifications are kept.
    pub fn connect(&self) -> Result<()> {
        let mut conn = lock(&self.conn);
        conn.closed = false;
        self.open(&mut conn)
    }

    /// Disconnects. Calls fail with [`Error::NotConnected`] until the next
    /// [`ProtocolClient::connect`]. Calling it twice is fine; a call blocked
    /// in another thread is interrupted.
    pub fn close(&self) {
        if let Some(stream) = lock(&self.closer).take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let mut conn = lock(&self.conn);
        conn.closed = true;
        Self::drop_stream(&mut conn);
    }

    /// Whether a connection is currently open.
    pub fn is_connected(&self) -> bool {
        lock(&self.conn).stream.is_some()
    }

    fn drop_stream(conn: &mut Conn) {
        if let Some(stream) = conn.stream.take() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        conn.buf = LineBuffer::new(MAX_REPLY_LINE_LENGTH);
    }

    fn open(&self, conn: &mut Conn) -> Result<()> {
        Self::drop_stream(conn);
        let address = format!("{}:{}", self.hostname, self.port);
        let connect_error = |source: io::Error| Error::Connect {
            address: address.clone(),
            source,
        };
        let timeout = self.timeout();
        let addrs: Vec<_> = (self.hostname.as_str(), self.port)
            .to_socket_addrs()
            .map_err(connect_error)?
            .collect();
        let mut last_error =
            io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address");
        for addr in addrs {
            let attempt = match timeout {
                Some(t) if t.is_zero() => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out (timeout is 0)",
                )),
                Some(t) => TcpStream::connect_timeout(&addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    // One small request then a wait: Nagle only adds latency.
                    let _ = stream.set_nodelay(true);
                    *lock(&self.closer) = stream.try_clone().ok();
                    conn.stream = Some(stream);
                    return Ok(());
                }
                Err(e) => last_error = e,
            }
        }
        Err(connect_error(last_error))
    }

    /// The open stream, connecting lazily unless `close` was called.
    fn ensure_open(&self, conn: &mut Conn) -> Result<()> {
        if conn.stream.is_none() {
            if conn.closed {
                return Err(Error::NotConnected);
            }
            self.open(conn)?;
        }
        Ok(())
    }

    /// Sends a command and returns the server's reply, with the default
    /// timeout. `args` and `kwargs` are sent as given (kwargs in order).
    pub fn call(
        &self,
        command: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value> {
        self.call_with_timeout(command, args, kwargs, self.timeout())
    }

    /// [`ProtocolClient::call`] with an explicit timeout (`None`: forever).
    pub fn call_with_timeout(
        &self,
        command: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        self.send_request(&Request::new(command, args, kwargs), timeout)
    }

    /// Sends a prepared [`Request`] and waits for its reply.
    ///
    /// Notifications that arrive first are queued. A `{"exception": ...}`
    /// reply is [`Error::ServerException`]. On a timeout or any failure of
    /// the connection, the connection is dropped (the next call reconnects).
    pub fn send_request(&self, request: &Request, timeout: Option<Duration>) -> Result<Value> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut conn = lock(&self.conn);
        self.ensure_open(&mut conn)?;
        let result = self.exchange(&mut conn, request, deadline, timeout);
        if matches!(&result, Err(e) if e.is_communication_error()) {
            Self::drop_stream(&mut conn);
        }
        result
    }

    fn exchange(
        &self,
        conn: &mut Conn,
        request: &Request,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let line = request.to_line();
        {
            let stream = conn.stream.as_mut().ok_or(Error::NotConnected)?;
            let write_timeout = match remaining(deadline) {
                Some(t) if t.is_zero() => {
                    return Err(Error::ProtocolTimeout("send timed out".into()))
                }
                other => other,
            };
            stream.set_write_timeout(write_timeout).map_err(io_error)?;
            stream.write_all(&line).map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    Error::ProtocolTimeout("send timed out".into())
                }
                _ => io_error(e),
            })?;
        }
        loop {
            let message = Self::read_message(conn, deadline).map_err(|e| match e {
                Error::ProtocolTimeout(_) => Error::ProtocolTimeout(format!(
                    "{} to {:?}",
                    timeout_text(timeout),
                    request.command
                )),
                other => other,
            })?;
            match message {
                ServerMessage::Return(value) => return Ok(value),
                ServerMessage::Exception(text) => return Err(Error::ServerException(text)),
                ServerMessage::Notification(n) => lock(&self.notifications).push_back(n),
            }
        }
    }

    /// Reads the next message, waiting until `deadline` at most.
    fn read_message(conn: &mut Conn, deadline: Option<Instant>) -> Result<ServerMessage> {
        loop {
            match conn.buf.next_line() {
                Ok(Some(line)) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue; // tolerate blank lines
                    }
                    return ServerMessage::parse(line).map_err(|e| {
                        Error::ProtocolError(format!(
                            "the server sent something that is not JSON: {e}"
                        ))
                    });
                }
                Ok(None) => {}
                Err(FrameError::LineTooLong { limit }) => {
                    return Err(Error::ProtocolError(format!(
                        "the server sent a line longer than {limit} bytes"
                    )))
                }
            }
            let stream = conn.stream.as_mut().ok_or(Error::NotConnected)?;
            let read_timeout = match remaining(deadline) {
                Some(t) if t.is_zero() => {
                    return Err(Error::ProtocolTimeout("recv timed out".into()))
                }
                other => other,
            };
            stream.set_read_timeout(read_timeout).map_err(io_error)?;
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return Err(Error::ConnectionClosed),
                Ok(n) => conn.buf.extend(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Error::ProtocolTimeout("recv timed out".into()))
                }
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    /// The next notification: the oldest queued one, or the next to arrive.
    /// `timeout` `None` waits forever; a timeout is [`Error::ProtocolTimeout`]
    /// and leaves the connection usable.
    ///
    /// Stray replies (which cannot occur with this client, since it drops
    /// the connection when a call times out) are skipped.
    pub fn wait_for_notification(&self, timeout: Option<Duration>) -> Result<Notification> {
        if let Some(n) = self.poll_notification() {
            return Ok(n);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut conn = lock(&self.conn);
        // A call in another thread may have queued one while we waited for the lock.
        if let Some(n) = self.poll_notification() {
            return Ok(n);
        }
        self.ensure_open(&mut conn)?;
        loop {
            match Self::read_message(&mut conn, deadline) {
                Ok(ServerMessage::Notification(n)) => return Ok(n),
                Ok(_) => continue,
                Err(Error::ProtocolTimeout(_)) => {
                    return Err(Error::ProtocolTimeout(format!(
                        "no notification within {:.3} s",
                        timeout.unwrap_or_default().as_secs_f64()
                    )))
                }
                Err(e) => {
                    if e.is_communication_error() {
                        Self::drop_stream(&mut conn);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// A notification already received, if any, without reading the socket:
    /// the reference's `wait_for_notification` with a negative timeout.
    pub fn poll_notification(&self) -> Option<Notification> {
        lock(&self.notifications).pop_front()
    }

    /// The reference's `wait_for_notification(timeout)` exactly: seconds,
    /// `None` for forever, and a negative value to return a queued
    /// notification or `Ok(None)` at once.
    pub fn wait_for_notification_secs(&self, timeout: Option<f64>) -> Result<Option<Notification>> {
        match timeout {
            Some(t) if t < 0.0 => Ok(self.poll_notification()),
            Some(t) => self
                .wait_for_notification(Some(crate::config::seconds(t).unwrap_or(Duration::MAX)))
                .map(Some),
            None => self.wait_for_notification(None).map(Some),
        }
    }

    fn typed<T: DeserializeOwned>(
        &self,
        command: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<T> {
        let value = self.call(command, args, kwargs)?;
        serde_json::from_value(value)
            .map_err(|e| Error::ProtocolError(format!("unexpected reply to {command:?}: {e}")))
    }

    fn unit(&self, command: &str, args: Vec<Value>) -> Result<()> {
        self.call(command, args, Map::new()).map(drop)
    }

    /// `version`: the server's version string (check it with
    /// [`version::check_version`](crate::version::check_version)).
    pub fn version(&self) -> Result<String> {
        match self.call("version", vec![], Map::new())? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
    }

    /// `version`, then [`Error::IncompatibleVersion`] unless this client
    /// supports it. Returns the version.
    pub fn check_version(&self) -> Result<String> {
        let version = self.version()?;
        crate::version::check_version(&version)?;
        Ok(version)
    }

    /// `create_job`: requests boards and returns the new job's ID. All eight
    /// keyword arguments are sent, in the reference's order. Refused before
    /// sending if both `machine` and `tags` are given.
    pub fn create_job(&self, allocation: &Allocation, options: &JobOptions) -> Result<u64> {
        if options.machine.is_some() && options.tags.is_some() {
            return Err(Error::InvalidRequest(
                "only one of tags and machine may be specified for a job".into(),
            ));
        }
        self.typed("create_job", allocation.to_args(), options.to_kwargs())
    }

    /// `job_keepalive`: resets the job's keepalive timer.
    pub fn job_keepalive(&self, job_id: u64) -> Result<()> {
        self.unit("job_keepalive", vec![job_id.into()])
    }

    /// `get_job_state`: the state, power, keepalive and destruction reason.
    pub fn get_job_state(&self, job_id: u64) -> Result<JobStateRecord> {
        self.typed("get_job_state", vec![job_id.into()], Map::new())
    }

    /// `get_job_machine_info`: the allocation's size, hostnames and boards
    /// (all `None` until allocated).
    ///
    /// The Java server answers an unallocated job with the exception
    /// `boards not allocated`; that is mapped to an all-`None` record too.
    pub fn get_job_machine_info(&self, job_id: u64) -> Result<JobMachineInfo> {
        match self.typed("get_job_machine_info", vec![job_id.into()], Map::new()) {
            Err(Error::ServerException(text)) if text == "boards not allocated" => {
                Ok(JobMachineInfo::default())
            }
            other => other,
        }
    }

    /// `power_on_job_boards`: powers on (or resets) the job's boards.
    pub fn power_on_job_boards(&self, job_id: u64) -> Result<()> {
        self.unit("power_on_job_boards", vec![job_id.into()])
    }

    /// `power_off_job_boards`: powers off the job's boards.
    pub fn power_off_job_boards(&self, job_id: u64) -> Result<()> {
        self.unit("power_off_job_boards", vec![job_id.into()])
    }

    /// `destroy_job`: frees the job's boards. The reason is sent as a keyword
    /// argument (`{"reason": null}` when `None`), as the reference 7.4 does.
    pub fn destroy_job(&self, job_id: u64, reason: Option<&str>) -> Result<()> {
        let mut kwargs = Map::new();
        kwargs.insert("reason".into(), reason.into());
        self.call("destroy_job", vec![job_id.into()], kwargs)
            .map(drop)
    }

    /// `notify_job`: asks for `jobs_changed` notifications about one job, or
    /// about all jobs with `None`.
    pub fn notify_job(&self, job_id: Option<u64>) -> Result<()> {
        self.unit("notify_job", vec![job_id.into()])
    }

    /// `no_notify_job`: stops [`ProtocolClient::notify_job`] notifications.
    pub fn no_notify_job(&self, job_id: Option<u64>) -> Result<()> {
        self.unit("no_notify_job", vec![job_id.into()])
    }

    /// `notify_machine`: asks for `machines_changed` notifications about one
    /// machine, or about all machines with `None`.
    pub fn notify_machine(&self, machine_name: Option<&str>) -> Result<()> {
        self.unit("notify_machine", vec![machine_name.into()])
    }

    /// `no_notify_machine`: stops [`ProtocolClient::notify_machine`] notifications.
    pub fn no_notify_machine(&self, machine_name: Option<&str>) -> Result<()> {
        self.unit("no_notify_machine", vec![machine_name.into()])
    }

    /// `list_jobs`: every live (queued or allocated) job, oldest first.
    pub fn list_jobs(&self) -> Result<Vec<JobListing>> {
        self.typed("list_jobs", vec![], Map::new())
    }

    /// `list_usage` (an extension of this project's server): the usage of
    /// finished and running jobs, newest first, of `owner` or everybody.
    pub fn list_usage(&self, owner: Option<&str>) -> Result<crate::usage::UsageReport> {
        let mut kwargs = Map::new();
        if let Some(owner) = owner {
            kwargs.insert("owner".into(), owner.into());
        }
        self.typed("list_usage", vec![], kwargs)
    }

    /// `list_machines`: every machine, in the server's priority order.
    pub fn list_machines(&self) -> Result<Vec<MachineListing>> {
        self.typed("list_machines", vec![], Map::new())
    }

    /// `get_board_position`: the physical `[cabinet, frame, board]` of a
    /// logical board, or `None` if there is no such board.
    pub fn get_board_position(
        &self,
        machine_name: &str,
        x: i64,
        y: i64,
        z: i64,
    ) -> Result<Option<PhysicalCoord>> {
        let args = vec![machine_name.into(), x.into(), y.into(), z.into()];
        self.typed("get_board_position", args, Map::new())
    }

    /// `get_board_at_position`: the logical `[x, y, z]` of a physical board,
    /// or `None` if there is no such board.
    pub fn get_board_at_position(
        &self,
        machine_name: &str,
        cabinet: i64,
        frame: i64,
        board: i64,
    ) -> Result<Option<BoardCoord>> {
        let args = vec![
            machine_name.into(),
            cabinet.into(),
            frame.into(),
            board.into(),
        ];
        self.typed("get_board_at_position", args, Map::new())
    }

    /// `where_is`: where a board or chip is, or `None` if nothing is there.
    /// All four query forms are supported (the reference 7.4 lost three).
    pub fn where_is(&self, query: &WhereIs) -> Result<Option<WhereIsRecord>> {
        self.typed("where_is", vec![], query.to_kwargs())
    }
}

impl Drop for ProtocolClient {
    fn drop(&mut self) {
        self.close();
    }
}

fn io_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Error::ConnectionClosed,
        io::ErrorKind::NotConnected => Error::NotConnected,
        _ => Error::ProtocolError(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::FakeServer;
    use std::sync::mpsc;
    use std::sync::Arc;

    fn client(server: &FakeServer, timeout: Option<Duration>) -> ProtocolClient {
        ProtocolClient::connect_to("127.0.0.1", server.port(), timeout).unwrap()
    }

    /// A server that records every line and answers `{"return": null}`.
    fn recorder() -> (FakeServer, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let server = FakeServer::start(move |_, mut conn| {
            while let Some(line) = conn.read_line() {
                let _ = lock(&tx).send(line.clone());
                let reply = if line.contains("\"version\"") {
                    "{\"return\": \"1!7.0.0\"}"
                } else if line.contains("\"create_job\"") {
                    "{\"return\": 42}"
                } else {
                    "{\"return\": null}"
                };
                conn.send(reply);
            }
        });
        (server, rx)
    }

    #[test]
    fn a_listing_larger_than_the_request_line_limit_is_read_whole() {
        // 3,000 ordinary jobs make a `list_jobs` reply of over 1 MiB; the
        // server may send up to its per-client cap, so the client takes it.
        let job = r#"{"job_id": 1, "owner": "someone@example.com", "start_time": 1.0, "keepalive": 60.0, "state": 3, "power": true, "args": [1], "kwargs": {"tags": null, "max_dead_boards": 0, "machine": null, "min_ratio": 0.333, "max_dead_links": null, "require_torus": false}, "allocated_machine_name": "m", "boards": [[0, 0, 0]], "keepalivehost": "127.0.0.1"}"#;
        let jobs = vec![job; 4000].join(", ");
        let reply = format!("{{\"return\": [{jobs}]}}");
        assert!(reply.len() > spalloc_protocol::DEFAULT_MAX_LINE_LENGTH);
        let server = FakeServer::start(move |_, mut conn| {
            while conn.read_line().is_some() {
                conn.send(&reply);
            }
        });
        let c = client(&server, Some(Duration::from_secs(5)));
        assert_eq!(c.list_jobs().unwrap().len(), 4000);
    }

    #[test]
    fn requests_are_byte_exact() {
        let (server, rx) = recorder();
        let c = client(&server, Some(Duration::from_secs(5)));
        assert_eq!(c.check_version().unwrap(), "1!7.0.0");
        let mut options = JobOptions::new("me");
        options.tags = Some(vec!["default".into()]);
        assert_eq!(c.create_job(&Allocation::Boards(2), &options).unwrap(), 42);
        options.keepalive = Some(2u32.into());
        options.tags = None;
        options.machine = Some("m".into());
        c.create_job(&Allocation::OneBoard, &options).unwrap();
        c.destroy_job(42, None).unwrap();
        c.destroy_job(42, Some("bye")).unwrap();
        c.notify_job(None).unwrap();
        c.notify_machine(Some("m")).unwrap();
        c.where_is(&WhereIs::JobChip {
            job_id: 1,
            x: 8,
            y: 4,
        })
        .unwrap();
        c.where_is(&WhereIs::Board {
            machine: "m".into(),
            x: 1,
            y: 0,
            z: 2,
        })
        .unwrap();
        c.where_is(&WhereIs::Physical {
            machine: "m".into(),
            cabinet: 0,
            frame: 0,
            board: 3,
        })
        .unwrap();
        c.where_is(&WhereIs::Chip {
            machine: "m".into(),
            x: -1,
            y: 3,
        })
        .unwrap();
        c.get_board_position("m", 1, 2, 0).unwrap();
        let lines: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            lines,
            [
                r#"{"command": "version", "args": [], "kwargs": {}}"#,
                r#"{"command": "create_job", "args": [2], "kwargs": {"owner": "me", "keepalive": 60.0, "machine": null, "tags": ["default"], "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null, "require_torus": false}}"#,
                r#"{"command": "create_job", "args": [], "kwargs": {"owner": "me", "keepalive": 2, "machine": "m", "tags": null, "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null, "require_torus": false}}"#,
                r#"{"command": "destroy_job", "args": [42], "kwargs": {"reason": null}}"#,
                r#"{"command": "destroy_job", "args": [42], "kwargs": {"reason": "bye"}}"#,
                r#"{"command": "notify_job", "args": [null], "kwargs": {}}"#,
                r#"{"command": "notify_machine", "args": ["m"], "kwargs": {}}"#,
                r#"{"command": "where_is", "args": [], "kwargs": {"job_id": 1, "chip_x": 8, "chip_y": 4}}"#,
                r#"{"command": "where_is", "args": [], "kwargs": {"machine": "m", "x": 1, "y": 0, "z": 2}}"#,
                r#"{"command": "where_is", "args": [], "kwargs": {"machine": "m", "cabinet": 0, "frame": 0, "board": 3}}"#,
                r#"{"command": "where_is", "args": [], "kwargs": {"machine": "m", "chip_x": -1, "chip_y": 3}}"#,
                r#"{"command": "get_board_position", "args": ["m", 1, 2, 0], "kwargs": {}}"#,
            ]
        );
        // Refused client-side, nothing sent.
        let mut both = JobOptions::new("me");
        both.machine = Some("m".into());
        both.tags = Some(vec![]);
        assert!(matches!(
            c.create_job(&Allocation::OneBoard, &both),
            Err(Error::InvalidRequest(_))
        ));
        c.version().unwrap();
        assert_eq!(rx.try_iter().count(), 1);
    }

    #[test]
    fn notifications_are_queued_in_order_and_replies_told_apart() {
        let server = FakeServer::start(|_, mut conn| {
            while let Some(line) = conn.read_line() {
                if line.contains("get_job_state") {
                    conn.send(r#"{"jobs_changed": [1, 3]}"#);
                    conn.send(r#"{"machines_changed": ["m"]}"#);
                    conn.send(r#"{"what": 1}"#);
                    conn.send(r#"{"return": {"state": 3, "power": true, "keepalive": 60.0, "reason": null, "start_time": 1.5}}"#);
                    conn.send(r#"{"jobs_changed": [7]}"#);
                } else if line.contains("boom") {
                    conn.send(r#"{"exception": "boom"}"#);
                } else {
                    conn.send(r#"{"return": null, "exception": "ignored"}"#);
                }
            }
        });
        let c = client(&server, Some(Duration::from_secs(5)));
        let state = c.get_job_state(1).unwrap();
        assert_eq!(state.state, crate::JobState::Ready);
        assert_eq!(state.power, Some(true));
        assert!(
            matches!(c.call("boom", vec![], Map::new()), Err(Error::ServerException(m)) if m == "boom")
        );
        assert_eq!(c.call("x", vec![], Map::new()).unwrap(), Value::Null);
        let t = Some(Duration::from_secs(5));
        assert_eq!(
            c.wait_for_notification(t).unwrap(),
            Notification::JobsChanged(vec![1, 3])
        );
        assert_eq!(
            c.wait_for_notification(t).unwrap(),
            Notification::MachinesChanged(vec!["m".into()])
        );
        assert!(matches!(
            c.wait_for_notification(t).unwrap(),
            Notification::Other(_)
        ));
        // The one sent after the reply is read from the socket.
        assert_eq!(
            c.wait_for_notification(t).unwrap(),
            Notification::JobsChanged(vec![7])
        );
        assert_eq!(c.poll_notification(), None);
        assert_eq!(c.wait_for_notification_secs(Some(-1.0)).unwrap(), None);
        let start = Instant::now();
        let e = c
            .wait_for_notification(Some(Duration::from_millis(100)))
            .unwrap_err();
        assert!(matches!(e, Error::ProtocolTimeout(_)), "{e}");
        assert!(start.elapsed() >= Duration::from_millis(100));
        // A notification timeout leaves the connection usable.
        assert_eq!(c.call("x", vec![], Map::new()).unwrap(), Value::Null);
    }

    #[test]
    fn call_timeout_drops_the_connection_and_the_next_call_reconnects() {
        let server = FakeServer::start(|index, mut conn| {
            while let Some(line) = conn.read_line() {
                if index == 0 && line.contains("slow") {
                    continue; // never answer
                }
                conn.send(r#"{"return": "0.1.0"}"#);
            }
        });
        let c = client(&server, Some(Duration::from_millis(100)));
        let start = Instant::now();
        let e = c.call("slow", vec![], Map::new()).unwrap_err();
        assert!(matches!(e, Error::ProtocolTimeout(_)), "{e}");
        assert!(e.is_communication_error());
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(2));
        assert!(!c.is_connected());
        assert_eq!(c.version().unwrap(), "0.1.0");
    }

    #[test]
    fn closed_connections_are_distinct_errors() {
        let server = FakeServer::start(|_, mut conn| {
            let _ = conn.read_line(); // then hang up without a reply
        });
        let c = client(&server, Some(Duration::from_secs(5)));
        assert!(matches!(c.version(), Err(Error::ConnectionClosed)));
        c.close();
        assert!(matches!(c.version(), Err(Error::NotConnected)));
        c.close(); // twice is fine
                   // Nothing listens on a port we just freed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = ProtocolClient::connect_to("127.0.0.1", port, Some(Duration::from_secs(1)))
            .unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
        assert!(e.to_string().contains("127.0.0.1"));
    }

    #[test]
    fn garbage_from_the_server_is_a_protocol_error() {
        let server = FakeServer::start(|_, mut conn| {
            let _ = conn.read_line();
            conn.send("not json");
            let _ = conn.read_line();
        });
        let c = client(&server, Some(Duration::from_secs(5)));
        assert!(matches!(c.version(), Err(Error::ProtocolError(_))));
    }

    #[test]
    fn threads_sharing_a_client_never_interleave_frames() {
        let server = FakeServer::start(|_, mut conn| {
            while let Some(req) = conn.read_request() {
                // Echo the argument back, after a notification.
                conn.send(r#"{"jobs_changed": [0]}"#);
                let arg = req.args.first().cloned().unwrap_or(Value::Null);
                conn.send(&format!("{{\"return\": {arg}}}"));
            }
        });
        let c = Arc::new(client(&server, Some(Duration::from_secs(5))));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let n = t * 1000 + i;
                        let v = c.call("echo", vec![n.into()], Map::new()).unwrap();
                        assert_eq!(v, Value::from(n));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(lock(&c.notifications).len(), 200);
    }

    #[test]
    fn huge_timeouts_mean_no_timeout() {
        let server = FakeServer::start(|_, mut conn| {
            while conn.read_line().is_some() {
                conn.send(r#"{"return": "0.1.0"}"#);
                conn.send(r#"{"jobs_changed": [1]}"#);
            }
        });
        let c = client(&server, Some(Duration::MAX));
        assert_eq!(c.version().unwrap(), "0.1.0");
        assert!(c.wait_for_notification(Some(Duration::MAX)).is_ok());
    }

    #[test]
    fn close_interrupts_a_blocked_wait() {
        let server = FakeServer::start(|_, mut conn| while conn.read_line().is_some() {});
        let c = Arc::new(client(&server, None));
        let c2 = c.clone();
        let waiter = std::thread::spawn(move || c2.wait_for_notification(None));
        std::thread::sleep(Duration::from_millis(50));
        c.close();
        let result = waiter.join().unwrap();
        assert!(result.is_err());
    }
}
