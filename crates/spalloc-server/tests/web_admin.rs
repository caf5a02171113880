//! The administrators' pages and the job page's state history over real
//! sockets, with plain form posts (no JavaScript), as a browser without
//! scripts would use them.

mod http_support;
mod web_support;

use http_support::{config, start, Api};
use serde_json::json;
use spalloc_server::accounts::Role;
use web_support::{browser, csrf_of, gauge, log_in, page, post_form, scrape};

const BOARDS: &str = "/spalloc/system/admin/boards";
const USERS: &str = "/spalloc/system/admin/users";
const CREATE_USER: &str = "/spalloc/system/admin/create-user";
const MAP: &str = "/spalloc/system/machine_info/test-machine";

fn base(server: &spalloc_server::RunningServer) -> String {
    format!("http://{}", server.http_addr().expect("http"))
}

/// An admin page's CSRF token, as the browser finds it in the form.
fn form_csrf(base: &str, cookie: &str, path: &str) -> String {
    let (status, body) = page(base, cookie, path);
    assert_eq!(status, 200, "{body}");
    csrf_of(&body)
}

/// The `spalloc_boards_out_of_service` gauge of the test machine, scraped now.
fn boards_out_of_service(base: &str) -> f64 {
    gauge(
        &scrape(base),
        "spalloc_boards_out_of_service",
        ("machine", "test-machine"),
    )
}

/// The boards form's fields setting board (1, 0, 2) of the test machine
/// in or out of service.
fn board_1_0_2<'a>(csrf: &'a str, in_service: &'a str) -> [(&'a str, &'a str); 6] {
    [
        ("_csrf", csrf),
        ("in_service", in_service),
        ("machine", "test-machine"),
        ("x", "1"),
        ("y", "0"),
        ("z", "2"),
    ]
}

