//! Every tool run as a real process against our server.

mod support;

use support::{bare_tool, mask_csv_path, mask_timestamps, run, Fixture};

/// Creates a job with `spalloc --no-destroy --keepalive -1` and returns its ID.
fn create_job(fixture: &Fixture, extra: &[&str]) -> u64 {
    let (code, out, err) = run(fixture
        .tool("spalloc")
        .args(["--owner", "me", "--no-destroy", "--keepalive", "-1"])
        .args(extra)
        .args(["-c", "echo", "{id}"]));
    assert_eq!(code, 0, "{out}{err}");
    out.trim().parse().expect("job id printed")
}

#[test]
fn spalloc_prints_info_and_destroys_at_exit() {
    let fixture = Fixture::small();
    let (code, out, err) = run(fixture.tool("spalloc").args(["--owner", "me", "3"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        mask_csv_path(&out),
        "     Hostname: 127.0.1.1\n        Width: 16\n       Height: 16\n   Num boards: 3\nAll hostnames: <CSV>\n   Running on: m1\n<Press enter when done>\n"
            .replace("16\n       Height: 16", &height_width_of(&out))
    );
    assert_eq!(
        err,
        "Job 1: Waiting in queue...\nJob 1: Waiting for power on...\nJob 1: Ready!\n".replace(
            "Job 1: Waiting in queue...\n",
            if err.contains("queue") {
                "Job 1: Waiting in queue...\n"
            } else {
                ""
            }
        )
    );
    // Destroyed at exit: no live jobs remain.
    let (code, out, _) = run(&mut fixture.tool("spalloc-ps"));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// The `Width`/`Height` lines as printed (the server decides the shape).
fn height_width_of(out: &str) -> String {
    let width = out
        .lines()
        .find(|l| l.trim_start().starts_with("Width"))
        .unwrap_or("");
    let height = out
        .lines()
        .find(|l| l.trim_start().starts_with("Height"))
        .unwrap_or("");
    format!(
        "{}\n{}",
        width.trim_start_matches(' ').trim_start_matches("Width: "),
        height
    )
}

#[test]
fn spalloc_command_substitutions_and_exit_status() {
    let fixture = Fixture::small();
    let (code, out, err) = run(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "-q",
        "-c",
        "echo",
        "{}",
        "{hostname}",
        "{w}x{h}",
        "{width}x{height}",
        "{id}",
        "oh 'quote",
    ]));
    assert_eq!((code, err.as_str()), (0, ""));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[0], "127.0.1.1");
    assert_eq!(words[1], "127.0.1.1");
    assert_eq!(words[2], words[3]);
    assert_eq!(words[4], "1");
    assert!(out.ends_with("oh 'quote\n"), "{out}");

    // The manual's example: one string, run by the shell, exit status passed on.
    let (code, out, err) = run(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "-q",
        "-c",
        "test {} = {hostname} && cat {ethernet_ips} && exit 7",
    ]));
    assert_eq!(code, 7, "{out}{err}");
    assert!(out.starts_with("x,y,hostname\n0,0,127.0.1."), "{out}");

    // The CSV is private and removed at exit.
    let (code, out, _) = run(fixture.tool("spalloc").args([
        "--owner",
        "me",
        "-q",
        "-c",
        "stat -c %a {ethernet_ips}; echo {ethernet_ips}",
    ]));
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("600"));
    let path = lines.next().unwrap_or_default().to_owned();
    assert!(
        path.contains("spinnaker_ips_") && path.ends_with(".csv"),
        "{path}"
    );
    assert!(!std::path::Path::new(&path).exists());
}

