//! The log-in form, its POST, log-out, and the logged-in home page.
//!
//! As in allocserv: the form's GET opens a session; the POST must carry
//! that session's cookie and its CSRF token (as `_csrf` or the header),
//! and on success answers 302 with a *new* session id (so a session id
//! planted before log-in is worthless) and on failure 401 JSON
//! `{"message": "computer says no", "timestamp": ...}` with no cookie, which
//! is how SpiNNMan tells the two apart.

use super::authenticate::check_password_off_runtime;
use super::cookie::{clear_session, over_https, session_id, set_session};
use super::{now, pages, rfc3339, AuthRejection, ListenerTls, CSRF_HEADER, HOME_PAGE, LOGIN_PAGE};
use crate::accounts::{secret, Accounts, LoginError, UnixSeconds};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use headers::authorization::Bearer;
use headers::{Authorization, HeaderMapExt};
use serde::Deserialize;
use serde_json::json;

/// The log-in form's fields; all optional so that a missing one is a
/// failed log-in rather than a parse error.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `GET login.html`: the form and a new not-yet-logged-in session. With
/// `Authorization: Bearer`, instead a session logged in as the token's
/// user (SpiNNMan's token log-in, contract §3.2), or 401 for a bad token.
pub async fn login_form(
    State(accounts): State<Accounts>,
    State(ListenerTls(tls)): State<ListenerTls>,
    headers: HeaderMap,
) -> Response {
    let now = now();
    let secure = over_https(&headers, tls);
    if let Some(Authorization(bearer)) = headers.typed_get::<Authorization<Bearer>>() {
        return bearer_login(&accounts, bearer.token(), secure, now)
            .unwrap_or_else(|r| r.into_response());
    }
    let session = accounts.start_anonymous_session(now);
    (
        [set_session(&session.id, secure)],
        Html(pages::login_form(&session.csrf)),
    )
        .into_response()
}

fn bearer_login(
    accounts: &Accounts,
    token: &str,
    secure: bool,
    now: UnixSeconds,
) -> Result<Response, AuthRejection> {
    let (identity, token_id) = accounts
        .check_token(token, now)?
        .ok_or(AuthRejection::BadToken)?;
    let session = accounts.start_session(&identity.user, Some(token_id), now)?;
    Ok((
        [set_session(&session.id, secure)],
        Html(pages::login_form(&session.csrf)),
    )
        .into_response())
}

/// `POST perform_login`.
pub async fn perform_login(
    State(accounts): State<Accounts>,
    State(ListenerTls(tls)): State<ListenerTls>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let now = now();
    let secure = over_https(&headers, tls);
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let old_session = session_id(&headers);
    let expected = old_session
        .as_deref()
        .and_then(|id| expected_csrf(&accounts, id, now));
    let given = form
        .csrf
        .as_deref()
        .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    let csrf_ok = matches!((expected, given), (Some(e), Some(g)) if secret::same_secret(g, &e));
    if !csrf_ok {
        return login_failure(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: fetch the log-in form again",
            now,
        );
    }
    let (Some(user), Some(password)) = (form.username, form.password) else {
        return login_failure(StatusCode::UNAUTHORIZED, "computer says no", now);
    };
    match check_password_off_runtime(&accounts, user.clone(), password, now).await {
        Ok(identity) => {
            if let Some(old) = &old_session {
                let _ = accounts.end_session(old);
            }
            match accounts.start_session(&identity.user, None, now) {
                Ok(session) => (
                    StatusCode::FOUND,
                    [
                        set_session(&session.id, secure),
                        (
                            header::LOCATION,
                            header::HeaderValue::from_static(HOME_PAGE),
                        ),
                    ],
                )
                    .into_response(),
                Err(e) => AuthRejection::from(e).into_response(),
            }
        }
        Err(LoginError::Refused(_)) => {
            login_failure(StatusCode::UNAUTHORIZED, "computer says no", now)
        }
        Err(LoginError::Store(e)) => AuthRejection::from(e).into_response(),
    }
}

/// The CSRF token a log-in POST from session `id` must carry.
fn expected_csrf(accounts: &Accounts, id: &str, now: UnixSeconds) -> Option<String> {
    accounts
        .anonymous_csrf(id, now)
        .or_else(|| accounts.session(id, now).ok().flatten().map(|s| s.csrf))
}

/// allocserv's failure answer: JSON with a message, and no cookie.
fn login_failure(status: StatusCode, message: &str, now: UnixSeconds) -> Response {
    (
        status,
        axum::Json(json!({"message": message, "timestamp": rfc3339(now)})),
    )
        .into_response()
}

/// `POST perform_logout`: ends the session (CSRF token required, as a
/// `_csrf` field or the header) and sends the browser to the log-in form.
pub async fn perform_logout(
    State(accounts): State<Accounts>,
    State(ListenerTls(tls)): State<ListenerTls>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let now = now();
    if let Some(id) = session_id(&headers) {
        let expected = match accounts.session(&id, now) {
            Ok(session) => session.map(|s| s.csrf),
            Err(e) => return AuthRejection::from(e).into_response(),
        };
        if let Some(expected) = expected {
            let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let given = form
                .csrf
                .as_deref()
                .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
                .unwrap_or("");
            if !secret::same_secret(given, &expected) {
                return AuthRejection::Csrf.into_response();
            }
        }
        if let Err(e) = accounts.end_session(&id) {
            return AuthRejection::from(e).into_response();
        }
    }
    (
        StatusCode::FOUND,
        [
            clear_session(over_https(&headers, tls)),
            (
                header::LOCATION,
                header::HeaderValue::from_static("/spalloc/system/login.html?logout"),
            ),
        ],
    )
        .into_response()
}

/// `GET /spalloc/system/`: the logged-in page, or to the log-in form (this
/// is a browser page, not an API call, so a redirect is right here).
pub async fn home(State(accounts): State<Accounts>, headers: HeaderMap) -> Response {
    let now = now();
    let session = session_id(&headers).and_then(|id| accounts.session(&id, now).ok().flatten());
    match session {
        Some(s) => Html(pages::home(
            &s.identity.user,
            s.identity.role.as_str(),
            &s.csrf,
        ))
        .into_response(),
        None => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                header::HeaderValue::from_static(LOGIN_PAGE),
            )],
        )
            .into_response(),
    }
}
