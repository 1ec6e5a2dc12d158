//! Points in the log: `SEQ`, `@SEQ`, or an RFC 3339 time.

use anyhow::{bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::core::TimeNs;
use crate::store::StoreReader;

/// Resolve `--at` to a sequence number of the store's log.
pub fn resolve_at(store: &StoreReader, at: &str) -> anyhow::Result<u64> {
    let digits = at.strip_prefix('@').unwrap_or(at);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let seq: u64 = digits
            .parse()
            .with_context(|| format!("sequence number {at:?} is too large"))?;
        let head = store.head()?;
        if seq > head {
            bail!("--at {at}: the log ends at event {head}");
        }
        return Ok(seq);
    }
    let t = DateTime::parse_from_rfc3339(at).with_context(|| {
        format!("--at {at:?} is neither a sequence number (123, @123) nor an RFC 3339 time")
    })?;
    let ns = t
        .timestamp_nanos_opt()
        .with_context(|| format!("--at {at:?} is out of range"))?;
    store.seq_at_time(ns)
}

/// RFC 3339 with nanoseconds, UTC.
pub fn format_ns(ns: TimeNs) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}
