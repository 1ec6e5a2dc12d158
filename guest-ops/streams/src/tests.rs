//! The streams view against the SDK's model store, with a reader that does what the
//! host does: follow a link, open, then `next` from each chunk's cursor.

use std::cell::Cell;

use lighthouse_view_sdk::model::ModelStore;
use lighthouse_view_sdk::serde_json::{self, Value};
use lighthouse_view_sdk::{
    Attrs, Caching, DirEntry, Event, EventFilter, EventsPage, FsError, NodeKind, OpenMode, Store,
};

use crate::catalog::LIVE_OPS;
use crate::streams::{readme, Streams, MAX_CHUNK};
use lighthouse_view_sdk::store_api::AUDIT_KEPT;

const S: i64 = 1_000_000_000;
/// 2026-11-23T21:40:00Z
const T0: i64 = 1_795_470_000 * S;

/// One reader of one stream, as the host keeps it: a path and a cursor.
struct Reader {
    path: String,
    cursor: u64,
}

impl Reader {
    /// Opens `path`, or what it links to (as the kernel follows a symlink).
    fn open<St: Store>(view: &Streams<St>, path: &str) -> Reader {
        let path = &resolve(view, path);
        let cursor = match view.open(path, false).unwrap() {
            OpenMode::Stream(cursor) => cursor,
            OpenMode::Plain => panic!("{path} opened plain"),
        };
        Reader {
            path: path.into(),
            cursor,
        }
    }

    /// One `next`: its lines (parsed), after checking they are whole.
    fn next<St: Store>(&mut self, view: &Streams<St>, max: u32) -> Vec<Value> {
        let chunk = view.next(&self.path, self.cursor, max).unwrap();
        assert!(!chunk.end);
        assert!(chunk.cursor >= self.cursor, "cursor went back");
        self.cursor = chunk.cursor;
        let text = String::from_utf8(chunk.data).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "a partial line");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    /// Everything there is now (until a chunk comes back empty, where the host parks).
    fn drain<St: Store>(&mut self, view: &Streams<St>, max: u32) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let lines = self.next(view, max);
            if lines.is_empty() {
                return all;
            }
            all.extend(lines);
        }
    }
}

/// `path`, or the stream it links to now.
fn resolve<St: Store>(view: &Streams<St>, path: &str) -> String {
    match view.getattr(path).unwrap().kind {
        NodeKind::Symlink => format!("/{}", view.readlink(path).unwrap()),
        _ => path.to_owned(),
    }
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect()
}

fn ops(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["op"].as_str().unwrap()).collect()
}

