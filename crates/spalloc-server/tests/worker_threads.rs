//! `--worker-threads N`: the server runs its front ends on as many tokio
//! workers as asked (one unless told otherwise), serves clients on them, and
//! refuses a count it cannot use before starting anything.

mod common;

use common::server_process::{write_config, ServerProcess};
use serde_json::json;
use std::process::Command;

/// How many of `pid`'s threads are tokio workers (named "tokio-rt-worker"
/// by the tokio in Cargo.lock; no blocking-pool thread runs in these tests,
/// which use no password, DNS or `synchronous = "full"`).
fn tokio_workers(pid: u32) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "tokio-rt-worker")
        .count()
}

/// Starts the server with `extra`, checks it runs `expected` workers, and
/// that a client's job is created and answered on them.
fn serves_on_workers(name: &str, extra: &[&str], expected: usize) {
    let dir = common::temp_dir(&format!("workers-{name}"));
    let config = write_config(&dir);
    let mut args = vec!["--no-state"];
    args.extend_from_slice(extra);
    let server = ServerProcess::start(&config, &args);
    let mut client = server.client();
    let id = client.create(json!([1]), json!({"owner": "workers"}));
    let state = client.state(id);
    assert!(state["state"].is_u64(), "get_job_state answered: {state}");
    assert_eq!(tokio_workers(server.child.id()), expected);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_server_runs_on_one_worker_thread_unless_told_otherwise() {
    serves_on_workers("default", &[], 1);
}

#[test]
fn worker_threads_runs_the_server_on_as_many_workers_as_asked() {
    serves_on_workers("three", &["--worker-threads", "3"], 3);
}

#[test]
fn zero_worker_threads_is_refused_with_the_range_it_takes() {
    let out = Command::new(env!("CARGO_BIN_EXE_spalloc-server"))
        .args(["--no-state", "--worker-threads", "0"])
        .output()
        .expect("run spalloc-server");
    assert_eq!(out.status.code(), Some(2), "a usage error exits with 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--worker-threads") && stderr.contains("1..=1024"),
        "the error names the option and its range: {stderr}"
    );
}
