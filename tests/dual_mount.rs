//! One process serving one store at two mountpoints, one per backend (`mount --mount
//! A=fuser --mount B=fuse3`): a change through either mount is seen through the other at
//! once, though each kernel caches names, attributes, pages and listings; `/metrics` and
//! `debug/` show the two apart; both unmount cleanly. Each test runs twice, with either
//! backend as the first mount.

#[macro_use]
mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use common::differential::*;
use common::metrics::*;
use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn doc(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Read everything a reader of `root` could have cached of `rel`: its attributes, its
/// bytes (a file) or its listing (a directory).
fn prime(root: &Path, rel: &str) {
    let p = root.join(rel);
    match fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => {
            let _ = fs::read_dir(&p).map(|rd| rd.count());
        }
        Ok(md) if md.is_file() => {
            let _ = fs::read(&p);
        }
        _ => {}
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Each kind of change made through `from` is seen through `to` right after, though `to`
/// cached the old state just before.
fn changes_cross(from: &Path, to: &Path, ctx: &str) {
    let (f, t) = (|rel: &str| from.join(rel), |rel: &str| to.join(rel));

    // A name `to` has cached as missing (a negative entry).
    assert_errno(fs::metadata(t("x")), libc::ENOENT, ctx);
    fs::write(f("x"), b"one").unwrap();
    assert_eq!(fs::read(t("x")).unwrap(), b"one", "{ctx}: a new file");

    // Bytes `to` has in its page cache (kept across opens), overwritten in place, then
    // appended to (a new size).
    prime(to, "x");
    OpenOptions::new()
        .write(true)
        .open(f("x"))
        .unwrap()
        .write_all_at(b"TWO", 0)
        .unwrap();
    assert_eq!(
        fs::read(t("x")).unwrap(),
        b"TWO",
        "{ctx}: overwritten bytes"
    );
    OpenOptions::new()
        .append(true)
        .open(f("x"))
        .unwrap()
        .write_all(b" and more")
        .unwrap();
    assert_eq!(
        fs::metadata(t("x")).unwrap().len(),
        12,
        "{ctx}: size after append"
    );
    assert_eq!(
        fs::read(t("x")).unwrap(),
        b"TWO and more",
        "{ctx}: appended bytes"
    );

    // Truncation, a mode, times.
    prime(to, "x");
    truncate(&f("x"), 2).unwrap();
    assert_eq!(fs::read(t("x")).unwrap(), b"TW", "{ctx}: truncated");
    chmod(&f("x"), 0o600).unwrap();
    assert_eq!(
        fs::metadata(t("x")).unwrap().mode() & 0o7777,
        0o600,
        "{ctx}: chmod"
    );
    utimensat(&f("x"), (7, 0), (1_000_000_000, 5), 0).unwrap();
    assert_eq!(
        mtime_of(&fs::metadata(t("x")).unwrap()),
        (1_000_000_000, 5),
        "{ctx}: mtime"
    );

    // A listing `to` has cached (directories of the live tree keep theirs across opens).
    fs::create_dir(f("d")).unwrap();
    assert_eq!(
        listing(&t("d")),
        Vec::<String>::new(),
        "{ctx}: new directory"
    );
    fs::write(f("d/in"), b"in").unwrap();
    fs::create_dir(f("d/sub")).unwrap();
    assert_eq!(
        listing(&t("d")),
        ["in", "sub"],
        "{ctx}: listing after creates"
    );

    // Rename over an existing name, hard link, symlink.
    prime(to, "x");
    prime(to, "d/in");
    fs::rename(f("x"), f("d/in")).unwrap();
    assert_errno(
        fs::metadata(t("x")),
        libc::ENOENT,
        &format!("{ctx}: renamed away"),
    );
    assert_eq!(fs::read(t("d/in")).unwrap(), b"TW", "{ctx}: renamed over");
    assert_eq!(
        listing(&t("d")),
        ["in", "sub"],
        "{ctx}: listing after rename"
    );
    fs::hard_link(f("d/in"), f("d/twin")).unwrap();
    assert_eq!(
        fs::metadata(t("d/in")).unwrap().nlink(),
        2,
        "{ctx}: link count"
    );
    assert_eq!(fs::read(t("d/twin")).unwrap(), b"TW", "{ctx}: hard link");
    symlink("in", f("d/ln")).unwrap();
    assert_eq!(
        fs::read_link(t("d/ln")).unwrap(),
        PathBuf::from("in"),
        "{ctx}: symlink"
    );

    // Removals.
    prime(to, "d/twin");
    fs::remove_file(f("d/twin")).unwrap();
    assert_errno(
        fs::metadata(t("d/twin")),
        libc::ENOENT,
        &format!("{ctx}: unlinked"),
    );
    assert_eq!(
        fs::metadata(t("d/in")).unwrap().nlink(),
        1,
        "{ctx}: link count after unlink"
    );
    fs::remove_dir(f("d/sub")).unwrap();
    assert_eq!(
        listing(&t("d")),
        ["in", "ln"],
        "{ctx}: listing after removals"
    );

    // A file held open through `to` sees writes made through `from`.
    let held = fs::File::open(t("d/in")).unwrap();
    fs::write(f("d/in"), b"rewritten").unwrap();
    let mut buf = [0u8; 32];
    let n = held.read_at(&mut buf, 0).unwrap();
    assert_eq!(
        &buf[..n],
        b"rewritten",
        "{ctx}: read through a handle opened before"
    );

    // Clean up for the other direction.
    fs::remove_file(f("d/in")).unwrap();
    fs::remove_file(f("d/ln")).unwrap();
    fs::remove_dir(f("d")).unwrap();
    assert_eq!(listing(to), Vec::<String>::new(), "{ctx}: empty again");
}

both_backends! {
    fn changes_are_seen_through_the_other_mount(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_pair(backend, &store, &["--metrics", "127.0.0.1:0", "--log-format", "json"]);
        let (a, b) = (m.current(), m.second_root().join("current"));
        let (first, second) = (backend, m.second_backend());
        changes_cross(&a, &b, &format!("{first} -> {second}"));
        changes_cross(&b, &a, &format!("{second} -> {first}"));

        // Both mounts serve one tree: one event log.
        fs::write(a.join("from-a"), b"a").unwrap();
        fs::write(b.join("from-b"), b"b").unwrap();
        assert_eq!(listing(&a), ["from-a", "from-b"]);
        assert_eq!(listing(&b), ["from-a", "from-b"]);

        // The two side by side: metrics per backend, debug/ per mount.
        let addr = metrics_addr(&m);
        assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_owned()));
        let s = samples(&get(&addr, "/metrics").1);
        for side in [first, second] {
            let label = format!("backend=\"{side}\"");
            assert_eq!(value(&s, "lighthouse_fs_build_info", &[&label]), 1.0, "{side}: build info");
            let writes = value(&s, "lighthouse_fs_operation_duration_seconds_count", &["op=\"write\"", &label, "section=\"current\""]);
            assert!(writes >= 5.0, "{side}: writes counted apart: {writes}");
            let told = value(&s, "lighthouse_fs_kernel_notifications_total", &[&label, "outcome=\"sent\""]);
            assert!(told >= 10.0, "{side}: its kernel was told of the other's changes: {told}");
            assert_eq!(value(&s, "lighthouse_fs_kernel_notifications_total", &[&label, "outcome=\"timed_out\""]), 0.0);
        }
        for (root, side) in [(m.root(), first), (m.second_root(), second)] {
            let perf = doc(&fs::read_to_string(root.join("debug/performance.json")).unwrap());
            assert_eq!(perf["backend"].as_str(), Some(side.as_str()), "performance.json read through {side}");
            let mounts = perf["mounts"].as_array().unwrap();
            let backends: Vec<&str> = mounts.iter().map(|m| m["backend"].as_str().unwrap()).collect();
            assert_eq!(backends, [first.as_str(), second.as_str()]);
            let health = doc(&fs::read_to_string(root.join("debug/health.json")).unwrap());
            assert_eq!(health["mountpoint"].as_str(), Some(root.to_str().unwrap()));
            assert_eq!(health["mounts"].as_array().unwrap().len(), 2);
        }

        // One SIGTERM unmounts both.
        let log = m.stop();
        assert!(!log.contains("\"level\":\"WARN\""), "no warnings:\n{log}");
        let m = Mount::start(second, &store);
        assert_eq!(listing(&m.current()), ["from-a", "from-b"], "persisted");
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn random_changes_through_either_mount_match_tmpfs(backend: Backend) {
        const STEPS: usize = 1500;
        let seed = test_seed();
        let ctx = format!("[{backend} first] seed {seed} (rerun with LIGHTHOUSE_TEST_SEED={seed})");
        eprintln!("random_changes_through_either_mount_match_tmpfs: {ctx}");
        let reference = Tmpfs::new();
        let (_t, store) = fresh_store();
        let m = Mount::start_pair(backend, &store, &[]);
        // Each kernel can be told of the other's changes (else the reads below pass or
        // fail by the luck of TTLs).
        let health = doc(&fs::read_to_string(m.root().join("debug/health.json")).unwrap());
        assert_eq!(health["status"].as_str(), Some("ok"), "{ctx}: {health}");
        for mount in health["mounts"].as_array().unwrap() {
            assert_eq!(mount["notifications"]["available"].as_bool(), Some(true), "{ctx}: {mount}");
        }
        let sides = [m.current(), m.second_root().join("current")];
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut recent: Vec<String> = Vec::new();
        for i in 0..STEPS {
            let ents = entries(reference.path());
            let op = gen_op(&mut rng, &ents);
            // Reads as often through the mount that did not make the last change.
            let side = rng.random_range(0..2);
            let want = apply(reference.path(), &op);
            let got = apply(&sides[side], &op);
            recent.push(format!("#{i} via {}: {op:?}", ["first", "second"][side]));
            if recent.len() > 12 {
                recent.remove(0);
            }
            assert!(
                got == want,
                "{ctx}: op #{i} through the {} mount: {op:?}\n  lighthouse-fs: {got:?}\n  tmpfs: {want:?}\nrecent:\n  {}",
                ["first", "second"][side],
                recent.join("\n  ")
            );
            if i % 250 == 249 {
                let want = snapshot(reference.path(), SnapOpts::SHAPE);
                for (n, side) in sides.iter().enumerate() {
                    assert_trees_eq(&snapshot(side, SnapOpts::SHAPE), &want, &format!("{ctx}: mount {n} after op #{i}"));
                }
            }
        }
        let perf = doc(&fs::read_to_string(m.root().join("debug/performance.json")).unwrap());
        for mount in perf["mounts"].as_array().unwrap() {
            let told = &mount["notifications"];
            assert!(told["sent"].as_u64().unwrap() > 0, "{ctx}: {mount}");
            assert_eq!(told["timed_out"].as_u64(), Some(0), "{ctx}: {mount}");
        }
        m.stop();
    }
}

both_backends! {
    fn one_mount_unmounted_the_other_serves_on(backend: Backend) {
        let (_t, store) = fresh_store();
        let mut m = Mount::start_pair(backend, &store, &[]);
        fs::write(m.path("before"), b"1").unwrap();
        // The second goes away from outside (an operator's umount).
        let second = m.second_root().to_path_buf();
        nix::mount::umount(&second).unwrap_or_else(|e| panic!("umount {}: {e}", second.display()));
        let deadline = std::time::Instant::now() + EXIT_TIMEOUT;
        while m.second_is_mounted() {
            assert!(std::time::Instant::now() < deadline, "the second mount is still in the table");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The first serves on, and changes are no longer told to the kernel that left.
        fs::write(m.path("after"), b"2").unwrap();
        assert_eq!(fs::read(m.path("before")).unwrap(), b"1");
        assert_eq!(listing(&m.current()), ["after", "before"]);
        // The server notices within its poll interval.
        let mounts = || {
            let perf = doc(&fs::read_to_string(m.root().join("debug/performance.json")).unwrap());
            perf["mounts"].as_array().unwrap().len()
        };
        while mounts() != 1 {
            assert!(std::time::Instant::now() < deadline, "the ended mount is still listed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(m.wait_exit(std::time::Duration::from_millis(200)).is_none(), "the server serves on");
        m.signal(libc::SIGTERM);
        m.assert_clean_exit("SIGTERM after one mount ended");
    }
}

/// `--mount` is checked before anything is mounted: each error names what is wrong.
#[test]
fn bad_mount_arguments_are_refused() {
    run_test("bad_mount_arguments_are_refused", DEFAULT_TIMEOUT, || {
        let (_t, store) = fresh_store();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let store = store.to_str().unwrap();
        let spec = |p: &Path, backend: &str| format!("{}={backend}", p.display());
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                vec![
                    "--mount".into(),
                    spec(&a, "fuser"),
                    "--mount".into(),
                    spec(&a, "fuse3"),
                ],
                "the same mountpoint twice",
            ),
            (
                vec![
                    "--mount".into(),
                    spec(&a, "fuser"),
                    "--mount".into(),
                    spec(&b, "fuser"),
                ],
                "fuser already serves",
            ),
            (
                vec!["--mount".into(), spec(&a, "fusex")],
                "unknown backend \"fusex\"",
            ),
            (
                vec!["--mount".into(), a.display().to_string()],
                "expected PATH=BACKEND",
            ),
            (
                vec![a.display().to_string(), "--mount".into(), spec(&b, "fuse3")],
                "cannot be used with",
            ),
            (
                vec!["--mount".into(), spec(&dir.path().join("missing"), "fuser")],
                "missing",
            ),
        ];
        for (args, want) in cases {
            let mut all = vec!["mount".to_string(), "--store".into(), store.into()];
            all.extend(args.iter().cloned());
            let out = cli(&all);
            assert!(!out.status.success(), "{args:?} was accepted");
            assert!(
                out.stderr.contains(want),
                "{args:?}: expected {want:?} in:\n{}",
                out.stderr
            );
        }
        assert!(
            fuse_mounts()
                .iter()
                .all(|m| !m.mount_point.starts_with(dir.path())),
            "nothing was mounted"
        );
    });
}
