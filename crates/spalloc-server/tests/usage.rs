//! Usage and quotas over real sockets: `GET /usage` (who may see whose),
//! the legacy `list_usage`, quota refusals on both ports, the quota
//! warning in both job states, the destruction of a job whose group runs
//! out, and the history surviving a `kill -9` and restart.

mod common;
mod http_support;

use common::server_process::ServerProcess;
use common::Client;
use http_support::{config, start, Api, API};
use serde_json::{json, Value};
use spalloc_server::core::usage::QuotaSettings;
use std::time::{Duration, Instant};

const DESTROYED: u64 = 4;

fn one_board() -> Value {
    json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT120S"})
}

/// A quota for the test accounts' group `testers`, which legacy jobs are
/// charged to as well.
fn quota(board_seconds: f64, warning_seconds: f64) -> QuotaSettings {
    QuotaSettings {
        groups: [("testers".to_owned(), board_seconds)].into(),
        legacy_group: Some("testers".into()),
        warning_seconds,
    }
}

/// Polls `ready` every 10 ms for at most 20 s (a bound, not a timing claim).
fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_user_sees_their_own_usage_and_only_an_administrator_sees_anyone_elses() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let bob = Api::new(&server, Some("bob"));
    let root = Api::new(&server, Some("root"));
    let first = alice.post_json(&format!("{API}/jobs"), &one_board());
    assert_eq!(first.status, 201, "{}", first.body);
    let first_url = first.location.clone().expect("Location");
    assert_eq!(alice.delete(&first_url).status, 204);
    let second = alice.post_json(&format!("{API}/jobs"), &one_board());
    assert_eq!(second.status, 201);
    let mut legacy = common::Client::connect(&server);
    legacy.create(json!([1]), json!({"owner": "alice"}));

    let mine = alice.get(&format!("{API}/usage")).json();
    assert_eq!(mine["user"], "alice");
    assert_eq!(
        mine["matched"], 2,
        "her two v2 jobs, not the legacy one: {mine}"
    );
    let jobs = mine["jobs"].as_array().expect("jobs");
    assert_eq!(jobs[0]["running"], true, "newest first: {mine}");
    assert_eq!(jobs[1]["running"], false);
    assert!(jobs[1]["finish-time"].is_string());
    assert_eq!(jobs[1]["group"], "testers", "her only group");
    assert!(jobs[1]["board-seconds"].as_f64().is_some_and(|s| s >= 0.0));
    assert_eq!(mine["groups"][0]["name"], "testers");
    assert_eq!(mine["groups"][0]["quota"], Value::Null, "unlimited");

    assert_eq!(bob.get(&format!("{API}/usage")).json()["matched"], 0);
    assert_eq!(bob.get(&format!("{API}/usage?user=alice")).status, 403);
    assert_eq!(bob.get(&format!("{API}/usage?all=true")).status, 403);
    let hers = root.get(&format!("{API}/usage?user=alice")).json();
    assert_eq!(
        hers["matched"], 3,
        "an administrator also sees her legacy job"
    );
    let page = root.get(&format!("{API}/usage?all=true&limit=1"));
    assert!(page.link.as_ref().is_some_and(|l| l.contains("start=1")));
    assert_eq!(page.json()["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(alice.get(&format!("{API}/usage?since=x")).status, 400);

    let listed = legacy.ok("list_usage", json!([]), json!({"owner": "alice"}));
    assert_eq!(listed["matched"], 3, "{listed}");
    assert!(listed["jobs"][0]["board_seconds"].is_number());
    let doc = Api::new(&server, None)
        .get("/spalloc/srv/openapi.json")
        .json();
    assert!(
        doc["paths"]["/spalloc/usage"]["get"].is_object(),
        "documented"
    );
}

#[test]
fn a_create_charged_to_a_spent_group_is_refused_on_both_ports() {
    let mut cfg = config("");
    cfg.quota = quota(0.0, 60.0);
    let server = start(cfg);
    let alice = Api::new(&server, Some("alice"));
    let refused = alice.post_json(&format!("{API}/jobs"), &one_board());
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("out of quota"), "{}", refused.body);
    let asked = alice.post_json(
        &format!("{API}/jobs"),
        &json!({"num-boards": 1, "machine-name": "test-machine",
                "keepalive-interval": "PT120S", "group": "testers"}),
    );
    assert!(
        asked.body.contains("group testers has used 0 of its 0"),
        "{}",
        asked.body
    );
    let other = alice.post_json(
        &format!("{API}/jobs"),
        &json!({"num-boards": 1, "machine-name": "test-machine",
                "keepalive-interval": "PT120S", "group": "strangers"}),
    );
    assert_eq!(other.status, 400);
    assert!(other.body.contains("not a member"), "{}", other.body);
    let mut legacy = Client::connect(&server);
    let e = legacy
        .call("create_job", json!([1]), json!({"owner": "someone"}))
        .expect_err("refused");
    assert!(e.contains("out of quota"), "{e}");
    assert_eq!(legacy.ok("list_jobs", json!([]), json!({})), json!([]));
}

