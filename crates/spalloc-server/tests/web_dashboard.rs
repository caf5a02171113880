//! The dashboard pages and `/metrics` over real sockets: a server with an
//! `[http]` listener on port 0, a browser-like client that logs in with the
//! form, and the metrics read with a Prometheus text-format parser.

mod http_support;
mod web_support;

use http_support::{config, start, Api, API};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use web_support::{browser, gauge, histogram_count, log_in, page, scrape};

#[test]
fn metrics_count_a_ready_jobs_boards_and_the_requests_that_made_it() {
    let server = start(config(""));
    let base = format!("http://{}", server.http_addr().expect("http"));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT1M"}),
    );
    alice.wait_for(&job, "READY");
    let mut legacy = TcpStream::connect(server.legacy_addr().expect("legacy")).expect("connect");
    legacy
        .write_all(b"{\"command\": \"list_machines\", \"args\": [], \"kwargs\": {}}\n")
        .expect("send");
    let mut reply = String::new();
    BufReader::new(&legacy)
        .read_line(&mut reply)
        .expect("reply");

    let m = scrape(&base);
    let machine = ("machine", "test-machine");
    assert_eq!(gauge(&m, "spalloc_boards", machine), 6.0);
    assert_eq!(gauge(&m, "spalloc_boards_in_use", machine), 1.0);
    assert_eq!(gauge(&m, "spalloc_boards_dead", machine), 0.0);
    assert_eq!(gauge(&m, "spalloc_jobs", ("state", "ready")), 1.0);
    assert_eq!(gauge(&m, "spalloc_jobs", ("state", "queued")), 0.0);
    let connections = m
        .samples
        .iter()
        .find(|s| s.metric == "spalloc_legacy_connections")
        .map(|s| s.value.clone());
    assert_eq!(connections, Some(prometheus_parse::Value::Gauge(1.0)));
    // The scrape's own connection is open while it is answered.
    let http_connections = m
        .samples
        .iter()
        .find(|s| s.metric == "spalloc_http_connections")
        .map(|s| s.value.clone());
    assert!(
        matches!(http_connections, Some(prometheus_parse::Value::Gauge(n)) if n >= 1.0),
        "open HTTP connections: {http_connections:?}"
    );
    assert!(
        histogram_count(
            &m,
            "spalloc_http_request_seconds",
            ("endpoint", "/spalloc/srv/spalloc/jobs")
        ) >= 1.0
    );
    assert!(
        histogram_count(
            &m,
            "spalloc_legacy_request_seconds",
            ("command", "list_machines")
        ) >= 1.0
    );
    // Powering the job on was one simulated BMP request that succeeded.
    let bmp = histogram_count(&m, "spalloc_bmp_request_seconds", ("outcome", "ok"));
    assert!(bmp >= 1.0, "no BMP request counted");
    let _ = alice.delete(&job);
}

#[test]
fn pages_send_a_browser_without_a_session_to_the_log_in_form_but_the_api_answers_401() {
    let server = start(config(""));
    let base = format!("http://{}", server.http_addr().expect("http"));
    for path in [
        "/spalloc/system/list_machines",
        "/spalloc/system/machine_info/test-machine",
        "/spalloc/system/list_jobs",
        "/spalloc/system/job_info/1",
    ] {
        let r = browser().get(format!("{base}{path}")).send().expect("get");
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/spalloc/system/login.html")
        );
    }
    let api = browser()
        .get(format!("{base}{API}/jobs"))
        .send()
        .expect("get");
    assert_eq!(api.status().as_u16(), 401);
}

#[test]
fn a_job_shows_on_the_map_and_only_its_owner_gets_its_buttons() {
    let server = start(config(""));
    let base = format!("http://{}", server.http_addr().expect("http"));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT1M"}),
    );
    alice.wait_for(&job, "READY");
    let id = job.trim_end_matches('/').rsplit('/').next().expect("id");

    let cookie = log_in(&base, "alice");
    let (status, machines) = page(&base, &cookie, "/spalloc/system/list_machines");
    assert_eq!(status, 200);
    assert!(machines.contains("test-machine"));
    assert!(
        machines.contains(r#"<td class="in-use">1</td>"#),
        "{machines}"
    );

    let (_, map) = page(&base, &cookie, "/spalloc/system/machine_info/test-machine");
    assert!(map.contains("<svg"));
    assert_eq!(map.matches(r#"class="board""#).count(), 6);
    assert_eq!(map.matches(&format!(r#"data-job="{id}""#)).count(), 1);

    let (_, jobs) = page(&base, &cookie, "/spalloc/system/list_jobs?mine=1");
    assert!(jobs.contains(&format!(r#"data-job="{id}""#)));

    let (_, mine) = page(&base, &cookie, &format!("/spalloc/system/job_info/{id}"));
    assert!(mine.contains(r#"id="destroy""#));
    let bob = log_in(&base, "bob");
    let (_, theirs) = page(&base, &bob, &format!("/spalloc/system/job_info/{id}"));
    assert!(theirs.contains("alice"));
    assert!(!theirs.contains(r#"id="destroy""#));
    assert!(mine.contains(r#"id="request""#));
    assert!(!theirs.contains(r#"id="request""#));
    let (_, bobs) = page(&base, &bob, "/spalloc/system/list_jobs?mine=1");
    assert!(!bobs.contains(&format!(r#"data-job="{id}""#)));
}

#[test]
fn the_change_poll_answers_a_new_revision_once_a_job_is_created() {
    let server = start(config(""));
    let base = format!("http://{}", server.http_addr().expect("http"));
    let cookie = log_in(&base, "alice");
    let (_, first) = page(&base, &cookie, "/spalloc/system/changes");
    let waiter = {
        let base = base.clone();
        let cookie = cookie.clone();
        let first = first.clone();
        std::thread::spawn(move || {
            page(
                &base,
                &cookie,
                &format!("/spalloc/system/changes?since={first}"),
            )
        })
    };
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT1M"}),
    );
    let (status, next) = waiter.join().expect("waiter");
    assert_eq!(status, 200);
    assert_ne!(next, first);
    let _ = alice.delete(&job);
}

#[test]
fn metrics_count_the_commits_and_the_appliers_rounds_of_a_server_with_a_state_file() {
    let dir = std::env::temp_dir().join(format!("spalloc-web-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cfg = config("");
    cfg.state_file = Some(dir.join("state.sqlite"));
    let server = start(cfg);
    let base = format!("http://{}", server.http_addr().expect("http"));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT1M"}),
    );
    let m = scrape(&base);
    let commits = histogram_count(&m, "spalloc_store_commit_seconds", ("outcome", "ok"));
    assert!(commits >= 1.0, "no commit counted");
    // The applier writes the change journal into the tables about every
    // 20 ms: wait (boundedly) for its first round to be counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let m = loop {
        let m = scrape(&base);
        if histogram_count(&m, "spalloc_store_apply_seconds", ("outcome", "ok")) >= 1.0 {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no applier round counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        m.samples
            .iter()
            .any(|s| s.metric == "spalloc_store_journal_waiting"),
        "the journal's backlog is reported"
    );
    let _ = alice.delete(&job);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
