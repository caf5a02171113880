//! Authentication over HTTP, as allocserv (Spring Security) does it and as
//! SpiNNMan's `SpallocClient` expects it (contract:
//! `spinnman-v2-contract.md` §2.2, §3.1, §3.2):
//!
//! * **form log-in**: `GET /spalloc/system/login.html` gives a form with a
//!   hidden `_csrf` input and a not-yet-logged-in `JSESSIONID`; `POST
//!   /spalloc/system/perform_login` with `_csrf`, `username`, `password`
//!   answers 302 with a *new* `JSESSIONID` on success, or 401 JSON
//!   `{"message": ...}` and no cookie on failure;
//! * **session cookie** `JSESSIONID` on later requests, with the session's
//!   CSRF token in the `X-CSRF-TOKEN` header on POST, PUT and DELETE;
//! * **HTTP Basic** on any request (no CSRF needed);
//! * **personal API tokens** as `Authorization: Bearer` on any request (no
//!   CSRF needed). `GET login.html` with a bearer token answers a session
//!   cookie already logged in as the token's user, because SpiNNMan then
//!   sends GETs with the cookie alone.
//!
//! API calls are never redirected to the log-in page: they get 401 or 403
//! (`text/plain`), since the client treats any 3xx as success.
//!
//! Token endpoints (for a logged-in user's own tokens, under the API):
//! `GET /spalloc/srv/spalloc/tokens` lists them, `POST` the same path with
//! `{"name": "laptop", "expires-in-days": 90}` (both optional) makes one
//! and answers the secret once, `DELETE /spalloc/srv/spalloc/tokens/{id}`
//! revokes one. Making a token needs a password credential (a form log-in
//! session or HTTP Basic), so a leaked token cannot mint more.

mod authenticate;
mod cookie;
mod login;
mod pages;
mod principal;
mod rejection;
mod tokens;

pub use authenticate::authenticate;
pub use cookie::{over_https, SESSION_COOKIE};
pub use principal::{CsrfToken, Principal, CSRF_HEADER};
pub use rejection::AuthRejection;

pub use crate::accounts::{Accounts, Role};

use crate::accounts::UnixSeconds;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use axum::Router;

/// The path of the log-in form.
pub const LOGIN_PAGE: &str = "/spalloc/system/login.html";
/// Where the log-in form posts.
pub const LOGIN_ACTION: &str = "/spalloc/system/perform_login";
/// Where the log-out form posts.
pub const LOGOUT_ACTION: &str = "/spalloc/system/perform_logout";
/// The page a browser lands on after logging in.
pub const HOME_PAGE: &str = "/spalloc/system/";
/// The collection of the caller's own API tokens.
pub const TOKENS_PATH: &str = "/spalloc/srv/spalloc/tokens";

/// What the log-in routes need: the accounts, and whether their listener
/// speaks TLS (for the session cookie's `Secure` flag).
#[derive(Clone)]
struct AuthState {
    accounts: Accounts,
    tls: ListenerTls,
}

/// Whether the listener a request came in on speaks TLS.
#[derive(Debug, Clone, Copy)]
struct ListenerTls(bool);

impl FromRef<AuthState> for Accounts {
    fn from_ref(state: &AuthState) -> Accounts {
        state.accounts.clone()
    }
}

impl FromRef<AuthState> for ListenerTls {
    fn from_ref(state: &AuthState) -> ListenerTls {
        state.tls
    }
}

/// The log-in, log-out and token routes for a plain-HTTP listener (see
/// [`routes_over`]).
pub fn routes(accounts: Accounts) -> Router {
    routes_over(accounts, false)
}

/// The log-in, log-out and token routes, with their state applied; merge
/// them into the API's router. `tls` says whether the listener speaks TLS.
pub fn routes_over(accounts: Accounts, tls: bool) -> Router {
    Router::new()
        .route(LOGIN_PAGE, get(login::login_form))
        .route(LOGIN_ACTION, post(login::perform_login))
        .route(LOGOUT_ACTION, post(login::perform_logout))
        .route(HOME_PAGE, get(login::home))
        .route("/spalloc/system", get(login::home))
        .route(TOKENS_PATH, get(tokens::list).post(tokens::create))
        .route(
            "/spalloc/srv/spalloc/tokens/",
            get(tokens::list).post(tokens::create),
        )
        .route("/spalloc/srv/spalloc/tokens/{id}", delete(tokens::revoke))
        .route("/spalloc/srv/spalloc/tokens/{id}/", delete(tokens::revoke))
        .with_state(AuthState {
            accounts,
            tls: ListenerTls(tls),
        })
}

/// Now, for the accounts' rules: the HTTP shell is where the clock is read.
fn now() -> UnixSeconds {
    crate::clock::now() as UnixSeconds
}

/// A Unix time as an RFC 3339 string (`2026-12-05T18:00:00Z`), as allocserv
/// writes instants.
fn rfc3339(t: UnixSeconds) -> String {
    crate::rest::time_format::instant(t as f64).unwrap_or_default()
}
