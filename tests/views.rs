//! Views through a real mount, on both backends: the built-in `history` view against
//! `export --at` (byte for byte, seeded), its errors, listing and per-file log, and
//! deliberately bad components (panic, endless loop, memory hog) that must cost the
//! caller EIO and nothing else.

#[macro_use]
mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// History shows what export writes: content, kinds, sizes, mtimes, targets; a view is
/// read-only, so only the read/execute bits can match; owners are the mounting user's.
const HISTORY: SnapOpts = SnapOpts {
    mtimes: true,
    dir_mtimes: true,
    owners: false,
    content: true,
    perm_mask: 0o555,
};

fn seed() -> u64 {
    match std::env::var("LIGHTHOUSE_TEST_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("LIGHTHOUSE_TEST_SEED={s:?} is not a u64")),
        Err(_) => rand::random(),
    }
}

/// Seeded creates, overwrites, renames, deletes, directories and symlinks in `c`.
fn workload(c: &Path, seed: u64, steps: usize) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let names = ["a", "b", "c", "d", "e"];
    for step in 0..steps {
        let dir = if rng.random_bool(0.3) {
            c.join("sub")
        } else {
            c.to_path_buf()
        };
        let _ = fs::create_dir(c.join("sub"));
        let n = dir.join(names[rng.random_range(0..names.len())]);
        let m = dir.join(names[rng.random_range(0..names.len())]);
        let _ = match rng.random_range(0..6) {
            0 | 1 => fs::write(&n, pattern(seed ^ step as u64, rng.random_range(0..5000))),
            2 => fs::rename(&n, &m),
            3 => fs::remove_file(&n),
            4 => symlink("a", &n),
            _ => fs::create_dir(&n).and_then(|_| fs::write(n.join("inner"), b"inner")),
        };
    }
}

/// The newest seq of the log, once everything done through `m` is committed: an fsync
/// of a directory waits for the log (close() alone leaves it up to one commit interval
/// behind in the store's file, which `lighthouse-fs log` reads).
fn head_seq(m: &Mount, store: &Path) -> u64 {
    fs::File::open(m.current()).unwrap().sync_all().unwrap();
    log_json(store, None)
        .last()
        .and_then(|e| e.get("seq")?.as_u64())
        .unwrap_or(0)
}

