//! Unix times as the reference prints them: `%d/%m/%Y %H:%M:%S` in local time.

use chrono::{DateTime, Local, TimeZone};

/// Formats a Unix time (seconds) in the local time zone; times out of range
/// are shown as the raw number of seconds.
pub fn render_timestamp(unix_seconds: f64) -> String {
    render_timestamp_in(unix_seconds, &Local)
}

/// Formats a Unix time (seconds) in the given time zone.
pub fn render_timestamp_in<Z: TimeZone>(unix_seconds: f64, zone: &Z) -> String
where
    Z::Offset: std::fmt::Display,
{
    let whole = unix_seconds.floor();
    let nanos = ((unix_seconds - whole) * 1e9) as u32;
    match DateTime::from_timestamp(whole as i64, nanos.min(999_999_999)) {
        Some(utc) => utc
            .with_timezone(zone)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string(),
        None => unix_seconds.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn formats_day_first() {
        assert_eq!(
            render_timestamp_in(946_684_800.0, &Utc),
            "01/01/2000 00:00:00"
        );
        assert_eq!(
            render_timestamp_in(1_456_225_473.9, &Utc),
            "23/02/2016 11:04:33"
        );
    }
}
