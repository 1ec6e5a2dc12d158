//! The history view against a model store: a log of events folded into trees.

use lighthouse_view_sdk::model::ModelStore;
use lighthouse_view_sdk::{attrs, Caching, DirEntry, FsError, NodeKind, Owner};

use lighthouse_view_sdk::Store;

use crate::history::{History, RECENT};

const S: i64 = 1_000_000_000;
/// 2026-11-23T21:40:00Z
const T0: i64 = 1_795_470_000 * S;

/// The SDK's model store with the clock an hour after T0 (for relative times).
fn model() -> ModelStore {
    let m = ModelStore::new(T0);
    m.set_now(T0 + 3600 * S);
    m
}

/// 1 mkdir /src, 2 write /src/a v1, 3 write /src/a v2, 4 symlink /l -> src/a,
/// 5 rename /src/a -> /src/b, 6 write /gone, 7 unlink /gone; one second apart.
fn sample() -> ModelStore {
    let m = model();
    m.push_at(T0 + S, "mkdir", "/src", None, None);
    m.push_at(T0 + 2 * S, "write", "/src/a", None, Some(b"version one\n"));
    m.push_at(T0 + 3 * S, "write", "/src/a", None, Some(b"v2\n"));
    m.push_at(T0 + 4 * S, "symlink", "/l", Some("src/a"), None);
    m.push_at(T0 + 5 * S, "rename", "/src/a", Some("/src/b"), None);
    m.push_at(T0 + 6 * S, "write", "/gone", None, Some(b"x"));
    m.push_at(T0 + 7 * S, "unlink", "/gone", None, None);
    m
}

