//! Memory bounded by what is in use, not by the mount's age: a mixed workload on a real
//! mount (writers, readers, renames, unlinks, `ls -lR` of `current/`, of `history/@N`
//! and of `history/.log/...`, shadows, `debug/`), then the kernel is made to forget what
//! it cached, and the server's tables must shrink back near where they started.
//!
//! - `bounded_after_a_mixed_workload` (both backends, CI): a fixed number of operations.
//! - `long_soak` (`#[ignore]`, run by hand): the same workload for
//!   `LIGHTHOUSE_SOAK_SECS` (default 60) on `LIGHTHOUSE_SOAK_BACKEND` (`fuser`, `fuse3`
//!   or `fuser,fuse3`; default both), sampling the server's RSS and tables every
//!   `LIGHTHOUSE_SOAK_SAMPLE_SECS` (default 10) and printing them as a table. After each
//!   sample the kernel's caches are dropped (as its reclaim would under memory pressure;
//!   `LIGHTHOUSE_SOAK_DROP_CACHES=0` leaves them), so the figures show what the server
//!   keeps for what is in use rather than for whatever the kernel still caches:
//!   `LIGHTHOUSE_SOAK_SECS=1800 cargo test --test soak -- --ignored --nocapture`
//!   (`LIGHTHOUSE_FS_BIN=target/release/lighthouse-fs` soaks a release build).
//!
//! Making the kernel forget needs root (`/proc/sys/vm/drop_caches`); no timing is
//! asserted anywhere.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::*;

/// Worker threads of the workload, each in its own directory of `current/`.
const WORKERS: usize = 6;
/// Operations per worker in the CI soak.
const OPS_PER_WORKER: usize = 240;
/// File names a worker cycles through.
const NAMES: u32 = 40;
/// How far above its baseline a table may stay once the kernel has forgotten: the few
/// entries whatever still pins (the mount root's children, a listing being read).
const SLACK: u64 = 32;
/// How long to wait for the kernel's FORGETs after dropping its caches.
const FORGET_WAIT: Duration = Duration::from_secs(30);

/// The tables of `debug/cache_stats.json` that must not grow with the mount's age.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tables {
    view_paths: u64,
    live_inodes: u64,
    unlinked_open: u64,
    kernel_refs: u64,
    handles: u64,
    history_trees: u64,
    view_answers: u64,
    view_answer_bytes: u64,
}

impl Tables {
    fn read(m: &Mount) -> Tables {
        let text = fs::read_to_string(m.root().join("debug/cache_stats.json"))
            .unwrap_or_else(|e| panic!("[{}] read debug/cache_stats.json: {e}", m.backend()));
        let v = json::parse(&text).unwrap_or_else(|e| panic!("cache_stats.json: {e}\n{text}"));
        let num = |path: &[&str]| -> u64 {
            v.at(path)
                .and_then(|n| n.as_u64())
                .unwrap_or_else(|| panic!("no number at {path:?} in cache_stats.json:\n{text}"))
        };
        Tables {
            view_paths: num(&["inodes", "view_paths"]),
            live_inodes: num(&["inodes", "live"]),
            unlinked_open: num(&["inodes", "unlinked_open"]),
            kernel_refs: num(&["inodes", "kernel_refs"]),
            handles: num(&["handles", "total"]),
            history_trees: num(&["history_trees", "kept"]),
            view_answers: num(&["view_answers", "entries"]),
            view_answer_bytes: num(&["view_answers", "bytes"]),
        }
    }
}

/// The server's resident memory (kB), from `/proc/PID/status`.
fn rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The newest seq of the log, as `debug/health.json` says.
fn head_seq(m: &Mount) -> u64 {
    let text = fs::read_to_string(m.root().join("debug/health.json")).unwrap();
    json::parse(&text)
        .unwrap()
        .at(&["store", "head_seq"])
        .and_then(|n| n.as_u64())
        .expect("store.head_seq")
}

