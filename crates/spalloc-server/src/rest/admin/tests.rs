//! The admin API on the sans-I/O side: routes through [`crate::rest::handle`]
//! (boards) and [`super::handle_accounts`] (users and groups), with an
//! in-memory accounts database.

use super::*;
use crate::accounts::{NewUser, Role as AccountRole};
use crate::config::ServerConfig;
use crate::core::coordinates::Board;
use crate::rest::{self, ApiUser, Body, Method, Role};
use crate::service::Service;
use serde_json::Value;

const BASE: &str = "https://h/spalloc/srv/spalloc";
const NOW: i64 = 1_800_000_000;

fn service() -> Service {
    let config = ServerConfig::from_toml_str(
        r#"
        [[machine]]
        name = "m"
        width = 2
        height = 1
        base_ip = "10.0.0.0"
        dead_boards = [[1, 0, 2]]
        "#,
    )
    .expect("config");
    Service::new(&config)
}

fn user(name: &str, role: Role) -> ApiUser {
    ApiUser {
        name: name.into(),
        role,
        csrf: None,
        groups: vec![],
    }
}

fn accounts() -> Accounts {
    let a = Accounts::in_memory().expect("opens");
    for (name, role) in [("root", AccountRole::Admin), ("alice", AccountRole::User)] {
        a.add_user(
            &NewUser {
                name: name.into(),
                role,
                password: None,
                groups: vec!["testers".into()],
            },
            NOW,
        )
        .expect("adds");
    }
    a
}

struct Call<'a> {
    method: Method,
    path: &'a str,
    query: Vec<(String, String)>,
    body: &'a [u8],
    who: ApiUser,
}

fn call(method: Method, path: &str) -> Call<'_> {
    Call {
        method,
        path,
        query: Vec::new(),
        body: b"",
        who: user("root", Role::Admin),
    }
}

impl<'a> Call<'a> {
    fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        self
    }

    fn body(mut self, body: &'a str) -> Self {
        self.body = body.as_bytes();
        self
    }

    fn by(mut self, who: ApiUser) -> Self {
        self.who = who;
        self
    }

    fn request(&self) -> ApiRequest<'_> {
        ApiRequest {
            method: self.method,
            path: self.path,
            query: &self.query,
            body: self.body,
            user: &self.who,
            base: BASE,
            host: None,
        }
    }

    fn on_service(&self, s: &mut Service) -> Reply {
        let request = self.request();
        assert!(!rest::uses_accounts(&request));
        rest::handle(s, &request, NOW as f64)
    }

    fn on_accounts(&self, a: &Accounts) -> Reply {
        let request = self.request();
        assert!(rest::uses_accounts(&request));
        handle_accounts(a, &request, NOW)
    }
}

fn text(reply: &Reply) -> &str {
    match &reply.body {
        Body::Text(t) => t,
        other => panic!("not text: {other:?}"),
    }
}

fn json(reply: &Reply) -> &Value {
    match &reply.body {
        Body::Json(v) => v,
        other => panic!("not JSON: {other:?} (status {})", reply.status),
    }
}

#[test]
fn the_description_links_to_import_and_board() {
    let mut s = service();
    let reply = call(Method::Get, "/admin/").on_service(&mut s);
    assert_eq!(
        json(&reply),
        &serde_json::json!({
            "import-machines": format!("{BASE}/admin/import"),
            "set-board-enabled": format!("{BASE}/admin/board"),
        })
    );
}

#[test]
fn only_administrators_reach_the_admin_api() {
    let mut s = service();
    let a = accounts();
    for who in [user("alice", Role::User), user("rita", Role::Reader)] {
        let reply = call(Method::Get, "/admin")
            .by(who.clone())
            .on_service(&mut s);
        assert_eq!(reply.status, 403);
        let reply = call(Method::Get, "/admin/users").by(who).on_accounts(&a);
        assert_eq!(reply.status, 403);
    }
}

