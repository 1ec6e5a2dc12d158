//! Persistence through the store, on both backends: remount keeps the tree exactly, a
//! `kill -9` keeps every fsync'd file and a prefix of the log, and the offline commands
//! (`import`, `export [--at]`, `log --json`) agree with what the mount showed.

#[macro_use]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{symlink, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::json::Value;
use common::*;

/// Everything the contract keeps, except owners (export does not promise them).
const NO_OWNERS: SnapOpts = SnapOpts {
    mtimes: true,
    dir_mtimes: true,
    owners: false,
    content: true,
    perm_mask: 0o7777,
};

/// A tree with every kind of thing the store has to keep.
fn build_rich_tree(c: &Path) {
    let p = |s: &str| c.join(s);
    fs::create_dir_all(p("docs/deep/er")).unwrap();
    fs::create_dir(p("empty")).unwrap();
    fs::create_dir(p("private")).unwrap();
    fs::write(p("zero"), b"").unwrap();
    fs::write(p("one"), b"1").unwrap();
    for n in [4095usize, 4096, 4097] {
        fs::write(p(&format!("docs/p{n}")), pattern(n as u64, n)).unwrap();
    }
    fs::write(p("docs/deep/er/big"), pattern(1, 1 << 20)).unwrap();
    {
        let mut f = File::create(p("bin")).unwrap();
        for chunk in pattern(2, 3 * (1 << 20) + 7).chunks(70_000) {
            f.write_all(chunk).unwrap();
        }
    }
    fs::write(p("private/key"), b"secret").unwrap();
    chmod(&p("private/key"), 0o600).unwrap();
    chmod(&p("private"), 0o700).unwrap();
    chmod(&p("bin"), 0o755).unwrap();
    chmod(&p("docs/p4095"), 0o444).unwrap();
    chmod(&p("one"), 0o000).unwrap();
    fs::write(p("owned"), b"owned by 1234").unwrap();
    lchown(&p("owned"), 1234, 5678).unwrap();
    symlink("docs/p4096", p("link-rel")).unwrap();
    symlink("nowhere/x", p("dangling")).unwrap();
    symlink("../..", p("docs/deep/up")).unwrap();
    lchown(&p("dangling"), 42, 43).unwrap();
    fs::hard_link(p("docs/p4096"), p("hard")).unwrap();
    fs::hard_link(p("docs/p4096"), p("docs/deep/hard2")).unwrap();
    fs::write(p("tmp"), b"renamed content").unwrap();
    fs::rename(p("tmp"), p("docs/renamed")).unwrap();
    fs::write(p("gone"), b"deleted").unwrap();
    fs::remove_file(p("gone")).unwrap();
    fs::write(p("trunc"), pattern(3, 10_000)).unwrap();
    truncate(&p("trunc"), 1234).unwrap();
    File::create(p("sparse"))
        .unwrap()
        .write_all_at(b"end", 10 << 20)
        .unwrap();
    fs::write(p("overwritten"), b"version one, long").unwrap();
    OpenOptions::new()
        .write(true)
        .open(p("overwritten"))
        .unwrap()
        .write_all_at(b"TWO", 8)
        .unwrap();
    mknod(&p("made-by-mknod"), libc::S_IFREG | 0o644, 0).unwrap();
    // Explicit times last (later entry changes would move directory mtimes).
    utimensat(
        &p("one"),
        (1_000_000_000, 1),
        (1_234_567_890, 123_456_789),
        0,
    )
    .unwrap();
    utimensat(
        &p("docs/deep/er/big"),
        (5, 0),
        (1_700_000_000, 999_999_999),
        0,
    )
    .unwrap();
    utimensat(&p("empty"), (5, 0), (1_100_000_000, 7), 0).unwrap();
}

both_backends! {
    #[timeout_secs(300)]
    fn remount_keeps_everything(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        build_rich_tree(&m.current());
        let before = snapshot(&m.current(), SnapOpts::FULL);
        assert_eq!(before.len(), 24, "entries of the rich tree");
        assert_eq!(before["hard"].link_group.as_ref().map(Vec::len), Some(3), "three hard links");
        assert_eq!(before["owned"].owner, Some((1234, 5678)));
        assert_eq!(before["one"].mtime, Some((1_234_567_890, 123_456_789)));
        m.stop();

        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::FULL), &before, &format!("[{backend}] after remount"));
        m.stop();

        // The store is the same for the other backend.
        let other = backend.other();
        let m = Mount::start(other, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::FULL), &before, &format!("[{backend}] remounted with {other}"));
        // Changes made now persist too.
        fs::write(m.path("after"), b"later").unwrap();
        fs::remove_file(m.path("docs/renamed")).unwrap();
        let after = snapshot(&m.current(), SnapOpts::FULL);
        m.stop();
        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::FULL), &after, &format!("[{backend}] second remount"));
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// kill -9 in the middle of a workload
// ---------------------------------------------------------------------------------------

fn sync_content(i: usize) -> Vec<u8> {
    pattern(10_000 + i as u64, 1 + (i * 7919) % 32_768)
}

fn nosync_content(i: usize) -> Vec<u8> {
    pattern(20_000 + i as u64, 1 + (i * 104_729) % 16_384)
}

