//! `history/.log/<path>`: the versions of one path, as JSON lines.

use lighthouse_view_sdk::{json, Event, FsError};

/// Whether `event` changed `path` itself (not something below it): its subject, or the
/// destination of a rename or link. A symlink's `path2` is its target and an attribute
/// change's the attribute's name: neither is a path.
pub fn touches(event: &Event, path: &str) -> bool {
    event.path == path
        || (lighthouse_view_sdk::path2_is_a_path(&event.op) && event.path2.as_deref() == Some(path))
}

/// `event` as one JSON line (the log's own line, see the SDK).
pub fn line(event: &Event) -> Result<String, FsError> {
    json::event_line(event)
}

#[cfg(test)]
pub(crate) fn event(seq: u64, time_ns: i64, op: &str, path: &str, path2: Option<&str>) -> Event {
    Event {
        seq,
        time_ns,
        agent: None,
        uid: 1000,
        gid: 1000,
        pid: 42,
        op: op.into(),
        path: path.into(),
        path2: path2.map(Into::into),
        size: None,
        hash: None,
        view: None,
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_one_json_line() {
        let mut e = event(7, 1_795_470_000_123_456_789, "write", "/src/a.rs", None);
        e.agent = Some("claude".into());
        e.size = Some(12);
        e.hash = Some("ab12".into());
        assert_eq!(
            line(&e).unwrap(),
            concat!(
                r#"{"seq":7,"time":"2026-11-23T21:40:00.123456789Z","time_ns":1795470000123456789,"#,
                r#""agent":"claude","uid":1000,"gid":1000,"pid":42,"op":"write","path":"/src/a.rs","#,
                r#""path2":null,"size":12,"hash":"ab12","view":null,"body":null}"#,
                "\n"
            )
        );
        let e = event(8, 0, "rename", "/a \"q\"", Some("/b"));
        assert!(line(&e)
            .unwrap()
            .contains(r#""path":"/a \"q\"","path2":"/b""#));
    }

    #[test]
    fn touches_the_path_itself_only() {
        assert!(touches(&event(1, 0, "write", "/a", None), "/a"));
        assert!(!touches(&event(1, 0, "write", "/a/b", None), "/a"));
        assert!(!touches(&event(1, 0, "write", "/ab", None), "/a"));
        assert!(touches(&event(1, 0, "rename", "/x", Some("/a")), "/a"));
        assert!(touches(&event(1, 0, "link", "/x", Some("/a")), "/a"));
        assert!(!touches(&event(1, 0, "symlink", "/x", Some("/a")), "/a"));
        assert!(touches(&event(1, 0, "symlink", "/a", Some("/x")), "/a"));
    }
}
