//! Helpers for tests that talk to a real server over TCP.

#![allow(dead_code)]

pub mod server_process;
pub mod server_user;

use serde_json::{json, Value};
use spalloc_server::{RunningServer, ServerConfig};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The 2x1-triad machine of the reference's experiments (§8.4), with fast
/// simulated power and frees.
pub fn small_config(extra_machine_keys: &str, server_keys: &str) -> ServerConfig {
    let text = format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05
        {server_keys}

        [[machine]]
        name = "test-machine"
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.02
        {extra_machine_keys}
        "#
    );
    ServerConfig::from_toml_str(&text).expect("test config is valid")
}

/// A fresh, empty directory `spalloc-NAME-PID` under the system's
/// temporary directory (whatever a previous run left there is removed).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Starts a server on a free port.
pub fn start(config: ServerConfig) -> RunningServer {
    RunningServer::start(config).expect("server starts")
}

/// A raw protocol client that keeps notifications apart from replies.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub notifications: Vec<Value>,
}

impl Client {
    pub fn connect(server: &RunningServer) -> Client {
        Client::from_stream(TcpStream::connect(server.local_addr()).expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            notifications: Vec::new(),
        }
    }

    pub fn send_raw_checked(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    /// Reads one line; `None` when the server closed the connection.
    pub fn read_line(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("server sends JSON")),
        }
    }

    /// Reads until a reply, queueing notifications.
    pub fn reply(&mut self) -> Result<Value, String> {
        loop {
            let msg = self.read_line().expect("connection open");
            if let Some(v) = msg.get("return") {
                return Ok(v.clone());
            }
            if let Some(e) = msg.get("exception") {
                return Err(e.as_str().unwrap_or_default().to_owned());
            }
            self.notifications.push(msg);
        }
    }

    pub fn call(&mut self, command: &str, args: Value, kwargs: Value) -> Result<Value, String> {
        let line = json!({"command": command, "args": args, "kwargs": kwargs}).to_string() + "\n";
        self.send_raw(line.as_bytes());
        self.reply()
    }

    pub fn ok(&mut self, command: &str, args: Value, kwargs: Value) -> Value {
        self.call(command, args, kwargs)
            .unwrap_or_else(|e| panic!("{command} raised {e}"))
    }

    pub fn create(&mut self, args: Value, mut kwargs: Value) -> u64 {
        if kwargs.get("owner").is_none() {
            kwargs["owner"] = json!("tester");
        }
        self.ok("create_job", args, kwargs)
            .as_u64()
            .expect("job id")
    }

    pub fn state(&mut self, id: u64) -> Value {
        self.ok("get_job_state", json!([id]), json!({}))
    }

    /// Waits (without touching the job: `list_jobs` is not a keepalive)
    /// until a job is no longer live, then returns its state record.
    pub fn wait_gone(&mut self, id: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let jobs = self.ok("list_jobs", json!([]), json!({}));
            if !jobs
                .as_array()
                .unwrap()
                .iter()
                .any(|j| j["job_id"] == json!(id))
            {
                return self.state(id);
            }
            assert!(Instant::now() < deadline, "job {id} never went away");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls a job until its state is `state`, or fails after 5 s.
    pub fn wait_state(&mut self, id: u64, state: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.state(id);
            if s["state"] == json!(state) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never reached state {state}: {s}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
