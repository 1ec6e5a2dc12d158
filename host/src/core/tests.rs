//! The core and store without FUSE: operations, errnos, the log, and replay.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use super::view_section;
use super::*;
use crate::store::{EmbeddedStore, StoreReader};

const C: Caller = Caller {
    uid: 1000,
    gid: 1000,
    pid: 42,
    mount: 0,
    agent: crate::policy::AgentId::DEFAULT,
    agent_name: None,
};

fn open_fs(dir: &Path) -> Fs {
    Fs::new(
        EmbeddedStore::open(dir).expect("open store"),
        FsConfig::default(),
    )
}

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn errno<T: std::fmt::Debug>(r: FsResult<T>) -> i32 {
    r.expect_err("expected an error").errno
}

/// Create `n` in `parent` with `data`, close it; returns the inode.
fn put(fs: &Fs, parent: Ino, n: &str, data: &[u8]) -> Ino {
    let (e, o) = fs
        .create(&C, parent, name(n), 0o644, 0o022, libc::O_WRONLY)
        .unwrap();
    assert_eq!(
        fs.write(&C, e.attr.ino, o.fh, 0, data).unwrap() as usize,
        data.len()
    );
    fs.flush(&C, e.attr.ino, o.fh).unwrap();
    fs.release(&C, e.attr.ino, o.fh).unwrap();
    e.attr.ino
}

fn get(fs: &Fs, ino: Ino) -> Vec<u8> {
    let o = fs.open(&C, ino, libc::O_RDONLY).unwrap();
    let data = fs.read(&C, ino, o.fh, 0, 1 << 20).unwrap();
    fs.release(&C, ino, o.fh).unwrap();
    data
}

fn lookup(fs: &Fs, parent: Ino, n: &str) -> Option<Attr> {
    let e = fs.lookup(&C, parent, name(n)).unwrap();
    (e.attr.ino != 0).then_some(e.attr)
}

/// kind, perm, size, mtime, nlink, symlink target, content.
type Observed = (FileKind, u32, u64, i64, u32, Option<String>, Vec<u8>);

/// Everything observable about the live tree, by path (inode numbers differ per mount).
fn snapshot(fs: &Fs) -> BTreeMap<String, Observed> {
    let mut out = BTreeMap::new();
    let mut files = Vec::new();
    fs.with_tree(|t| {
        t.walk(CURRENT_INO, |path, n| {
            let a = n.attr;
            out.insert(
                path.to_string(),
                (
                    a.kind,
                    a.perm,
                    a.size,
                    a.mtime,
                    a.nlink,
                    n.target.as_deref().map(String::from),
                    Vec::new(),
                ),
            );
            if a.kind == FileKind::File {
                files.push((path.to_string(), a.ino));
            }
        })
    });
    for (path, ino) in files {
        out.get_mut(&path).unwrap().6 = get(fs, ino);
    }
    out
}

#[test]
fn a_written_file_is_one_create_and_one_write_event_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let d = fs
        .mkdir(&C, CURRENT_INO, name("src"), 0o755, 0)
        .unwrap()
        .attr
        .ino;
    let f = put(&fs, d, "main.rs", b"fn main() {}\n");
    assert_eq!(get(&fs, f), b"fn main() {}\n");
    let before = snapshot(&fs);
    fs.shutdown();
    drop(fs);

    let reader = StoreReader::open(dir.path()).unwrap();
    let mut ops = Vec::new();
    reader
        .events(0, None, |e| {
            ops.push((
                e.seq,
                e.change.op().to_owned(),
                e.change.path().to_string(),
                e.caller,
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        ops.iter()
            .map(|(s, o, p, _)| (*s, o.as_str(), p.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1, "mkdir", "/src"),
            (2, "create", "/src/main.rs"),
            (3, "write", "/src/main.rs")
        ]
    );
    assert!(
        ops.iter().all(|o| o.3 == C),
        "every event records its caller"
    );

    drop(reader); // it holds the store's shared lock
    let fs = open_fs(dir.path());
    assert_eq!(snapshot(&fs), before);
}

#[test]
fn errnos_of_names_follow_posix() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let f = put(&fs, CURRENT_INO, "f", b"x");
    assert_eq!(
        errno(fs.mkdir(&C, CURRENT_INO, name("f"), 0o755, 0)),
        libc::EEXIST
    );
    assert_eq!(errno(fs.mkdir(&C, f, name("sub"), 0o755, 0)), libc::ENOTDIR);
    assert_eq!(
        errno(fs.unlink(&C, CURRENT_INO, name("nope"))),
        libc::ENOENT
    );
    assert_eq!(errno(fs.rmdir(&C, CURRENT_INO, name("f"))), libc::ENOTDIR);
    let d = fs
        .mkdir(&C, CURRENT_INO, name("d"), 0o755, 0)
        .unwrap()
        .attr
        .ino;
    put(&fs, d, "inner", b"");
    assert_eq!(errno(fs.rmdir(&C, CURRENT_INO, name("d"))), libc::ENOTEMPTY);
    assert_eq!(errno(fs.unlink(&C, CURRENT_INO, name("d"))), libc::EISDIR);
    assert_eq!(
        errno(fs.lookup(&C, CURRENT_INO, name(&"a".repeat(256)))),
        libc::ENAMETOOLONG
    );
    assert!(lookup(&fs, CURRENT_INO, &"a".repeat(255)).is_none());
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(
        errno(fs.mkdir(&C, CURRENT_INO, OsStr::from_bytes(b"\xff"), 0o755, 0)),
        libc::EINVAL
    );
    assert_eq!(
        errno(fs.mknod(&C, CURRENT_INO, name("dev"), libc::S_IFCHR | 0o600, 0, 0)),
        libc::EPERM
    );
    assert_eq!(
        errno(fs.mkdir(&C, ROOT_INO, name("x"), 0o755, 0)),
        libc::EACCES
    );
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("f"), ROOT_INO, name("f"), 0)),
        libc::EXDEV
    );
    assert_eq!(
        errno(fs.link(&C, d, CURRENT_INO, name("dlink"))),
        libc::EPERM
    );
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("d"), d, name("self"), 0)),
        libc::EINVAL
    );
}

#[test]
fn rename_replaces_refuses_and_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    put(&fs, CURRENT_INO, "a", b"A");
    put(&fs, CURRENT_INO, "b", b"B");
    assert_eq!(
        errno(fs.rename(
            &C,
            CURRENT_INO,
            name("a"),
            CURRENT_INO,
            name("b"),
            libc::RENAME_NOREPLACE
        )),
        libc::EEXIST
    );
    fs.rename(
        &C,
        CURRENT_INO,
        name("a"),
        CURRENT_INO,
        name("b"),
        libc::RENAME_EXCHANGE,
    )
    .unwrap();
    assert_eq!(get(&fs, lookup(&fs, CURRENT_INO, "a").unwrap().ino), b"B");
    assert_eq!(get(&fs, lookup(&fs, CURRENT_INO, "b").unwrap().ino), b"A");
    fs.rename(&C, CURRENT_INO, name("a"), CURRENT_INO, name("b"), 0)
        .unwrap();
    assert!(lookup(&fs, CURRENT_INO, "a").is_none());
    assert_eq!(get(&fs, lookup(&fs, CURRENT_INO, "b").unwrap().ino), b"B");
    let d1 = fs
        .mkdir(&C, CURRENT_INO, name("d1"), 0o755, 0)
        .unwrap()
        .attr
        .ino;
    let d2 = fs
        .mkdir(&C, CURRENT_INO, name("d2"), 0o755, 0)
        .unwrap()
        .attr
        .ino;
    put(&fs, d2, "x", b"");
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("d1"), CURRENT_INO, name("d2"), 0)),
        libc::ENOTEMPTY
    );
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("b"), CURRENT_INO, name("d1"), 0)),
        libc::EISDIR
    );
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("d1"), CURRENT_INO, name("b"), 0)),
        libc::ENOTDIR
    );
    fs.rename(&C, CURRENT_INO, name("d2"), d1, name("moved"), 0)
        .unwrap();
    assert_eq!(
        fs.getattr(&C, CURRENT_INO, None).unwrap().0.nlink,
        3,
        "current, ., d1"
    );
    assert_eq!(fs.getattr(&C, d1, None).unwrap().0.nlink, 3);
    let before = snapshot(&fs);
    fs.shutdown();
    drop(fs);
    assert_eq!(snapshot(&open_fs(dir.path())), before);
}

