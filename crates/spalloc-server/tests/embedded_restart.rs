//! An embedding program stops a [`RunningServer`] and starts another on the
//! same state file in the same process: the first must have let go of the
//! file (its lock included) by the time `shutdown` returns, and a server that
//! cannot use its state file must say so from `start`, not start and stop.

mod common;

use common::{small_config, Client};
use serde_json::json;
use spalloc_server::RunningServer;
use std::path::PathBuf;

fn state_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-embedded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("state.sqlite")
}

#[test]
fn a_server_restarted_in_the_same_process_on_its_state_file_keeps_its_jobs() {
    let file = state_file("restart");
    let mut config = small_config("", "");
    config.state_file = Some(file.clone());
    let first = RunningServer::start(config.clone()).unwrap();
    let mut c = Client::connect(&first);
    let id = c.create(json!([1]), json!({"keepalive": null}));
    drop(c);
    first.shutdown();

    let second = RunningServer::start(config).unwrap();
    let mut c = Client::connect(&second);
    let listed = c.ok("list_jobs", json!([]), json!({}));
    assert_eq!(listed[0]["job_id"], json!(id), "{listed}");
    second.shutdown();
}

#[test]
fn a_second_embedded_server_on_a_state_file_in_use_fails_to_start() {
    let file = state_file("in-use");
    let mut config = small_config("", "");
    config.state_file = Some(file);
    let first = RunningServer::start(config.clone()).unwrap();
    let refused = RunningServer::start(config);
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("in use"), "{message}");
    first.shutdown();
}