#[test]
fn a_board_found_by_triad_physical_or_address_is_disabled_and_enabled() {
    let mut s = service();
    let get = |s: &mut Service, q: &[(&str, &str)]| {
        let reply = call(Method::Get, "/admin/board").query(q).on_service(s);
        assert_eq!(reply.status, 200, "{reply:?}");
        text(&reply).to_owned()
    };
    let triad = [("machine", "m"), ("x", "1"), ("y", "0"), ("z", "1")];
    assert_eq!(get(&mut s, &triad), "true");
    let reply = call(Method::Put, "/admin/board")
        .query(&triad)
        .body("false")
        .on_service(&mut s);
    assert_eq!(text(&reply), "false");
    let out = s.controller.boards_out_of_service("m").cloned();
    assert_eq!(out, Some([Board::new(1, 0, 1)].into_iter().collect()));
    // The same board by its physical location and by its address.
    let physical = s
        .controller
        .machine("m")
        .and_then(|m| m.board_locations.get(&Board::new(1, 0, 1)).copied())
        .expect("located");
    let (c, f, b) = (
        physical.cabinet.to_string(),
        physical.frame.to_string(),
        physical.board.to_string(),
    );
    let by_physical = [
        ("machine", "m"),
        ("cabinet", &*c),
        ("frame", &*f),
        ("board", &*b),
    ];
    assert_eq!(get(&mut s, &by_physical), "false");
    let address = s
        .controller
        .machine("m")
        .and_then(|m| m.spinnaker_ips.get(&Board::new(1, 0, 1)).cloned())
        .expect("addressed");
    let by_address = [("machine", "m"), ("address", address.as_str())];
    assert_eq!(get(&mut s, &by_address), "false");
    let reply = call(Method::Put, "/admin/board")
        .query(&by_address)
        .body(" TRUE\n")
        .on_service(&mut s);
    assert_eq!(text(&reply), "true");
    assert_eq!(
        s.controller.boards_out_of_service("m").map(|b| b.len()),
        Some(0)
    );
}

#[test]
fn board_lookups_that_cannot_work_say_why() {
    let mut s = service();
    let status_and_text = |s: &mut Service, method, q: &[(&str, &str)], body: &'static str| {
        let reply = call(method, "/admin/board")
            .query(q)
            .body(body)
            .on_service(s);
        (reply.status, text(&reply).to_owned())
    };
    let (status, message) = status_and_text(&mut s, Method::Get, &[("x", "0")], "");
    assert_eq!(
        (status, message.as_str()),
        (400, "machine name is required")
    );
    let (status, message) =
        status_and_text(&mut s, Method::Get, &[("machine", "m"), ("x", "0")], "");
    assert_eq!(status, 400);
    assert!(
        message.starts_with("You need to supply coordinates"),
        "{message}"
    );
    let (status, message) = status_and_text(
        &mut s,
        Method::Get,
        &[("machine", "nope"), ("x", "0"), ("y", "0"), ("z", "0")],
        "",
    );
    assert_eq!((status, message.as_str()), (404, "no such board"));
    let (status, _) = status_and_text(
        &mut s,
        Method::Get,
        &[("machine", "m"), ("x", "5"), ("y", "0"), ("z", "0")],
        "",
    );
    assert_eq!(status, 404);
    let dead = [("machine", "m"), ("x", "1"), ("y", "0"), ("z", "2")];
    assert_eq!(status_and_text(&mut s, Method::Get, &dead, "").1, "false");
    assert_eq!(status_and_text(&mut s, Method::Put, &dead, "true").0, 400);
    let live = [("machine", "m"), ("x", "0"), ("y", "0"), ("z", "0")];
    assert_eq!(status_and_text(&mut s, Method::Put, &live, "maybe").0, 400);
    assert_eq!(
        status_and_text(
            &mut s,
            Method::Get,
            &[("machine", "m"), ("address", "1.2.3")],
            ""
        )
        .0,
        400
    );
}