#[test]
fn an_unlinked_open_file_stays_readable_and_leaves_no_write_event() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let f = put(&fs, CURRENT_INO, "f", b"old");
    let o = fs.open(&C, f, libc::O_RDWR).unwrap();
    fs.unlink(&C, CURRENT_INO, name("f")).unwrap();
    fs.write(&C, f, o.fh, 0, b"new").unwrap();
    assert_eq!(fs.read(&C, f, o.fh, 0, 10).unwrap(), b"new");
    let head = fs.store().head();
    fs.flush(&C, f, o.fh).unwrap();
    fs.release(&C, f, o.fh).unwrap();
    assert_eq!(fs.store().head(), head, "no event for an orphan's bytes");
    fs.forget(f, 1);
    assert_eq!(errno(fs.getattr(&C, f, None)), libc::ENOENT);
}

#[test]
fn hard_links_share_content_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let f = put(&fs, CURRENT_INO, "a", b"one");
    let e = fs.link(&C, f, CURRENT_INO, name("b")).unwrap();
    assert_eq!(e.attr.ino, f);
    assert_eq!(e.attr.nlink, 2);
    let o = fs.open(&C, f, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    fs.write(&C, f, o.fh, 0, b"two").unwrap();
    fs.flush(&C, f, o.fh).unwrap();
    fs.release(&C, f, o.fh).unwrap();
    fs.unlink(&C, CURRENT_INO, name("a")).unwrap();
    let b = lookup(&fs, CURRENT_INO, "b").unwrap();
    assert_eq!(b.nlink, 1);
    assert_eq!(get(&fs, b.ino), b"two");
    fs.shutdown();
    drop(fs);
    let fs = open_fs(dir.path());
    assert_eq!(get(&fs, lookup(&fs, CURRENT_INO, "b").unwrap().ino), b"two");
}

#[test]
fn sparse_writes_truncate_and_append() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let (e, o) = fs
        .create(&C, CURRENT_INO, name("s"), 0o644, 0, libc::O_RDWR)
        .unwrap();
    let f = e.attr.ino;
    fs.write(&C, f, o.fh, 1 << 20, b"end").unwrap();
    assert_eq!(fs.getattr(&C, f, None).unwrap().0.size, (1 << 20) + 3);
    assert_eq!(fs.read(&C, f, o.fh, 10, 4).unwrap(), vec![0; 4]);
    fs.setattr(
        &C,
        f,
        SetAttr {
            size: Some(5),
            fh: Some(o.fh),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs.read(&C, f, o.fh, 0, 100).unwrap(), vec![0; 5]);
    fs.release(&C, f, o.fh).unwrap();
    let a = fs.open(&C, f, libc::O_WRONLY | libc::O_APPEND).unwrap();
    fs.write(&C, f, a.fh, 0, b"tail").unwrap();
    fs.release(&C, f, a.fh).unwrap();
    assert_eq!(get(&fs, f), b"\0\0\0\0\0tail");
    // A truncate by path (no open writer) is committed at once.
    let head = fs.store().head();
    fs.setattr(
        &C,
        f,
        SetAttr {
            size: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs.store().head(), head + 1);
    assert_eq!(get(&fs, f), b"\0\0");
}

#[test]
fn a_second_open_of_a_store_is_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _fs = open_fs(dir.path());
    let err = EmbeddedStore::open(dir.path())
        .err()
        .expect("second open must fail")
        .to_string();
    assert!(err.contains("locked"), "{err}");
}

#[test]
fn a_corrupt_log_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let fs = open_fs(dir.path());
        put(&fs, CURRENT_INO, "f", b"x");
        fs.shutdown();
    }
    let db = dir.path().join("events.db");
    let garbage = b"this is not a database at all, just bytes".repeat(200);
    std::fs::write(&db, &garbage).unwrap();
    let err = format!(
        "{:#}",
        EmbeddedStore::open(dir.path())
            .err()
            .expect("corrupt store must be refused")
    );
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
}

#[test]
fn a_directory_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let err = EmbeddedStore::open(dir.path())
        .err()
        .expect("must refuse")
        .to_string();
    assert!(err.contains("not a lighthouse-fs store"), "{err}");
}

#[test]
fn replay_reproduces_a_random_history() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let names = ["a", "b", "c", "d"];
    let mut dirs = vec![CURRENT_INO];
    for _ in 0..600 {
        let p = dirs[rng.random_range(0..dirs.len())];
        let n = names[rng.random_range(0..names.len())];
        let m = names[rng.random_range(0..names.len())];
        let q = dirs[rng.random_range(0..dirs.len())];
        let _ = match rng.random_range(0..9) {
            0 => fs
                .mkdir(&C, p, name(n), 0o755, 0)
                .map(|e| dirs.push(e.attr.ino)),
            1 => fs
                .create(&C, p, name(n), 0o640, 0, libc::O_WRONLY)
                .map(|(e, o)| {
                    let len = rng.random_range(0..5000);
                    let _ = fs.write(
                        &C,
                        e.attr.ino,
                        o.fh,
                        rng.random_range(0..100),
                        &vec![rng.random(); len],
                    );
                    let _ = fs.release(&C, e.attr.ino, o.fh);
                }),
            2 => fs.unlink(&C, p, name(n)),
            3 => fs.rmdir(&C, p, name(n)),
            4 => fs.rename(
                &C,
                p,
                name(n),
                q,
                name(m),
                [0, libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE][rng.random_range(0..3)],
            ),
            5 => fs.lookup(&C, p, name(n)).and_then(|e| {
                if e.attr.ino == 0 {
                    Ok(())
                } else {
                    fs.link(&C, e.attr.ino, q, name(m)).map(drop)
                }
            }),
            6 => fs.symlink(&C, p, name(n), name("target")).map(drop),
            7 => fs.lookup(&C, p, name(n)).and_then(|e| {
                if e.attr.ino == 0 {
                    Ok(())
                } else {
                    fs.setattr(
                        &C,
                        e.attr.ino,
                        SetAttr {
                            mode: Some(0o600),
                            mtime: Some(TimeSpec::At(12345)),
                            ..Default::default()
                        },
                    )
                    .map(drop)
                }
            }),
            _ => fs.lookup(&C, p, name(n)).and_then(|e| {
                if e.attr.kind != FileKind::File || e.attr.ino == 0 {
                    Ok(())
                } else {
                    fs.setattr(
                        &C,
                        e.attr.ino,
                        SetAttr {
                            size: Some(rng.random_range(0..200)),
                            ..Default::default()
                        },
                    )
                    .map(drop)
                }
            }),
        };
        dirs.retain(|&d| {
            fs.getattr(&C, d, None)
                .map(|(a, _)| a.nlink > 0)
                .unwrap_or(false)
        });
    }
    let live = snapshot(&fs);
    fs.shutdown();
    drop(fs);
    assert_eq!(
        snapshot(&open_fs(dir.path())),
        live,
        "replay differs (seed {seed})"
    );
    // export's read-only fold of the same log names exactly the same paths.
    let mut exported = Vec::new();
    StoreReader::open(dir.path())
        .unwrap()
        .tree_at(None)
        .unwrap()
        .walk(CURRENT_INO, |path, _| exported.push(path.to_string()));
    exported.sort();
    assert_eq!(
        exported,
        live.keys().cloned().collect::<Vec<_>>(),
        "export's fold differs (seed {seed})"
    );
}

