//! The view host against the components of guest-ops/ (embedded by build.rs) and a
//! [`MemoryStore`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::contract::{
    Caching, EventFilter, EventsPage, NodeKind, ViewAttrs, ViewDirEntry, ViewError,
};
use crate::core::{Caller, Viewer};

const S: i64 = 1_000_000_000;
/// 2026-11-23T21:40:00Z
const T0: i64 = 1_795_470_000 * S;

/// The component with this file stem; `None` (the test is skipped) only when build.rs
/// found no guest-ops workspace at all.
fn component(stem: &str) -> Option<&'static [u8]> {
    if builtin::BUILTIN.is_empty() && builtin::TEST_COMPONENTS.is_empty() {
        eprintln!("skipped: guest-ops/ has no workspace, no components were built");
        return None;
    }
    Some(builtin::component(stem).unwrap_or_else(|| panic!("guest-ops built no {stem}.wasm")))
}

fn test_limits() -> ViewLimits {
    ViewLimits {
        max_instances: 16,
        ..ViewLimits::default()
    }
}

fn host_with(store: Arc<MemoryStore>) -> ViewHost {
    ViewHost::new(test_limits(), store).expect("view host")
}

fn host() -> ViewHost {
    host_with(Arc::new(MemoryStore::new(T0)))
}

fn caller() -> Caller {
    Caller {
        agent_name: Some("tester"),
        uid: 1000,
        gid: 1000,
        pid: 42,
        ..Caller::HOST
    }
}

#[test]
fn hello_serves_its_greeting() {
    let Some(bytes) = component("hello") else {
        return;
    };
    let host = host();
    let info = host.load(bytes, "builtin:hello").unwrap();
    assert_eq!(info.name, "hello");
    let c = caller();

    let root = host.getattr("hello", &c, "/").unwrap();
    assert_eq!(root.kind, NodeKind::Directory);
    let entries = host.readdir("hello", &c, "/").unwrap();
    assert_eq!(
        *entries,
        [ViewDirEntry {
            name: "greeting".into(),
            kind: NodeKind::File
        }]
    );
    let attrs = host.getattr("hello", &c, "/greeting").unwrap();
    let data = host.read("hello", &c, "/greeting", 0, 4096).unwrap();
    assert_eq!(data, b"Hello from a lighthouse-fs view!\n");
    assert_eq!(attrs.size, data.len() as u64);
    assert_eq!(host.read("hello", &c, "/greeting", 6, 4).unwrap(), b"from");

    let missing = host.getattr("hello", &c, "/nope").unwrap_err();
    assert!(matches!(missing, ViewCallError::View(ViewError::NotFound)));
    assert_eq!(missing.errno(), libc::ENOENT);
    let write = host.write("hello", &c, "/greeting", 0, b"x").unwrap_err();
    assert_eq!(write.errno(), libc::EROFS);

    let views = host.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].name, "hello");
    assert_eq!(views[0].origin, "builtin:hello");
    assert_eq!(views[0].last_error, None);
    assert!(views[0].idle_instances >= 1);
}

#[test]
fn unknown_view_is_enoent() {
    let host = host();
    let err = host.getattr("nothing", &caller(), "/").unwrap_err();
    assert!(matches!(err, ViewCallError::NoSuchView));
    assert_eq!(err.errno(), libc::ENOENT);
    assert!(!host.has_view("nothing"));
}