#[test]
fn spalloc_usage_errors_exit_2() {
    let fixture = Fixture::small();
    let (code, _, err) = run(&mut fixture.tool("spalloc"));
    assert_eq!(code, 2);
    assert!(
        err.contains("--owner must be specified (typically your email address)"),
        "{err}"
    );
    let (code, _, err) = run(fixture
        .tool("spalloc")
        .args(["--owner", "me", "1", "2", "3", "4"]));
    assert_eq!(code, 2);
    assert!(err.contains("expected either no arguments"), "{err}");
    let (code, _, err) = run(fixture
        .tool("spalloc")
        .args(["--owner", "me", "-c", "echo", "{nope}"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown substitution {nope}"), "{err}");
    let home = tempfile::tempdir().expect("tmp");
    let (code, _, err) =
        run(bare_tool("spalloc", &home.path().to_path_buf()).args(["--owner", "me"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("--hostname of spalloc server must be specified"),
        "{err}"
    );
}

#[test]
fn spalloc_connection_and_server_errors_exit_6() {
    let fixture = Fixture::small();
    let (code, _, err) = run(
        bare_tool("spalloc", &fixture.home.path().to_path_buf()).args([
            "--owner",
            "me",
            "--hostname",
            "127.0.0.1",
            "--port",
            "1",
        ]),
    );
    assert_eq!(code, 6);
    assert!(err.starts_with("Could not connect to server:"), "{err}");
    // A job no machine can run is destroyed by the server: exit 1.
    let (code, _, err) = run(fixture
        .tool("spalloc")
        .args(["--owner", "me", "-m", "nope"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Job 1: Destroyed: Cancelled: No suitable machines available.\n"),
        "{err}"
    );
    // ...and says why in numbers, worked out from list_machines.
    assert!(
        err.ends_with("Job 1: there is no machine named 'nope'.\n"),
        "{err}"
    );
    let (code, _, err) = run(fixture.tool("spalloc").args(["--owner", "me", "100"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.ends_with("Job 2: m1 has 3 boards; 100 asked.\n"),
        "{err}"
    );
}

#[test]
fn spalloc_resume_and_destroyed_jobs() {
    let fixture = Fixture::small();
    let id = create_job(&fixture, &[]);
    let (code, out, _) = run(fixture.tool("spalloc").args([
        "--resume",
        &id.to_string(),
        "-q",
        "-c",
        "echo",
        "{id}",
    ]));
    assert_eq!((code, out.trim()), (0, id.to_string().as_str()));
    // Resuming destroyed it at exit (no --no-destroy).
    let (code, out, _) = run(fixture.tool("spalloc-job").arg(id.to_string()));
    assert_eq!(code, 0);
    assert!(out.contains("State: destroyed"), "{out}");
    let (code, _, err) = run(fixture.tool("spalloc").args(["--resume", &id.to_string()]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("Job {id}: Destroyed")), "{err}");
}

#[test]
fn spalloc_job_info_ips_power_destroy() {
    let fixture = Fixture::small();
    let id = create_job(&fixture, &["1"]);
    let id_text = id.to_string();

    let (code, out, _) = run(fixture.tool("spalloc-job").args([&id_text]));
    assert_eq!(code, 0);
    let out = mask_timestamps(&out);
    assert!(out.starts_with(&format!("     Job ID: {id}\n      Owner: me\n      State: ready\n Start time: DD/MM/YYYY hh:mm:ss\n  Keepalive: None\n")), "{out}");
    assert!(out.contains(" Owner host: 127.0.0.1\n    Request: Job(1,\n                 machine=None,\n                 max_dead_boards=0,\n"), "{out}");
    assert!(
        out.contains(" Allocation:  ___\n             / . \\\n             \\___/\n"),
        "{out}"
    );
    assert!(out.ends_with("Board power: on\n Running on: m1\n"), "{out}");

    // Lookup by owner.
    let (code, out2, _) = run(fixture.tool("spalloc-job").args(["--owner", "me"]));
    assert_eq!(code, 0);
    assert_eq!(mask_timestamps(&out2), out);

    let (code, out, _) = run(fixture
        .tool("spalloc-job")
        .args([&id_text, "--ethernet-ips"]));
    assert_eq!((code, out.as_str()), (0, "x,y,hostname\n0,0,127.0.1.1\n"));
    let (code, out, _) = run(fixture.tool("spalloc-job").args([&id_text, "-e", "--json"]));
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        report["connections"],
        serde_json::json!([{"x": 0, "y": 0, "hostname": "127.0.1.1"}])
    );

    let (code, _, err) = run(fixture.tool("spalloc-job").args([&id_text, "--power-off"]));
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, out, _) = run(fixture.tool("spalloc-job").args([&id_text]));
    assert_eq!(code, 0);
    assert!(out.contains("Board power: off"), "{out}");
    let (code, _, _) = run(fixture.tool("spalloc-job").args([&id_text, "--reset"]));
    assert_eq!(code, 0);

    let (code, out, _) = run(fixture.tool("spalloc-job").args([&id_text, "--json"]));
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["power"], serde_json::json!(true));
    assert_eq!(report["state"], serde_json::json!("ready"));

    let (code, _, _) = run(fixture.tool("spalloc-job").args([&id_text, "-D"]));
    assert_eq!(code, 0);
    let (code, out, _) = run(fixture.tool("spalloc-job").args([&id_text]));
    assert_eq!(
        (code, out),
        (
            0,
            format!("Job ID: {id}\n State: destroyed\nReason: Destroyed by None\n")
                .replace("Destroyed by None", &reason_of(&fixture, id))
        )
    );

    let (code, _, err) = run(fixture.tool("spalloc-job").args([&id_text, "-p"]));
    assert_eq!(
        (code, err.as_str()),
        (
            8,
            &*format!("Error: Cannot power on job {id} in state destroyed\n")
        )
    );
    let (code, _, err) = run(fixture.tool("spalloc-job").args([&id_text, "-e"]));
    assert_eq!(
        (code, err.as_str()),
        (9, &*format!("Job {id} is queued or does not exist\n"))
    );
    let (code, _, err) = run(fixture.tool("spalloc-job").args(["--owner", "nobody"]));
    assert_eq!((code, err.as_str()), (3, "Owner nobody has no live jobs\n"));
    let (code, _, err) = run(&mut fixture.tool("spalloc-job"));
    assert_eq!(code, 2);
    assert!(err.contains("job ID (or --owner) not specified"), "{err}");
}

/// The reason the server recorded (the tests do not set an owner in a config file).
fn reason_of(fixture: &Fixture, id: u64) -> String {
    let (_, out, _) = run(fixture
        .tool("spalloc-job")
        .args([&id.to_string(), "--json"]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    report["reason"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn spalloc_job_destroy_reason_uses_the_owner() {
    let fixture = Fixture::small();
    let id = create_job(&fixture, &[]).to_string();
    let (code, _, _) = run(fixture
        .tool("spalloc-job")
        .args([&id, "--owner", "boss", "-D"]));
    assert_eq!(code, 0);
    let (_, out, _) = run(fixture.tool("spalloc-job").args([&id]));
    assert!(out.ends_with("Reason: Destroyed by boss\n"), "{out}");
    let id = create_job(&fixture, &[]).to_string();
    let (code, _, _) =
        run(fixture
            .tool("spalloc-job")
            .args([&id, "--destroy", "Your job is taking too long..."]));
    assert_eq!(code, 0);
    let (_, out, _) = run(fixture.tool("spalloc-job").args([&id]));
    assert!(
        out.ends_with("Reason: Your job is taking too long...\n"),
        "{out}"
    );
}

#[test]
fn spalloc_ps_table_filters_and_json() {
    let fixture = Fixture::small();
    let id = create_job(&fixture, &[]);
    let (code, out, _) = run(&mut fixture.tool("spalloc-ps"));
    assert_eq!(code, 0);
    let out = mask_timestamps(&out);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("ID  State  Power  Boards  Machine  Created at           Keepalive  Owner (Host)")
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with(&format!(
            " {id}  ready  on          1  m1       DD/MM/YYYY hh:mm:ss  None       me"
        )),
        "{row:?}"
    );
    let (_, out, _) = run(fixture.tool("spalloc-ps").args(["--owner", "other"]));
    assert_eq!(out.lines().count(), 1);
    let (_, out, _) = run(fixture.tool("spalloc-ps").args(["--machine", "m1"]));
    assert_eq!(out.lines().count(), 2);
    let (_, out, _) = run(fixture.tool("spalloc-ps").args(["--json"]));
    let jobs: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(jobs[0]["job_id"], serde_json::json!(id));
    let (code, _, err) = run(
        bare_tool("spalloc-ps", &fixture.home.path().to_path_buf()).args([
            "-H",
            "127.0.0.1",
            "-P",
            "1",
        ]),
    );
    assert_eq!(code, 1);
    assert!(err.starts_with("Error communicating with server:"), "{err}");
}

#[test]
fn spalloc_machine_summary_map_and_errors() {
    let fixture = Fixture::small();
    let id = create_job(&fixture, &[]);
    let (code, out, _) = run(&mut fixture.tool("spalloc-machine"));
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "Name  Num boards  In-use  Jobs  Tags\nm1             3       1     1  default\n"
        )
    );
    let (code, out, _) = run(fixture.tool("spalloc-machine").arg("m1"));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("  Name: m1\n  Tags: default\nIn-use: 1 of 3\n  Jobs: 1\n\n"),
        "{out}"
    );
    assert!(out.contains(" A "), "{out}");
    assert!(out.ends_with(&format!("\n\nA:{id}\n")), "{out}");
    let (code, out, _) = run(fixture.tool("spalloc-machine").args(["m1", "--detailed"]));
    assert_eq!(code, 0);
    assert!(
        out.ends_with(
            &format!("Key  Job ID  Num boards  Owner (Host)\nA    {id:>6}           1  me\n")
                .replace(&format!("{:>6}", id), &format!("{id:>6}"))
        ) || out.contains("Key  Job ID  Num boards  Owner (Host)\nA"),
        "{out}"
    );
    let (code, _, err) = run(fixture.tool("spalloc-machine").arg("nope"));
    assert_eq!((code, err.as_str()), (6, "No machine 'nope' was found\n"));
    let (code, _, err) = run(fixture.tool("spalloc-machine").arg("-d"));
    assert_eq!(code, 2);
    assert!(
        err.contains("--detailed only works when a specific machine is specified"),
        "{err}"
    );
    let (code, out, _) = run(fixture.tool("spalloc-machine").arg("--json"));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "[{\"name\":\"m1\",\"num_boards\":3,\"in_use\":1,\"jobs\":1,\"tags\":[\"default\"]}]\n"
    );
}

#[test]
fn spalloc_where_is_all_four_queries() {
    let fixture = Fixture::small();
    let id = create_job(&fixture, &[]).to_string();
    let expected_board = "                 Machine: m1\n       Physical location: Cabinet 0, Frame 0, Board 0\n        Board coordinate: (0, 0, 0)\nMachine chip coordinates: (0, 0)\n";
    for query in [
        vec!["--board", "m1", "0", "0", "0"],
        vec!["-l", "m1", "0", "0", "0"],
        vec!["--physical", "m1", "0", "0", "0"],
    ] {
        let (code, out, err) = run(fixture.tool("spalloc-where-is").args(&query));
        assert_eq!(code, 0, "{query:?} {err}");
        assert!(out.starts_with(expected_board), "{query:?}\n{out}");
        assert!(out.contains(&format!("Job using board: {id}\n")), "{out}");
        assert!(!out.contains("Coordinates within board"), "{out}");
    }
    let (code, out, _) = run(fixture
        .tool("spalloc-where-is")
        .args(["--chip", "m1", "1", "2"]));
    assert_eq!(code, 0);
    assert!(out.contains("Coordinates within board: (1, 2)\n"), "{out}");
    let (code, out, _) = run(fixture
        .tool("spalloc-where-is")
        .args(["--job-chip", &id, "1", "2"]));
    assert_eq!(code, 0);
    assert!(out.ends_with("  Coordinates within job: (1, 2)\n"), "{out}");
    let (code, out, err) =
        run(fixture
            .tool("spalloc-where-is")
            .args(["--job-chip", "999", "0", "0"]));
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(err, "No boards at the specified location\n");
    let (code, out, _) =
        run(fixture
            .tool("spalloc-where-is")
            .args(["--job-chip", "999", "0", "0", "--json"]));
    assert_eq!(
        (code, out.as_str()),
        (
            4,
            "{\"error\":\"No boards at the specified location\",\"exit_code\":4}\n"
        )
    );
    let (code, _, err) = run(fixture
        .tool("spalloc-where-is")
        .args(["--board", "m1", "x", "0", "0"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("Error: invalid literal for int() with base 10: 'x'"),
        "{err}"
    );
    let (code, _, _) = run(&mut fixture.tool("spalloc-where-is"));
    assert_eq!(code, 2);
}

#[test]
fn config_file_supplies_defaults() {
    let fixture = Fixture::small();
    let config_dir = fixture.home.path().join("config");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    std::fs::write(
        config_dir.join("spalloc"),
        format!(
            "[spalloc]\nhostname = 127.0.0.1\nport = {}\nowner = cfg-owner\n",
            fixture.port()
        ),
    )
    .expect("write config");
    let home = fixture.home.path().to_path_buf();
    let (code, out, err) =
        run(bare_tool("spalloc", &home).args(["--no-destroy", "-q", "-c", "echo", "{id}"]));
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_owned();
    let (code, out, _) = run(&mut bare_tool("spalloc-job", &home));
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("Job ID: {id}\n")) && out.contains("Owner: cfg-owner\n"),
        "{out}"
    );
    let (code, out, _) = run(bare_tool("spalloc-ps", &home).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("(default: 127.0.0.1)"), "{out}");
    let (code, out, _) = run(&mut bare_tool("spalloc-config", &home));
    assert_eq!(code, 0);
    let search_path = format!(
        "Default search path (lowest-priority first):\n{}/system/spalloc\n{}/config/spalloc\n./.spalloc\n",
        home.display(),
        home.display()
    );
    assert!(out.starts_with(&search_path), "{out}");
    assert!(
        out.contains(&format!(
            "\nFiles:\n  {}/system/spalloc: not found\n  {}/config/spalloc: read\n  ./.spalloc: not found\n",
            home.display(),
            home.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("\nEffective values:\n[spalloc]\nhostname = 127.0.0.1\nowner = cfg-owner\n"),
        "{out}"
    );
    let (code, out, _) = run(bare_tool("spalloc-config", &home).arg("--path-only"));
    assert_eq!((code, out), (0, search_path));
}

#[test]
fn incompatible_server_version_exits_2() {
    // A fake server answering every call with version 7.0.0.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for stream in listener.incoming().flatten() {
            let mut writer = stream.try_clone().expect("clone");
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = line;
                let _ = writer.write_all(b"{\"return\": \"7.0.0\"}\n");
            }
        }
    });
    let home = tempfile::tempdir().expect("tmp");
    let (code, _, err) = run(bare_tool("spalloc-ps", &home.path().to_path_buf()).args([
        "-H",
        "127.0.0.1",
        "-P",
        &port,
    ]));
    assert_eq!(
        (code, err.as_str()),
        (2, "Incompatible server version (7.0.0)\n")
    );
    let (code, _, _) = run(bare_tool("spalloc-ps", &home.path().to_path_buf()).args([
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "--ignore_version",
        "False",
        "--timeout",
        "1",
    ]));
    assert_ne!(code, 2, "--ignore_version with any value skips the check");
}
