//! TEMPORARY stand-in for the accounts and authentication that the `v2-auth`
//! branch provides (`crate::accounts::Accounts` and this module), with the
//! interface agreed for it, so that the API can be built and tested before
//! that lands. It knows only HTTP Basic against users added in memory; no
//! sessions, CSRF, tokens or log-in pages. Replace it wholesale with
//! `v2-auth`'s module when merging.

use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What an account may do, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read-only.
    Reader,
    /// May create jobs.
    User,
    /// May do anything.
    Admin,
}

/// A session's CSRF token and the header it must come in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken {
    /// The header name (`X-CSRF-TOKEN`).
    pub header: String,
    /// The token.
    pub token: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account name.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its session's CSRF token (none for HTTP Basic).
    pub csrf: Option<CsrfToken>,
}

/// The accounts (in memory only, in this stand-in).
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    users: Arc<Mutex<HashMap<String, (String, Role)>>>,
}

impl Accounts {
    /// No accounts.
    pub fn in_memory() -> Accounts {
        Accounts::default()
    }

    /// Adds (or replaces) an account.
    pub fn add_user(&self, name: &str, password: &str, role: Role) {
        if let Ok(mut users) = self.users.lock() {
            users.insert(name.to_owned(), (password.to_owned(), role));
        }
    }

    fn check(&self, name: &str, password: &str) -> Option<Role> {
        let users = self.users.lock().ok()?;
        let (stored, role) = users.get(name)?;
        (stored == password).then_some(*role)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRejection {
    /// No credentials, or wrong ones: 401.
    Unauthenticated,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "text/plain; charset=UTF-8"),
                (header::WWW_AUTHENTICATE, "Basic realm=\"spalloc\""),
            ],
            "authentication required",
        )
            .into_response()
    }
}

/// Checks a request's credentials (HTTP Basic only, in this stand-in).
pub async fn authenticate(accounts: &Accounts, parts: &Parts) -> Result<Principal, AuthRejection> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthRejection::Unauthenticated)?;
    let encoded = value
        .strip_prefix("Basic ")
        .ok_or(AuthRejection::Unauthenticated)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or(AuthRejection::Unauthenticated)?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or(AuthRejection::Unauthenticated)?;
    let role = accounts
        .check(user, password)
        .ok_or(AuthRejection::Unauthenticated)?;
    Ok(Principal {
        user: user.to_owned(),
        role,
        groups: Vec::new(),
        csrf: None,
    })
}

/// The log-in and token endpoints (none in this stand-in).
pub fn routes(_accounts: Accounts) -> Router {
    Router::new()
}