#[test]
fn an_admin_takes_a_board_out_of_service_and_back_and_the_map_and_metrics_follow() {
    let server = start(config(""));
    let base = base(&server);
    let root = log_in(&base, "root");
    let csrf = form_csrf(&base, &root, BOARDS);

    let (status, _, body) = post_form(&base, &root, BOARDS, &board_1_0_2(&csrf, "false"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("taken out of service"), "{body}");
    assert!(body.contains(r#"data-board="1,0,2""#), "listed: {body}");
    let (_, map) = page(&base, &root, MAP);
    assert_eq!(map.matches(r#"class="board out-of-service""#).count(), 1);
    assert!(map.contains(r#"<span id="out-of-service">1</span>"#));
    assert_eq!(boards_out_of_service(&base), 1.0);

    let (status, _, body) = post_form(&base, &root, BOARDS, &board_1_0_2(&csrf, "true"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("returned to service"), "{body}");
    let (_, map) = page(&base, &root, MAP);
    assert_eq!(map.matches(r#"class="board out-of-service""#).count(), 0);
    assert_eq!(boards_out_of_service(&base), 0.0);
}

#[test]
fn a_board_can_be_named_by_its_cabinet_frame_and_slot_and_bad_boards_change_nothing() {
    let server = start(config(""));
    let base = base(&server);
    let root = log_in(&base, "root");
    let csrf = form_csrf(&base, &root, BOARDS);
    let take_out = |fields: &[(&str, &str)]| {
        let mut all = vec![
            ("_csrf", csrf.as_str()),
            ("in_service", "false"),
            ("machine", "test-machine"),
        ];
        all.extend_from_slice(fields);
        post_form(&base, &root, BOARDS, &all)
    };
    let (status, _, body) = take_out(&[("cabinet", "0"), ("frame", "0"), ("board", "0")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("taken out of service"), "{body}");
    let (status, _, body) = take_out(&[("x", "9"), ("y", "9"), ("z", "0")]);
    assert_eq!(status, 400);
    assert!(body.contains("Nothing changed"), "{body}");
    let (status, _, _) = take_out(&[("x", "one"), ("y", "0"), ("z", "0")]);
    assert_eq!(status, 400);
    let (status, _, _) = take_out(&[("y", "0")]);
    assert_eq!(status, 400);
    assert_eq!(boards_out_of_service(&base), 1.0);
}

#[test]
fn a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let server = start(config(""));
    let base = base(&server);
    let root = log_in(&base, "root");
    let fields = [
        ("in_service", "false"),
        ("machine", "test-machine"),
        ("x", "0"),
        ("y", "0"),
        ("z", "0"),
    ];
    let (status, _, _) = post_form(&base, &root, BOARDS, &fields);
    assert_eq!(status, 403);
    let mut forged = vec![("_csrf", "not-the-token")];
    forged.extend_from_slice(&fields);
    let (status, _, _) = post_form(&base, &root, BOARDS, &forged);
    assert_eq!(status, 403);
    assert_eq!(boards_out_of_service(&base), 0.0);
}

#[test]
fn users_and_readers_get_the_forbidden_page_and_a_browser_without_a_session_is_sent_to_log_in() {
    let server = start(config(""));
    let base = base(&server);
    for path in [
        "/spalloc/system/admin/",
        BOARDS,
        "/spalloc/system/admin/reports",
        USERS,
        CREATE_USER,
    ] {
        for user in ["alice", "rita"] {
            let cookie = log_in(&base, user);
            let (status, body) = page(&base, &cookie, path);
            assert_eq!(status, 403, "{user} {path}");
            assert!(body.contains("Administrators only"), "{body}");
            assert!(!body.contains("admin-link"), "no admin link for {user}");
        }
        let r = browser().get(format!("{base}{path}")).send().expect("get");
        assert_eq!(r.status().as_u16(), 303, "{path}");
    }
    // A user's own valid CSRF token does not make their post an admin's.
    let alice = log_in(&base, "alice");
    let (_, jobs) = page(&base, &alice, "/spalloc/system/list_jobs");
    let csrf = csrf_of(&jobs);
    let (status, _, _) = post_form(
        &base,
        &alice,
        BOARDS,
        &[
            ("_csrf", &csrf),
            ("in_service", "false"),
            ("machine", "test-machine"),
            ("x", "0"),
            ("y", "0"),
            ("z", "0"),
        ],
    );
    assert_eq!(status, 403);
    let root = log_in(&base, "root");
    let (_, machines) = page(&base, &root, "/spalloc/system/list_machines");
    assert!(machines.contains("admin-link"));
}

#[test]
fn an_admin_adds_a_user_who_logs_in_then_changes_their_role_and_disables_them() {
    let server = start(config(""));
    let base = base(&server);
    let root = log_in(&base, "root");
    let csrf = form_csrf(&base, &root, CREATE_USER);
    let (status, location, body) = post_form(
        &base,
        &root,
        CREATE_USER,
        &[
            ("_csrf", &csrf),
            ("name", "carol"),
            ("password", "a long enough password"),
            ("role", "reader"),
        ],
    );
    assert_eq!(status, 303, "{body}");
    assert_eq!(location.as_deref(), Some(USERS));
    let (_, users) = page(&base, &root, USERS);
    assert!(users.contains(r#"data-user="carol""#), "{users}");
    let carol = web_support::try_log_in(&base, "carol", "a long enough password");
    assert!(carol.is_some(), "the new user can log in");

    let (status, _, again) = post_form(
        &base,
        &root,
        CREATE_USER,
        &[
            ("_csrf", &csrf),
            ("name", "carol"),
            ("password", "another password"),
            ("role", "user"),
        ],
    );
    assert_eq!(status, 409);
    assert!(again.contains("already exists"), "{again}");

    let change = |fields: &[(&str, &str)]| {
        let mut all = vec![("_csrf", csrf.as_str()), ("name", "carol")];
        all.extend_from_slice(fields);
        post_form(&base, &root, USERS, &all)
    };
    let (status, _, body) = change(&[("action", "role"), ("role", "user")]);
    assert_eq!(status, 200, "{body}");
    let now = spalloc_server::clock::now() as i64;
    let info = server
        .accounts()
        .user("carol", now)
        .expect("read")
        .expect("carol exists");
    assert_eq!(info.identity.role, Role::User);

    let (status, _, _) = change(&[("action", "disable")]);
    assert_eq!(status, 200);
    assert!(web_support::try_log_in(&base, "carol", "a long enough password").is_none());
    let (status, _, _) = change(&[("action", "enable")]);
    assert_eq!(status, 200);
    assert!(web_support::try_log_in(&base, "carol", "a long enough password").is_some());
    let (status, _, _) = change(&[("action", "explode")]);
    assert_eq!(status, 400);
}

#[test]
fn an_admin_cannot_disable_or_demote_themselves_from_the_page() {
    let server = start(config(""));
    let base = base(&server);
    let root = log_in(&base, "root");
    let csrf = form_csrf(&base, &root, USERS);
    for fields in [
        [("action", "disable"), ("role", "")],
        [("action", "role"), ("role", "reader")],
    ] {
        let mut all = vec![("_csrf", csrf.as_str()), ("name", "root")];
        all.extend_from_slice(&fields);
        let (status, _, body) = post_form(&base, &root, USERS, &all);
        assert_eq!(status, 400, "{body}");
    }
    let now = spalloc_server::clock::now() as i64;
    let info = server
        .accounts()
        .user("root", now)
        .expect("read")
        .expect("root exists");
    assert_eq!(info.identity.role, Role::Admin);
    assert!(!info.disabled);
}

#[test]
fn board_reports_are_listed_with_their_board_reporter_job_and_text() {
    let server = start(config(""));
    let base = base(&server);
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT1M"}),
    );
    alice.wait_for(&job, "READY");
    let report = alice.post_json(
        &format!("{job}/report-issue"),
        &json!({"issue": "it <smokes>", "boards": [{"machine": "test-machine", "chip": {"x": 0, "y": 0}}]}),
    );
    assert_eq!(report.status, 200, "{}", report.body);
    let id = job.trim_end_matches('/').rsplit('/').next().expect("id");

    let root = log_in(&base, "root");
    let (status, reports) = page(&base, &root, "/spalloc/system/admin/reports");
    assert_eq!(status, 200);
    assert!(reports.contains("it &lt;smokes&gt;"), "escaped: {reports}");
    assert!(reports.contains("alice"));
    assert!(reports.contains(&format!("/spalloc/system/job_info/{id}")));
    assert!(reports.contains("(0, 0, 0)"));
    let m = scrape(&base);
    assert_eq!(
        gauge(&m, "spalloc_board_reports", ("machine", "test-machine")),
        1.0
    );
    let _ = alice.delete(&job);
}

#[test]
fn a_jobs_page_shows_when_it_was_queued_powered_ready_and_destroyed_with_the_reason() {
    let server = start(config(""));
    let base = base(&server);
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT1M"}),
    );
    alice.wait_for(&job, "READY");
    let id = job.trim_end_matches('/').rsplit('/').next().expect("id");
    let cookie = log_in(&base, "alice");
    let path = format!("/spalloc/system/job_info/{id}");
    let (_, live) = page(&base, &cookie, &path);
    for state in ["queued", "power", "ready"] {
        assert!(
            live.contains(&format!(r#"data-state="{state}""#)),
            "{state}: {live}"
        );
    }
    let m = scrape(&base);
    assert!(histogram_count_plain(&m, "spalloc_job_wait_seconds") >= 1.0);

    let gone = alice.delete(&format!("{job}/?reason=all+done"));
    assert_eq!(gone.status, 204);
    let (_, dead) = page(&base, &cookie, &path);
    assert!(dead.contains("gone"), "{dead}");
    assert!(dead.contains(r#"data-state="destroyed""#), "{dead}");
    assert!(dead.contains("all done"), "{dead}");
    let history = dead.split(r#"id="history""#).nth(1).expect("history");
    let order: Vec<usize> = ["queued", "ready", "destroyed"]
        .iter()
        .filter_map(|s| history.find(&format!(r#"data-state="{s}""#)))
        .collect();
    assert_eq!(order.len(), 3);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "oldest first");
}

#[test]
fn a_jobs_history_survives_a_restart_of_a_server_with_a_state_file() {
    let dir = std::env::temp_dir().join(format!("spalloc-web-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cfg = config("");
    cfg.state_file = Some(dir.join("state.sqlite"));
    let id = {
        let server = start(cfg.clone());
        let alice = Api::new(&server, Some("alice"));
        let job = alice.create(
            json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT5M"}),
        );
        alice.wait_for(&job, "READY");
        job.trim_end_matches('/')
            .rsplit('/')
            .next()
            .expect("id")
            .to_owned()
    };
    let server = start(cfg);
    let base = base(&server);
    let cookie = log_in(&base, "alice");
    let (_, after) = page(&base, &cookie, &format!("/spalloc/system/job_info/{id}"));
    assert!(after.contains(r#"data-state="queued""#), "{after}");
    assert!(after.contains(r#"data-state="ready""#), "{after}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A histogram's count without labels.
fn histogram_count_plain(scrape: &prometheus_parse::Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count),
            _ => None,
        })
        .unwrap_or(0.0)
}
