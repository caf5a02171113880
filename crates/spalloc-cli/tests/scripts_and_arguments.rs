//! What scripts and typing mistakes meet (issue 17 items 3, 5 and 6), on
//! real processes: negative numbers, `--keepalive 1.5`, config warnings,
//! `spalloc-config`, `--help` everywhere, the one `--json` shape per tool
//! with errors as JSON, `spalloc-job` of an unknown job, and the queue
//! position and reason of a server that sends them.

mod support;

use serde_json::{json, Value};
use spalloc::{Allocation, JobState};
use support::process::{OnTerminal, Running};
use support::{bare_tool, run, wait_for_state, Fixture};

fn parse(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn negative_numbers_get_the_reference_servers_words_and_no_job() {
    let fixture = Fixture::small();
    let client = fixture.client();
    for (args, message) in [
        (
            vec!["-1"],
            "Cannot get negative- or zero-sized allocations.",
        ),
        (
            vec!["2", "-1"],
            "Cannot get negative- or zero-sized allocations.",
        ),
        (
            vec!["0", "0", "-1"],
            "Board coordinates cannot be negative.",
        ),
        (
            vec!["--min-ratio", "-1"],
            "Aspect ratio cannot be negative.",
        ),
    ] {
        let (code, _, err) = run(fixture.tool("spalloc").args(["--owner", "me"]).args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("-- -1"), "no clap tip: {err}");
    }
    assert_eq!(client.list_jobs().expect("list_jobs"), vec![]);
}

#[test]
fn a_fractional_keepalive_is_accepted_and_sent() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let (code, out, err) = run(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "--keepalive",
        "1.5",
        "--no-destroy",
        "-q",
        "1",
        "-c",
        "echo",
        "{id}",
    ]));
    assert_eq!(code, 0, "{err}");
    let id: u64 = out.trim().parse().expect("id");
    let jobs = client.list_jobs().expect("list_jobs");
    let job = jobs.iter().find(|j| j.job_id == id).expect("listed");
    assert_eq!(job.keepalive, Some(1.5));
}

#[test]
fn unknown_keys_and_misspelled_sections_are_warned_of_with_their_file() {
    let fixture = Fixture::small();
    let home = fixture.home.path().to_path_buf();
    let config_dir = home.join("config");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let file = config_dir.join("spalloc");
    std::fs::write(
        &file,
        format!(
            "[spalloc]\nhostname = 127.0.0.1\nport = {}\nownr = me\n[Spalloc]\nowner = me\n",
            fixture.port()
        ),
    )
    .expect("write config");
    let (code, out, err) = run(&mut bare_tool("spalloc-ps", &home));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ID  State"), "{out}");
    let name = file.display();
    assert_eq!(
        err,
        format!(
            "warning: {name}: section [Spalloc] is ignored: only [spalloc] is read (did you mean [spalloc]?)\n\
             warning: {name}: unknown key `ownr` in [spalloc] is ignored (did you mean `owner`?)\n"
        )
    );
    let (code, out, _) = run(&mut bare_tool("spalloc-config", &home));
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "\nWarnings:\n  {name}: section [Spalloc] is ignored"
        )),
        "{out}"
    );
    assert!(out.contains("\nserver_timeout = 3600.0\n"), "{out}");
}

#[test]
fn every_tool_has_a_help_that_exits_0() {
    let home = tempfile::tempdir().expect("tmp");
    let home = home.path().to_path_buf();
    for tool in [
        "spalloc",
        "spalloc-job",
        "spalloc-ps",
        "spalloc-machine",
        "spalloc-where-is",
        "spalloc-config",
    ] {
        let (code, out, err) = run(bare_tool(tool, &home).arg("--help"));
        assert_eq!(code, 0, "{tool}: {err}");
        assert!(out.contains("Usage:"), "{tool}: {out}");
    }
    let (code, out, _) = run(bare_tool("spalloc", &home).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("--server-timeout <SECONDS>"), "{out}");
    assert!(out.contains("(default: 3600.0)"), "{out}");
}