/// 1 mkdir /src, 2 write /src/a.rs, 3 annotate /src/a.rs, 4 rename /src/a.rs -> /src/b.rs,
/// 5 context /pkg, 6 setattr /src/b.rs, 7 symlink /l -> src/b.rs, 8 unlink /l.
fn sample() -> ModelStore {
    let m = ModelStore::new(T0);
    m.mkdir("/src");
    m.write("/src/a.rs", b"fn a() {}\n");
    (&m).append(
        "annotate",
        "/src/a.rs",
        r#"{"kind":"note","text":"look","anchor":{"start_line":1,"end_line":1,"lines":1,"fingerprint":"f"},"hash":"h"}"#,
    )
    .unwrap();
    m.rename("/src/a.rs", "/src/b.rs");
    (&m).append("context", "/pkg", r#"{"purpose":"p","paths":["src/**"]}"#)
        .unwrap();
    m.push("setattr", "/src/b.rs", None, None);
    m.push("symlink", "/l", Some("src/b.rs"), None);
    m.unlink("/l");
    m
}

fn names(entries: &[DirEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn root_lists_the_readme_and_the_five_streams() {
    let m = sample();
    let view = Streams { store: &m };
    let root = view.readdir("/").unwrap();
    assert_eq!(
        names(&root),
        [
            "README",
            "file_changes",
            "annotations",
            "agent_activity",
            "all",
            "audit"
        ]
    );
    assert_eq!(root[0].kind, NodeKind::File);
    assert!(root[1..].iter().all(|e| e.kind == NodeKind::Stream));
    let dir = view.getattr("/").unwrap();
    assert_eq!(
        (dir.kind, dir.perm, dir.caching, dir.mtime_ns),
        (NodeKind::Directory, 0o555, Caching::Volatile, T0 + 8 * S)
    );
    assert_eq!(view.readdir("/all"), Err(FsError::NotADirectory));
    assert_eq!(view.read("/", 0, 10), Err(FsError::IsADirectory));
}

#[test]
fn a_stream_is_a_read_only_stream_and_the_moving_names_are_links() {
    let m = sample();
    let view = Streams { store: &m };
    for name in [
        "file_changes",
        "annotations",
        "agent_activity",
        "all",
        "audit",
        "all@1",
        "file_changes@120",
        "audit@3",
    ] {
        let a = view.getattr(&format!("/{name}")).unwrap();
        assert_eq!(
            a,
            Attrs {
                kind: NodeKind::Stream,
                size: 0,
                mtime_ns: T0 + 8 * S,
                perm: 0o444,
                writable: false,
                caching: Caching::Volatile,
                owner: None,
            },
            "{name}"
        );
        assert!(matches!(
            view.readlink(&format!("/{name}")),
            Err(FsError::Invalid(_))
        ));
    }
    // Resolved when read: the head is 8, events are a second apart from T0 + 1s, and the
    // model's clock is at the last event.
    for (name, target) in [
        ("all@now", "all@9"),
        ("file_changes@now", "file_changes@9"),
        ("annotations@-2s", "annotations@6"),
        ("all@2026-11-23T21:40:03Z", "all@3"),
        ("all@2020-01-01T00:00:00Z", "all@1"),
        ("audit@now", "audit@1"),
    ] {
        let path = format!("/{name}");
        let a = view.getattr(&path).unwrap();
        assert_eq!(
            (a.kind, a.size, a.caching),
            (NodeKind::Symlink, target.len() as u64, Caching::Volatile),
            "{name}"
        );
        assert_eq!(view.readlink(&path).unwrap(), target, "{name}");
        assert!(matches!(view.open(&path, false), Err(FsError::Invalid(_))));
    }
    m.write("/later", b"x");
    assert_eq!(
        view.readlink("/all@now").unwrap(),
        "all@10",
        "moves with the head"
    );
    assert!(matches!(
        view.read("/all", 0, 100),
        Err(FsError::Invalid(_))
    ));
    assert_eq!(view.open("/all", false), Ok(OpenMode::Stream(0)));
    assert_eq!(view.open("/all@3", false), Ok(OpenMode::Stream(2)));
    assert_eq!(view.open("/all", true), Err(FsError::ReadOnly));
    assert_eq!(view.open("/all@3", true), Err(FsError::ReadOnly));
}

#[test]
fn the_readme_is_an_immutable_plain_file() {
    let m = sample();
    let view = Streams { store: &m };
    let a = view.getattr("/README").unwrap();
    assert_eq!((a.kind, a.caching), (NodeKind::File, Caching::Immutable));
    let text = view.read("/README", 0, u32::MAX).unwrap();
    assert_eq!(a.size as usize, text.len());
    assert_eq!(text, readme().as_bytes());
    let text = String::from_utf8(text).unwrap();
    for word in [
        "file_changes",
        "annotations",
        "agent_activity",
        "NAME@120",
        "@-10m",
    ] {
        assert!(text.contains(word), "{word}");
    }
    assert_eq!(view.open("/README", false), Ok(OpenMode::Plain));
    assert_eq!(view.open("/README", true), Err(FsError::ReadOnly));
    assert!(matches!(
        view.next("/README", 0, 100),
        Err(FsError::Invalid(_))
    ));
}

#[test]
fn unknown_names_are_not_found() {
    let m = sample();
    let view = Streams { store: &m };
    for path in [
        "/nope",
        "/All",
        "/all@0",
        "/all@",
        "/all@x",
        "/all@-3",
        "/all@1@2",
        "/nope@3",
        "/README@1",
        "/all/x",
        "/README/x",
    ] {
        assert_eq!(view.getattr(path), Err(FsError::NotFound), "{path}");
        assert_eq!(view.open(path, false), Err(FsError::NotFound), "{path}");
        assert_eq!(view.next(path, 0, 100), Err(FsError::NotFound), "{path}");
        assert_eq!(view.read(path, 0, 100), Err(FsError::NotFound), "{path}");
    }
    assert!(matches!(
        view.getattr("/all/../x"),
        Err(FsError::Invalid(_))
    ));
}

#[test]
fn each_stream_shows_its_events() {
    let m = sample();
    let view = Streams { store: &m };
    let from_start = |name: &str| Reader::open(&view, &format!("/{name}@1")).drain(&view, 1 << 20);

    let changes = from_start("file_changes");
    assert_eq!(
        ops(&changes),
        ["mkdir", "write", "rename", "setattr", "symlink", "unlink"]
    );
    assert!(ops(&changes).iter().all(|op| LIVE_OPS.contains(op)));
    assert_eq!(seqs(&changes), [1, 2, 4, 6, 7, 8]);

    let notes = from_start("annotations");
    assert_eq!(seqs(&notes), [3]);
    assert_eq!(notes[0]["path"], "/src/a.rs");
    assert_eq!(notes[0]["body"]["text"], "look");

    let all = from_start("all");
    assert_eq!(seqs(&all), (1..=8).collect::<Vec<_>>());
    assert_eq!(all[4]["op"], "context");

    let activity = from_start("agent_activity");
    assert_eq!(seqs(&activity), seqs(&all));
    assert_eq!(ops(&activity), ops(&all));
}

#[test]
fn full_lines_parse_back_with_every_field() {
    let m = sample();
    let view = Streams { store: &m };
    let all = Reader::open(&view, "/all@1").drain(&view, 1 << 20);
    let events = m.all_events();
    assert_eq!(all.len(), events.len());
    for (line, event) in all.iter().zip(&events) {
        let obj = line.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = [
            "seq", "time", "time_ns", "agent", "uid", "gid", "pid", "op", "path", "path2", "size",
            "hash", "view", "body",
        ];
        want.sort();
        assert_eq!(keys, want, "serde_json sorts keys");
        assert_eq!(line["seq"], event.seq);
        assert_eq!(line["time_ns"], event.time_ns);
        assert_eq!(
            lighthouse_view_sdk::time::parse_rfc3339(line["time"].as_str().unwrap()),
            Some(event.time_ns)
        );
        assert_eq!(line["agent"], "model");
        assert_eq!(line["op"], event.op.as_str());
        assert_eq!(line["path"], event.path.as_str());
        assert_eq!(line["path2"].as_str(), event.path2.as_deref());
        assert_eq!(line["size"].as_u64(), event.size);
        assert_eq!(line["hash"].as_str(), event.hash.as_deref());
        assert_eq!(line["view"].as_str(), event.view.as_deref());
        match &event.body {
            None => assert!(line["body"].is_null()),
            Some(body) => {
                assert!(line["body"].is_object(), "body is JSON, not a string");
                assert_eq!(line["body"], serde_json::from_str::<Value>(body).unwrap());
            }
        }
    }
    assert_eq!(all[0]["time"], "2026-11-23T21:40:01.000000000Z");
    assert_eq!(
        all[1]["hash"].as_str().unwrap(),
        lighthouse_view_sdk::model::hash_hex(b"fn a() {}\n")
    );
    assert_eq!(all[2]["body"]["anchor"]["start_line"], 1);
}

#[test]
fn compact_lines_say_who_did_what_where() {
    let m = sample();
    let view = Streams { store: &m };
    let lines = Reader::open(&view, "/agent_activity@4").drain(&view, 1 << 20);
    assert_eq!(
        lines[0],
        serde_json::json!({"seq":4,"time":"2026-11-23T21:40:04.000000000Z","agent":"model",
            "uid":0,"pid":1,"op":"rename","path":"/src/a.rs","path2":"/src/b.rs"})
    );
    assert_eq!(
        lines[1].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["agent", "op", "path", "pid", "seq", "time", "uid"]
    );
}

#[test]
fn a_plain_name_is_the_whole_log_and_now_is_what_comes() {
    let m = sample();
    let view = Streams { store: &m };
    for name in ["file_changes", "annotations", "agent_activity", "all"] {
        let mut whole = Reader::open(&view, &format!("/{name}"));
        let mut from_one = Reader::open(&view, &format!("/{name}@1"));
        assert_eq!(whole.cursor, 0, "{name}: from the first event");
        assert_eq!(
            whole.drain(&view, 4096),
            from_one.drain(&view, 4096),
            "{name}"
        );
        let mut now = Reader::open(&view, &format!("/{name}@now"));
        assert_eq!(now.cursor, 8, "{name}: the head when the link was read");
        assert!(now.next(&view, 4096).is_empty());
        assert_eq!(now.cursor, 8);
    }
    let mut changes = Reader::open(&view, "/file_changes@now");
    let mut notes = Reader::open(&view, "/annotations@now");
    m.write("/src/c.rs", b"c");
    (&m).append("annotate", "/src/c.rs", r#"{"text":"new"}"#)
        .unwrap();
    assert_eq!(seqs(&changes.drain(&view, 4096)), [9]);
    assert_eq!(seqs(&notes.drain(&view, 4096)), [10]);
    // An empty chunk's cursor is the head: what the filter skipped is not scanned again.
    assert_eq!((changes.cursor, notes.cursor), (10, 10));
}

/// What the host relies on: from any cursor `next` returned, the same lines come again,
/// however the log grew since and however the chunks fell the first time; and each
/// chunk's time is that of its newest line.
#[test]
fn the_same_cursor_renders_the_same_lines_again() {
    let m = sample();
    let view = Streams { store: &m };
    for name in ["/file_changes", "/annotations", "/agent_activity", "/all"] {
        // First rendering: while events land, as the host catches up.
        let mut marks = vec![(0usize, 0u64)];
        let mut bytes = Vec::new();
        let mut cursor = 0;
        for round in 0..40u64 {
            m.write(
                &format!("/r{}", round % 3),
                &vec![b'x'; round as usize * 100],
            );
            if round % 5 == 0 {
                (&m).append("annotate", "/r0", r#"{"text":"t"}"#).unwrap();
            }
            loop {
                let chunk = view.next(name, cursor, 256 * 1024).unwrap();
                assert!(chunk.cursor >= cursor);
                cursor = chunk.cursor;
                if chunk.data.is_empty() {
                    break;
                }
                let last: Value = serde_json::from_slice(
                    chunk.data[..chunk.data.len() - 1]
                        .rsplit(|&b| b == b'\n')
                        .next()
                        .unwrap(),
                )
                .unwrap();
                let event = &m.all_events()[last["seq"].as_u64().unwrap() as usize - 1];
                assert_eq!(
                    chunk.time_ns, event.time_ns,
                    "{name}: the newest line's time"
                );
                bytes.extend(chunk.data);
                marks.push((bytes.len(), cursor));
            }
        }
        // Again from every mark: the bytes after it are the same.
        for &(offset, cursor) in &marks {
            let mut again = Vec::new();
            let mut at = cursor;
            loop {
                let chunk = view.next(name, at, 256 * 1024).unwrap();
                if chunk.data.is_empty() {
                    break;
                }
                at = chunk.cursor;
                again.extend(chunk.data);
            }
            assert_eq!(again, bytes[offset..], "{name} from cursor {cursor}");
        }
    }
}

#[test]
fn from_names_start_where_they_say() {
    let m = sample();
    let view = Streams { store: &m };
    let first = |path: &str| {
        let mut reader = Reader::open(&view, path);
        seqs(&reader.drain(&view, 4096)).first().copied()
    };
    assert_eq!(first("/all@1"), Some(1));
    assert_eq!(first("/all@5"), Some(5));
    assert_eq!(first("/all@8"), Some(8));
    assert_eq!(first("/file_changes@3"), Some(4)); // 3 is an annotation
    assert_eq!(first("/all@9"), None);
    // Events are a second apart from T0 + 1s; the model's clock is at the last event.
    assert_eq!(first("/all@2026-11-23T21:40:03Z"), Some(3));
    assert_eq!(first("/all@2026-11-23T21:40:03.5Z"), Some(4));
    assert_eq!(first("/all@2026-11-23T22:40:03+01:00"), Some(3));
    assert_eq!(first("/all@2020-01-01T00:00:00Z"), Some(1));
    assert_eq!(first("/all@-2s"), Some(6)); // now = T0 + 8s: events at or after T0 + 6s
    assert_eq!(first("/all@-1h"), Some(1));
    assert_eq!(first("/all@-0s"), Some(8));

    assert_eq!(first("/all@now"), None);
    // A start beyond the head waits for that event, and starts with it.
    let mut later = Reader::open(&view, "/all@10");
    assert_eq!(later.cursor, 9);
    assert!(later.next(&view, 4096).is_empty());
    assert_eq!(
        later.cursor, 9,
        "an empty chunk never moves the cursor back"
    );
    m.write("/x", b"9");
    assert!(later.next(&view, 4096).is_empty());
    m.write("/x", b"10");
    assert_eq!(seqs(&later.drain(&view, 4096)), [10]);
}

/// Many readers, small chunks, events appended between calls: each reader gets each of
/// its events once, in order.
#[test]
fn paging_while_events_land_loses_nothing_and_doubles_nothing() {
    let m = ModelStore::new(T0);
    let view = Streams { store: &m };
    let mut readers: Vec<(Reader, Vec<u64>)> = [
        "/file_changes",
        "/annotations",
        "/agent_activity",
        "/all",
        "/all@1",
    ]
    .iter()
    .map(|p| (Reader::open(&view, p), Vec::new()))
    .collect();
    let big = "x".repeat(3000);
    let mut state = 12345u64;
    for round in 0..400u64 {
        // A few events of every kind, then each reader takes one chunk (or none).
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for i in 0..(state >> 60) {
            match (round + i) % 4 {
                0 => drop(m.write(&format!("/f{}", round % 7), big.as_bytes())),
                1 => drop(
                    (&m).append("annotate", "/f1", &format!(r#"{{"text":"{big}"}}"#))
                        .unwrap(),
                ),
                2 => drop(m.rename(&format!("/f{}", round % 7), "/g")),
                _ => drop((&m).append("context", "/p", "{}").unwrap()),
            }
        }
        for (k, (reader, got)) in readers.iter_mut().enumerate() {
            if (state >> (k * 3)) & 1 == 0 {
                let max = [1u32, 4096, 65536][(state as usize >> (20 + k)) % 3];
                got.extend(seqs(&reader.next(&view, max)));
            }
        }
    }
    for (reader, got) in readers.iter_mut() {
        got.extend(seqs(&reader.drain(&view, 8192)));
    }
    let events = m.all_events();
    assert!(events.len() > 500, "{} events", events.len());
    let want = |f: &dyn Fn(&Event) -> bool| -> Vec<u64> {
        events.iter().filter(|e| f(e)).map(|e| e.seq).collect()
    };
    assert_eq!(readers[0].1, want(&|e| LIVE_OPS.contains(&e.op.as_str())));
    assert_eq!(readers[1].1, want(&|e| e.op == "annotate"));
    assert_eq!(readers[2].1, want(&|_| true));
    assert_eq!(readers[3].1, want(&|_| true));
    assert_eq!(readers[4].1, want(&|_| true));
}

#[test]
fn a_chunk_is_whole_lines_and_bounded() {
    let m = ModelStore::new(T0);
    let body = format!(r#"{{"text":"{}"}}"#, "y".repeat(10_000));
    for _ in 0..100 {
        (&m).append("annotate", "/f", &body).unwrap();
    }
    let view = Streams { store: &m };
    let chunk = view.next("/annotations", 0, u32::MAX).unwrap();
    assert!(chunk.data.len() <= MAX_CHUNK + 20_000);
    assert!(chunk.data.len() >= MAX_CHUNK);
    let lines = chunk.data.split(|&b| b == b'\n').count() - 1;
    assert_eq!(
        chunk.cursor, lines as u64,
        "the cursor is the last line's seq"
    );
    // A reader asking for one byte still gets one whole line, and only one.
    let chunk = view.next("/annotations", 5, 1).unwrap();
    assert_eq!(chunk.cursor, 6);
    assert_eq!(chunk.data.iter().filter(|&&b| b == b'\n').count(), 1);
}

/// A store in the way of a careless view: it may not filter, may hand over only a few
/// events a call, and may have an event land (a write, which `file_changes` shows) just
/// after it answered, before the view asks anything else.
struct Awkward<'a> {
    model: &'a ModelStore,
    filters: bool,
    page: u32,
    landings: Cell<u32>,
}

impl Store for Awkward<'_> {
    fn head(&self) -> u64 {
        (&self.model).head()
    }
    fn now_ns(&self) -> i64 {
        (&self.model).now_ns()
    }
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> EventsPage {
        let all = EventFilter::all();
        let filter = if self.filters { filter } else { &all };
        let answer = (&self.model).events(after, limit.min(self.page), filter);
        if self.landings.get() > 0 {
            self.landings.set(self.landings.get() - 1);
            self.model.write("/landed", b"late");
        }
        answer
    }
    fn seq_at_time(&self, time_ns: i64) -> u64 {
        (&self.model).seq_at_time(time_ns)
    }
    fn stat_at(&self, path: &str, seq: u64) -> Result<Attrs, FsError> {
        (&self.model).stat_at(path, seq)
    }
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<DirEntry>, FsError> {
        (&self.model).list_at(path, seq)
    }
    fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        (&self.model).read_at(path, seq, offset, len)
    }
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        (&self.model).readlink_at(path, seq)
    }
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        (&self.model).hash_at(path, seq)
    }
    fn append(&self, op: &str, path: &str, body: &str) -> Result<u64, FsError> {
        (&self.model).append(op, path, body)
    }
}

#[test]
fn a_store_that_does_not_filter_still_gets_each_event_once() {
    let m = sample();
    for i in 0..20 {
        m.write(&format!("/w{i}"), b"w");
    }
    (&m).append("annotate", "/w3", r#"{"text":"late"}"#)
        .unwrap();
    let view = Streams {
        store: Awkward {
            model: &m,
            filters: false,
            page: 3,
            landings: Cell::new(0),
        },
    };
    let notes = Reader::open(&view, "/annotations@1").drain(&view, 4096);
    assert_eq!(seqs(&notes), [3, 29]);
    let changes = Reader::open(&view, "/file_changes@1").drain(&view, 4096);
    assert_eq!(changes.len(), 6 + 20);
}

#[test]
fn an_event_landing_while_next_runs_is_not_passed_over() {
    let m = sample();
    let view = Streams {
        store: Awkward {
            model: &m,
            filters: true,
            page: 4096,
            landings: Cell::new(0),
        },
    };
    let mut reader = Reader::open(&view, "/file_changes@now");
    assert_eq!(reader.cursor, 8);
    // Nothing new; a write lands right after the store answered.
    view.store.landings.set(1);
    assert!(reader.next(&view, 4096).is_empty());
    assert_eq!(reader.cursor, 8, "the head before the question, not after");
    assert_eq!(seqs(&reader.drain(&view, 4096)), [9]);
}

#[test]
fn audit_is_the_policy_trail_with_its_own_numbers() {
    let model = ModelStore::new(T0);
    model.write("/a", b"1");
    model.push_audit(
        "reviewer",
        "create",
        "/current/x",
        "denied: no write permission here",
    );
    let view = Streams { store: &model };
    // From the start of the trail, and from now.
    let mut all = Reader::open(&view, "/audit");
    let mut now = Reader::open(&view, "/audit@now");
    let lines = all.drain(&view, 4096);
    assert_eq!(lines.len(), 1, "events of the log are not audit records");
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["agent"], "reviewer");
    assert_eq!(lines[0]["op"], "create");
    assert_eq!(lines[0]["path"], "/current/x");
    assert_eq!(lines[0]["outcome"], "denied: no write permission here");
    assert_eq!(lines[0]["time"], "2026-11-23T21:40:01.000000000Z");
    assert!(
        now.drain(&view, 4096).is_empty(),
        "a reader from now sees only what comes"
    );
    // What comes is seen once, in order, by both; an event moves neither.
    model.write("/b", b"2");
    assert!(now.drain(&view, 4096).is_empty());
    model.push_audit(
        "builder",
        "write",
        "/.auth",
        "bound: session 7 is builder for 1h",
    );
    model.push_audit(
        "throttled",
        "open",
        "/current/doc",
        "limited: over the agent ops per second limit",
    );
    for reader in [&mut all, &mut now] {
        let lines = reader.drain(&view, 4096);
        let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(lines[1]["agent"], "throttled");
    }
    // By time: the records at or after it.
    let mut since = Reader::open(&view, "/audit@2026-11-23T21:40:02Z");
    let seqs: Vec<u64> = since
        .drain(&view, 4096)
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert!(view.readdir("/").unwrap().iter().any(|e| e.name == "audit"));
    assert!(readme().contains("audit is not the event log"));
}

/// The host keeps the last 10,000 audit records: the part of the audit log before them
/// cannot be rendered again, and asking says so, naming it, rather than showing other
/// lines at those offsets.
#[test]
fn dropped_audit_records_are_an_error_naming_them() {
    let model = ModelStore::new(T0);
    for i in 0..5 {
        model.push_audit("a", "open", &format!("/current/{i}"), "denied: no");
    }
    let view = Streams { store: &model };
    let first = view.next("/audit", 0, 4096).unwrap();
    assert_eq!(first.cursor, 5);
    // 3 more records, and records 1 to 3 are forgotten.
    let kept = AUDIT_KEPT as usize;
    for i in 5..kept + 3 {
        model.push_audit("a", "open", &format!("/current/{i}"), "denied: no");
    }
    for (path, cursor) in [("/audit", 0), ("/audit@2", 1), ("/audit", 2)] {
        match view.next(path, cursor, 4096) {
            Err(FsError::Internal(why)) => {
                assert!(why.starts_with(&format!("audit@{}: ", cursor + 1)), "{why}");
                assert!(
                    why.contains("no longer kept") && why.contains("audit@4"),
                    "{why}"
                );
            }
            other => panic!("{path} from {cursor}: {other:?}"),
        }
    }
    // From the kept records on, and after them, it renders as before.
    let again = view.next("/audit", 3, 4096).unwrap();
    let text = String::from_utf8(first.data).unwrap();
    let fourth = text.split_inclusive('\n').nth(3).unwrap();
    assert!(again
        .data
        .starts_with(&text.as_bytes()[text.find(fourth).unwrap()..]));
    assert_eq!(
        view.readlink("/audit@now").unwrap(),
        format!("audit@{}", kept + 4)
    );
}

/// The store hides what the caller may not see; a reader is never held up by it: a
/// chunk of nothing still moves the cursor past the hidden events, and what comes
/// after them is rendered.
#[test]
fn hidden_events_are_left_out_and_never_asked_for_again() {
    let m = ModelStore::new(T0);
    m.mkdir("/private");
    m.write("/pub", b"p");
    for i in 0..300 {
        m.write(&format!("/private/{i}"), b"x");
    }
    m.deny_dir("/private");
    m.scan_at_most(1000);
    let view = Streams { store: &m };
    let mut reader = Reader::open(&view, "/all");
    assert_eq!(seqs(&reader.drain(&view, 4096)), [1, 2]);
    assert_eq!(reader.cursor, 302, "past the hidden events");
    // The same cursor renders the same (nothing), and stays put.
    let chunk = view.next("/all", 2, 4096).unwrap();
    assert!(chunk.data.is_empty());
    assert_eq!(chunk.cursor, 302);
    // A page of hidden events only: no data, and the cursor moves on anyway.
    let chunk = view.next("/file_changes", 2, 1).unwrap();
    assert!(chunk.data.is_empty());
    assert!(chunk.cursor > 2);
    let late = m.write("/pub", b"q");
    m.write("/private/late", b"y");
    assert_eq!(seqs(&reader.next(&view, 4096)), [late]);
    assert_eq!(reader.cursor, late + 1);

    // The audit trail likewise.
    m.push_audit("a", "open", "/current/private/0", "denied: no");
    m.push_audit("a", "open", "/current/pub", "denied: no");
    m.push_audit("a", "open", "/current/private/1", "denied: no");
    let mut audit = Reader::open(&view, "/audit");
    assert_eq!(seqs(&audit.drain(&view, 4096)), [2]);
    assert_eq!(audit.cursor, 3);
}
