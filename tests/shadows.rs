//! Shadow annotations through a real mount, on both backends: an agent writes one JSON
//! object to `shadows/<path>` and reads the annotations back; bad input is EINVAL and
//! records nothing; anchors follow their text when lines are inserted above, go stale
//! when it is gone, and annotations follow renames; the stream of annotations sees them.

#[macro_use]
mod common;

use std::fs;
use std::io::{BufRead, BufReader};

use common::*;

/// The annotations of a shadow document: (kind, text, start_line, end_line, status).
fn annotations(doc: &str) -> Vec<(String, String, u64, u64, String)> {
    let v = json::parse(doc).unwrap_or_else(|e| panic!("not JSON ({e}): {doc}"));
    let list = match v.get("annotations") {
        Some(json::Value::Array(list)) => list.clone(),
        other => panic!("no annotations array: {other:?} in {doc}"),
    };
    list.iter()
        .map(|a| {
            let s = |k: &str| {
                a.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let anchor = a.get("anchor");
            let line = |k: &str| {
                anchor
                    .and_then(|x| x.get(k))
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
            };
            (
                s("kind"),
                s("text"),
                line("start_line"),
                line("end_line"),
                s("status"),
            )
        })
        .collect()
}

fn committed_events(m: &Mount, store: &std::path::Path) -> usize {
    fs::File::open(m.current()).unwrap().sync_all().unwrap();
    log_json(store, None).len()
}

both_backends! {
    fn annotations_are_recorded_and_reanchored(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::create_dir(m.path("src")).unwrap();
        fs::write(m.path("src/a.rs"), b"fn main() {\n    for i in 0..n {\n    }\n}\n").unwrap();
        let shadow = m.root().join("shadows/src/a.rs");
        let mut stream = BufReader::new(fs::File::open(m.root().join("streams/annotations")).unwrap());

        // The minimal form from the issue.
        fs::write(&shadow, br#"{"kind":"comment","text":"check this loop","anchor":{"start_line":2,"end_line":2}}"#).unwrap();
        let doc = fs::read_to_string(&shadow).unwrap();
        assert_eq!(
            annotations(&doc),
            [("comment".into(), "check this loop".into(), 2, 2, "fresh".into())],
            "[{backend}] {doc}"
        );
        assert!(doc.contains("\"path\": \"/src/a.rs\""), "{doc}");
        // The stream of annotations saw it, as one JSON line with the body.
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let event = json::parse(&line).unwrap();
        assert_eq!(event.get("op").and_then(|o| o.as_str()), Some("annotate"));
        assert_eq!(event.get("path").and_then(|o| o.as_str()), Some("/src/a.rs"));
        assert_eq!(event.get("view").and_then(|o| o.as_str()), Some("shadows"));

        // Bad input: EINVAL, and not one event more.
        let before = committed_events(&m, &store);
        for bad in [
            &b"{not json"[..],
            br#"{"kind":"comment"}"#,
            br#"{"kind":"comment","text":7}"#,
            br#"{"kind":"comment","text":"x","colour":"red"}"#,
            br#"{"kind":"comment","text":"x","anchor":{"start_line":9,"end_line":9}}"#,
            b"{\"kind\":\"comment\",\"text\":\"good\"}\n{\"kind\":\"comment\",\"text\":\"\"}\n",
        ] {
            assert_errno(fs::write(&shadow, bad), libc::EINVAL, &format!("[{backend}] {:?}", String::from_utf8_lossy(bad)));
        }
        assert_errno(fs::write(m.root().join("shadows/src/missing.rs"), b"{\"kind\":\"comment\",\"text\":\"x\"}"), libc::ENOENT, "annotating a missing file");
        assert_eq!(committed_events(&m, &store), before, "[{backend}] refused writes record nothing");

        // Three lines inserted above: the anchor moves with its text.
        fs::write(m.path("src/a.rs"), b"// one\n// two\n// three\nfn main() {\n    for i in 0..n {\n    }\n}\n").unwrap();
        let doc = fs::read_to_string(&shadow).unwrap();
        assert_eq!(annotations(&doc)[0].2..=annotations(&doc)[0].3, 5..=5, "[{backend}] {doc}");
        assert_eq!(annotations(&doc)[0].4, "moved", "[{backend}] {doc}");

        // Renamed: the annotations go along.
        fs::rename(m.path("src/a.rs"), m.path("src/b.rs")).unwrap();
        let doc = fs::read_to_string(m.root().join("shadows/src/b.rs")).unwrap();
        assert_eq!(annotations(&doc).len(), 1, "[{backend}] {doc}");
        assert!(!m.root().join("shadows/src/a.rs").exists());

        // The loop is gone: stale.
        fs::write(m.path("src/b.rs"), b"fn main() {}\n").unwrap();
        let doc = fs::read_to_string(m.root().join("shadows/src/b.rs")).unwrap();
        assert_eq!(annotations(&doc)[0].4, "stale", "[{backend}] {doc}");
        m.stop();
    }
}
