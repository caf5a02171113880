//! The waiting line as a user meets it (issue 17 items 2-4, issue 18 item 7),
//! on real processes and pseudo-terminals: `NO_COLOR` keeps the in-place
//! redraw, `TERM=dumb` gets no escape sequences, a narrow window gets a line
//! that fits, a vanished server is reported and given up on after
//! `--server-timeout`, SIGTERM and SIGHUP behave like Ctrl-C, and
//! `--no-destroy` says how to come back to the job.

mod support;

use spalloc::JobState;
use support::process::{OnTerminal, Running};
use support::{run, wait_for_state, Fixture};

/// The live line's redraw: restore the cursor, clear the line.
const REDRAW: &str = "\x1b8\x1b[K";

/// The job number in the first `Job N` of `text`.
fn job_id_in(text: &str) -> u64 {
    let start = text.find("Job ").expect("a `Job N` line") + "Job ".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a job number")
}

/// `spalloc` on a terminal, queued behind a full machine.
fn queued_spalloc(fixture: &Fixture, extra: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = fixture.tool("spalloc");
    command
        .args(["--owner", "me", "--keepalive", "5"])
        .args(extra)
        .arg("1");
    for (key, value) in env {
        command.env(key, value);
    }
    Running::on_terminal(&mut command, OnTerminal::ALL)
}

#[test]
fn no_color_turns_off_the_colours_but_keeps_the_line_updating_in_place() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let filler = fixture.fill_machine(&client);
    let mut spalloc = queued_spalloc(&fixture, &[], &[("NO_COLOR", "1")]);
    let screen = spalloc.screen();
    let text = screen.wait_until("a redraw of the waiting line", |text| {
        text.contains(&format!("{REDRAW}Job ")) && text.contains("Waiting in queue...")
    });
    let id = job_id_in(&text);
    assert!(
        text.starts_with(&format!("\x1b7Job {id}: Waiting in queue... (0:0")),
        "{text:?}"
    );
    client
        .destroy_job(filler, Some("make room"))
        .expect("destroy the filler");
    let text = screen.wait_for("<Press enter when done>");
    assert!(
        text.contains(&format!("{REDRAW}Job {id}: Ready!\n")),
        "{text:?}"
    );
    let (waiting, _) = text.split_once("Ready!").expect("Ready!");
    assert!(!waiting.contains('\n'), "one line, redrawn: {waiting:?}");
    // No colour anywhere: only the save, restore and clear-line sequences.
    let without_control = text.replace("\x1b7", "").replace(REDRAW, "");
    assert!(!without_control.contains('\x1b'), "{text:?}");
    spalloc.type_keys(b"\n");
    assert_eq!(spalloc.wait_exit(), 0);
}

#[test]
fn ps_watch_with_no_color_repaints_in_place_without_colours() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let mut ps = Running::on_terminal(
        fixture
            .tool("spalloc-ps")
            .arg("--watch")
            .env("NO_COLOR", "1"),
        OnTerminal::ALL,
    );
    ps.screen().wait_for("Owner (Host)\n");
    fixture.fill_machine(&client);
    let text = ps.screen().wait_until("a repaint with the job", |text| {
        text.matches("\x1b[2J\x1b[;H").count() >= 2 && text.contains("filler")
    });
    assert!(text.starts_with("\x1b[2J\x1b[;H"), "{text:?}");
    assert!(
        !text.replace("\x1b[2J\x1b[;H", "").contains('\x1b'),
        "{text:?}"
    );
    ps.interrupt();
    assert_eq!(ps.wait_exit(), 0);
}

