//! The one request handler of the v2 API: transport in, [`rest::handle`]
//! under the lock, transport out. No rule of the API lives here.

use super::{auth, openapi, HttpState, MAX_BODY_BYTES};
use crate::clock;
use crate::rest::{self, ApiRequest, ApiUser, Body, Method as ApiMethod, Reply, Role};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Duration;

/// Where the API lives.
pub const API_PREFIX: &str = "/spalloc/srv/spalloc";

/// Where its OpenAPI description lives.
pub const OPENAPI_PATH: &str = "/spalloc/srv/openapi.json";

/// A plain-text reply (every error is one).
pub fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        message.into(),
    )
        .into_response()
}

/// The path with repeated slashes merged and any trailing slash dropped,
/// so `jobs//1/` and `jobs/1` are one resource (no redirect, ever).
fn normalise(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// The scheme and host clients reached us by: a reverse proxy's
/// `X-Forwarded-Proto`/`-Host` first, then `Host`.
fn base_url(headers: &HeaderMap, tls: bool, local: Option<SocketAddr>) -> String {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic()))
    };
    let scheme = if auth::over_https(headers, tls) {
        "https"
    } else {
        "http"
    };
    let host = first("x-forwarded-host")
        .or_else(|| first("host"))
        .map(str::to_owned)
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{scheme}://{host}{API_PREFIX}")
}

fn api_method(method: &Method) -> ApiMethod {
    match *method {
        Method::GET | Method::HEAD => ApiMethod::Get,
        Method::POST => ApiMethod::Post,
        Method::PUT => ApiMethod::Put,
        Method::DELETE => ApiMethod::Delete,
        _ => ApiMethod::Other,
    }
}

fn api_user(p: auth::Principal) -> ApiUser {
    ApiUser {
        name: p.user,
        role: match p.role {
            auth::Role::Reader => Role::Reader,
            auth::Role::User => Role::User,
            auth::Role::Admin => Role::Admin,
        },
        csrf: p.csrf.map(|c| (c.header.to_owned(), c.value)),
        groups: p.groups,
    }
}

/// Turns a [`Reply`] into a response.
pub fn to_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = match reply.body {
        Body::Json(value) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&value).unwrap_or_default(),
        )
            .into_response(),
        Body::Text(message) => text(status, message),
        Body::Empty => status.into_response(),
        Body::Bytes(data) => (
            status,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            data,
        )
            .into_response(),
    };
    let headers = response.headers_mut();
    if let Some(v) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, v);
    }
    if let Some(v) = reply.link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LINK, v);
    }
    response
}

/// Handles every request that no log-in route took.
pub async fn handle(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let connect = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied();
    let path = normalise(parts.uri.path());
    if path == OPENAPI_PATH {
        return openapi::response();
    }
    let Some(api_path) = path
        .strip_prefix(API_PREFIX)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    else {
        return text(StatusCode::NOT_FOUND, format!("no such resource: {path}"));
    };
    let principal = match auth::authenticate(&state.accounts, &parts).await {
        Ok(p) => p,
        Err(rejection) => return rejection.into_response(),
    };
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {MAX_BODY_BYTES} bytes (or broken off)"),
            )
        }
    };
    let query: Vec<(String, String)> =
        match serde_urlencoded::from_str(parts.uri.query().unwrap_or("")) {
            Ok(q) => q,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad query string: {e}")),
        };
    let peer = connect.map(|ConnectInfo(a)| a);
    let host = peer.map(|a| a.ip().to_string());
    let user = api_user(principal);
    let base = base_url(&parts.headers, state.tls, None);
    let request = ApiRequest {
        method: api_method(&parts.method),
        path: api_path,
        query: &query,
        body: &body,
        user: &user,
        base: &base,
        host: host.as_deref(),
    };
    if rest::uses_accounts(&request) {
        return from_accounts(&state, &request).await;
    }
    match state
        .shared
        .with(|s| rest::board_access(&s.service, &request))
    {
        Some(Ok(access)) => return to_response(super::board_io::perform(access).await),
        Some(Err(reply)) => return to_response(reply),
        None => {}
    }
    if let Err(response) = long_poll(&state, &request).await {
        return response;
    }
    let mut changes = state.shared.subscribe_changes();
    changes.borrow_and_update();
    let (reply, change_set) = state.shared.with(|s| {
        let reply = rest::handle(&mut s.service, &request, clock::now());
        (reply, s.change_set())
    });
    if let Err(response) = committed(&state, change_set, changes).await {
        return response;
    }
    to_response(reply)
}