/// The files `prefix{i}` of `dir` must be a prefix of the writer's sequence of
/// (create, write) events: files 0..k complete, file k complete or empty, nothing after,
/// and no file torn. Returns the number of complete files.
fn assert_log_prefix(dir: &Path, prefix: &str, content: fn(usize) -> Vec<u8>, ctx: &str) -> usize {
    let mut present: Vec<usize> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_prefix(prefix)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{ctx}: unexpected entry {n} in {}", dir.display()))
        })
        .collect();
    present.sort_unstable();
    let Some(&last) = present.last() else {
        return 0;
    };
    assert_eq!(
        present,
        (0..=last).collect::<Vec<_>>(),
        "{ctx}: files in {} are not a prefix",
        dir.display()
    );
    let mut complete = 0;
    for i in 0..=last {
        let got = fs::read(dir.join(format!("{prefix}{i}"))).unwrap();
        if got == content(i) {
            complete += 1;
            continue;
        }
        assert!(
            i == last,
            "{ctx}: {prefix}{i} is incomplete ({} bytes) but later files exist",
            got.len()
        );
        assert!(
            got.is_empty(),
            "{ctx}: {prefix}{i} is torn: {} bytes, want 0 or {}",
            got.len(),
            content(i).len()
        );
    }
    complete
}

both_backends! {
    #[timeout_secs(300)]
    fn kill9_keeps_fsynced_files(backend: Backend) {
        const KILL_AFTER: usize = 150;
        const PLAIN_MAX: usize = 5_000;
        let (_t, store) = fresh_store();
        let mut m = Mount::start(backend, &store);
        let c = m.current();
        fs::create_dir(c.join("sync")).unwrap();
        fs::create_dir(c.join("nosync")).unwrap();
        let synced = Arc::new(Mutex::new(Vec::<usize>::new()));
        let nosync_done = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));

        let fsync_writer = {
            let (c, synced, finished) = (c.clone(), synced.clone(), finished.clone());
            std::thread::spawn(move || -> io::Error {
                for i in 0.. {
                    let r = (|| {
                        let mut f = File::create(c.join(format!("sync/f{i}")))?;
                        f.write_all(&sync_content(i))?;
                        f.sync_all()?;
                        synced.lock().unwrap().push(i);
                        drop(f);
                        Ok::<_, io::Error>(())
                    })();
                    if let Err(e) = r {
                        return e;
                    }
                    if i > 100_000 {
                        break;
                    }
                }
                finished.store(true, Ordering::SeqCst);
                io::Error::other("finished without being killed")
            })
        };
        let plain_writer = {
            let (c, done) = (c.clone(), nosync_done.clone());
            std::thread::spawn(move || -> io::Error {
                for i in 0.. {
                    // Enough to check: on a slow machine the fsync writer may take
                    // minutes to reach KILL_AFTER, and every file written here is
                    // replayed and read back after the kill. Wait for the kill instead.
                    if i == PLAIN_MAX {
                        loop {
                            if let Err(e) = fs::metadata(&c) {
                                return e;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    if let Err(e) = fs::write(c.join(format!("nosync/g{i}")), nosync_content(i)) {
                        return e;
                    }
                    done.store(i + 1, Ordering::SeqCst);
                }
                unreachable!()
            })
        };

        while synced.lock().unwrap().len() < KILL_AFTER {
            assert!(!fsync_writer.is_finished(), "fsync writer stopped early: {:?}", fsync_writer.join().unwrap());
            std::thread::sleep(Duration::from_millis(5));
        }
        m.kill9();
        let e1 = fsync_writer.join().unwrap();
        let e2 = plain_writer.join().unwrap();
        assert!(!finished.load(Ordering::SeqCst), "the kill happened mid-workload");
        eprintln!("writers stopped with: {e1} / {e2}");
        assert_errno(fs::read_dir(m.root()), libc::ENOTCONN, "dead mount after kill -9");
        let synced = synced.lock().unwrap().clone();
        let plain = nosync_done.load(Ordering::SeqCst);
        m.lazy_umount();
        drop(m);

        let ctx = format!("[{backend}] after kill -9 ({} fsync'd, {plain} closed)", synced.len());
        let m = Mount::start(backend, &store);
        let c = m.current();
        for &i in &synced {
            let got = fs::read(c.join(format!("sync/f{i}"))).unwrap_or_else(|e| panic!("{ctx}: sync/f{i}: {e}"));
            assert!(got == sync_content(i), "{ctx}: sync/f{i} differs ({} bytes, want {})", got.len(), sync_content(i).len());
        }
        let complete = assert_log_prefix(&c.join("sync"), "f", sync_content, &ctx);
        assert!(complete >= synced.len(), "{ctx}: every fsync'd file is complete");
        assert_log_prefix(&c.join("nosync"), "g", nosync_content, &ctx);

        // The store keeps working after the crash.
        fs::write(c.join("after-crash"), b"alive").unwrap();
        let tree = snapshot(&c, SnapOpts::FULL);
        m.stop();
        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::FULL), &tree, &format!("{ctx}: clean remount"));
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// log --json
// ---------------------------------------------------------------------------------------

const HASH_HELLO: &str = "36918a4bd3f9d0953f2ea2f189f4b9b1c8d72187cef1ea50eec7c873430752a8"; // "hello lighthouse\n"
const HASH_HELLO_UPPER: &str = "ade80fddd6f549f878fbf36b255226fa92cb0f30bba6e7f7cf4443378be409da"; // "HELLO LIGHTHOUSE\n"
const HASH_USER: &str = "ba540523c62d2bd260c43e99e4eede5fd96935fcc2cb64cc7acaf8d01c9926d2"; // "fuse3 says hi"

const OPS: [&str; 10] = [
    "create", "mkdir", "symlink", "mknod", "write", "setattr", "rename", "link", "unlink", "rmdir",
];

fn field<'a>(ev: &'a Value, k: &str) -> &'a Value {
    ev.get(k)
        .unwrap_or_else(|| panic!("log event without `{k}`: {ev:?}"))
}