#[test]
fn history_reads_the_tree_at_a_point() {
    let Some(bytes) = component("history") else {
        return;
    };
    let store = Arc::new(MemoryStore::new(T0));
    store.push(T0, "mkdir", "/docs", None, None);
    store.push(T0 + S, "write", "/docs/a.txt", None, Some(b"one\n"));
    store.push(T0 + 2 * S, "write", "/docs/a.txt", None, Some(b"two!\n"));
    let host = host_with(store.clone());
    assert_eq!(host.load(bytes, "builtin:history").unwrap().name, "history");
    let c = caller();

    let root: Vec<String> = host
        .readdir("history", &c, "/")
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert!(root.contains(&"@3".to_owned()), "{root:?}");
    assert!(root.contains(&".log".to_owned()), "{root:?}");

    assert_eq!(
        host.read("history", &c, "/@2/docs/a.txt", 0, 100).unwrap(),
        b"one\n"
    );
    assert_eq!(
        host.read("history", &c, "/@3/docs/a.txt", 0, 100).unwrap(),
        b"two!\n"
    );
    let attrs = host.getattr("history", &c, "/@2/docs/a.txt").unwrap();
    assert_eq!((attrs.kind, attrs.size), (NodeKind::File, 4));
    assert!(!attrs.writable);
    let at1 = host.readdir("history", &c, "/@1/docs").unwrap();
    assert!(at1.is_empty(), "{at1:?}");
    assert!(host.getattr("history", &c, "/@1/docs/a.txt").is_err());
    let at2: Vec<String> = host
        .readdir("history", &c, "/@2/docs")
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(at2, ["a.txt"]);
    // The view sees the store move.
    store.push(T0 + 3 * S, "unlink", "/docs/a.txt", None, None);
    assert!(host.getattr("history", &c, "/@4").is_ok());
    assert!(host.readdir("history", &c, "/@4/docs").unwrap().is_empty());
}

