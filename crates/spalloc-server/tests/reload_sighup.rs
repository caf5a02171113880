//! The real binary reloads its config file on SIGHUP; a broken file is
//! logged and the running configuration stays.
#![cfg(unix)]

mod common;
mod fake_bmp;

use common::Client;
use fake_bmp::{Action, FakeBmp, CMD_VER};
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY: u64 = 3;

/// A config with one simulated machine; `machine_keys` are extra keys.
fn config_text(port: u16, machine_keys: &str) -> String {
    format!(
        r#"
        ip = "127.0.0.1"
        port = {port}
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [[machine]]
        name = "m"
        width = 1
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.02
        {machine_keys}
        "#
    )
}

struct Server {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    port: u16,
}

impl Server {
    fn start(test: &str, machine_keys: &str) -> Server {
        Server::start_with(test, |port| config_text(port, machine_keys))
    }

    /// Starts the binary on a config file written by `text(port)`.
    fn start_with(test: &str, text: impl Fn(u16) -> String) -> Server {
        let dir =
            std::env::temp_dir().join(format!("spalloc-reload-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let config = dir.join("server.toml");
        std::fs::write(&config, text(port)).expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let server = Server {
            child,
            dir,
            config,
            port,
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn client(&self) -> Client {
        Client::from_stream(TcpStream::connect(("127.0.0.1", self.port)).expect("connect"))
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.config, text).expect("rewrite config");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Stops the server and returns what it logged.
    fn stop(mut self) -> String {
        self.signal("-TERM");
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut log);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `list_machines` until `check` accepts it.
fn wait_machines(client: &mut Client, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let machines = client.ok("list_machines", json!([]), json!({}));
        if check(&machines) {
            return machines;
        }
        assert!(
            Instant::now() < deadline,
            "machines never changed: {machines}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_rereads_the_config_file() {
    let server = Server::start("ok", "");
    let mut client = server.client();
    let job = client.create(json!([]), json!({}));
    client.wait_state(job, READY);

    // Tags only: modified in place, the job continues.
    server.rewrite(&config_text(server.port, r#"tags = ["default", "new"]"#));
    server.signal("-HUP");
    wait_machines(&mut client, |m| m[0]["tags"] == json!(["default", "new"]));
    assert_eq!(client.state(job)["state"], json!(READY));

    // Reshaped: the job is destroyed with the reference's reason.
    server.rewrite(
        &config_text(server.port, r#"tags = ["default", "new"]"#).replace("width = 1", "width = 2"),
    );
    server.signal("-HUP");
    wait_machines(&mut client, |m| m[0]["width"] == json!(2));
    let state = client.state(job);
    assert_eq!(state["state"], json!(4));
    assert_eq!(state["reason"], json!("Machine removed."));

    let log = server.stop();
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[test]
fn a_broken_config_file_keeps_the_running_config() {
    let server = Server::start("broken", "");
    let mut client = server.client();
    let job = client.create(json!([]), json!({}));
    client.wait_state(job, READY);
    let before = client.ok("list_machines", json!([]), json!({}));

    server.rewrite("this is [[ not TOML");
    server.signal("-HUP");
    // Invalid, though well-formed: the machine has no boards.
    std::thread::sleep(Duration::from_millis(200));
    server.rewrite(&config_text(server.port, "").replace("width = 1", "width = 0"));
    server.signal("-HUP");
    std::thread::sleep(Duration::from_millis(200));

    assert_eq!(client.ok("list_machines", json!([]), json!({})), before);
    assert_eq!(client.state(job)["state"], json!(READY));
    let mut fresh = server.client();
    fresh.ok("version", json!([]), json!({}));

    let log = server.stop();
    assert_eq!(
        log.matches("failed to reread configuration file").count(),
        2,
        "{log}"
    );
}

#[test]
fn an_emptied_config_file_or_one_for_other_machines_is_refused_and_jobs_survive() {
    let server = Server::start("emptied", "");
    let mut client = server.client();
    let job = client.create(json!([]), json!({}));
    client.wait_state(job, READY);
    let before = client.ok("list_machines", json!([]), json!({}));

    // A botched edit: the file emptied (so no machines, and the default
    // address).
    server.rewrite("");
    server.signal("-HUP");
    std::thread::sleep(Duration::from_millis(200));
    // Another server's file: every running machine would go.
    server.rewrite(&config_text(server.port, "").replace("name = \"m\"", "name = \"other\""));
    server.signal("-HUP");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.ok("list_machines", json!([]), json!({})), before);
    assert_eq!(client.state(job)["state"], json!(READY));

    // Said explicitly, the operator gets what they asked for.
    server.rewrite(&format!(
        "ip = \"127.0.0.1\"\nport = {}\nmachine = []\n",
        server.port
    ));
    server.signal("-HUP");
    wait_machines(&mut client, |m| m == &json!([]));
    assert_eq!(client.state(job)["state"], json!(4));

    let log = server.stop();
    assert!(
        log.contains("the configuration defines no machines"),
        "{log}"
    );
    assert!(
        log.contains("would remove every running machine (m) and so destroy all 1 live job(s)"),
        "{log}"
    );
    assert!(log.contains("configuration reloaded"), "{log}");
}

#[test]
fn renaming_every_machine_is_applied_when_the_file_allows_it() {
    let server = Server::start("rename", "");
    let mut client = server.client();
    server.rewrite(&format!(
        "allow_removing_every_machine = true\n{}",
        config_text(server.port, "").replace("name = \"m\"", "name = \"renamed\"")
    ));
    server.signal("-HUP");
    wait_machines(&mut client, |m| m[0]["name"] == json!("renamed"));
    server.stop();
}

#[test]
fn a_config_file_that_defines_no_machines_is_refused_at_start_up() {
    let dir = std::env::temp_dir().join(format!("spalloc-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "# nothing here yet\n").expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .arg(&empty)
        .arg("--check")
        .output()
        .expect("server runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("defines no machines"), "{stderr}");
    assert!(stderr.contains("machine = []"), "{stderr}");
    // An explicit empty list is a deliberate choice.
    std::fs::write(&empty, "machine = []\n").expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .arg(&empty)
        .arg("--check")
        .output()
        .expect("server runs");
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sighup_during_start_up_is_acted_on_not_fatal() {
    // The server checks its BMPs before it listens; this one answers late,
    // so the SIGHUP below lands in the middle of start-up.
    let bmp = FakeBmp::start("127.0.64.1");
    bmp.next(CMD_VER, 1, Action::Late(Duration::from_millis(700)));
    let text = |port: u16| {
        format!(
            "ip = \"127.0.0.1\"\nport = {port}\n[[machine]]\nname = \"real\"\nwidth = 1\n\
             height = 1\nbase_ip = \"{}\"\nbmp = \"scp\"\nbmp_port = {}\nscp_timeout = 5.0\n\
             version_check_retries = 1\n",
            bmp.ip(),
            bmp.port()
        )
    };
    let dir = std::env::temp_dir().join(format!("spalloc-early-hup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.join("server.toml");
    std::fs::write(&config, text(port)).expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .arg(&config)
        .arg("--no-state")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let server = Server {
        child,
        dir,
        config,
        port,
    };
    bmp.wait_for_packets(1);
    server.signal("-HUP");
    server.wait_listening();
    let mut client = server.client();
    assert_eq!(client.ok("version", json!([]), json!({})), json!("6.0.0"));
    let log = server.stop();
    // Kept until the server ran, then acted on.
    assert!(log.contains("rereading the configuration file"), "{log}");
}
