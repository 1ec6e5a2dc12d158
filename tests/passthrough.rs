//! FUSE passthrough of `current/` files, on both backends (fuser 0.18 has it, fuse3
//! through our patch, `patches/fuse3`): the state shown in `debug/health.json`,
//! and every behaviour kept when the kernel reads files without asking the daemon —
//! readers held open see every writer (appends, overwrites, truncates, mappings), `tail
//! -f` follows, files of identical content stay apart, history keeps every version,
//! objects never change, and a seeded run of readers and writers agrees with a model
//! and survives a remount.
//!
//! Env: `LIGHTHOUSE_PASSTHROUGH_SEED=N` runs the seeded test with seed N (a failure
//! prints its seed).

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::json::{self, Value};
use common::*;

/// Every file by passthrough where it is in force, however small (the default leaves
/// files under 128 KiB to the page cache).
const ALL_FILES: &[&str] = &["--passthrough-min-size", "0"];

fn health(m: &Mount) -> Value {
    json::parse(&fs::read_to_string(m.root().join("debug/health.json")).unwrap()).unwrap()
}

fn passthrough_state(m: &Mount) -> (String, Option<String>, u64) {
    let h = health(m);
    let p = h
        .at(&["passthrough"])
        .expect("health.json has passthrough")
        .clone();
    (
        p["state"].as_str().unwrap().to_string(),
        p["reason"].as_str().map(String::from),
        p["opens"].as_u64().unwrap(),
    )
}

fn head_seq(m: &Mount) -> u64 {
    health(m)
        .at(&["store", "head_seq"])
        .and_then(Value::as_u64)
        .unwrap()
}

