//! The v2 REST API over real sockets: every user-facing endpoint, the
//! habits of SpiNNMan's client (trailing slashes, `//`, `wait=False`,
//! `text/plain; charset=UTF-8` keepalives), visibility rules, and one set
//! of jobs shared with the legacy port.

mod common;
mod http_support;

use http_support::{config, start, Api, API};
use serde_json::{json, Value};

fn one_board(extra: Value) -> Value {
    let mut body =
        json!({"num-boards": 1, "machine-name": "test-machine", "keepalive-interval": "PT120S"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    body
}

#[test]
fn the_service_description_links_to_jobs_and_machines() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let a = alice.get(&format!("{API}/"));
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/json");
    let d = a.json();
    let base = format!("{}{API}", alice.base);
    assert_eq!(d["jobs-ref"], format!("{base}/jobs"));
    assert_eq!(d["machines-ref"], format!("{base}/machines"));
    for key in ["major-version", "minor-version", "revision"] {
        assert!(d["version"][key].is_u64(), "{d}");
    }
    // The same without the trailing slash, and through a TLS proxy.
    assert_eq!(alice.get(API).json(), d);
    let proxied = alice
        .agent
        .get(&format!("{base}/"))
        .set("Authorization", "Basic YWxpY2U6ZWNpbGE=")
        .set("X-Forwarded-Proto", "https")
        .set("X-Forwarded-Host", "spalloc.example")
        .call()
        .expect("200")
        .into_string()
        .expect("body");
    let proxied: Value = serde_json::from_str(&proxied).expect("JSON");
    assert_eq!(
        proxied["jobs-ref"],
        "https://spalloc.example/spalloc/srv/spalloc/jobs"
    );
}

#[test]
fn without_credentials_every_api_call_is_401_and_never_a_redirect() {
    let server = start(config(""));
    let anonymous = Api::new(&server, None);
    for path in ["/", "/machines", "/jobs", "/jobs/1/", "/jobs//1/"] {
        let a = anonymous.get(&format!("{API}{path}"));
        assert_eq!(a.status, 401, "{path}");
        assert!(a.content_type.starts_with("text/plain"), "{path}");
    }
    let mut wrong = Api::new(&server, None);
    wrong.user = Some("mallory".into());
    assert_eq!(wrong.get(API).status, 401);
    let mut basic = Api::new(&server, Some("alice"));
    basic.basic = true;
    assert_eq!(basic.get(API).status, 200, "HTTP Basic works too");
}

#[test]
fn machines_are_listed_described_and_searched_four_ways() {
    let server = start(config(""));
    let rita = Api::new(&server, Some("rita"));
    let list = rita.get(&format!("{API}/machines/")).json();
    let m = &list["machines"][0];
    assert_eq!(m["name"], "test-machine");
    assert_eq!(m["width"], 2);
    assert_eq!(m["height"], 1);
    assert_eq!(m["dead-boards"], json!([]));
    let uri = m["uri"].as_str().expect("uri");
    let one = rita.get(uri).json();
    assert_eq!(one["down-links"], json!([]));
    for (key, query) in [
        ("lookup-by-logical-board", "?x=1&y=0&z=2"),
        ("lookup-by-physical-board", "?cabinet=0&frame=0&board=5"),
        ("lookup-by-chip", "?x=12&y=4"),
        ("lookup-by-address", "?address=127.0.1.41"),
    ] {
        let url = format!("{}{query}", one[key].as_str().expect("lookup link"));
        let a = rita.get(&url);
        assert_eq!(a.status, 200, "{key}: {}", a.body);
        let w = a.json();
        assert_eq!(w["machine"], "test-machine", "{key}");
        assert!(w["physical-board-coordinates"].is_array(), "{key}: {w}");
        assert!(w.get("job-id").is_none(), "{key}: no job holds it");
    }
    assert_eq!(rita.get(&format!("{uri}/chip?x=1000&y=0")).status, 400);
    assert_eq!(
        rita.get(&format!("{uri}/board-ip?address=10.9.9.9")).status,
        404
    );
    assert_eq!(rita.get(&format!("{API}/machines/nope")).status, 404);
}

#[test]
fn a_job_lives_its_whole_life_through_the_api() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let created = alice.post_json(&format!("{API}/jobs/"), &one_board(json!({})));
    assert_eq!(created.status, 201, "{}", created.body);
    let job = created.location.clone().expect("Location");
    let body = created.json();
    assert_eq!(body["job-ref"], job);
    let id = body["job-id"].as_u64().expect("job-id");
    assert!(job.ends_with(&format!("/jobs/{id}")));

    // SpiNNMan's keepalive thread: at once, text/plain with a charset.
    let ka = alice.send(
        "PUT",
        &format!("{job}/keepalive"),
        "text/plain; charset=UTF-8",
        b"alive",
    );
    assert_eq!((ka.status, ka.body.as_str()), (200, "ok"));
    assert!(ka.content_type.starts_with("text/plain"));

    let first = alice.get(&format!("{job}/?wait=False")).json();
    assert!(["QUEUED", "POWER", "READY"].contains(&first["state"].as_str().unwrap_or("")));
    let ready = alice.wait_for(&job, "READY");
    assert_eq!(ready["owner"], "alice");
    assert_eq!(ready["original-request"]["num-boards"], 1);
    assert_eq!(ready["original-request"]["owner"], "alice");
    assert_eq!(ready["keepalive-ref"], format!("{job}/keepalive"));
    assert!(ready["keep-alive-time"].is_string());

    let machine = alice.get(&format!("{job}/machine"));
    assert_eq!(machine.status, 200, "{}", machine.body);
    let m = machine.json();
    assert_eq!(m["connections"][0][0], json!([0, 0]));
    assert!(m["connections"][0][1].is_string());
    assert_eq!(m["depth"], 1);
    let chip = alice.get(&format!("{job}/chip?x=0&y=0")).json();
    assert_eq!(chip["job-id"], id);
    assert_eq!(chip["job-chip"], json!([0, 0]));
    assert_eq!(
        chip["physical-board-coordinates"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(alice.get(&format!("{job}/chip?x=200&y=0")).status, 204);

    assert_eq!(
        alice.get(&format!("{job}/machine/power")).json(),
        json!({"power": "ON"})
    );
    let off = alice.post_json(&format!("{job}/machine/power"), &json!({"power": "OFF"}));
    assert_eq!(off.status, 202, "{}", off.body);
    let bad_power = alice.post_json(
        &format!("{job}/machine/power"),
        &json!({"power": "SIDEWAYS"}),
    );
    assert_eq!(bad_power.status, 400);

    let report = alice.post_json(
        &format!("{job}/report-issue"),
        &json!({"issue": "it smokes", "boards": [{"machine": "test-machine", "chip": {"x": 0, "y": 0}}]}),
    );
    assert_eq!(report.json(), json!({"action": "report noted"}));
    let elsewhere = alice.post_json(
        &format!("{job}/report-issue"),
        &json!({"issue": "x", "boards": [{"machine": "test-machine", "x": 1, "y": 0, "z": 2}]}),
    );
    assert!(elsewhere.json()["action"]
        .as_str()
        .unwrap_or("")
        .contains("not allocated to job"));

    let listed = alice.get(&format!("{API}/jobs?deleted=false")).json();
    assert_eq!(listed["jobs"], json!([job]));

    let gone = alice.delete(&format!("{job}/?reason=finished"));
    assert_eq!(gone.status, 204);
    let dead = alice.get(&format!("{job}/")).json();
    assert_eq!(dead["state"], "DESTROYED");
    assert_eq!(dead["reason"], "finished");
    assert!(dead["finish-time"].is_string());
    assert!(dead.get("keepalive-host").is_none());
    assert_eq!(
        alice.delete(&format!("{job}/")).status,
        204,
        "deleting twice is fine"
    );
    assert_eq!(alice.get(&format!("{job}/machine")).status, 410);
    assert_eq!(alice.get(&format!("{API}/jobs")).json()["jobs"], json!([]));
    assert_eq!(
        alice.get(&format!("{API}/jobs?deleted=true")).json()["jobs"],
        json!([job])
    );
}

#[test]
fn spinnmans_url_habits_reach_the_same_job() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(one_board(json!({})));
    let id = job.rsplit('/').next().unwrap_or_default();
    let canonical = alice.get(&job).json();
    for path in [
        format!("{API}/jobs/{id}/"),
        format!("{API}/jobs//{id}/?wait=False"),
        format!("{API}/jobs//{id}"),
    ] {
        let a = alice.get(&path);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.json()["owner"], canonical["owner"], "{path}");
    }
    assert_eq!(alice.get(&format!("{job}/machine/")).status / 100, 2);
}