/// Answers an admin request on users or groups: on a blocking thread
/// (setting a password hashes it, tens of milliseconds) and without the
/// service lock. The accounts database commits each change itself.
async fn from_accounts(state: &HttpState, request: &ApiRequest<'_>) -> Response {
    let accounts = state.accounts.clone();
    let method = request.method;
    let path = request.path.to_owned();
    let query = request.query.to_vec();
    let body = request.body.to_vec();
    let user = request.user.clone();
    let base = request.base.to_owned();
    let host = request.host.map(str::to_owned);
    let answered = tokio::task::spawn_blocking(move || {
        let request = ApiRequest {
            method,
            path: &path,
            query: &query,
            body: &body,
            user: &user,
            base: &base,
            host: host.as_deref(),
        };
        rest::admin::handle_accounts(&accounts, &request, clock::now() as i64)
    })
    .await;
    match answered {
        Ok(reply) => to_response(reply),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the accounts operation failed: {e}"),
        ),
    }
}

/// Waits until change set `seq` (the last one handed to the state file's
/// writer when the reply was made, which holds whatever the reply shows)
/// is committed, as the legacy port holds its replies: an answer never
/// shows a change a crash could lose. 503 if the commit was refused.
pub(crate) async fn committed(
    state: &HttpState,
    seq: u64,
    mut changes: tokio::sync::watch::Receiver<u64>,
) -> Result<(), Response> {
    let refused = || {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server could not save this change to its state file; it was not made, \
             try again later",
        )
    };
    // A commit takes milliseconds; the bound only keeps a stuck disk from
    // holding requests forever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(rest::LONG_POLL_SECONDS);
    loop {
        // The turn already happened: flushing again changes nothing.
        match state.shared.with(|s| s.commit_outcome(seq)) {
            Some(true) => return Ok(()),
            Some(false) => return Err(refused()),
            None => {}
        }
        if !matches!(
            tokio::time::timeout_at(deadline, changes.changed()).await,
            Ok(Ok(()))
        ) {
            return Err(refused());
        }
    }
}

/// Holds a `wait=true` request until what it waits on changes, at most
/// [`rest::LONG_POLL_SECONDS`], without holding the service lock.
async fn long_poll(state: &HttpState, request: &ApiRequest<'_>) -> Result<(), Response> {
    let mut changes = state.shared.subscribe_changes();
    changes.borrow_and_update();
    let Some(first) = state
        .shared
        .with(|s| rest::poll_fingerprint(&s.service, request))
    else {
        return Ok(());
    };
    let Ok(_place) = state.long_polls.clone().try_acquire_owned() else {
        return Err(text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests are waiting for changes; try again without wait=true or later",
        ));
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(rest::LONG_POLL_SECONDS);
    loop {
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {
                let now = state
                    .shared
                    .with(|s| rest::poll_fingerprint(&s.service, request));
                if now != Some(first) {
                    return Ok(());
                }
            }
            // Timed out, or the server is stopping.
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_without_redirects() {
        assert_eq!(
            normalise("/spalloc/srv/spalloc/jobs//1/"),
            "/spalloc/srv/spalloc/jobs/1"
        );
        assert_eq!(normalise("//spalloc//srv/spalloc/"), "/spalloc/srv/spalloc");
        assert_eq!(normalise("/"), "/");
    }

    #[test]
    fn forwarded_headers_decide_the_links_base() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("inner:9091"));
        assert_eq!(
            base_url(&h, false, None),
            "http://inner:9091/spalloc/srv/spalloc"
        );
        assert_eq!(
            base_url(&h, true, None),
            "https://inner:9091/spalloc/srv/spalloc"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("spalloc.example, other"),
        );
        assert_eq!(
            base_url(&h, false, None),
            "https://spalloc.example/spalloc/srv/spalloc"
        );
    }
}
