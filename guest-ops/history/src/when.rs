//! The names of points in the log: `<when>` in `history/<when>/...`.

use lighthouse_view_sdk::time;

/// A point as named, before the store resolves it to a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// `@SEQ`: the tree after event SEQ.
    Seq(u64),
    /// An RFC 3339 time: the tree after the newest event at or before it (ns).
    Time(i64),
    /// `-10m`, `-2h`, `-30s`, `-1d`, `-1h30m`: that long before the host's now (ns).
    Ago(i64),
}

impl When {
    /// `None` for any name that is not a point (the view answers not-found).
    pub fn parse(name: &str) -> Option<When> {
        if let Some(digits) = name.strip_prefix('@') {
            return all_digits(digits)
                .then(|| digits.parse().ok().map(When::Seq))
                .flatten();
        }
        if let Some(span) = name.strip_prefix('-') {
            return time::parse_span(span).map(When::Ago);
        }
        time::parse_rfc3339(name).map(When::Time)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn sequence_numbers() {
        assert_eq!(When::parse("@0"), Some(When::Seq(0)));
        assert_eq!(When::parse("@42"), Some(When::Seq(42)));
        assert_eq!(When::parse("@007"), Some(When::Seq(7)));
        assert_eq!(When::parse("@"), None);
        assert_eq!(When::parse("@-1"), None);
        assert_eq!(When::parse("@+1"), None);
        assert_eq!(When::parse("@1x"), None);
        assert_eq!(When::parse("@99999999999999999999999"), None);
        assert_eq!(When::parse("42"), None);
    }

    #[test]
    fn relative_times() {
        assert_eq!(When::parse("-30s"), Some(When::Ago(30 * S)));
        assert_eq!(When::parse("-10m"), Some(When::Ago(600 * S)));
        assert_eq!(When::parse("-2h"), Some(When::Ago(7_200 * S)));
        assert_eq!(When::parse("-1d"), Some(When::Ago(86_400 * S)));
        assert_eq!(When::parse("-1h30m"), Some(When::Ago(5_400 * S)));
        assert_eq!(When::parse("-0s"), Some(When::Ago(0)));
        for bad in [
            "-",
            "-10",
            "-m",
            "-10x",
            "-10 m",
            "-1.5h",
            "--1h",
            "-10mm",
            "-99999999999d",
        ] {
            assert_eq!(When::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_times() {
        let t = When::parse("2026-11-23T21:40:00Z");
        assert_eq!(t, Some(When::Time(1_795_470_000 * S)));
        assert_eq!(When::parse("2026-11-23T22:40:00+01:00"), t);
        assert_eq!(
            When::parse("2026-11-23T21:40:00.123456789Z"),
            Some(When::Time(1_795_470_000 * S + 123_456_789))
        );
        for bad in ["2026-11-23", "21:40:00", "now", ".log", "src", ""] {
            assert_eq!(When::parse(bad), None, "{bad}");
        }
    }
}
