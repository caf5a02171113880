//! Golden JSON for every response shape of the v2 REST API, on the
//! sans-I/O side (fixed times, no sockets). Each shape follows allocserv's
//! serialisation: its `web/JsonTest` pins the service description
//! (`version` with `major-version`, `minor-version`, `revision`), the job
//! state (`state`, `start-time` as `2021-10-11T12:13:14Z`, `owner`,
//! `keepalive-host`), the sub-machine (`depth`, `width`, `height`,
//! `machine-name`, `boards` as `[[0, 0, 0]]`, `connections` as
//! `[[[0, 0], "2.3.4.5"]]`) and where-is (`chip`, `job-id`, `board-chip`,
//! `job-chip`, `logical-board-coordinates`, `physical-board-coordinates`
//! as arrays); the rest follows its `MachinesResponse`, `MachineResponse`,
//! `ListJobsResponse`, `CreateJobResponse`, `IssueReportResponse` and
//! `MachinePower` classes (`BoardCoords` as objects, `@JsonInclude(NON_NULL)`
//! fields left out when empty).

use serde_json::{json, Value};
use spalloc_server::rest::{self, ApiRequest, ApiUser, Body, Method, Reply, Role};
use spalloc_server::{ServerConfig, Service};

const BASE: &str = "https://h/spalloc/srv/spalloc";
/// allocserv's JsonTest instant, 2021-10-11T12:13:14Z.
const T0: f64 = 1633954394.0;

fn service() -> Service {
    let config = ServerConfig::from_toml_str(
        r#"
        [[machine]]
        name = "gorp"
        tags = ["default"]
        width = 1
        height = 1
        dead_boards = [[0, 0, 2]]
        base_ip = "10.0.0.0"
        "#,
    )
    .expect("config");
    Service::new(&config)
}

fn user(name: &str, role: Role) -> ApiUser {
    ApiUser {
        name: name.into(),
        role,
        csrf: Some(("X-CSRF-TOKEN".into(), "tok".into())),
        groups: Vec::new(),
    }
}

fn call(
    s: &mut Service,
    who: &ApiUser,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: &str,
    now: f64,
) -> Reply {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let request = ApiRequest {
        method,
        path,
        query: &query,
        body: body.as_bytes(),
        user: who,
        base: BASE,
        host: Some("1.2.3.4"),
    };
    rest::handle(s, &request, now)
}

fn json_of(reply: &Reply) -> Value {
    match &reply.body {
        Body::Json(v) => v.clone(),
        other => panic!("not JSON: {other:?} (status {})", reply.status),
    }
}

/// Creates a one-board job for alice at T0 and makes it ready.
fn ready_job(s: &mut Service, alice: &ApiUser) -> u64 {
    let r = call(
        s,
        alice,
        Method::Post,
        "/jobs",
        &[],
        r#"{"num-boards": 1, "machine-name": "gorp", "keepalive-interval": "PT120S"}"#,
        T0,
    );
    assert_eq!(r.status, 201);
    let id = json_of(&r)["job-id"].as_u64().expect("id");
    for request in s.take_bmp_requests() {
        s.bmp_request_done(request.id, Ok(()), T0);
    }
    id
}

#[test]
fn service_description_golden() {
    let mut s = service();
    let r = call(
        &mut s,
        &user("alice", Role::User),
        Method::Get,
        "/",
        &[],
        "",
        T0,
    );
    let v = json_of(&r);
    assert_eq!(
        v,
        json!({
            "version": v["version"],
            "jobs-ref": "https://h/spalloc/srv/spalloc/jobs",
            "machines-ref": "https://h/spalloc/srv/spalloc/machines",
            "csrf-header": "X-CSRF-TOKEN",
            "csrf-token": "tok",
        })
    );
    let version = v["version"].as_object().expect("version");
    let keys: Vec<&str> = version.keys().map(String::as_str).collect();
    assert_eq!(keys, ["major-version", "minor-version", "revision"]);
}

