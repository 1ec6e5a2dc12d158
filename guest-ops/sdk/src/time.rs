//! RFC 3339 times, parsed and formatted without a clock (the host's clock is
//! `store::now_ns`).

use chrono::{DateTime, SecondsFormat, Utc};

/// `ns` (since the Unix epoch) as RFC 3339 in UTC with nanoseconds:
/// `2026-11-23T21:40:00.123456789Z`. [`parse_rfc3339`] gives back exactly `ns`.
pub fn rfc3339_nanos(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time (`Z` or an offset, with or
/// without fractional seconds); `None` when `text` is not one or is out of range.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// A span of time, `10m`, `2h`, `30s`, `1d` or several of them (`1h30m`), as nanoseconds;
/// `None` when it is not one (or overflows).
pub fn parse_span(mut span: &str) -> Option<i64> {
    if span.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !span.is_empty() {
        let digits = span.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let count: i64 = span[..digits].parse().ok()?;
        let unit_len = span[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let unit_ns: i64 = match &span[digits..digits + unit_len] {
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            _ => return None,
        };
        total = total.checked_add(count.checked_mul(unit_ns)?)?;
        span = &span[digits + unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_add_up_their_units() {
        const S: i64 = 1_000_000_000;
        assert_eq!(parse_span("10m"), Some(600 * S));
        assert_eq!(parse_span("1h30m"), Some(5_400 * S));
        assert_eq!(parse_span("1d"), Some(86_400 * S));
        for bad in ["", "m", "10", "10x", "1h-3m", "99999999999999999d"] {
            assert_eq!(parse_span(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_utc_with_nanoseconds_and_round_trips() {
        let ns = 1_795_038_000_123_456_789;
        let text = rfc3339_nanos(ns);
        assert_eq!(text, "2026-11-18T21:40:00.123456789Z");
        assert_eq!(parse_rfc3339(&text), Some(ns));
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(parse_rfc3339(&rfc3339_nanos(-1)), Some(-1));
    }

    #[test]
    fn parses_the_usual_spellings() {
        let base = parse_rfc3339("2026-11-23T21:40:00Z").unwrap();
        assert_eq!(base % 1_000_000_000, 0);
        assert_eq!(parse_rfc3339("2026-11-23T22:40:00+01:00"), Some(base));
        assert_eq!(
            parse_rfc3339("2026-11-23T21:40:00.5Z"),
            Some(base + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T21:40:00.000000001Z"),
            Some(base + 1)
        );
        assert_eq!(parse_rfc3339("2026-11-23"), None);
        assert_eq!(parse_rfc3339("@12"), None);
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59Z"), None); // past i64 nanoseconds
    }
}