fn opt_str(v: &Value) -> Option<String> {
    if v.is_null() {
        None
    } else {
        Some(
            v.as_str()
                .unwrap_or_else(|| panic!("expected string or null, got {v:?}"))
                .to_string(),
        )
    }
}

/// (op, path, path2) of an event.
fn triple(ev: &Value) -> (String, String, Option<String>) {
    (
        field(ev, "op").as_str().unwrap().to_string(),
        field(ev, "path").as_str().unwrap().to_string(),
        opt_str(field(ev, "path2")),
    )
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of an RFC 3339 time (panics if it is not one).
fn rfc3339_secs(s: &str) -> i64 {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> i64 {
        s.get(r.clone())
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("not RFC 3339: {s:?}"))
    };
    assert!(
        b.len() >= 20
            && b[4] == b'-'
            && b[7] == b'-'
            && (b[10] == b'T' || b[10] == b't')
            && b[13] == b':'
            && b[16] == b':',
        "not RFC 3339: {s:?}"
    );
    let mut secs = days_from_civil(num(0..4), num(5..7), num(8..10)) * 86_400
        + num(11..13) * 3600
        + num(14..16) * 60
        + num(17..19);
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    match b.get(i) {
        Some(b'Z') | Some(b'z') => assert_eq!(i + 1, b.len(), "not RFC 3339: {s:?}"),
        Some(sign @ (b'+' | b'-')) => {
            assert_eq!(i + 6, b.len(), "not RFC 3339: {s:?}");
            let off = num(i + 1..i + 3) * 3600 + num(i + 4..i + 6) * 60;
            secs -= if *sign == b'+' { off } else { -off };
        }
        _ => panic!("not RFC 3339 (no offset): {s:?}"),
    }
    secs
}

fn under(p: &str, filter: &str) -> bool {
    p == filter || p.starts_with(&format!("{}/", filter.trim_end_matches('/')))
}