#[test]
fn a_long_poll_returns_when_its_job_changes() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(one_board(json!({})));
    alice.wait_for(&job, "READY");
    let poller = {
        let url = format!("{job}/?wait=true");
        let poller = Api::new(&server, Some("alice"));
        std::thread::spawn(move || poller.get(&url).json())
    };
    // Whether the poll starts before or after the destroy, it must answer
    // DESTROYED: after the change, or at once if it already happened.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(alice.delete(&format!("{job}?reason=bye")).status, 204);
    let seen = poller.join().expect("poller");
    assert_eq!(seen["state"], "DESTROYED", "{seen}");
}

#[test]
fn jobs_are_visible_to_their_owner_and_admins_only() {
    let server = start(config(""));
    let (alice, bob, root) = (
        Api::new(&server, Some("alice")),
        Api::new(&server, Some("bob")),
        Api::new(&server, Some("root")),
    );
    let job = alice.create(one_board(json!({})));
    assert_eq!(bob.get(&job).status, 404);
    assert_eq!(bob.delete(&job).status, 404);
    assert_eq!(
        bob.send("PUT", &format!("{job}/keepalive"), "text/plain", b"x")
            .status,
        404
    );
    assert_eq!(bob.get(&format!("{API}/jobs")).json()["jobs"], json!([]));
    assert_eq!(root.get(&job).json()["owner"], "alice");
    assert_eq!(
        root.get(&format!("{API}/jobs")).json()["jobs"],
        json!([job])
    );
    let rita = Api::new(&server, Some("rita"));
    assert_eq!(
        rita.post_json(&format!("{API}/jobs"), &one_board(json!({})))
            .status,
        403
    );
    // Only admins may create a job for somebody else.
    let forged = alice.post_json(&format!("{API}/jobs"), &one_board(json!({"owner": "bob"})));
    assert_eq!(forged.status, 400);
    let for_bob = root.create(one_board(json!({"owner": "bob"})));
    assert_eq!(bob.get(&for_bob).json()["owner"], "bob");
}

