//! Log-in, sessions, CSRF, HTTP Basic, bearer tokens and the token
//! endpoints over real sockets, the way SpiNNMan's `SpallocClient` and a
//! browser use them (contract: `spinnman-v2-contract.md` §2.2, §3.1, §3.2,
//! §7). The API itself is stood in for by one protected route that answers
//! who the caller is.

use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use spalloc_server::accounts::{Accounts, NewUser, Role};
use spalloc_server::http::auth::{self, authenticate};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A stand-in API route: who is calling, and their CSRF token.
async fn whoami(State(accounts): State<Accounts>, parts: Parts) -> Response {
    match authenticate(&accounts, &parts).await {
        Ok(p) => Json(json!({
            "user": p.user,
            "role": p.role.as_str(),
            "groups": p.groups,
            "csrf-header": p.csrf.as_ref().map(|c| c.header),
            "csrf-token": p.csrf.as_ref().map(|c| c.value.clone()),
        }))
        .into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// The auth routes plus the stand-in, served on a free port until dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(accounts: Accounts) -> TestServer {
        let router = auth::routes(accounts.clone()).merge(
            Router::new()
                .route("/protected", get(whoami).post(whoami).delete(whoami))
                .with_state(accounts),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("has an address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serves");
            });
        });
        TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One HTTP exchange, as a client that (like SpiNNMan's) never follows
/// redirects and handles the cookie itself sees it.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `JSESSIONID` it sets, if any.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| v.strip_prefix("JSESSIONID="))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .filter(|v| !v.is_empty())
    }

    fn json(&self) -> Value {
        json(&self.body)
    }
}

/// What a request carries.
#[derive(Default)]
struct Send<'a> {
    session: Option<&'a str>,
    csrf: Option<&'a str>,
    basic: Option<(&'a str, &'a str)>,
    bearer: Option<&'a str>,
    authorization: Option<&'a str>,
    form: Option<&'a [(&'a str, &'a str)]>,
    body: Option<&'a str>,
    /// `X-Forwarded-Proto`, as a TLS-terminating reverse proxy sends it.
    forwarded_proto: Option<&'a str>,
}

