//! The store on PostgreSQL (`--store postgres://…`), through real mounts on both backends:
//! what is written persists in the database (a remount with an empty local cache reads
//! every byte back from it), real programs work on it, a second writer is refused
//! clearly, a database that goes away fails changes with EIO within a bounded time while
//! reads go on, and passwords never show.
//!
//! The server: `LIGHTHOUSE_TEST_POSTGRES` (CI starts one), else a throwaway cluster per
//! test (support/src/postgres.rs).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::differential::{apply, entries, gen_op, test_seed};
use common::*;
use lighthouse_fs_support::postgres::{psql, test_server, PgCluster, Server};
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// A fresh database on the test server, and a local cache directory for a mount of it.
struct Project {
    _server: Server,
    url: String,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Project {
    fn new() -> Project {
        Project::on(test_server())
    }

    fn on(server: Server) -> Project {
        let url = server.fresh_database();
        let dir = tempfile::Builder::new()
            .prefix("lhfs-pg-")
            .tempdir()
            .unwrap();
        let path = dir.path().canonicalize().unwrap();
        Project {
            _server: server,
            url,
            _dir: dir,
            dir: path,
        }
    }

    /// The store argument.
    fn store(&self) -> &Path {
        Path::new(&self.url)
    }

    /// A local cache directory of its own (`n` tells mounts apart).
    fn cache(&self, n: usize) -> String {
        self.dir.join(format!("cache-{n}")).display().to_string()
    }

    fn mount(&self, backend: Backend, cache: usize) -> Mount {
        Mount::start_with(backend, self.store(), &["--cache", &self.cache(cache)])
    }

    /// One SQL answer (psql -At).
    fn sql(&self, query: &str) -> String {
        psql(&self.url, query).trim().to_owned()
    }
}

/// A JSON file of `debug/`.
fn doc(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A source tree to copy in: text, an empty file, a 3 MiB file (several chunks), a
/// symlink, a nested directory.
fn source_tree() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/readme.txt"), b"hello from the database\n").unwrap();
    fs::write(src.join("a/b/empty"), b"").unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    fs::write(src.join("a/b/big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("b/big.bin", src.join("a/link")).unwrap();
    (t, src)
}

both_backends! {
    #[timeout_secs(240)]
    fn a_project_persists_in_the_database(backend: Backend) {
        let p = Project::new();
        let (_src_dir, src) = source_tree();
        let m = p.mount(backend, 1);
        let c = m.current();
        // cp -a, tar, git and Python's file API on the mount.
        sh(&c, &format!("cp -a {}/. copied/ 2>/dev/null || (mkdir copied && cp -a {}/. copied/)", src.display(), src.display()));
        sh(&c, &format!("mkdir untarred && tar -C {} -cf - . | tar -C untarred -xf -", src.display()));
        sh(&c, "mkdir repo && cd repo && git init -q && echo one > f && git add f && git commit -qm first && echo two >> f && git commit -qam second");
        sh(&c, "python3 -c \"f = open('py.txt', 'w'); f.write('written by python\\n'); f.close()\"");
        assert_eq!(sh(&c.join("repo"), "git log --format=%s"), "second\nfirst\n");
        let head = m.stop();
        assert!(!head.contains("WARN"), "[{backend}] warnings:\n{head}");

        // The database holds the log and every object.
        let events: u64 = p.sql("SELECT count(*) FROM events").parse().unwrap();
        let max: u64 = p.sql("SELECT max(seq) FROM events").parse().unwrap();
        assert_eq!(events, max, "[{backend}] one event per seq, none missing");
        assert!(events > 40, "[{backend}] {events} events");
        let chunks: u64 = p.sql("SELECT count(*) FROM chunks WHERE idx = 3").parse().unwrap();
        assert_eq!(chunks, 1, "[{backend}] the 3 MiB file is 4 chunks, stored once though copied twice");

        // Another backend, an empty cache: every byte comes back from the database.
        let m = p.mount(backend.other(), 2);
        let health = doc(&fs::read_to_string(m.root().join("debug/health.json")).unwrap());
        assert_eq!(health["status"].as_str(), Some("ok"), "{health}");
        assert_eq!(health["store"]["head_seq"].as_u64(), Some(max), "{health}");
        let c = m.current();
        for copy in ["copied", "untarred"] {
            let diff = Command::new("diff").arg("-r").arg("--no-dereference").arg(&src).arg(c.join(copy)).output().unwrap();
            assert!(diff.status.success(), "[{backend}] {copy} differs: {}", String::from_utf8_lossy(&diff.stdout));
        }
        assert_eq!(fs::read_link(c.join("copied/a/link")).unwrap(), Path::new("b/big.bin"));
        assert_eq!(fs::read_to_string(c.join("py.txt")).unwrap(), "written by python\n");
        assert_eq!(sh(&c.join("repo"), "git log --format=%s"), "second\nfirst\n");
        assert_eq!(sh(&c.join("repo"), "git status --porcelain"), "");
        // history/ reads the past from the database too.
        let first = fs::read_dir(m.root().join("history")).unwrap().count();
        assert!(first > 0);
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn random_changes_match_tmpfs_and_survive_a_remount(backend: Backend) {
        const STEPS: usize = 600;
        let seed = test_seed();
        let ctx = format!("[{backend}] seed {seed} (rerun with LIGHTHOUSE_TEST_SEED={seed})");
        eprintln!("random_changes_match_tmpfs_and_survive_a_remount: {ctx}");
        let p = Project::new();
        let reference = Tmpfs::new();
        let m = p.mount(backend, 1);
        let mut rng = SmallRng::seed_from_u64(seed);
        for i in 0..STEPS {
            let op = gen_op(&mut rng, &entries(reference.path()));
            let want = apply(reference.path(), &op);
            let got = apply(&m.current(), &op);
            assert!(got == want, "{ctx}: op #{i} {op:?}\n  lighthouse-fs: {got:?}\n  tmpfs: {want:?}");
        }
        let want = snapshot(reference.path(), SnapOpts::SHAPE);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::SHAPE), &want, &ctx);
        m.stop();
        // Content, modes and xattrs from the database, through the other backend.
        let m = p.mount(backend.other(), 2);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::SHAPE), &want, &format!("{ctx}: after a remount"));
        m.stop();
    }
}

