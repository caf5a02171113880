//! `--watch` over the v2 protocol, as real processes against our server:
//! `spalloc-job`, `spalloc-ps` and `spalloc-machine` show a new snapshot
//! when the job or the job list changes (by long-polls), in the same
//! shapes as over the legacy protocol, and end as they do there (a
//! destroyed job ends `spalloc-job --watch`; SIGINT ends the others with
//! status 0).

mod support;

use spalloc::v2::{Client, CreateJob, Credentials};
use spalloc_server::RunningServer;
use std::process::Command;
use support::bare_tool;
use support::process::Running;
use support::v2::url;

/// A server with both ports and the users alice and bob.
fn server() -> RunningServer {
    support::v2::start(support::v2::config(0, "", 0.05, ""))
}

fn client(server: &RunningServer) -> Client {
    Client::builder(url(server))
        .credentials(Credentials::password("alice", "ecila"))
        .build()
        .expect("client")
}

/// `tool` over v2 as alice; `legacy`: over the legacy port instead.
fn tool(server: &RunningServer, home: &tempfile::TempDir, name: &str, legacy: bool) -> Command {
    let mut command = bare_tool(name, &home.path().to_path_buf());
    if legacy {
        command.args(["--hostname", "127.0.0.1", "--port"]);
        command.arg(server.local_addr().port().to_string());
    } else {
        command
            .args(["--url", &url(server)])
            .env("SPALLOC_USER", "alice")
            .env("SPALLOC_PASSWORD", "ecila");
    }
    command
}

/// The JSON lines printed so far.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn spalloc_job_watch_over_v2_shows_each_change_and_ends_when_the_job_is_destroyed() {
    let server = server();
    let home = tempfile::tempdir().unwrap();
    let job = client(&server).create_job(&CreateJob::boards(1)).unwrap();
    job.wait_until_ready(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let id = job.id().to_string();
    let mut watch =
        Running::piped(tool(&server, &home, "spalloc-job", false).args(["--watch", "--json", &id]));
    let first = watch.stdout().wait_until("the job, ready", |t| {
        json_lines(t).iter().any(|j| j["state"] == "ready")
    });
    // The same shape as the legacy tool's line for the same job.
    let (_, legacy, err) =
        support::run(tool(&server, &home, "spalloc-job", true).args(["--json", &id]));
    let legacy: serde_json::Value = serde_json::from_str(&legacy).expect(&err);
    let keys = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(&json_lines(&first)[0]), keys(&legacy));

    job.destroy(Some("watched to the end")).unwrap();
    assert_eq!(watch.wait_exit(), 0, "{}", watch.stderr_text());
    let lines = json_lines(&watch.stdout().wait_for_end());
    let last = lines.last().expect("a last line");
    assert_eq!(last["state"], "destroyed", "{lines:?}");
    assert!(
        last["reason"]
            .as_str()
            .is_some_and(|r| r.contains("watched to the end")),
        "{last}"
    );
}

#[test]
fn spalloc_ps_and_machine_watch_over_v2_show_a_new_job_and_end_on_sigint() {
    let server = server();
    let home = tempfile::tempdir().unwrap();
    let mut ps = Running::piped(tool(&server, &home, "spalloc-ps", false).args(["--watch"]));
    let mut machine = Running::piped(
        tool(&server, &home, "spalloc-machine", false).args(["--watch", "--json", "m1"]),
    );
    ps.stdout().wait_for("Owner (Host)\n");
    machine.stdout().wait_for("\n");

    let job = client(&server).create_job(&CreateJob::boards(1)).unwrap();
    let id = job.id().to_string();
    let row = format!(" {id}  ready  on ");
    ps.stdout()
        .wait_until("a table with the job ready", |t| t.contains(&row));
    machine
        .stdout()
        .wait_until("the machine with the job", |t| {
            json_lines(t)
                .iter()
                .any(|m| m["jobs"].to_string().contains(&format!("\"job_id\":{id}")))
        });

    ps.interrupt();
    machine.interrupt();
    assert_eq!(ps.wait_exit(), 0, "{}", ps.stderr_text());
    assert_eq!(machine.wait_exit(), 0, "{}", machine.stderr_text());
    let text = ps.stdout().wait_for_end();
    assert!(
        text.ends_with("\n\n"),
        "a blank line after the last snapshot: {text:?}"
    );
    assert!(!text.contains('\x1b'), "no escapes in a pipe: {text:?}");
    job.destroy(None).unwrap();
}