#[test]
fn term_dumb_gets_plain_lines_and_no_escape_sequences() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let filler = fixture.fill_machine(&client);
    let mut spalloc = queued_spalloc(&fixture, &[], &[("TERM", "dumb")]);
    let text = spalloc.screen().wait_for("Waiting in queue...\n");
    let id = job_id_in(&text);
    client
        .destroy_job(filler, Some("make room"))
        .expect("destroy the filler");
    let text = spalloc.screen().wait_for("<Press enter when done>");
    assert!(
        text.starts_with(&format!("Job {id}: Waiting in queue...\n")),
        "{text:?}"
    );
    assert!(text.contains(&format!("Job {id}: Ready!\n")), "{text:?}");
    assert!(!text.contains('\x1b'), "{text:?}");
    spalloc.type_keys(b"\n");
    assert_eq!(spalloc.wait_exit(), 0);

    let mut ps = Running::on_terminal(
        fixture.tool("spalloc-ps").env("TERM", "dumb"),
        OnTerminal::ALL,
    );
    assert_eq!(ps.wait_exit(), 0);
    let text = ps.screen().wait_for_end();
    assert!(text.starts_with("ID  State"), "{text:?}");
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[test]
fn on_a_narrow_terminal_the_waiting_line_fits_the_width() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let filler = fixture.fill_machine(&client);
    let mut command = fixture.tool("spalloc");
    command.args(["--owner", "me", "1"]);
    let mut spalloc = Running::on_terminal_sized(&mut command, OnTerminal::ALL, 40);
    let text = spalloc
        .screen()
        .wait_until("three redraws", |text| text.matches(REDRAW).count() >= 3);
    for drawing in text.split(REDRAW).skip(1) {
        let visible = drawing
            .replace("\x1b[33m", "")
            .replace("\x1b[2m", "")
            .replace("\x1b[0m", "");
        assert!(visible.chars().count() <= 39, "{visible:?} in {text:?}");
        assert!(!visible.contains('\n'), "{visible:?}");
    }
    assert!(!text.contains('\n'), "no row left behind: {text:?}");
    client
        .destroy_job(filler, Some("make room"))
        .expect("destroy the filler");
    spalloc.screen().wait_for("<Press enter when done>");
    spalloc.type_keys(b"\n");
    assert_eq!(spalloc.wait_exit(), 0);
}

#[test]
fn a_server_killed_while_waiting_is_reported_and_given_up_after_the_server_timeout() {
    let fixture = Fixture::small();
    let port = fixture.port();
    let client = fixture.client();
    fixture.fill_machine(&client);
    let mut spalloc = queued_spalloc(
        &fixture,
        &["--server-timeout", "3", "--reconnect-delay", "0.2"],
        &[],
    );
    let id = job_id_in(&spalloc.screen().wait_for("Waiting in queue..."));
    let Fixture {
        server,
        home: _home,
    } = fixture;
    server.shutdown();
    let reconnecting = format!("Job {id}: Reconnecting to 127.0.0.1:{port}...");
    // The clock keeps running on the reconnecting line.
    let text = spalloc
        .screen()
        .wait_until("two different reconnecting clocks", |text| {
            let clocks: std::collections::BTreeSet<&str> = text
                .split(&reconnecting)
                .skip(1)
                .filter_map(|rest| rest.strip_prefix("\x1b[0m\x1b[2m ("))
                .filter_map(|rest| rest.split([' ', ';']).next())
                .collect();
            clocks.len() >= 2
        });
    assert!(text.contains("; no server for 0:0"), "{text:?}");
    assert_eq!(spalloc.wait_exit(), 5, "{:?}", spalloc.screen().text());
    let text = spalloc.screen().wait_for_end();
    // At least the 3 s asked for (how much more depends on the machine's load).
    let gave_up = format!("{REDRAW}\x1b[31mJob {id}: Gave up after 0:0");
    let (_, after) = text.split_once(&gave_up).expect("the give-up line");
    let seconds: u32 = after[..1].parse().expect("a clock");
    assert!(seconds >= 3, "{text:?}");
    assert!(
        after[1..].starts_with(&format!(" without the server at 127.0.0.1:{port} (")),
        "{text:?}"
    );
    assert!(
        text.ends_with("the job may have been lost with it (--server-timeout)\x1b[0m\n"),
        "{text:?}"
    );
}