both_backends! {
    fn log_json_fields_and_order(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = |s: &str| m.path(s);
        fs::create_dir(p("d")).unwrap();
        {
            let mut f = OpenOptions::new().write(true).create_new(true).open(p("d/a.txt")).unwrap();
            f.write_all(b"hello lighthouse\n").unwrap();
        }
        {
            // Three write() calls, one `write` event at close.
            let mut f = OpenOptions::new().write(true).open(p("d/a.txt")).unwrap();
            f.write_all(b"HELLO ").unwrap();
            f.write_all(b"LIGHT").unwrap();
            f.write_all(b"HOUSE\n").unwrap();
        }
        fs::create_dir(p("e")).unwrap();
        symlink("a.txt", p("d/link")).unwrap();
        fs::hard_link(p("d/a.txt"), p("d/hard")).unwrap();
        chmod(&p("d/a.txt"), 0o600).unwrap();
        fs::rename(p("d/hard"), p("e/hard2")).unwrap();
        fs::remove_file(p("d/link")).unwrap();
        fs::create_dir(p("d/sub")).unwrap();
        fs::remove_dir(p("d/sub")).unwrap();
        chmod(&p("e"), 0o777).unwrap();
        let user_file = p("e/user.txt");
        let child = run_as_pid(1000, 1000, || {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&user_file)?;
            f.write_all(b"fuse3 says hi")
        });
        assert_eq!(child.result, Ok(()), "uid 1000 writes e/user.txt");
        m.stop();

        let events = log_json(&store, None);
        let s = |x: &str| x.to_string();
        let want: Vec<(String, String, Option<String>)> = vec![
            (s("mkdir"), s("/d"), None),
            (s("create"), s("/d/a.txt"), None),
            (s("write"), s("/d/a.txt"), None),
            (s("write"), s("/d/a.txt"), None),
            (s("mkdir"), s("/e"), None),
            (s("symlink"), s("/d/link"), Some(s("a.txt"))),
            (s("link"), s("/d/a.txt"), Some(s("/d/hard"))),
            (s("setattr"), s("/d/a.txt"), None),
            (s("rename"), s("/d/hard"), Some(s("/e/hard2"))),
            (s("unlink"), s("/d/link"), None),
            (s("mkdir"), s("/d/sub"), None),
            (s("rmdir"), s("/d/sub"), None),
            (s("setattr"), s("/e"), None),
            (s("create"), s("/e/user.txt"), None),
            (s("write"), s("/e/user.txt"), None),
        ];
        let got: Vec<_> = events.iter().map(triple).collect();
        assert_eq!(got, want, "[{backend}] the log, in order");

        let mut last_seq = 0u64;
        let mut last_ns = 0u64;
        for ev in &events {
            let seq = field(ev, "seq").as_u64().unwrap_or_else(|| panic!("seq is not a u64: {ev:?}"));
            assert!(seq > last_seq, "seq increases: {last_seq} then {seq}");
            last_seq = seq;
            let ns = field(ev, "time_ns").as_u64().unwrap_or_else(|| panic!("time_ns is not a u64: {ev:?}"));
            assert!(ns >= last_ns, "time_ns never goes back");
            last_ns = ns;
            let secs = rfc3339_secs(field(ev, "time").as_str().expect("time is a string"));
            assert_eq!(secs, (ns / 1_000_000_000) as i64, "time and time_ns agree: {ev:?}");
            let op = field(ev, "op").as_str().unwrap();
            assert!(OPS.contains(&op), "known op: {op}");
            assert!(field(ev, "path").as_str().unwrap().starts_with('/'), "path starts with /");
            if !["rename", "link", "symlink"].contains(&op) {
                assert!(field(ev, "path2").is_null(), "path2 is null for {op}");
            }
            let pid = field(ev, "pid").as_u64().expect("pid is a number");
            assert!(pid > 0);
            field(ev, "size");
            field(ev, "hash");
        }
        let ids = |ev: &Value| (field(ev, "uid").as_u64().unwrap(), field(ev, "gid").as_u64().unwrap());
        for ev in &events[..13] {
            assert_eq!(ids(ev), (0, 0), "root's events: {ev:?}");
        }
        for ev in &events[13..] {
            assert_eq!(ids(ev), (1000, 1000), "uid 1000's events: {ev:?}");
            assert_eq!(field(ev, "pid").as_u64(), Some(child.pid as u64), "pid of the writer");
        }
        let writes: Vec<(u64, String)> = events
            .iter()
            .filter(|e| field(e, "op").as_str() == Some("write"))
            .map(|e| (field(e, "size").as_u64().unwrap(), field(e, "hash").as_str().expect("write hash").to_string()))
            .collect();
        assert_eq!(
            writes,
            vec![(17, HASH_HELLO.to_string()), (17, HASH_HELLO_UPPER.to_string()), (13, HASH_USER.to_string())],
            "write events carry size and BLAKE3 hash"
        );

        // PATH filters on path or path2, at or under PATH.
        for filter in ["/e", "/d", "/d/a.txt", "/e/hard2", "/nothing"] {
            let want: Vec<_> = events
                .iter()
                .filter(|e| {
                    let (_, p, p2) = triple(e);
                    under(&p, filter) || p2.is_some_and(|p2| under(&p2, filter))
                })
                .map(|e| field(e, "seq").as_u64().unwrap())
                .collect();
            let got: Vec<_> = log_json(&store, Some(filter)).iter().map(|e| field(e, "seq").as_u64().unwrap()).collect();
            assert_eq!(got, want, "log {filter}");
        }
        assert!(!log_json(&store, Some("/e")).is_empty());

        // Plain text: one line per event.
        let text = cli([std::ffi::OsStr::new("log"), "--store".as_ref(), store.as_os_str()]);
        assert_eq!(text.ok().lines().filter(|l| !l.trim().is_empty()).count(), events.len(), "one line per event");
    }
}

// ---------------------------------------------------------------------------------------
// export --at
// ---------------------------------------------------------------------------------------

fn last_event(store: &Path) -> (u64, String) {
    let events = log_json(store, None);
    let ev = events.last().expect("log is not empty");
    (
        field(ev, "seq").as_u64().unwrap(),
        field(ev, "time").as_str().unwrap().to_string(),
    )
}