#[test]
fn import_is_explained_not_done() {
    let mut s = service();
    let reply = call(Method::Post, "/admin/import")
        .body("{}")
        .on_service(&mut s);
    assert_eq!(reply.status, 501);
    assert!(text(&reply).contains("configuration file"));
    assert!(text(&reply).contains("spalloc-server machine import"));
}

#[test]
fn a_user_is_created_read_changed_and_deleted() {
    let a = accounts();
    let reply = call(Method::Post, "/admin/users")
        .body(r#"{"user-name": "bob", "password": "pw", "trust-level": "READER"}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(
        reply.location.as_deref(),
        Some("https://h/spalloc/srv/spalloc/admin/users/bob")
    );
    let record = json(&reply).clone();
    assert_eq!(record["user-name"], "bob");
    assert_eq!(record["trust-level"], "READER");
    assert_eq!(record["has-password"], true);
    assert_eq!(record["enabled"], true);
    assert_eq!(record["locked"], false);
    assert!(record.get("password").is_none());
    let again = call(Method::Post, "/admin/users")
        .body(r#"{"user-name": "bob"}"#)
        .on_accounts(&a);
    assert_eq!(again.status, 409);

    let list = call(Method::Get, "/admin/users").on_accounts(&a);
    assert_eq!(
        json(&list),
        &serde_json::json!({
            "alice": format!("{BASE}/admin/users/alice"),
            "bob": format!("{BASE}/admin/users/bob"),
            "root": format!("{BASE}/admin/users/root"),
        })
    );
    // What GET gives can be changed and sent back.
    let mut changed = json(&call(Method::Get, "/admin/users/bob").on_accounts(&a)).clone();
    changed["trust-level"] = "USER".into();
    changed["enabled"] = false.into();
    let body = changed.to_string();
    let reply = call(Method::Put, "/admin/users/bob")
        .body(&body)
        .on_accounts(&a);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(json(&reply)["trust-level"], "USER");
    assert_eq!(json(&reply)["enabled"], false);
    let bob = a.user("bob", NOW).expect("reads").expect("exists");
    assert!(bob.disabled);
    assert_eq!(bob.identity.role, AccountRole::User);

    let reply = call(Method::Delete, "/admin/users/bob").on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (200, "deleted user bob"));
    let reply = call(Method::Get, "/admin/users/bob").on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (404, "no such user"));
}

