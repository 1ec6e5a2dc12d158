//! The shadows view against the SDK's model store: annotations written, folded from the
//! log, re-anchored and rendered.

use lighthouse_view_sdk::model::{hash_hex, ModelStore};
use lighthouse_view_sdk::time::rfc3339_nanos;
use lighthouse_view_sdk::{Attrs, Caching, DirEntry, EventFilter, EventsPage, FsError, NodeKind};
use lighthouse_view_sdk::{Caller, OpenMode, Store, View};
use serde_json::{json, Value};

use crate::fold::{Fold, RECREATE_WINDOW_NS};
use crate::shadows::Shadows;

const S: i64 = 1_000_000_000;
/// 2026-11-23T21:40:00Z
const T0: i64 = 1_795_470_000 * S;

/// ModelStore records what a view appends as view "model".
const VIEW: &str = "model";

const LOOP: &str = "fn main() {\n    for i in 0..n {\n        go(i);\n    }\n}\n";
const MINIMAL: &str =
    r#"{"kind":"comment","text":"check this loop","anchor":{"start_line":2,"end_line":2}}"#;

/// /src/a.rs (LOOP), /src/b.txt, /README, and a symlink /link -> src/a.rs.
fn sample() -> ModelStore {
    let m = ModelStore::new(T0);
    m.mkdir("/src");
    m.write("/src/a.rs", LOOP.as_bytes());
    m.write("/src/b.txt", b"one\ntwo\nthree\n");
    m.write("/README", b"hello\n");
    m.push("symlink", "/link", Some("src/a.rs"), None);
    m
}

/// A new file, as the host logs it: created, then written.
fn create(m: &ModelStore, path: &str, data: &[u8]) {
    m.push("create", path, None, None);
    m.write(path, data);
}

fn view(m: &ModelStore) -> Shadows<&ModelStore> {
    Shadows::new(m, VIEW)
}

fn doc<S: Store>(v: &Shadows<S>, path: &str) -> Value {
    serde_json::from_slice(&v.read(path, 0, u32::MAX).unwrap()).unwrap()
}

fn notes<S: Store>(v: &Shadows<S>, path: &str) -> Vec<Value> {
    doc(v, path)["annotations"].as_array().unwrap().clone()
}

fn write<S: Store>(v: &Shadows<S>, path: &str, data: &str) -> Result<u32, FsError> {
    v.write(path, data.as_bytes())
}

fn note(kind: &str, text: &str, start: u64, end: u64) -> String {
    json!({"kind": kind, "text": text, "anchor": {"start_line": start, "end_line": end}})
        .to_string()
}

/// (start, end, original start, original end, status) of an annotation.
fn place(n: &Value) -> (u64, u64, u64, u64, &str) {
    let a = &n["anchor"];
    let num = |k: &str| a[k].as_u64().unwrap();
    (
        num("start_line"),
        num("end_line"),
        num("original_start_line"),
        num("original_end_line"),
        n["status"].as_str().unwrap(),
    )
}

fn texts(notes: &[Value]) -> Vec<&str> {
    notes.iter().map(|n| n["text"].as_str().unwrap()).collect()
}