#[test]
fn machine_list_and_machine_golden() {
    let mut s = service();
    let rita = user("rita", Role::Reader);
    let dead = json!({"x": 0, "y": 0, "z": 2, "cabinet": 0, "frame": 0, "board": 2, "address": "10.0.0.17"});
    assert_eq!(
        json_of(&call(&mut s, &rita, Method::Get, "/machines", &[], "", T0)),
        json!({"machines": [{
            "name": "gorp", "tags": ["default"],
            "uri": "https://h/spalloc/srv/spalloc/machines/gorp",
            "width": 1, "height": 1,
            "dead-boards": [dead], "dead-links": [],
        }]})
    );
    let m = "https://h/spalloc/srv/spalloc/machines/gorp";
    assert_eq!(
        json_of(&call(
            &mut s,
            &rita,
            Method::Get,
            "/machines/gorp",
            &[],
            "",
            T0
        )),
        json!({
            "name": "gorp", "tags": ["default"], "width": 1, "height": 1,
            "down-boards": [dead], "down-links": [],
            "lookup-by-physical-board": format!("{m}/physical-board"),
            "lookup-by-logical-board": format!("{m}/logical-board"),
            "lookup-by-chip": format!("{m}/chip"),
            "lookup-by-address": format!("{m}/board-ip"),
        })
    );
}

#[test]
fn create_state_sub_machine_power_and_where_is_golden() {
    let mut s = service();
    let alice = user("alice", Role::User);
    let r = call(
        &mut s,
        &alice,
        Method::Post,
        "/jobs",
        &[],
        r#"{"num-boards": 1, "machine-name": "gorp", "keepalive-interval": "PT120S"}"#,
        T0,
    );
    assert_eq!(r.status, 201);
    let job = "https://h/spalloc/srv/spalloc/jobs/1";
    assert_eq!(r.location.as_deref(), Some(job));
    assert_eq!(json_of(&r), json!({"job-id": 1, "job-ref": job}));
    for request in s.take_bmp_requests() {
        s.bmp_request_done(request.id, Ok(()), T0);
    }
    let state = json_of(&call(
        &mut s,
        &alice,
        Method::Get,
        "/jobs/1",
        &[],
        "",
        T0 + 1.0,
    ));
    assert_eq!(
        state,
        json!({
            "state": "READY",
            "owner": "alice",
            "start-time": "2021-10-11T12:13:14Z",
            "keepalive-host": "1.2.3.4",
            "keep-alive-time": "2021-10-11T12:13:14Z",
            "keepalive-ref": format!("{job}/keepalive"),
            "machine-ref": format!("{job}/machine"),
            "power-ref": format!("{job}/machine/power"),
            "chip-ref": format!("{job}/chip"),
            // allocserv with its proxy enabled; READY has boards to proxy to.
            "proxy-ref": "wss://h/spalloc/proxy/1",
            "original-request": {
                "owner": "alice", "group": null, "nmpi-collab": null, "nmpi-job-id": null,
                "keepalive-interval": 120.0, "num-boards": 1, "dimensions": null,
                "board": null, "machine-name": "gorp", "tags": [], "max-dead-boards": 0,
            },
        })
    );
    let sub = json_of(&call(
        &mut s,
        &alice,
        Method::Get,
        "/jobs/1/machine",
        &[],
        "",
        T0,
    ));
    assert_eq!(
        sub,
        json!({
            "width": 1, "height": 1, "depth": 1, "machine-name": "gorp",
            "connections": [[[0, 0], "10.0.0.1"]],
            "boards": [[0, 0, 0]],
            "power": format!("{job}/machine/power"),
            "machine-ref": "https://h/spalloc/srv/spalloc/machines/gorp",
        })
    );
    assert_eq!(
        json_of(&call(
            &mut s,
            &alice,
            Method::Get,
            "/jobs/1/machine/power",
            &[],
            "",
            T0
        )),
        json!({"power": "ON"})
    );
    let chip = json_of(&call(
        &mut s,
        &alice,
        Method::Get,
        "/jobs/1/chip",
        &[("x", "1"), ("y", "2")],
        "",
        T0,
    ));
    assert_eq!(
        chip,
        json!({
            "job-id": 1, "job-ref": job, "job-chip": [1, 2],
            "chip": [1, 2], "logical-board-coordinates": [0, 0, 0],
            "machine": "gorp", "machine-ref": "https://h/spalloc/srv/spalloc/machines/gorp",
            "board-chip": [1, 2], "physical-board-coordinates": [0, 0, 0],
        })
    );
    let free = json_of(&call(
        &mut s,
        &user("rita", Role::Reader),
        Method::Get,
        "/machines/gorp/logical-board",
        &[("x", "0"), ("y", "0"), ("z", "1")],
        "",
        T0,
    ));
    assert_eq!(
        free,
        json!({
            "chip": [8, 4], "logical-board-coordinates": [0, 0, 1],
            "machine": "gorp", "machine-ref": "https://h/spalloc/srv/spalloc/machines/gorp",
            "board-chip": [0, 0], "physical-board-coordinates": [0, 0, 1],
        })
    );
}

