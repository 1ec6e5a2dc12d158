//! Events as JSON lines.
//!
//! Full (`file_changes`, `annotations`, `all`), absent options as `null`:
//!
//! ```text
//! {"seq":7,"time":"2026-11-23T21:40:00.123456789Z","time_ns":1795470000123456789,"agent":"claude","uid":1000,"gid":1000,"pid":42,"op":"write","path":"/src/a.rs","path2":null,"size":12,"hash":"ab12…","view":null,"body":null}
//! ```
//!
//! `body` (what a view appended) is the JSON document itself, re-serialized on the one
//! line (object keys sorted), not a string holding it; a body that is not JSON (the host
//! refuses those) would be passed on as a JSON string.
//!
//! Audit (`audit`): `{"seq":3,"time":"…","agent":"reviewer","uid":65534,"gid":65534,"pid":42,"op":"create","path":"/current/x","outcome":"denied: no write permission here"}`.
//!
//! Compact (`agent_activity`): `{"seq":7,"time":"…","agent":"claude","uid":1000,"pid":42,"op":"rename","path":"/a","path2":"/b"}`,
//! `path2` only when set.

use lighthouse_view_sdk::time::rfc3339_nanos;
use lighthouse_view_sdk::{json, AuditRecord, Event, FsError};
use serde::Serialize;

use crate::catalog::Style;

#[derive(Serialize)]
struct Compact<'a> {
    seq: u64,
    time: String,
    agent: Option<&'a str>,
    uid: u32,
    pid: u32,
    op: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path2: Option<&'a str>,
}

/// `event` as one JSON line (ending in `\n`) in `style`.
pub fn line(event: &Event, style: Style) -> Result<String, FsError> {
    match style {
        Style::Full => json::event_line(event),
        Style::Compact => json::line(&Compact {
            seq: event.seq,
            time: rfc3339_nanos(event.time_ns),
            agent: event.agent.as_deref(),
            uid: event.uid,
            pid: event.pid,
            op: &event.op,
            path: &event.path,
            path2: event.path2.as_deref(),
        }),
    }
}

#[derive(Serialize)]
struct Audited<'a> {
    seq: u64,
    time: String,
    agent: &'a str,
    uid: u32,
    gid: u32,
    pid: u32,
    op: &'a str,
    path: &'a str,
    outcome: &'a str,
}

/// An audit record as one JSON line (ending in `\n`).
pub fn audit_line(r: &AuditRecord) -> Result<String, FsError> {
    json::line(&Audited {
        seq: r.seq,
        time: rfc3339_nanos(r.time_ns),
        agent: &r.agent,
        uid: r.uid,
        gid: r.gid,
        pid: r.pid,
        op: &r.op,
        path: &r.path,
        outcome: &r.outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: &str) -> Event {
        Event {
            seq: 7,
            time_ns: 1_795_470_000_123_456_789,
            agent: Some("claude".into()),
            uid: 1000,
            gid: 100,
            pid: 42,
            op: op.into(),
            path: "/src/a.rs".into(),
            path2: None,
            size: Some(12),
            hash: Some("ab12".into()),
            view: None,
            body: None,
        }
    }

    #[test]
    fn full_line_has_every_field() {
        assert_eq!(
            line(&event("write"), Style::Full).unwrap(),
            concat!(
                r#"{"seq":7,"time":"2026-11-23T21:40:00.123456789Z","time_ns":1795470000123456789,"#,
                r#""agent":"claude","uid":1000,"gid":100,"pid":42,"op":"write","path":"/src/a.rs","#,
                r#""path2":null,"size":12,"hash":"ab12","view":null,"body":null}"#,
                "\n"
            )
        );
    }

    #[test]
    fn body_is_json_on_one_line() {
        let mut e = event("annotate");
        e.view = Some("shadows".into());
        e.body = Some("{\n  \"text\": \"line\\nbreak\",\n  \"kind\": \"note\"\n}".into());
        let l = line(&e, Style::Full).unwrap();
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.ends_with(
            "\"view\":\"shadows\",\"body\":{\"kind\":\"note\",\"text\":\"line\\nbreak\"}}\n"
        ));
        e.body = Some("not json".into());
        assert!(line(&e, Style::Full)
            .unwrap()
            .ends_with("\"body\":\"not json\"}\n"));
    }

    #[test]
    fn compact_line_is_who_did_what_where() {
        assert_eq!(
            line(&event("write"), Style::Compact).unwrap(),
            concat!(
                r#"{"seq":7,"time":"2026-11-23T21:40:00.123456789Z","agent":"claude","uid":1000,"pid":42,"#,
                r#""op":"write","path":"/src/a.rs"}"#,
                "\n"
            )
        );
        let mut e = event("rename");
        e.path2 = Some("/b".into());
        e.agent = None;
        assert!(line(&e, Style::Compact).unwrap().ends_with(concat!(
            r#""agent":null,"uid":1000,"pid":42,"op":"rename","path":"/src/a.rs","path2":"/b"}"#,
            "\n"
        )));
    }
}