both_backends! {
    #[timeout_secs(300)]
    fn export_at_earlier_state(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = |s: &str| m.path(s);
        fs::create_dir(p("docs")).unwrap();
        fs::write(p("docs/readme"), b"state A readme\n").unwrap();
        chmod(&p("docs/readme"), 0o640).unwrap();
        fs::write(p("bin"), pattern(5, 200_000)).unwrap();
        chmod(&p("bin"), 0o755).unwrap();
        symlink("docs/readme", p("latest")).unwrap();
        fs::hard_link(p("bin"), p("docs/alias")).unwrap();
        fs::write(p("old"), b"will be deleted").unwrap();
        utimensat(&p("old"), (1, 0), (1_300_000_000, 42), 0).unwrap();
        let state_a = snapshot(&m.current(), NO_OWNERS);
        m.stop();
        let (seq_a, time_a) = last_event(&store);
        // Events of state B get a later time stamp than time_a, even at 1 s resolution.
        std::thread::sleep(Duration::from_millis(1100));

        let m = Mount::start(backend, &store);
        fs::write(p_of(&m, "docs/readme"), b"state B readme, longer\n").unwrap();
        fs::remove_file(p_of(&m, "old")).unwrap();
        fs::rename(p_of(&m, "bin"), p_of(&m, "bin2")).unwrap();
        chmod(&p_of(&m, "docs"), 0o700).unwrap();
        fs::write(p_of(&m, "new"), b"new in B").unwrap();
        OpenOptions::new().append(true).open(p_of(&m, "docs/alias")).unwrap().write_all(b"+tail").unwrap();
        fs::remove_file(p_of(&m, "latest")).unwrap();
        symlink("new", p_of(&m, "latest")).unwrap();
        let state_b = snapshot(&m.current(), NO_OWNERS);
        m.stop();
        assert_ne!(state_a, state_b);

        let (_d, out) = temp_dir("lhfs-export-");
        let seq = seq_a.to_string();
        let at_seq = format!("@{seq_a}");
        for (name, at) in [("seq", Some(seq.as_str())), ("at-seq", Some(at_seq.as_str())), ("time", Some(time_a.as_str())), ("now", None)] {
            let dest = out.join(name);
            export(&dest, &store, at);
            let want = if at.is_some() { &state_a } else { &state_b };
            assert_trees_eq(&snapshot(&dest, NO_OWNERS), want, &format!("[{backend}] export --at {at:?}"));
        }
        // An empty existing DEST is fine.
        let dest = out.join("empty-dest");
        fs::create_dir(&dest).unwrap();
        export(&dest, &store, Some(&seq));
        assert_trees_eq(&snapshot(&dest, NO_OWNERS), &state_a, "export into an empty dir");
    }
}

fn p_of(m: &Mount, rel: &str) -> std::path::PathBuf {
    m.path(rel)
}

// ---------------------------------------------------------------------------------------
// import
// ---------------------------------------------------------------------------------------

both_backends! {
    #[timeout_secs(300)]
    fn import_then_mount(backend: Backend) {
        let (_s, src) = temp_dir("lhfs-src-");
        fs::create_dir_all(src.join("a/b/c")).unwrap();
        fs::create_dir(src.join("locked")).unwrap();
        fs::write(src.join("top.txt"), b"top\n").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        fs::write(src.join("a/b/c/deep.bin"), pattern(9, 200_000)).unwrap();
        fs::write(src.join("a/script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::write(src.join("locked/key"), b"k").unwrap();
        chmod(&src.join("a/script.sh"), 0o755).unwrap();
        chmod(&src.join("locked/key"), 0o600).unwrap();
        chmod(&src.join("locked"), 0o700).unwrap();
        chmod(&src.join("top.txt"), 0o444).unwrap();
        symlink("a/b/c/deep.bin", src.join("to-deep")).unwrap();
        symlink("/absolute/target", src.join("abs")).unwrap();
        let want = snapshot(&src, SnapOpts::SHAPE);

        let (_t, store) = fresh_store();
        import(&src, &store);
        assert_trees_eq(&snapshot(&src, SnapOpts::SHAPE), &want, "import leaves its source alone");
        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::SHAPE), &want, &format!("[{backend}] imported tree"));
        let mounted = snapshot(&m.current(), NO_OWNERS);
        // The imported tree is live: change it.
        fs::write(m.path("a/new"), b"n").unwrap();
        let changed = snapshot(&m.current(), NO_OWNERS);
        m.stop();

        let (_d, out) = temp_dir("lhfs-export-");
        export(&out.join("x"), &store, None);
        assert_trees_eq(&snapshot(&out.join("x"), NO_OWNERS), &changed, "export after import + change");
        assert_ne!(mounted, changed);
    }
}

#[test]
fn harness_json_and_time() {
    let v = json::parse(r#"{"seq": 18446744073709551615, "time": "2026-11-23T21:40:00.5Z", "path2": null, "a": [1, -2.5e3, true, "\u00e9\n\"x\""], "o": {}}"#).unwrap();
    assert_eq!(v.get("seq").unwrap().as_u64(), Some(u64::MAX));
    assert!(v.get("path2").unwrap().is_null());
    assert_eq!(
        v.get("a"),
        Some(&serde_json::json!([1, -2.5e3, true, "é\n\"x\""]))
    );
    assert_eq!(v.at(&["o"]), Some(&serde_json::json!({})));
    assert_eq!(v.at(&["o", "missing"]), None);
    assert!(json::parse("{\"a\": 1,}").is_err());
    assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), 0);
    assert_eq!(
        rfc3339_secs("2026-11-23T21:40:00.123456789Z"),
        1_795_470_000
    );
    assert_eq!(rfc3339_secs("2026-11-23T22:40:00+01:00"), 1_795_470_000);
    assert!(under("/d/a", "/d") && under("/d", "/d") && !under("/dd", "/d"));
}

// ---------------------------------------------------------------------------------------
// A full disk
// ---------------------------------------------------------------------------------------

const MIB: usize = 1 << 20;

fn fill_content(i: usize) -> Vec<u8> {
    pattern(30_000 + i as u64, MIB)
}

fn pending_content() -> Vec<u8> {
    pattern(77, 100_000)
}

