//! Starting our server in-process and running the built tools against it.

#![allow(dead_code)]

pub mod process;
pub mod transcript;
pub mod v2;

use spalloc::{Allocation, JobOptions, JobState, ProtocolClient};
use spalloc_server::{RunningServer, ServerConfig};
use std::path::PathBuf;
use std::process::{Command, Output};

/// A small machine: 1x1 triads, fast power.
pub const SMALL_MACHINE: &str = r#"
port = 0
ip = "127.0.0.1"
timeout_check_interval = 0.5
seconds_before_free = 0.0

[[machine]]
name = "m1"
tags = ["default"]
width = 1
height = 1
dead_boards = []
dead_links = []
base_ip = "127.0.1.0"
power_delay = 0.05
"#;

/// A running server and an isolated home directory for the tools.
pub struct Fixture {
    /// The server.
    pub server: RunningServer,
    /// HOME, XDG_CONFIG_HOME and working directory of the tools.
    pub home: tempfile::TempDir,
}

impl Fixture {
    /// Starts a server with `toml`.
    pub fn start(toml: &str) -> Fixture {
        let config = ServerConfig::from_toml_str(toml).expect("server config");
        let server = RunningServer::start(config).expect("server starts");
        let home = tempfile::tempdir().expect("temp dir");
        Fixture { server, home }
    }

    /// The small machine.
    pub fn small() -> Fixture {
        Fixture::start(SMALL_MACHINE)
    }

    /// The port the server listens on.
    pub fn port(&self) -> String {
        self.server.local_addr().port().to_string()
    }

    /// A client connected to the server (10 s timeout per call).
    pub fn client(&self) -> ProtocolClient {
        let client = ProtocolClient::new("127.0.0.1", self.server.local_addr().port())
            .with_timeout(Some(std::time::Duration::from_secs(10)));
        client.connect().expect("client connects");
        client
    }

    /// Creates a job for `allocation` owned by `owner` that never times out;
    /// returns its ID.
    pub fn create_job(&self, client: &ProtocolClient, allocation: Allocation, owner: &str) -> u64 {
        let mut options = JobOptions::new(owner);
        options.keepalive = None;
        client
            .create_job(&allocation, &options)
            .expect("create_job")
    }

    /// Takes all three boards of the small machine with a job that never
    /// times out, and waits until it is ready; returns its ID.
    pub fn fill_machine(&self, client: &ProtocolClient) -> u64 {
        let id = self.create_job(client, Allocation::Boards(3), "filler");
        wait_for_state(client, id, JobState::Ready);
        id
    }

    /// A command for the tool `name`, isolated from the user's config, with
    /// `--hostname` and `--port` given.
    pub fn tool(&self, name: &str) -> Command {
        let mut command = bare_tool(name, &self.home.path().to_path_buf());
        command.args(["--hostname", "127.0.0.1", "--port", &self.port()]);
        command
    }
}

/// Waits (polling, at most [`transcript::PATIENCE`]) until job `id` is in `state`.
pub fn wait_for_state(client: &ProtocolClient, id: u64, state: JobState) {
    let deadline = std::time::Instant::now() + transcript::PATIENCE;
    loop {
        let record = client.get_job_state(id).expect("get_job_state");
        if record.state == state {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} is {:?}, not {state:?}",
            record.state
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A tool's binary path.
pub fn binary(name: &str) -> PathBuf {
    match name {
        "spalloc" => PathBuf::from(env!("CARGO_BIN_EXE_spalloc")),
        "spalloc-job" => PathBuf::from(env!("CARGO_BIN_EXE_spalloc-job")),
        "spalloc-ps" => PathBuf::from(env!("CARGO_BIN_EXE_spalloc-ps")),
        "spalloc-machine" => PathBuf::from(env!("CARGO_BIN_EXE_spalloc-machine")),
        "spalloc-where-is" => PathBuf::from(env!("CARGO_BIN_EXE_spalloc-where-is")),
        "spalloc-config" => PathBuf::from(env!("CARGO_BIN_EXE_spalloc-config")),
        other => panic!("no tool {other}"),
    }
}

/// A command for `name` with HOME, XDG dirs and cwd in `home`, no server options.
pub fn bare_tool(name: &str, home: &PathBuf) -> Command {
    let mut command = Command::new(binary(name));
    command
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CONFIG_DIRS", home.join("system"))
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    command
}

/// Runs and returns (status, stdout, stderr).
pub fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("tool runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Replaces `dd/mm/yyyy hh:mm:ss` timestamps with a fixed mask.
pub fn mask_timestamps(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let pattern = "dd/dd/dddd dd:dd:dd";
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let fits = i + pattern.len() <= chars.len()
            && pattern.chars().zip(&chars[i..]).all(|(p, c)| {
                if p == 'd' {
                    c.is_ascii_digit()
                } else {
                    p == *c
                }
            });
        if fits {
            out.push_str("DD/MM/YYYY hh:mm:ss");
            i += pattern.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Replaces `/…/spinnaker_ips_XXXX.csv` with `<CSV>`.
pub fn mask_csv_path(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if let (Some(start), Some(end)) = (line.find('/'), line.find(".csv")) {
            if line[start..end].contains("spinnaker_ips_") {
                out.push_str(&line[..start]);
                out.push_str("<CSV>");
                out.push_str(&line[end + 4..]);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}
