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

/// Whether the client reached us over HTTPS: this listener speaks TLS, or
/// a reverse proxy in front of it says so with `X-Forwarded-Proto: https`
/// (the proxy's own word for the scheme, as the API's links honour it).
pub fn over_https(headers: &HeaderMap, tls: bool) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    match forwarded {
        Some(p) if p.eq_ignore_ascii_case("https") => true,
        Some(p) if p.eq_ignore_ascii_case("http") => false,
        _ => tls,
    }
}

/// The cookie's attributes. `HttpOnly` keeps it from scripts,
/// `SameSite=Lax` from cross-site POSTs (CSRF tokens still apply), and
/// `Secure`, when the client came over HTTPS, from ever being sent in the
/// clear. Over plain HTTP `Secure` is left off: a browser would drop the
/// cookie and nobody could log in.
fn attributes(secure: bool) -> &'static str {
    if secure {
        "Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    }
}

/// `Set-Cookie` for a new session; `secure` from [`over_https`].
pub fn set_session(id: &str, secure: bool) -> (header::HeaderName, HeaderValue) {
    let value = format!("{SESSION_COOKIE}={id}; {}", attributes(secure));
    (
        header::SET_COOKIE,
        // Session ids are hex, always a valid header value.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("")),
    )
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_session(secure: bool) -> (header::HeaderName, HeaderValue) {
    let value = format!("{SESSION_COOKIE}=; Max-Age=0; {}", attributes(secure));
    (
        header::SET_COOKIE,
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("")),
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
    fn the_cookie_is_secure_over_tls_or_behind_an_https_proxy_only() {
        let mut headers = HeaderMap::new();
        assert!(!over_https(&headers, false));
        assert!(over_https(&headers, true));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_https(&headers, false));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!over_https(&headers, true));
        let cookie = |secure| {
            set_session("abc", secure)
                .1
                .to_str()
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(
            cookie(true),
            "JSESSIONID=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            cookie(false),
            "JSESSIONID=abc; Path=/; HttpOnly; SameSite=Lax"
        );
        let cleared = clear_session(true).1;
        assert!(cleared.to_str().unwrap_or("").ends_with("; Secure"));
    }

    #[test]
    fn no_cookie_or_an_empty_one_is_no_session() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_id(&headers), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("JSESSIONID="));
        assert_eq!(session_id(&headers), None);
    }
}