#[test]
fn spalloc_job_json_has_one_shape_whether_live_destroyed_or_unknown() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let live = fixture.create_job(&client, Allocation::Boards(1), "me");
    wait_for_state(&client, live, JobState::Ready);
    let gone = fixture.create_job(&client, Allocation::Boards(1), "me");
    client.destroy_job(gone, Some("done")).expect("destroy");
    let json_of = |id: u64| {
        let (code, out, _) = run(fixture
            .tool("spalloc-job")
            .args([&id.to_string(), "--json"]));
        (code, parse(&out))
    };
    let (code, live_json) = json_of(live);
    assert_eq!(code, 0);
    let (code, gone_json) = json_of(gone);
    assert_eq!(code, 0);
    let (code, unknown_json) = json_of(9999);
    assert_eq!(code, 10, "an unknown job exits 10");
    assert_eq!(keys(&live_json), keys(&gone_json));
    assert_eq!(keys(&live_json), keys(&unknown_json));
    assert_eq!(
        (&live_json["state"], &live_json["state_id"]),
        (&json!("ready"), &json!(3))
    );
    assert!(
        live_json["start_time_iso"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{live_json}"
    );
    assert_eq!(live_json["owner"], json!("me"));
    assert_eq!(live_json["width"], json!(8));
    assert_eq!(
        (&gone_json["state"], &gone_json["reason"]),
        (&json!("destroyed"), &json!("done"))
    );
    assert_eq!(
        (&unknown_json["state"], &unknown_json["state_id"]),
        (&json!("unknown"), &json!(0))
    );
    // The text form of an unknown job exits 10 too (the reference exits 0).
    let (code, out, _) = run(fixture.tool("spalloc-job").arg("9999"));
    assert_eq!(
        (code, out.as_str()),
        (10, "Job ID: 9999\n State: unknown\n")
    );
    // After an action, --json shows the job as it now is.
    let (code, out, _) = run(fixture.tool("spalloc-job").args([
        &live.to_string(),
        "--destroy",
        "by script",
        "--json",
    ]));
    assert_eq!(code, 0);
    assert_eq!(parse(&out)["reason"], json!("by script"));
}

#[test]
fn json_errors_go_to_stdout_as_json_with_a_non_zero_exit() {
    let home = tempfile::tempdir().expect("tmp");
    let home = home.path().to_path_buf();
    for tool in ["spalloc-ps", "spalloc-machine", "spalloc-job"] {
        let mut command = bare_tool(tool, &home);
        command.args(["-H", "127.0.0.1", "-P", "1", "--json"]);
        if tool == "spalloc-job" {
            command.arg("7");
        }
        let (code, out, err) = run(&mut command);
        assert_eq!(code, 1, "{tool}: {err}");
        let error = parse(&out);
        assert_eq!(keys(&error), vec!["error", "exit_code"], "{tool}: {out}");
        assert_eq!(error["exit_code"], json!(1));
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Error communicating with server:")),
            "{out}"
        );
    }
    let fixture = Fixture::small();
    let (code, out, _) = run(fixture.tool("spalloc-machine").args(["nope", "--json"]));
    assert_eq!(
        (code, parse(&out)),
        (
            6,
            json!({"error": "No machine 'nope' was found", "exit_code": 6})
        )
    );
}

#[test]
fn ps_json_lists_jobs_in_spalloc_jobs_shape() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let id = fixture.create_job(&client, Allocation::Boards(1), "me");
    wait_for_state(&client, id, JobState::Ready);
    let (code, out, _) = run(fixture.tool("spalloc-ps").arg("--json"));
    assert_eq!(code, 0);
    let jobs = parse(&out);
    let (_, job_out, _) = run(fixture
        .tool("spalloc-job")
        .args([&id.to_string(), "--json"]));
    assert_eq!(keys(&jobs[0]), keys(&parse(&job_out)));
    assert_eq!(
        (&jobs[0]["job_id"], &jobs[0]["state"], &jobs[0]["machine"]),
        (&json!(id), &json!("ready"), &json!("m1"))
    );
}

