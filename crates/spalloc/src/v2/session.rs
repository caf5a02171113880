//! One authenticated conversation with a v2 server: the HTTP agent (TLS,
//! timeouts), the credentials, and the log-in state they lead to.
//!
//! * A **token** is sent as `Authorization: Bearer` on every request. If a
//!   changing request is refused with 403 (allocserv wants the CSRF header
//!   even then), the client opens a session with the token the way SpiNNMan
//!   does (`GET login.html` with the token gives a `JSESSIONID`), reads the
//!   CSRF token from the service description, and tries again.
//! * A **password** is used for the form log-in (`GET login.html`, scrape
//!   its `_csrf` field, `POST perform_login`, keep the new `JSESSIONID`,
//!   read `csrf-header`/`csrf-token` from `GET srv/spalloc/`). Whenever a
//!   request is answered 401 (the server forgot the session, e.g. it
//!   restarted) or a changing one 403 (a stale CSRF token), the client logs
//!   in again and repeats the request, once.
//!
//! Every request is made afresh from the URL and the current log-in state,
//! so the keepalive thread and the caller share one session safely.

use super::credentials::Credentials;
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The session cookie's name (Tomcat's, which allocserv and ours use).
pub const SESSION_COOKIE: &str = "JSESSIONID";

/// How long a long-poll may be held by the server (allocserv's
/// `spalloc.wait`), plus a margin: the read timeout of `wait=true` calls.
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(45);

/// What `GET srv/spalloc/` says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceDescription {
    /// The server's version.
    pub version: ServiceVersion,
    /// Where the job list is.
    pub jobs_ref: Option<String>,
    /// Where the machine list is.
    pub machines_ref: Option<String>,
    /// The name of the CSRF header (with a session).
    pub csrf_header: Option<String>,
    /// The CSRF token (with a session).
    pub csrf_token: Option<String>,
}

/// A server version, as `GET /` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceVersion {
    /// Major.
    pub major_version: u64,
    /// Minor.
    pub minor_version: u64,
    /// Revision.
    pub revision: u64,
}

impl std::fmt::Display for ServiceVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.major_version, self.minor_version, self.revision
        )
    }
}

/// A body to send.
#[derive(Debug, Clone)]
pub enum Body {
    /// None.
    Empty,
    /// JSON.
    Json(Value),
    /// `text/plain; charset=UTF-8`.
    Text(String),
}

/// An answer with a success status (2xx or 3xx).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The `Location` header.
    pub location: Option<String>,
    /// The body, as text.
    pub body: String,
}

impl Answer {
    /// The body as `T`; a body of the wrong shape is a protocol error.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::ProtocolError(format!(
                "{what}: unexpected answer ({e}): {:.200}",
                self.body
            ))
        })
    }
}

/// The log-in state: the session cookie and the CSRF header to send.
#[derive(Debug, Default, Clone)]
struct LoginState {
    cookie: Option<String>,
    csrf: Option<(String, String)>,
    service: Option<ServiceDescription>,
}

/// One server, one set of credentials; cheap to share (`Arc`).
#[derive(Debug)]
pub struct Session {
    agent: ureq::Agent,
    service_url: String,
    credentials: Credentials,
    timeout: Duration,
    /// Kept for the job proxy's websocket, which is not made by `agent`.
    tls: Arc<rustls::ClientConfig>,
    state: Mutex<LoginState>,
}

/// How a request is made: method, URL, body, read timeout.
struct Call<'a> {
    method: &'a str,
    url: &'a str,
    body: &'a Body,
    timeout: Duration,
}

/// What happened to one attempt.
enum Attempt {
    Done(Answer),
    /// 401, or 403 on a changing request: log in again and retry.
    Renew(u16, String),
}