#[test]
fn history_serves_past_trees_and_per_path_events() {
    use crate::store::History;
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let d = fs
        .mkdir(&C, CURRENT_INO, name("src"), 0o755, 0)
        .unwrap()
        .attr
        .ino;
    let f = put(&fs, d, "a.rs", b"version one");
    let after_one = fs.store().head();
    let o = fs.open(&C, f, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    fs.write(&C, f, o.fh, 0, b"two").unwrap();
    fs.release(&C, f, o.fh).unwrap();
    fs.rename(&C, d, name("a.rs"), CURRENT_INO, name("b.rs"), 0)
        .unwrap();
    let head = fs.store().head();

    let h = History::new(fs.store().clone());
    // Walk forward and back: cached trees and trees folded from a nearer kept one agree.
    for seq in [after_one, head, 1, after_one] {
        let _ = h.tree_at(seq).unwrap();
    }
    // after_one and 1 fold from the start, head from after_one's tree; then one hit.
    let stats = fs.store().history_stats().snapshot();
    assert_eq!(
        (stats.hits, stats.misses, stats.from_kept, stats.kept),
        (1, 3, 1, 3)
    );
    assert!(stats.kept_nodes >= 3);
    assert_eq!(
        h.read_at("/src/a.rs", after_one, 0, 100).unwrap(),
        b"version one"
    );
    assert_eq!(h.read_at("/src/a.rs", after_one, 8, 100).unwrap(), b"one");
    assert_eq!(h.node_at("/src/a.rs", after_one).unwrap().attr.size, 11);
    assert_eq!(h.read_at("/b.rs", head, 0, 100).unwrap(), b"two");
    assert_eq!(
        h.node_at("/src/a.rs", head).unwrap_err().errno,
        libc::ENOENT
    );
    assert_eq!(
        h.tree_at(head + 1).err().map(|e| e.errno),
        Some(libc::ENOENT)
    );
    let names: Vec<String> = h
        .list_at("/", head)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names, ["b.rs", "src"]);
    assert!(
        h.list_at("/", 0).unwrap().is_empty(),
        "seq 0 is the empty tree"
    );

    let ops = |prefix: Option<&str>, only: &[&str]| -> Vec<(u64, String)> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        h.events(0, 100, prefix, &only)
            .unwrap()
            .iter()
            .map(|e| (e.seq, e.change.op().to_owned()))
            .collect()
    };
    let named = |v: &[(u64, &str)]| -> Vec<(u64, String)> {
        v.iter().map(|(s, o)| (*s, o.to_string())).collect()
    };
    assert_eq!(
        ops(Some("/src/a.rs"), &[]),
        named(&[(2, "create"), (3, "write"), (4, "write"), (5, "rename")])
    );
    assert_eq!(
        ops(Some("/src/a.rs"), &["write", "rename"]),
        named(&[(3, "write"), (4, "write"), (5, "rename")])
    );
    assert_eq!(ops(None, &["rename"]), named(&[(5, "rename")]));
    assert_eq!(h.events(0, 2, None, &[]).unwrap().len(), 2);
    assert_eq!(
        h.events(0, 100, Some("/sr"), &[]).unwrap().len(),
        0,
        "a prefix matches whole components"
    );

    drop(h);
    let stats = fs.store().history_stats().snapshot();
    assert_eq!(
        (stats.kept, stats.kept_nodes),
        (0, 0),
        "a dropped History keeps nothing"
    );

    // The same states as export's independent fold.
    fs.shutdown();
    let t = fs.store().read(0, None, &mut |_| Ok(())); // closed store refuses politely
    assert!(t.is_err());
}

/// A view in plain Rust: `/hello` (immutable) and `/now` (volatile), read-only, and
/// `/feed`, a stream of `line N` records up to `feed` (ended when `feed_ends`).
/// `generation` stands for hot swaps: `/hello` reads `hello` in generation 1 and
/// `HELLO!` after; a generation is "loaded" while a file opened on it is open.
struct FakeViews {
    state: Arc<FakeState>,
}

struct FakeState {
    feed: std::sync::atomic::AtomicU64,
    feed_ends: std::sync::atomic::AtomicBool,
    /// The feed renders its past differently from now on (a view breaking the contract).
    feed_rewrites: std::sync::atomic::AtomicBool,
    generation: std::sync::atomic::AtomicU64,
}

impl Default for FakeViews {
    fn default() -> Self {
        FakeViews {
            state: Arc::new(FakeState {
                feed: 0.into(),
                feed_ends: false.into(),
                feed_rewrites: false.into(),
                generation: 1.into(),
            }),
        }
    }
}

impl std::ops::Deref for FakeViews {
    type Target = FakeState;
    fn deref(&self) -> &FakeState {
        &self.state
    }
}

/// One generation of the fake view, as an open file holds it.
struct FakeVersion {
    state: Arc<FakeState>,
    generation: u64,
}

fn fake_content(path: &str, generation: u64) -> &'static [u8] {
    match (path, generation) {
        ("/hello", 1) => b"hello",
        ("/hello", _) => b"HELLO!",
        _ => b"tick",
    }
}

impl FakeViews {
    fn attr(&self, path: &str) -> FsResult<view_section::ViewAttrs> {
        use std::sync::atomic::Ordering::SeqCst;
        use view_section::NodeKind;
        let generation = self.generation.load(SeqCst);
        let (kind, size, caching) = match path {
            "/" => (NodeKind::Directory, 0, view_section::Caching::Immutable),
            "/hello" => (
                NodeKind::File,
                fake_content(path, generation).len() as u64,
                view_section::Caching::Immutable,
            ),
            "/now" => (NodeKind::File, 0, view_section::Caching::Volatile),
            "/feed" => (NodeKind::Stream, 0, view_section::Caching::Volatile),
            _ => return Err(crate::fs_err!(ENOENT, "no such path")),
        };
        Ok(view_section::ViewAttrs {
            kind,
            size,
            mtime_ns: 1,
            perm: 0o644,
            writable: false,
            caching,
            owner: None,
        })
    }
}

impl view_section::Views for FakeViews {
    fn names(&self) -> Vec<Arc<str>> {
        vec!["fake".into()]
    }
    fn generation(&self, view: &str) -> Option<u64> {
        (view == "fake").then(|| self.generation.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn status(&self) -> Vec<view_section::ViewStatus> {
        vec![view_section::ViewStatus {
            name: "fake".into(),
            version: "1.0.0".into(),
            description: "a view in plain Rust".into(),
            generation: 7,
            origin: "core tests".into(),
            last_error: Some("read /now: it is too late".into()),
            faults: 2,
            idle_instances: 0,
        }]
    }
    fn getattr(
        &self,
        _: &Caller,
        at: &view_section::ViewPath,
    ) -> FsResult<view_section::ViewAttrs> {
        assert_eq!(&*at.view, "fake");
        self.attr(&at.path)
    }
    fn readdir(
        &self,
        _: &Caller,
        at: &view_section::ViewPath,
    ) -> FsResult<Arc<[view_section::ViewDirEntry]>> {
        let file = |name: &str| view_section::ViewDirEntry {
            name: name.into(),
            kind: view_section::NodeKind::File,
        };
        match &*at.path {
            "/" => Ok(Arc::from([file("hello"), file("now")])),
            _ => Err(crate::fs_err!(ENOTDIR, "not a directory")),
        }
    }
    fn readlink(&self, _: &Caller, _: &view_section::ViewPath) -> FsResult<String> {
        Err(crate::fs_err!(EINVAL, "not a symlink"))
    }
    fn create(
        &self,
        _: &Caller,
        _: &view_section::ViewPath,
        _: view_section::NodeKind,
    ) -> FsResult<view_section::ViewAttrs> {
        Err(crate::fs_err!(EROFS, "read-only"))
    }
    fn remove(&self, _: &Caller, _: &view_section::ViewPath, _: bool) -> FsResult<()> {
        Err(crate::fs_err!(EROFS, "read-only"))
    }
    fn open(
        &self,
        _: &Caller,
        at: &view_section::ViewPath,
        write: bool,
    ) -> FsResult<view_section::OpenedView> {
        if at.generation != self.generation.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::fs_err!(ESTALE, "that generation is gone"));
        }
        let attr = self.attr(&at.path)?;
        view_section::check_open(&attr, write)?;
        Ok(view_section::OpenedView {
            attr,
            mode: match &*at.path {
                "/feed" => view_section::OpenMode::Stream(0),
                _ => view_section::OpenMode::Plain,
            },
            version: Arc::new(FakeVersion {
                state: self.state.clone(),
                generation: at.generation,
            }),
        })
    }
}

