//! Turning a request's headers into a [`Principal`].
//!
//! An `Authorization` header wins over the cookie (a bearer token is
//! checked on every request that carries it, as SpiNNMan sends both on
//! changing calls). Only cookie-authenticated changing requests need the
//! CSRF header: Basic and bearer credentials are never sent by a browser on
//! its own, so another site cannot forge them.

use super::cookie::session_id;
use super::principal::{CsrfToken, Principal, CSRF_HEADER};
use super::{now, AuthRejection};
use crate::accounts::{secret, Accounts, AccountsError, Identity, LoginError, UnixSeconds};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use headers::authorization::{Basic, Bearer};
use headers::{Authorization, HeaderMapExt};
use tracing::info;

/// What kind of credential authenticated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Credential {
    /// A session cookie; `via_token` if a bearer token opened the session.
    Session { via_token: bool },
    /// HTTP Basic user name and password.
    Basic,
    /// A personal API token.
    Bearer,
}

impl Credential {
    /// Whether the caller proved they know the password (needed to make
    /// tokens, so a leaked token cannot mint more).
    pub(super) fn is_password(self) -> bool {
        matches!(
            self,
            Credential::Basic | Credential::Session { via_token: false }
        )
    }
}

/// Authenticates a request by its session cookie (plus the CSRF header on
/// POST, PUT and DELETE), HTTP Basic, or a bearer token.
pub async fn authenticate(accounts: &Accounts, parts: &Parts) -> Result<Principal, AuthRejection> {
    authenticate_with(accounts, &parts.method, &parts.headers)
        .await
        .map(|(principal, _)| principal)
}

/// [`authenticate`], also saying how.
pub(super) async fn authenticate_with(
    accounts: &Accounts,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Principal, Credential), AuthRejection> {
    let now = now();
    if headers.contains_key(header::AUTHORIZATION) {
        if let Some(Authorization(bearer)) = headers.typed_get::<Authorization<Bearer>>() {
            let (identity, _) = accounts
                .check_token(bearer.token(), now)?
                .ok_or(AuthRejection::BadToken)?;
            let csrf = session_csrf_of(accounts, headers, &identity.user, now);
            return Ok((principal(identity, csrf), Credential::Bearer));
        }
        if let Some(Authorization(basic)) = headers.typed_get::<Authorization<Basic>>() {
            let identity = check_password_off_runtime(
                accounts,
                basic.username().to_owned(),
                basic.password().to_owned(),
                now,
            )
            .await
            .map_err(|e| match e {
                LoginError::Refused(_) => AuthRejection::BadCredentials,
                LoginError::Store(e) => AuthRejection::from(e),
            })?;
            return Ok((principal(identity, None), Credential::Basic));
        }
        return Err(AuthRejection::UnsupportedScheme);
    }
    let Some(id) = session_id(headers) else {
        return Err(AuthRejection::NotLoggedIn);
    };
    let session = accounts
        .session(&id, now)?
        .ok_or(AuthRejection::SessionEnded)?;
    if !is_safe(method) {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !secret::same_secret(given, &session.csrf) {
            return Err(AuthRejection::Csrf);
        }
    }
    let credential = Credential::Session {
        via_token: session.via_token.is_some(),
    };
    Ok((principal(session.identity, Some(session.csrf)), credential))
}

/// Checks a password with the lock-out rules, on a blocking thread when
/// Argon2 must run (tens of milliseconds), logging why a refusal happened.
pub(super) async fn check_password_off_runtime(
    accounts: &Accounts,
    user: String,
    password: String,
    now: UnixSeconds,
) -> Result<Identity, LoginError> {
    let result = match accounts.check_password_quickly(&user, &password, now) {
        Some(decided) => Ok(decided),
        None => {
            let accounts = accounts.clone();
            let user = user.clone();
            tokio::task::spawn_blocking(move || accounts.check_password(&user, &password, now))
                .await
        }
    };
    let name = user;
    match result {
        Ok(Err(LoginError::Refused(why))) => {
            info!("log-in as {name:?} refused: {why}");
            Err(LoginError::Refused(why))
        }
        Ok(other) => other,
        Err(join) => {
            tracing::error!("password check failed: {join}");
            Err(LoginError::Store(AccountsError::Internal(join.to_string())))
        }
    }
}

/// The CSRF token of the request's session, if the cookie names a live
/// session of `user` (a bearer request from SpiNNMan carries both).
fn session_csrf_of(
    accounts: &Accounts,
    headers: &HeaderMap,
    user: &str,
    now: UnixSeconds,
) -> Option<String> {
    let id = session_id(headers)?;
    let session = accounts.session(&id, now).ok().flatten()?;
    (session.identity.user == user).then_some(session.csrf)
}

fn principal(identity: Identity, csrf: Option<String>) -> Principal {
    Principal {
        user: identity.user,
        role: identity.role,
        groups: identity.groups,
        csrf: csrf.map(CsrfToken::new),
    }
}

/// Methods that change nothing, so need no CSRF token.
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}
