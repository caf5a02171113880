//! A logged-in user's own API tokens: list, make, revoke.
//!
//! * `GET  /spalloc/srv/spalloc/tokens` → `{"tokens": [TOKEN...]}`
//! * `POST /spalloc/srv/spalloc/tokens` with `{"name": "laptop",
//!   "expires-in-days": 90}` (both optional; no expiry by default) → 201,
//!   `Location`, and TOKEN plus `"token": "spalloc_..."`, the secret, shown
//!   this once. Needs a password credential (a form log-in session or HTTP Basic).
//! * `DELETE /spalloc/srv/spalloc/tokens/{id}` → 204, or 404 if it is not
//!   one of yours.
//!
//! TOKEN is `{"id", "name", "created", "last-used", "expires", "token-ref"}`
//! with RFC 3339 times (`null` when never used, or never expiring).

use super::authenticate::authenticate_with;
use super::{now, rfc3339, AuthRejection, TOKENS_PATH};
use crate::accounts::{Accounts, TokenId, TokenInfo, UnixSeconds};
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest lifetime a token can be given.
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// The body of a request for a new token.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CreateToken {
    name: Option<String>,
    expires_in_days: Option<u32>,
}

/// `GET .../tokens`.
pub async fn list(State(accounts): State<Accounts>, parts: Parts) -> Response {
    let result = async {
        let (who, _) = authenticate_with(&accounts, &parts.method, &parts.headers).await?;
        let tokens = accounts.tokens(&who.user)?;
        let tokens: Vec<Value> = tokens.iter().map(token_json).collect();
        Ok::<_, AuthRejection>(Json(json!({ "tokens": tokens })).into_response())
    };
    result.await.unwrap_or_else(|r| r.into_response())
}

/// `POST .../tokens`.
pub async fn create(
    State(accounts): State<Accounts>,
    parts: Parts,
    body: axum::body::Bytes,
) -> Response {
    let (who, how) = match authenticate_with(&accounts, &parts.method, &parts.headers).await {
        Ok(ok) => ok,
        Err(r) => return r.into_response(),
    };
    if !how.is_password() {
        return AuthRejection::Forbidden(
            "make tokens after logging in with a password (form or HTTP Basic), not with a token",
        )
        .into_response();
    }
    let request: CreateToken = if body.iter().all(u8::is_ascii_whitespace) {
        CreateToken::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(&format!("bad token request: {e}")),
        }
    };
    let now = now();
    let expires = match request.expires_in_days {
        None => None,
        Some(days @ 1..=MAX_TOKEN_DAYS) => Some(now + UnixSeconds::from(days) * 86_400),
        Some(_) => return bad_request(&format!("expires-in-days must be 1 to {MAX_TOKEN_DAYS}")),
    };
    let name = request.name.unwrap_or_else(|| "token".into());
    match accounts.create_token(&who.user, &name, expires, now) {
        Ok(token) => {
            let mut body = token_json(&token.info);
            body["token"] = Value::String(token.secret);
            let location = token_ref(token.info.id);
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => AuthRejection::from(e).into_response(),
    }
}

/// `DELETE .../tokens/{id}`.
pub async fn revoke(
    State(accounts): State<Accounts>,
    Path(id): Path<String>,
    parts: Parts,
) -> Response {
    let who = match authenticate_with(&accounts, &parts.method, &parts.headers).await {
        Ok((who, _)) => who,
        Err(r) => return r.into_response(),
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    match accounts.revoke_token(&who.user, TokenId(id)) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(),
        Err(e) => AuthRejection::from(e).into_response(),
    }
}

fn token_ref(id: TokenId) -> String {
    format!("{TOKENS_PATH}/{}", id.0)
}

fn token_json(t: &TokenInfo) -> Value {
    json!({
        "id": t.id.0,
        "name": t.name,
        "created": rfc3339(t.created),
        "last-used": t.last_used.map(rfc3339),
        "expires": t.expires.map(rfc3339),
        "token-ref": token_ref(t.id),
    })
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such token of yours").into_response()
}
