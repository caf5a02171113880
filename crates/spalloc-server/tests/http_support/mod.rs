//! Helpers for tests of the v2 REST API over real sockets: a server with an
//! `[http]` listener on port 0 and a few accounts, and a small blocking
//! client (ureq) that returns every status instead of failing on 4xx.

#![allow(dead_code)]

use serde_json::Value;
use spalloc_server::accounts::{NewUser, Role};
use spalloc_server::{RunningServer, ServerConfig};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The API prefix.
pub const API: &str = "/spalloc/srv/spalloc";

/// A 2x1-triad simulated machine with fast power, both ports on port 0,
/// plus `http_keys` in `[http]`.
pub fn config(http_keys: &str) -> ServerConfig {
    let text = format!(
        r#"
        ip = "127.0.0.1"
        port = 0
        timeout_check_interval = 0.05
        seconds_before_free = 0.05

        [http]
        port = 0
        {http_keys}

        [[machine]]
        name = "test-machine"
        width = 2
        height = 1
        base_ip = "127.0.1.0"
        power_delay = 0.02
        "#
    );
    ServerConfig::from_toml_str(&text).expect("test config is valid")
}

/// API tokens of the test accounts, by server HTTP address and user.
fn tokens() -> &'static Mutex<HashMap<(String, String), String>> {
    static TOKENS: OnceLock<Mutex<HashMap<(String, String), String>>> = OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// Starts a server with the accounts alice and bob (users), root (admin)
/// and rita (reader); each one's password is its name reversed, and each
/// has an API token, which [`Api`] uses (a password check is argon2 work
/// by design; a token is a hash lookup).
pub fn start(config: ServerConfig) -> RunningServer {
    let server = RunningServer::start(config).expect("server starts");
    let now = spalloc_server::clock::now() as i64;
    let address = server
        .http_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    for (name, role) in [
        ("alice", Role::User),
        ("bob", Role::User),
        ("root", Role::Admin),
        ("rita", Role::Reader),
    ] {
        let accounts = server.accounts();
        if accounts.user(name, now).ok().flatten().is_none() {
            accounts
                .add_user(
                    &NewUser {
                        name: name.into(),
                        role,
                        password: Some(password(name)),
                        groups: vec!["testers".into()],
                    },
                    now,
                )
                .expect("add user");
        }
        let token = accounts
            .create_token(name, "tests", None, now)
            .expect("token");
        if let Ok(mut t) = tokens().lock() {
            t.insert((address.clone(), name.to_owned()), token.secret);
        }
    }
    server
}

/// A test account's password.
pub fn password(user: &str) -> String {
    user.chars().rev().collect()
}

/// One HTTP exchange's result.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub link: Option<String>,
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }
}

/// A client for one server, as one user.
pub struct Api {
    pub agent: ureq::Agent,
    pub base: String,
    pub user: Option<String>,
    /// Send the password (HTTP Basic) instead of the user's API token.
    pub basic: bool,
    token: Option<String>,
}

impl Api {
    /// Talks plain HTTP to `server` as `user` (None: no credentials).
    pub fn new(server: &RunningServer, user: Option<&str>) -> Api {
        let address = server.http_addr().expect("the server has an HTTP port");
        let token = user.and_then(|u| {
            tokens()
                .lock()
                .ok()?
                .get(&(address.to_string(), u.to_owned()))
                .cloned()
        });
        Api {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: format!("http://{address}"),
            user: user.map(str::to_owned),
            basic: false,
            token,
        }
    }

    /// Sends a request; `path` is absolute (`/spalloc/...`) or a full URL.
    pub fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.agent.request(method, &url);
        if let (Some(token), false) = (&self.token, self.basic) {
            request = request.set("Authorization", &format!("Bearer {token}"));
        } else if let Some(user) = &self.user {
            use base64::Engine as _;
            let credentials = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password(user)));
            request = request.set("Authorization", &format!("Basic {credentials}"));
        }
        if !content_type.is_empty() {
            request = request.set("Content-Type", content_type);
        }
        let response = match request.send_bytes(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        Answer {
            status: response.status(),
            content_type: response.content_type().to_owned(),
            location: response.header("Location").map(str::to_owned),
            link: response.header("Link").map(str::to_owned),
            body: response.into_string().unwrap_or_default(),
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, "", b"")
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, "", b"")
    }

    /// Creates a job from a JSON body; returns its URL (the `Location`).
    pub fn create(&self, body: Value) -> String {
        let a = self.post_json(&format!("{API}/jobs"), &body);
        assert_eq!(a.status, 201, "create: {}", a.body);
        a.location.expect("Location header")
    }

    /// Long-polls a job until it is in `state` (each poll is held by the
    /// server until a change or 30 s; bounded to 20 polls).
    pub fn wait_for(&self, job_url: &str, state: &str) -> Value {
        let mut last = self.get(job_url).json();
        for _ in 0..20 {
            if last["state"] == state {
                return last;
            }
            last = self.get(&format!("{job_url}/?wait=true")).json();
        }
        panic!("job never reached {state}: {last}");
    }
}
