//! Instants as allocserv's JSON writes them: ISO-8601 in UTC,
//! `2021-10-11T12:13:14Z`, with a fraction only when there is one.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Unix seconds as an ISO-8601 UTC instant (`None` if out of range).
pub fn instant(unix_seconds: f64) -> Option<String> {
    if !unix_seconds.is_finite() {
        return None;
    }
    // Whole milliseconds: enough for a keepalive, and stable in tests.
    let millis = (unix_seconds * 1000.0).round() as i128;
    let t = OffsetDateTime::from_unix_timestamp_nanos(millis.checked_mul(1_000_000)?).ok()?;
    t.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_look_like_allocserv_ones() {
        assert_eq!(
            instant(1633954394.0).as_deref(),
            Some("2021-10-11T12:13:14Z")
        );
        assert_eq!(
            instant(1633954394.25).as_deref(),
            Some("2021-10-11T12:13:14.25Z")
        );
        assert_eq!(instant(f64::NAN), None);
        assert_eq!(instant(1e300), None);
    }
}