impl Session {
    /// A session with `service_url` (from [`super::url::service_url`]).
    pub fn new(
        service_url: String,
        credentials: Credentials,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Session {
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::clone(&tls))
            .redirects(0)
            .timeout_connect(timeout)
            .user_agent(concat!("spalloc-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        Session {
            agent,
            service_url,
            credentials,
            timeout,
            tls,
            state: Mutex::new(LoginState::default()),
        }
    }

    /// The service URL (ending in `/`).
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// The URL of the API's root, `…/srv/spalloc/`.
    pub fn api_url(&self) -> String {
        format!("{}srv/spalloc/", self.service_url)
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The TLS settings and connect timeout of this session, for the job
    /// proxy's websocket (see [`super::proxy`]).
    pub(crate) fn websocket_settings(&self) -> (Arc<rustls::ClientConfig>, Duration) {
        (Arc::clone(&self.tls), self.timeout)
    }

    /// The headers that authenticate a websocket as this session's requests
    /// are: the bearer token, or the session cookie and CSRF header of a
    /// password log-in (logging in first if needed), as SpiNNMan opens its
    /// proxy.
    pub(crate) fn websocket_headers(&self) -> Result<Vec<(String, String)>> {
        self.ensure_logged_in()?;
        let state = self.lock().clone();
        let mut headers = Vec::new();
        if let Credentials::Token(token) = &self.credentials {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        if let Some(cookie) = &state.cookie {
            headers.push(("Cookie".to_owned(), format!("{SESSION_COOKIE}={cookie}")));
        }
        if let Some((header, token)) = &state.csrf {
            headers.push((header.clone(), token.clone()));
        }
        Ok(headers)
    }

    fn lock(&self) -> MutexGuard<'_, LoginState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The service description (fetched once, after logging in if needed).
    pub fn service(&self) -> Result<ServiceDescription> {
        if let Some(s) = self.lock().service.clone() {
            return Ok(s);
        }
        self.ensure_logged_in()?;
        let answer = self.get(&self.api_url())?;
        let service: ServiceDescription = answer.json("the service description")?;
        self.remember_service(&service);
        Ok(service)
    }

    /// The service description, if it has been fetched already.
    pub(crate) fn cached_service(&self) -> Option<ServiceDescription> {
        self.lock().service.clone()
    }

    fn remember_service(&self, service: &ServiceDescription) {
        let mut state = self.lock();
        if let (Some(h), Some(t)) = (&service.csrf_header, &service.csrf_token) {
            if state.cookie.is_some() {
                state.csrf = Some((h.clone(), t.clone()));
            }
        }
        state.service = Some(service.clone());
    }

    /// GET with the normal timeout.
    pub fn get(&self, url: &str) -> Result<Answer> {
        self.request("GET", url, &Body::Empty, self.timeout)
    }

    /// GET with a long-poll's timeout.
    pub fn get_long_poll(&self, url: &str) -> Result<Answer> {
        self.request(
            "GET",
            url,
            &Body::Empty,
            LONG_POLL_TIMEOUT.max(self.timeout),
        )
    }

    /// Any request; 401 (or 403 on a changing request) leads to one fresh
    /// log-in and one retry. Errors carry the server's message.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        body: &Body,
        timeout: Duration,
    ) -> Result<Answer> {
        self.ensure_logged_in()?;
        let call = Call {
            method,
            url,
            body,
            timeout,
        };
        match self.attempt(&call)? {
            Attempt::Done(answer) => Ok(answer),
            Attempt::Renew(status, message) => {
                if matches!(self.credentials, Credentials::Anonymous) {
                    return Err(unauthorized(url, status, message));
                }
                if matches!(self.credentials, Credentials::Token(_)) && status == 401 {
                    return Err(unauthorized(url, status, message));
                }
                self.renew()?;
                match self.attempt(&call)? {
                    Attempt::Done(answer) => Ok(answer),
                    Attempt::Renew(status, message) => Err(unauthorized(url, status, message)),
                }
            }
        }
    }

    fn attempt(&self, call: &Call) -> Result<Attempt> {
        let changing = call.method != "GET";
        let state = self.lock().clone();
        let mut request = self
            .agent
            .request(call.method, call.url)
            .timeout(call.timeout);
        if let Credentials::Token(token) = &self.credentials {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        if let Some(cookie) = &state.cookie {
            request = request.set("Cookie", &format!("{SESSION_COOKIE}={cookie}"));
        }
        if changing {
            if let Some((header, token)) = &state.csrf {
                request = request.set(header, token);
            }
        }
        let result = match call.body {
            Body::Empty => request.call(),
            Body::Json(v) => request
                .set("Content-Type", "application/json")
                .send_string(&v.to_string()),
            Body::Text(t) => request
                .set("Content-Type", "text/plain; charset=UTF-8")
                .send_string(t),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(transport(call.url, &t)),
        };
        self.adopt_cookie(&response);
        let status = response.status();
        let location = response.header("Location").map(str::to_owned);
        let body = response
            .into_string()
            .map_err(|e| transport_io(call.url, &e))?;
        if status == 401 || (status == 403 && changing && state.csrf.is_none()) {
            return Ok(Attempt::Renew(status, server_message(&body)));
        }
        if status == 403 && changing && is_csrf_refusal(&body) {
            return Ok(Attempt::Renew(status, server_message(&body)));
        }
        if status >= 400 {
            return Err(Error::Http {
                what: format!("{} {}", call.method, path_of(call.url)),
                status,
                message: server_message(&body),
            });
        }
        Ok(Attempt::Done(Answer {
            status,
            location,
            body,
        }))
    }

    /// Takes a new `JSESSIONID` if the server sets one (as SpiNNMan does).
    fn adopt_cookie(&self, response: &ureq::Response) {
        for value in response.all("Set-Cookie") {
            if let Ok(c) = cookie::Cookie::parse(value) {
                if c.name() == SESSION_COOKIE {
                    let mut state = self.lock();
                    if c.value().is_empty() {
                        state.cookie = None;
                        state.csrf = None;
                    } else if state.cookie.as_deref() != Some(c.value()) {
                        state.cookie = Some(c.value().to_owned());
                        state.csrf = None;
                    }
                }
            }
        }
    }

    /// Logs in if the credentials are a password and there is no session yet.
    fn ensure_logged_in(&self) -> Result<()> {
        let needed = matches!(self.credentials, Credentials::Password { .. })
            && self.lock().cookie.is_none();
        if needed {
            self.renew()?;
        }
        Ok(())
    }

    /// Forgets the session and opens a new one: the form log-in for a
    /// password, SpiNNMan's bearer log-in for a token; then reads the CSRF
    /// token.
    fn renew(&self) -> Result<()> {
        *self.lock() = LoginState::default();
        match &self.credentials {
            Credentials::Anonymous => return Ok(()),
            Credentials::Password { user, password } => self.form_log_in(user, password)?,
            Credentials::Token(_) => self.bearer_log_in()?,
        }
        let answer = match self.attempt(&Call {
            method: "GET",
            url: &self.api_url(),
            body: &Body::Empty,
            timeout: self.timeout,
        })? {
            Attempt::Done(a) => a,
            Attempt::Renew(status, message) => {
                return Err(unauthorized(&self.api_url(), status, message))
            }
        };
        let service: ServiceDescription = answer.json("the service description")?;
        self.remember_service(&service);
        Ok(())
    }

    fn login_page(&self) -> String {
        format!("{}system/login.html", self.service_url)
    }

    /// allocserv's form log-in (contract §3.1).
    fn form_log_in(&self, user: &str, password: &str) -> Result<()> {
        let page_url = self.login_page();
        let page = self
            .agent
            .get(&page_url)
            .timeout(self.timeout)
            .call()
            .or_else(accept_status)
            .map_err(|t| transport(&page_url, &t))?;
        self.adopt_cookie(&page);
        let status = page.status();
        let html = page
            .into_string()
            .map_err(|e| transport_io(&page_url, &e))?;
        if status >= 400 {
            return Err(Error::Http {
                what: format!("GET {}", path_of(&page_url)),
                status,
                message: server_message(&html),
            });
        }
        let csrf = csrf_field(&html).ok_or_else(|| {
            Error::ProtocolError(format!(
                "the log-in page {page_url} has no _csrf field: is this a spalloc server?"
            ))
        })?;
        let action = format!("{}system/perform_login", self.service_url);
        let mut request = self.agent.post(&action).timeout(self.timeout);
        if let Some(cookie) = self.lock().cookie.clone() {
            request = request.set("Cookie", &format!("{SESSION_COOKIE}={cookie}"));
        }
        let before = self.lock().cookie.clone();
        let response = request
            .send_form(&[
                ("username", user),
                ("password", password),
                ("_csrf", &csrf),
                ("submit", "submit"),
            ])
            .or_else(accept_status)
            .map_err(|t| transport(&action, &t))?;
        self.adopt_cookie(&response);
        let status = response.status();
        let body = response.into_string().unwrap_or_default();
        let after = self.lock().cookie.clone();
        if status >= 400 || after.is_none() || after == before {
            *self.lock() = LoginState::default();
            return Err(Error::Unauthorized {
                url: action,
                message: format!("log-in as {user} failed: {}", server_message(&body)),
            });
        }
        Ok(())
    }

    /// SpiNNMan's token log-in: `GET login.html` with the token gives a
    /// session already logged in.
    fn bearer_log_in(&self) -> Result<()> {
        let Credentials::Token(token) = &self.credentials else {
            return Ok(());
        };
        let page_url = self.login_page();
        let page = self
            .agent
            .get(&page_url)
            .timeout(self.timeout)
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .or_else(accept_status)
            .map_err(|t| transport(&page_url, &t))?;
        self.adopt_cookie(&page);
        let status = page.status();
        let body = page.into_string().unwrap_or_default();
        if status >= 400 {
            return Err(unauthorized(&page_url, status, server_message(&body)));
        }
        Ok(())
    }

    /// Ends the session on the server (`perform_logout`), if there is one.
    pub fn log_out(&self) -> Result<()> {
        let state = self.lock().clone();
        if state.cookie.is_none() {
            return Ok(());
        }
        let url = format!("{}system/perform_logout", self.service_url);
        let body = Body::Empty;
        let _ = self.attempt(&Call {
            method: "POST",
            url: &url,
            body: &body,
            timeout: self.timeout,
        });
        *self.lock() = LoginState::default();
        Ok(())
    }
}

/// ureq 2 reports 4xx/5xx as errors; here they are answers to look at.
fn accept_status(e: ureq::Error) -> std::result::Result<ureq::Response, Box<ureq::Transport>> {
    match e {
        ureq::Error::Status(_, r) => Ok(r),
        ureq::Error::Transport(t) => Err(Box::new(t)),
    }
}

/// The value of the log-in form's hidden `_csrf` input. Spring writes
/// `<input type="hidden" name="_csrf" value="TOKEN" />`; finding the
/// `value` after `name="_csrf"` on that element is all SpiNNMan's regex
/// does too, so no HTML parser is needed.
fn csrf_field(html: &str) -> Option<String> {
    let start = html.find("name=\"_csrf\"")?;
    let element_end = html[start..].find('>').map_or(html.len(), |e| start + e);
    let element = &html[start..element_end];
    let value = element.find("value=\"")? + "value=\"".len();
    let end = element[value..].find('"')?;
    Some(element[value..value + end].to_owned())
}

/// The message of an error body: allocserv's JSON `{"message": …}`, or the
/// plain text.
fn server_message(body: &str) -> String {
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(body) {
        if let Some(Value::String(m)) = o.get("message") {
            return m.clone();
        }
    }
    let text = body.trim();
    if text.is_empty() {
        "(no message)".into()
    } else {
        text.chars().take(500).collect()
    }
}

fn is_csrf_refusal(body: &str) -> bool {
    body.to_ascii_lowercase().contains("csrf")
}

fn unauthorized(url: &str, status: u16, message: String) -> Error {
    Error::Unauthorized {
        url: url.to_owned(),
        message: format!("HTTP {status}: {message}"),
    }
}

fn transport(url: &str, t: &ureq::Transport) -> Error {
    Error::Transport {
        url: url.to_owned(),
        message: t.to_string(),
    }
}

fn transport_io(url: &str, e: &std::io::Error) -> Error {
    Error::Transport {
        url: url.to_owned(),
        message: e.to_string(),
    }
}

/// The path of a URL, for messages.
fn path_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.path().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_found_as_spring_writes_it() {
        let html = "<form>\n<input type=\"hidden\" name=\"_csrf\" value=\"ab-12\" />\n</form>";
        assert_eq!(csrf_field(html).as_deref(), Some("ab-12"));
        assert_eq!(csrf_field("<input name=\"other\" value=\"x\">"), None);
    }

    #[test]
    fn error_messages_come_from_json_or_text() {
        assert_eq!(
            server_message("{\"message\":\"computer says no\"}"),
            "computer says no"
        );
        assert_eq!(server_message(" no such job \n"), "no such job");
        assert_eq!(server_message(""), "(no message)");
    }
}
