//! allocserv's admin API over real sockets: administrators only (401
//! without credentials, 403 for anyone else), boards taken out of service
//! and back by triad, physical location or address (and what that does to
//! jobs), and users, groups and members managed so that a user made here
//! logs in.

mod http_support;

use http_support::{config, start, Api, API};
use serde_json::{json, Value};

fn admin(path: &str) -> String {
    format!("{API}/admin{path}")
}

#[test]
fn only_administrators_may_use_the_admin_api() {
    let server = start(config(""));
    assert_eq!(Api::new(&server, None).get(&admin("/")).status, 401);
    for user in ["alice", "rita"] {
        let api = Api::new(&server, Some(user));
        for path in [
            "/",
            "/users",
            "/groups",
            "/board?machine=test-machine&x=0&y=0&z=0",
        ] {
            let a = api.get(&admin(path));
            assert_eq!(a.status, 403, "{user} {path}: {}", a.body);
            assert!(a.content_type.starts_with("text/plain"));
        }
    }
    let root = Api::new(&server, Some("root"));
    let description = root.get(&admin("/")).json();
    let base = format!("{}{API}/admin", root.base);
    assert_eq!(
        description,
        json!({"import-machines": format!("{base}/import"), "set-board-enabled": format!("{base}/board")})
    );
}

#[test]
fn a_board_out_of_service_is_given_to_no_job_until_it_is_enabled_again() {
    let server = start(config(""));
    let root = Api::new(&server, Some("root"));
    let alice = Api::new(&server, Some("alice"));
    let board = admin("/board?machine=test-machine&x=0&y=0&z=0");
    let get = root.get(&board);
    assert_eq!((get.status, get.body.as_str()), (200, "true"));
    assert!(get.content_type.starts_with("text/plain"));
    // Every board but one out of service, by triad.
    for (x, z) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)] {
        let path = admin(&format!("/board?machine=test-machine&x={x}&y=0&z={z}"));
        let put = root.send("PUT", &path, "text/plain", b"false");
        assert_eq!((put.status, put.body.as_str()), (200, "false"), "{path}");
    }
    // The one left serves a one-board job; a second waits.
    let first =
        alice.create(json!({"machine-name": "test-machine", "keepalive-interval": "PT60S"}));
    alice.wait_for(&first, "READY");
    let boards = alice.get(&format!("{first}/machine")).json()["boards"].clone();
    assert_eq!(boards, json!([[1, 0, 2]]));
    let second =
        alice.create(json!({"machine-name": "test-machine", "keepalive-interval": "PT60S"}));
    assert_eq!(alice.get(&second).json()["state"], "QUEUED");
    // Enabled again by its physical location (read from the where-is
    // lookup), the board goes to the waiting job.
    let where_is = alice
        .get(&format!(
            "{API}/machines/test-machine/logical-board?x=0&y=0&z=0"
        ))
        .json();
    let [c, f, b] = [0, 1, 2].map(|i| where_is["physical-board-coordinates"][i].clone());
    let path = admin(&format!(
        "/board?machine=test-machine&cabinet={c}&frame={f}&board={b}"
    ));
    let put = root.send("PUT", &path, "text/plain", b"true");
    assert_eq!((put.status, put.body.as_str()), (200, "true"), "{path}");
    alice.wait_for(&second, "READY");
    assert_eq!(
        alice.get(&format!("{second}/machine")).json()["boards"],
        json!([[0, 0, 0]])
    );
    let no_board = root.get(&admin("/board?machine=nope&x=0&y=0&z=0"));
    assert_eq!(
        (no_board.status, no_board.body.as_str()),
        (404, "no such board")
    );
    let no_coordinates = root.get(&admin("/board?machine=test-machine"));
    assert_eq!(no_coordinates.status, 400);
}

#[test]
fn a_user_made_through_the_admin_api_logs_in_and_is_managed_there() {
    let server = start(config(""));
    let root = Api::new(&server, Some("root"));
    let created = root.post_json(
        &admin("/users"),
        &json!({"user-name": "carol", "password": "lorac", "trust-level": "USER"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let carol_url = created.location.clone().expect("Location");
    assert!(carol_url.ends_with("/admin/users/carol"));
    assert!(created.json().get("password").is_none());
    // carol's password works for the API (HTTP Basic).
    let mut carol = Api::new(&server, Some("carol"));
    carol.basic = true;
    assert_eq!(carol.get(&format!("{API}/")).status, 200);
    let job = carol.create(json!({"machine-name": "test-machine", "keepalive-interval": "PT60S"}));

    // Groups and membership.
    let group = root.post_json(&admin("/groups"), &json!({"group-name": "crew"}));
    assert_eq!(group.status, 201, "{}", group.body);
    let crew_url = group.location.clone().expect("Location");
    let member = root.post_json(
        &format!("{crew_url}/members"),
        &json!({"user-name": "carol"}),
    );
    assert_eq!(member.status, 201, "{}", member.body);
    let crew = root.get(&crew_url).json();
    assert_eq!(
        crew["members"]["carol"],
        member.location.clone().expect("Location")
    );
    let record = root.get(&carol_url).json();
    assert_eq!(record["groups"]["crew"], crew_url);
    let users: Value = root.get(&admin("/users")).json();
    assert_eq!(users["carol"], carol_url);

    // Disabled, carol is shut out at once; enabled, she is back.
    let put = root.send(
        "PUT",
        &carol_url,
        "application/json",
        json!({"enabled": false}).to_string().as_bytes(),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["enabled"], false);
    assert_eq!(carol.get(&format!("{API}/")).status, 401);
    let put = root.send(
        "PUT",
        &carol_url,
        "application/json",
        json!({"enabled": true}).to_string().as_bytes(),
    );
    assert_eq!(put.status, 200);
    assert_eq!(carol.get(&format!("{API}/")).status, 200);

    // Deleted, carol is gone (her job lives on, as an administrator sees).
    let gone = root.delete(&carol_url);
    assert_eq!(
        (gone.status, gone.body.as_str()),
        (200, "deleted user carol")
    );
    assert_eq!(carol.get(&format!("{API}/")).status, 401);
    assert_eq!(root.get(&job).json()["owner"], "carol");
    assert_eq!(root.get(&carol_url).status, 404);
    assert_eq!(root.delete(&crew_url).body, "deleted group crew");
    assert_eq!(
        root.delete(&admin("/users/root")).status,
        400,
        "not yourself"
    );
    let import = root.post_json(&admin("/import"), &json!({"machines": []}));
    assert_eq!(import.status, 501);
}

#[test]
fn the_openapi_description_names_the_admin_endpoints() {
    let server = start(config(""));
    let doc = Api::new(&server, None)
        .get("/spalloc/srv/openapi.json")
        .json();
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/spalloc/admin",
        "/spalloc/admin/import",
        "/spalloc/admin/board",
        "/spalloc/admin/users",
        "/spalloc/admin/users/{name}",
        "/spalloc/admin/groups",
        "/spalloc/admin/groups/{name}",
        "/spalloc/admin/groups/{name}/members",
        "/spalloc/admin/groups/{name}/members/{user}",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
}