/// The whole file as a held descriptor reads it now.
fn read_all(f: &File) -> Vec<u8> {
    let len = f.metadata().unwrap().len() as usize;
    let mut buf = vec![0u8; len + 4096];
    let mut done = 0;
    loop {
        let n = f.read_at(&mut buf[done..], done as u64).unwrap();
        if n == 0 {
            break;
        }
        done += n;
        if done == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    buf.truncate(done);
    buf
}

/// No file of the store's `objects/` was left writable: objects never change.
fn assert_objects_intact(store: &Path, what: &str) {
    for e in walk(&store.join("objects")) {
        let mode = fs::metadata(&e).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            0o444,
            "{what}: object {} has mode {mode:o}",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

both_backends! {
    fn the_state_is_shown(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        fs::write(m.path("a"), b"hello").unwrap();
        fs::write(m.path("big"), pattern(5, 200 << 10)).unwrap();
        // The writer's RELEASE comes after its close returns: until then a reader joins
        // it through the page cache. Read until passthrough served one (fuser), or 2 s.
        let deadline = Instant::now() + Duration::from_secs(2);
        let (state, reason, opens) = loop {
            assert_eq!(fs::read(m.path("a")).unwrap(), b"hello");
            let now = passthrough_state(&m);
            if now.2 > 0 || Instant::now() > deadline {
                break now;
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(state, "on", "[{backend}] reason: {reason:?}");
        assert!(opens >= 1, "[{backend}] the read was served by passthrough");
        drop(m);

        // By default a small file is read through the page cache, a big one by passthrough.
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("a")).unwrap(), b"hello");
        assert_eq!(passthrough_state(&m).2, 0, "[{backend}] a small file is opened cached");
        assert_eq!(fs::read(m.path("big")).unwrap(), pattern(5, 200 << 10));
        let big_opens = passthrough_state(&m).2;
        assert_eq!(big_opens, 1, "[{backend}] a big file by passthrough");
        drop(m);

        // Turned off by hand: the same bytes through the daemon.
        let m = Mount::start_with(backend, &store, &["--passthrough=off", "--passthrough-min-size", "0"]);
        assert_eq!(fs::read(m.path("a")).unwrap(), b"hello");
        let (state, reason, opens) = passthrough_state(&m);
        assert_eq!(state, "off", "[{backend}]");
        assert_eq!(opens, 0, "[{backend}]");
        let reason = reason.unwrap();
        assert!(reason.contains("--passthrough=off"), "{reason}");
    }
}

both_backends! {
    fn a_held_reader_sees_every_writer(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        let c = m.current();
        let p = c.join("log.txt");
        let mut want = b"first\n".to_vec();
        fs::write(&p, &want).unwrap();
        let mut versions = vec![(head_seq(&m), want.clone())];
        let reader = File::open(&p).unwrap();
        assert_eq!(read_all(&reader), want, "[{backend}] first read");

        let check = |m: &Mount, want: &[u8], what: &str, versions: &mut Vec<(u64, Vec<u8>)>| {
            assert_eq!(read_all(&reader), want, "[{backend}] held reader after {what}");
            assert_eq!(fs::read(&p).unwrap(), want, "[{backend}] a new open after {what}");
            assert_eq!(fs::metadata(&p).unwrap().len(), want.len() as u64, "[{backend}] size after {what}");
            versions.push((head_seq(m), want.to_vec()));
        };
        // An appending shell, a second process.
        sh(&c, "echo second >> log.txt");
        want.extend_from_slice(b"second\n");
        check(&m, &want, "echo >>", &mut versions);
        // An overwrite in the middle through a descriptor of this process.
        OpenOptions::new().write(true).open(&p).unwrap().write_all_at(b"FIRST", 0).unwrap();
        want[..5].copy_from_slice(b"FIRST");
        check(&m, &want, "pwrite", &mut versions);
        // A truncate by path, while the reader holds the file.
        truncate(&p, 3).unwrap();
        want.truncate(3);
        check(&m, &want, "truncate", &mut versions);
        // A writer held open across several writes, and its ftruncate.
        {
            let mut w = OpenOptions::new().append(true).open(&p).unwrap();
            w.write_all(b"-more").unwrap();
            want.extend_from_slice(b"-more");
            assert_eq!(read_all(&reader), want, "[{backend}] held reader sees an open writer's write");
            w.set_len(4).unwrap();
            want.truncate(4);
            assert_eq!(read_all(&reader), want, "[{backend}] held reader sees an open writer's ftruncate");
        }
        check(&m, &want, "a writer's close", &mut versions);
        // O_TRUNC rewrite.
        fs::write(&p, b"rewritten\n").unwrap();
        want = b"rewritten\n".to_vec();
        check(&m, &want, "O_TRUNC", &mut versions);
        drop(reader);

        // Every version is history, byte for byte.
        for (seq, bytes) in &versions {
            let old = fs::read(m.root().join(format!("history/@{seq}/log.txt"))).unwrap();
            assert_eq!(&old, bytes, "[{backend}] history/@{seq}");
        }
        assert_objects_intact(&store, &format!("[{backend}]"));
        drop(m);
        let m = Mount::start_with(backend, &store, ALL_FILES);
        assert_eq!(fs::read(m.path("log.txt")).unwrap(), want, "[{backend}] after remount");
    }
}

both_backends! {
    fn tail_follows_appends_by_other_processes(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        let c = m.current();
        fs::write(c.join("app.log"), b"start\n").unwrap();
        let tail = Tail::start(&c.join("app.log"));
        let wait_for = |line: &str| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !tail.has(|l| l == line) {
                assert!(Instant::now() < deadline, "[{backend}] tail -f did not show {line:?}; it showed {:?}", tail.lines());
                thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("start");
        for i in 0..5 {
            sh(&c, &format!("echo line{i} >> app.log"));
            wait_for(&format!("line{i}"));
        }
        assert_eq!(tail.lines(), ["start", "line0", "line1", "line2", "line3", "line4"], "[{backend}] in order, once each");
        drop(tail);
        assert_objects_intact(&store, &format!("[{backend}]"));
    }
}

both_backends! {
    fn files_of_identical_content_stay_apart(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        let c = m.current();
        let same = pattern(7, 100_000);
        fs::write(c.join("a"), &same).unwrap();
        fs::write(c.join("b"), &same).unwrap();
        let seq = head_seq(&m);
        let ra = File::open(c.join("a")).unwrap();
        let rb = File::open(c.join("b")).unwrap();
        assert_eq!(read_all(&ra), same);
        assert_eq!(read_all(&rb), same);
        // A writer of a while both are held: b, and the object both were, keep their bytes.
        OpenOptions::new().write(true).open(c.join("a")).unwrap().write_all_at(b"CHANGED", 10).unwrap();
        let mut changed = same.clone();
        changed[10..17].copy_from_slice(b"CHANGED");
        assert_eq!(read_all(&ra), changed, "[{backend}] a's reader sees a's writer");
        assert_eq!(read_all(&rb), same, "[{backend}] b's reader does not");
        assert_eq!(fs::read(c.join("b")).unwrap(), same, "[{backend}] b opened anew");
        for f in ["a", "b"] {
            assert_eq!(fs::read(m.root().join(format!("history/@{seq}/{f}"))).unwrap(), same, "[{backend}] history of {f}");
        }
        // A hard link is one file: its reader sees the writer of the other name.
        fs::hard_link(c.join("b"), c.join("b2")).unwrap();
        fs::write(c.join("b2"), b"via the link").unwrap();
        assert_eq!(read_all(&rb), b"via the link", "[{backend}] a reader of the other name");
        drop((ra, rb));
        assert_objects_intact(&store, &format!("[{backend}]"));
    }
}

both_backends! {
    fn mappings_read_and_write(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        let c = m.current();
        fs::write(c.join("m.bin"), pattern(3, 64 * 1024)).unwrap();
        // A reader maps the file while it is held; a writer maps it shared and writes
        // through the mapping; both see the writes, and the close commits them.
        let script = r#"
import mmap, os, sys
r = open("m.bin", "rb")
rm = mmap.mmap(r.fileno(), 0, prot=mmap.PROT_READ)
first = bytes(rm[:16])
with open("m.bin", "r+b") as w:
    wm = mmap.mmap(w.fileno(), 0)
    wm[100:110] = b"0123456789"
    wm.flush()
    wm.close()
assert rm[100:110] == b"0123456789", rm[100:110]
r.seek(100)
assert r.read(10) == b"0123456789"
rm.close()
r.close()
sys.stdout.write(first.hex())
"#;
        let first = sh(&c, &format!("python3 -c '{}'", script.replace('\'', "\"")));
        let mut want = pattern(3, 64 * 1024);
        assert_eq!(first, hex(&want[..16]), "[{backend}] the mapping read the file");
        want[100..110].copy_from_slice(b"0123456789");
        assert_eq!(fs::read(c.join("m.bin")).unwrap(), want, "[{backend}] after the mapped write");
        let seq = head_seq(&m);
        assert_eq!(fs::read(m.root().join(format!("history/@{seq}/m.bin"))).unwrap(), want, "[{backend}] committed");
        assert_objects_intact(&store, &format!("[{backend}]"));
        drop(m);
        let m = Mount::start_with(backend, &store, ALL_FILES);
        assert_eq!(fs::read(m.path("m.bin")).unwrap(), want, "[{backend}] after remount");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

both_backends! {
    #[timeout_secs(300)]
    fn programs_move_big_files_through(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        let c = m.current();
        let outside = tempfile::tempdir().unwrap();
        let src = outside.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("big.bin"), pattern(11, 24 << 20)).unwrap();
        fs::write(src.join("text.txt"), b"alpha\nneedle in a haystack\nomega\n").unwrap();
        sh(outside.path(), &format!("cp -a src {}", c.join("cp").display()));
        sh(outside.path(), &format!("rsync -a src/ {}/", c.join("rs").display()));
        sh(&c, "dd if=cp/big.bin of=dd.bin bs=1M conv=fsync status=none");
        let sum = |dir: &Path, f: &str| sh(dir, &format!("sha256sum < {f}"));
        let want = sum(&src, "big.bin");
        for f in ["cp/big.bin", "rs/big.bin", "dd.bin"] {
            assert_eq!(sum(&c, f), want, "[{backend}] {f}");
        }
        assert_eq!(sh(&c, "grep -rl needle . | sort"), "./cp/text.txt\n./rs/text.txt\n", "[{backend}] grep");
        assert_eq!(sh(&c, "tar cf - cp | tar tf - | sort"), "cp/\ncp/big.bin\ncp/text.txt\n", "[{backend}] tar");
        sh(&c, &format!("rsync -a rs/ {}/back/", outside.path().display()));
        sh(outside.path(), "cmp src/big.bin back/big.bin");
        assert_objects_intact(&store, &format!("[{backend}]"));
    }
}

/// One seeded run of readers held open and writers of every kind over a few files,
/// checked against a model after every step.
fn seeded_run(m: &Mount, seed: u64) -> BTreeMap<String, Vec<u8>> {
    let backend = m.backend();
    let ctx = |step: usize, what: &str| format!("[{backend}] seed {seed} step {step}: {what}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let c = m.current();
    let names = ["f0", "f1", "f2"];
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut readers: Vec<(String, File)> = Vec::new();
    let mut writers: Vec<(String, File)> = Vec::new();
    for step in 0..240 {
        let name = names[rng.random_range(0..names.len())].to_string();
        let p = c.join(&name);
        let exists = model.contains_key(&name);
        match rng.random_range(0..9) {
            0 if exists && readers.len() < 4 => {
                readers.push((name.clone(), File::open(&p).unwrap()))
            }
            1 if !readers.is_empty() => {
                readers.remove(rng.random_range(0..readers.len()));
            }
            2 => {
                let bytes = pattern(rng.random(), rng.random_range(0..20_000));
                fs::write(&p, &bytes).unwrap();
                model.insert(name.clone(), bytes);
            }
            3 if exists => {
                let data = pattern(rng.random(), rng.random_range(1..5_000));
                let mut f = OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(&data).unwrap();
                model.get_mut(&name).unwrap().extend_from_slice(&data);
            }
            4 if exists => {
                let cur = model[&name].len();
                let at = rng.random_range(0..=cur + 100);
                let data = pattern(rng.random(), rng.random_range(1..3_000));
                OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .write_all_at(&data, at as u64)
                    .unwrap();
                let v = model.get_mut(&name).unwrap();
                if v.len() < at + data.len() {
                    v.resize(at + data.len(), 0);
                }
                v[at..at + data.len()].copy_from_slice(&data);
            }
            5 if exists => {
                let len = rng.random_range(0..=model[&name].len() + 50);
                truncate(&p, len as u64).unwrap();
                model.get_mut(&name).unwrap().resize(len, 0);
            }
            6 if exists && writers.len() < 2 => {
                writers.push((
                    name.clone(),
                    OpenOptions::new().read(true).write(true).open(&p).unwrap(),
                ));
            }
            7 if !writers.is_empty() => {
                let i = rng.random_range(0..writers.len());
                let (wname, w) = &writers[i];
                let cur = model[wname].len();
                let at = rng.random_range(0..=cur);
                let data = pattern(rng.random(), rng.random_range(1..2_000));
                w.write_all_at(&data, at as u64).unwrap();
                let v = model.get_mut(wname).unwrap();
                if v.len() < at + data.len() {
                    v.resize(at + data.len(), 0);
                }
                v[at..at + data.len()].copy_from_slice(&data);
                if rng.random_range(0..3) == 0 {
                    writers.remove(i);
                }
            }
            _ => {}
        }
        for (rname, r) in &readers {
            assert_eq!(
                read_all(r),
                model[rname],
                "{}",
                ctx(step, &format!("a held reader of {rname}"))
            );
        }
        for (wname, w) in &writers {
            assert_eq!(
                read_all(w),
                model[wname],
                "{}",
                ctx(step, &format!("a held writer of {wname}"))
            );
        }
        if let Some(bytes) = model.get(&name) {
            assert_eq!(
                fs::read(&p).unwrap(),
                *bytes,
                "{}",
                ctx(step, &format!("{name} opened anew"))
            );
        }
    }
    model
}

both_backends! {
    #[timeout_secs(300)]
    fn seeded_readers_and_writers_agree_with_a_model(backend: Backend) {
        let seed = std::env::var("LIGHTHOUSE_PASSTHROUGH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("[{backend}] LIGHTHOUSE_PASSTHROUGH_SEED={seed}");
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, ALL_FILES);
        let model = seeded_run(&m, seed);
        assert_objects_intact(&store, &format!("[{backend}] seed {seed}"));
        drop(m);
        let m = Mount::start_with(backend, &store, ALL_FILES);
        for (name, bytes) in &model {
            assert_eq!(fs::read(m.path(name)).unwrap(), *bytes, "[{backend}] seed {seed}: {name} after remount");
        }
    }
}

fn writer_opens(m: &Mount) -> u64 {
    health(m)
        .at(&["passthrough", "writer_opens"])
        .and_then(Value::as_u64)
        .unwrap()
}

/// WRITE requests the daemon served so far.
fn write_requests(m: &Mount) -> u64 {
    let perf =
        json::parse(&fs::read_to_string(m.root().join("debug/performance.json")).unwrap()).unwrap();
    perf.at(&["ops", "write", "count"])
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn mtime_ns(p: &Path) -> i128 {
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(p).unwrap();
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

both_backends! {
    #[timeout_secs(180)]
    fn a_writer_of_a_new_file_writes_by_passthrough(backend: Backend) {
        // Default flags: the minimum size is for readers; a new file's writer writes it
        // by passthrough whatever its size.
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        let p = c.join("data.bin");
        let want = pattern(21, 6 << 20);
        let (opens, writes) = (writer_opens(&m), write_requests(&m));
        let mut f = File::create(&p).unwrap();
        for (i, chunk) in want.chunks(1 << 20).enumerate() {
            f.write_all(chunk).unwrap();
            // The size is the written file's while the writer works: by path, by the
            // open descriptor, and through a program.
            let so_far = ((i + 1) << 20) as u64;
            assert_eq!(fs::metadata(&p).unwrap().len(), so_far, "[{backend}] stat during the write");
            assert_eq!(f.metadata().unwrap().len(), so_far, "[{backend}] fstat during the write");
            assert_eq!(sh(&c, "stat -c %s data.bin").trim(), so_far.to_string(), "[{backend}] stat(1)");
        }
        let written_mtime = mtime_ns(&p);
        drop(f);
        assert_eq!(write_requests(&m), writes, "[{backend}] no WRITE reached the daemon");
        assert_eq!(writer_opens(&m), opens + 1, "[{backend}] health.json counts the writer");

        // At once after the close: the bytes, their time, and the version in history
        // (a view sees every close before it), exactly one write event.
        assert_eq!(fs::read(&p).unwrap(), want, "[{backend}] read back");
        assert_eq!(sh(&c, "sha256sum < data.bin"), sh(&c, "head -c 6291456 data.bin | sha256sum"));
        assert_eq!(mtime_ns(&p), written_mtime, "[{backend}] mtime is the last write's");
        let seq = head_seq(&m);
        assert_eq!(fs::read(m.root().join(format!("history/@{seq}/data.bin"))).unwrap(), want, "[{backend}] history");
        File::open(&c).unwrap().sync_all().unwrap();
        let writes_logged: Vec<_> = log_json(&store, Some("/data.bin"))
            .into_iter()
            .filter(|e| e.get("op").and_then(Value::as_str) == Some("write"))
            .collect();
        assert_eq!(writes_logged.len(), 1, "[{backend}] one write event: {writes_logged:?}");
        assert_eq!(writes_logged[0].get("size").and_then(Value::as_u64), Some(want.len() as u64));
        // The closing thread's id (FUSE tells the thread), not the release's nobody.
        let tid = unsafe { libc::gettid() } as u64;
        assert_eq!(writes_logged[0].get("pid").and_then(Value::as_u64), Some(tid), "[{backend}] the event is the closer's: {:?}", writes_logged[0]);
        assert_eq!(health(&m).at(&["passthrough", "closes_due"]).and_then(Value::as_u64), Some(0));
        // Times set before the close stay (cp -p sets them on its open descriptor).
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("old.txt"), b"from 2001\n").unwrap();
        sh(outside.path(), "touch -m -d @1000000000.5 old.txt");
        sh(outside.path(), &format!("cp -p old.txt {}", c.join("old.txt").display()));
        let old_ns = 1_000_000_000_500_000_000i128;
        assert_eq!(mtime_ns(&c.join("old.txt")), old_ns, "[{backend}] cp -p kept the mtime");
        let _ = fs::read_dir(m.root().join("history")).unwrap().count(); // settles the close
        assert_eq!(mtime_ns(&c.join("old.txt")), old_ns, "[{backend}] committed with it");
                // An O_TRUNC rewrite by a program is such a writer too.
        sh(&c, "printf 'short\\n' > data.bin");
        assert_eq!(writer_opens(&m), opens + 3, "[{backend}] cp and the shell wrote by passthrough too");
        assert_eq!(fs::read(&p).unwrap(), b"short\n");
        assert_objects_intact(&store, &format!("[{backend}]"));
        drop(m);
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("data.bin")).unwrap(), b"short\n", "[{backend}] after remount");
        assert_eq!(mtime_ns(&m.path("old.txt")), old_ns, "[{backend}] the mtime after remount");
        let old = head_seq(&m);
        assert!(old > seq);
        assert_eq!(fs::read(m.root().join(format!("history/@{seq}/data.bin"))).unwrap(), want, "[{backend}] history after remount");
    }
}

both_backends! {
    fn writes_after_a_close_through_a_duplicate_or_a_mapping_are_kept(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();

        // A duplicate outlives the close of the first descriptor: that close is a version,
        // and the duplicate's later writes are the next one. The first stays as it was.
        let p = c.join("dup.txt");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"one").unwrap();
        let mut dup = f.try_clone().unwrap();
        drop(f);
        let first = head_seq(&m);
        assert_eq!(fs::read(m.root().join(format!("history/@{first}/dup.txt"))).unwrap(), b"one", "[{backend}] the close's version");
        dup.write_all(b" two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one two", "[{backend}] the duplicate's write");
        drop(dup);
        let second = head_seq(&m);
        assert!(second > first, "[{backend}] the duplicate's close is a version");
        assert_eq!(fs::read(m.root().join(format!("history/@{second}/dup.txt"))).unwrap(), b"one two");
        assert_eq!(fs::read(m.root().join(format!("history/@{first}/dup.txt"))).unwrap(), b"one", "[{backend}] the first version never changes");

        // A shell redirection: the shell closes its own descriptor before the command
        // writes through the duplicate it made (stdout).
        sh(&c, "{ echo a; sleep 0.2; echo b; } > shell.txt");
        assert_eq!(fs::read(c.join("shell.txt")).unwrap(), b"a\nb\n", "[{backend}] shell redirection");

        // A shared mapping writes after the descriptor's close; its unmap ends the file.
        let script = r#"
import mmap, os
fd = os.open("mapped.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, 8192)
mm = mmap.mmap(fd, 8192)
os.close(fd)
mm[100:106] = b"mapped"
mm.flush()
mm.close()
"#;
        sh(&c, &format!("python3 -c '{}'", script.replace('\'', "\"")));
        let mut want = vec![0u8; 8192];
        want[100..106].copy_from_slice(b"mapped");
        assert_eq!(fs::read(c.join("mapped.bin")).unwrap(), want, "[{backend}] the mapping's write");
        let seq = head_seq(&m);
        assert_eq!(fs::read(m.root().join(format!("history/@{seq}/mapped.bin"))).unwrap(), want, "[{backend}] committed");
        assert_objects_intact(&store, &format!("[{backend}]"));
        drop(m);
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("dup.txt")).unwrap(), b"one two", "[{backend}] after remount");
        assert_eq!(fs::read(m.path("shell.txt")).unwrap(), b"a\nb\n", "[{backend}] after remount");
        assert_eq!(fs::read(m.path("mapped.bin")).unwrap(), want, "[{backend}] after remount");
    }
}

both_backends! {
    fn a_close_is_in_the_log_before_what_follows_it(backend: Backend) {
        // Write-then-rename, as editors save: each file's write event comes before its
        // rename, however soon the rename follows the close.
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        const N: usize = 40;
        for i in 0..N {
            fs::write(c.join(format!("tmp{i}")), format!("version {i}\n")).unwrap();
            fs::rename(c.join(format!("tmp{i}")), c.join(format!("file{i}"))).unwrap();
        }
        File::open(&c).unwrap().sync_all().unwrap();
        let events = log_json(&store, None);
        let at = |op: &str, path: &str| {
            events.iter().position(|e| {
                e.get("op").and_then(Value::as_str) == Some(op) && e.get("path").and_then(Value::as_str) == Some(path)
            })
        };
        for i in 0..N {
            let tmp = format!("/tmp{i}");
            let write = at("write", &tmp).unwrap_or_else(|| panic!("[{backend}] no write event of {tmp}"));
            let rename = at("rename", &tmp).unwrap_or_else(|| panic!("[{backend}] no rename of {tmp}"));
            assert!(write < rename, "[{backend}] {tmp}: write at {write}, rename at {rename}");
            assert_eq!(fs::read_to_string(c.join(format!("file{i}"))).unwrap(), format!("version {i}\n"));
        }
        drop(m);
        let m = Mount::start(backend, &store);
        for i in 0..N {
            assert_eq!(fs::read_to_string(m.path(&format!("file{i}"))).unwrap(), format!("version {i}\n"), "[{backend}] after remount");
        }
    }
}

both_backends! {
    fn tail_head_and_grep_follow_a_new_file_while_its_writer_writes_it(backend: Backend) {
        // A process writing its own new log file, by passthrough, followed by the
        // programs people follow logs with, while it is still open.
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        let p = c.join("run.log");
        let (opens, writes) = (writer_opens(&m), write_requests(&m));
        let mut w = File::create(&p).unwrap();
        w.write_all(b"line0\n").unwrap();
        assert_eq!(writer_opens(&m), opens + 1, "[{backend}] the writer writes by passthrough");
        let tail = Tail::start(&p);
        let wait_for = |line: &str| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !tail.has(|l| l == line) {
                assert!(Instant::now() < deadline, "[{backend}] tail -f did not show {line:?}; it showed {:?}", tail.lines());
                thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("line0");
        for i in 1..6 {
            w.write_all(format!("line{i}\n").as_bytes()).unwrap();
            wait_for(&format!("line{i}"));
        }
        assert_eq!(sh(&c, "head -n 2 run.log"), "line0\nline1\n", "[{backend}] head while open");
        assert_eq!(sh(&c, "grep -c line run.log"), "6\n", "[{backend}] grep while open");
        assert_eq!(write_requests(&m), writes, "[{backend}] no WRITE reached the daemon");
        drop(w);
        assert_eq!(tail.lines(), ["line0", "line1", "line2", "line3", "line4", "line5"], "[{backend}] in order, once each");
        drop(tail);
        let want: String = (0..6).map(|i| format!("line{i}\n")).collect();
        let seq = head_seq(&m);
        assert_eq!(fs::read_to_string(m.root().join(format!("history/@{seq}/run.log"))).unwrap(), want, "[{backend}] committed at the close");
    }
}
