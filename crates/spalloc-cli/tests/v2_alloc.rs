//! `spalloc` itself over the v2 protocol, as real processes against our
//! server: the same output for the same request over both protocols; `-c`
//! keeping its job alive through a `kill -9` of the server and a restart on
//! the same state file; clear failures (wrong password, revoked or unknown
//! token, unreachable server, unverifiable certificate, legacy-only
//! options); HTTPS with `--ca-cert`; `--no-destroy`, `--resume` and SIGTERM.
//!
//! The restarted server must be a process of its own to be killed with
//! SIGKILL; it is this test binary, run again with
//! [`SERVE_STATE_FILE`] set, which makes its one ignored "test" serve
//! until killed (so that the server is exactly the code under test, with
//! no separately built binary to go stale).

mod support;

use spalloc::v2::{Client, CreateJob, Credentials};
use spalloc::{JobState, ProtocolClient};
use spalloc_server::{RunningServer, ServerConfig};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::process::Running;
use support::v2::{start, url};
use support::{bare_tool, mask_csv_path, run};

/// Set in a child process: serve with this state file until killed.
const SERVE_STATE_FILE: &str = "SPALLOC_TEST_SERVE_STATE_FILE";
/// Set in a child process: serve the v2 API on this port.
const SERVE_HTTP_PORT: &str = "SPALLOC_TEST_SERVE_HTTP_PORT";
/// How long any one wait in these tests may last before it fails.
const PATIENCE: Duration = Duration::from_secs(90);

/// A 1×1-triad machine with the v2 API on `http_port` (0: any), `http_keys`
/// in `[http]`, and a state file if given.
fn config(http_port: u16, http_keys: &str, state_file: Option<&Path>) -> ServerConfig {
    let mut config = support::v2::config(http_port, http_keys, 0.05, "");
    config.state_file = state_file.map(Path::to_path_buf);
    config
}

fn legacy_client(server: &RunningServer) -> ProtocolClient {
    let client = ProtocolClient::new("127.0.0.1", server.local_addr().port())
        .with_timeout(Some(Duration::from_secs(10)));
    client.connect().expect("connect");
    client
}

/// `spalloc` over v2 as alice, with an isolated home.
fn v2_spalloc(home: &Path, url: &str) -> Command {
    let mut command = bare_tool("spalloc", &home.to_path_buf());
    command
        .args(["--url", url])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila");
    command
}

/// `spalloc` over the legacy protocol, with an isolated home.
fn legacy_spalloc(home: &Path, server: &RunningServer) -> Command {
    let mut command = bare_tool("spalloc", &home.to_path_buf());
    command.args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &server.local_addr().port().to_string(),
        "--owner",
        "alice",
    ]);
    command
}