impl view_section::ViewVersion for FakeVersion {
    fn read(&self, _: &Caller, path: &str, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        let data = fake_content(path, self.generation);
        let start = (offset as usize).min(data.len());
        Ok(data[start..(start + len as usize).min(data.len())].to_vec())
    }
    fn write(&self, _: &Caller, _: &str, _: u64, _: &[u8]) -> FsResult<u32> {
        Err(crate::fs_err!(EROFS, "read-only"))
    }
    fn next(&self, _: &Caller, _: &str, cursor: u64, _: u32) -> FsResult<view_section::Chunk> {
        use std::sync::atomic::Ordering::SeqCst;
        let upto = self.state.feed.load(SeqCst);
        let word = if self.state.feed_rewrites.load(SeqCst) {
            "LINE!"
        } else {
            "line"
        };
        let data: String = (cursor + 1..=upto)
            .map(|n| format!("{word} {n}\n"))
            .collect();
        Ok(view_section::Chunk {
            data: data.into_bytes(),
            cursor: upto.max(cursor),
            time_ns: upto as i64 * 1000,
            end: self.state.feed_ends.load(SeqCst),
        })
    }
}

/// A hot swap seen from the core: a file opened before it reads its own generation to
/// the end; a path looked up again is a new inode of the new generation; opening the
/// old inode once its generation is gone is ESTALE (the kernel then looks it up again).
#[test]
fn a_swapped_view_is_new_files_and_open_files_keep_their_version() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let views = Arc::new(FakeViews::default());
    fs.set_views(views.clone());
    let root = fs.lookup(&C, ROOT_INO, name("fake")).unwrap().attr.ino;
    let old = fs.lookup(&C, root, name("hello")).unwrap().attr;
    assert_eq!(old.size, 5);
    let o = fs.open(&C, old.ino, libc::O_RDONLY).unwrap();

    views.generation.store(2, SeqCst);
    assert_eq!(fs.read(&C, old.ino, o.fh, 0, 100).unwrap(), b"hello");
    let root2 = fs.lookup(&C, ROOT_INO, name("fake")).unwrap().attr.ino;
    assert_ne!(root2, root, "the view's root is a new directory");
    let new = fs.lookup(&C, root, name("hello")).unwrap().attr;
    assert_ne!(
        new.ino, old.ino,
        "looked up again, even in the old directory"
    );
    assert_eq!(new.size, 6);
    let n = fs.open(&C, new.ino, libc::O_RDONLY).unwrap();
    assert_eq!(fs.read(&C, new.ino, n.fh, 0, 100).unwrap(), b"HELLO!");
    assert_eq!(errno(fs.open(&C, old.ino, libc::O_RDONLY)), libc::ESTALE);
    // The file opened before the swap still reads its version.
    assert_eq!(fs.read(&C, old.ino, o.fh, 1, 100).unwrap(), b"ello");
    fs.release(&C, old.ino, o.fh).unwrap();
    fs.release(&C, new.ino, n.fh).unwrap();
}

#[test]
fn a_stream_is_an_append_only_log_file_that_grows() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let views = Arc::new(FakeViews::default());
    fs.set_views(views.clone());
    let v = fs.lookup(&C, ROOT_INO, name("fake")).unwrap().attr.ino;
    let entry = fs.lookup(&C, v, name("feed")).unwrap();
    let feed = entry.attr.ino;
    assert_eq!((entry.attr.kind, entry.attr.size), (FileKind::File, 0));
    assert_eq!(
        entry.attr_ttl,
        std::time::Duration::ZERO,
        "stat sees it grow"
    );
    let o = fs.open(&C, feed, libc::O_RDONLY).unwrap();
    assert!(o.direct_io && !o.keep_cache);
    // At the end: the read would block (the adapters park it).
    assert_eq!(errno(fs.read(&C, feed, o.fh, 0, 4096)), libc::EAGAIN);
    views.feed.store(3, SeqCst);
    let (attr, ttl) = fs.getattr(&C, feed, None).unwrap();
    assert_eq!(
        (attr.size, attr.mtime),
        (21, 3000),
        "three lines, the newest's time"
    );
    assert_eq!(ttl, std::time::Duration::ZERO);
    // Offsets are the log's: any reader, any order, the same bytes.
    assert_eq!(fs.read(&C, feed, o.fh, 7, 5).unwrap(), b"line ");
    assert_eq!(
        fs.read(&C, feed, o.fh, 0, 4096).unwrap(),
        b"line 1\nline 2\nline 3\n"
    );
    assert_eq!(fs.read(&C, feed, o.fh, 19, 4096).unwrap(), b"3\n");
    assert_eq!(errno(fs.read(&C, feed, o.fh, 21, 4096)), libc::EAGAIN);
    let o2 = fs.open(&C, feed, libc::O_RDONLY).unwrap();
    assert_eq!(fs.read(&C, feed, o2.fh, 14, 4096).unwrap(), b"line 3\n");
    // A read at the end takes what came since, without a stat first.
    views.feed.store(4, SeqCst);
    views.feed_ends.store(true, SeqCst);
    assert_eq!(fs.read(&C, feed, o.fh, 21, 4096).unwrap(), b"line 4\n");
    assert_eq!(
        fs.read(&C, feed, o.fh, 28, 4096).unwrap(),
        b"",
        "ended: EOF"
    );
    assert_eq!(fs.getattr(&C, feed, None).unwrap().0.size, 28);
    fs.release(&C, feed, o.fh).unwrap();
    fs.release(&C, feed, o2.fh).unwrap();
}

/// A view whose past renders differently from the first time is caught where the host
/// renders it again (an old part, out of the bytes it keeps): EIO, never other bytes.
#[test]
fn a_stream_whose_past_changes_answers_eio_not_other_bytes() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let views = Arc::new(FakeViews::default());
    fs.set_views(views.clone());
    let v = fs.lookup(&C, ROOT_INO, name("fake")).unwrap().attr.ino;
    let feed = fs.lookup(&C, v, name("feed")).unwrap().attr.ino;
    views.feed.store(200_000, SeqCst);
    let size = fs.getattr(&C, feed, None).unwrap().0.size;
    assert!(size > 2 * super::stream_log::WINDOW_BYTES as u64, "{size}");
    let o = fs.open(&C, feed, libc::O_RDONLY).unwrap();
    assert_eq!(fs.read(&C, feed, o.fh, 0, 14).unwrap(), b"line 1\nline 2\n");
    views.feed_rewrites.store(true, SeqCst);
    // The newest bytes are kept; the start was rendered again once and kept too.
    assert_eq!(
        fs.read(&C, feed, o.fh, size - 12, 12).unwrap(),
        b"line 200000\n"
    );
    assert_eq!(fs.read(&C, feed, o.fh, 7, 7).unwrap(), b"line 2\n");
    // Further on, it must be rendered again: the lengths disagree.
    let err = fs.read(&C, feed, o.fh, size / 2, 100).unwrap_err();
    assert_eq!(err.errno, libc::EIO);
    assert!(err.message.contains("not reproducible"), "{err}");
    fs.release(&C, feed, o.fh).unwrap();
}

use std::sync::Arc;