#[test]
fn a_running_job_carries_the_quota_warning_in_both_job_states() {
    let mut cfg = config("");
    // A budget far from spent, but a warning horizon beyond it.
    cfg.quota = quota(1e9, 1e12);
    let server = start(cfg);
    let alice = Api::new(&server, Some("alice"));
    let created = alice.post_json(&format!("{API}/jobs"), &one_board());
    let url = created.location.clone().expect("Location");
    let id: u64 = created.json()["job-id"].as_u64().expect("id");
    let mut legacy = Client::connect(&server);
    let state = legacy.wait_state(id, 3);
    assert!(
        state["quota_warning"]
            .as_str()
            .is_some_and(|w| w.contains("group testers")),
        "{state}"
    );
    assert!(state["quota_seconds_left"]
        .as_f64()
        .is_some_and(|s| s > 0.0));
    let v2 = alice.get(&url).json();
    assert!(
        v2["quota-warning"]["seconds-left"].as_f64().is_some(),
        "{v2}"
    );
    let listed = legacy.ok("list_jobs", json!([]), json!({}));
    assert!(listed[0]["quota_warning"].is_string(), "{listed}");
}

#[test]
fn a_job_whose_group_runs_out_is_destroyed_with_a_reason_naming_the_quota() {
    let mut cfg = config("");
    cfg.quota = quota(0.2, 60.0);
    let server = start(cfg);
    let mut legacy = Client::connect(&server);
    let id = legacy.create(json!([1]), json!({"owner": "someone", "keepalive": null}));
    let mut last = Value::Null;
    eventually("the job is destroyed", || {
        last = legacy.state(id);
        last["state"] == json!(DESTROYED)
    });
    let reason = last["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Quota exceeded"), "{last}");
    assert!(reason.contains("group testers"), "{last}");
    let usage = legacy.ok("list_usage", json!([]), json!({}));
    assert!(
        usage["total_board_seconds"]
            .as_f64()
            .is_some_and(|s| s >= 0.2),
        "{usage}"
    );
    assert_eq!(usage["groups"][0]["remaining"], 0.0);
}

#[test]
fn the_usage_history_survives_kill_9_and_outlives_the_retired_reasons() {
    let dir = std::env::temp_dir().join(format!("spalloc-usage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05
        max_retired_jobs = 1
        [[machine]]
        name = "m"
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.02
        "#,
    )
    .expect("write config");
    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = c.create(json!([1]), json!({"owner": "ann"}));
        c.wait_state(id, 3);
        c.ok("destroy_job", json!([id]), json!({}));
        ids.push(id);
    }
    let running = c.create(json!([1]), json!({"owner": "ann"}));
    let before = c.ok("list_usage", json!([]), json!({"owner": "ann"}));
    assert_eq!(before["matched"], 4);
    server.kill9();

    let server = ServerProcess::start(&config, &[]);
    let mut c = server.client();
    let after = c.ok("list_usage", json!([]), json!({"owner": "ann"}));
    assert_eq!(after["matched"], 4, "{after}");
    let finished: Vec<&Value> = after["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["finish_time"].is_number())
        .collect();
    assert_eq!(finished.len(), 3);
    for (row_after, row_before) in finished
        .iter()
        .zip(before["jobs"].as_array().expect("jobs").iter().skip(1))
    {
        assert_eq!(
            *row_after, row_before,
            "a finished job's usage is kept as it was"
        );
    }
    assert_eq!(after["jobs"][0]["job_id"], running);
    assert!(after["jobs"][0]["finish_time"].is_null(), "still running");
    let forgotten = c.state(ids[0]);
    assert_eq!(
        forgotten["reason"],
        Value::Null,
        "its reason was pruned: {forgotten}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
