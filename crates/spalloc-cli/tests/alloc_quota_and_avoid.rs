//! `spalloc` as a real process, over both protocols: the server's quota
//! warning printed once while the tool waits for or holds its job, and
//! `--avoid-board` keeping the job off a board (in every form the server
//! takes), with a clear message for a malformed value and for a server
//! that has no avoid-lists.

mod support;

use serde_json::{json, Value};
use spalloc::{Allocation, JobState, ProtocolClient};
use spalloc_server::RunningServer;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::v2::url;
use support::{bare_tool, run, wait_for_state};

/// Our server (machine `m1`: one triad, three boards) with the v2 API and
/// the users alice and bob (group `testers`), and `tail` at the end of its
/// configuration.
fn server_with(tail: &str) -> RunningServer {
    support::v2::start(support::v2::config(0, "", 0.02, tail))
}

/// A client of the server's legacy port.
fn legacy_client(server: &RunningServer) -> ProtocolClient {
    let client = ProtocolClient::new("127.0.0.1", server.local_addr().port())
        .with_timeout(Some(Duration::from_secs(10)));
    client.connect().expect("connect");
    client
}

/// `spalloc` against the server's legacy port, with its own home.
fn legacy_spalloc(server: &RunningServer, home: &PathBuf) -> Command {
    let mut command = bare_tool("spalloc", home);
    let port = server.local_addr().port().to_string();
    command.args(["-H", "127.0.0.1", "-P", &port, "--owner", "ann"]);
    command
}

/// `spalloc` against the server's v2 API as alice.
fn v2_spalloc(server: &RunningServer, home: &PathBuf) -> Command {
    let mut command = bare_tool("spalloc", home);
    command
        .args(["--url", &url(server)])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila");
    command
}

/// How many times `text` holds the quota warning line of a job.
fn warnings_in(text: &str) -> usize {
    text.lines()
        .filter(|line| line.contains(": Quota warning: group "))
        .count()
}

/// The quota tables for a one-board job whose group (`legacy` for legacy
/// jobs, `testers` for alice's) runs out `budget` s after allocation, with
/// a warning from `budget - horizon` s on.
fn quota(budget: f64, horizon: f64) -> String {
    format!(
        "[quota]\nlegacy_group = \"legacy\"\nwarning_seconds = {horizon:?}\n\
         [quota.groups]\nlegacy = {budget:?}\ntesters = {budget:?}\n"
    )
}