#[test]
fn views_appear_beside_current_read_only_with_their_caching() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    fs.set_views(Arc::new(FakeViews::default()));
    let root = fs.opendir(&C, ROOT_INO, 0).unwrap();
    let mut names = Vec::new();
    fs.readdir(&C, ROOT_INO, root.fh, 0, &mut |i| {
        names.push(i.name.to_string());
        true
    })
    .unwrap();
    assert_eq!(names, [".", "..", "current", "debug", "fake"]);

    let v = fs.lookup(&C, ROOT_INO, name("fake")).unwrap();
    assert!(view_section::is_view_ino(v.attr.ino));
    assert_eq!(v.attr.kind, FileKind::Dir);
    let hello = fs.lookup(&C, v.attr.ino, name("hello")).unwrap();
    assert_eq!(
        (hello.attr.size, hello.attr.perm),
        (5, 0o444),
        "read-only views lose write bits"
    );
    assert_eq!(hello.attr_ttl, view_section::Caching::Immutable.ttl());
    assert_eq!(errno(fs.lookup(&C, v.attr.ino, name("nope"))), libc::ENOENT);
    assert_eq!(
        fs.lookup(&C, v.attr.ino, name("hello")).unwrap().attr.ino,
        hello.attr.ino,
        "stable inode"
    );

    // The page cache is one sight's at a time: fresh at the first open, kept by the same
    // sight, read around (direct I/O) by another while the first has it open.
    let o = fs.open(&C, hello.attr.ino, libc::O_RDONLY).unwrap();
    assert!(!o.keep_cache && !o.direct_io, "fresh pages for the first");
    assert_eq!(fs.read(&C, hello.attr.ino, o.fh, 1, 10).unwrap(), b"ello");
    let again = fs.open(&C, hello.attr.ino, libc::O_RDONLY).unwrap();
    assert!(
        again.keep_cache && !again.direct_io,
        "the same sight keeps its pages"
    );
    let other = Caller {
        uid: 1001,
        gid: 1001,
        ..C
    };
    let around = fs.open(&other, hello.attr.ino, libc::O_RDONLY).unwrap();
    assert!(
        !around.keep_cache && around.direct_io,
        "another sight reads around them"
    );
    for (c, h) in [(&C, o.fh), (&C, again.fh), (&other, around.fh)] {
        fs.release(c, hello.attr.ino, h).unwrap();
    }
    let after = fs.open(&other, hello.attr.ino, libc::O_RDONLY).unwrap();
    assert!(
        !after.keep_cache && !after.direct_io,
        "all closed: the other's, afresh"
    );
    fs.release(&other, hello.attr.ino, after.fh).unwrap();
    let now = fs.lookup(&C, v.attr.ino, name("now")).unwrap();
    assert_eq!(now.attr_ttl, std::time::Duration::ZERO);
    assert!(
        fs.open(&C, now.attr.ino, libc::O_RDONLY).unwrap().direct_io,
        "volatile content bypasses the page cache"
    );

    assert_eq!(
        errno(fs.open(&C, hello.attr.ino, libc::O_WRONLY)),
        libc::EROFS
    );
    assert_eq!(
        errno(fs.create(&C, v.attr.ino, name("new"), 0o644, 0, libc::O_WRONLY)),
        libc::EROFS
    );
    assert_eq!(
        errno(fs.mkdir(&C, v.attr.ino, name("d"), 0o755, 0)),
        libc::EROFS
    );
    assert_eq!(errno(fs.unlink(&C, v.attr.ino, name("hello"))), libc::EROFS);
    assert_eq!(
        errno(fs.setattr(
            &C,
            hello.attr.ino,
            SetAttr {
                mode: Some(0o600),
                ..Default::default()
            }
        )),
        libc::EROFS
    );
    put(&fs, CURRENT_INO, "f", b"x");
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("f"), v.attr.ino, name("f"), 0)),
        libc::EXDEV
    );
    assert_eq!(errno(fs.rmdir(&C, ROOT_INO, name("fake"))), libc::EACCES);

    let d = fs.opendir(&C, v.attr.ino, 0).unwrap();
    let mut listed = Vec::new();
    fs.readdirplus(&C, v.attr.ino, d.fh, 0, &mut |i, e| {
        listed.push((i.name.to_string(), i.ino == e.attr.ino));
        true
    })
    .unwrap();
    assert_eq!(
        listed.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
        [".", "..", "hello", "now"]
    );
    assert!(
        listed[2..].iter().all(|l| l.1),
        "readdirplus entries carry their own inode"
    );
}

#[test]
fn view_events_are_logged_kept_and_leave_the_tree_alone() {
    use crate::store::{Change, History};
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    put(&fs, CURRENT_INO, "a.rs", b"fn main() {}\n");
    let before = snapshot(&fs);
    let h = History::new(fs.store().clone());
    let note = Change::View {
        view: "shadows".into(),
        op: "annotate".into(),
        path: "/a.rs".into(),
        body: r#"{"kind":"comment","text":"hi"}"#.into(),
    };
    let seq = h.append_view_event(&C, None, note.clone()).unwrap();
    assert_eq!(seq, fs.store().head());
    // Seen at once (still queued) and after the commit, with its filter.
    let only = |ops: &[&str]| -> Vec<String> { ops.iter().map(|s| s.to_string()).collect() };
    let seen = h
        .events(0, 10, Some("/a.rs"), &only(&["annotate"]))
        .unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].change, note);
    fs.store().wait_durable(seq).unwrap();
    let seen = h
        .events(0, 10, Some("/a.rs"), &only(&["annotate"]))
        .unwrap();
    assert_eq!((seen[0].seq, &seen[0].change), (seq, &note));
    assert_eq!(seen[0].caller, C);
    assert_eq!(h.list_at("/", seq).unwrap().len(), 1);
    drop(h);
    fs.shutdown();
    drop(fs);

    // Replayed at the next mount: the tree is what it was, the event is still there.
    let fs = open_fs(dir.path());
    assert_eq!(snapshot(&fs), before);
    let h = History::new(fs.store().clone());
    let all = h.events(0, 10, None, &[]).unwrap();
    assert_eq!(all.last().unwrap().change, note);
    fs.shutdown();
}

/// A store holding file `/a` (b"x"), then made older by `downgrade` (SQL on its log).
fn old_format_store(downgrade: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    put(&fs, CURRENT_INO, "a", b"x");
    fs.shutdown();
    drop(fs);
    let db = rusqlite::Connection::open(dir.path().join("events.db")).unwrap();
    db.execute_batch(downgrade).unwrap();
    dir
}

#[test]
fn a_format_1_store_is_upgraded_when_opened_to_write() {
    // A format-1 store: no view columns, the old mark.
    let dir = old_format_store(
        "ALTER TABLE events DROP COLUMN view; ALTER TABLE events DROP COLUMN body;
         ALTER TABLE events DROP COLUMN value;
         UPDATE meta SET value = 'lighthouse-fs/1' WHERE key = 'format';",
    );
    let err = StoreReader::open(dir.path()).err().expect("refused");
    assert!(format!("{err:#}").contains("mount it once"), "{err:#}");
    let fs = open_fs(dir.path());
    assert_eq!(get(&fs, lookup(&fs, CURRENT_INO, "a").unwrap().ino), b"x");
    fs.shutdown();
    drop(fs);
    assert!(StoreReader::open(dir.path()).is_ok());
}

#[test]
fn a_format_2_store_is_read_as_it_is_and_upgraded_when_opened_to_write() {
    // A format-2 store: no value column, the old mark.
    let dir = old_format_store(
        "ALTER TABLE events DROP COLUMN value;
         UPDATE meta SET value = 'lighthouse-fs/2' WHERE key = 'format';",
    );
    // Read (export, log) without being upgraded: the file is left as it was.
    let before = std::fs::read(dir.path().join("events.db")).unwrap();
    let reader = StoreReader::open(dir.path()).unwrap();
    let tree = reader.tree_at(None).unwrap();
    assert!(tree.resolve("/a").is_ok());
    drop(reader);
    assert_eq!(std::fs::read(dir.path().join("events.db")).unwrap(), before);
    // Opened to write: upgraded in place, and attributes are recorded from then on.
    let fs = open_fs(dir.path());
    let a = lookup(&fs, CURRENT_INO, "a").unwrap().ino;
    fs.setxattr(&C, a, name("user.k"), b"\0\xffv", 0).unwrap();
    fs.shutdown();
    drop(fs);
    let fs = open_fs(dir.path());
    let a = lookup(&fs, CURRENT_INO, "a").unwrap().ino;
    assert_eq!(
        fs.getxattr(&C, a, name("user.k"), 64).unwrap(),
        XattrReply::Data(b"\0\xffv".to_vec())
    );
    fs.shutdown();
}

