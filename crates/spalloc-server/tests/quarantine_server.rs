//! Failure-aware boards end to end (issue 16, item 3): the real server
//! over real sockets with a simulated machine whose boards fail their
//! power-on checks, reports from both protocols, `spalloc-server board
//! ...` as a real process on the state file, a restart on the same file,
//! and the v2 API's `avoid-boards`.

mod common;
mod http_support;

use common::server_process::ServerProcess;
use common::Client;
use http_support::{Api, API};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const QUEUED: u64 = 1;
const READY: u64 = 3;

/// A 2x1-triad machine whose boards (0,0,1) and (1,0,1) fail their
/// power-on checks; one report takes a board out of service.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05
        quarantine_after_reports = 1
        [[machine]]
        name = "m"
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.02
        fail_power_on = [[0, 0, 1], [1, 0, 1]]
        "#,
    )
    .expect("write config");
    path
}

/// `spalloc-server board ARGS... --config CONFIG`.
fn board_cli(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .arg("board")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("runs")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `MACHINE BOARD` pairs `board out-of-service` lists.
fn listed_out_of_service(config: &Path) -> BTreeSet<String> {
    stdout_of(&board_cli(config, &["out-of-service"]))
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn job_boards(c: &mut Client, id: u64) -> Vec<Value> {
    let info = c.ok("get_job_machine_info", json!([id]), json!({}));
    info["boards"].as_array().cloned().unwrap_or_default()
}

#[test]
fn boards_failing_power_on_are_quarantined_the_job_runs_elsewhere_and_it_all_survives_a_restart() {
    let dir = common::temp_dir("quarantine-restart");
    let config = write_config(&dir);
    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    // Each triad has a failing board: the job hits one, goes back to the
    // queue, hits the other, and then runs on the first triad without its
    // failed board, instead of dying.
    let id = c.create(json!([1, 1]), json!({"keepalive": null}));
    c.wait_state(id, READY);
    let boards = job_boards(&mut c, id);
    assert_eq!(boards.len(), 2, "{boards:?}");
    assert!(!boards.contains(&json!([0, 0, 1])) && !boards.contains(&json!([1, 0, 1])));
    let out: BTreeSet<String> = ["m 0,0,1", "m 1,0,1"].map(String::from).into();
    // Listing works while the server runs.
    assert_eq!(listed_out_of_service(&config), out);

    // A legacy report of one of its boards, by address, takes it out too.
    let info = c.ok("get_job_machine_info", json!([id]), json!({}));
    let address = info["connections"][0][1]
        .as_str()
        .expect("an address")
        .to_owned();
    let reported = c.ok(
        "report_problem",
        json!([address]),
        json!({"x": 1, "y": 2, "description": "chip hangs"}),
    );
    assert_eq!(reported, Value::Null);
    let reports = stdout_of(&board_cli(&config, &["reports"]));
    assert!(reports.contains("chip (1, 2): chip hangs"), "{reports}");
    assert!(reports.contains(" open "), "{reports}");
    let now_out = listed_out_of_service(&config);
    assert_eq!(now_out.len(), 3);
    let reported_board = now_out
        .difference(&out)
        .next()
        .expect("the reported board")
        .clone();
    let [x, y, z]: [u32; 3] = reported_board
        .trim_start_matches("m ")
        .split(',')
        .map(|n| n.parse().expect("a number"))
        .collect::<Vec<u32>>()
        .try_into()
        .expect("three numbers");
    let unknown = c.call("report_problem", json!(["10.99.99.99"]), json!({}));
    assert_eq!(unknown, Err("no board has the address 10.99.99.99".into()));

    // A job asking for a board out of service waits, saying why, even
    // once the job holding it is gone.
    let waiting = c.create(json!([x, y, z]), json!({"keepalive": null}));
    c.ok("destroy_job", json!([id]), json!({}));
    let state = c.state(waiting);
    assert_eq!(state["state"], json!(QUEUED));
    assert!(
        state["queue_reason"]
            .as_str()
            .unwrap_or("")
            .contains("out of service"),
        "{state}"
    );

    // Returning a board needs the server stopped.
    let (xs, ys, zs) = (x.to_string(), y.to_string(), z.to_string());
    let in_service = ["in-service", "m", xs.as_str(), ys.as_str(), zs.as_str()];
    let refused = board_cli(&config, &in_service);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("the server is running"));
    drop(c);
    server.kill9();

    // After a restart: still out of service, still reported, still waiting.
    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    assert_eq!(listed_out_of_service(&config).len(), 3);
    assert_eq!(c.state(waiting)["state"], json!(QUEUED));
    drop(c);
    drop(server);

    let returned = board_cli(&config, &in_service);
    assert!(returned.status.success(), "{returned:?}");
    assert_eq!(listed_out_of_service(&config), out);
    let closed = stdout_of(&board_cli(&config, &["reports", "--open"]));
    assert_eq!(closed.lines().count(), 1, "only the header: {closed}");
    let not_out = board_cli(&config, &in_service);
    assert!(!not_out.status.success());
    // Back in service: the waiting job gets it at the next start.
    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    c.wait_state(waiting, READY);
    assert_eq!(job_boards(&mut c, waiting), [json!([x, y, z])]);
    drop(c);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_admin_takes_a_board_out_from_the_command_line_with_a_reason() {
    let dir = common::temp_dir("quarantine-admin");
    let config = write_config(&dir);
    // The state file exists (with its machines) once the server has run.
    drop(ServerProcess::start(&config, &[]));
    let out = board_cli(
        &config,
        &[
            "out-of-service",
            "m",
            "1",
            "0",
            "2",
            "--reason",
            "fan broken",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let listed = stdout_of(&board_cli(&config, &["out-of-service"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("m ") && l.contains("1,0,2") && l.ends_with("fan broken")),
        "{listed}"
    );
    let again = board_cli(&config, &["out-of-service", "m", "1", "0", "2"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already out of service"));
    let no_board = board_cli(&config, &["out-of-service", "m", "9", "0", "0"]);
    assert!(String::from_utf8_lossy(&no_board.stderr).contains("is not a live board"));
    let no_machine = board_cli(&config, &["in-service", "x", "0", "0", "0"]);
    assert!(String::from_utf8_lossy(&no_machine.stderr).contains("no machine named \"x\""));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_v2_job_avoiding_boards_is_never_given_them_and_its_reports_count() {
    let dir = common::temp_dir("quarantine-v2");
    let state = dir.join("state.sqlite");
    let mut config = http_support::config("");
    config.state_file = Some(state.clone());
    for m in &mut config.machines {
        m.machine.quarantine_after_reports = 1;
    }
    let server = http_support::start(config);
    let alice = Api::new(&server, Some("alice"));
    // A whole triad avoiding one board of triad (0, 0).
    let job = alice.create(json!({
        "dimensions": {"width": 1, "height": 1},
        "machine-name": "test-machine",
        "keepalive-interval": "PT120S",
        "avoid-boards": [{"x": 0, "y": 0, "z": 0}]
    }));
    let ready = alice.wait_for(&job, "READY");
    assert_eq!(
        ready["original-request"]["avoid-boards"][0]["x"],
        json!(0),
        "{ready}"
    );
    let machine = alice.get(&format!("{job}/machine")).json();
    let boards: Vec<Value> = machine["boards"].as_array().cloned().unwrap_or_default();
    assert_eq!(boards.len(), 3, "{machine}");
    for b in &boards {
        assert_eq!(b[0], json!(1), "{machine}");
    }
    let unknown = alice.post_json(
        &format!("{API}/jobs"),
        &json!({"num-boards": 1, "keepalive-interval": "PT120S", "machine-name": "test-machine",
                "avoid-boards": [{"cabinet": 9, "frame": 9, "board": 9}]}),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(unknown.body.contains("avoid-boards"), "{}", unknown.body);

    // Its report of a board counts: one report takes it out here.
    let report = alice.post_json(
        &format!("{job}/report-issue"),
        &json!({"issue": "it smokes", "boards": [{"machine": "test-machine", "x": 1, "y": 0, "z": 2}]}),
    );
    assert_eq!(report.json(), json!({"action": "report noted"}));
    let listed = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .args(["board", "out-of-service", "--state"])
        .arg(&state)
        .output()
        .expect("runs");
    let listed = stdout_of(&listed);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("test-machine") && l.contains("1,0,2")),
        "{listed}"
    );
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