#[test]
fn list_report_keepalive_and_destroyed_state_golden() {
    let mut s = service();
    let alice = user("alice", Role::User);
    let id = ready_job(&mut s, &alice);
    let job = format!("https://h/spalloc/srv/spalloc/jobs/{id}");
    assert_eq!(
        json_of(&call(
            &mut s,
            &alice,
            Method::Get,
            "/jobs",
            &[("deleted", "false")],
            "",
            T0
        )),
        json!({"jobs": [job]})
    );
    let page = call(
        &mut s,
        &alice,
        Method::Get,
        "/jobs",
        &[("limit", "1")],
        "",
        T0,
    );
    let next = "https://h/spalloc/srv/spalloc/jobs?limit=1&wait=false&start=1";
    assert_eq!(json_of(&page), json!({"jobs": [job], "next": next}));
    assert_eq!(
        page.link.as_deref(),
        Some(&*format!("<{next}>; rel=\"next\""))
    );
    let report = call(
        &mut s,
        &alice,
        Method::Post,
        &format!("/jobs/{id}/report-issue"),
        &[],
        r#"{"issue": "smoke", "boards": [{"machine": "gorp", "x": 0, "y": 0, "z": 0}]}"#,
        T0,
    );
    assert_eq!(json_of(&report), json!({"action": "report noted"}));
    let reports: Vec<_> = s.controller.issue_reports().collect();
    assert_eq!((reports.len(), reports[0].reporter.as_str()), (1, "alice"));
    let ka = call(
        &mut s,
        &alice,
        Method::Put,
        &format!("/jobs/{id}/keepalive"),
        &[],
        "alive",
        T0,
    );
    assert_eq!((ka.status, ka.body), (200, Body::Text("ok".into())));
    let gone = call(
        &mut s,
        &alice,
        Method::Delete,
        &format!("/jobs/{id}"),
        &[("reason", "done")],
        "",
        T0 + 5.0,
    );
    assert_eq!((gone.status, gone.body), (204, Body::Empty));
    let dead = json_of(&call(
        &mut s,
        &alice,
        Method::Get,
        &format!("/jobs/{id}"),
        &[],
        "",
        T0 + 6.0,
    ));
    assert_eq!(
        dead,
        json!({
            "state": "DESTROYED",
            "owner": "alice",
            "start-time": "2021-10-11T12:13:14Z",
            "finish-time": "2021-10-11T12:13:19Z",
            "reason": "done",
            "keepalive-ref": format!("{job}/keepalive"),
            "machine-ref": format!("{job}/machine"),
            "power-ref": format!("{job}/machine/power"),
            "chip-ref": format!("{job}/chip"),
            "original-request": dead["original-request"],
        })
    );
}

#[test]
fn errors_are_text_with_allocserv_statuses() {
    let mut s = service();
    let alice = user("alice", Role::User);
    ready_job(&mut s, &alice);
    let queued = call(
        &mut s,
        &alice,
        Method::Post,
        "/jobs",
        &[],
        r#"{"dimensions": {"width": 1, "height": 1}, "max-dead-boards": 1, "machine-name": "gorp", "keepalive-interval": "PT60S"}"#,
        T0,
    );
    assert_eq!(queued.status, 201, "{queued:?}");
    let before = call(&mut s, &alice, Method::Get, "/jobs/2/machine", &[], "", T0);
    assert_eq!(
        (before.status, &before.body),
        (204, &Body::Empty),
        "no boards yet"
    );
    let cases: [(Method, &str, &str, u16); 5] = [
        (Method::Get, "/jobs/99", "", 404),
        (Method::Post, "/jobs", "{", 400),
        (Method::Delete, "/machines", "", 405),
        (Method::Get, "/jobs/1/memory", "", 400),
        (Method::Delete, "/jobs/1/router", "", 501),
    ];
    for (method, path, body, status) in cases {
        let r = call(&mut s, &alice, method, path, &[], body, T0);
        assert_eq!(r.status, status, "{path}");
        assert!(
            matches!(r.body, Body::Text(ref m) if !m.is_empty()),
            "{path}"
        );
    }
}