#[test]
fn readdirplus_of_the_root_lists_the_views_too() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    fs.set_views(Arc::new(FakeViews::default()));
    let root = fs.opendir(&C, ROOT_INO, 0).unwrap();
    let mut listed = Vec::new();
    fs.readdirplus(&C, ROOT_INO, root.fh, 0, &mut |i, e| {
        listed.push((i.name.to_string(), i.ino == e.attr.ino, e.attr.kind));
        true
    })
    .unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        names,
        [".", "..", "current", "debug", "fake"],
        "as readdir lists them"
    );
    assert!(listed.iter().all(|l| l.1 && l.2 == FileKind::Dir));
    let fake = fs.lookup(&C, ROOT_INO, name("fake")).unwrap();
    assert_eq!(fake.attr_ttl, FsConfig::default().attr_ttl);
}

#[test]
fn the_store_reports_how_far_the_log_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let before = fs.store().durable();
    assert_eq!(
        (before.seq, before.commits, before.last_commit_ns),
        (0, 0, None)
    );
    put(&fs, CURRENT_INO, "f", b"x");
    let head = fs.store().head();
    fs.fsyncdir(&C, CURRENT_INO, 0, false).unwrap();
    let after = fs.store().durable();
    assert_eq!(after.seq, head);
    assert!(after.commits >= 1 && after.last_commit_ns.is_some());
}

/// `debug/` without FUSE: a document of a file, parsed.
fn debug_doc(fs: &Fs, file: &str) -> serde_json::Value {
    let dir = fs.lookup(&C, ROOT_INO, name("debug")).unwrap().attr.ino;
    let ino = fs.lookup(&C, dir, name(file)).unwrap().attr.ino;
    assert_ne!(ino, 0, "{file} exists");
    let o = fs.open(&C, ino, libc::O_RDONLY).unwrap();
    // In small chunks: one document, rendered at open.
    let mut bytes = Vec::new();
    loop {
        let chunk = fs.read(&C, ino, o.fh, bytes.len() as u64, 7).unwrap();
        if chunk.is_empty() {
            break;
        }
        bytes.extend(chunk);
    }
    fs.release(&C, ino, o.fh).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'), "{file} ends with a newline");
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{file} is JSON: {e}"))
}

#[test]
fn debug_is_a_read_only_section_of_fresh_documents() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    fs.set_views(Arc::new(FakeViews::default()));
    let d = fs.lookup(&C, ROOT_INO, name("debug")).unwrap();
    assert_eq!((d.attr.kind, d.attr.perm), (FileKind::Dir, 0o555));
    let dino = d.attr.ino;
    assert!(!view_section::is_view_ino(dino));

    // The listing, plain and plus, and the attributes of the files.
    let o = fs.opendir(&C, dino, 0).unwrap();
    assert!(o.cache_dir, "the names of debug/ never change");
    let mut listed = Vec::new();
    fs.readdirplus(&C, dino, o.fh, 0, &mut |i, e| {
        listed.push((i.name.to_string(), e.attr));
        true
    })
    .unwrap();
    fs.releasedir(&C, dino, o.fh).unwrap();
    let names: Vec<&str> = listed.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        names,
        [
            ".",
            "..",
            "health.json",
            "performance.json",
            "cache_stats.json",
            "views.json"
        ]
    );
    for (n, a) in &listed[2..] {
        assert_eq!((a.kind, a.perm), (FileKind::File, 0o444), "{n}");
        assert!(a.size > 2, "{n}: the size of a fresh render");
        let e = fs.lookup(&C, dino, name(n)).unwrap();
        assert_eq!(e.attr.ino, a.ino, "{n}: stable inode");
        assert_eq!(
            e.attr_ttl,
            std::time::Duration::ZERO,
            "{n}: attributes are never cached"
        );
        assert_eq!(
            fs.getattr(&C, a.ino, None).unwrap().1,
            std::time::Duration::ZERO
        );
    }
    assert_eq!(lookup(&fs, dino, "nope.json"), None, "a negative entry");

    // Read-only, in every way; EXDEV between sections.
    let health = lookup(&fs, dino, "health.json").unwrap().ino;
    let opened = fs.open(&C, health, libc::O_RDONLY).unwrap();
    assert!(
        opened.direct_io && !opened.keep_cache,
        "never from the page cache"
    );
    let held = fs.read(&C, health, opened.fh, 0, 1 << 20).unwrap();
    // Ten events: head_seq gains a digit, so the document grows.
    for i in 0..5 {
        put(&fs, CURRENT_INO, &format!("n{i}"), b"changes the document");
    }
    assert_eq!(
        fs.getattr(&C, health, Some(opened.fh)).unwrap().0.size,
        held.len() as u64,
        "fstat gives the size of the handle's document"
    );
    assert_ne!(
        fs.getattr(&C, health, None).unwrap().0.size,
        held.len() as u64,
        "stat gives the size of a fresh one"
    );
    fs.flush(&C, health, opened.fh).unwrap();
    fs.fsync(&C, health, opened.fh, false).unwrap();
    fs.release(&C, health, opened.fh).unwrap();
    assert_eq!(errno(fs.open(&C, health, libc::O_WRONLY)), libc::EROFS);
    assert_eq!(errno(fs.open(&C, health, libc::O_RDWR)), libc::EROFS);
    assert_eq!(errno(fs.open(&C, dino, libc::O_RDONLY)), libc::EISDIR);
    assert_eq!(
        errno(fs.create(&C, dino, name("new"), 0o644, 0, libc::O_WRONLY)),
        libc::EROFS
    );
    assert_eq!(errno(fs.mkdir(&C, dino, name("d"), 0o755, 0)), libc::EROFS);
    assert_eq!(
        errno(fs.symlink(&C, dino, name("s"), name("x"))),
        libc::EROFS
    );
    assert_eq!(errno(fs.unlink(&C, dino, name("health.json"))), libc::EROFS);
    assert_eq!(
        errno(fs.setattr(
            &C,
            health,
            SetAttr {
                size: Some(0),
                ..Default::default()
            }
        )),
        libc::EROFS
    );
    assert_eq!(errno(fs.readlink(&C, health)), libc::EINVAL);
    assert_eq!(errno(fs.access(&C, health, libc::W_OK)), libc::EROFS);
    fs.access(&C, health, libc::R_OK).unwrap();
    put(&fs, CURRENT_INO, "f", b"x");
    assert_eq!(
        errno(fs.rename(&C, CURRENT_INO, name("f"), dino, name("f"), 0)),
        libc::EXDEV
    );
    assert_eq!(
        errno(fs.rename(&C, dino, name("views.json"), CURRENT_INO, name("v"), 0)),
        libc::EXDEV
    );
    assert_eq!(
        errno(fs.rename(&C, dino, name("views.json"), dino, name("v"), 0)),
        libc::EROFS
    );
    let f = lookup(&fs, CURRENT_INO, "f").unwrap().ino;
    assert_eq!(errno(fs.link(&C, f, dino, name("l"))), libc::EXDEV);
    assert_eq!(
        errno(fs.link(&C, health, CURRENT_INO, name("l"))),
        libc::EXDEV
    );
    assert_eq!(errno(fs.rmdir(&C, ROOT_INO, name("debug"))), libc::EACCES);
    fs.forget(dino, 1); // nothing to forget, nothing breaks
    fs.forget(health, 1);

    // Fresh on every open: health follows the log, performance the recorded requests.
    fs.fsyncdir(&C, CURRENT_INO, 0, false).unwrap();
    let h = debug_doc(&fs, "health.json");
    assert_eq!(h["status"], "degraded", "the fake view has faults: {h}");
    assert_eq!(h["store"]["head_seq"], fs.store().head());
    assert_eq!(h["store"]["durable_seq"], fs.store().head());
    assert_eq!(h["store"]["pending_commit"], 0);
    assert!(h["problems"][0].as_str().unwrap().contains("view fake"));
    assert_eq!(
        (&h["views"]["loaded"], &h["views"]["with_faults"]),
        (&1.into(), &1.into())
    );
    assert!(h["backend"].is_null(), "not mounted");
    put(&fs, CURRENT_INO, "g", b"y");
    fs.fsyncdir(&C, CURRENT_INO, 0, false).unwrap();
    let h2 = debug_doc(&fs, "health.json");
    assert_eq!(
        h2["store"]["head_seq"],
        h["store"]["head_seq"].as_u64().unwrap() + 2
    );

    let mount = fs.add_mount(MountInfo::new("fuser", "/mnt".into()));
    let p = debug_doc(&fs, "performance.json");
    assert_eq!(p["backend"], "fuser");
    assert_eq!(p["ops"]["read"]["count"], 0);
    for _ in 0..5 {
        mount.stats.record(
            crate::core::SectionId::CURRENT,
            Op::Read,
            std::time::Duration::from_micros(20),
            None,
        );
    }
    mount.stats.record(
        crate::core::SectionId::DEBUG,
        Op::Read,
        std::time::Duration::from_micros(20),
        Some(libc::EIO),
    );
    let p = debug_doc(&fs, "performance.json");
    let read = &p["ops"]["read"];
    assert_eq!((&read["count"], &read["errors"]), (&6.into(), &1.into()));
    assert_eq!(read["errnos"]["EIO"], 1);
    assert!(read["p50_us"].as_f64().unwrap() >= 20.0);
    assert_eq!(p["requests"], 6);

    let v = debug_doc(&fs, "views.json");
    assert_eq!(v["views"]["fake"]["generation"], 7);
    assert_eq!(v["views"]["fake"]["faults"], 2);

    let c = debug_doc(&fs, "cache_stats.json");
    assert_eq!(c["kernel"]["entry_ttl_s"], 10.0);
    assert!(c["kernel"]["negative_entries_served"].as_u64().unwrap() >= 1);
    assert!(c["kernel"]["file_opens"]["direct_io"].as_u64().unwrap() >= 5);
    assert_eq!(c["inodes"]["files"], 7);
    assert_eq!(
        c["handles"]["debug"], 0,
        "rendered before its own handle exists"
    );
}