/// close(2) with its result (dropping a `File` ignores it).
fn close(f: File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    // SAFETY: the descriptor is ours and closed once.
    check(unsafe { libc::close(f.into_raw_fd()) }).map(drop)
}

/// Write `fill/f{i}`, 1 MiB each, each fsync'd, until the store's disk is full. Returns
/// the files acknowledged (fsync and close returned 0), the errno of the one that did not
/// fit, and that file's number.
fn fill_until_full(c: &Path) -> (Vec<usize>, i32, usize) {
    fs::create_dir(c.join("fill")).unwrap();
    let mut acked = Vec::new();
    for i in 0..200 {
        let mut f = File::create(c.join(format!("fill/f{i}"))).unwrap();
        let written = f.write_all(&fill_content(i)).and_then(|()| f.sync_all());
        let closed = close(f);
        match written.and(closed) {
            Ok(()) => acked.push(i),
            Err(e) => return (acked, errno_of(&e), i),
        }
    }
    panic!("a 48 MiB store took 200 MiB");
}

/// A file written, and held open, by a child process: every close of a descriptor of a
/// FUSE file flushes it, and each program this test runs would close its copy of one of
/// ours (close-on-exec), committing the file long before the test closes it.
struct HeldOpen {
    child: libc::pid_t,
    go: libc::c_int,
}

impl HeldOpen {
    fn write(path: &Path, data: &[u8]) -> HeldOpen {
        let cpath = cpath(path);
        let (mut ready, mut go) = ([0; 2], [0; 2]);
        // SAFETY: plain syscalls on descriptors made here; the child makes only syscalls
        // (no allocation, no locks) and leaves with _exit.
        unsafe {
            check(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC)).unwrap();
            check(libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC)).unwrap();
            let child = check(libc::fork()).unwrap();
            if child == 0 {
                let fd = libc::open(
                    cpath.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                    0o644,
                );
                let mut done = 0;
                while fd >= 0 && done < data.len() {
                    let n = libc::write(fd, data[done..].as_ptr().cast(), data.len() - done);
                    if n <= 0 {
                        libc::_exit(254);
                    }
                    done += n as usize;
                }
                let byte = 1u8;
                libc::write(ready[1], (&byte as *const u8).cast(), 1);
                let mut got = 0u8;
                libc::read(go[0], (&mut got as *mut u8).cast(), 1);
                let code = if fd < 0 || libc::close(fd) != 0 {
                    *libc::__errno_location()
                } else {
                    0
                };
                libc::_exit(code);
            }
            libc::close(ready[1]);
            libc::close(go[0]);
            let mut got = 0u8;
            assert_eq!(
                libc::read(ready[0], (&mut got as *mut u8).cast(), 1),
                1,
                "the child wrote {}",
                path.display()
            );
            libc::close(ready[0]);
            HeldOpen { child, go: go[1] }
        }
    }

    /// Close the file in the child; its errno (0: closed fine).
    fn close(self) -> i32 {
        let mut status = 0;
        // SAFETY: our pipe and our child.
        unsafe {
            let byte = 1u8;
            libc::write(self.go, (&byte as *const u8).cast(), 1);
            libc::close(self.go);
            check(libc::waitpid(self.child, &mut status, 0)).unwrap();
        }
        assert!(
            libc::WIFEXITED(status),
            "the child holding a file died: {status}"
        );
        libc::WEXITSTATUS(status)
    }
}

