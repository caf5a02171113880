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
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::StatusCode;
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

/// A client that, like SpiNNMan's, never follows redirects and handles the
/// cookie itself.
fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
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

/// The `JSESSIONID` a response sets, if any.
fn session_cookie(response: &reqwest::blocking::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("JSESSIONID="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .filter(|v| !v.is_empty())
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

fn with_cookie(request: RequestBuilder, session: &str) -> RequestBuilder {
    request.header(reqwest::header::COOKIE, format!("JSESSIONID={session}"))
}

/// SpiNNMan's password log-in: form, POST, then the session it was given.
fn log_in(server: &TestServer, user: &str, password: &str) -> reqwest::blocking::Response {
    let c = client();
    let form = c
        .get(server.url("/spalloc/system/login.html"))
        .send()
        .expect("form");
    let temporary = session_cookie(&form).expect("the form sets a session");
    let csrf = csrf_from_form(&form.text().expect("body")).expect("the form has _csrf");
    with_cookie(
        c.post(server.url("/spalloc/system/perform_login")),
        &temporary,
    )
    .form(&[
        ("_csrf", csrf.as_str()),
        ("username", user),
        ("password", password),
        ("submit", "submit"),
    ])
    .send()
    .expect("login")
}

fn logged_in_session(server: &TestServer) -> String {
    let response = log_in(server, "alice", "wonderland");
    assert_eq!(response.status(), StatusCode::FOUND);
    session_cookie(&response).expect("a session on success")
}

/// `GET /protected` with the cookie only: who the server thinks we are.
fn whoami_by_cookie(server: &TestServer, session: &str) -> (StatusCode, String) {
    let r = with_cookie(client().get(server.url("/protected")), session)
        .send()
        .expect("request");
    (r.status(), r.text().expect("body"))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn the_login_form_sets_a_session_and_has_the_csrf_input_alone_on_its_line() {
    let server = TestServer::start(accounts_with_alice());
    let form = client()
        .get(server.url("/spalloc/system/login.html"))
        .send()
        .expect("form");
    assert_eq!(form.status(), StatusCode::OK);
    assert!(session_cookie(&form).is_some());
    let page = form.text().expect("body");
    let token = csrf_from_form(&page).expect("found by SpiNNMan's regex");
    assert!(!token.is_empty() && token.chars().all(|c| c.is_ascii_hexdigit()));
    let line = page.lines().find(|l| l.contains("_csrf")).expect("line");
    assert_eq!(
        line,
        format!(r#"<input type="hidden" name="_csrf" value="{token}" />"#)
    );
}

#[test]
fn a_password_log_in_answers_302_with_a_new_session_that_authenticates_gets() {
    let server = TestServer::start(accounts_with_alice());
    let c = client();
    let form = c
        .get(server.url("/spalloc/system/login.html"))
        .send()
        .expect("form");
    let temporary = session_cookie(&form).expect("session");
    let csrf = csrf_from_form(&form.text().expect("body")).expect("csrf");
    assert_eq!(
        whoami_by_cookie(&server, &temporary).0,
        StatusCode::UNAUTHORIZED
    );

    let response = with_cookie(
        c.post(server.url("/spalloc/system/perform_login")),
        &temporary,
    )
    .form(&[
        ("_csrf", csrf.as_str()),
        ("username", "alice"),
        ("password", "wonderland"),
        ("submit", "submit"),
    ])
    .send()
    .expect("login");
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/spalloc/system/")
    );
    let session = session_cookie(&response).expect("a session on success");
    assert_ne!(session, temporary, "a new id after log-in");

    let (status, body) = whoami_by_cookie(&server, &session);
    assert_eq!(status, StatusCode::OK, "{body}");
    let me = json(&body);
    assert_eq!(me["user"], "alice");
    assert_eq!(me["role"], "user");
    assert_eq!(me["groups"], json!(["crew"]));
    assert_eq!(me["csrf-header"], "X-CSRF-TOKEN");
    assert!(me["csrf-token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        whoami_by_cookie(&server, &temporary).0,
        StatusCode::UNAUTHORIZED,
        "the pre-log-in id is dead"
    );
}

#[test]
fn a_failed_log_in_answers_401_json_with_a_message_and_no_cookie() {
    let server = TestServer::start(accounts_with_alice());
    for (user, password) in [("alice", "wrong"), ("nobody", "wonderland")] {
        let response = log_in(&server, user, password);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(session_cookie(&response), None);
        let body = json(&response.text().expect("body"));
        assert_eq!(body["message"], "computer says no");
        assert!(body["timestamp"].is_string());
    }
}

#[test]
fn a_log_in_without_the_forms_csrf_token_is_refused_with_no_cookie() {
    let server = TestServer::start(accounts_with_alice());
    let c = client();
    let form = c
        .get(server.url("/spalloc/system/login.html"))
        .send()
        .expect("form");
    let temporary = session_cookie(&form).expect("session");
    let attempts = [
        with_cookie(
            c.post(server.url("/spalloc/system/perform_login")),
            &temporary,
        )
        .form(&[("username", "alice"), ("password", "wonderland")]),
        with_cookie(
            c.post(server.url("/spalloc/system/perform_login")),
            &temporary,
        )
        .form(&[
            ("_csrf", "0000"),
            ("username", "alice"),
            ("password", "wonderland"),
        ]),
        c.post(server.url("/spalloc/system/perform_login")).form(&[
            ("_csrf", "0000"),
            ("username", "alice"),
            ("password", "wonderland"),
        ]),
    ];
    for attempt in attempts {
        let response = attempt.send().expect("login");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(session_cookie(&response), None);
        assert!(json(&response.text().expect("body"))["message"].is_string());
    }
}

#[test]
fn a_changing_request_with_a_session_needs_the_sessions_csrf_header() {
    let server = TestServer::start(accounts_with_alice());
    let session = logged_in_session(&server);
    let csrf = json(&whoami_by_cookie(&server, &session).1)["csrf-token"]
        .as_str()
        .expect("token")
        .to_owned();
    let c = client();
    for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
        let without = with_cookie(
            c.request(method.clone(), server.url("/protected")),
            &session,
        )
        .send()
        .expect("request");
        assert_eq!(without.status(), StatusCode::FORBIDDEN);
        assert!(without.text().expect("body").contains("X-CSRF-TOKEN"));
        let wrong = with_cookie(
            c.request(method.clone(), server.url("/protected")),
            &session,
        )
        .header("X-CSRF-TOKEN", "0123")
        .send()
        .expect("request");
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        let right = with_cookie(c.request(method, server.url("/protected")), &session)
            .header("X-CSRF-TOKEN", &csrf)
            .send()
            .expect("request");
        assert_eq!(right.status(), StatusCode::OK);
    }
}

#[test]
fn an_api_call_without_credentials_gets_401_text_and_never_a_redirect() {
    let server = TestServer::start(accounts_with_alice());
    for cookie in [None, Some("JSESSIONID=nonsense")] {
        let mut request = client().get(server.url("/protected"));
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        let response = request.send().expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get("location").is_none());
        assert!(response.headers().get("www-authenticate").is_some());
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(kind.starts_with("text/plain"), "{kind}");
    }
}

#[test]
fn http_basic_authenticates_any_request_without_csrf() {
    let server = TestServer::start(accounts_with_alice());
    let c = client();
    let get = c
        .get(server.url("/protected"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .expect("request");
    assert_eq!(get.status(), StatusCode::OK);
    let me = json(&get.text().expect("body"));
    assert_eq!(me["user"], "alice");
    assert_eq!(me["csrf-token"], Value::Null, "no session, no CSRF token");
    let post = c
        .post(server.url("/protected"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .expect("request");
    assert_eq!(post.status(), StatusCode::OK);
    let wrong = c
        .get(server.url("/protected"))
        .basic_auth("alice", Some("nope"))
        .send()
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let other_scheme = c
        .get(server.url("/protected"))
        .header("Authorization", "Digest abc")
        .send()
        .expect("request");
    assert_eq!(other_scheme.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_bearer_login_leaves_a_session_that_authenticates_cookie_only_gets() {
    let accounts = accounts_with_alice();
    let token = accounts
        .create_token("alice", "t", None, now())
        .expect("token")
        .secret;
    let server = TestServer::start(accounts);
    let c = client();
    // SpiNNMan §3.2: GET login.html with the token and no cookie.
    let form = c
        .get(server.url("/spalloc/system/login.html"))
        .bearer_auth(&token)
        .send()
        .expect("form");
    assert!(form.status().is_success());
    let session = session_cookie(&form).expect("a session");
    // Then GETs carry only the cookie.
    let (status, body) = whoami_by_cookie(&server, &session);
    assert_eq!(status, StatusCode::OK, "{body}");
    let me = json(&body);
    assert_eq!(me["user"], "alice");
    let csrf = me["csrf-token"]
        .as_str()
        .expect("the session's token")
        .to_owned();
    // And changing calls carry cookie, CSRF header and token.
    let post = with_cookie(c.post(server.url("/protected")), &session)
        .header("X-CSRF-TOKEN", &csrf)
        .bearer_auth(&token)
        .send()
        .expect("request");
    assert_eq!(post.status(), StatusCode::OK);
    assert_eq!(
        json(&post.text().expect("body"))["csrf-token"],
        csrf.as_str()
    );
    // A token alone needs no CSRF token.
    let bare = c
        .delete(server.url("/protected"))
        .bearer_auth(&token)
        .send()
        .expect("request");
    assert_eq!(bare.status(), StatusCode::OK);
}

#[test]
fn a_bad_bearer_token_gets_401_and_no_session_from_the_login_form() {
    let server = TestServer::start(accounts_with_alice());
    for token in ["spalloc_0000", "whatever"] {
        let form = client()
            .get(server.url("/spalloc/system/login.html"))
            .bearer_auth(token)
            .send()
            .expect("form");
        assert_eq!(form.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(session_cookie(&form), None);
        let api = client()
            .get(server.url("/protected"))
            .bearer_auth(token)
            .send()
            .expect("request");
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn three_failed_log_ins_lock_the_account_against_the_right_password() {
    let server = TestServer::start(accounts_with_alice());
    assert_eq!(
        log_in(&server, "alice", "wonderland").status(),
        StatusCode::FOUND
    );
    for _ in 0..3 {
        assert_eq!(
            log_in(&server, "alice", "wrong").status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = log_in(&server, "alice", "wonderland");
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(session_cookie(&locked), None);
    let basic = client()
        .get(server.url("/protected"))
        .basic_auth("alice", Some("wonderland"))
        .send()
        .expect("request");
    assert_eq!(
        basic.status(),
        StatusCode::UNAUTHORIZED,
        "Basic is locked too"
    );
}

#[test]
fn logging_out_ends_the_session() {
    let server = TestServer::start(accounts_with_alice());
    let session = logged_in_session(&server);
    let csrf = json(&whoami_by_cookie(&server, &session).1)["csrf-token"]
        .as_str()
        .expect("token")
        .to_owned();
    let refused = with_cookie(
        client().post(server.url("/spalloc/system/perform_logout")),
        &session,
    )
    .send()
    .expect("logout");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "CSRF needed");
    assert_eq!(whoami_by_cookie(&server, &session).0, StatusCode::OK);
    let out = with_cookie(
        client().post(server.url("/spalloc/system/perform_logout")),
        &session,
    )
    .form(&[("_csrf", csrf.as_str())])
    .send()
    .expect("logout");
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(
        whoami_by_cookie(&server, &session).0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn a_logged_in_user_makes_lists_uses_and_revokes_their_own_tokens() {
    let server = TestServer::start(accounts_with_alice());
    let session = logged_in_session(&server);
    let csrf = json(&whoami_by_cookie(&server, &session).1)["csrf-token"]
        .as_str()
        .expect("token")
        .to_owned();
    let c = client();
    let tokens_url = server.url("/spalloc/srv/spalloc/tokens");
    let made = with_cookie(c.post(&tokens_url), &session)
        .header("X-CSRF-TOKEN", &csrf)
        .header("Content-Type", "application/json")
        .body(r#"{"name": "laptop", "expires-in-days": 30}"#)
        .send()
        .expect("create");
    assert_eq!(made.status(), StatusCode::CREATED);
    let location = made
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    let made = json(&made.text().expect("body"));
    let secret = made["token"].as_str().expect("secret").to_owned();
    assert_eq!(made["name"], "laptop");
    assert!(made["expires"].is_string());
    assert_eq!(location, made["token-ref"].as_str().expect("ref"));

    let me = c
        .get(server.url("/protected"))
        .bearer_auth(&secret)
        .send()
        .expect("request");
    assert_eq!(json(&me.text().expect("body"))["user"], "alice");

    let listed = with_cookie(c.get(&tokens_url), &session)
        .send()
        .expect("list");
    let listed = json(&listed.text().expect("body"));
    assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(1));
    assert!(
        listed["tokens"][0].get("token").is_none(),
        "never shown again"
    );
    assert!(listed["tokens"][0]["last-used"].is_string());

    // A token cannot make more tokens.
    let minted = c
        .post(&tokens_url)
        .bearer_auth(&secret)
        .send()
        .expect("create");
    assert_eq!(minted.status(), StatusCode::FORBIDDEN);

    let revoked = with_cookie(c.delete(server.url(&location)), &session)
        .header("X-CSRF-TOKEN", &csrf)
        .send()
        .expect("revoke");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = c
        .get(server.url("/protected"))
        .bearer_auth(&secret)
        .send()
        .expect("request");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let again = with_cookie(c.delete(server.url(&location)), &session)
        .header("X-CSRF-TOKEN", &csrf)
        .send()
        .expect("revoke");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
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
        let response = client()
            .post(server.url("/spalloc/srv/spalloc/tokens"))
            .basic_auth("alice", Some("wonderland"))
            .body(body)
            .send()
            .expect("create");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(!response.text().expect("body").is_empty());
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
        let csrf = json(&whoami_by_cookie(&server, &session).1)["csrf-token"]
            .as_str()
            .expect("token")
            .to_owned();
        let form = client()
            .get(server.url("/spalloc/system/login.html"))
            .bearer_auth(&token)
            .send()
            .expect("form");
        (session, csrf, session_cookie(&form).expect("session"))
    };
    let server = TestServer::start(open(&path));
    let (status, body) = whoami_by_cookie(&server, &session);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["csrf-token"], csrf.as_str());
    let post = with_cookie(client().post(server.url("/protected")), &session)
        .header("X-CSRF-TOKEN", &csrf)
        .send()
        .expect("request");
    assert_eq!(post.status(), StatusCode::OK);
    assert_eq!(whoami_by_cookie(&server, &token_session).0, StatusCode::OK);
}
