//! Where a stream's log starts: the `@FROM` suffix of its name.
//!
//! - `NAME`: the whole log, from event 1 (a file);
//! - `NAME@SEQ` (SEQ ≥ 1): the log from event SEQ on (a file; `@1` is `NAME`);
//! - `NAME@now`: a symlink to `NAME@SEQ`, SEQ the next event to come (resolved when read);
//! - `NAME@-10m` (also `-30s`, `-2h`, `-1d`, `-1h30m`): a symlink to `NAME@SEQ`, SEQ the
//!   first event at or after that long before the host's now;
//! - `NAME@2026-11-23T21:40:00Z` (any RFC 3339 time): a symlink to `NAME@SEQ`, SEQ the
//!   first event at or after it.

use lighthouse_view_sdk::{time, Store};

/// A start as named, before the store resolves it to a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The next event to come.
    Now,
    /// With event SEQ (≥ 1).
    Seq(u64),
    /// With the first event at or after this time (ns since the Unix epoch).
    Since(i64),
    /// With the first event at or after this long (ns) before the host's now.
    Ago(i64),
}

impl Start {
    /// The text after `@`; `None` when it names no start.
    pub fn parse(from: &str) -> Option<Start> {
        if from == "now" {
            return Some(Start::Now);
        }
        if !from.is_empty() && from.bytes().all(|b| b.is_ascii_digit()) {
            return from.parse().ok().filter(|&seq| seq >= 1).map(Start::Seq);
        }
        if let Some(span) = from.strip_prefix('-') {
            return time::parse_span(span).map(Start::Ago);
        }
        time::parse_rfc3339(from).map(Start::Since)
    }

    /// The cursor the log this names starts from: the seq of the last event it does
    /// not show (resolved now, for the links).
    pub fn cursor<S: Store>(self, store: &S) -> u64 {
        match self {
            Start::Now => store.head(),
            Start::Seq(seq) => seq - 1,
            Start::Since(ns) => store.seq_at_time(ns.saturating_sub(1)),
            Start::Ago(span) => {
                store.seq_at_time(store.now_ns().saturating_sub(span).saturating_sub(1))
            }
        }
    }
}

impl Start {
    /// [`Start::cursor`] in the audit trail: the seq of the last record the log does not
    /// show. By time: the first kept record at or after it.
    pub fn audit_cursor<S: Store>(self, store: &S) -> u64 {
        let since = match self {
            Start::Now => return store.audit_head(),
            Start::Seq(seq) => return seq - 1,
            Start::Since(ns) => ns,
            Start::Ago(span) => store.now_ns().saturating_sub(span),
        };
        let mut records = store.audit_after(0);
        match records.find(|r| r.time_ns >= since) {
            Some(first) => first.seq - 1,
            // None yet: from where the store looked up to (the records to come).
            None => records.cursor(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn parses_each_form() {
        assert_eq!(Start::parse("1"), Some(Start::Seq(1)));
        assert_eq!(Start::parse("now"), Some(Start::Now));
        assert_eq!(Start::parse("120"), Some(Start::Seq(120)));
        assert_eq!(Start::parse("007"), Some(Start::Seq(7)));
        assert_eq!(Start::parse("-10m"), Some(Start::Ago(600 * S)));
        assert_eq!(Start::parse("-1h30m"), Some(Start::Ago(5_400 * S)));
        assert_eq!(
            Start::parse("2026-11-23T21:40:00Z"),
            Some(Start::Since(1_795_470_000 * S))
        );
        for bad in [
            "",
            "0",
            "00",
            "+1",
            "1x",
            "-",
            "-10",
            "-10x",
            "@1",
            "99999999999999999999999",
        ] {
            assert_eq!(Start::parse(bad), None, "{bad:?}");
        }
    }
}
