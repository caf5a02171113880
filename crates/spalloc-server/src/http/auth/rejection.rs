//! Why a request was not let through: 401 (who are you?), 403 (not
//! allowed), or 503 (the accounts database failed). Always `text/plain`
//! with a message, never a redirect, since the SpiNNMan client counts any
//! 3xx as success and then fails to parse the log-in page as JSON.

use crate::accounts::{AccountsError, Role};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A refused request.
#[derive(Debug, thiserror::Error)]
pub enum AuthRejection {
    /// No credentials at all.
    #[error("log in first: send a session cookie, HTTP Basic credentials or a bearer token")]
    NotLoggedIn,
    /// The session cookie names no live session.
    #[error("your session has ended or is unknown: log in again")]
    SessionEnded,
    /// HTTP Basic credentials were refused (or the account is locked or
    /// disabled: the client is not told which).
    #[error("bad user name or password")]
    BadCredentials,
    /// The bearer token is unknown, expired or revoked.
    #[error("unknown, expired or revoked bearer token")]
    BadToken,
    /// An `Authorization` header of another scheme.
    #[error("unsupported Authorization header: use Basic or Bearer")]
    UnsupportedScheme,
    /// A changing request with a session cookie lacked the session's CSRF
    /// token.
    #[error("missing or wrong X-CSRF-TOKEN header")]
    Csrf,
    /// The caller lacks the role the operation needs.
    #[error("you need the {0} role for this")]
    NeedsRole(Role),
    /// Allowed to callers, but not with this kind of credential.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The accounts database failed.
    #[error("the accounts database is unavailable")]
    Unavailable,
}

impl From<AccountsError> for AuthRejection {
    fn from(e: AccountsError) -> AuthRejection {
        tracing::error!("accounts: {e}");
        AuthRejection::Unavailable
    }
}

impl AuthRejection {
    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthRejection::NotLoggedIn
            | AuthRejection::SessionEnded
            | AuthRejection::BadCredentials
            | AuthRejection::BadToken
            | AuthRejection::UnsupportedScheme => StatusCode::UNAUTHORIZED,
            AuthRejection::Csrf | AuthRejection::NeedsRole(_) | AuthRejection::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            AuthRejection::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, self.to_string()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // Bearer only: a Basic challenge would make browsers prompt
            // and then send the password with every request, CSRF-free.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"spalloc\""),
            );
        }
        response
    }
}