#[test]
fn legacy_and_v2_jobs_are_one_set() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let root = Api::new(&server, Some("root"));
    let v2_job = alice.create(one_board(json!({})));
    let mut legacy = common::Client::connect(&server);
    let listed = legacy.ok("list_jobs", json!([]), json!({}));
    assert_eq!(listed[0]["owner"], "alice");
    assert_eq!(listed[0]["args"], json!([1]));
    let legacy_id = legacy.create(json!([1]), json!({"owner": "someone"}));
    let legacy_url = format!("{}{API}/jobs/{legacy_id}", alice.base);
    assert_eq!(
        alice.get(&legacy_url).status,
        404,
        "a legacy job is not alice's"
    );
    assert_eq!(root.get(&legacy_url).json()["owner"], "someone");
    let all = root.get(&format!("{API}/jobs")).json();
    assert_eq!(all["jobs"], json!([legacy_url, v2_job]), "newest first");
    // Destroyed on one port, destroyed on the other.
    legacy.ok("destroy_job", json!([1]), json!({"reason": "from legacy"}));
    let dead = alice.get(&v2_job).json();
    assert_eq!(dead["state"], "DESTROYED");
    assert_eq!(dead["reason"], "from legacy");
}

#[test]
fn job_lists_are_paged_with_link_headers() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let jobs: Vec<String> = (0..3)
        .map(|_| {
            alice.create(json!({"machine-name": "test-machine", "keepalive-interval": "PT60S"}))
        })
        .collect();
    let first = alice.get(&format!("{API}/jobs?limit=2"));
    let page = first.json();
    assert_eq!(page["jobs"], json!([jobs[2], jobs[1]]));
    let next = page["next"].as_str().expect("next").to_owned();
    assert!(page.get("prev").is_none());
    assert_eq!(first.link, Some(format!("<{next}>; rel=\"next\"")));
    let second = alice.get(&next);
    let page2 = second.json();
    assert_eq!(page2["jobs"], json!([jobs[0]]));
    assert!(page2.get("next").is_none());
    assert!(second.link.unwrap_or_default().contains("rel=\"prev\""));
    assert_eq!(alice.get(&format!("{API}/jobs?limit=201")).status, 400);
    assert_eq!(alice.get(&format!("{API}/jobs?start=-1")).status, 400);
}