#[test]
fn an_administrator_cannot_lock_themselves_out_or_rename_a_user() {
    let a = accounts();
    for body in [r#"{"trust-level": "USER"}"#, r#"{"enabled": false}"#] {
        let reply = call(Method::Put, "/admin/users/root")
            .body(body)
            .on_accounts(&a);
        assert_eq!(reply.status, 400, "{body}");
    }
    // Sending their own record back unchanged is fine.
    let reply = call(Method::Put, "/admin/users/root")
        .body(r#"{"trust-level": "ADMIN", "enabled": true, "locked": false}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 200);
    let reply = call(Method::Delete, "/admin/users/root").on_accounts(&a);
    assert_eq!(reply.status, 400);
    let reply = call(Method::Put, "/admin/users/alice")
        .body(r#"{"user-name": "alicia"}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 400);
    let reply = call(Method::Put, "/admin/users/alice")
        .body(r#"{"trust-level": "NMPI_EXEC"}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 400);
    let reply = call(Method::Put, "/admin/users/alice")
        .body(r#"{"nonsense": 1}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 400);
}

#[test]
fn a_new_password_set_by_an_administrator_logs_the_user_in() {
    let a = accounts();
    let reply = call(Method::Put, "/admin/users/alice")
        .body(r#"{"password": "new secret"}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 200);
    assert_eq!(json(&reply)["has-password"], true);
    let identity = a
        .check_password("alice", "new secret", NOW)
        .expect("logs in");
    assert_eq!(identity.user, "alice");
}

#[test]
fn groups_and_their_members_are_managed_one_membership_at_a_time() {
    let a = accounts();
    let reply = call(Method::Post, "/admin/groups")
        .body(r#"{"group-name": "crew", "type": "INTERNAL", "quota": null}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(
        json(&reply),
        &serde_json::json!({"group-name": "crew", "quota": null, "type": "INTERNAL", "members": {}})
    );
    let reply = call(Method::Post, "/admin/groups")
        .body(r#"{"group-name": "crew"}"#)
        .on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (400, "group already exists"));
    let reply = call(Method::Post, "/admin/groups")
        .body(r#"{"group-name": "rich", "quota": 100}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 400);

    let reply = call(Method::Post, "/admin/groups/crew/members")
        .body(r#"{"user-name": "alice"}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 201);
    let member_url = format!("{BASE}/admin/groups/crew/members/alice");
    assert_eq!(reply.location.as_deref(), Some(member_url.as_str()));
    assert_eq!(
        json(&reply),
        &serde_json::json!({
            "group-name": "crew",
            "group-url": format!("{BASE}/admin/groups/crew"),
            "user-name": "alice",
            "user-url": format!("{BASE}/admin/users/alice"),
        })
    );
    let reply = call(Method::Post, "/admin/groups/crew/members")
        .body(r#"{"user-name": "alice"}"#)
        .on_accounts(&a);
    assert_eq!(
        (reply.status, text(&reply)),
        (400, "user already a member of group")
    );
    let reply = call(Method::Post, "/admin/groups/crew/members")
        .body(r#"{"user-name": "nobody"}"#)
        .on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (404, "no such user"));

    let alice = json(&call(Method::Get, "/admin/users/alice").on_accounts(&a)).clone();
    assert_eq!(alice["groups"]["crew"], format!("{BASE}/admin/groups/crew"));
    let reply = call(Method::Put, "/admin/groups/crew")
        .body(r#"{"group-name": "team"}"#)
        .on_accounts(&a);
    assert_eq!(
        json(&reply)["members"]["alice"],
        format!("{BASE}/admin/groups/team/members/alice")
    );
    let reply = call(Method::Get, "/admin/groups/team/members/alice").on_accounts(&a);
    assert_eq!(reply.status, 200);
    let reply = call(Method::Delete, "/admin/groups/team/members/alice").on_accounts(&a);
    assert_eq!(reply.status, 204);
    let reply = call(Method::Delete, "/admin/groups/team/members/alice").on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (404, "no such membership"));
    let reply = call(Method::Get, "/admin/groups").on_accounts(&a);
    assert_eq!(
        json(&reply),
        &serde_json::json!({
            "team": format!("{BASE}/admin/groups/team"),
            "testers": format!("{BASE}/admin/groups/testers"),
        })
    );
    let reply = call(Method::Delete, "/admin/groups/team").on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (200, "deleted group team"));
    let reply = call(Method::Get, "/admin/groups/team").on_accounts(&a);
    assert_eq!((reply.status, text(&reply)), (404, "no such group"));
}

#[test]
fn names_outside_ascii_are_escaped_in_links_and_found_again() {
    let a = accounts();
    let reply = call(Method::Post, "/admin/users")
        .body(r#"{"user-name": "zoë@example.org"}"#)
        .on_accounts(&a);
    assert_eq!(reply.status, 201);
    let url = reply.location.clone().expect("location");
    assert_eq!(url, format!("{BASE}/admin/users/zo%C3%AB%40example.org"));
    let path = url.trim_start_matches(BASE).to_owned();
    let reply = call(Method::Get, &path).on_accounts(&a);
    assert_eq!(json(&reply)["user-name"], "zoë@example.org");
    assert_eq!(json(&reply)["has-password"], false);
}