/// Runs `spalloc -c 'sleep SECONDS'` and checks that the warning that
/// appears while the command runs (after `Ready!`) is printed exactly once,
/// on stderr, with nothing on stdout.
fn warned_once_while_held(mut spalloc: Command) {
    // Warned from 8 s after allocation (the wait's last read comes well
    // before); out of quota (and destroyed) at 40 s. The command holds the
    // job for 22 s: the warning is read at about 10, 15 and 20 s.
    let (code, out, err) = run(spalloc.args(["-c", "sleep 22"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "", "stdout stays the command's");
    assert_eq!(warnings_in(&err), 1, "{err}");
    let ready = err.find("Ready!").expect("ready line");
    let warned = err.find("Quota warning").expect("warning line");
    assert!(
        ready < warned,
        "the warning came while the job was held: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("Job ") && l.contains(": Quota warning: group ")),
        "{err}"
    );
}

#[test]
fn spalloc_prints_a_quota_warning_that_appears_while_it_holds_the_job_once_over_legacy() {
    let server = server_with(&quota(40.0, 32.0));
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    warned_once_while_held(legacy_spalloc(&server, &home));
}

#[test]
fn spalloc_prints_a_quota_warning_that_appears_while_it_holds_the_job_once_over_v2() {
    let server = server_with(&quota(40.0, 32.0));
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    warned_once_while_held(v2_spalloc(&server, &home));
}

#[test]
fn a_quota_warning_seen_while_waiting_is_not_repeated_while_the_job_is_held() {
    // A budget far from spent, but a warning horizon beyond it: the job is
    // warned from its allocation on, and the warning counts down steadily.
    let server = server_with(&quota(1e9, 1e12));
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    for (protocol, mut spalloc) in [
        ("legacy", legacy_spalloc(&server, &home)),
        ("v2", v2_spalloc(&server, &home)),
    ] {
        // Held for longer than one re-read of the state.
        let (code, out, err) = run(spalloc.args(["-c", "sleep 6"]));
        assert_eq!(code, 0, "{protocol}: {err}");
        assert_eq!(out, "", "{protocol}");
        assert_eq!(warnings_in(&err), 1, "{protocol}: {err}");
        let ready = err.find("Ready!").expect("ready line");
        let warned = err.find("Quota warning").expect("warning line");
        assert!(warned < ready, "{protocol}: warned while waiting: {err}");
    }
}

#[test]
fn the_ready_block_on_stdout_is_unchanged_by_a_quota_warning() {
    let server = server_with(&quota(1e9, 1e12));
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    let (code, out, err) = run(legacy_spalloc(&server, &home).arg("--no-destroy"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(warnings_in(&err), 1, "{err}");
    assert!(!out.contains("Quota"), "{out}");
    assert!(out.contains("Hostname:"), "{out}");
}

/// The boards of a job `spalloc` left behind with `--no-destroy`, whose ID
/// it printed (`-c 'echo {id}'`); the job is destroyed afterwards.
fn boards_of_left_job(
    server: &RunningServer,
    (code, out, err): (i32, String, String),
) -> Vec<[u32; 3]> {
    assert_eq!(code, 0, "{err}");
    let id: u64 = out.trim().parse().expect("job ID");
    let client = legacy_client(server);
    let info = client.get_job_machine_info(id).expect("machine info");
    client.destroy_job(id, Some("checked")).expect("destroy");
    wait_for_state(&client, id, JobState::Destroyed);
    info.boards
        .unwrap_or_else(|| panic!("job {id} has no boards: {err}"))
}

#[test]
fn spalloc_avoid_board_gets_the_other_free_board_over_both_protocols() {
    let server = server_with("");
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    let client = legacy_client(&server);
    // One board of three is taken: two are free.
    let mut options = spalloc::JobOptions::new("filler");
    options.keepalive = None;
    let filler = client
        .create_job(&Allocation::Boards(1), &options)
        .expect("filler");
    wait_for_state(&client, filler, JobState::Ready);
    let held = |command: &mut Command| run(command.args(["--no-destroy", "-c", "echo {id}"]));
    // Which of the two free boards the server gives first.
    let first = boards_of_left_job(&server, held(&mut legacy_spalloc(&server, &home)));
    assert_eq!(first.len(), 1);
    let [x, y, z] = first[0];
    let triad = format!("{x},{y},{z}");
    let physical = client
        .call(
            "where_is",
            vec![],
            json!({"machine": "m1", "x": x, "y": y, "z": z})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .expect("where_is");
    let [c, f, b] = [0, 1, 2].map(|i| physical["physical"][i].as_u64().expect("physical"));
    let physical = format!("{c}:{f}:{b}");
    let address = {
        let taken = client
            .create_job(&Allocation::Board { x, y, z }, &options)
            .expect("the first board");
        wait_for_state(&client, taken, JobState::Ready);
        let info = client.get_job_machine_info(taken).expect("info");
        client.destroy_job(taken, None).expect("destroy");
        wait_for_state(&client, taken, JobState::Destroyed);
        info.connections.expect("connections")[0].1.clone()
    };
    let filler_boards = client
        .get_job_machine_info(filler)
        .expect("filler info")
        .boards
        .expect("filler boards");

    // Each job is checked and destroyed before the next run, which would
    // otherwise wait for its board.
    let check = |what: &str, mut command: Command| {
        let boards = boards_of_left_job(&server, held(&mut command));
        assert_eq!(boards.len(), 1, "{what}");
        assert_ne!(boards[0], first[0], "{what}: the avoided board");
        assert!(!filler_boards.contains(&boards[0]), "{what}: {boards:?}");
    };
    let mut legacy = legacy_spalloc(&server, &home);
    legacy.args(["--avoid-board", &triad]);
    check(&format!("legacy {triad}"), legacy);
    for form in [&triad, &physical, &address] {
        let mut v2 = v2_spalloc(&server, &home);
        v2.args(["--avoid-board", form]);
        check(&format!("v2 {form}"), v2);
    }
}

#[test]
fn a_malformed_or_legacy_unusable_avoid_board_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    let spalloc = || {
        let mut command = bare_tool("spalloc", &home);
        // Nothing listens there: the usage error comes before any connection.
        command.args(["-H", "127.0.0.1", "-P", "9", "--owner", "ann"]);
        command
    };
    for bad in ["1,2", "a,b,c", "0,0,3", "1:2"] {
        let (code, out, err) = run(spalloc().args(["--avoid-board", bad]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert_eq!(out, "");
        assert!(err.contains("--avoid-board"), "{bad}: {err}");
        assert!(
            err.contains("X,Y,Z") || err.contains("0, 1 or 2"),
            "{bad}: {err}"
        );
    }
    for v2_only in ["0:0:1", "127.0.1.9"] {
        let (code, _, err) = run(spalloc().args(["--avoid-board", v2_only]));
        assert_eq!(code, 2, "{v2_only}: {err}");
        assert!(
            err.contains(&format!("--avoid-board {v2_only}: the legacy protocol")),
            "{err}"
        );
    }
}

/// A legacy server that answers `create_job` with an `avoid_boards`
/// keyword as the reference server 1!7.0.0 does: a Python `TypeError`, but
/// only after registering the job, which stays queued in `list_jobs` (its
/// bug B1) until destroyed. Returns its port and the IDs destroyed.
fn server_without_avoid_lists() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u64>>>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let destroyed = Arc::new(Mutex::new(Vec::new()));
    let ghosts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = destroyed.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, ghosts) = (seen.clone(), ghosts.clone());
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let request: Value = serde_json::from_str(&line).unwrap_or_default();
                    let mut ghosts = ghosts.lock().unwrap_or_else(|p| p.into_inner());
                    let reply = match request["command"].as_str().unwrap_or_default() {
                        "version" => json!({"return": "6.0.0"}),
                        "create_job" => {
                            let mut kwargs = request["kwargs"].clone();
                            let owner = kwargs["owner"].clone();
                            if let Some(map) = kwargs.as_object_mut() {
                                map.remove("owner");
                                map.remove("keepalive");
                            }
                            ghosts.push(json!({
                                "job_id": 7, "owner": owner, "start_time": 1.7e9,
                                "keepalive": 60.0, "state": 1, "power": null,
                                "args": request["args"], "kwargs": kwargs,
                                "allocated_machine_name": null, "boards": null,
                                "keepalivehost": "127.0.0.1"
                            }));
                            json!({"exception":
                                "Allocator._alloc_type() got an unexpected keyword argument 'avoid_boards'"})
                        }
                        "list_jobs" => json!({ "return": *ghosts }),
                        "destroy_job" => {
                            if let Some(id) = request["args"][0].as_u64() {
                                seen.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                                ghosts.retain(|g| g["job_id"] != id);
                            }
                            json!({"return": null})
                        }
                        _ => json!({"return": null}),
                    };
                    if writer.write_all(format!("{reply}\n").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, destroyed)
}

#[test]
fn a_server_without_avoid_lists_gets_a_message_saying_so_and_its_ghost_job_destroyed() {
    let (port, destroyed) = server_without_avoid_lists();
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().to_path_buf();
    let (code, out, err) = run(bare_tool("spalloc", &home).args([
        "-H",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "--owner",
        "ann",
        "--avoid-board",
        "1,0,2",
    ]));
    assert_eq!(code, 6, "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("This server does not support --avoid-board"),
        "{err}"
    );
    assert!(
        !err.contains("unexpected keyword"),
        "no raw exception: {err}"
    );
    assert_eq!(
        *destroyed.lock().unwrap_or_else(|p| p.into_inner()),
        vec![7],
        "the job the refused create left behind"
    );
}