#[test]
fn a_panic_traps_and_the_view_recovers() {
    let Some(bytes) = component("bad_panic") else {
        return;
    };
    let host = host();
    host.load(bytes, "test:bad-panic").unwrap();
    let c = caller();
    assert_eq!(
        host.read("bad-panic", &c, "/ok", 0, 100).unwrap(),
        b"fine\n"
    );

    let err = host.read("bad-panic", &c, "/boom", 0, 100).unwrap_err();
    let ViewCallError::Trap { view, message } = &err else {
        panic!("expected a trap, got {err:?}")
    };
    assert_eq!(&**view, "bad-panic");
    assert!(message.contains("bad-panic: read of /boom"), "{message}");
    assert_eq!(err.errno(), libc::EIO);
    assert!(err.is_fault());

    // The poisoned store was dropped: the next call gets a healthy instance.
    for _ in 0..3 {
        assert_eq!(
            host.read("bad-panic", &c, "/ok", 0, 100).unwrap(),
            b"fine\n"
        );
    }
    let view = &host.views()[0];
    assert_eq!(view.faults, 1);
    let last = view.last_error.as_deref().unwrap();
    assert!(last.starts_with("read /boom: "), "{last}");
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline() {
    let Some(bytes) = component("bad_loop") else {
        return;
    };
    let host = host();
    host.load(bytes, "test:bad-loop").unwrap();
    let c = caller();
    let started = Instant::now();
    let err = host.read("bad-loop", &c, "/spin", 0, 100).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ViewCallError::Timeout { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(host.read("bad-loop", &c, "/ok", 0, 100).unwrap(), b"fine\n");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let Some(bytes) = component("bad_memory") else {
        return;
    };
    // Deadlines far off: on a loaded machine, touching 64 MiB can take longer than the
    // default 200 ms, and this test is about the cap, not the clock.
    let limits = ViewLimits {
        call_deadline: Duration::from_secs(30),
        call_wall_limit: Duration::from_secs(60),
        ..test_limits()
    };
    let host = ViewHost::new(limits, Arc::new(MemoryStore::new(T0))).expect("view host");
    host.load(bytes, "test:bad-memory").unwrap();
    let c = caller();
    let err = host.read("bad-memory", &c, "/hog", 0, 100).unwrap_err();
    assert!(
        matches!(err, ViewCallError::MemoryCap { cap, .. } if cap == 64 << 20),
        "{err:?}"
    );
    assert_eq!(err.errno(), libc::EIO);
    assert_eq!(
        host.read("bad-memory", &c, "/ok", 0, 100).unwrap(),
        b"fine\n"
    );
}

#[test]
fn a_view_whose_info_traps_is_refused() {
    let Some(bytes) = component("bad_info") else {
        return;
    };
    let host = host();
    let err = host.load(bytes, "test:bad-info").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("`info` failed"), "{message}");
    assert!(message.contains("bad-info: info panics"), "{message}");
    assert!(host.views().is_empty());
}

#[test]
fn garbage_and_core_modules_are_not_components() {
    let host = host();
    let err = host.check(b"this is not wasm at all").unwrap_err();
    assert!(
        format!("{err:#}").contains("not a WebAssembly component"),
        "{err:#}"
    );
    // The smallest core module: magic, version 1, layer 0.
    let err = host.check(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(format!("{err:#}").contains("core module"), "{err:#}");
    // A component preamble with garbage after it.
    let err = host.check(b"\0asm\x0d\0\x01\0\xff\xff\xff").unwrap_err();
    assert!(
        format!("{err:#}").contains("not a valid WebAssembly component"),
        "{err:#}"
    );
    let err = check_component(b"").unwrap_err();
    assert!(
        format!("{err:#}").contains("not a WebAssembly component"),
        "{err:#}"
    );
}

#[test]
fn check_reports_the_info() {
    let Some(bytes) = component("hello") else {
        return;
    };
    let info = check_component(bytes).unwrap();
    assert_eq!(info.name, "hello");
    assert!(!info.version.is_empty());
}

#[test]
fn view_names_must_be_one_path_component() {
    for good in ["history", "hello", ".hidden", "a b"] {
        check_view_name(good).unwrap();
    }
    for bad in ["", ".", "..", "a/b", "/", "nul\0", "current", "debug"] {
        assert!(check_view_name(bad).is_err(), "{bad:?}");
    }
    assert!(check_view_name(&"x".repeat(256)).is_err());
}

#[test]
fn loading_again_swaps_in_a_new_generation() {
    let Some(bytes) = component("hello") else {
        return;
    };
    let host = host();
    host.load(bytes, "first").unwrap();
    let first = host.generation("hello").unwrap();
    host.load(bytes, "second").unwrap();
    let views = host.views();
    assert_eq!(views.len(), 1);
    assert!(views[0].generation > first);
    assert_eq!(views[0].origin, "second");
    assert!(host.read("hello", &caller(), "/greeting", 0, 5).is_ok());
    assert!(host.unload("hello"));
    assert!(!host.unload("hello"));
    assert!(matches!(
        host.read("hello", &caller(), "/greeting", 0, 5),
        Err(ViewCallError::NoSuchView)
    ));
}

#[test]
fn four_threads_call_concurrently() {
    let (Some(hello), Some(history)) = (component("hello"), component("history")) else {
        return;
    };
    let store = Arc::new(MemoryStore::new(T0));
    store.push(T0, "write", "/f", None, Some(b"content"));
    let host = Arc::new(host_with(store));
    host.load(hello, "builtin:hello").unwrap();
    host.load(history, "builtin:history").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let host = host.clone();
            std::thread::spawn(move || {
                let c = Caller { pid: t, ..caller() };
                for _ in 0..300 {
                    let greeting = host.read("hello", &c, "/greeting", 0, 64).unwrap();
                    assert_eq!(&greeting[..5], b"Hello");
                    assert_eq!(
                        host.read("history", &c, "/@1/f", 0, 64).unwrap(),
                        b"content"
                    );
                    assert!(matches!(
                        host.getattr("hello", &c, "/missing"),
                        Err(ViewCallError::View(ViewError::NotFound))
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for view in host.views() {
        assert_eq!(view.faults, 0, "{view:?}");
        assert!(view.idle_instances <= test_limits().idle_instances_per_view);
    }
}

/// A history of two points: `/f` holds "v1" after event 1 and "v2" after event 2.
fn two_point_store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new(T0));
    store.push(T0, "write", "/f", None, Some(b"v1"));
    store.push(T0 + S, "write", "/f", None, Some(b"v2"));
    store
}

#[test]
fn immutable_answers_are_kept_per_generation() {
    let Some(bytes) = component("history") else {
        return;
    };
    let host = host_with(two_point_store());
    host.load(bytes, "builtin:history").unwrap();
    let c = caller();

    // @1 is a fixed point: its answers are kept after the first call.
    let first = host.getattr("history", &c, "/@1/f").unwrap();
    assert_eq!(first.caching, Caching::Immutable);
    assert_eq!(host.read("history", &c, "/@1/f", 0, 64).unwrap(), b"v1");
    let names = |entries: Arc<[ViewDirEntry]>| -> Vec<String> {
        entries.iter().map(|e| e.name.clone()).collect()
    };
    // A listing is kept once the directory's own getattr said immutable (the kernel
    // always looks a directory up before it lists it).
    host.readdir("history", &c, "/@1").unwrap();
    assert_eq!(host.answer_cache_stats().inserts, 2);
    host.getattr("history", &c, "/@1").unwrap();
    assert_eq!(names(host.readdir("history", &c, "/@1").unwrap()), ["f"]);
    let before = host.answer_cache_stats();
    assert_eq!(before.inserts, 4, "{before:?}");
    for _ in 0..5 {
        assert_eq!(host.getattr("history", &c, "/@1/f").unwrap(), first);
        assert_eq!(host.read("history", &c, "/@1/f", 0, 64).unwrap(), b"v1");
        assert_eq!(names(host.readdir("history", &c, "/@1").unwrap()), ["f"]);
    }
    let after = host.answer_cache_stats();
    assert_eq!(after.hits - before.hits, 15, "{after:?}");
    assert_eq!(after.inserts, before.inserts);
    assert!(after.entries >= 4 && after.bytes > 0, "{after:?}");

    // A relative time moves with the clock: volatile, never kept.
    let now = host.getattr("history", &c, "/-0s/f").unwrap();
    assert_eq!(now.caching, Caching::Volatile);
    assert_eq!(host.read("history", &c, "/-0s/f", 0, 64).unwrap(), b"v2");
    assert_eq!(host.answer_cache_stats().inserts, before.inserts);

    // A new generation asks the component again (and keeps its own answers).
    host.load(bytes, "again").unwrap();
    let misses = host.answer_cache_stats().misses;
    assert_eq!(host.read("history", &c, "/@1/f", 0, 64).unwrap(), b"v1");
    assert!(host.answer_cache_stats().misses > misses);

    // Off: nothing is kept.
    let off = ViewHost::new(
        ViewLimits {
            answer_cache_bytes: 0,
            ..test_limits()
        },
        two_point_store(),
    )
    .unwrap();
    off.load(bytes, "builtin:history").unwrap();
    off.getattr("history", &c, "/@1/f").unwrap();
    off.read("history", &c, "/@1/f", 0, 64).unwrap();
    assert_eq!(
        off.answer_cache_stats(),
        crate::core::view_section::AnswerCacheFigures::default()
    );
}

/// A store whose every `stat_at` takes `delay`: a slow disk, a cold history tree.
struct SlowStore {
    inner: Arc<MemoryStore>,
    delay: Duration,
}

impl StoreAccess for SlowStore {
    fn viewer(&self, caller: &Caller) -> Viewer {
        self.inner.viewer(caller)
    }
    fn head(&self) -> u64 {
        self.inner.head()
    }
    fn now_ns(&self) -> i64 {
        self.inner.now_ns()
    }
    fn events(&self, v: &Viewer, after: u64, limit: u32, filter: &EventFilter) -> EventsPage {
        self.inner.events(v, after, limit, filter)
    }
    fn seq_at_time(&self, time_ns: i64) -> u64 {
        self.inner.seq_at_time(time_ns)
    }
    fn stat_at(&self, v: &Viewer, path: &str, seq: u64) -> Result<ViewAttrs, ViewError> {
        std::thread::sleep(self.delay);
        self.inner.stat_at(v, path, seq)
    }
    fn list_at(&self, v: &Viewer, path: &str, seq: u64) -> Result<Vec<ViewDirEntry>, ViewError> {
        self.inner.list_at(v, path, seq)
    }
    fn read_at(
        &self,
        v: &Viewer,
        path: &str,
        seq: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ViewError> {
        self.inner.read_at(v, path, seq, offset, len)
    }
    fn readlink_at(&self, v: &Viewer, path: &str, seq: u64) -> Result<String, ViewError> {
        self.inner.readlink_at(v, path, seq)
    }
    fn hash_at(&self, v: &Viewer, path: &str, seq: u64) -> Result<String, ViewError> {
        self.inner.hash_at(v, path, seq)
    }
    fn append(
        &self,
        view: &str,
        caller: &Caller,
        v: &Viewer,
        op: &str,
        path: &str,
        body: &str,
    ) -> Result<u64, ViewError> {
        self.inner.append(view, caller, v, op, path, body)
    }
}

#[test]
fn time_in_the_store_does_not_count_against_the_view() {
    let Some(bytes) = component("history") else {
        return;
    };
    // Each stat in the store takes three of the view's deadlines.
    let slow = |wall: Duration| {
        let limits = ViewLimits {
            call_deadline: Duration::from_millis(40),
            call_wall_limit: wall,
            answer_cache_bytes: 0,
            ..test_limits()
        };
        let store = SlowStore {
            inner: two_point_store(),
            delay: Duration::from_millis(120),
        };
        let host = ViewHost::new(limits, Arc::new(store)).unwrap();
        host.load(bytes, "builtin:history").unwrap();
        host
    };
    let host = slow(Duration::from_secs(5));
    let attrs = host.getattr("history", &caller(), "/@1/f").unwrap();
    assert_eq!(attrs.size, 2);
    assert_eq!(host.views()[0].faults, 0);

    // The wall limit still ends a call that keeps the host busy.
    let host = slow(Duration::from_millis(60));
    let err = host.getattr("history", &caller(), "/@1/f").unwrap_err();
    assert!(matches!(err, ViewCallError::Timeout { .. }), "{err:?}");
}

#[test]
fn append_is_checked_and_only_allowed_while_writing() {
    let Some(bytes) = component("bad_append") else {
        return;
    };
    let store = Arc::new(MemoryStore::new(T0));
    store.push(T0, "write", "/a.rs", None, Some(b"x"));
    let host = host_with(store.clone());
    host.load(bytes, "test:bad-append").unwrap();
    let c = caller();

    // During a read the host refuses, and the view can say so.
    let answer = host.read("bad-append", &c, "/try", 0, 4096).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("refused: "), "{answer}");
    assert!(
        answer.contains("only allowed during write, create and remove"),
        "{answer}"
    );
    assert_eq!(store.head(), 1, "nothing was recorded");

    let write = |text: &str| host.write("bad-append", &c, "/append", 0, text.as_bytes());
    // A well-formed event is recorded, attributed to the caller, body compacted.
    write("annotate\n/a.rs\n{ \"text\" : \"look\" }").unwrap();
    let all = store.viewer(&c);
    let events = store.events(&all, 0, 10, &EventFilter::default()).events;
    let e = events.last().unwrap();
    assert_eq!(
        (e.seq, e.op.as_str(), e.path.as_str()),
        (2, "annotate", "/a.rs")
    );
    assert_eq!(
        (e.uid, e.pid, e.agent.as_deref()),
        (1000, 42, Some("tester"))
    );
    assert_eq!(e.view.as_deref(), Some("bad-append"));
    assert_eq!(e.body.as_deref(), Some(r#"{"text":"look"}"#));

    // Everything else is EINVAL, and nothing is recorded.
    for (bad, why) in [
        ("write\n/a.rs\n{}", "an op of the live tree"),
        ("Annotate\n/a.rs\n{}", "must be 1-32 characters"),
        ("annotate\na.rs\n{}", "not a path of current/"),
        ("annotate\n/a/../b\n{}", "not a path of current/"),
        ("annotate\n/a.rs\nnot json", "not one JSON document"),
        ("annotate\n/a.rs\n{} {}", "not one JSON document"),
    ] {
        let err = write(bad).unwrap_err();
        let ViewCallError::View(ViewError::Invalid(message)) = &err else {
            panic!("{bad:?}: {err:?}")
        };
        assert!(message.contains(why), "{bad:?}: {message}");
    }
    let big = format!("annotate\n/a.rs\n\"{}\"", "x".repeat(70 << 10));
    assert!(write(&big).is_err(), "a body over 64 KiB");
    assert_eq!(store.head(), 2);

    // create may append too.
    host.create("bad-append", &c, "/made", NodeKind::File)
        .unwrap();
    let made = store.events(&all, 2, 10, &EventFilter::default()).events;
    assert_eq!(made[0].op, "made");
    assert_eq!(
        host.views()[0].faults,
        0,
        "refusals are answers, not faults"
    );
}

/// The streams view behind the core's stream log, over 100,000 events: the first access
/// renders the whole log once (O(events)); an old part is rendered again from a
/// checkpoint and agrees byte for byte. Prints how long the first rendering took (a
/// measurement for the docs, not an assertion: the machine decides it).
#[test]
fn a_stream_log_of_100k_events_renders_once_and_old_parts_again() {
    use crate::core::stream_log::StreamLog;
    use crate::core::view_section::{OpenMode, ViewPath, Views};
    let Some(bytes) = component("streams") else {
        return;
    };
    const EVENTS: u64 = 100_000;
    let store = Arc::new(MemoryStore::new(T0));
    for i in 0..EVENTS {
        let op = if i % 2 == 0 { "create" } else { "write" };
        store.push(
            T0 + i as i64,
            op,
            &format!("/dir/f{:06}", i / 2),
            None,
            None,
        );
    }
    // The limits a mount has but for time: a debug build of the host on a machine that
    // runs other tests at once can take a call past 200 ms, which is not what this test
    // is about (the mounted tests and a release build keep the real deadline).
    let limits = ViewLimits {
        call_deadline: Duration::from_secs(2),
        call_wall_limit: Duration::from_secs(10),
        ..test_limits()
    };
    let host = Arc::new(ViewHost::new(limits, store.clone()).expect("view host"));
    host.load(bytes, "builtin:streams").unwrap();
    let views = CoreViews(host.clone());
    let generation = views.generation("streams").unwrap();
    let vp = ViewPath::root("streams".into(), generation).child("file_changes");
    let c = crate::core::Caller::HOST;
    let opened = views.open(&c, &vp, false).unwrap();
    assert_eq!(opened.mode, OpenMode::Stream(0));
    let mut log = StreamLog::new(
        "streams/file_changes".into(),
        opened.version.clone(),
        c,
        vp.path.clone(),
        0,
        0,
    );
    let started = Instant::now();
    log.catch_up().unwrap();
    let took = started.elapsed();
    let size = log.size();
    eprintln!(
        "first rendering of {EVENTS} events: {size} bytes in {:.0} ms ({:.1} µs per event)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / EVENTS as f64
    );
    assert_eq!(
        log.mtime(),
        T0 + EVENTS as i64 - 1,
        "the newest line's time"
    );
    // The whole log, read through the log in 128 KiB reads (old parts rendered again).
    let mut whole = Vec::with_capacity(size as usize);
    while (whole.len() as u64) < size {
        let part = log.read(whole.len() as u64, 128 << 10).unwrap();
        assert!(!part.is_empty());
        whole.extend(part);
    }
    let text = String::from_utf8(whole).unwrap();
    assert_eq!(text.lines().count() as u64, EVENTS);
    for (i, line) in text.lines().enumerate() {
        assert!(line.starts_with(&format!("{{\"seq\":{},", i + 1)), "{line}");
    }
    // Any part again, out of order, agrees.
    for offset in [size / 3, 17, size - 5, size / 2 + 11] {
        let got = log.read(offset, 4096).unwrap();
        let at = offset as usize;
        assert_eq!(
            got,
            text.as_bytes()[at..(at + 4096).min(text.len())],
            "at {offset}"
        );
    }
    assert!(
        log.held_bytes() < 2 << 20,
        "{} bytes held",
        log.held_bytes()
    );
    // At the end: nothing yet; then the next event.
    assert_eq!(log.read(size, 4096).unwrap_err().errno, libc::EAGAIN);
    store.push(T0 + EVENTS as i64, "unlink", "/dir/f000000", None, None);
    let next = log.read(size, 4096).unwrap();
    assert!(next.starts_with(format!("{{\"seq\":{},", EVENTS + 1).as_bytes()));
}

/// The audit trail keeps its last 10,000 records: a part of `streams/audit` whose records
/// are gone answers EIO with a reason naming `audit@SEQ`, never other bytes; what is kept
/// reads on, and `audit@now` links past the gap.
#[test]
fn dropped_audit_records_are_eio_naming_them_never_other_bytes() {
    use std::ffi::OsStr;

    use crate::core::{Fs, FsConfig, ROOT_INO};
    use crate::store::{EmbeddedStore, History, AUDIT_KEPT};
    let Some(bytes) = component("streams") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fs = Fs::new(
        EmbeddedStore::open(dir.path()).unwrap(),
        FsConfig::default(),
    );
    let access = Arc::new(HistoryAccess::new(
        History::new(fs.store().clone()),
        fs.sights().clone(),
    ));
    let host = Arc::new(ViewHost::new(test_limits(), access).expect("view host"));
    host.load(bytes, "builtin:streams").unwrap();
    fs.set_views(Arc::new(CoreViews(host)));
    let c = crate::core::Caller::HOST;
    let agent: Arc<str> = "reviewer".into();
    let audit = |n: usize| {
        for i in 0..n {
            let path = format!("/current/{i}");
            fs.store()
                .audit()
                .record(&c, &agent, "open", path, "denied: no".into());
        }
    };
    audit(3);
    let streams = fs.lookup(&c, ROOT_INO, OsStr::new("streams")).unwrap();
    let whole = fs
        .lookup(&c, streams.attr.ino, OsStr::new("audit"))
        .unwrap();
    let ino = whole.attr.ino;
    let o = fs.open(&c, ino, libc::O_RDONLY).unwrap();
    let first = fs.read(&c, ino, o.fh, 0, 4096).unwrap();
    assert_eq!(first.len() as u64, whole.attr.size);
    assert_eq!(first.iter().filter(|&&b| b == b'\n').count(), 3);

    audit(100);
    let grown = fs.getattr(&c, ino, Some(o.fh)).unwrap().0.size;
    assert!(grown > first.len() as u64);
    // Records 1 to 103 go; the log had rendered them, and goes on after them.
    audit(AUDIT_KEPT);
    let (attr, _) = fs.getattr(&c, ino, Some(o.fh)).unwrap();
    assert!(
        attr.size > 100 * first.len() as u64,
        "the log caught up: {}",
        attr.size
    );
    let newest = fs.read(&c, ino, o.fh, attr.size - 200, 200).unwrap();
    assert!(newest.ends_with(b"\"outcome\":\"denied: no\"}\n"));
    // Its start must be rendered again: the records are gone.
    let err = fs.read(&c, ino, o.fh, 0, 4096).unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert!(
        err.message
            .contains("audit@1: records 1 to 103 are no longer kept")
            && err.message.contains("audit@104"),
        "{err}"
    );
    // Another caller's log of the whole trail cannot be made at all.
    let other = crate::core::Caller { uid: 1000, ..c };
    let err = fs.getattr(&other, ino, None).unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert!(err.message.contains("audit@1: "), "{err}");
    // From a kept record on, and past the gap through the link, it reads.
    let now = fs
        .lookup(&c, streams.attr.ino, OsStr::new("audit@now"))
        .unwrap();
    assert_eq!(fs.readlink(&c, now.attr.ino).unwrap(), b"audit@10104");
    let kept = fs
        .lookup(&c, streams.attr.ino, OsStr::new("audit@104"))
        .unwrap();
    let k = fs.open(&c, kept.attr.ino, libc::O_RDONLY).unwrap();
    let line = fs.read(&c, kept.attr.ino, k.fh, 0, 4096).unwrap();
    assert!(line.starts_with(b"{\"seq\":104,"));
    fs.release(&c, kept.attr.ino, k.fh).unwrap();
    fs.release(&c, ino, o.fh).unwrap();
}