#[test]
fn closed_files_hold_no_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    // Warm up whatever the store opens once.
    let first = put(&fs, CURRENT_INO, "warm", b"x");
    assert_eq!(get(&fs, first), b"x");
    let before = fds();
    for i in 0..200 {
        let ino = put(&fs, CURRENT_INO, &format!("f{i}"), b"content");
        assert_eq!(get(&fs, ino), b"content");
    }
    let after = fds();
    // Other tests run in this process too: allow their noise, not one fd per file.
    assert!(
        after < before + 50,
        "{before} -> {after} descriptors after 200 files"
    );
    fs.shutdown();
}

/// A kernel that writes down what it is told to forget.
#[derive(Default)]
struct Told(parking_lot::Mutex<Vec<Stale>>);

impl KernelCache for Told {
    fn forget_entry(&self, parent: Ino, name: &str) -> std::io::Result<()> {
        self.0.lock().push(Stale::Entry {
            parent,
            name: name.into(),
        });
        Ok(())
    }
    fn forget_inode(&self, ino: Ino, offset: i64, len: i64) -> std::io::Result<()> {
        self.0.lock().push(Stale::Inode { ino, offset, len });
        Ok(())
    }
}

#[test]
fn changes_through_one_mount_are_told_to_the_others_only() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let kernels: Vec<(Arc<Mount>, Arc<Told>)> = ["fuser", "fuse3"]
        .into_iter()
        .map(|backend| {
            let mount = fs.add_mount(MountInfo::new(backend, format!("/{backend}").into()));
            let told = Arc::new(Told::default());
            mount.set_kernel_cache(told.clone());
            (mount, told)
        })
        .collect();
    let through = |i: usize| Caller {
        mount: kernels[i].0.id,
        ..C
    };
    let take = |i: usize| std::mem::take(&mut *kernels[i].1 .0.lock());

    // A create through the first mount: the second forgets the name and the listing.
    let (e, o) = fs
        .create(&through(0), CURRENT_INO, name("f"), 0o644, 0, libc::O_RDWR)
        .unwrap();
    let f = e.attr.ino;
    assert_eq!(take(0), []);
    assert_eq!(take(1), Stale::name(CURRENT_INO, "f"));
    // A write: the bytes it covers (and the attributes).
    fs.write(&through(0), f, o.fh, 10, b"abc").unwrap();
    assert_eq!(
        take(1),
        [Stale::Inode {
            ino: f,
            offset: 10,
            len: 3
        }]
    );
    fs.release(&through(0), f, o.fh).unwrap();
    assert_eq!(take(1), [], "a close changes nothing another kernel holds");
    // Through the second mount now: the first is told, the second is not.
    fs.link(&through(1), f, CURRENT_INO, name("g")).unwrap();
    let mut want: Vec<Stale> = Stale::name(CURRENT_INO, "g").into();
    want.push(Stale::attrs(f));
    assert_eq!((take(0), take(1)), (want, vec![]));
    fs.rename(
        &through(1),
        CURRENT_INO,
        name("g"),
        CURRENT_INO,
        name("f"),
        0,
    )
    .unwrap();
    let mut want: Vec<Stale> = Stale::name(CURRENT_INO, "g").into();
    want.push(Stale::Entry {
        parent: CURRENT_INO,
        name: "f".into(),
    });
    want.extend([Stale::attrs(f), Stale::attrs(f)]);
    assert_eq!(take(0), want);
    fs.unlink(&through(1), CURRENT_INO, name("f")).unwrap();
    let mut want: Vec<Stale> = Stale::name(CURRENT_INO, "f").into();
    want.push(Stale::attrs(f));
    assert_eq!(take(0), want);
    assert_eq!(take(1), []);
    // Counted per mount.
    assert_eq!(kernels[1].0.notify_counts().sent, 3);
    assert_eq!(kernels[0].0.notify_counts().sent, 4 + 4 + 3);

    // Alone, a mount is told nothing of its own changes; of the host's, it is.
    fs.remove_mount(kernels[1].0.id);
    assert_eq!(fs.mounts().len(), 1);
    fs.mkdir(&through(0), CURRENT_INO, name("solo"), 0o755, 0)
        .unwrap();
    assert_eq!(take(0), []);
    fs.mkdir(&Caller::HOST, CURRENT_INO, name("host"), 0o755, 0)
        .unwrap();
    assert_eq!(take(0), Stale::name(CURRENT_INO, "host"));
}