fn names(entries: &[DirEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

fn read_all<S: Store>(view: &History<S>, path: &str) -> Result<Vec<u8>, FsError> {
    view.read(path, 0, u32::MAX)
}

#[test]
fn root_lists_log_and_both_names_of_each_event() {
    let m = sample();
    let view = History { store: &m };
    let root = view.readdir("/").unwrap();
    assert_eq!(root[0], attrs::entry(".log", NodeKind::Directory));
    assert_eq!(root.len(), 1 + 2 * 7);
    assert!(root.iter().all(|e| e.kind == NodeKind::Directory));
    let names = names(&root);
    assert!(names.contains(&"@1") && names.contains(&"@7"));
    assert!(names.contains(&"2026-11-23T21:40:03.000000000Z"));
    // Every listed name resolves, and a time name to exactly its event.
    for name in &names[1..] {
        let attrs = view.getattr(&format!("/{name}")).unwrap();
        assert_eq!(attrs.kind, NodeKind::Directory);
        assert_eq!(attrs.perm, 0o555);
    }
    let at3 = view.getattr("/2026-11-23T21:40:03.000000000Z").unwrap();
    assert_eq!(at3.mtime_ns, T0 + 3 * S);
    assert_eq!(at3.caching, Caching::Immutable);
    assert_eq!(view.getattr("/@3").unwrap(), at3);
    let root_attrs = view.getattr("/").unwrap();
    assert_eq!(
        (root_attrs.mtime_ns, root_attrs.caching),
        (T0 + 7 * S, Caching::Volatile)
    );
}

#[test]
fn root_lists_only_the_recent_events_and_times_that_resolve_back() {
    let m = model();
    for i in 0..30 {
        // Pairs of events share a timestamp: only the later of each pair owns the time.
        m.push_at(T0 + (i / 2) * S, "write", "/f", None, Some(b"x"));
    }
    let view = History { store: &m };
    let root = view.readdir("/").unwrap();
    let names = names(&root);
    assert!(!names.contains(&"@10") && names.contains(&"@11") && names.contains(&"@30"));
    assert_eq!(
        names.iter().filter(|n| n.starts_with('@')).count(),
        RECENT as usize
    );
    assert_eq!(
        names.iter().filter(|n| n.ends_with('Z')).count(),
        RECENT as usize / 2
    );
    for name in names.iter().filter(|n| n.ends_with('Z')) {
        let seq = (&m).seq_at_time(lighthouse_view_sdk::time::parse_rfc3339(name).unwrap());
        assert_eq!(seq % 2, 0, "{name} resolves to the later event of its pair");
    }
}

#[test]
fn points_serve_the_tree_as_it_was() {
    let m = sample();
    let view = History { store: &m };
    assert_eq!(read_all(&view, "/@2/src/a").unwrap(), b"version one\n");
    assert_eq!(read_all(&view, "/@3/src/a").unwrap(), b"v2\n");
    assert_eq!(view.read("/@2/src/a", 8, 100).unwrap(), b"one\n");
    let a = view.getattr("/@2/src/a").unwrap();
    assert_eq!(
        (a.kind, a.size, a.mtime_ns),
        (NodeKind::File, 12, T0 + 2 * S)
    );
    assert_eq!(
        (a.perm, a.writable, a.caching),
        (0o444, false, Caching::Immutable)
    );
    assert_eq!(view.getattr("/@2/src").unwrap().perm, 0o555);
    assert_eq!(names(&view.readdir("/@5/src").unwrap()), ["b"]);
    assert_eq!(names(&view.readdir("/@5").unwrap()), ["l", "src"]);
    assert_eq!(view.readlink("/@4/l").unwrap(), "src/a");
    assert_eq!(view.getattr("/@1/src/a"), Err(FsError::NotFound));
    // The empty tree before the log, and the head itself.
    assert!(view.readdir("/@0").unwrap().is_empty());
    assert_eq!(view.getattr("/@0").unwrap().mtime_ns, 0);
    assert!(view.getattr("/@7").is_ok());
    assert_eq!(view.read("/@3", 0, 1), Err(FsError::IsADirectory));
    // Times, with any spelling; before the first event is the empty tree.
    assert_eq!(
        read_all(&view, "/2026-11-23T21:40:02.5Z/src/a").unwrap(),
        b"version one\n"
    );
    assert_eq!(
        read_all(&view, "/2026-11-23T22:40:03+01:00/src/a").unwrap(),
        b"v2\n"
    );
    assert!(view.readdir("/2026-11-23T21:40:00Z").unwrap().is_empty());
    // Relative to the host's now: an hour after T0 everything has happened.
    assert_eq!(read_all(&view, "/-10m/src/b").unwrap(), b"v2\n");
    assert_eq!(
        view.getattr("/-10m/src/b").unwrap().caching,
        Caching::Volatile
    );
    assert!(view.readdir("/-2h").unwrap().is_empty());
}

#[test]
fn names_that_are_not_points_are_not_found() {
    let m = sample();
    let view = History { store: &m };
    for path in [
        "/@8", "/@8/src", "/now", "/src", "/12", "/@", "/-1x", "/@1x",
    ] {
        assert_eq!(view.getattr(path), Err(FsError::NotFound), "{path}");
    }
    assert!(matches!(view.getattr("/@1/../x"), Err(FsError::Invalid(_))));
}

#[test]
fn a_time_is_immutable_once_a_later_event_exists() {
    let m = sample();
    let view = History { store: &m };
    let last = "/2026-11-23T21:40:07.000000000Z";
    assert_eq!(view.getattr(last).unwrap().caching, Caching::Volatile);
    assert_eq!(
        view.getattr("/2030-01-01T00:00:00Z").unwrap().caching,
        Caching::Volatile
    );
    assert_eq!(
        view.getattr("/2026-11-23T21:40:06.000000000Z")
            .unwrap()
            .caching,
        Caching::Immutable
    );
}

#[test]
fn log_files_hold_each_paths_events() {
    let m = sample();
    let view = History { store: &m };
    assert_eq!(names(&view.readdir("/.log").unwrap()), ["l", "src"]);
    assert_eq!(view.readdir("/.log").unwrap()[0].kind, NodeKind::File); // symlink's log
    assert_eq!(names(&view.readdir("/.log/src").unwrap()), ["b"]);
    assert_eq!(view.getattr("/.log/src").unwrap().kind, NodeKind::Directory);

    let log = String::from_utf8(read_all(&view, "/.log/src/a").unwrap()).unwrap();
    let seqs: Vec<&str> = log.lines().map(|l| &l[..8]).collect();
    assert_eq!(seqs, [r#"{"seq":2"#, r#"{"seq":3"#, r#"{"seq":5"#]);
    assert!(log
        .lines()
        .next()
        .unwrap()
        .contains(r#""op":"write","path":"/src/a","path2":null,"size":12"#));
    let b = view.getattr("/.log/src/b").unwrap();
    assert_eq!(
        (b.kind, b.mtime_ns, b.caching),
        (NodeKind::File, T0 + 5 * S, Caching::Volatile)
    );
    assert_eq!(
        b.size as usize,
        read_all(&view, "/.log/src/b").unwrap().len()
    );
    // The symlink's log does not leak into its target's.
    assert_eq!(
        String::from_utf8(read_all(&view, "/.log/l").unwrap())
            .unwrap()
            .lines()
            .count(),
        1
    );
    // A deleted path keeps its log; a path the log never saw has none.
    assert_eq!(
        String::from_utf8(read_all(&view, "/.log/gone").unwrap())
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert_eq!(view.getattr("/.log/never"), Err(FsError::NotFound));
    assert_eq!(view.read("/.log/src", 0, 10), Err(FsError::IsADirectory));
    assert_eq!(view.readdir("/.log/src/b"), Err(FsError::NotADirectory));
}

/// A node of the past tree shows the owner it had then (the kernel checks `perm`
/// against it); the view's own directories are the mount's.
#[test]
fn past_nodes_show_the_owner_they_had() {
    let m = model();
    m.as_user(1000, 100);
    m.mkdir("/home");
    m.write("/home/a", b"mine\n");
    m.as_user(2000, 200);
    m.push("symlink", "/home/l", Some("a"), None);
    let seq = m.rename("/home/a", "/home/b");
    let view = History { store: &m };
    let alice = Some(Owner {
        uid: 1000,
        gid: 100,
    });
    let owner = |p: &str| view.getattr(p).unwrap().owner;
    assert_eq!(owner(&format!("/@{seq}/home")), alice);
    assert_eq!(
        owner(&format!("/@{seq}/home/b")),
        alice,
        "a rename keeps it"
    );
    assert_eq!(owner("/@2/home/a"), alice);
    assert_eq!(
        owner(&format!("/@{seq}/home/l")),
        Some(Owner {
            uid: 2000,
            gid: 200
        })
    );
    let file = view.getattr("/@2/home/a").unwrap();
    assert_eq!((file.perm, file.writable), (0o444, false));
    assert_eq!(owner("/@2"), None, "the root of the tree is the mount's");
    assert_eq!(owner("/"), None);
    assert_eq!(owner("/.log/home"), alice);
}

/// What the store will not show the caller is `permission-denied`, never not-found or
/// an I/O error; and `.log` files skip the events it hides.
#[test]
fn what_the_caller_may_not_read_is_permission_denied() {
    let m = model();
    m.mkdir("/private");
    m.write("/private/key", b"k\n");
    m.write("/secret", b"s\n");
    // More hidden events than a page of the view's holds.
    for i in 0..1100 {
        m.write(&format!("/private/{i}"), b"x");
    }
    let last = m.write("/secret", b"t\n");
    m.deny_dir("/private");
    m.deny_read("/secret");
    // Pages of nothing the caller may see come before the end.
    m.scan_at_most(100);
    let view = History { store: &m };
    let denied = Some(FsError::PermissionDenied);
    let at = format!("/@{last}");
    assert_eq!(view.getattr(&format!("{at}/private/key")).err(), denied);
    assert_eq!(view.getattr(&format!("{at}/private/nothing")).err(), denied);
    assert_eq!(view.readdir(&format!("{at}/private")).err(), denied);
    assert_eq!(read_all(&view, &format!("{at}/private/key")).err(), denied);
    assert_eq!(view.readlink(&format!("{at}/private/key")).err(), denied);
    assert_eq!(read_all(&view, &format!("{at}/secret")).err(), denied);
    assert_eq!(view.getattr(&format!("{at}/secret")).unwrap().size, 2);
    assert_eq!(view.getattr("/.log/private/key").err(), denied);
    assert_eq!(read_all(&view, "/.log/private/key").err(), denied);
    assert_eq!(view.readdir("/.log/private").err(), denied);
    // The log of /secret: both writes, past the hidden ones between, without hashes.
    let log = String::from_utf8(read_all(&view, "/.log/secret").unwrap()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(lines[1].contains(&format!("\"seq\":{last},")), "{log}");
    assert!(lines.iter().all(|l| l.contains("\"hash\":null")), "{log}");
    // The root lists only the events the caller may see.
    let root = view.readdir("/").unwrap();
    assert!(!names(&root).contains(&"@4"));
    assert!(names(&root).contains(&format!("@{last}").as_str()));
}