#[test]
fn every_create_form_is_accepted_or_refused_with_a_message() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let ok = |body: Value| {
        let a = alice.post_json(&format!("{API}/jobs"), &body);
        assert_eq!(a.status, 201, "{body}: {}", a.body);
        let job = a.location.expect("Location");
        alice.delete(&job);
    };
    let base = json!({"machine-name": "test-machine", "keepalive-interval": "PT30S"});
    let with = |extra: Value| {
        let mut b = base.clone();
        if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        b
    };
    ok(with(json!({})));
    ok(with(json!({"num-boards": 3})));
    ok(with(
        json!({"dimensions": {"width": 1, "height": 1}, "max-dead-boards": 0}),
    ));
    ok(with(json!({"board": {"x": 1, "y": 0, "z": 1}})));
    ok(with(
        json!({"board": {"cabinet": 0, "frame": 0, "board": 2}}),
    ));
    ok(with(json!({"board": {"address": "127.0.1.41"}})));
    ok(json!({"tags": ["default"], "keepalive-interval": "PT300S", "num-boards": 1}));
    // A group the user is in (one they are not in is refused: see tests/usage.rs).
    ok(with(json!({"group": "testers"})));
    let refused = |body: Value, message: &str| {
        let a = alice.post_json(&format!("{API}/jobs"), &body);
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert!(a.content_type.starts_with("text/plain"));
        assert!(
            a.body.contains(message),
            "{body}: {:?} lacks {message:?}",
            a.body
        );
    };
    refused(
        json!({"machine-name": "test-machine"}),
        "keepalive-interval is required",
    );
    refused(
        with(json!({"keepalive-interval": "PT29S"})),
        "30 to 300 seconds",
    );
    refused(with(json!({"keepalive-interval": "2 minutes"})), "ISO-8601");
    refused(
        with(json!({"tags": ["default"]})),
        "either machine-name or tags",
    );
    refused(
        json!({"keepalive-interval": "PT60S"}),
        "either machine-name or tags",
    );
    refused(with(json!({"num-boards": 0})), "at least 1");
    refused(
        with(json!({"num-boards": 1, "dimensions": {"width": 1, "height": 1}})),
        "either specify num-boards",
    );
    refused(with(json!({"max-dead-boards": -1})), "must not be negative");
    refused(
        with(json!({"num-boards": 99999999999u64})),
        "bad request body",
    );
    refused(with(json!({"num-boards": "two"})), "bad request body");
    refused(with(json!({"surprise": 1})), "unknown field");
    refused(
        with(json!({"board": {}})),
        "at least one way of identifying a board",
    );
    refused(
        with(json!({"board": {"address": "not-an-ip"}})),
        "IP address",
    );
    refused(with(json!({"machine-name": "no-such"})), "no such machine");
    ok(with(
        json!({"dimensions": {"width": 1, "height": 1}, "board": {"x": 1, "y": 0, "z": 0}}),
    ));
    let malformed = alice.send(
        "POST",
        &format!("{API}/jobs"),
        "application/json",
        b"{\"num-boards\": ",
    );
    assert_eq!(malformed.status, 400);
    let huge = vec![b' '; spalloc_server::http::MAX_BODY_BYTES + 1];
    assert_eq!(
        alice
            .send("POST", &format!("{API}/jobs"), "application/json", &huge)
            .status,
        413
    );
}