#[test]
fn with_debug_and_pipes_the_lost_server_is_said_once_and_each_attempt_logged() {
    let fixture = Fixture::small();
    let client = fixture.client();
    fixture.fill_machine(&client);
    let mut spalloc = Running::piped(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "--debug",
        "--server-timeout",
        "1",
        "--reconnect-delay",
        "0.2",
        "1",
    ]));
    let text = spalloc.stderr().wait_for("Waiting in queue...\n");
    let id = job_id_in(&text);
    let Fixture {
        server,
        home: _home,
    } = fixture;
    server.shutdown();
    assert_eq!(spalloc.wait_exit(), 5);
    let err = spalloc.stderr().wait_for_end();
    assert_eq!(
        err.matches(&format!("Job {id}: Lost the server (")).count(),
        1,
        "{err}"
    );
    assert!(
        err.matches("INFO:spalloc: no answer from 127.0.0.1:")
            .count()
            >= 2,
        "{err}"
    );
    assert!(err.contains(", giving up after 1 s\n"), "{err}");
    assert!(
        err.contains(&format!("Job {id}: Gave up after 0:0")),
        "{err}"
    );
}

/// Runs `spalloc` queued on a terminal, sends `signal` while it waits.
fn signal_while_waiting(signal: libc::c_int) {
    let fixture = Fixture::small();
    let client = fixture.client();
    fixture.fill_machine(&client);
    let mut spalloc = queued_spalloc(&fixture, &[], &[]);
    let id = job_id_in(&spalloc.screen().wait_for("Waiting in queue..."));
    spalloc.signal(signal);
    assert_eq!(spalloc.wait_exit(), 4, "{:?}", spalloc.screen().text());
    let record = client.get_job_state(id).expect("get_job_state");
    assert_eq!(record.state, JobState::Destroyed);
    assert_eq!(
        record.reason.as_deref(),
        Some("Cancelled: Keyboard interrupt.")
    );
}

#[test]
fn sigterm_while_waiting_destroys_the_job_like_ctrl_c() {
    signal_while_waiting(libc::SIGTERM);
}

#[test]
fn sighup_while_waiting_destroys_the_job_like_ctrl_c() {
    signal_while_waiting(libc::SIGHUP);
}

/// Runs `spalloc -c` printing its CSV path, sends `signal` while the command
/// runs; the command is ended, the job destroyed and the CSV removed.
fn signal_while_the_command_runs(signal: libc::c_int) {
    let fixture = Fixture::small();
    let client = fixture.client();
    let mut spalloc = Running::piped(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "1",
        "-c",
        "sh",
        "-c",
        "echo {id} {ethernet_ips}; exec sleep 60",
    ]));
    let out = spalloc.stdout().wait_for("\n");
    let (id, csv) = out.trim().split_once(' ').expect("id and path");
    assert!(std::path::Path::new(csv).exists(), "{csv}");
    spalloc.signal(signal);
    // The command dies of the SIGTERM spalloc sends it: 256 - 15.
    assert_eq!(spalloc.wait_exit(), 241, "{}", spalloc.stderr_text());
    assert!(!std::path::Path::new(csv).exists(), "{csv} left behind");
    let id: u64 = id.parse().expect("job id");
    wait_for_state(&client, id, JobState::Destroyed);
}

#[test]
fn sigterm_while_the_command_runs_ends_it_destroys_the_job_and_removes_the_csv() {
    signal_while_the_command_runs(libc::SIGTERM);
}

#[test]
fn sighup_while_the_command_runs_ends_it_destroys_the_job_and_removes_the_csv() {
    signal_while_the_command_runs(libc::SIGHUP);
}

#[test]
fn no_destroy_says_the_job_still_exists_and_how_to_resume_it() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let (code, out, err) = run(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "--no-destroy",
        "1",
        "-c",
        "echo",
        "{id}",
    ]));
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    assert!(
        err.ends_with(&format!(
            "Job {id} still exists (--no-destroy) until 60.0 s pass without a keepalive: `spalloc --resume {id}` to use it again, `spalloc-job {id} --destroy` to free its boards.\n"
        )),
        "{err}"
    );
    // -q keeps it quiet; Ctrl-C while queued with --no-destroy says it too.
    let (code, _, err) = run(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "-q",
        "--no-destroy",
        "--keepalive",
        "-1",
        "1",
        "-c",
        "true",
    ]));
    assert_eq!((code, err.as_str()), (0, ""));
    // Two of the three boards are kept; take the third so that the next waits.
    let last = fixture.create_job(&client, spalloc::Allocation::Boards(1), "filler");
    wait_for_state(&client, last, JobState::Ready);
    let mut spalloc = queued_spalloc(&fixture, &["--no-destroy"], &[]);
    let queued = job_id_in(&spalloc.screen().wait_for("Waiting in queue..."));
    spalloc.type_keys(b"\x03");
    assert_eq!(spalloc.wait_exit(), 4);
    let text = spalloc.screen().wait_for_end();
    assert!(
        text.contains(&format!(
            "Job {queued} still exists (--no-destroy) until 5.0 s pass without a keepalive: `spalloc --resume {queued}`"
        )),
        "{text:?}"
    );
    assert_eq!(
        client.get_job_state(queued).expect("state").state,
        JobState::Queued
    );
}

