//! The `spalloc-server` binary as a child process, for tests that kill it
//! with `kill -9` or limit it from a shell: started, its listening address
//! read from its log, killed when dropped.

use super::Client;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
    pub fn spawn(mut command: Command) -> ServerProcess {
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
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("address=").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs its address");
        ServerProcess { child, address }
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