both_backends! {
    #[timeout_secs(180)]
    fn history_matches_export_at(backend: Backend) {
        let seed = seed();
        let ctx = |what: &str| format!("[{backend}] {what} (seed {seed}; rerun with LIGHTHOUSE_TEST_SEED={seed})");
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let mut points = Vec::new();
        for round in 0..4 {
            workload(&m.current(), seed.wrapping_add(round), 40);
            points.push(head_seq(&m, &store));
        }
        for &seq in &points {
            let (_d, dest) = temp_dir("lhfs-export-");
            export(&dest, &store, Some(&seq.to_string()));
            let want = snapshot(&dest, HISTORY);
            let got = snapshot(&m.root().join(format!("history/@{seq}")), HISTORY);
            assert_trees_eq(&got, &want, &ctx(&format!("history/@{seq} vs export --at {seq}")));
        }
        // The time spelling of a listed point resolves to the same state.
        let listed: Vec<String> = fs::read_dir(m.root().join("history"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let last = *points.last().unwrap();
        assert!(listed.contains(&format!("@{last}")), "{}: {listed:?}", ctx("history lists the newest point"));
        let times: Vec<&String> = listed.iter().filter(|n| n.starts_with("20")).collect();
        assert!(!times.is_empty(), "{}: {listed:?}", ctx("history lists times too"));
        for t in times.iter().take(3) {
            assert!(m.root().join("history").join(t).is_dir(), "{}", ctx(&format!("{t} resolves")));
        }
        m.stop();
    }
}

both_backends! {
    fn history_is_read_only_and_refuses_unknown_points(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::write(m.path("f"), b"one").unwrap();
        let seq = head_seq(&m, &store);
        let h = m.root().join("history");
        let at = h.join(format!("@{seq}"));
        assert_eq!(fs::read(at.join("f")).unwrap(), b"one");
        assert_errno(fs::write(at.join("f"), b"two"), libc::EROFS, "overwrite in history");
        assert_errno(fs::write(at.join("new"), b"x"), libc::EROFS, "create in history");
        assert_errno(fs::create_dir(at.join("d")), libc::EROFS, "mkdir in history");
        assert_errno(fs::remove_file(at.join("f")), libc::EROFS, "unlink in history");
        assert_errno(fs::rename(m.path("f"), at.join("g")), libc::EXDEV, "rename into history");
        assert_errno(fs::metadata(h.join(format!("@{}", seq + 1000))), libc::ENOENT, "a point after the head");
        assert_errno(fs::metadata(h.join("yesterday-ish")), libc::ENOENT, "not a point");
        // A relative time sees the present tree; the past is not changed by the present.
        fs::write(m.path("f"), b"two").unwrap();
        assert_eq!(fs::read(at.join("f")).unwrap(), b"one", "history at a point is immutable");
        assert_eq!(fs::read(h.join("-0s").join("f")).unwrap(), b"two");
        m.stop();
    }
}

both_backends! {
    fn history_log_lists_the_versions_of_a_path(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::write(m.path("notes.txt"), b"v1").unwrap();
        fs::write(m.path("notes.txt"), b"version 2").unwrap();
        fs::write(m.path("other"), b"x").unwrap();
        fs::File::open(m.current()).unwrap().sync_all().unwrap();
        let mut text = String::new();
        fs::File::open(m.root().join("history/.log/notes.txt")).unwrap().read_to_string(&mut text).unwrap();
        let lines: Vec<json::Value> = text.lines().map(|l| json::parse(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
        let want: Vec<(u64, String)> = log_json(&store, Some("/notes.txt"))
            .iter()
            .map(|e| (e.get("seq").unwrap().as_u64().unwrap(), e.get("op").unwrap().as_str().unwrap().to_string()))
            .collect();
        let got: Vec<(u64, String)> = lines
            .iter()
            .map(|e| (e.get("seq").unwrap().as_u64().unwrap(), e.get("op").unwrap().as_str().unwrap().to_string()))
            .collect();
        assert_eq!(got, want, "[{backend}] .log/notes.txt is the log of that path");
        assert_eq!(got.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(), ["create", "write", "write"]);
        assert_eq!(lines[2].get("size").unwrap().as_u64(), Some(9));
        m.stop();
    }
}

/// A mount of a fresh store with the test views (`bad-*`, `test-*`) beside the built-in
/// ones; the directories live as long as the first two values.
fn mount_with_test_views(backend: Backend) -> (tempfile::TempDir, tempfile::TempDir, Mount) {
    let (d, views) = temp_dir("lhfs-views-");
    for (name, bytes) in lighthouse_fs::views::builtin::TEST_COMPONENTS {
        fs::write(views.join(format!("{name}.wasm")), bytes).unwrap();
    }
    let (t, store) = fresh_store();
    let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap()]);
    (d, t, m)
}

both_backends! {
    #[timeout_secs(120)]
    fn bad_components_give_eio_and_the_mount_survives(backend: Backend) {
        let (_d, _t, m) = mount_with_test_views(backend);
        let root: Vec<String> = fs::read_dir(m.root()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        for v in ["bad-panic", "bad-loop", "bad-memory", "current", "debug", "history"] {
            assert!(root.contains(&v.to_string()), "[{backend}] {v} is served: {root:?}");
        }
        assert!(!root.contains(&"bad-info".to_string()), "[{backend}] a component whose info traps is refused: {root:?}");
        fs::write(m.path("alive"), b"yes").unwrap();
        for (view, file) in [("bad-panic", "boom"), ("bad-loop", "spin"), ("bad-memory", "hog")] {
            let started = Instant::now();
            assert_errno(fs::read(m.root().join(view).join(file)), libc::EIO, &format!("[{backend}] {view}/{file}"));
            assert!(started.elapsed() < Duration::from_secs(30), "[{backend}] {view} answered promptly");
            // The view's next call gets a fresh instance; every other path keeps working.
            assert!(fs::read_dir(m.root().join(view)).is_ok(), "[{backend}] {view} still lists after its trap");
            assert_eq!(fs::read(m.path("alive")).unwrap(), b"yes");
        }
        assert!(m.stderr().contains("bad-panic"), "[{backend}] the trap is logged with the view's name");
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(180)]
    fn views_slow_or_panicking_in_create_hold_up_nothing(backend: Backend) {
        // mkdir, create and mknod in a view reach its code: under fuse3 they must run where
        // a view may block (the core says so for every request), or a guest's panic message
        // (WASI stderr) panics the async worker. Meanwhile `current/` keeps serving.
        let (_d, _t, m) = mount_with_test_views(backend);
        for i in 0..20 {
            fs::write(m.path(&format!("f{i}")), format!("content {i}")).unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (current, stop) = (m.current(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let i = (reads + r) % 20;
                        let got = fs::read_to_string(current.join(format!("f{i}"))).expect("read current/ during view creates");
                        assert_eq!(got, format!("content {i}"));
                        assert_eq!(fs::read_dir(&current).unwrap().count(), 20);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let makers: Vec<_> = (0..3)
            .map(|k| {
                let root = m.root().to_path_buf();
                std::thread::spawn(move || {
                    let mut errnos = Vec::new();
                    for round in 0..3 {
                        let name = format!("n{k}-{round}");
                        errnos.push(("bad-loop create", fs::File::create(root.join("bad-loop").join(&name)).map(drop)));
                        errnos.push(("bad-loop mkdir", fs::create_dir(root.join("bad-loop").join(format!("{name}.d")))));
                        errnos.push(("bad-panic create", fs::File::create(root.join("bad-panic").join(&name)).map(drop)));
                        errnos.push(("bad-panic mkdir", fs::create_dir(root.join("bad-panic").join(format!("{name}.d")))));
                        errnos.push(("bad-panic mknod", mknod(&root.join("bad-panic").join(format!("{name}.p")), libc::S_IFIFO | 0o644, 0)));
                    }
                    errnos
                })
            })
            .collect();
        for maker in makers {
            for (what, result) in maker.join().expect("a creating thread") {
                assert_errno(result, libc::EIO, &format!("[{backend}] {what} in a faulty view"));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().expect("a reader of current/") > 0, "[{backend}] current/ was read while the views ran");
        }
        // Still serving, both sides.
        assert_eq!(fs::read(m.path("f3")).unwrap(), b"content 3");
        assert_eq!(fs::read(m.root().join("bad-panic/ok")).unwrap(), b"fine\n");
        let log = m.stderr();
        assert!(log.contains("bad-panic") && log.contains("bad-loop"), "[{backend}] the faults are logged with the views' names");
        // The guest's own panic message may be logged; nothing of the host may panic.
        let host_panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked") && !l.contains("the view's stderr")).collect();
        assert!(host_panics.is_empty(), "[{backend}] no host thread panicked: {:?}", &host_panics[..host_panics.len().min(3)]);
        m.stop();
    }
}