/// The text with the digits after every `prefix` replaced by `mask`.
fn mask_number_after(text: &str, prefix: &str, mask: char) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        rest = &rest[at + prefix.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push(mask);
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The text with every `Job <digits>` made `Job N`.
fn mask_job_ids(text: &str) -> String {
    mask_number_after(text, "Job ", 'N')
}

/// The text with the last part of every board address (`127.0.1.N`)
/// masked: which free board a job gets is the allocator's choice.
fn mask_board_addresses(text: &str) -> String {
    mask_number_after(text, "127.0.1.", 'B')
}

/// The live (not destroyed) jobs of the server.
fn live_jobs(server: &RunningServer) -> Vec<u64> {
    legacy_client(server)
        .list_jobs()
        .expect("list_jobs")
        .into_iter()
        .filter(|j| j.state != JobState::Destroyed)
        .map(|j| j.job_id)
        .collect()
}

#[test]
fn spalloc_prints_the_same_for_the_same_request_over_both_protocols() {
    let server = start(config(0, "", None));
    let home = tempfile::tempdir().unwrap();
    let url = url(&server);
    let command = "echo host={hostname} w={w} h={h} id={id}; cat {ethernet_ips}";
    let mut outputs = Vec::new();
    for (name, mut tool) in [
        ("legacy", legacy_spalloc(home.path(), &server)),
        ("v2", v2_spalloc(home.path(), &url)),
    ] {
        // The ready block (stdin is empty, so no wait for Enter), then a
        // command with every substitution.
        let (code, ready, err) = run(tool.arg("1"));
        assert_eq!(code, 0, "{name}: {err}");
        assert!(err.ends_with("Ready!\n"), "{name}: {err}");
        let (code, ran, err) = run(tool.args(["-c", command]));
        assert_eq!(code, 0, "{name}: {err}");
        outputs.push((
            mask_board_addresses(&mask_csv_path(&mask_job_ids(&ready))),
            mask_job_ids(&ran.replace(|c: char| c.is_ascii_digit(), "9")),
            mask_job_ids(err.lines().last().unwrap_or_default()),
        ));
        assert!(
            live_jobs(&server).is_empty(),
            "{name}: the job is destroyed"
        );
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(
        outputs[0].0.contains("Hostname: 127.0.1."),
        "{:?}",
        outputs[0]
    );

    // A request that can never fit: destroyed (exit 1), with the reason in
    // numbers, over both.
    let impossible: Vec<(i32, String)> = [
        legacy_spalloc(home.path(), &server),
        v2_spalloc(home.path(), &url),
    ]
    .into_iter()
    .map(|mut tool| {
        let (code, _, err) = run(tool.arg("100"));
        (code, mask_job_ids(&err))
    })
    .collect();
    assert_eq!(impossible[0], impossible[1]);
    assert_eq!(impossible[0].0, 1, "{}", impossible[0].1);
    assert!(
        impossible[0].1.contains("No suitable machines available."),
        "{}",
        impossible[0].1
    );

    // The other forms: W H, and a board X Y Z, on a named machine.
    for what in [vec!["1", "1"], vec!["0", "0", "1"]] {
        let shown: Vec<String> = [
            legacy_spalloc(home.path(), &server),
            v2_spalloc(home.path(), &url),
        ]
        .into_iter()
        .map(|mut tool| {
            let (code, out, err) =
                run(tool
                    .args(&what)
                    .args(["--machine", "m1", "-c", "echo {hostname} {w} {h}"]));
            assert_eq!(code, 0, "{what:?}: {err}");
            out
        })
        .collect();
        assert_eq!(
            mask_board_addresses(&shown[0]),
            mask_board_addresses(&shown[1]),
            "{what:?}"
        );
    }
}

#[test]
fn legacy_only_options_are_refused_by_name_on_a_v2_server() {
    let server = start(config(0, "", None));
    let home = tempfile::tempdir().unwrap();
    for option in [
        vec!["--min-ratio", "0.5"],
        vec!["--max-dead-links", "2"],
        vec!["--require-torus"],
    ] {
        let (code, _, err) = run(v2_spalloc(home.path(), &url(&server)).args(&option));
        assert_ne!(code, 0, "{option:?}");
        assert!(
            err.contains(&format!("{} is an option of the legacy", option[0])),
            "{err}"
        );
    }
    assert!(live_jobs(&server).is_empty());
}

#[test]
fn credentials_that_do_not_work_and_servers_out_of_reach_are_clear_failures() {
    let server = start(config(0, "", None));
    let home = tempfile::tempdir().unwrap();
    let url = url(&server);
    let path = home.path().to_path_buf();

    let (code, _, err) = run(v2_spalloc(home.path(), &url).env("SPALLOC_PASSWORD", "wrong"));
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("Could not log in") && err.contains("log-in as alice failed"),
        "{err}"
    );

    let (code, _, err) = run(bare_tool("spalloc", &path)
        .args(["--url", &url])
        .env("SPALLOC_TOKEN", "spalloc_made_up"));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("refused the credentials"), "{err}");

    let now = spalloc_server::clock::now() as i64;
    let made = server
        .accounts()
        .create_token("alice", "tests", None, now)
        .expect("token");
    let (code, _, err) = run(bare_tool("spalloc", &path)
        .args(["--url", &url, "-c", "true"])
        .env("SPALLOC_TOKEN", &made.secret));
    assert_eq!(code, 0, "a fresh token works: {err}");
    let by_password = Client::builder(&url)
        .credentials(Credentials::password("alice", "ecila"))
        .build()
        .unwrap();
    let id = by_password
        .tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.name == "tests")
        .expect("the token is listed")
        .id;
    by_password.revoke_token(id).unwrap();
    let (code, _, err) = run(bare_tool("spalloc", &path)
        .args(["--url", &url])
        .env("SPALLOC_TOKEN", &made.secret));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("refused the credentials"), "{err}");

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run(&mut v2_spalloc(
        home.path(),
        &format!("http://{free}/spalloc/"),
    ));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("Could not connect to server"), "{err}");
    assert!(live_jobs(&server).is_empty());
}