#[test]
fn odd_requests_get_4xx_with_a_message() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    for (method, path, status) in [
        ("GET", format!("{API}/nothing"), 404),
        ("GET", format!("{API}/jobs/0"), 404),
        ("GET", format!("{API}/jobs/abc"), 404),
        ("GET", format!("{API}/jobs/18446744073709551616"), 404),
        ("PUT", format!("{API}/jobs"), 405),
        ("GET", format!("{API}/jobs?wait=perhaps"), 400),
        ("GET", format!("{API}/jobs?limit=1e9"), 400),
        ("GET", format!("{API}/jobs/12345"), 404),
        ("GET", "/somewhere/else".to_owned(), 404),
    ] {
        let a = alice.send(method, &path, "", b"");
        assert_eq!(a.status, status, "{method} {path}: {}", a.body);
        assert!(a.content_type.starts_with("text/plain"), "{method} {path}");
        assert!(!a.body.is_empty(), "{method} {path}");
    }
}

#[test]
fn the_openapi_description_names_every_endpoint() {
    let server = start(config(""));
    let anyone = Api::new(&server, None);
    let doc = anyone.get("/spalloc/srv/openapi.json").json();
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/spalloc/",
        "/spalloc/machines",
        "/spalloc/machines/{name}",
        "/spalloc/machines/{name}/logical-board",
        "/spalloc/machines/{name}/physical-board",
        "/spalloc/machines/{name}/chip",
        "/spalloc/machines/{name}/board-ip",
        "/spalloc/jobs",
        "/spalloc/jobs/{id}",
        "/spalloc/jobs/{id}/keepalive",
        "/spalloc/jobs/{id}/machine",
        "/spalloc/jobs/{id}/machine/power",
        "/spalloc/jobs/{id}/chip",
        "/spalloc/jobs/{id}/report-issue",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
}

#[test]
fn the_legacy_port_can_be_turned_off() {
    let server = start(config("legacy_port = false"));
    assert!(server.legacy_addr().is_none());
    let alice = Api::new(&server, Some("alice"));
    assert_eq!(alice.get(API).status, 200);
    assert_eq!(server.local_addr(), server.http_addr().expect("http"));
}

#[test]
fn long_polls_beyond_the_cap_get_429_at_once() {
    let server = start(config("max_long_polls = 1"));
    let alice = Api::new(&server, Some("alice"));
    let job = alice.create(one_board(json!({})));
    alice.wait_for(&job, "READY");
    // Two long-polls at once: one holds the only place until the job
    // changes, so the first to finish is the one refused.
    let (done, results) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let (url, done) = (format!("{job}?wait=true"), done.clone());
        let poller = Api::new(&server, Some("alice"));
        std::thread::spawn(move || {
            let a = poller.get(&url);
            let _ = done.send((a.status, a.content_type, a.body));
        });
    }
    let bound = std::time::Duration::from_secs(60);
    let (status, content_type, _) = results.recv_timeout(bound).expect("a poll ends");
    assert_eq!(status, 429);
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(alice.get(&job).status, 200, "plain reads still work");
    assert_eq!(alice.delete(&job).status, 204);
    let (status, _, body) = results.recv_timeout(bound).expect("the held poll ends");
    assert_eq!(status, 200);
    assert!(body.contains("DESTROYED"), "{body}");
}

