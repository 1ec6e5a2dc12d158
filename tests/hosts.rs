//! Several hosts on one PostgreSQL store, each a `lighthouse-fs` process in a network
//! namespace of its own (a veth pair, real TCP, a host name of its own; see
//! support/src/netns.rs), through real mounts: host A on the test's backend, host B on
//! the other (mixed), host C on A's (the same backend twice).
//!
//! One log in one order (thousands of conflicting changes from two hosts), close-to-open, views alike everywhere, writers of one file on
//! two hosts, a seeded differential against tmpfs with its operations spread over two
//! hosts, a host's link cut and restored, PostgreSQL restarted mid-workload, and
//! `kill -9` of a host mid-write.
//!
//! Each test starts a cluster of its own that trusts the namespaces' network (CI's
//! server listens on 127.0.0.1 only, which a namespace cannot reach).

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::differential::{apply, entries, gen_op, test_seed};
use common::*;
use lighthouse_fs_support::{psql, NetNs, PgCluster};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A project on a cluster of its own, and the hosts that mount it.
struct Project {
    cluster: PgCluster,
    url: String,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

/// A host: its namespace and its mount.
struct Host {
    /// First: dropped (the server stopped) before its namespace goes.
    mount: Option<Mount>,
    name: &'static str,
    ns: NetNs,
}

impl Project {
    fn new() -> Project {
        let cluster = PgCluster::start_for_namespaces();
        let url = cluster.fresh_database();
        let dir = tempfile::Builder::new()
            .prefix("lhfs-hosts-")
            .tempdir()
            .unwrap();
        let path = dir.path().canonicalize().unwrap();
        Project {
            cluster,
            url,
            _dir: dir,
            dir: path,
        }
    }

    /// A host named `name` in a namespace of its own, mounting the project with
    /// `backend` through its link, with a cache of its own.
    fn host(&self, name: &'static str, backend: Backend) -> Host {
        let ns = NetNs::new(name);
        let mut host = Host {
            name,
            ns,
            mount: None,
        };
        host.mount = Some(self.mount_on(&host, backend));
        host
    }

    fn mount_on(&self, host: &Host, backend: Backend) -> Mount {
        let url = self.cluster.url_via(&self.url, host.ns.outside);
        let cache = self.dir.join(format!("cache-{}", host.name));
        Mount::start_on_host(
            backend,
            Path::new(&url),
            &["--cache", cache.to_str().unwrap()],
            &host.ns,
        )
    }

    fn sql(&self, query: &str) -> String {
        psql(&self.url, query).trim().to_owned()
    }
}

impl Host {
    fn m(&self) -> &Mount {
        self.mount.as_ref().expect("mounted")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.m().path(rel)
    }

    fn root(&self) -> &Path {
        self.m().root()
    }