fn send(method: &str, url: &str, what: Send<'_>) -> Reply {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut request = agent.request(method, url);
    if let Some(session) = what.session {
        request = request.set("Cookie", &format!("JSESSIONID={session}"));
    }
    if let Some(csrf) = what.csrf {
        request = request.set("X-CSRF-TOKEN", csrf);
    }
    if let Some((user, password)) = what.basic {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.set("Authorization", &format!("Basic {encoded}"));
    }
    if let Some(token) = what.bearer {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    if let Some(value) = what.authorization {
        request = request.set("Authorization", value);
    }
    if let Some(proto) = what.forwarded_proto {
        request = request.set("X-Forwarded-Proto", proto);
    }
    let result = match (what.form, what.body) {
        (Some(form), _) => request.send_form(form),
        (None, Some(body)) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        (None, None) => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let mut headers = Vec::new();
    for name in response.headers_names() {
        for value in response.all(&name) {
            headers.push((name.clone(), value.to_owned()));
        }
    }
    Reply {
        status: response.status(),
        headers,
        body: response.into_string().unwrap_or_default(),
    }
}

impl TestServer {
    fn get(&self, path: &str, what: Send<'_>) -> Reply {
        send("GET", &self.url(path), what)
    }

    fn post(&self, path: &str, what: Send<'_>) -> Reply {
        send("POST", &self.url(path), what)
    }
}

fn accounts_with_alice() -> Accounts {
    let accounts = Accounts::in_memory().expect("opens");
    add_alice(&accounts);
    accounts
}

fn add_alice(accounts: &Accounts) {
    accounts
        .add_user(
            &NewUser {
                name: "alice".into(),
                role: Role::User,
                password: Some("wonderland".into()),
                groups: vec!["crew".into()],
            },
            now(),
        )
        .expect("adds alice");
}

fn now() -> i64 {
    spalloc_server::clock::now() as i64
}

/// The CSRF token as SpiNNMan finds it: the greedy single-line regex
/// `<input type="hidden" name="_csrf" value="(.*)" />`.
fn csrf_from_form(page: &str) -> Option<String> {
    const START: &str = r#"<input type="hidden" name="_csrf" value=""#;
    const END: &str = r#"" />"#;
    page.lines().find_map(|line| {
        let at = line.find(START)?;
        let rest = &line[at + START.len()..];
        // Greedy: up to the last `" />` on the line.
        let end = rest.rfind(END)?;
        Some(rest[..end].to_owned())
    })
}

/// The form's not-yet-logged-in session and its CSRF token.
fn fetch_form(server: &TestServer) -> (String, String) {
    let form = server.get("/spalloc/system/login.html", Send::default());
    let session = form.session_cookie().expect("the form sets a session");
    let csrf = csrf_from_form(&form.body).expect("the form has _csrf");
    (session, csrf)
}

/// SpiNNMan's password log-in: form, then POST.
fn log_in(server: &TestServer, user: &str, password: &str) -> Reply {
    let (temporary, csrf) = fetch_form(server);
    server.post(
        "/spalloc/system/perform_login",
        Send {
            session: Some(&temporary),
            form: Some(&[
                ("_csrf", &csrf),
                ("username", user),
                ("password", password),
                ("submit", "submit"),
            ]),
            ..Send::default()
        },
    )
}

fn logged_in_session(server: &TestServer) -> String {
    let response = log_in(server, "alice", "wonderland");
    assert_eq!(response.status, 302);
    response.session_cookie().expect("a session on success")
}

/// `GET /protected` with the cookie only: who the server thinks we are.
fn whoami_by_cookie(server: &TestServer, session: &str) -> Reply {
    server.get(
        "/protected",
        Send {
            session: Some(session),
            ..Send::default()
        },
    )
}

/// The CSRF token the server gives a session.
fn csrf_of(server: &TestServer, session: &str) -> String {
    whoami_by_cookie(server, session).json()["csrf-token"]
        .as_str()
        .expect("a CSRF token")
        .to_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn the_login_form_sets_a_session_and_has_the_csrf_input_alone_on_its_line() {
    let server = TestServer::start(accounts_with_alice());
    let form = server.get("/spalloc/system/login.html", Send::default());
    assert_eq!(form.status, 200);
    assert!(form.session_cookie().is_some());
    let token = csrf_from_form(&form.body).expect("found by SpiNNMan's regex");
    assert!(!token.is_empty() && token.chars().all(|c| c.is_ascii_hexdigit()));
    let line = form
        .body
        .lines()
        .find(|l| l.contains("_csrf"))
        .expect("line");
    assert_eq!(
        line,
        format!(r#"<input type="hidden" name="_csrf" value="{token}" />"#)
    );
}

/// The `Set-Cookie` value that gives the session.
fn session_set_cookie(reply: &Reply) -> String {
    reply
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("JSESSIONID="))
        .map(|(_, v)| v.clone())
        .expect("a session cookie")
}

#[test]
fn the_session_cookie_is_secure_only_when_the_client_came_over_https() {
    let server = TestServer::start(accounts_with_alice());
    let plain = session_set_cookie(&server.get("/spalloc/system/login.html", Send::default()));
    assert!(
        plain.contains("HttpOnly") && plain.contains("SameSite=Lax"),
        "{plain}"
    );
    assert!(!plain.contains("Secure"), "{plain}");

    // Behind a TLS-terminating proxy: the form's session and the logged-in one.
    let behind_proxy = || Send {
        forwarded_proto: Some("https"),
        ..Send::default()
    };
    let form = server.get("/spalloc/system/login.html", behind_proxy());
    let cookie = session_set_cookie(&form);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let session = form.session_cookie().expect("session");
    let csrf = csrf_from_form(&form.body).expect("csrf");
    let logged_in = server.post(
        "/spalloc/system/perform_login",
        Send {
            session: Some(&session),
            form: Some(&[
                ("_csrf", &csrf),
                ("username", "alice"),
                ("password", "wonderland"),
            ]),
            ..behind_proxy()
        },
    );
    assert_eq!(logged_in.status, 302);
    assert!(session_set_cookie(&logged_in).ends_with("; Secure"));
}

#[test]
fn a_password_log_in_answers_302_with_a_new_session_that_authenticates_gets() {
    let server = TestServer::start(accounts_with_alice());
    let (temporary, csrf) = fetch_form(&server);
    assert_eq!(whoami_by_cookie(&server, &temporary).status, 401);

    let response = server.post(
        "/spalloc/system/perform_login",
        Send {
            session: Some(&temporary),
            form: Some(&[
                ("_csrf", &csrf),
                ("username", "alice"),
                ("password", "wonderland"),
                ("submit", "submit"),
            ]),
            ..Send::default()
        },
    );
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("/spalloc/system/"));
    let session = response.session_cookie().expect("a session on success");
    assert_ne!(session, temporary, "a new id after log-in");

    let me = whoami_by_cookie(&server, &session);
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["user"], "alice");
    assert_eq!(me["role"], "user");
    assert_eq!(me["groups"], json!(["crew"]));
    assert_eq!(me["csrf-header"], "X-CSRF-TOKEN");
    assert!(me["csrf-token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        whoami_by_cookie(&server, &temporary).status,
        401,
        "the pre-log-in id is dead"
    );
}

#[test]
fn a_failed_log_in_answers_401_json_with_a_message_and_no_cookie() {
    let server = TestServer::start(accounts_with_alice());
    for (user, password) in [("alice", "wrong"), ("nobody", "wonderland")] {
        let response = log_in(&server, user, password);
        assert_eq!(response.status, 401);
        assert_eq!(response.session_cookie(), None);
        let body = response.json();
        assert_eq!(body["message"], "computer says no");
        assert!(body["timestamp"].is_string());
    }
}

#[test]
fn a_log_in_without_the_forms_csrf_token_is_refused_with_no_cookie() {
    let server = TestServer::start(accounts_with_alice());
    let (temporary, _) = fetch_form(&server);
    let no_token: &[(&str, &str)] = &[("username", "alice"), ("password", "wonderland")];
    let wrong_token: &[(&str, &str)] = &[
        ("_csrf", "0000"),
        ("username", "alice"),
        ("password", "wonderland"),
    ];
    for (session, form) in [
        (Some(temporary.as_str()), no_token),
        (Some(temporary.as_str()), wrong_token),
        (None, wrong_token),
    ] {
        let response = server.post(
            "/spalloc/system/perform_login",
            Send {
                session,
                form: Some(form),
                ..Send::default()
            },
        );
        assert_eq!(response.status, 403);
        assert_eq!(response.session_cookie(), None);
        assert!(response.json()["message"].is_string());
    }
}

#[test]
fn a_changing_request_with_a_session_needs_the_sessions_csrf_header() {
    let server = TestServer::start(accounts_with_alice());
    let session = logged_in_session(&server);
    let csrf = csrf_of(&server, &session);
    for method in ["POST", "DELETE"] {
        let url = server.url("/protected");
        let with = |csrf| Send {
            session: Some(&session),
            csrf,
            ..Send::default()
        };
        let without = send(method, &url, with(None));
        assert_eq!(without.status, 403);
        assert!(without.body.contains("X-CSRF-TOKEN"));
        assert_eq!(send(method, &url, with(Some("0123"))).status, 403);
        assert_eq!(send(method, &url, with(Some(&csrf))).status, 200);
    }
}

#[test]
fn an_api_call_without_credentials_gets_401_text_and_never_a_redirect() {
    let server = TestServer::start(accounts_with_alice());
    for session in [None, Some("nonsense")] {
        let response = server.get(
            "/protected",
            Send {
                session,
                ..Send::default()
            },
        );
        assert_eq!(response.status, 401);
        assert!(response.header("location").is_none());
        assert!(response.header("www-authenticate").is_some());
        let kind = response.header("content-type").unwrap_or("");
        assert!(kind.starts_with("text/plain"), "{kind}");
    }
}

#[test]
fn http_basic_authenticates_any_request_without_csrf() {
    let server = TestServer::start(accounts_with_alice());
    let basic = |password| Send {
        basic: Some(("alice", password)),
        ..Send::default()
    };
    let get = server.get("/protected", basic("wonderland"));
    assert_eq!(get.status, 200);
    let me = get.json();
    assert_eq!(me["user"], "alice");
    assert_eq!(me["csrf-token"], Value::Null, "no session, no CSRF token");
    assert_eq!(server.post("/protected", basic("wonderland")).status, 200);
    assert_eq!(server.get("/protected", basic("nope")).status, 401);
    let other_scheme = server.get(
        "/protected",
        Send {
            authorization: Some("Digest abc"),
            ..Send::default()
        },
    );
    assert_eq!(other_scheme.status, 401);
}

#[test]
fn a_bearer_login_leaves_a_session_that_authenticates_cookie_only_gets() {
    let accounts = accounts_with_alice();
    let token = accounts
        .create_token("alice", "t", None, now())
        .expect("token")
        .secret;
    let server = TestServer::start(accounts);
    // SpiNNMan §3.2: GET login.html with the token and no cookie.
    let form = server.get(
        "/spalloc/system/login.html",
        Send {
            bearer: Some(&token),
            ..Send::default()
        },
    );
    assert!((200..400).contains(&form.status));
    let session = form.session_cookie().expect("a session");
    // Then GETs carry only the cookie.
    let me = whoami_by_cookie(&server, &session);
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["user"], "alice");
    let csrf = me["csrf-token"]
        .as_str()
        .expect("the session's token")
        .to_owned();
    // And changing calls carry cookie, CSRF header and token.
    let post = server.post(
        "/protected",
        Send {
            session: Some(&session),
            csrf: Some(&csrf),
            bearer: Some(&token),
            ..Send::default()
        },
    );
    assert_eq!(post.status, 200);
    assert_eq!(post.json()["csrf-token"], csrf.as_str());
    // A token alone needs no CSRF token.
    let bare = send(
        "DELETE",
        &server.url("/protected"),
        Send {
            bearer: Some(&token),
            ..Send::default()
        },
    );
    assert_eq!(bare.status, 200);
}

#[test]
fn a_bad_bearer_token_gets_401_and_no_session_from_the_login_form() {
    let server = TestServer::start(accounts_with_alice());
    for token in ["spalloc_0000", "whatever"] {
        let bearer = || Send {
            bearer: Some(token),
            ..Send::default()
        };
        let form = server.get("/spalloc/system/login.html", bearer());
        assert_eq!(form.status, 401);
        assert_eq!(form.session_cookie(), None);
        assert_eq!(server.get("/protected", bearer()).status, 401);
    }
}

#[test]
fn three_failed_log_ins_lock_the_account_against_the_right_password() {
    let server = TestServer::start(accounts_with_alice());
    assert_eq!(log_in(&server, "alice", "wonderland").status, 302);
    for _ in 0..3 {
        assert_eq!(log_in(&server, "alice", "wrong").status, 401);
    }
    let locked = log_in(&server, "alice", "wonderland");
    assert_eq!(locked.status, 401);
    assert_eq!(locked.session_cookie(), None);
    let basic = server.get(
        "/protected",
        Send {
            basic: Some(("alice", "wonderland")),
            ..Send::default()
        },
    );
    assert_eq!(basic.status, 401, "Basic is locked too");
}

#[test]
fn logging_out_ends_the_session() {
    let server = TestServer::start(accounts_with_alice());
    let session = logged_in_session(&server);
    let csrf = csrf_of(&server, &session);
    let refused = server.post(
        "/spalloc/system/perform_logout",
        Send {
            session: Some(&session),
            ..Send::default()
        },
    );
    assert_eq!(refused.status, 403, "CSRF needed");
    assert_eq!(whoami_by_cookie(&server, &session).status, 200);
    let out = server.post(
        "/spalloc/system/perform_logout",
        Send {
            session: Some(&session),
            form: Some(&[("_csrf", &csrf)]),
            ..Send::default()
        },
    );
    assert_eq!(out.status, 302);
    assert_eq!(whoami_by_cookie(&server, &session).status, 401);
}

#[test]
fn a_logged_in_user_makes_lists_uses_and_revokes_their_own_tokens() {
    let server = TestServer::start(accounts_with_alice());
    let session = logged_in_session(&server);
    let csrf = csrf_of(&server, &session);
    let by_session = |body| Send {
        session: Some(&session),
        csrf: Some(&csrf),
        body,
        ..Send::default()
    };
    let tokens = "/spalloc/srv/spalloc/tokens";
    let made = server.post(
        tokens,
        by_session(Some(r#"{"name": "laptop", "expires-in-days": 30}"#)),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let location = made.header("location").expect("location").to_owned();
    let made = made.json();
    let secret = made["token"].as_str().expect("secret").to_owned();
    assert_eq!(made["name"], "laptop");
    assert!(made["expires"].is_string());
    assert_eq!(location, made["token-ref"].as_str().expect("ref"));
    let bearer = || Send {
        bearer: Some(&secret),
        ..Send::default()
    };

    assert_eq!(server.get("/protected", bearer()).json()["user"], "alice");

    let listed = server.get(tokens, by_session(None)).json();
    assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(1));
    assert!(
        listed["tokens"][0].get("token").is_none(),
        "never shown again"
    );
    assert!(listed["tokens"][0]["last-used"].is_string());

    // A token cannot make more tokens.
    assert_eq!(server.post(tokens, bearer()).status, 403);

    let revoke = || send("DELETE", &server.url(&location), by_session(None));
    assert_eq!(revoke().status, 204);
    assert_eq!(server.get("/protected", bearer()).status, 401);
    assert_eq!(revoke().status, 404);
}

#[test]
fn a_bad_token_request_gets_400_with_a_message() {
    let server = TestServer::start(accounts_with_alice());
    for body in [
        r#"{"name": 5}"#,
        r#"{"colour": "red"}"#,
        r#"{"expires-in-days": 0}"#,
        r#"{"expires-in-days": -1}"#,
        r#"{"expires-in-days": 99999999999}"#,
        "not json",
    ] {
        let response = server.post(
            "/spalloc/srv/spalloc/tokens",
            Send {
                basic: Some(("alice", "wonderland")),
                body: Some(body),
                ..Send::default()
            },
        );
        assert_eq!(response.status, 400, "{body}");
        assert!(!response.body.is_empty());
    }
}

fn state_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spalloc-http-auth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.sqlite")
}

fn open(path: &Path) -> Accounts {
    Accounts::open(path).expect("opens")
}

#[test]
fn sessions_and_their_csrf_tokens_survive_a_server_restart() {
    let path = state_file("restart");
    let (session, csrf, token_session) = {
        let accounts = open(&path);
        add_alice(&accounts);
        let token = accounts
            .create_token("alice", "t", None, now())
            .expect("token")
            .secret;
        let server = TestServer::start(accounts);
        let session = logged_in_session(&server);
        let csrf = csrf_of(&server, &session);
        let form = server.get(
            "/spalloc/system/login.html",
            Send {
                bearer: Some(&token),
                ..Send::default()
            },
        );
        (session, csrf, form.session_cookie().expect("session"))
    };
    let server = TestServer::start(open(&path));
    let me = whoami_by_cookie(&server, &session);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["csrf-token"], csrf.as_str());
    let post = server.post(
        "/protected",
        Send {
            session: Some(&session),
            csrf: Some(&csrf),
            ..Send::default()
        },
    );
    assert_eq!(post.status, 200);
    assert_eq!(whoami_by_cookie(&server, &token_session).status, 200);
}