#[test]
fn a_v2_job_survives_a_restart_with_its_owner_and_request() {
    let dir = std::env::temp_dir().join(format!("spalloc-http-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut c = config("");
    c.state_file = Some(dir.join("state.sqlite"));
    let job_path = {
        let server = start(c.clone());
        let alice = Api::new(&server, Some("alice"));
        let job = alice.create(one_board(json!({})));
        alice.wait_for(&job, "READY");
        let path = job[job.find(API).expect("API path")..].to_owned();
        server.shutdown();
        path
    };
    let server = start(c);
    let alice = Api::new(&server, Some("alice"));
    let state = alice.get(&job_path).json();
    assert_eq!(state["owner"], "alice");
    assert_eq!(state["original-request"]["machine-name"], "test-machine");
    assert_eq!(Api::new(&server, Some("bob")).get(&job_path).status, 404);
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dimensions_at_a_root_board_allocate_the_rectangle_rooted_there() {
    let server = start(config(""));
    let alice = Api::new(&server, Some("alice"));
    let body = json!({
        "machine-name": "test-machine", "keepalive-interval": "PT60S",
        "dimensions": {"width": 1, "height": 1}, "board": {"x": 1, "y": 0, "z": 0},
        "max-dead-boards": 0,
    });
    let job = alice.create(body.clone());
    alice.wait_for(&job, "READY");
    let machine = alice.get(&format!("{job}/machine")).json();
    assert_eq!(machine["boards"], json!([[1, 0, 0], [1, 0, 1], [1, 0, 2]]));
    assert_eq!(
        alice.get(&job).json()["original-request"]["board"]["x"],
        1,
        "the root is echoed"
    );
    // The same root by its address, while the first holds it: queued.
    let address = machine["connections"][0][1].clone();
    let mut by_address = body.clone();
    by_address["board"] = json!({ "address": address });
    let queued = alice.create(by_address);
    assert_eq!(alice.get(&queued).json()["state"], "QUEUED");
    assert_eq!(alice.delete(&job).status, 204);
    alice.wait_for(&queued, "READY");
    alice.delete(&queued);
    // A rectangle leaving the machine from its root is never possible.
    let mut too_wide = body;
    too_wide["dimensions"] = json!({"width": 2, "height": 1});
    let a = alice.post_json(&format!("{API}/jobs"), &too_wide);
    let gone = match a.status {
        201 => alice.get(&a.location.expect("Location")).json()["state"] == "DESTROYED",
        status => status == 400,
    };
    assert!(gone, "{}", a.body);
}

#[test]
fn a_destroyed_jobs_tombstone_and_reason_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("spalloc-http-tombstone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut c = config("");
    c.state_file = Some(dir.join("state.sqlite"));
    let job_path = {
        let server = start(c.clone());
        let alice = Api::new(&server, Some("alice"));
        let job = alice.create(one_board(json!({})));
        alice.wait_for(&job, "READY");
        assert_eq!(
            alice.delete(&format!("{job}?reason=all%20done")).status,
            204
        );
        let path = job[job.find(API).expect("API path")..].to_owned();
        server.shutdown();
        path
    };
    let server = start(c);
    let alice = Api::new(&server, Some("alice"));
    let state = alice.get(&job_path).json();
    assert_eq!(state["state"], "DESTROYED");
    assert_eq!(state["reason"], "all done");
    assert_eq!(state["owner"], "alice");
    assert!(state["finish-time"].is_string());
    assert_eq!(state["original-request"]["machine-name"], "test-machine");
    assert_eq!(alice.get(&format!("{job_path}/machine")).status, 410);
    assert_eq!(
        alice.get(&format!("{API}/jobs?deleted=true")).json()["jobs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(Api::new(&server, Some("bob")).get(&job_path).status, 404);
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
