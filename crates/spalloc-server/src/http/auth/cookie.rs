//! The session cookie: reading `JSESSIONID` from a request, and the
//! `Set-Cookie` values that give or clear it.

use axum::http::{header, HeaderMap, HeaderValue};
use headers::HeaderMapExt;

/// The session cookie's name, as Tomcat names it (the SpiNNMan client looks
/// for exactly this).
pub const SESSION_COOKIE: &str = "JSESSIONID";

/// The session id a request carries, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.typed_get::<headers::Cookie>()?;
    cookies
        .get(SESSION_COOKIE)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `Set-Cookie` for a new session. `HttpOnly` keeps it from scripts,
/// `SameSite=Lax` from cross-site POSTs (CSRF tokens still apply).
pub fn set_session(id: &str) -> (header::HeaderName, HeaderValue) {
    let value = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax");
    (
        header::SET_COOKIE,
        // Session ids are hex, always a valid header value.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("")),
    )
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_session() -> (header::HeaderName, HeaderValue) {
    (
        header::SET_COOKIE,
        HeaderValue::from_static("JSESSIONID=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; JSESSIONID=abc123; b=2"),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("abc123"));
    }

    #[test]
    fn no_cookie_or_an_empty_one_is_no_session() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_id(&headers), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("JSESSIONID="));
        assert_eq!(session_id(&headers), None);
    }
}
