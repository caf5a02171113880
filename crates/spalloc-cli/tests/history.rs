//! `spalloc-ps --history` as a real process over both protocols: finished
//! and running jobs with their board-seconds and the totals; over v2 a user
//! sees only their own jobs. And `spalloc-job` showing a running job's
//! quota warning over both.

mod support;

use serde_json::Value;
use spalloc::v2::{Client, CreateJob, Credentials, Job};
use spalloc::{Allocation, JobOptions, ProtocolClient};
use spalloc_server::RunningServer;
use std::time::Duration;
use support::v2::url;
use support::{bare_tool, run};

/// A server with both ports and the users alice and bob.
fn server() -> RunningServer {
    server_with("")
}

/// [`server`] with more tables at the end of its configuration.
fn server_with(tail: &str) -> RunningServer {
    support::v2::start(support::v2::config(0, "", 0.02, tail))
}

/// A one-board job of alice's over v2, once it is ready.
fn alices_ready_board(server: &RunningServer) -> Job {
    let alice = Client::builder(url(server))
        .credentials(Credentials::password("alice", "ecila"))
        .build()
        .expect("client");
    let job = alice.create_job(&CreateJob::boards(1)).expect("create");
    job.wait_until_ready(Some(Duration::from_secs(60)))
        .expect("ready");
    job
}

#[test]
fn spalloc_ps_history_lists_finished_jobs_with_board_seconds_over_both_protocols() {
    let server = server();
    let job = alices_ready_board(&server);
    let v2_id = job.id();
    job.destroy(Some("finished")).expect("destroy");
    let legacy = ProtocolClient::new("127.0.0.1", server.local_addr().port());
    let legacy_id = legacy
        .create_job(&Allocation::Boards(1), &JobOptions::new("ann"))
        .expect("legacy create");
    let port = server.local_addr().port().to_string();
    let home = tempfile::tempdir().expect("temp dir");
    let path = home.path().to_path_buf();

    let (code, out, err) = run(bare_tool("spalloc-ps", &path).args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &port,
        "--history",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["matched"], 2, "{report}");
    assert_eq!(report["jobs"][0]["job_id"], legacy_id, "newest first");
    assert_eq!(report["jobs"][0]["finish_time"], Value::Null, "running");
    assert_eq!(report["jobs"][1]["job_id"], v2_id);
    assert_eq!(report["jobs"][1]["reason"], "finished");
    assert_eq!(report["jobs"][1]["group"], "testers");
    assert!(report["total_board_seconds"].as_f64().is_some());

    let (code, text, err) = run(bare_tool("spalloc-ps", &path).args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &port,
        "--history",
        "--owner",
        "ann",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("Board-seconds"), "{text}");
    assert!(text.contains("running"), "{text}");
    assert!(text.contains("over 1 jobs"), "{text}");

    // Over v2 alice sees her own job only, in the same JSON shape.
    let (code, out, err) = run(bare_tool("spalloc-ps", &path)
        .args(["--url", &url(&server), "--history", "--json"])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_eq!(code, 0, "{err}");
    let mine: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(mine["matched"], 1, "{mine}");
    assert_eq!(mine["jobs"][0]["job_id"], v2_id);
    assert_eq!(
        mine["jobs"][0]["board_seconds"],
        report["jobs"][1]["board_seconds"]
    );
    assert_eq!(mine["groups"][0]["group"], "testers");

    // Somebody else's usage is for administrators only.
    let (code, _, err) = run(bare_tool("spalloc-ps", &path)
        .args(["--url", &url(&server), "--history", "--owner", "bob"])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_ne!(code, 0);
    assert!(
        err.contains("403") || err.contains("administrators"),
        "{err}"
    );
}

#[test]
fn spalloc_job_shows_the_quota_warning_of_a_running_job_over_both_protocols() {
    // A budget far from spent, but a warning horizon beyond it.
    let server = server_with("[quota]\nwarning_seconds = 1e12\n[quota.groups]\ntesters = 1e9");
    let job = alices_ready_board(&server);
    let id = job.id().to_string();
    let home = tempfile::tempdir().expect("temp dir");
    let path = home.path().to_path_buf();
    let port = server.local_addr().port().to_string();
    let (code, legacy, err) = run(bare_tool("spalloc-job", &path).args([
        "--hostname",
        "127.0.0.1",
        "--port",
        &port,
        &id,
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        legacy.contains("Quota warning: group testers has"),
        "{legacy}"
    );
    let (code, v2, err) = run(bare_tool("spalloc-job", &path)
        .args(["--url", &url(&server), &id])
        .env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "ecila"));
    assert_eq!(code, 0, "{err}");
    assert!(v2.contains("Quota warning: group testers has"), "{v2}");
}