/// Poll `check` for up to 10 s; how long it took to hold.
#[track_caller]
fn within(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

both_backends! {
    #[timeout_secs(240)]
    fn two_hosts_share_one_project_and_passwords_never_show(backend: Backend) {
        let p = Project::new();
        // Trust authentication takes any password: one that must never be printed.
        let secret = "pw-h8Zq2Kx";
        let with_password = p.url.replacen("postgres@", &format!("postgres:{secret}@"), 1);
        assert_ne!(with_password, p.url);
        // Host A on `backend`, host B on the other: mixed.
        let a = Mount::start_with(backend, Path::new(&with_password), &["--cache", &p.cache(1), "--metrics", "127.0.0.1:0"]);
        let b = Mount::start_with(backend.other(), Path::new(&with_password), &["--cache", &p.cache(2)]);

        // Close-to-open: what A closed, an open on B that starts afterwards reads.
        fs::write(a.path("f"), b"one").unwrap();
        assert_eq!(fs::read(b.path("f")).unwrap(), b"one", "[{backend}] B reads A's close");
        fs::write(b.path("f"), b"two, longer").unwrap();
        assert_eq!(fs::read(a.path("f")).unwrap(), b"two, longer", "[{backend}] A reads B's close");
        // Names come by the follower: B's kernel is told.
        fs::create_dir(a.path("d")).unwrap();
        let delay = within("B sees A's mkdir", || b.path("d").is_dir());
        eprintln!("[{backend}] a name A made showed on B after {delay:?}");
        fs::rename(b.path("d"), b.path("e")).unwrap();
        within("A sees B's rename", || a.path("e").is_dir() && !a.path("d").exists());
        // The same name made on both: exactly one wins, the other gets EEXIST.
        let made = [&a, &b].map(|m| fs::create_dir(m.path("same")));
        let won = made.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "[{backend}] one mkdir wins: {made:?}");
        for r in &made {
            if let Err(e) = r {
                assert_eq!(errno_of(e), libc::EEXIST, "[{backend}] the loser's errno");
            }
        }
        // An annotation written on A is read on B; B's stream shows A's write.
        fs::write(a.root().join("shadows/f"), br#"{"kind":"comment","text":"from A","anchor":{"start_line":1,"end_line":1}}"#).unwrap();
        within("B reads A's annotation", || fs::read_to_string(b.root().join("shadows/f")).is_ok_and(|t| t.contains("from A")));
        // One log, one order: both hosts' heads agree, and history is the same bytes.
        let head = |m: &Mount| doc(&fs::read_to_string(m.root().join("debug/health.json")).unwrap())["store"]["head_seq"].as_u64().unwrap();
        within("the heads agree", || head(&a) == head(&b));
        let at = format!("history/@{}/f", head(&a));
        assert_eq!(fs::read(a.root().join(&at)).unwrap(), fs::read(b.root().join(&at)).unwrap());
        let hosts = p.sql("SELECT count(DISTINCT host) FROM events");
        assert_eq!(hosts, "1", "one machine: one host name");

        // Nowhere a mount shows the password: its log, debug/, the mount table, metrics.
        let mut seen = String::new();
        for f in ["health.json", "performance.json", "cache.json", "views.json"] {
            if let Ok(text) = fs::read_to_string(a.root().join("debug").join(f)) {
                seen.push_str(&text);
            }
        }
        seen.push_str(&fs::read_to_string("/proc/self/mountinfo").unwrap());
        let addr = a.stderr().lines().find_map(|l| l.split("http://").nth(1).map(|a| a.split('/').next().unwrap().to_owned()));
        if let Some(addr) = addr {
            seen.push_str(&common::metrics::get(&addr, "/metrics").1);
        }
        let log = a.stderr();
        seen.push_str(&log);
        seen.push_str(&b.stderr());
        assert!(log.contains("postgres://postgres:***@"), "the log names the store: {log}");
        assert!(!seen.contains(secret), "the password showed:\n{seen}");

        // A killed with -9: B goes on, and what A acknowledged is there.
        let mut a = a;
        a.kill9();
        fs::write(b.path("after"), b"b goes on").unwrap();
        b.stop();
        let m = p.mount(backend, 3);
        assert_eq!(fs::read(m.path("f")).unwrap(), b"two, longer");
        assert_eq!(listing(&m.current()), ["after", "e", "f", "same"]);
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(240)]
    fn a_database_that_goes_away_fails_changes_and_loses_nothing(backend: Backend) {
        // A cluster of this test's own: it is stopped and started.
        let p = Project::on(Server::Own(PgCluster::start()));
        let Server::Own(cluster) = &p._server else { unreachable!() };
        let m = p.mount(backend, 1);
        fs::write(m.path("kept.txt"), b"before the outage\n").unwrap();
        fs::create_dir(m.path("dir")).unwrap();

        cluster.stop();
        // What the host has reads on.
        assert_eq!(fs::read(m.path("kept.txt")).unwrap(), b"before the outage\n");
        assert_eq!(listing(&m.current()), ["dir", "kept.txt"]);
        // Changes fail with EIO, each within the connect timeout, before anything changed.
        let started = Instant::now();
        assert_errno(fs::create_dir(m.path("during")), libc::EIO, "mkdir while the database is down");
        assert_errno(fs::File::create(m.path("new.txt")).map(drop), libc::EIO, "a create while the database is down");
        assert_errno(fs::rename(m.path("dir"), m.path("moved")), libc::EIO, "a rename while the database is down");
        assert!(started.elapsed() < Duration::from_secs(30), "bounded: {:?}", started.elapsed());
        assert_eq!(listing(&m.current()), ["dir", "kept.txt"], "nothing changed");
        let health = doc(&fs::read_to_string(m.root().join("debug/health.json")).unwrap());
        assert_eq!(health["status"].as_str(), Some("degraded"), "{health}");
        let problems = health["problems"].to_string();
        assert!(problems.contains("database does not answer"), "{problems}");

        // Back: changes go through again without a restart, and health is ok.
        cluster.start_again();
        let took = within("a mkdir after the database came back", || fs::create_dir(m.path("after")).is_ok());
        eprintln!("[{backend}] changes went through {took:?} after the database came back");
        fs::write(m.path("after/new.txt"), b"after\n").unwrap();
        let health = doc(&fs::read_to_string(m.root().join("debug/health.json")).unwrap());
        assert_eq!(health["status"].as_str(), Some("ok"), "{health}");
        m.stop();

        // Remounted (the other backend, an empty cache): what was acknowledged is there,
        // what failed is not.
        let m = p.mount(backend.other(), 2);
        assert_eq!(fs::read(m.path("kept.txt")).unwrap(), b"before the outage\n");
        assert_eq!(fs::read(m.path("after/new.txt")).unwrap(), b"after\n");
        assert_eq!(listing(&m.current()), ["after", "dir", "kept.txt"]);
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(240)]
    fn store_copy_moves_a_store_and_its_history_both_ways(backend: Backend) {
        // An embedded store with some history: files, a rename, a chmod, a symlink, an
        // extended attribute, an annotation (a view's event), a 3 MiB file.
        let (_t, dir) = fresh_store();
        let (_src_dir, src) = source_tree();
        let m = Mount::start(backend, &dir);
        sh(&m.current(), &format!("cp -a {}/. .", src.display()));
        sh(&m.current(), "mv a/readme.txt a/README && chmod 600 a/README && ln -s README a/latest && echo v2 >> a/README");
        lsetxattr(&m.path("a/README"), "user.origin", b"copied").unwrap();
        fs::write(m.root().join("shadows/a/README"), br#"{"kind":"comment","text":"a note","anchor":{"start_line":1,"end_line":1}}"#).unwrap();
        m.stop();

        let p = Project::new();
        let back = dir.parent().unwrap().join("back");
        let (dir_s, back_s) = (dir.display().to_string(), back.display().to_string());
        let cache = p.cache(9);
        run(&["store", "copy", "--from", &dir_s, "--to", &p.url, "--cache", &cache]);
        run(&["store", "copy", "--from", &p.url, "--to", &back_s]);

        // The same log (seqs, times, callers, agents, changes) in all three.
        let log = |store: &str| run(&["log", "--json", "--store", store]);
        let original = log(&dir_s);
        assert!(original.lines().count() > 10, "{original}");
        assert!(original.contains("\"annotate\"") || original.contains("shadows"), "{original}");
        assert_eq!(log(&p.url), original, "[{backend}] the log in PostgreSQL");
        assert_eq!(log(&back_s), original, "[{backend}] the log copied back");
        // The same trees, now and in the past, byte for byte.
        let exports = tempfile::tempdir().unwrap();
        for at in [None, Some("@4")] {
            let mut made = Vec::new();
            for (i, store) in [&dir_s, &p.url, &back_s].into_iter().enumerate() {
                let dest = exports.path().join(format!("{i}-{}", at.unwrap_or("now")));
                let mut args = vec!["export", dest.to_str().unwrap(), "--store", store.as_str()];
                if let Some(at) = at {
                    args.extend(["--at", at]);
                }
                run(&args);
                made.push(dest);
            }
            for other in &made[1..] {
                let diff = Command::new("diff").arg("-r").arg("--no-dereference").arg(&made[0]).arg(other).output().unwrap();
                assert!(diff.status.success(), "[{backend}] export at {at:?} differs: {}", String::from_utf8_lossy(&diff.stdout));
            }
        }
        // Into a store that has events: refused, nothing written.
        let out = cli(["store", "copy", "--from", &dir_s, "--to", &p.url, "--cache", &cache].map(std::ffi::OsString::from));
        out.assert_error(&["is not empty"]);
        assert_eq!(log(&p.url), original);

        // The copy mounts, with its history.
        let m = p.mount(backend.other(), 3);
        assert_eq!(fs::read_to_string(m.path("a/README")).unwrap(), "hello from the database\nv2\n");
        assert_eq!(fs::read_link(m.path("a/latest")).unwrap(), Path::new("README"));
        m.stop();
    }
}

/// Bytes of the regular files below `dir`.
fn bytes_below(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    total
}

both_backends! {
    fn the_local_cache_keeps_within_its_budget(backend: Backend) {
        let p = Project::new();
        let cache = p.cache(1);
        let objects = Path::new(&cache).join("objects");
        let m = Mount::start_with(backend, p.store(), &["--cache", &cache, "--cache-size", "1M"]);
        // Five files of 400 KiB: 2 MB written, at most 1 MiB (and the newest) kept.
        let content = |i: u8| vec![i; 400 * 1024];
        for i in 0..5u8 {
            fs::write(m.path(&format!("f{i}")), content(i)).unwrap();
            let held = bytes_below(&objects);
            assert!(held <= 1024 * 1024, "[{backend}] after f{i}: {held} bytes cached");
        }
        // Every file reads back whole, the evicted ones fetched from the database again;
        // the kernel's page cache is dropped so the reads reach the store.
        fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
        for i in 0..5u8 {
            assert_eq!(fs::read(m.path(&format!("f{i}"))).unwrap(), content(i), "[{backend}] f{i}");
            assert!(bytes_below(&objects) <= 1024 * 1024);
        }
        m.stop();
        // A bad size is refused clearly.
        let mnt = tempfile::tempdir().unwrap();
        let out = mount_expect_failure(backend, p.store(), mnt.path(), &["--cache", &cache, "--cache-size", "12Q"]);
        assert!(!out.status.success());
        assert!(out.stderr.contains("--cache-size") && out.stderr.contains("K, M, G or T"), "{}", out.stderr);
    }
}

/// `lighthouse-fs ARGS`, asserting success; its stdout.
#[track_caller]
fn run(args: &[&str]) -> String {
    cli(args
        .iter()
        .map(std::ffi::OsString::from)
        .collect::<Vec<_>>())
    .ok()
    .to_owned()
}

/// The store itself, two of it on one database (two hosts), no mount: appends stay one
/// dense order whoever is behind, a change on a tree that missed another's is refused,
/// what a turn fetched reads the same from memory as from the database, and a session
/// lost under an append neither loses the event nor appends it twice.
#[test]
fn two_stores_append_one_dense_log_and_ride_out_a_lost_session() {
    use lighthouse_fs::store::{AppendError, Change, PgStore};
    use lighthouse_fs::vocab::{Caller, FileKind};

    let p = Project::new();
    let host = &Caller::HOST;
    let mkdir = |path: &str| Change::Create {
        path: path.into(),
        kind: FileKind::Dir,
        perm: 0o755,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    let note = |path: &str| Change::View {
        view: "test".into(),
        op: "note".into(),
        path: path.into(),
        body: "{}".into(),
    };
    let open = |n: usize| {
        PgStore::open(&p.url, &p.dir.join(format!("cache-{n}")), 1 << 30)
            .unwrap()
            .store
    };
    let (a, b) = (open(1), open(2));

    // A changes the tree under its turn.
    a.begin_change().unwrap();
    assert_eq!(a.append(Some(0), 10, host, None, mkdir("/a")), Ok(1));
    a.end_change();
    // B, behind, appends a view's event without the turn: it folds A's first.
    assert_eq!(b.append(None, 11, host, None, note("/a")), Ok(2));
    assert_eq!(b.head(), 2);
    // A change made on the empty tree (base 0) missed A's mkdir: refused, nothing written.
    assert_eq!(
        b.append(Some(0), 12, host, None, mkdir("/b")),
        Err(AppendError::Moved { head: 2 })
    );
    assert_eq!(
        b.failure(),
        None,
        "a refused change does not fail the store"
    );
    // A's turn brings B's event; reading it (from memory) gives what the database has.
    a.begin_change().unwrap();
    assert_eq!(a.head(), 2);
    let mut read = Vec::new();
    a.read(1, None, &mut |e| {
        read.push((e.seq, e.change));
        Ok(())
    })
    .unwrap();
    assert_eq!(read, [(2, note("/a"))]);
    assert_eq!(a.append(Some(2), 13, host, None, mkdir("/c")), Ok(3));
    a.end_change();

    // Every session of both stores cut (a database restart looks the same to them): the
    // next append is made on a new session, once.
    p.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lighthouse-fs'");
    assert_eq!(a.append(None, 14, host, None, note("/c")), Ok(4));
    b.begin_change().unwrap();
    assert_eq!(b.head(), 4);
    assert_eq!(b.append(Some(4), 15, host, None, mkdir("/d")), Ok(5));
    b.end_change();
    assert_eq!(
        p.sql("SELECT count(*), min(seq), max(seq) FROM events"),
        "5|1|5"
    );
    assert_eq!(
        p.sql("SELECT string_agg(op || ' ' || path, ',' ORDER BY seq) FROM events"),
        "mkdir /a,note /a,mkdir /c,note /c,mkdir /d"
    );
    // The turn is free again: no session holds the writer lock.
    assert_eq!(
        p.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 2"),
        "0"
    );
    a.close();
    b.close();
}