#[test]
fn watching_a_job_with_json_stops_with_its_reason_once_destroyed() {
    let fixture = Fixture::small();
    let client = fixture.client();
    let id = fixture.create_job(&client, Allocation::Boards(1), "me");
    wait_for_state(&client, id, JobState::Ready);
    let mut watch =
        Running::piped(
            fixture
                .tool("spalloc-job")
                .args([&id.to_string(), "--watch", "--json"]),
        );
    watch.stdout().wait_for("\"state\":\"ready\"");
    client
        .destroy_job(id, Some("watched out"))
        .expect("destroy");
    assert_eq!(watch.wait_exit(), 0);
    let out = watch.stdout().wait_for_end();
    let last = out.lines().last().expect("a line");
    let last = parse(last);
    assert_eq!(
        (&last["state"], &last["reason"]),
        (&json!("destroyed"), &json!("watched out"))
    );
}

/// A server that answers with the queue extension (in `get_job_state`, and
/// in `list_jobs`, where `spalloc-ps` looks for it): job 42 queued, second in
/// its queue, waiting for boards.
fn fake_queueing_server() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let request: Value = serde_json::from_str(&line).unwrap_or_default();
                    let reply = match request["command"].as_str().unwrap_or_default() {
                        "version" => json!("6.0.0"),
                        "create_job" => json!(42),
                        "get_job_state" => json!({
                            "state": 1, "power": null, "keepalive": 60.0, "reason": null,
                            "start_time": 1.7e9, "keepalivehost": null,
                            "queue_position": 2,
                            "queue_reason": "waiting for 3 free boards; 20 of 24 in use"
                        }),
                        "list_jobs" => json!([{
                            "job_id": 42, "owner": "me", "start_time": 1.7e9, "keepalive": 60.0,
                            "state": 1, "power": null, "args": [3], "kwargs": {},
                            "allocated_machine_name": null, "boards": null, "keepalivehost": null,
                            "queue_position": 2,
                            "queue_reason": "waiting for 3 free boards; 20 of 24 in use"
                        }]),
                        "get_job_machine_info" => json!({
                            "width": null, "height": null, "connections": null,
                            "machine_name": null, "boards": null
                        }),
                        _ => Value::Null,
                    };
                    let text = format!("{}\n", json!({ "return": reply }));
                    if writer.write_all(text.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn the_servers_queue_position_and_reason_are_shown_where_the_job_is_seen() {
    let port = fake_queueing_server().to_string();
    let home = tempfile::tempdir().expect("tmp");
    let home = home.path().to_path_buf();
    let server = ["-H", "127.0.0.1", "-P", port.as_str()];
    let reason = "1 queued job ahead: waiting for 3 free boards; 20 of 24 in use";

    let mut command = bare_tool("spalloc", &home);
    command.args(server).args(["--owner", "me", "3"]);
    let mut spalloc = Running::on_terminal_sized(&mut command, OnTerminal::ALL, 200);
    spalloc.screen().wait_for(&format!(
        "Job 42: Waiting in queue...\x1b[0m\x1b[2m (0:00 elapsed, {reason})"
    ));
    spalloc.interrupt();
    assert_eq!(spalloc.wait_exit(), 4);
    // On 80 columns the place goes and the reason stays.
    let mut command = bare_tool("spalloc", &home);
    command.args(server).args(["--owner", "me", "3"]);
    let mut spalloc = Running::on_terminal(&mut command, OnTerminal::ALL);
    spalloc.screen().wait_for(
        "Job 42: Waiting in queue...\x1b[0m\x1b[2m (0:00, waiting for 3 free boards; 20 of 24 in use)",
    );
    spalloc.interrupt();
    assert_eq!(spalloc.wait_exit(), 4);

    let (code, out, _) = run(bare_tool("spalloc-job", &home).args(server).arg("42"));
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("\n     State: queued\n     Queue: {reason}\n")),
        "{out}"
    );
    let (code, out, _) = run(bare_tool("spalloc-ps", &home).args(server));
    assert_eq!(code, 0);
    assert!(out.ends_with(&format!("\nJob 42: {reason}\n")), "{out}");
    let (code, out, _) = run(bare_tool("spalloc-ps", &home).args(server).arg("--json"));
    assert_eq!(code, 0);
    let jobs = parse(&out);
    assert_eq!(
        (&jobs[0]["queue_position"], &jobs[0]["queue_reason"]),
        (
            &json!(2),
            &json!("waiting for 3 free boards; 20 of 24 in use")
        )
    );
}
