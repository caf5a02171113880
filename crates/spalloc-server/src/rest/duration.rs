//! ISO-8601 durations as Java's `Duration.parse` reads them (`PT120S`,
//! `PT2M`, `P1DT0.5S`, `-PT30S`): days, hours, minutes and seconds only.
//!
//! Hand-written on purpose: the ISO-8601 crates also accept years, months
//! and weeks, which `Duration.parse` refuses, and the grammar is a dozen
//! lines.

/// Seconds in the duration, or a message saying why the text is not one.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let bad =
        || format!("keepalive-interval: {text:?} is not an ISO-8601 duration such as \"PT120S\"");
    let upper = text.to_ascii_uppercase();
    let (negative, rest) = match upper.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, upper.strip_prefix('+').unwrap_or(&upper)),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut total = 0.0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)], fraction_unit: char| -> Result<(), String> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' || c == '-' || c == '+' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let position = units[next_unit..]
                .iter()
                .position(|(u, _)| *u == c)
                .ok_or_else(bad)?;
            let (unit, scale) = units[next_unit + position];
            next_unit += position + 1;
            if number.is_empty() || (number.contains('.') && unit != fraction_unit) {
                return Err(bad());
            }
            let value: f64 = number.parse().map_err(|_| bad())?;
            total += value * scale;
            any = true;
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    };
    take(date, &[('D', 86_400.0)], 'X')?;
    if let Some(time) = time {
        take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)], 'S')?;
    }
    if !any || !total.is_finite() {
        return Err(bad());
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_duration_forms_parse_to_seconds() {
        assert_eq!(parse_seconds("PT120S"), Ok(120.0));
        assert_eq!(parse_seconds("pt2m"), Ok(120.0));
        assert_eq!(parse_seconds("PT1H0.5S"), Ok(3600.5));
        assert_eq!(parse_seconds("P1D"), Ok(86_400.0));
        assert_eq!(parse_seconds("-PT30S"), Ok(-30.0));
        assert_eq!(parse_seconds("PT-30S"), Ok(-30.0));
    }

    #[test]
    fn everything_else_is_refused_with_a_message() {
        for bad in [
            "", "P", "PT", "120", "PT120", "P1Y", "P1M", "P1W", "PT1S2M", "PT1.5M", "PTS",
            "PT1e999S", "PT1SS",
        ] {
            let e = parse_seconds(bad).unwrap_err();
            assert!(e.contains("ISO-8601"), "{bad}: {e}");
        }
    }
}