#[test]
fn https_works_with_ca_cert_and_an_unverifiable_certificate_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let keys = format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let server = start(config(0, &keys, None));
    let url = format!(
        "https://localhost:{}/spalloc/",
        server.http_addr().unwrap().port()
    );
    let (code, out, err) = run(v2_spalloc(dir.path(), &url)
        .arg("--ca-cert")
        .arg(&cert)
        .args(["-c", "echo {hostname}"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("127.0.1."), "a board's address: {out}");

    let (code, _, err) = run(&mut v2_spalloc(dir.path(), &url));
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("Could not connect to server") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(live_jobs(&server).is_empty());
}

#[test]
fn no_destroy_leaves_the_job_for_resume_and_sigterm_destroys_a_waiting_job() {
    let server = start(config(0, "", None));
    let home = tempfile::tempdir().unwrap();
    let url = url(&server);

    let (code, out, err) =
        run(v2_spalloc(home.path(), &url).args(["--no-destroy", "-c", "echo {id}"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("still exists (--no-destroy)"), "{err}");
    let id = out.trim().to_owned();
    assert_eq!(live_jobs(&server), vec![id.parse::<u64>().unwrap()]);
    let (code, out, err) =
        run(v2_spalloc(home.path(), &url).args(["--resume", &id, "-c", "echo {id}"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), id);
    assert!(live_jobs(&server).is_empty(), "resumed, then destroyed");
    let (code, _, err) = run(v2_spalloc(home.path(), &url).args(["--resume", &id]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("Job {id}: Destroyed")), "{err}");

    // The machine is full, so the next job waits in the queue until SIGTERM.
    let client = Client::builder(&url)
        .credentials(Credentials::password("bob", "bob"))
        .build()
        .unwrap();
    let filler = client.create_job(&CreateJob::boards(3)).unwrap();
    let mut waiting = Running::piped(&mut v2_spalloc(home.path(), &url));
    let deadline = Instant::now() + PATIENCE;
    while !waiting.stderr_text().contains("Waiting in queue") {
        assert!(Instant::now() < deadline, "{}", waiting.stderr_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let queued = live_jobs(&server)
        .into_iter()
        .find(|j| *j != filler.id())
        .expect("the queued job");
    waiting.signal(libc::SIGTERM);
    assert_eq!(waiting.wait_exit(), 4, "{}", waiting.stderr_text());
    let state = legacy_client(&server).get_job_state(queued).unwrap();
    assert_eq!(state.state, JobState::Destroyed);
    assert!(
        state
            .reason
            .as_deref()
            .is_some_and(|r| r.ends_with("Keyboard interrupt.")),
        "{state:?}"
    );
    filler.destroy(None).unwrap();
}

/// A server in a child process (this test binary, serving), on a fixed
/// v2 port and a state file, killed when dropped.
struct ChildServer(Child);

impl ChildServer {
    fn start(state_file: &Path, http_port: u16) -> ChildServer {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "serves_until_killed_when_run_as_the_restart_tests_server",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVE_STATE_FILE, state_file)
            .env(SERVE_HTTP_PORT, http_port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child server");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("SERVING") {
                    let _ = sender.send(());
                }
            }
        });
        receiver
            .recv_timeout(PATIENCE)
            .expect("the child server starts");
        ChildServer(child)
    }

    /// SIGKILL, and wait for it to be gone.
    fn kill9(mut self) {
        self.0.kill().expect("kill -9");
        let _ = self.0.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of the child server process of
/// [`spalloc_c_keeps_its_job_alive_through_a_kill_9_and_restart_of_the_server`]:
/// ignored in normal runs, it serves only when its parent set the state
/// file, and says so on stdout.
#[test]
#[ignore = "the restart test runs this in a child process"]
fn serves_until_killed_when_run_as_the_restart_tests_server() {
    let (Ok(state_file), Ok(port)) = (
        std::env::var(SERVE_STATE_FILE),
        std::env::var(SERVE_HTTP_PORT),
    ) else {
        return;
    };
    let port: u16 = port.parse().expect("port");
    let server = start(config(port, "", Some(Path::new(&state_file))));
    assert_eq!(server.http_addr().map(|a| a.port()), Some(port));
    println!("SERVING");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Waits until `condition` holds, failing after [`PATIENCE`].
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn spalloc_c_keeps_its_job_alive_through_a_kill_9_and_restart_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.sqlite");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/spalloc/");
    let first = ChildServer::start(&state_file, port);

    // The command says it started, then runs until told to finish.
    let started: PathBuf = dir.path().join("started");
    let go: PathBuf = dir.path().join("go");
    let script = format!(
        "echo {{id}} > '{}'; i=0; while [ ! -e '{}' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; echo finished",
        started.display(),
        go.display()
    );
    let mut tool =
        Running::piped(v2_spalloc(dir.path(), &url).args(["--keepalive", "30", "-c", &script]));
    wait_until("the command to start", || {
        std::fs::read_to_string(&started).is_ok_and(|t| t.ends_with('\n'))
    });
    let id: u64 = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    first.kill9();
    let _second = ChildServer::start(&state_file, port);
    let client = Client::builder(&url)
        .credentials(Credentials::password("bob", "bob"))
        .build()
        .unwrap();
    let alice = Client::builder(&url)
        .credentials(Credentials::password("alice", "ecila"))
        .build()
        .unwrap();
    let keepalive_time = || {
        alice
            .job(id)
            .and_then(|j| j.status(false))
            .ok()
            .and_then(|s| s.keep_alive_time)
    };
    // The tool's keepalive thread reaches the restarted server (logging in
    // again, since the server forgot its session): the job's keepalive
    // time moves on from what the state file had.
    let mut restored = None;
    wait_until("the restarted server to answer", || {
        restored = keepalive_time();
        restored.is_some()
    });
    wait_until("a keepalive after the restart", || {
        keepalive_time() != restored
    });
    let status = alice.job(id).unwrap().status(false).unwrap();
    assert_eq!(status.job_state(), JobState::Ready, "{status:?}");
    assert!(client.machines().is_ok());

    std::fs::write(&go, "").unwrap();
    assert_eq!(tool.wait_exit(), 0, "{}", tool.stderr_text());
    assert_eq!(tool.stdout().text(), "finished\n");
    let status = alice.job(id).unwrap().status(false).unwrap();
    assert_eq!(status.job_state(), JobState::Destroyed, "{status:?}");
}

#[test]
fn a_waiting_spalloc_reconnects_to_a_restarted_server_and_goes_on_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.sqlite");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/spalloc/");
    let first = ChildServer::start(&state_file, port);
    let bob = Client::builder(&url)
        .credentials(Credentials::password("bob", "bob"))
        .build()
        .unwrap();
    let filler = bob
        .create_job(&CreateJob::boards(3).keepalive(Duration::from_secs(300)))
        .unwrap();

    let mut tool = Running::piped(v2_spalloc(dir.path(), &url).args([
        "--reconnect-delay",
        "0.2",
        "-c",
        "echo ran {id}",
    ]));
    let stderr = tool.stderr();
    stderr.wait_until("the job to queue", |t| t.contains("Waiting in queue"));
    first.kill9();
    stderr.wait_until("the tool to notice", |t| t.contains("Lost the server"));
    let _second = ChildServer::start(&state_file, port);
    stderr.wait_until("the tool to reconnect", |t| t.contains("Reconnected."));
    filler.destroy(None).unwrap();
    assert_eq!(tool.wait_exit(), 0, "{}", tool.stderr_text());
    let text = tool.stderr_text();
    assert!(
        text.contains("Lost the server (") && text.contains("reconnecting every 0.2 s"),
        "{text}"
    );
    assert!(tool.stdout().text().starts_with("ran "), "{text}");
}

#[test]
fn on_a_terminal_the_v2_waiting_line_is_redrawn_in_place_as_over_legacy() {
    let server = start(config(0, "", None));
    let home = tempfile::tempdir().unwrap();
    let url = url(&server);
    let bob = Client::builder(&url)
        .credentials(Credentials::password("bob", "bob"))
        .build()
        .unwrap();
    let filler = bob.create_job(&CreateJob::boards(3)).unwrap();
    filler.wait_until_ready(Some(PATIENCE)).unwrap();
    let mut command = v2_spalloc(home.path(), &url);
    command.env("NO_COLOR", "1");
    let mut spalloc = Running::on_terminal(&mut command, support::process::OnTerminal::ALL);
    let screen = spalloc.screen();
    // The line is redrawn in place (save, restore, clear), with the clock
    // (but no estimate of the queue: the v2 API shows alice only her own
    // jobs, so one would call the full machine idle).
    let text = screen.wait_until("a redraw of the waiting line", |text| {
        text.contains("\x1b8\x1b[KJob ") && text.contains("elapsed")
    });
    assert!(text.starts_with("\x1b7Job "), "{text:?}");
    assert!(text.contains("Waiting in queue... (0:0"), "{text:?}");
    assert!(!text.contains("in use"), "{text:?}");
    filler.destroy(Some("make room")).unwrap();
    let text = screen.wait_for("<Press enter when done>");
    assert!(text.contains("Ready!\n"), "{text:?}");
    let (waiting, _) = text.split_once("Ready!").expect("Ready!");
    assert!(!waiting.contains('\n'), "one line, redrawn: {waiting:?}");
    spalloc.type_keys(b"\n");
    assert_eq!(spalloc.wait_exit(), 0);
}