#[test]
fn extended_attributes_follow_the_syscalls_errnos_and_the_inode() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let f = put(&fs, CURRENT_INO, "f", b"x");
    let root = Caller { uid: 0, ..C };
    let data = |r: FsResult<XattrReply>| match r.unwrap() {
        XattrReply::Data(d) => d,
        other => panic!("{other:?}"),
    };
    // None yet: ENODATA, an empty list (size 0 asks the size).
    assert_eq!(errno(fs.getxattr(&C, f, name("user.a"), 0)), libc::ENODATA);
    assert_eq!(fs.listxattr(&C, f, 0).unwrap(), XattrReply::Size(0));
    fs.setxattr(&C, f, name("user.a"), b"one", 0).unwrap();
    assert_eq!(
        fs.getxattr(&C, f, name("user.a"), 0).unwrap(),
        XattrReply::Size(3)
    );
    assert_eq!(errno(fs.getxattr(&C, f, name("user.a"), 2)), libc::ERANGE);
    assert_eq!(data(fs.getxattr(&C, f, name("user.a"), 3)), b"one");
    // XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one, both flags.
    assert_eq!(
        errno(fs.setxattr(&C, f, name("user.a"), b"2", libc::XATTR_CREATE)),
        libc::EEXIST
    );
    assert_eq!(
        errno(fs.setxattr(&C, f, name("user.b"), b"2", libc::XATTR_REPLACE)),
        libc::ENODATA
    );
    assert_eq!(
        errno(fs.setxattr(&C, f, name("user.b"), b"2", 7)),
        libc::EINVAL
    );
    fs.setxattr(&C, f, name("user.a"), b"", libc::XATTR_REPLACE)
        .unwrap();
    assert_eq!(
        data(fs.getxattr(&C, f, name("user.a"), 10)),
        b"",
        "an empty value"
    );
    // Limits: the name (ERANGE), the value (E2BIG); namespaces.
    let long = format!("user.{}", "n".repeat(251));
    assert_eq!(
        errno(fs.setxattr(&C, f, name(&long), b"v", 0)),
        libc::ERANGE
    );
    assert_eq!(
        errno(fs.setxattr(&C, f, name("user.big"), &[0; 65537], 0)),
        libc::E2BIG
    );
    fs.setxattr(&C, f, name("user.max"), &[7; 65536], 0)
        .unwrap();
    assert_eq!(
        errno(fs.setxattr(&C, f, name("system.posix_acl_access"), b"v", 0)),
        libc::EOPNOTSUPP
    );
    assert_eq!(
        errno(fs.getxattr(&C, f, name("system.posix_acl_access"), 0)),
        libc::EOPNOTSUPP
    );
    assert_eq!(
        errno(fs.setxattr(&C, f, name("other.x"), b"v", 0)),
        libc::EOPNOTSUPP
    );
    assert_eq!(
        errno(fs.setxattr(&C, f, name("user."), b"v", 0)),
        libc::EINVAL
    );
    // trusted.* is root's: others get EPERM to set, ENODATA to get, and do not see it.
    assert_eq!(
        errno(fs.setxattr(&C, f, name("trusted.t"), b"v", 0)),
        libc::EPERM
    );
    fs.setxattr(&root, f, name("trusted.t"), b"v", 0).unwrap();
    assert_eq!(
        errno(fs.getxattr(&C, f, name("trusted.t"), 0)),
        libc::ENODATA
    );
    assert_eq!(data(fs.listxattr(&C, f, 100)), b"user.a\0user.max\0");
    assert_eq!(
        data(fs.listxattr(&root, f, 100)),
        b"trusted.t\0user.a\0user.max\0"
    );
    assert_eq!(errno(fs.listxattr(&root, f, 5)), libc::ERANGE);
    // user.* only on files and directories.
    let l = fs
        .symlink(&C, CURRENT_INO, name("l"), name("f"))
        .unwrap()
        .attr
        .ino;
    assert_eq!(
        errno(fs.setxattr(&C, l, name("user.a"), b"v", 0)),
        libc::EPERM
    );
    fs.setxattr(&root, l, name("trusted.t"), b"on a link", 0)
        .unwrap();
    // Views, debug/ and the mount root have none.
    assert_eq!(
        errno(fs.getxattr(&C, ROOT_INO, name("user.a"), 0)),
        libc::ENODATA
    );
    assert_eq!(fs.listxattr(&C, ROOT_INO, 0).unwrap(), XattrReply::Size(0));
    assert_eq!(
        errno(fs.setxattr(&C, ROOT_INO, name("user.a"), b"v", 0)),
        libc::EOPNOTSUPP
    );
    // They belong to the inode: a hard link and a rename carry them.
    fs.link(&C, f, CURRENT_INO, name("g")).unwrap();
    fs.rename(&C, CURRENT_INO, name("f"), CURRENT_INO, name("h"), 0)
        .unwrap();
    fs.removexattr(&C, f, name("user.max")).unwrap();
    assert_eq!(
        errno(fs.removexattr(&C, f, name("user.max"))),
        libc::ENODATA
    );
    fs.shutdown();
    drop(fs);
    // Replayed at the next open.
    let fs = open_fs(dir.path());
    let g = lookup(&fs, CURRENT_INO, "g").unwrap().ino;
    assert_eq!(lookup(&fs, CURRENT_INO, "h").unwrap().ino, g);
    assert_eq!(data(fs.listxattr(&root, g, 100)), b"trusted.t\0user.a\0");
    assert_eq!(data(fs.getxattr(&root, g, name("trusted.t"), 10)), b"v");
    let l = lookup(&fs, CURRENT_INO, "l").unwrap().ino;
    assert_eq!(
        data(fs.getxattr(&root, l, name("trusted.t"), 10)),
        b"on a link"
    );
    fs.shutdown();
}

/// View paths are numbered while the kernel (or an open file, or a listing) refers to
/// them: LOOKUP and READDIRPLUS entries but "." and ".." count one reference each,
/// FORGET drops them, and at zero the path is forgotten. A number the kernel still
/// holds always reaches its path; a path looked up again after it was forgotten gets a
/// new number. A hot swap tells the kernel to forget exactly the names it may hold.
#[test]
fn view_paths_live_as_long_as_the_kernel_refers_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let fs = open_fs(dir.path());
    let views = Arc::new(FakeViews::default());
    fs.set_views(views.clone());
    let paths = || fs.view_inodes.len();

    let root = fs.lookup(&C, ROOT_INO, name("fake")).unwrap().attr.ino;
    let hello = fs.lookup(&C, root, name("hello")).unwrap().attr.ino;
    assert_eq!(errno(fs.lookup(&C, root, name("nope"))), libc::ENOENT);
    assert_eq!(paths(), 2, "a failed lookup numbers nothing");

    // A listing holds what it names while it is read; the kernel takes a reference for
    // each READDIRPLUS entry it accepts, but "." and "..".
    let d = fs.opendir(&C, root, 0).unwrap();
    let mut accepted = Vec::new();
    fs.readdirplus(&C, root, d.fh, 0, &mut |item, e| {
        if accepted.len() == 3 {
            return false; // the reply is full: "now" is not handed out
        }
        accepted.push((item.name.to_string(), e.attr.ino));
        true
    })
    .unwrap();
    assert_eq!(accepted[2], ("hello".to_string(), hello));
    assert_eq!(paths(), 3, "the listing holds \"now\" for its next page");
    fs.releasedir(&C, root, d.fh).unwrap();
    assert_eq!(paths(), 2, "\"now\" goes with the listing");

    // hello: one LOOKUP and one READDIRPLUS entry.
    fs.forget(hello, 1);
    assert_eq!(
        get(&fs, hello),
        b"hello",
        "still referenced once: never ESTALE"
    );
    let o = fs.open(&C, hello, libc::O_RDONLY).unwrap();
    fs.forget(hello, 1);
    assert_eq!(
        fs.read(&C, hello, o.fh, 0, 10).unwrap(),
        b"hello",
        "an open file holds its path"
    );
    assert_eq!(paths(), 2);
    fs.release(&C, hello, o.fh).unwrap();
    assert_eq!(paths(), 1, "forgotten once unreferenced");
    assert_eq!(errno(fs.open(&C, hello, libc::O_RDONLY)), libc::ESTALE);
    let again = fs.lookup(&C, root, name("hello")).unwrap().attr.ino;
    assert!(again > hello, "a new number, never a reused one");

    // The root's READDIRPLUS counts the views' directories like their lookups.
    let r = fs.opendir(&C, ROOT_INO, 0).unwrap();
    fs.readdirplus(&C, ROOT_INO, r.fh, 0, &mut |_, _| true)
        .unwrap();
    fs.releasedir(&C, ROOT_INO, r.fh).unwrap();
    fs.forget(root, 1);
    assert_eq!(fs.lookup(&C, root, name("now")).unwrap().attr.size, 0);

    // A hot swap: the kernel is told to forget the names it may hold, under the
    // directories it holds.
    let mount = fs.add_mount(MountInfo::new("fuser", "/m".into()));
    let told = Arc::new(Told::default());
    mount.set_kernel_cache(told.clone());
    let now = fs.lookup(&C, root, name("now")).unwrap().attr.ino;
    fs.forget(now, 2); // both lookups of it: the kernel holds it no more
    views
        .generation
        .store(2, std::sync::atomic::Ordering::SeqCst);
    fs.forget_view("fake");
    let mut got = std::mem::take(&mut *told.0.lock());
    got.sort_by_key(|s| format!("{s:?}"));
    let entry = |parent, name: &str| Stale::Entry {
        parent,
        name: name.into(),
    };
    assert_eq!(got, [entry(ROOT_INO, "fake"), entry(root, "hello")]);

    // Every reference forgotten: nothing is left.
    fs.forget(again, 1);
    fs.forget(root, 1);
    assert_eq!(paths(), 0);
}