/// Run `ls -lR` (or `ls -l`) on `dir`. `exact`: every entry must be there to the end
/// (an immutable tree). Otherwise a name may vanish between the listing and its stat
/// (other workers rename and unlink), and that is the only failure allowed: a stale
/// handle or an I/O error never is.
#[track_caller]
fn ls(dir: &Path, recursive: bool, exact: bool) -> usize {
    let out = Command::new("ls")
        .arg(if recursive { "-lR" } else { "-l" })
        .arg(dir)
        .output()
        .expect("run ls");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let vanished = |l: &str| l.contains("No such file or directory");
    if exact {
        assert!(
            out.status.success(),
            "ls {}: {}\n{stderr}",
            dir.display(),
            out.status
        );
    } else {
        assert!(
            out.status.success() || stderr.lines().all(vanished),
            "ls {}: {}\n{stderr}",
            dir.display(),
            out.status
        );
    }
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

/// What the workers did, for the report.
#[derive(Default)]
struct Done {
    ops: AtomicU64,
    listed: AtomicU64,
}

/// One worker: mixed operations in `current/w<w>/` until `more()` says stop. The worker
/// alone changes its directory, so it knows which names exist and every operation's
/// outcome is exact.
fn worker(m: &Mount, w: usize, seed: u64, done: &Done, more: &dyn Fn(usize) -> bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let rel = format!("w{w}");
    let dir = m.path(&rel);
    fs::create_dir_all(&dir).unwrap();
    let mut exists: BTreeSet<u32> = BTreeSet::new();
    let mut ever: BTreeSet<u32> = BTreeSet::new();
    let file = |k: u32| dir.join(format!("f{k}"));
    let ctx = |what: &str| format!("[{}] worker {w}: {what}", m.backend());
    let mut i = 0;
    while more(i) {
        i += 1;
        let k = rng.random_range(0..NAMES);
        let any = |rng: &mut SmallRng, set: &BTreeSet<u32>| -> Option<u32> {
            (!set.is_empty()).then(|| *set.iter().nth(rng.random_range(0..set.len())).unwrap())
        };
        match rng.random_range(0..20) {
            0..=5 => {
                let data = pattern(seed ^ i as u64, rng.random_range(0..8192));
                fs::write(file(k), &data).unwrap_or_else(|e| panic!("{}: {e}", ctx("write")));
                exists.insert(k);
                ever.insert(k);
            }
            6..=8 => match any(&mut rng, &exists) {
                Some(k) => {
                    fs::read(file(k)).unwrap_or_else(|e| panic!("{}: {e}", ctx("read")));
                }
                None => assert_errno(fs::read(file(k)), libc::ENOENT, &ctx("read a missing file")),
            },
            9 => {
                if let Some(a) = any(&mut rng, &exists) {
                    fs::rename(file(a), file(k))
                        .unwrap_or_else(|e| panic!("{}: {e}", ctx("rename")));
                    exists.remove(&a);
                    exists.insert(k);
                    ever.insert(k);
                }
            }
            10 => {
                if let Some(a) = any(&mut rng, &exists) {
                    fs::remove_file(file(a)).unwrap_or_else(|e| panic!("{}: {e}", ctx("unlink")));
                    exists.remove(&a);
                }
            }
            11 => {
                // A directory's whole life, with a file opened and unlinked inside.
                let d = dir.join(format!("d{k}"));
                fs::create_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", ctx("mkdir")));
                let inner = d.join("x");
                fs::write(&inner, b"x").unwrap();
                let open = fs::File::open(&inner).unwrap();
                fs::remove_file(&inner).unwrap();
                drop(open);
                fs::remove_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", ctx("rmdir")));
            }
            12 => {
                if let Some(a) = any(&mut rng, &exists) {
                    let shadow = m.root().join("shadows").join(&rel).join(format!("f{a}"));
                    let md = fs::metadata(&shadow)
                        .unwrap_or_else(|e| panic!("{}: {e}", ctx("stat a shadow")));
                    assert!(md.is_file(), "{}", ctx("a shadow is a file"));
                }
            }
            13 => {
                if let Some(a) = any(&mut rng, &ever) {
                    let log = m
                        .root()
                        .join("history/.log")
                        .join(&rel)
                        .join(format!("f{a}"));
                    let text = fs::read_to_string(&log)
                        .unwrap_or_else(|e| panic!("{}: {e}", ctx("read a .log")));
                    assert!(
                        text.lines().count() >= 1,
                        "{}",
                        ctx("a .log has a line per version")
                    );
                }
            }
            14 => {
                let n = ls(&m.root().join("history/.log").join(&rel), true, false);
                done.listed.fetch_add(n as u64, Ordering::Relaxed);
            }
            15 => {
                let n = ls(&m.current(), true, false);
                done.listed.fetch_add(n as u64, Ordering::Relaxed);
            }
            16 | 17 => {
                // The whole tree as it was a moment ago: a new set of view paths each time.
                let seq = head_seq(m);
                let n = ls(&m.root().join(format!("history/@{seq}")), true, true);
                done.listed.fetch_add(n as u64, Ordering::Relaxed);
                if rng.random_range(0..4) == 0 {
                    ls(&m.root().join("history"), false, true);
                }
            }
            18 => {
                Tables::read(m);
            }
            _ => {
                for f in ["health.json", "performance.json", "views.json"] {
                    fs::read(m.root().join("debug").join(f)).unwrap();
                }
            }
        }
        done.ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Run the workload on `WORKERS` threads; each goes on while `more(i)` holds.
fn workload(m: &Mount, seed: u64, done: &Done, more: &(dyn Fn(usize) -> bool + Sync)) {
    thread::scope(|s| {
        for w in 0..WORKERS {
            s.spawn(move || worker(m, w, seed.wrapping_add(w as u64 * 7919), done, more));
        }
    });
}

/// Dropping the kernel's caches reaches every mount on the machine, so a drop by one
/// backend's test would empty the other's tables between its workload and the reading
/// of its peak. Workloads up to that reading share this lock; a drop takes it alone.
static KERNEL_CACHES: RwLock<()> = RwLock::new(());

/// Make the kernel drop the dentries and inodes it is not using, so it sends FORGETs.
fn drop_kernel_caches() {
    let _alone = KERNEL_CACHES.write().unwrap_or_else(|e| e.into_inner());
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    fs::write("/proc/sys/vm/drop_caches", b"2").expect("echo 2 > /proc/sys/vm/drop_caches (root)");
}

/// Drop the kernel's caches until `settled` holds for the tables (FORGETs come in
/// batches, after the drop), at most [`FORGET_WAIT`]; the last tables read.
fn forget_until(m: &Mount, settled: impl Fn(&Tables) -> bool) -> Tables {
    let deadline = Instant::now() + FORGET_WAIT;
    loop {
        drop_kernel_caches();
        thread::sleep(Duration::from_millis(300));
        let t = Tables::read(m);
        if settled(&t) || Instant::now() > deadline {
            return t;
        }
    }
}

/// Nodes under `current/` (the directory itself included), walked without following
/// symlinks.
fn live_nodes(dir: &Path) -> u64 {
    let mut n = 1;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        n += if e.file_type().unwrap().is_dir() {
            live_nodes(&e.path())
        } else {
            1
        };
    }
    n
}

both_backends! {
    #[timeout_secs(240)]
    fn bounded_after_a_mixed_workload(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");
        let base = forget_until(&m, |_| true);

        let done = Done::default();
        let caches_kept = KERNEL_CACHES.read().unwrap_or_else(|e| e.into_inner());
        workload(&m, 0x50a4, &done, &|i| i < OPS_PER_WORKER);
        let peak = Tables::read(&m);
        drop(caches_kept);
        eprintln!(
            "[{backend}] {} operations, {} lines listed; baseline {base:?}; after the workload {peak:?}",
            done.ops.load(Ordering::Relaxed),
            done.listed.load(Ordering::Relaxed)
        );
        assert!(
            peak.view_paths > base.view_paths + 4 * SLACK,
            "{}: {peak:?}",
            ctx("the workload numbered many view paths (else this test proves nothing)")
        );

        let existing = live_nodes(&m.current());
        let settled = |t: &Tables| {
            t.view_paths <= base.view_paths + SLACK
                && t.live_inodes <= base.live_inodes + existing
                && t.unlinked_open == 0
                && t.kernel_refs <= base.kernel_refs + SLACK
                && t.handles <= base.handles
        };
        let after = forget_until(&m, settled);
        eprintln!("[{backend}] after the kernel forgot: {after:?}");
        assert!(
            after.view_paths <= base.view_paths + SLACK,
            "{}: baseline {base:?}, peak {peak:?}, now {after:?}",
            ctx("view paths are forgotten with the kernel's references")
        );
        assert_eq!(after.unlinked_open, 0, "{}", ctx("unlinked nodes are released once unreferenced"));
        assert!(
            after.kernel_refs <= base.kernel_refs + SLACK,
            "{}: baseline {base:?}, peak {peak:?}, now {after:?}",
            ctx("the live tree's kernel references are forgotten too")
        );
        assert!(
            after.live_inodes <= base.live_inodes + existing,
            "{}: {existing} exist, baseline {base:?}, now {after:?}",
            ctx("live inodes are the tree's")
        );
        assert!(after.handles <= base.handles, "{}: {after:?}", ctx("every handle was released"));

        // Still correct after the forgetting: the same paths looked up again (new numbers).
        let seq = head_seq(&m);
        ls(&m.root().join(format!("history/@{seq}")), true, true);
        ls(&m.current(), true, true);
        m.stop();
    }
}

/// One row of the long soak's table.
struct Sample {
    at: Duration,
    ops: u64,
    rss_kb: u64,
    tables: Tables,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn print_table(backend: Backend, samples: &[Sample]) {
    println!("\nlong soak, {backend}: server RSS and tables over time");
    println!(
        "{:>7} {:>9} {:>9} {:>10} {:>8} {:>10} {:>8} {:>8} {:>8} {:>10}",
        "t_s",
        "ops",
        "rss_mb",
        "view_paths",
        "live",
        "kern_refs",
        "handles",
        "trees",
        "answers",
        "answers_mb"
    );
    for s in samples {
        let t = &s.tables;
        println!(
            "{:>7.0} {:>9} {:>9.1} {:>10} {:>8} {:>10} {:>8} {:>8} {:>8} {:>10.1}",
            s.at.as_secs_f64(),
            s.ops,
            s.rss_kb as f64 / 1024.0,
            t.view_paths,
            t.live_inodes,
            t.kernel_refs,
            t.handles,
            t.history_trees,
            t.view_answers,
            t.view_answer_bytes as f64 / (1 << 20) as f64
        );
    }
}

/// Sets its flag when dropped (also while unwinding).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn long_soak_on(backend: Backend, secs: u64, every: Duration, drop_caches: bool) {
    let (_t, store) = fresh_store();
    let m = Mount::start(backend, &store);
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let done = Done::default();
    let samples = Mutex::new(Vec::new());
    let sample = |m: &Mount| Sample {
        at: started.elapsed(),
        ops: done.ops.load(Ordering::Relaxed),
        rss_kb: rss_kb(m.pid()),
        tables: Tables::read(m),
    };
    samples.lock().unwrap().push(sample(&m));
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let next = Instant::now() + every;
                while Instant::now() < next && !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(100));
                }
                samples.lock().unwrap().push(sample(&m));
                if drop_caches {
                    // As the kernel's reclaim would under memory pressure: what stays
                    // in the server is then what is in use.
                    drop_kernel_caches();
                }
            }
        });
        // Set however the workload ends: a worker's panic must stop the sampler too, or
        // the scope would wait for it until the test's timeout.
        let _stop = SetOnDrop(&stop);
        workload(&m, 0x10c5, &done, &|_| Instant::now() < end);
    });
    // What stays once the kernel has forgotten what it cached.
    let forgot = forget_until(&m, |t| t.view_paths <= SLACK && t.handles == 0);
    samples.lock().unwrap().push(Sample {
        at: started.elapsed(),
        ops: done.ops.load(Ordering::Relaxed),
        rss_kb: rss_kb(m.pid()),
        tables: forgot,
    });
    let samples = samples.into_inner().unwrap();
    print_table(backend, &samples);
    println!("(the last row: after dropping the kernel's caches)");
    m.stop();
}

/// The long soak (see the module docs). Prints; asserts only that the workload ran
/// without errors.
#[test]
#[ignore = "long: run by hand with LIGHTHOUSE_SOAK_SECS"]
fn long_soak() {
    let secs = env_u64("LIGHTHOUSE_SOAK_SECS", 60);
    let every = Duration::from_secs(env_u64("LIGHTHOUSE_SOAK_SAMPLE_SECS", 10).max(1));
    let drop_caches = env_u64("LIGHTHOUSE_SOAK_DROP_CACHES", 1) != 0;
    let backends =
        std::env::var("LIGHTHOUSE_SOAK_BACKEND").unwrap_or_else(|_| "fuser,fuse3".into());
    let backends: Vec<Backend> = backends
        .split(',')
        .map(|b| match b.trim() {
            "fuser" => Backend::Fuser,
            "fuse3" => Backend::Fuse3,
            other => panic!("LIGHTHOUSE_SOAK_BACKEND: unknown backend {other:?}"),
        })
        .collect();
    let timeout = Duration::from_secs(secs + 300);
    for backend in backends {
        run_test(&format!("long_soak_{backend}"), timeout, move || {
            long_soak_on(backend, secs, every, drop_caches)
        });
    }
}
