//! A property-test fuzzer over the v2 REST API's request handling on the
//! sans-I/O side ([`rest::handle`] and [`rest::poll_fingerprint`], and
//! [`rest::admin::handle_accounts`] for the admin API's users and groups,
//! on an in-memory accounts database, dispatched as the HTTP shell does
//! with [`rest::uses_accounts`]), as `fuzz_dispatch.rs` does for the
//! legacy protocol.
//!
//! Each case is a session of requests from four users of every role, with
//! paths built from the API's real segments and junk, query parameters
//! with nasty values, and bodies that are valid create requests with random
//! fields, arbitrary JSON or raw bytes; interleaved with time passing and
//! BMP work completing. Admin requests name real and junk users, groups
//! and boards, with user, group and member records as bodies. Checked:
//! nothing panics; no reply is a 5xx other than 501 for board I/O and
//! machine import; every error has a text message; every 2xx reply with a
//! body is JSON or text; a 201 has a `Location`; no board is ever in two
//! jobs; a job is never shown to anybody but its owner and admins; and
//! nobody but an administrator gets anything but an error from the admin
//! API.
//!
//! `PROPTEST_CASES=20000 cargo test --release -p spalloc-server --test
//! http_fuzz` runs a longer campaign.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spalloc_server::accounts::{Accounts, NewUser, Role as AccountRole};
use spalloc_server::rest::{self, ApiRequest, ApiUser, Body, Method, Role};
use spalloc_server::{ServerConfig, Service};

const CONFIG: &str = r#"
    seconds_before_free = 0.5
    max_retired_jobs = 5

    [[machine]]
    name = "m"
    tags = ["default"]
    width = 2
    height = 1
    base_ip = "10.0.0.0"
    dead_boards = [[1, 0, 2]]
    dead_links = [[0, 0, 1, "north"]]
"#;

fn users() -> Vec<ApiUser> {
    [
        ("alice", Role::User),
        ("bob", Role::User),
        ("root", Role::Admin),
        ("rita", Role::Reader),
    ]
    .into_iter()
    .map(|(name, role)| ApiUser {
        name: name.into(),
        role,
        csrf: None,
        groups: Vec::new(),
    })
    .collect()
}

/// The fuzzed users' accounts (no passwords), with `testers` as their group.
fn accounts(users: &[ApiUser]) -> Accounts {
    let accounts = Accounts::in_memory().expect("in-memory accounts");
    for u in users {
        let role = match u.role {
            Role::Reader => AccountRole::Reader,
            Role::User => AccountRole::User,
            Role::Admin => AccountRole::Admin,
        };
        let user = NewUser {
            name: u.name.clone(),
            role,
            password: None,
            groups: vec!["testers".into()],
        };
        accounts.add_user(&user, 1_000).expect("adds");
    }
    accounts
}

fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just("-1".to_owned()),
        Just("True".to_owned()),
        Just("false".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("1e9".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("10.0.0.1".to_owned()),
        Just("\u{0}".to_owned()),
        "[ -~]{0,8}",
        any::<i32>().prop_map(|i| i.to_string()),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1u64..5).prop_map(|i| i.to_string()),
        1 => nasty_text(),
        2 => prop::sample::select(vec![
            "jobs", "machines", "m", "machine", "power", "chip", "keepalive", "report-issue",
            "memory", "router", "logical-board", "physical-board", "board-ip", "emergencyStop",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Admin API paths over real and junk names.
fn admin_path() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        3 => prop::sample::select(vec!["alice", "bob", "root", "rita", "crew", "testers"])
            .prop_map(str::to_owned),
        1 => nasty_text().prop_map(|t| {
            percent_encoding::utf8_percent_encode(&t, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        }),
    ];
    prop_oneof![
        1 => prop::sample::select(vec![
            "/admin", "/admin/", "/admin/import", "/admin/board", "/admin/users", "/admin/groups",
            "/admin/nope",
        ])
        .prop_map(str::to_owned),
        2 => name.clone().prop_map(|n| format!("/admin/users/{n}")),
        2 => name.clone().prop_map(|n| format!("/admin/groups/{n}")),
        1 => name.clone().prop_map(|n| format!("/admin/groups/{n}/members")),
        1 => (name.clone(), name).prop_map(|(g, u)| format!("/admin/groups/{g}/members/{u}")),
    ]
}

/// allocserv's user, group and member records with random fields, some junk.
fn admin_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just(("user-name", json!("carol"))),
        Just(("user-name", json!("alice"))),
        Just(("user-name", json!(""))),
        Just(("group-name", json!("crew"))),
        Just(("group-name", json!("testers"))),
        Just(("group-name", json!("bad name"))),
        prop::sample::select(vec!["READER", "USER", "ADMIN", "BASIC", "admin", ""])
            .prop_map(|t| ("trust-level", json!(t))),
        any::<bool>().prop_map(|b| ("enabled", json!(b))),
        any::<bool>().prop_map(|b| ("locked", json!(b))),
        Just(("quota", json!(5))),
        Just(("quota", Value::Null)),
        Just(("type", json!("INTERNAL"))),
        Just(("type", json!("COLLABRATORY"))),
        Just(("open-id-subject", json!("x"))),
        Just(("has-password", json!(true))),
        Just(("groups", json!({"crew": "u"}))),
        json_value().prop_map(|v| ("user-name", v)),
    ];
    // A password is rare: setting one is argon2 work by design.
    let password = prop::option::weighted(0.05, Just(("password", json!("pw"))));
    (prop::collection::vec(field, 0..5), password).prop_map(|(fields, password)| {
        let mut m = Map::new();
        for (k, v) in fields.into_iter().chain(password) {
            m.insert(k.to_owned(), v);
        }
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
    })
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => admin_path(),
        3 => (1u64..5, prop::sample::select(vec![
            "", "/", "/keepalive", "/machine", "/machine/power", "/chip", "/report-issue", "/memory",
            "/router",
        ]))
            .prop_map(|(id, tail)| format!("/jobs/{id}{tail}")),
        2 => prop::sample::select(vec![
            "/", "/jobs", "/jobs/", "/machines", "/machines/m", "/machines/m/chip",
            "/machines/m/logical-board", "/machines/m/physical-board", "/machines/m/board-ip",
            "/machines/nope",
        ])
        .prop_map(str::to_owned),
        1 => prop::collection::vec(segment(), 0..5).prop_map(|s| s.join("/")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        nasty_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z-]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A create request with a random subset of real fields, some with junk values.
fn create_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just(("keepalive-interval", json!("PT60S"))),
        Just(("keepalive-interval", json!("PT1S"))),
        Just(("keepalive-interval", json!(45))),
        Just(("machine-name", json!("m"))),
        Just(("machine-name", json!(""))),
        Just(("tags", json!(["default"]))),
        Just(("owner", json!("bob"))),
        Just(("group", json!("g"))),
        Just(("nmpi-job-id", json!(3))),
        (1i64..8).prop_map(|n| ("num-boards", json!(n))),
        (0i64..3, 0i64..3).prop_map(|(w, h)| ("dimensions", json!({"width": w, "height": h}))),
        (0i64..3, 0i64..2, 0i64..4)
            .prop_map(|(x, y, z)| ("board", json!({"x": x, "y": y, "z": z}))),
        (0i64..6).prop_map(|b| ("board", json!({"cabinet": 0, "frame": 0, "board": b}))),
        Just(("board", json!({"address": "10.0.0.1"}))),
        (-2i64..3).prop_map(|n| ("max-dead-boards", json!(n))),
        json_value().prop_map(|v| ("num-boards", v)),
    ];
    prop::collection::vec(field, 0..6).prop_map(|fields| {
        let mut m = Map::new();
        for (k, v) in fields {
            m.insert(k.to_owned(), v);
        }
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => create_body(),
        2 => admin_body(),
        1 => prop::sample::select(vec!["true", "false", " TRUE\n", "maybe"])
            .prop_map(|t| t.as_bytes().to_vec()),
        1 => Just(br#"{"power": "ON"}"#.to_vec()),
        1 => Just(br#"{"issue": "x", "boards": [{"machine": "m", "chip": {"x": 0, "y": 0}}]}"#.to_vec()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(vec![
        "wait", "deleted", "limit", "start", "reason", "x", "y", "z", "cabinet", "frame", "board",
        "address", "junk", "machine", "size",
    ]);
    prop::collection::vec((name.prop_map(str::to_owned), nasty_text()), 0..4)
}

#[derive(Debug, Clone)]
enum Step {
    Request {
        user: usize,
        method: Method,
        path: String,
        query: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Time(f64),
    BmpDone,
}

fn step() -> impl Strategy<Value = Step> {
    let method = prop::sample::select(vec![
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Other,
    ]);
    prop_oneof![
        8 => (0usize..4, method, path(), query(), body()).prop_map(|(user, method, path, query, body)| {
            Step::Request { user, method, path, query, body }
        }),
        1 => (0.0f64..200.0).prop_map(Step::Time),
        2 => Just(Step::BmpDone),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_request_sequence_panics_gets_a_5xx_or_breaks_an_invariant(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let config = ServerConfig::from_toml_str(CONFIG).expect("config");
        let mut service = Service::new(&config);
        let users = users();
        let accounts = accounts(&users);
        let mut now = 1_000.0;
        for step in steps {
            match step {
                Step::Time(dt) => {
                    now += dt;
                    service.tick(now);
                }
                Step::BmpDone => {
                    for r in service.take_bmp_requests() {
                        service.bmp_request_done(r.id, Ok(()), now);
                    }
                }
                Step::Request { user, method, path, query, body } => {
                    let who = &users[user];
                    let request = ApiRequest {
                        method,
                        path: &path,
                        query: &query,
                        body: &body,
                        user: who,
                        base: "https://h/spalloc/srv/spalloc",
                        host: Some("1.2.3.4"),
                    };
                    let _ = rest::poll_fingerprint(&service, &request);
                    let reply = if rest::uses_accounts(&request) {
                        rest::admin::handle_accounts(&accounts, &request, now as i64)
                    } else if let Some(access) = rest::board_access(&service, &request) {
                        match access {
                            Err(reply) => reply,
                            // The shell would do it over the network: the
                            // answer is the board's, so only what was
                            // decided is checked.
                            Ok(_) => {
                                prop_assert!(who.role >= Role::User);
                                continue;
                            }
                        }
                    } else {
                        rest::handle(&mut service, &request, now)
                    };
                    let status = reply.status;
                    prop_assert!((200..500).contains(&status) || status == 501, "{status} for {method:?} {path}");
                    let admin_api = path.split('/').find(|s| !s.is_empty()) == Some("admin");
                    if admin_api && who.role != Role::Admin {
                        prop_assert!(status >= 400, "{} got {status} from {path}", who.name);
                    }
                    match &reply.body {
                        Body::Text(m) => prop_assert!(!m.is_empty(), "empty message, {status}"),
                        Body::Json(_) => prop_assert!(status < 300),
                        Body::Empty => prop_assert!(matches!(status, 202 | 204)),
                        Body::Bytes(_) => prop_assert!(status == 200),
                    }
                    if status == 201 {
                        prop_assert!(reply.location.is_some());
                    }
                    // Nobody but owners and admins ever sees a job's owner.
                    if let Body::Json(v) = &reply.body {
                        if let Some(owner) = v.get("owner").and_then(Value::as_str) {
                            prop_assert!(who.role == Role::Admin || owner == who.name,
                                "{} saw {owner}'s job", who.name);
                        }
                    }
                }
            }
            service.controller.check_board_ownership().map_err(TestCaseError::fail)?;
        }
    }
}
