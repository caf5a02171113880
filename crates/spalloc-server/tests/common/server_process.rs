//! The `spalloc-server` binary as a child process, for tests that kill it
//! with `kill -9` or limit it from a shell: started, its listening address
//! read from its log, killed when dropped.

use super::Client;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server that refused to start: how it exited and what it logged.
#[derive(Debug)]
pub struct Refusal {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard error.
    pub log: String,
}

/// Writes `DIR/server.toml`: one 2x1-triad machine with slow enough power
/// (0.3 s) for a test to catch a job powering, and quick frees.
pub fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.1
        [[machine]]
        name = "m"
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.3
        "#,
    )
    .expect("write config");
    path
}

/// Waits up to 20 s for `child` to exit.
fn wait_bounded(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// A running server process.
pub struct ServerProcess {
    /// The process.
    pub child: Child,
    /// Where it listens (`IP:PORT`, from its log).
    pub address: String,
}

impl ServerProcess {
    /// `spalloc-server CONFIG EXTRA...`.
    pub fn start(config: &Path, extra: &[&str]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spalloc-server"));
        command.arg(config).args(extra);
        ServerProcess::spawn(command)
    }

    /// Runs `command`, which starts the server directly or through a shell,
    /// and waits until the server logs the address it listens on.
    pub fn spawn(command: Command) -> ServerProcess {
        ServerProcess::start_or_refusal(command)
            .unwrap_or_else(|refusal| panic!("the server did not start: {refusal:?}"))
    }

    /// Runs `command` and waits until the server either logs the address
    /// it listens on or exits (a refused start-up: its status and log).
    pub fn start_or_refusal(mut command: Command) -> Result<ServerProcess, Refusal> {
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spalloc-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = String::new();
            let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
            for line in lines.by_ref() {
                if let Some(rest) = line.split("address=").nth(1) {
                    let address = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(Ok(address));
                    // Keep reading, so that the server never blocks on a
                    // full pipe.
                    lines.for_each(drop);
                    return;
                }
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(Err(log));
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(address)) => Ok(ServerProcess { child, address }),
            Ok(Err(log)) => {
                let status =
                    wait_bounded(&mut child).expect("a server whose log ended exits within 20 s");
                Err(Refusal { status, log })
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server neither logged its address nor exited within 20 s");
            }
        }
    }

    /// SIGTERM, as an operator stops it: it shuts down cleanly.
    pub fn stop(mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        assert!(
            wait_bounded(&mut self.child).is_some(),
            "the server did not stop within 20 s of SIGTERM"
        );
    }

    /// A protocol client connected to it.
    pub fn client(&self) -> Client {
        Client::from_stream(TcpStream::connect(&self.address).expect("connect"))
    }

    /// SIGKILL: no chance to save anything on the way out.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