fn names(entries: &[DirEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn the_minimal_form_is_recorded_and_read_back() {
    let m = sample();
    let v = view(&m);
    let head = (&m).head();
    assert_eq!(
        write(&v, "/src/a.rs", MINIMAL).unwrap() as usize,
        MINIMAL.len()
    );

    // One event of this view, by the writer, about the live path.
    let events = m.all_events();
    assert_eq!(events.len() as u64, head + 1);
    let e = events.last().unwrap();
    assert_eq!(
        (e.op.as_str(), e.path.as_str(), e.view.as_deref()),
        ("annotate", "/src/a.rs", Some(VIEW))
    );
    let body: Value = serde_json::from_str(e.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["v"], 1);
    assert_eq!(body["kind"], "comment");
    assert_eq!(body["hash"], hash_hex(LOOP.as_bytes()));
    assert_eq!(body["anchor"]["lines"], "    for i in 0..n {");
    assert_eq!(
        body["anchor"]["fingerprint"],
        hash_hex(b"    for i in 0..n {")
    );

    let d = doc(&v, "/src/a.rs");
    assert_eq!(d["path"], "/src/a.rs");
    assert_eq!(
        d["hash"],
        (&m).hash_at("/src/a.rs", (&m).head()).unwrap().as_str()
    );
    assert_eq!(d["size"], LOOP.len());
    let n = &d["annotations"][0];
    assert_eq!(d["annotations"].as_array().unwrap().len(), 1);
    assert_eq!(n["id"], format!("@{}", e.seq));
    assert_eq!(n["seq"], e.seq);
    assert_eq!(n["agent"], "model");
    assert_eq!(n["uid"], 0);
    assert_eq!(n["time"], rfc3339_nanos(e.time_ns));
    assert_eq!(n["kind"], "comment");
    assert_eq!(n["text"], "check this loop");
    assert_eq!(place(n), (2, 2, 2, 2, "fresh"));
    assert_eq!(n["anchor"]["match"], "exact");
    assert_eq!(n["anchor"]["lines"], "    for i in 0..n {");
    assert_eq!(n["annotated_path"], "/src/a.rs");
    assert_eq!(n["annotated_hash"], hash_hex(LOOP.as_bytes()));

    // The exact document: pretty, newline-terminated, in this field order.
    let text = String::from_utf8(v.read("/src/a.rs", 0, u32::MAX).unwrap()).unwrap();
    assert!(text.ends_with("}\n"));
    assert!(text.starts_with("{\n  \"path\": \"/src/a.rs\",\n  \"hash\": \""));
    let keys: Vec<&str> = n.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 11);

    // A whole-file annotation has no anchor and is fresh.
    write(&v, "/README", r#"{"kind":"note","text":"greets"}"#).unwrap();
    let n = &notes(&v, "/README")[0];
    assert_eq!(
        (n["anchor"].clone(), n["status"].as_str()),
        (Value::Null, Some("fresh"))
    );
}

#[test]
fn json_lines_record_one_event_each() {
    let m = sample();
    let v = view(&m);
    let before = m.all_events().len();
    let data = format!(
        "{}\n{}\n\n{}\n",
        note("comment", "first", 1, 1),
        r#"{"kind":"Question","text":"second"}"#,
        note("warning", "third", 2, 4)
    );
    assert_eq!(write(&v, "/src/a.rs", &data).unwrap() as usize, data.len());
    let events = m.all_events();
    assert_eq!(events.len(), before + 3);
    assert!(events[before..].iter().all(|e| e.op == "annotate"));
    let ns = notes(&v, "/src/a.rs");
    assert_eq!(texts(&ns), ["first", "second", "third"]);
    assert_eq!(ns[1]["kind"], "question");
    assert_eq!(place(&ns[2]), (2, 4, 2, 4, "fresh"));
    assert_eq!(
        ns[2]["anchor"]["lines"],
        "    for i in 0..n {\n        go(i);\n    }"
    );
    let seqs: Vec<u64> = ns.iter().map(|n| n["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn bad_annotations_are_invalid_and_record_nothing() {
    let m = sample();
    let v = view(&m);
    let good = note("comment", "fine", 1, 1);
    let cases = [
        "{\"kind\":\"comment\",\"text\":\"x\"".to_string(), // malformed JSON
        "not json at all".into(),
        r#"{"kind":"comment","text":7}"#.into(), // wrong type
        r#"{"kind":"comment","text":"x","anchor":{"start_line":"2"}}"#.into(),
        r#"{"kind":"comment","text":"x","priority":"high"}"#.into(), // unknown field
        r#"{"kind":"comment","text":"x","anchor":{"start_line":1,"colour":1}}"#.into(),
        note("comment", "beyond the last line", 6, 6), // LOOP has 5 lines
        note("comment", "beyond the last line", 5, 9),
        note("comment", "start after end", 3, 2),
        note("comment", "line zero", 0, 1),
        r#"{"kind":"comment","text":""}"#.into(), // empty text
        r#"{"kind":"comment","text":"  \n "}"#.into(),
        r#"{"kind":"","text":"x"}"#.into(),
        r#"[{"kind":"comment","text":"x"}]"#.into(),
        String::new(),
        format!("{good}\n{good}\n{}", note("comment", "third is bad", 1, 99)),
    ];
    let before = m.all_events().len();
    for case in &cases {
        match write(&v, "/src/a.rs", case) {
            Err(FsError::Invalid(why)) => assert!(!why.is_empty()),
            other => panic!("{case:?} gave {other:?}"),
        }
    }
    assert_eq!(m.all_events().len(), before, "nothing was recorded");
    assert!(notes(&v, "/src/a.rs").is_empty());
    // An empty file has no lines to anchor to.
    m.write("/empty", b"");
    assert!(matches!(
        write(&v, "/empty", &note("comment", "x", 1, 1)),
        Err(FsError::Invalid(_))
    ));
    let whole = r#"{"kind":"comment","text":"empty?"}"#;
    assert_eq!(write(&v, "/empty", whole).unwrap() as usize, whole.len());
    // The last line is fine.
    write(&v, "/src/a.rs", &note("comment", "last", 5, 5)).unwrap();
    // A text within its limit whose JSON would exceed the store's 64 KiB body limit.
    let before = m.all_events().len();
    let escapes = json!({"kind": "note", "text": "\u{1}".repeat(16 * 1024)}).to_string();
    match write(&v, "/src/a.rs", &escapes) {
        Err(FsError::Invalid(why)) => assert!(why.contains("the limit is 65536"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.all_events().len(), before);
}

#[test]
fn anchors_are_looked_for_in_the_first_8_mib() {
    let m = sample();
    let line = format!("{}\n", "x".repeat(1023));
    let lines = (8 << 20) / line.len() + 2; // two lines past the first 8 MiB
    let mut big = line.repeat(lines);
    big.replace_range(0..4, "head");
    m.write("/big", big.as_bytes());
    let v = view(&m);
    write(&v, "/big", &note("comment", "first", 1, 1)).unwrap();
    write(&v, "/big", &note("comment", "last anchorable", 8192, 8192)).unwrap();
    match write(&v, "/big", &note("comment", "past it", 8193, 8193)) {
        Err(FsError::Invalid(why)) => assert!(why.contains("first 8388608 bytes"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Whole-file annotations are fine, and the document is served as usual.
    write(&v, "/big", r#"{"kind":"note","text":"big"}"#).unwrap();
    let ns = notes(&v, "/big");
    assert_eq!(texts(&ns), ["first", "last anchorable", "big"]);
    assert_eq!(place(&ns[0]), (1, 1, 1, 1, "fresh"));
    assert_eq!(place(&ns[1]), (8192, 8192, 8192, 8192, "fresh"));
    assert_eq!(doc(&v, "/big")["size"], big.len());
}

#[test]
fn paths_not_in_current_are_not_found_and_record_nothing() {
    let m = sample();
    let v = view(&m);
    let before = m.all_events().len();
    for path in ["/nope", "/src/nope.rs", "/nope/a.rs", "/link"] {
        assert_eq!(write(&v, path, MINIMAL), Err(FsError::NotFound), "{path}");
        assert_eq!(v.getattr(path), Err(FsError::NotFound), "{path}");
        assert_eq!(v.read(path, 0, 10), Err(FsError::NotFound), "{path}");
        assert_eq!(
            v.create(path, NodeKind::File),
            Err(FsError::NotFound),
            "{path}"
        );
    }
    assert_eq!(write(&v, "/src", MINIMAL), Err(FsError::IsADirectory));
    assert_eq!(write(&v, "/", MINIMAL), Err(FsError::IsADirectory));
    // A malformed annotation of a missing path: the path is what is wrong.
    assert_eq!(write(&v, "/nope", "{"), Err(FsError::NotFound));
    assert_eq!(m.all_events().len(), before);
}

#[test]
fn lines_inserted_above_move_the_anchor() {
    let m = sample();
    let v = view(&m);
    write(&v, "/src/a.rs", MINIMAL).unwrap();
    m.write(
        "/src/a.rs",
        format!("// one\n// two\n// three\n{LOOP}").as_bytes(),
    );
    let n = &notes(&v, "/src/a.rs")[0];
    assert_eq!(place(n), (5, 5, 2, 2, "moved"));
    assert_eq!(n["anchor"]["match"], "exact");
    // The hash is the file's now; the annotated hash stays.
    let d = doc(&v, "/src/a.rs");
    assert_ne!(d["hash"], n["annotated_hash"]);
    // Re-indented as well: still found, without whitespace.
    m.write(
        "/src/a.rs",
        b"// one\n// two\n// three\nfn main() {\n  for i in 0..n {\n    go(i);\n  }\n}\n",
    );
    let n = &notes(&v, "/src/a.rs")[0];
    assert_eq!(place(n), (5, 5, 2, 2, "moved"));
    assert_eq!(n["anchor"]["match"], "whitespace");
    // Back as it was: fresh again.
    m.write("/src/a.rs", LOOP.as_bytes());
    assert_eq!(place(&notes(&v, "/src/a.rs")[0]), (2, 2, 2, 2, "fresh"));
}

#[test]
fn an_edit_that_removes_the_anchored_text_makes_it_stale() {
    let m = sample();
    let v = view(&m);
    write(&v, "/src/a.rs", MINIMAL).unwrap();
    write(&v, "/src/a.rs", &note("note", "the call", 3, 3)).unwrap();
    m.write(
        "/src/a.rs",
        b"fn main() {\n    (0..n).for_each(go);\n        go(i);\n}\n",
    );
    let ns = notes(&v, "/src/a.rs");
    assert_eq!(place(&ns[0]), (2, 2, 2, 2, "stale"));
    assert_eq!(ns[0]["anchor"]["match"], "none");
    assert_eq!(ns[0]["anchor"]["lines"], "    for i in 0..n {");
    assert_eq!(place(&ns[1]), (3, 3, 3, 3, "fresh"));
    // Truncated to nothing: stale, with the original range.
    m.write("/src/a.rs", b"");
    let ns = notes(&v, "/src/a.rs");
    assert_eq!(place(&ns[0]), (2, 2, 2, 2, "stale"));
    assert_eq!(place(&ns[1]), (3, 3, 3, 3, "stale"));
}

#[test]
fn annotations_follow_a_renamed_file() {
    let m = sample();
    let v = view(&m);
    write(&v, "/src/a.rs", MINIMAL).unwrap();
    m.rename("/src/a.rs", "/src/main.rs");
    let ns = notes(&v, "/src/main.rs");
    assert_eq!(texts(&ns), ["check this loop"]);
    assert_eq!(ns[0]["annotated_path"], "/src/a.rs");
    assert_eq!(doc(&v, "/src/main.rs")["path"], "/src/main.rs");
    assert_eq!(v.getattr("/src/a.rs"), Err(FsError::NotFound));
    // A new file at the old name has none of them.
    create(&m, "/src/a.rs", LOOP.as_bytes());
    assert!(notes(&v, "/src/a.rs").is_empty());
    assert_eq!(notes(&v, "/src/main.rs").len(), 1);
}

#[test]
fn annotations_follow_a_renamed_directory() {
    let m = sample();
    m.mkdir("/src/deep");
    m.write("/src/deep/x", b"x\n");
    m.write("/srcx", b"a sibling whose name starts the same\n");
    let v = view(&m);
    write(&v, "/src/a.rs", MINIMAL).unwrap();
    write(&v, "/src/deep/x", &note("todo", "deep", 1, 1)).unwrap();
    write(&v, "/srcx", r#"{"kind":"note","text":"stays"}"#).unwrap();
    m.rename("/src", "/lib");
    assert_eq!(texts(&notes(&v, "/lib/a.rs")), ["check this loop"]);
    assert_eq!(texts(&notes(&v, "/lib/deep/x")), ["deep"]);
    assert_eq!(texts(&notes(&v, "/srcx")), ["stays"]);
    assert_eq!(v.getattr("/src/a.rs"), Err(FsError::NotFound));
    // Recreated old paths start empty; the moved ones keep theirs through more moves.
    m.mkdir("/src");
    create(&m, "/src/a.rs", LOOP.as_bytes());
    assert!(notes(&v, "/src/a.rs").is_empty());
    m.mkdir("/pkg");
    m.rename("/lib", "/pkg/lib");
    assert_eq!(texts(&notes(&v, "/pkg/lib/deep/x")), ["deep"]);
    assert_eq!(place(&notes(&v, "/pkg/lib/a.rs")[0]), (2, 2, 2, 2, "fresh"));
}

#[test]
fn unlink_drops_the_annotations() {
    let m = sample();
    let v = view(&m);
    write(&v, "/src/b.txt", &note("bug", "two?", 2, 2)).unwrap();
    m.unlink("/src/b.txt");
    assert_eq!(v.getattr("/src/b.txt"), Err(FsError::NotFound));
    assert_eq!(write(&v, "/src/b.txt", MINIMAL), Err(FsError::NotFound));
    // Recreated later than the window: a new file, without them.
    m.advance(RECREATE_WINDOW_NS + S);
    create(&m, "/src/b.txt", b"one\ntwo\nthree\n");
    assert!(notes(&v, "/src/b.txt").is_empty());
    // And with the directory.
    write(&v, "/src/b.txt", &note("bug", "again", 1, 1)).unwrap();
    m.unlink("/src/b.txt");
    m.unlink("/src/a.rs");
    m.push("rmdir", "/src", None, None);
    m.advance(RECREATE_WINDOW_NS + S);
    m.mkdir("/src");
    create(&m, "/src/b.txt", b"one\n");
    assert!(notes(&v, "/src/b.txt").is_empty());
}

#[test]
fn saves_that_replace_or_recreate_the_file_keep_its_annotations() {
    let m = sample();
    let v = view(&m);
    write(&v, "/src/a.rs", MINIMAL).unwrap();
    let edited = format!("// header\n{LOOP}");

    // sed -i and atomic saves: a new file renamed over the annotated one.
    create(&m, "/src/.a.rs.tmp", edited.as_bytes());
    m.rename("/src/.a.rs.tmp", "/src/a.rs");
    assert_eq!(place(&notes(&v, "/src/a.rs")[0]), (3, 3, 2, 2, "moved"));

    // git checkout and others: deleted, then created again.
    m.unlink("/src/a.rs");
    create(&m, "/src/a.rs", LOOP.as_bytes());
    assert_eq!(place(&notes(&v, "/src/a.rs")[0]), (2, 2, 2, 2, "fresh"));

    // vim: renamed to a backup, written anew, the backup deleted.
    m.rename("/src/a.rs", "/src/a.rs~");
    create(&m, "/src/a.rs", edited.as_bytes());
    assert!(notes(&v, "/src/a.rs").is_empty(), "not back yet");
    assert_eq!(notes(&v, "/src/a.rs~").len(), 1);
    m.unlink("/src/a.rs~");
    assert_eq!(place(&notes(&v, "/src/a.rs")[0]), (3, 3, 2, 2, "moved"));

    // Deleted and recreated too late: gone.
    m.unlink("/src/a.rs");
    m.advance(RECREATE_WINDOW_NS + S);
    m.push("create", "/src/a.rs", None, None);
    assert!(notes(&v, "/src/a.rs").is_empty());
}

#[test]
fn a_rename_over_an_annotated_file_keeps_both_sets() {
    let m = sample();
    let v = view(&m);
    m.write("/src/c.txt", b"one\ntwo\nthree\n");
    write(&v, "/src/b.txt", &note("comment", "of b", 2, 2)).unwrap();
    write(&v, "/src/c.txt", &note("comment", "of c", 3, 3)).unwrap();
    m.rename("/src/c.txt", "/src/b.txt");
    assert_eq!(texts(&notes(&v, "/src/b.txt")), ["of b", "of c"]);
    assert_eq!(v.getattr("/src/c.txt"), Err(FsError::NotFound));
}

/// The model store with one rename that is an exchange (`RENAME_EXCHANGE`): the model
/// holds it as op "exchange" (which it does not fold), this store shows it as "rename"
/// and answers for the tree after it with the two paths swapped.
struct Exchanging<'a> {
    model: &'a ModelStore,
    seq: u64,
    a: String,
    b: String,
}

impl Exchanging<'_> {
    fn swap(&self, path: &str, seq: u64) -> String {
        let swapped = |from: &str, to: &str| {
            let rest = path.strip_prefix(from)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{to}{rest}"))
        };
        if seq < self.seq {
            return path.into();
        }
        swapped(&self.a, &self.b)
            .or_else(|| swapped(&self.b, &self.a))
            .unwrap_or_else(|| path.into())
    }
}

impl Store for Exchanging<'_> {
    fn head(&self) -> u64 {
        self.model.head()
    }
    fn now_ns(&self) -> i64 {
        self.model.now_ns()
    }
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> EventsPage {
        let EventsPage {
            events: mut all,
            mut through,
        } = self.model.events(after, u32::MAX, &EventFilter::all());
        for e in &mut all {
            if e.op == "exchange" {
                e.op = "rename".into();
            }
        }
        all.retain(|e| filter.matches(e));
        if all.len() > limit as usize {
            all.truncate(limit as usize);
            through = all.last().map_or(after, |e| e.seq);
        }
        EventsPage {
            events: all,
            through,
        }
    }
    fn seq_at_time(&self, time_ns: i64) -> u64 {
        self.model.seq_at_time(time_ns)
    }
    fn stat_at(&self, path: &str, seq: u64) -> Result<Attrs, FsError> {
        self.model.stat_at(&self.swap(path, seq), seq)
    }
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<DirEntry>, FsError> {
        self.model.list_at(&self.swap(path, seq), seq)
    }
    fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        self.model.read_at(&self.swap(path, seq), seq, offset, len)
    }
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        self.model.readlink_at(&self.swap(path, seq), seq)
    }
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        self.model.hash_at(&self.swap(path, seq), seq)
    }
    fn append(&self, op: &str, path: &str, body: &str) -> Result<u64, FsError> {
        self.model.append(op, path, body)
    }
}

#[test]
fn an_exchange_swaps_annotations() {
    let m = sample();
    m.write("/src/c.txt", b"ccc\n");
    let v = view(&m);
    write(&v, "/src/b.txt", &note("comment", "of b", 2, 2)).unwrap();
    write(&v, "/src/c.txt", &note("comment", "of c", 1, 1)).unwrap();
    let seq = m.push("exchange", "/src/b.txt", Some("/src/c.txt"), None);
    let store = Exchanging {
        model: &m,
        seq,
        a: "/src/b.txt".into(),
        b: "/src/c.txt".into(),
    };
    assert_eq!((&m).read_all_at("/src/c.txt", seq, 99).unwrap(), b"ccc\n");
    assert_eq!(
        store.read_all_at("/src/c.txt", seq, 99).unwrap(),
        b"one\ntwo\nthree\n"
    );
    let v = Shadows::new(store, VIEW);
    let c = notes(&v, "/src/c.txt");
    assert_eq!(texts(&c), ["of b"]);
    assert_eq!(place(&c[0]), (2, 2, 2, 2, "fresh"));
    let b = notes(&v, "/src/b.txt");
    assert_eq!(texts(&b), ["of c"]);
    assert_eq!(place(&b[0]), (1, 1, 1, 1, "fresh"));

    // Exchanging two equal files moves nothing.
    let m = sample();
    m.write("/src/c.txt", b"one\ntwo\nthree\n");
    let v = view(&m);
    write(&v, "/src/b.txt", &note("comment", "of b", 2, 2)).unwrap();
    let seq = m.push("exchange", "/src/b.txt", Some("/src/c.txt"), None);
    let store = Exchanging {
        model: &m,
        seq,
        a: "/src/b.txt".into(),
        b: "/src/c.txt".into(),
    };
    let v = Shadows::new(store, VIEW);
    assert_eq!(texts(&notes(&v, "/src/b.txt")), ["of b"]);
    assert!(notes(&v, "/src/c.txt").is_empty());
}

#[test]
fn getattr_size_is_the_length_of_the_document() {
    let m = sample();
    let v = view(&m);
    write(&v, "/src/a.rs", MINIMAL).unwrap();
    write(
        &v,
        "/src/a.rs",
        r#"{"kind":"note","text":"ünïcödé \"quoted\"\n"}"#,
    )
    .unwrap();
    for path in ["/src/a.rs", "/src/b.txt", "/README"] {
        let attrs = v.getattr(path).unwrap();
        let bytes = v.read(path, 0, u32::MAX).unwrap();
        assert_eq!(attrs.size, bytes.len() as u64, "{path}");
        assert_eq!(
            (attrs.kind, attrs.perm, attrs.writable, attrs.caching),
            (NodeKind::File, 0o666, true, Caching::Volatile)
        );
        // Reads by offset are slices of the same document.
        let mut pieces = Vec::new();
        let mut off = 0;
        loop {
            let piece = v.read(path, off, 7).unwrap();
            if piece.is_empty() {
                break;
            }
            off += piece.len() as u64;
            pieces.extend(piece);
        }
        assert_eq!(pieces, bytes);
        // A fresh instance renders the same bytes.
        assert_eq!(view(&m).read(path, 0, u32::MAX).unwrap(), bytes);
    }
    // The mtime is the newest annotation's (newer than the file's).
    let newest = m.all_events().last().unwrap().time_ns;
    assert_eq!(v.getattr("/src/a.rs").unwrap().mtime_ns, newest);
    assert!(v.getattr("/README").unwrap().mtime_ns < newest);
    // The size moves with the annotations (and follows a new head at once).
    let before = v.getattr("/src/b.txt").unwrap().size;
    write(&v, "/src/b.txt", MINIMAL).unwrap();
    assert!(v.getattr("/src/b.txt").unwrap().size > before);
}

#[test]
fn the_tree_mirrors_current_without_symlinks() {
    let m = sample();
    let v = view(&m);
    assert_eq!(names(&v.readdir("/").unwrap()), ["README", "src"]);
    assert_eq!(names(&v.readdir("/src").unwrap()), ["a.rs", "b.txt"]);
    let root = v.getattr("/").unwrap();
    assert_eq!(
        (root.kind, root.perm, root.writable, root.caching),
        (NodeKind::Directory, 0o755, false, Caching::Volatile)
    );
    assert_eq!(v.getattr("/src/").unwrap().kind, NodeKind::Directory);
    assert_eq!(v.readdir("/src/a.rs"), Err(FsError::NotADirectory));
    assert_eq!(v.read("/src", 0, 1), Err(FsError::IsADirectory));
    assert_eq!(v.readdir("/nope"), Err(FsError::NotFound));
    assert!(matches!(v.readlink("/src/a.rs"), Err(FsError::Invalid(_))));
    assert_eq!(v.readlink("/link"), Err(FsError::NotFound));
    assert!(matches!(
        v.getattr("/src/../README"),
        Err(FsError::Invalid(_))
    ));
    // Opening: files for reading and writing, never a directory for writing.
    assert_eq!(v.open("/src/a.rs", true), Ok(OpenMode::Plain));
    assert_eq!(v.open("/src/a.rs", false), Ok(OpenMode::Plain));
    assert_eq!(v.open("/src", true), Err(FsError::IsADirectory));
    assert_eq!(v.open("/nope", true), Err(FsError::NotFound));
    // create: the existing file's attributes, nothing else.
    assert_eq!(
        v.create("/src/a.rs", NodeKind::File),
        v.getattr("/src/a.rs")
    );
    assert_eq!(v.create("/src", NodeKind::File), Err(FsError::IsADirectory));
    assert_eq!(
        v.create("/src/new", NodeKind::Directory),
        Err(FsError::PermissionDenied)
    );
}

#[test]
fn only_this_views_annotations_count() {
    let m = sample();
    (&m).append("annotate", "/README", "not json").unwrap();
    (&m).append(
        "annotate",
        "/README",
        r#"{"v":1,"kind":"note","text":"from the model","hash":"x","anchor":null}"#,
    )
    .unwrap();
    assert_eq!(texts(&notes(&view(&m), "/README")), ["from the model"]);
    assert!(notes(&Shadows::new(&m, "shadows"), "/README").is_empty());
}

/// A history touching every rule, read after each step by one long-lived instance.
fn busy_history(m: &ModelStore, v: &Shadows<&ModelStore>) -> Vec<String> {
    let paths = [
        "/src/a.rs",
        "/src/b.txt",
        "/README",
        "/lib/a.rs",
        "/lib/b.txt",
    ];
    let steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            write(v, "/src/a.rs", MINIMAL).unwrap();
        }),
        Box::new(|| {
            write(v, "/src/b.txt", &note("bug", "b2", 2, 2)).unwrap();
        }),
        Box::new(|| {
            m.write("/src/a.rs", format!("// x\n{LOOP}").as_bytes());
        }),
        Box::new(|| {
            write(v, "/README", r#"{"kind":"note","text":"r"}"#).unwrap();
        }),
        Box::new(|| {
            m.rename("/src", "/lib");
        }),
        Box::new(|| {
            write(v, "/lib/a.rs", &note("comment", "a1", 1, 1)).unwrap();
        }),
        Box::new(|| {
            create(m, "/lib/t", b"new\n");
            m.rename("/lib/t", "/lib/b.txt");
        }),
        Box::new(|| {
            m.unlink("/README");
        }),
        Box::new(|| create(m, "/README", b"back\n")),
        Box::new(|| {
            m.unlink("/lib/a.rs");
        }),
    ];
    for step in steps {
        step();
        for p in paths {
            let _ = v.read(p, 0, u32::MAX);
        }
    }
    paths.iter().map(|p| p.to_string()).collect()
}

#[test]
fn the_incremental_fold_equals_a_fresh_one() {
    let m = sample();
    let long_lived = view(&m);
    let paths = busy_history(&m, &long_lived);
    let head = (&m).head();
    let fresh = view(&m);
    let mut paged = view(&m);
    paged.page = 1;
    for p in &paths {
        let answer = long_lived.read(p, 0, u32::MAX);
        assert_eq!(fresh.read(p, 0, u32::MAX), answer, "{p}");
        assert_eq!(paged.read(p, 0, u32::MAX), answer, "{p}");
    }
    assert_eq!(long_lived.fold().upto(), head);
    assert_eq!(fresh.fold(), long_lived.fold());
    assert_eq!(paged.fold(), long_lived.fold());
    // What the history left.
    assert_eq!(texts(&notes(&fresh, "/lib/b.txt")), ["b2"]);
    assert_eq!(texts(&notes(&fresh, "/README")), ["r"]);
    assert_eq!(fresh.read("/lib/a.rs", 0, 1), Err(FsError::NotFound));
    // A fold asked about a shorter log (another store) starts over.
    let mut fold = long_lived.fold();
    let other = sample();
    let other_head = (&other).head();
    fold.catch_up(&&other, VIEW, other_head, 4096);
    let mut afresh = Fold::default();
    afresh.catch_up(&&other, VIEW, other_head, 4096);
    assert_eq!(fold, afresh);
    assert_eq!(fold.upto(), other_head);
    assert!(fold.notes("/lib/b.txt").is_empty());
}

#[test]
fn info_names_the_view() {
    let info = crate::ShadowsView::info();
    assert_eq!(info.name, "shadows");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(!info.description.contains('\n'));
}

/// The store answers with the caller's eyes: the shadow of a file the caller may not
/// read is `permission-denied` (never not-found), annotations come only from the events
/// it may see, and what one caller was shown is never served to another from a cache.
#[test]
fn what_the_caller_may_not_read_is_permission_denied() {
    let m = sample();
    m.mkdir("/private");
    create(&m, "/private/y.txt", b"why\n");
    let v = view(&m);
    let first = Caller {
        agent: None,
        uid: 1000,
        gid: 1000,
        pid: 1,
        sight: 1,
    };
    let second = Caller {
        uid: 2000,
        gid: 2000,
        sight: 2,
        ..first.clone()
    };
    v.serving(&first);
    write(&v, "/private/y.txt", &note("comment", "from private", 1, 1)).unwrap();
    write(&v, "/src/b.txt", &note("comment", "of b", 1, 1)).unwrap();
    m.rename("/private/y.txt", "/src/y.txt");
    assert_eq!(texts(&notes(&v, "/src/y.txt")), ["from private"]);
    assert_eq!(texts(&notes(&v, "/src/b.txt")), ["of b"]);

    // Another caller, who may not list /private nor read /src/b.txt, at the same head.
    m.deny_dir("/private");
    m.deny_read("/src/b.txt");
    v.serving(&second);
    let denied = Some(FsError::PermissionDenied);
    assert_eq!(v.getattr("/src/b.txt").err(), denied);
    assert_eq!(v.read("/src/b.txt", 0, 99).err(), denied);
    assert_eq!(
        write(&v, "/src/b.txt", r#"{"kind":"comment","text":"x"}"#).err(),
        denied
    );
    assert_eq!(v.getattr("/private/y.txt").err(), denied);
    assert_eq!(v.readdir("/private").err(), denied);
    // Names are the caller's to see; so is the file moved out of /private, without the
    // annotations only the hidden rename carried there.
    assert!(names(&v.readdir("/src").unwrap()).contains(&"b.txt"));
    assert_eq!(notes(&v, "/src/y.txt"), Vec::<Value>::new());
    assert!(!String::from_utf8(v.read("/src/y.txt", 0, 9999).unwrap())
        .unwrap()
        .contains("from private"));
    assert_eq!(notes(&v, "/src/a.rs"), Vec::<Value>::new());
}