#[test]
fn resuming_a_destroyed_job_shows_its_reason() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let id = fixture.create_job(&client, spalloc::Allocation::Boards(1), "me");
    client
        .destroy_job(id, Some("no longer wanted"))
        .expect("destroy");
    let (code, _, err) = run(fixture.tool("spalloc").args(["--resume", &id.to_string()]));
    assert_eq!(
        (code, err.as_str()),
        (1, &*format!("Job {id}: Destroyed: no longer wanted\n"))
    );
}

#[test]
fn a_restarted_server_is_reconnected_to_and_the_wait_goes_on() {
    use spalloc_server::{RunningServer, ServerConfig};
    let state = tempfile::tempdir().expect("tmp");
    // A server on `port` (0: any) that answers; None if it did not start
    // serving. (`RunningServer::shutdown` can return a moment before the old
    // server's state-file lock is released, and a server refused the lock
    // stops at once; so the restart is tried until it answers.)
    let start = |port: u16| -> Option<RunningServer> {
        let mut config = ServerConfig::from_toml_str(support::SMALL_MACHINE).expect("config");
        config.port = port;
        config.state_file = Some(state.path().join("state.sqlite"));
        let server = RunningServer::start(config).ok()?;
        // A real answer: the socket accepts connections before the server
        // has opened its state file.
        let probe = spalloc::ProtocolClient::new("127.0.0.1", server.local_addr().port())
            .with_timeout(Some(std::time::Duration::from_secs(2)));
        probe.connect().ok()?;
        probe.version().ok()?;
        Some(server)
    };
    let start_serving = |port: u16| {
        (0..100)
            .find_map(|_| {
                start(port).or_else(|| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    None
                })
            })
            .expect("the server starts serving")
    };
    let server = start_serving(0);
    let port = server.local_addr().port();
    let client = spalloc::ProtocolClient::new("127.0.0.1", port)
        .with_timeout(Some(std::time::Duration::from_secs(10)));
    client.connect().expect("connect");
    let mut options = spalloc::JobOptions::new("filler");
    options.keepalive = None;
    let filler = client
        .create_job(&spalloc::Allocation::Boards(3), &options)
        .expect("create the filler");
    wait_for_state(&client, filler, JobState::Ready);

    let home = tempfile::tempdir().expect("tmp");
    let mut command = support::bare_tool("spalloc", &home.path().to_path_buf());
    command.args([
        "-H",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "--owner",
        "me",
        "--reconnect-delay",
        "0.2",
        "1",
    ]);
    let mut spalloc = Running::on_terminal(&mut command, OnTerminal::ALL);
    let id = job_id_in(&spalloc.screen().wait_for("Waiting in queue..."));
    server.shutdown();
    spalloc
        .screen()
        .wait_for(&format!("Job {id}: Reconnecting to 127.0.0.1:{port}..."));
    // The same server comes back on the same port with its saved jobs.
    let server = start_serving(port);
    let text = spalloc
        .screen()
        .wait_until("the waiting line again", |text| {
            text.rsplit("Reconnecting to").next().is_some_and(|after| {
                after.contains(&format!("{REDRAW}\x1b[33mJob {id}: Waiting in queue..."))
            })
        });
    assert!(!text.contains('\n'), "still one line: {text:?}");
    client.connect().expect("reconnect");
    client
        .destroy_job(filler, Some("make room"))
        .expect("destroy the filler");
    spalloc.screen().wait_for("<Press enter when done>");
    spalloc.type_keys(b"\n");
    assert_eq!(spalloc.wait_exit(), 0, "{:?}", spalloc.screen().text());
    assert_eq!(
        client.get_job_state(id).expect("state").state,
        JobState::Destroyed
    );
    server.shutdown();
}
