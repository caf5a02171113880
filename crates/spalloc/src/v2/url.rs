//! Service URLs: telling a v2 address from a legacy host name, and turning
//! what the user wrote into the service URL the API hangs from.
//!
//! allocserv's users write `https://host/spalloc/` (SpiNNMan's habit); the
//! log-in form is then at `…/spalloc/system/login.html` and the API at
//! `…/spalloc/srv/spalloc/`. A bare `https://host` or `https://host/` means
//! `https://host/spalloc/`, and the API's own URL (`…/srv/spalloc/`) is
//! accepted too.

use crate::error::{Error, Result};
use url::Url;

/// True if `address` is a URL (`http://…` or `https://…`), which means the
/// v2 REST API; anything else is a host name for the legacy protocol.
pub fn is_v2_address(address: &str) -> bool {
    let lower = address.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The service URL (ending in `/`, without user name or password) for what
/// the user wrote.
pub fn service_url(given: &str) -> Result<String> {
    let mut url = parse(given)?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    let path = match path.strip_suffix("/srv/spalloc") {
        Some(service) => service.to_owned(),
        None if path.is_empty() => "/spalloc".to_owned(),
        None => path,
    };
    url.set_path(&format!("{path}/"));
    Ok(url.to_string())
}

/// The user name and password written into the URL, decoded, if both are.
pub fn user_info(given: &str) -> Option<(String, String)> {
    let url = Url::parse(given.trim()).ok()?;
    let password = url.password()?;
    if url.username().is_empty() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(url.username()), decode(password)))
}

fn parse(given: &str) -> Result<Url> {
    let url = Url::parse(given.trim()).map_err(|e| {
        Error::InvalidRequest(format!(
            "{given:?} is not a valid server URL ({e}); write e.g. https://host/spalloc/"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::InvalidRequest(format!(
            "{given:?} is not an http:// or https:// server URL"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_mean_v2_and_host_names_mean_the_legacy_port() {
        assert!(is_v2_address("https://spinnaker.cs.man.ac.uk/spalloc/"));
        assert!(is_v2_address("HTTP://localhost:8080"));
        assert!(!is_v2_address("spinnaker.cs.man.ac.uk"));
        assert!(!is_v2_address("10.11.192.11"));
    }

    #[test]
    fn the_service_url_is_the_spalloc_prefix_with_a_trailing_slash() {
        for (given, want) in [
            ("https://h/spalloc/", "https://h/spalloc/"),
            ("https://h/spalloc", "https://h/spalloc/"),
            ("https://h", "https://h/spalloc/"),
            ("http://h:9091/", "http://h:9091/spalloc/"),
            (
                "http://h:9091/spalloc/srv/spalloc/",
                "http://h:9091/spalloc/",
            ),
            ("https://u:p@h/x/spalloc?q#f", "https://h/x/spalloc/"),
        ] {
            assert_eq!(service_url(given).unwrap(), want, "{given}");
        }
        assert!(service_url("ftp://h/").is_err());
        assert!(service_url("not a url").is_err());
    }

    #[test]
    fn credentials_in_a_url_are_decoded() {
        assert_eq!(
            user_info("https://ann%40x:p%2Fw@h/spalloc/"),
            Some(("ann@x".into(), "p/w".into()))
        );
        assert_eq!(user_info("https://h/spalloc/"), None);
        assert_eq!(user_info("https://ann@h/spalloc/"), None);
    }
}