    fn health(&self) -> serde_json::Value {
        let text = fs::read_to_string(self.root().join("debug/health.json")).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// (head_seq, shown_seq) of this host.
    fn seqs(&self) -> (u64, u64) {
        let h = self.health();
        (
            h["store"]["head_seq"].as_u64().unwrap(),
            h["store"]["shown_seq"].as_u64().unwrap(),
        )
    }

    fn stop(&mut self) -> String {
        self.mount.take().map(Mount::stop).unwrap_or_default()
    }
}

/// Until every host shows every event any of them has made: what one did, the others'
/// kernels were told of.
#[track_caller]
fn settle(hosts: &[&Host]) {
    let newest = hosts.iter().map(|h| h.seqs().0).max().unwrap();
    within(
        "every host shows every event",
        Duration::from_secs(30),
        || hosts.iter().all(|h| h.seqs().1 >= newest),
    );
}

/// Poll `check` until it holds, for at most `limit`; how long it took.
#[track_caller]
fn within(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

#[track_caller]
fn diff_r(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A source tree for cp/tar/rsync: text, a 2 MiB file (two chunks), a symlink, a
/// nested directory.
fn source_tree() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("a/b")).unwrap();
    fs::write(src.join("a/notes.txt"), b"one\ntwo\nthree\n").unwrap();
    let big: Vec<u8> = (0..2 * 1024 * 1024 + 5)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    fs::write(src.join("a/b/big.bin"), &big).unwrap();
    std::os::unix::fs::symlink("b/big.bin", src.join("a/link")).unwrap();
    (t, src)
}

both_backends! {
    #[timeout_secs(300)]
    fn hosts_in_network_namespaces_share_one_project(backend: Backend) {
        let p = Project::new();
        let a = p.host("host-a", backend);
        let b = p.host("host-b", backend.other());
        let c = p.host("host-c", backend);
        // Real TCP from each namespace: the sessions come from the three inner addresses.
        let clients = p.sql("SELECT string_agg(DISTINCT host(client_addr), ' ' ORDER BY host(client_addr)) FROM pg_stat_activity WHERE application_name = 'lighthouse-fs'");
        let mut want: Vec<String> = [&a, &b, &c].iter().map(|h| h.ns.inside.to_string()).collect();
        want.sort();
        assert_eq!(clients, want.join(" "), "[{backend}] sessions from the namespaces");

        // B follows the file changes stream from the start.
        let stream = Tail::start(&b.root().join("streams/file_changes"));

        // Close-to-open, with the programs people use: Python writes on A, cat and grep
        // read on B and C; cp on B, head on A.
        sh(&a.path(""), "python3 -c \"f = open('py.txt', 'w'); f.write('from host a\\n'); f.close()\"");
        assert_eq!(fs::read_to_string(b.path("py.txt")).unwrap(), "from host a\n", "[{backend}] B reads A's close");
        assert_eq!(sh(&c.path(""), "grep -c 'host a' py.txt"), "1\n", "[{backend}] C greps A's close");
        sh(&b.path(""), "printf 'b wrote this\\n' > /tmp/lhfs-hosts-$$ && cp /tmp/lhfs-hosts-$$ fromb.txt && rm /tmp/lhfs-hosts-$$");
        assert_eq!(sh(&a.path(""), "head -c 7 fromb.txt"), "b wrote", "[{backend}] A reads B's close");

        // cp -a, tar and rsync of a tree on one host; every byte on the others.
        let (_t, src) = source_tree();
        sh(&a.path(""), &format!("cp -a {}/. copied/ 2>/dev/null || (mkdir copied && cp -a {}/. copied/)", src.display(), src.display()));
        sh(&b.path(""), &format!("mkdir untarred && tar -C {} -cf - . | tar -C untarred -xf -", src.display()));
        sh(&c.path(""), &format!("rsync -a {}/ synced/", src.display()));
        settle(&[&a, &b, &c]);
        for h in [&a, &b, &c] {
            for copy in ["copied", "untarred", "synced"] {
                diff_r(&src, &h.path(copy));
            }
        }
        // git: a commit on A, read and extended on C, read on B.
        sh(&a.path(""), "mkdir repo && cd repo && git init -q && echo one > f && git add f && git commit -qm first");
        settle(&[&a, &b, &c]);
        sh(&c.path("repo"), "echo two >> f && git commit -qam second");
        settle(&[&a, &b, &c]);
        assert_eq!(sh(&b.path("repo"), "git log --format=%s"), "second\nfirst\n", "[{backend}] B reads the repository");
        assert_eq!(sh(&b.path("repo"), "git status --porcelain"), "");

        // Names: one mkdir of two wins, the other gets EEXIST.
        let made = [&a, &b].map(|h| fs::create_dir(h.path("same")));
        assert_eq!(made.iter().filter(|r| r.is_ok()).count(), 1, "[{backend}] one mkdir wins: {made:?}");
        for r in made.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(errno_of(r), libc::EEXIST);
        }

        // Views are the same everywhere: an annotation from A on B and C, B's stream
        // shows A's writes, history/@N is byte-identical on all three.
        fs::write(a.root().join("shadows/py.txt"), br#"{"kind":"comment","text":"noted on A","anchor":{"start_line":1,"end_line":1}}"#).unwrap();
        for h in [&b, &c] {
            within("the annotation shows", Duration::from_secs(30), || fs::read_to_string(h.root().join("shadows/py.txt")).is_ok_and(|t| t.contains("noted on A")));
        }
        within("B's stream shows A's write", Duration::from_secs(30), || stream.has(|l| l.contains("write") && l.contains("/py.txt")));
        // A reader of B's stream that starts now reads A's cp -a from the log (grep
        // ends at the first match; the stream would wait at its end for more).
        let found = Command::new("timeout")
            .args(["30", "grep", "-m1", "-F", "\"/copied/a/notes.txt\""])
            .arg(b.root().join("streams/file_changes"))
            .output()
            .unwrap();
        assert!(found.status.success(), "[{backend}] B's stream lacks A's cp -a: {found:?}\n{}", b.m().stderr());
        settle(&[&a, &b, &c]);
        let head = a.seqs().0;
        for at in [format!("history/@{head}/py.txt"), format!("history/@{head}/repo/f")] {
            let bytes = fs::read(a.root().join(&at)).unwrap();
            assert_eq!(fs::read(b.root().join(&at)).unwrap(), bytes, "[{backend}] {at} on B");
            assert_eq!(fs::read(c.root().join(&at)).unwrap(), bytes, "[{backend}] {at} on C");
        }
        // Events carry the host that made them.
        assert_eq!(p.sql("SELECT string_agg(DISTINCT host, ' ' ORDER BY host) FROM events"), "host-a host-b host-c");
        // One log, one order: no gap, no repeat.
        assert_eq!(p.sql("SELECT count(*) = max(seq) FROM events"), "t");
        drop(stream);
        for mut h in [a, b, c] {
            let log = h.stop();
            assert!(!log.contains("panicked"), "[{backend}] {}:\n{log}", h.name);
        }
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn a_host_cut_off_reads_on_and_catches_up_when_back(backend: Backend) {
        let p = Project::new();
        let a = p.host("host-a", backend);
        let mut b = p.host("host-b", backend.other());
        fs::write(a.path("kept.txt"), b"before the cut\n").unwrap();
        fs::create_dir(a.path("dir")).unwrap();
        settle(&[&a, &b]);
        assert_eq!(fs::read(b.path("kept.txt")).unwrap(), b"before the cut\n");

        // A handle opened on B before the cut, written during it.
        let mut late = fs::OpenOptions::new().write(true).create(true).truncate(false).open(b.path("late.txt")).unwrap();
        b.ns.cut();
        // B: what it has reads on, whatever the database. The first open tries to catch
        // up (close-to-open) until the connection counts as broken (TCP_USER_TIMEOUT);
        // later ones read at once.
        let started = Instant::now();
        assert_eq!(fs::read(b.path("kept.txt")).unwrap(), b"before the cut\n", "[{backend}] B reads during the cut");
        eprintln!("[{backend}] cut off: the first read took {:?}", started.elapsed());
        assert_eq!(sh(&b.path(""), "grep -c cut kept.txt"), "1\n");
        assert_eq!(listing(&b.path("")), ["dir", "kept.txt", "late.txt"]);
        // B's changes fail with EIO within a bounded time, nothing changed.
        let started = Instant::now();
        assert_errno(fs::create_dir(b.path("during-b")), libc::EIO, "mkdir on a host cut off");
        let first = started.elapsed();
        assert_errno(fs::write(b.path("kept.txt"), b"lost?"), libc::EIO, "a write on a host cut off");
        let both = started.elapsed();
        eprintln!("[{backend}] cut off: the first change failed after {first:?}, the second {:?} later", both - first);
        assert!(both < Duration::from_secs(60), "[{backend}] bounded: {both:?}");
        let health = b.health();
        assert_eq!(health["status"].as_str(), Some("degraded"), "{health}");
        assert!(health["problems"].to_string().contains("database does not answer"), "{health}");
        assert_eq!(fs::read(b.path("kept.txt")).unwrap(), b"before the cut\n", "[{backend}] the failed write changed nothing");
        // What B's open handle writes cannot be committed: fsync says EIO, and the bytes
        // stay on B (only) until the database answers again.
        late.write_all(b"written while cut off\n").unwrap();
        assert_errno(late.sync_all(), libc::EIO, "fsync on a host cut off");
        drop(late);
        assert_eq!(fs::read(b.path("late.txt")).unwrap(), b"written while cut off\n", "[{backend}] B keeps the bytes");
        // A goes on meanwhile.
        fs::write(a.path("during-a.txt"), b"A went on\n").unwrap();
        fs::create_dir(a.path("dir/sub")).unwrap();

        // Back: B catches up by itself (no change of its own needed) and takes changes.
        b.ns.restore();
        let took = within("B shows what A did during the cut", Duration::from_secs(60), || b.path("during-a.txt").exists() && b.path("dir/sub").is_dir());
        eprintln!("[{backend}] B caught up {took:?} after the link came back");
        assert_eq!(fs::read(b.path("during-a.txt")).unwrap(), b"A went on\n");
        within("A reads what B wrote while cut off", Duration::from_secs(60), || fs::read(a.path("late.txt")).is_ok_and(|b| b == b"written while cut off\n"));
        within("B takes changes again", Duration::from_secs(60), || fs::create_dir(b.path("after-b")).is_ok());
        within("B is healthy", Duration::from_secs(30), || b.health()["status"].as_str() == Some("ok"));
        settle(&[&a, &b]);
        assert!(a.path("after-b").is_dir());
        b.stop();

        // Nothing acknowledged is lost, nothing refused is there: a host remounted with
        // an empty cache.
        let mut c = p.host("host-c", backend);
        assert_eq!(listing(&c.path("")), ["after-b", "dir", "during-a.txt", "kept.txt", "late.txt"]);
        assert_eq!(fs::read(c.path("late.txt")).unwrap(), b"written while cut off\n");
        assert_eq!(fs::read(c.path("kept.txt")).unwrap(), b"before the cut\n");
        c.stop();
    }
}

/// Write file `name` under `root` whole (`fill` repeated `len` times) and fsync it: true
/// when every step was acknowledged.
fn write_acknowledged(root: &Path, name: &str, fill: u8, len: usize) -> bool {
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(root.join(name))?;
        for chunk in vec![fill; len].chunks(64 * 1024) {
            f.write_all(chunk)?;
        }
        f.sync_all()
    };
    write().is_ok()
}

both_backends! {
    #[timeout_secs(300)]
    fn postgres_restarted_mid_workload_loses_nothing_acknowledged(backend: Backend) {
        let p = Project::new();
        let a = p.host("host-a", backend);
        let b = p.host("host-b", backend.other());
        let stop = std::sync::atomic::AtomicBool::new(false);
        let acked: Vec<Vec<(String, u8)>> = std::thread::scope(|s| {
            let writers: Vec<_> = [&a, &b].iter().enumerate().map(|(h, host)| {
                let root = host.path("");
                let stop = &stop;
                s.spawn(move || {
                    let mut acked = Vec::new();
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2000 {
                        let name = format!("h{h}-{i:04}");
                        let fill = (i % 250) as u8 + 1;
                        if write_acknowledged(&root, &name, fill, 1000 + i * 37 % 5000) {
                            acked.push((name, fill));
                        }
                        i += 1;
                    }
                    acked
                })
            }).collect();
            std::thread::sleep(Duration::from_secs(2));
            p.cluster.restart();
            std::thread::sleep(Duration::from_secs(2));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let total: usize = acked.iter().map(Vec::len).sum();
        eprintln!("[{backend}] {total} files acknowledged across the restart");
        // Both hosts write again after the restart.
        for h in [&a, &b] {
            within("changes after the restart", Duration::from_secs(60), || fs::write(h.path(&format!("after-{}", h.name)), b"x").is_ok());
        }
        settle(&[&a, &b]);
        drop((a, b));
        let mut c = p.host("host-c", backend.other());
        for (name, fill) in acked.iter().flatten() {
            let bytes = fs::read(c.path(name)).unwrap_or_else(|e| panic!("[{backend}] acknowledged {name} lost: {e}"));
            assert!(!bytes.is_empty() && bytes.iter().all(|x| x == fill), "[{backend}] {name} is not what was acknowledged");
        }
        c.stop();
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn a_host_killed_mid_write_leaves_whole_versions(backend: Backend) {
        let p = Project::new();
        let mut a = p.host("host-a", backend);
        let b = p.host("host-b", backend.other());
        // A rewrites one 3 MiB file again and again (each version one fill byte), fsync
        // each: killed with -9 in the middle of one.
        const LEN: usize = 3 * 1024 * 1024;
        let root = a.path("");
        let writer = std::thread::spawn(move || {
            let mut acked = 0u8;
            for v in 1..=200u8 {
                if !write_acknowledged(&root, "big.bin", v, LEN) {
                    break;
                }
                acked = v;
            }
            acked
        });
        within("a few versions", Duration::from_secs(60), || {
            b.seqs().0 >= 8
        });
        a.mount.as_mut().unwrap().kill9();
        let acked = writer.join().unwrap();
        drop(a.mount.take());
        // B: the file is one whole version, at least the last acknowledged.
        within("B settles", Duration::from_secs(30), || b.seqs().1 == b.seqs().0);
        let got = fs::read(b.path("big.bin")).unwrap();
        assert_eq!(got.len(), LEN, "[{backend}] a whole version on B");
        assert!(got.iter().all(|&x| x == got[0]), "[{backend}] no torn version on B");
        assert!(got[0] >= acked, "[{backend}] version {} on B, {acked} was acknowledged", got[0]);
        // No event names an object the database lacks.
        assert_eq!(p.sql("SELECT count(*) FROM events e WHERE hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.hash = e.hash)"), "0");
        drop(b);
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn writers_of_one_file_on_two_hosts_commit_whole_versions(backend: Backend) {
        let p = Project::new();
        let a = p.host("host-a", backend);
        let b = p.host("host-b", backend.other());
        const LEN: usize = 8192;
        fs::write(a.path("f"), vec![b'0'; LEN]).unwrap();
        settle(&[&a, &b]);

        // On B, a reader and a writer open version 0; A then closes a version of its own.
        let reader = fs::File::open(b.path("f")).unwrap();
        let writer = fs::OpenOptions::new().read(true).write(true).open(b.path("f")).unwrap();
        fs::write(a.path("f"), vec![b'A'; LEN]).unwrap();
        let a_seq = a.seqs().0;
        settle(&[&a, &b]);
        // A new open on B reads A's version (close-to-open)…
        assert_eq!(fs::read(b.path("f")).unwrap(), vec![b'A'; LEN], "[{backend}] a new open on B");
        // …the handles opened before keep the version they opened.
        let mut buf = vec![0u8; LEN];
        reader.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, vec![b'0'; LEN], "[{backend}] B's reader keeps version 0");
        // B's writer changes its version (0) and closes it: whole, later in the log, so
        // it is the file's content on both hosts; A's stays in history/.
        writer.write_all_at(&[b'B'; 100], 0).unwrap();
        drop(writer);
        let mut want = vec![b'0'; LEN];
        want[..100].fill(b'B');
        settle(&[&a, &b]);
        for h in [&a, &b] {
            assert_eq!(fs::read(h.path("f")).unwrap(), want, "[{backend}] {}: B's close is the content", h.name);
            assert_eq!(fs::read(h.root().join(format!("history/@{a_seq}/f"))).unwrap(), vec![b'A'; LEN], "[{backend}] A's version in history on {}", h.name);
        }
        drop(reader);

        // Both hosts rewrite the file at once, each version one fill byte (A's from
        // 'a', B's from 'u') written in several writes: every version in the log is one
        // host's whole version, and both end on the one last in the log.
        let before = a.seqs().0;
        std::thread::scope(|s| {
            for (h, host) in [&a, &b].iter().enumerate() {
                let path = host.path("f");
                s.spawn(move || {
                    for v in 0..40u8 {
                        let fill = b'a' + (h as u8) * 20 + v % 20;
                        let len = 4096 * (1 + (v as usize % 5));
                        let mut f = fs::File::create(&path).unwrap();
                        for chunk in vec![fill; len].chunks(4096) {
                            f.write_all(chunk).unwrap();
                        }
                    }
                });
            }
        });
        settle(&[&a, &b]);
        let last = p.sql("SELECT seq FROM events WHERE op = 'write' AND path = '/f' ORDER BY seq DESC LIMIT 1");
        let on_a = fs::read(a.path("f")).unwrap();
        assert_eq!(fs::read(b.path("f")).unwrap(), on_a, "[{backend}] both hosts end on one version");
        assert_eq!(fs::read(a.root().join(format!("history/@{last}/f"))).unwrap(), on_a, "[{backend}] the version last in the log");
        let versions = p.sql(&format!("SELECT string_agg(seq::text, ' ' ORDER BY seq) FROM events WHERE op = 'write' AND path = '/f' AND seq > {before}"));
        let versions: Vec<u64> = versions.split(' ').map(|s| s.parse().unwrap()).collect();
        assert!(versions.len() >= 80, "[{backend}] {} versions", versions.len());
        for seq in versions {
            let bytes = fs::read(b.root().join(format!("history/@{seq}/f"))).unwrap();
            assert!(bytes.iter().all(|&x| x == bytes[0]), "[{backend}] version @{seq} mixes bytes: {:?}", bytes.iter().collect::<std::collections::BTreeSet<_>>());
        }
        drop((a, b));
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn conflicting_changes_from_two_hosts_leave_one_serial_history(backend: Backend) {
        // Two hosts race on the same few names, 2×1000 times: mkdir, rmdir, rename
        // (NOREPLACE and not), create O_EXCL, link, unlink. Whatever wins, both hosts end on the same tree, and
        // it is the tree the log folds to (export), which a remount shows.
        let seed = test_seed();
        let ctx = format!("[{backend}] seed {seed} (rerun with LIGHTHOUSE_TEST_SEED={seed})");
        let p = Project::new();
        let a = p.host("host-a", backend);
        let b = p.host("host-b", backend.other());
        let roots = [a.path(""), b.path("")];
        let done: u64 = std::thread::scope(|s| {
            let racers: Vec<_> = roots.iter().enumerate().map(|(h, root)| {
                s.spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(seed ^ h as u64);
                    let mut done = 0u64;
                    for _ in 0..1000 {
                        let name = |rng: &mut SmallRng| ["x", "y", "z"][rng.random_range(0..3)];
                        let n1 = name(&mut rng);
                        // Two names: a rename onto itself changes nothing and logs nothing.
                        let n2 = loop {
                            let n = name(&mut rng);
                            if n != n1 {
                                break n;
                            }
                        };
                        let r = match rng.random_range(0..8) {
                            // Links go to names of their own (l…), which no rename
                            // touches: a rename between two links of one file would
                            // succeed and change nothing.
                            6 => fs::hard_link(root.join(n1), root.join(format!("l{n2}"))),
                            7 => fs::remove_file(root.join(format!("l{n1}"))),
                            0 => fs::create_dir(root.join(n1)),
                            1 => fs::remove_dir(root.join(n1)),
                            2 => renameat2(&root.join(n1), &root.join(n2), libc::RENAME_NOREPLACE),
                            3 => fs::rename(root.join(n1), root.join(n2)),
                            4 => fs::OpenOptions::new().write(true).create_new(true).open(root.join(n1)).map(drop),
                            _ => fs::remove_file(root.join(n1)),
                        };
                        match r {
                            Ok(()) => done += 1,
                            Err(e) => {
                                let errno = errno_of(&e);
                                assert!(
                                    [libc::EEXIST, libc::ENOENT, libc::ENOTEMPTY, libc::EISDIR, libc::ENOTDIR, libc::EINVAL, libc::EPERM].contains(&errno),
                                    "{e} (errno {errno})"
                                );
                            }
                        }
                    }
                    done
                })
            }).collect();
            racers.into_iter().map(|r| r.join().unwrap()).sum()
        });
        // A serial history: every change that succeeded is one event of the log, every
        // one that failed none, and the log folds (export) to the tree both hosts show.
        let events: u64 = p.sql("SELECT count(*) FROM events WHERE view IS NULL").parse().unwrap();
        assert_eq!(events, done, "{ctx}: one event per change that succeeded");
        // Settled: both hosts show every event.
        settle(&[&a, &b]);
        let exported = tempfile::tempdir().unwrap();
        let dest = exported.path().join("x");
        run(&["export", dest.to_str().unwrap(), "--store", &p.url]);
        let want = snapshot(&dest, SnapOpts::SHAPE);
        for h in [&a, &b] {
            assert_trees_eq(&snapshot(&h.path(""), SnapOpts::SHAPE), &want, &format!("{ctx}: {} shows the log's tree", h.name));
        }
        drop((a, b));
        let mut c = p.host("host-c", backend);
        assert_trees_eq(&snapshot(&c.path(""), SnapOpts::SHAPE), &want, &format!("{ctx}: remounted"));
        c.stop();
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn random_changes_spread_over_two_hosts_match_tmpfs(backend: Backend) {
        const STEPS: usize = 500;
        let seed = test_seed();
        let ctx = format!("[{backend}] seed {seed} (rerun with LIGHTHOUSE_TEST_SEED={seed})");
        eprintln!("random_changes_spread_over_two_hosts_match_tmpfs: {ctx}");
        let p = Project::new();
        let a = p.host("host-a", backend);
        let b = p.host("host-b", backend.other());
        let reference = Tmpfs::new();
        let mut rng = SmallRng::seed_from_u64(seed);
        for i in 0..STEPS {
            let op = gen_op(&mut rng, &entries(reference.path()));
            let host = if rng.random_bool(0.5) { &a } else { &b };
            let want = apply(reference.path(), &op);
            let got = apply(&host.path(""), &op);
            assert!(got == want, "{ctx}: op #{i} on {} {op:?}\n  lighthouse-fs: {got:?}\n  tmpfs: {want:?}", host.name);
            // The next operation may go through the other host: it shows this one first.
            settle(&[&a, &b]);
        }
        let want = snapshot(reference.path(), SnapOpts::SHAPE);
        assert_trees_eq(&snapshot(&a.path(""), SnapOpts::SHAPE), &want, &format!("{ctx}: host A"));
        assert_trees_eq(&snapshot(&b.path(""), SnapOpts::SHAPE), &want, &format!("{ctx}: host B"));
        drop((a, b));
        let mut c = p.host("host-c", backend);
        assert_trees_eq(&snapshot(&c.path(""), SnapOpts::SHAPE), &want, &format!("{ctx}: remounted"));
        c.stop();
    }
}

/// `lighthouse-fs ARGS` (from this namespace), asserting success; its stdout.
#[track_caller]
fn run(args: &[&str]) -> String {
    cli(args
        .iter()
        .map(std::ffi::OsString::from)
        .collect::<Vec<_>>())
    .ok()
    .to_owned()
}