fn health(m: &Mount) -> Value {
    let text = fs::read_to_string(m.root().join("debug/health.json")).unwrap();
    json::parse(&text).unwrap_or_else(|e| panic!("health.json: {e}: {text}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    v.at(path).and_then(Value::as_str)
}

fn run(cmd: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"))
}

/// The files of `fill_until_full` as they must be: `removed` gone, f6 renamed to moved6
/// once there were removals, every other acknowledged file with its bytes.
fn assert_acked(c: &Path, acked: &[usize], removed: &[usize], ctx: &str) {
    for &i in acked {
        let path = c.join(format!("fill/f{i}"));
        if removed.contains(&i) {
            assert_errno(
                fs::metadata(&path),
                libc::ENOENT,
                &format!("{ctx}: removed f{i}"),
            );
            continue;
        }
        let path = if i == 6 && !removed.is_empty() {
            c.join("fill/moved6")
        } else {
            path
        };
        let got = fs::read(&path).unwrap_or_else(|e| panic!("{ctx}: {}: {e}", path.display()));
        assert!(
            got == fill_content(i),
            "{ctx}: f{i} differs ({} bytes)",
            got.len()
        );
    }
}

/// A store on a 48 MiB tmpfs: filled until ENOSPC, still readable, degraded (not
/// failing), metadata changes go through, and once the disk has room again writes are
/// accepted without a restart. `kill9`: the server is killed on the full disk and
/// restarted there instead of being stopped.
fn full_disk(backend: Backend, kill9: bool) {
    let tmpfs = Tmpfs::with_size("48m");
    let store = tmpfs.path().join("store");
    let args = ["--metrics", "127.0.0.1:0", "--log-format", "json"];
    let mut m = Mount::start_with(backend, &store, &args);
    let mut c = m.current();
    let ctx = format!("[{backend}] full disk");

    // Written before the disk fills, closed once even the store's reserve is full.
    let pending = (!kill9).then(|| HeldOpen::write(&c.join("pending"), &pending_content()));
    let (acked, errno, last) = fill_until_full(&c);
    eprintln!(
        "{ctx}: {} MiB acknowledged, f{last} refused with {}",
        acked.len(),
        errno_name(errno)
    );
    assert_eq!(
        errno,
        libc::ENOSPC,
        "{ctx}: the write that did not fit: {}",
        errno_name(errno)
    );
    assert!(
        acked.len() >= 30,
        "{ctx}: only {} MiB fit on 48 MiB",
        acked.len()
    );
    // What did not fit is not torn: a prefix of whole writes, or nothing.
    let partial = fs::read(c.join(format!("fill/f{last}"))).unwrap();
    assert!(
        fill_content(last).starts_with(&partial),
        "{ctx}: f{last} is torn"
    );

    // Real programs see the same.
    let dd = run(
        "dd",
        &[
            "if=/dev/zero".as_ref(),
            format!("of={}", c.join("dd.bin").display()).as_ref(),
            "bs=1M".as_ref(),
            "count=8".as_ref(),
            "conv=fsync".as_ref(),
        ],
    );
    assert!(!dd.status.success(), "{ctx}: dd fit on a full disk");
    assert!(
        String::from_utf8_lossy(&dd.stderr).contains("No space left on device"),
        "{ctx}: dd: {}",
        String::from_utf8_lossy(&dd.stderr)
    );
    let cp = run(
        "cp",
        &[c.join("fill/f10").as_os_str(), c.join("copy").as_os_str()],
    );
    assert!(!cp.status.success(), "{ctx}: cp fit on a full disk");
    assert!(
        String::from_utf8_lossy(&cp.stderr).contains("No space left on device"),
        "{ctx}: cp: {}",
        String::from_utf8_lossy(&cp.stderr)
    );
    assert_errno(
        fs::write(c.join("small"), b"x"),
        libc::ENOSPC,
        "a small write while short",
    );

    // Reads go on; the store says why it is degraded, and is not failing.
    assert_acked(&c, &acked, &[], &ctx);
    let h = health(&m);
    assert_eq!(str_at(&h, &["status"]), Some("degraded"), "{ctx}: {h:?}");
    assert_eq!(
        str_at(&h, &["store", "state"]),
        Some("degraded"),
        "{ctx}: {h:?}"
    );
    let reason = str_at(&h, &["store", "reason"]).unwrap_or_default();
    assert!(
        reason.starts_with("no space left on the store's filesystem ("),
        "{ctx}: reason {reason:?}"
    );
    assert!(
        h.at(&["store", "failure"]).is_some_and(Value::is_null),
        "{ctx}: {h:?}"
    );
    let addr = common::metrics::metrics_addr(&m);
    let scrape = || common::metrics::samples(&common::metrics::get(&addr, "/metrics").1);
    let state = |s: &str| {
        common::metrics::value(
            &scrape(),
            "lighthouse_fs_store_state",
            &[&format!("state=\"{s}\"")],
        )
    };
    assert_eq!(
        (state("ok"), state("degraded"), state("failing")),
        (0.0, 1.0, 0.0),
        "{ctx}: metrics"
    );

    // Metadata changes commit on the full disk, real programs included.
    let removed = [0, 1, 2, 3, 4];
    let paths: Vec<_> = removed
        .iter()
        .map(|i| c.join(format!("fill/f{i}")))
        .collect();
    let rm = run(
        "rm",
        &paths.iter().map(|p| p.as_os_str()).collect::<Vec<_>>(),
    );
    assert!(
        rm.status.success(),
        "{ctx}: rm: {}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let chmod = run("chmod", &["600".as_ref(), c.join("fill/f5").as_os_str()]);
    assert!(
        chmod.status.success(),
        "{ctx}: chmod: {}",
        String::from_utf8_lossy(&chmod.stderr)
    );
    let mv = run(
        "mv",
        &[
            c.join("fill/f6").as_os_str(),
            c.join("fill/moved6").as_os_str(),
        ],
    );
    assert!(
        mv.status.success(),
        "{ctx}: mv: {}",
        String::from_utf8_lossy(&mv.stderr)
    );
    fs::create_dir(c.join("d")).unwrap();
    fs::remove_dir(c.join("d")).unwrap();
    File::open(c.join("fill"))
        .unwrap()
        .sync_all()
        .expect("fsync of a directory: the log is on disk");
    let events: Vec<(String, String, Option<String>)> =
        log_json(&store, None).iter().map(triple).collect();
    let s = |x: &str| x.to_string();
    for i in removed {
        assert!(
            events.contains(&(s("unlink"), format!("/fill/f{i}"), None)),
            "{ctx}: rm of f{i} in the log"
        );
    }
    assert!(
        events.contains(&(s("setattr"), s("/fill/f5"), None)),
        "{ctx}: chmod in the log"
    );
    assert!(
        events.contains(&(s("rename"), s("/fill/f6"), Some(s("/fill/moved6")))),
        "{ctx}: mv in the log"
    );
    assert!(
        events.contains(&(s("rmdir"), s("/d"), None)),
        "{ctx}: rmdir in the log"
    );
    assert_acked(&c, &acked, &removed, &format!("{ctx}, after rm"));

    // Said once, at the transition, not once per refused request.
    let log = m.stderr();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        lines("no space left on the store's filesystem"),
        1,
        "{ctx}: one line at the transition:\n{log}"
    );
    assert_eq!(
        lines("\"errno\":\"ENOSPC\""),
        0,
        "{ctx}: no line per ENOSPC answered:\n{log}"
    );
    assert_eq!(
        lines("\"errno\":\"EIO\""),
        0,
        "{ctx}: nothing failed:\n{log}"
    );

    let mut made = 0;
    if let Some(pending) = pending {
        // Even the reserve fills, with metadata alone: then metadata changes answer
        // ENOSPC too (never EIO); what was answered 0 waits in the log's queue.
        fs::create_dir(c.join("many")).unwrap();
        let long = "n".repeat(200);
        let refused = loop {
            assert!(made < 100_000, "{ctx}: the reserve never filled");
            match fs::create_dir(c.join(format!("many/{long}{made}"))) {
                Ok(()) => made += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(errno_of(&refused), libc::ENOSPC, "{ctx}: mkdir: {refused}");
        eprintln!("{ctx}: {made} mkdirs filled the reserve");
        assert_errno(
            fs::remove_file(c.join("fill/f7")),
            libc::ENOSPC,
            "rm once even the reserve is full",
        );
        // close() cannot commit what was written before the disk filled: ENOSPC; the
        // bytes stay, readable, and are committed once there is room.
        let r = pending.close();
        assert_eq!(
            r,
            libc::ENOSPC,
            "{ctx}: close without room for the commit: {}",
            errno_name(r)
        );
        assert!(
            fs::read(c.join("pending")).unwrap() == pending_content(),
            "{ctx}: pending stays readable"
        );
        assert_acked(&c, &acked, &removed, &format!("{ctx}, reserve full"));
        assert_eq!(
            str_at(&health(&m), &["store", "state"]),
            Some("degraded"),
            "{ctx}"
        );
    }

    if kill9 {
        // A crash on the full disk, and a restart there: nothing acknowledged is lost,
        // and the store serves, short of room, until there is room.
        m.kill9();
        m.lazy_umount();
        drop(m);
        m = Mount::start(backend, &store);
        c = m.current();
        assert_acked(&c, &acked, &removed, &format!("{ctx}, after kill -9"));
        assert_eq!(
            str_at(&health(&m), &["store", "state"]),
            Some("degraded"),
            "{ctx}: short after the restart"
        );
        assert_errno(
            fs::write(c.join("small"), b"x"),
            libc::ENOSPC,
            "a small write after the restart",
        );
        fs::remove_file(c.join("small")).unwrap();
    }

    // Room again (the volume grows): writes are accepted at once, without a restart.
    tmpfs.resize("96m");
    let mut f = File::create(c.join("after")).unwrap();
    f.write_all(&fill_content(1000)).unwrap();
    f.sync_all().expect("fsync once there is room");
    close(f).unwrap();
    fs::write(c.join("small"), b"x").expect("a small write once there is room");
    let h = health(&m);
    assert_eq!(str_at(&h, &["status"]), Some("ok"), "{ctx}: {h:?}");
    assert_eq!(str_at(&h, &["store", "state"]), Some("ok"), "{ctx}: {h:?}");
    if !kill9 {
        // The file whose close answered ENOSPC is committed by itself.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !log_json(&store, Some("/pending"))
            .iter()
            .any(|e| field(e, "op").as_str() == Some("write"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{ctx}: pending was never committed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            (state("ok"), state("degraded"), state("failing")),
            (1.0, 0.0, 0.0),
            "{ctx}: metrics"
        );
        assert_eq!(
            m.stderr()
                .lines()
                .filter(|l| l.contains("room again on the store's filesystem"))
                .count(),
            1
        );
    }
    m.stop();

    let m = Mount::start(backend, &store);
    let c = m.current();
    let ctx = format!("{ctx}, remounted");
    assert_acked(&c, &acked, &removed, &ctx);
    assert!(
        fs::read(c.join("after")).unwrap() == fill_content(1000),
        "{ctx}: the file written after"
    );
    assert_eq!(fs::read(c.join("small")).unwrap(), b"x", "{ctx}");
    if !kill9 {
        assert!(
            fs::read(c.join("pending")).unwrap() == pending_content(),
            "{ctx}: pending"
        );
        assert_eq!(
            fs::read_dir(c.join("many")).unwrap().count(),
            made,
            "{ctx}: every mkdir answered 0"
        );
    }
    assert_eq!(str_at(&health(&m), &["status"]), Some("ok"), "{ctx}");
    m.stop();
}

both_backends! {
    #[timeout_secs(300)]
    fn a_full_disk_answers_enospc_and_recovers_without_restart(backend: Backend) {
        full_disk(backend, false);
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn a_full_disk_then_kill9_keeps_acknowledged_files(backend: Backend) {
        full_disk(backend, true);
    }
}
