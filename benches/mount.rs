//! Mounted benchmark: the same figures on a plain tmpfs directory, on bindfs (the C/libfuse3
//! peer, single-threaded and `--multithreaded`) and on lighthouse-fs served by each FUSE
//! backend, in one run, printed as one table with ratios to tmpfs and to bindfs
//! multithreaded, and the goals of issue 17 marked pass/MISS per row.
//!
//! Run: `cargo bench --bench mount` (as root: it mounts a tmpfs and FUSE, drops caches).
//! Env: `LIGHTHOUSE_BENCH_QUICK=1` shrinks every size ~10x;
//! `LIGHTHOUSE_BENCH_BACKENDS=fuser,fuse3` picks the backends (empty: tmpfs only);
//! `LIGHTHOUSE_BENCH_PEER=bindfs,bindfs-mt` picks the C peers (the default; `none` or
//! empty for neither; without Debian's `bindfs` installed they are skipped with that
//! reason); `LIGHTHOUSE_BENCH_ONLY=swap,stream` runs only the figures whose names contain
//! one of those words; `LIGHTHOUSE_BENCH_VARIANTS=metrics,policy` (the default; empty for
//! none) runs each backend again as a variant: `X+metrics` with `--metrics` on and a
//! scraper reading `/metrics` every second, `X+policy` with a `--policy` that lets root do
//! everything under a (never reached) overall rate limit, so every request pays the
//! permission check and the rate buckets, `X+nopassthrough` (not by default) with
//! `--passthrough=off`; each column `X+variant/X` is that variant's overhead.
//! `LIGHTHOUSE_BENCH_ROUNDS=N` runs every target N times, round by round, and reports each
//! figure's median.
//! It reports and never fails on a missed goal; a target that fails to mount is skipped
//! with the reason. First comes the issue's table (markdown), then what one operation
//! costs in FUSE requests on each of our backends (counted by the server itself, in
//! `debug/performance.json`), then every figure. The tables are also written to
//! `target/bench-mount.json`, a chart of the issue's table to `target/bench-mount.png`
//! (both under `CARGO_TARGET_DIR` when set), the servers' output to
//! `target/bench-mount-<target>.log`.
//!
//! Every target gets a fresh tree on one scratch tmpfs (the stores live there too); the
//! targets run one after another. "Cold" means: sync, then for a FUSE target stop the
//! server and mount again (a fresh superblock: the kernel holds no dentry, inode,
//! attribute or page of the tree, and the server rebuilds its state from the store), then
//! `echo 3 > /proc/sys/vm/drop_caches`. No disk is ever involved. tmpfs itself cannot be
//! made cold (its dentries and pages are the storage): its cold column is the limit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use hdrhistogram::Histogram;
use lighthouse_fs_support::{detach_all, stat_dev, temp_dir, terminate, wait_live, NotLive, Tmpfs};
use rand::{rngs::SmallRng, RngCore, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_lighthouse-fs");
const MIB: usize = 1 << 20;
const PAGE: usize = 4096;
const LOOKUP_THREADS: usize = 4;
/// Names each lookup thread cycles through in the repeated-name run (negative cache).
const REPEATED_NAMES: usize = 64;
const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Sizes and environment

struct Sizes {
    quick: bool,
    stat_files: usize,
    stat_hot_rounds: usize,
    read_files: usize,
    read_rounds: usize,
    dir_entries: usize,
    readdir_runs: usize,
    seq_bytes: usize,
    create_files: usize,
    lookups_per_thread: usize,
    tree_files: usize,
    /// Operations of each kind whose FUSE requests are counted.
    trip_ops: usize,
}

impl Sizes {
    fn from_env() -> Self {
        let quick = std::env::var("LIGHTHOUSE_BENCH_QUICK").is_ok_and(|v| v == "1");
        let d = if quick { 10 } else { 1 };
        Sizes {
            quick,
            stat_files: 2_000 / d,
            stat_hot_rounds: 5,
            read_files: 1_000 / d,
            read_rounds: 10,
            dir_entries: 10_000 / d,
            readdir_runs: 7,
            seq_bytes: if quick { 32 * MIB } else { 256 * MIB },
            create_files: 5_000 / d,
            lookups_per_thread: 50_000 / d,
            tree_files: 100_000 / d,
            trip_ops: 1_000 / d,
        }
    }
}

fn backends_from_env() -> Result<Vec<String>> {
    let list = std::env::var("LIGHTHOUSE_BENCH_BACKENDS").unwrap_or_else(|_| "fuser,fuse3".into());
    let backends: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(String::from)
        .collect();
    for b in &backends {
        ensure!(
            b == "fuser" || b == "fuse3",
            "LIGHTHOUSE_BENCH_BACKENDS: unknown backend {b:?}"
        );
    }
    Ok(backends)
}

/// The C peer: bindfs (libfuse3) over a plain directory, as a target and as a command.
const BINDFS: &str = "bindfs";
/// bindfs again with `--multithreaded` (libfuse's multithreaded loop; its man page warns
/// of a security issue of that mode, which a benchmark run as root does not meet): the
/// peer the issue's goals and ratios are judged against.
const BINDFS_MT: &str = "bindfs-mt";

/// The peers to run: `LIGHTHOUSE_BENCH_PEER` (default both; `none` or empty: neither).
fn peers_from_env() -> Result<Vec<&'static str>> {
    let list = std::env::var("LIGHTHOUSE_BENCH_PEER").unwrap_or_else(|_| "bindfs,bindfs-mt".into());
    let mut peers = Vec::new();
    for word in list
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty() && *w != "none")
    {
        let peer = [BINDFS, BINDFS_MT]
            .into_iter()
            .find(|p| *p == word)
            .with_context(|| {
                format!("LIGHTHOUSE_BENCH_PEER: unknown peer {word:?} (bindfs, bindfs-mt, none)")
            })?;
        peers.push(peer);
    }
    Ok(peers)
}

/// Why bindfs cannot run here, if it cannot.
fn bindfs_missing() -> Option<String> {
    match Command::new(BINDFS).arg("--version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("`bindfs --version` failed ({})", o.status)),
        Err(e) => Some(format!(
            "bindfs is not installed ({e}); on Debian: apt-get install bindfs"
        )),
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Where every target lives: mount points in a temp dir, stores and the tmpfs target on
/// a fresh tmpfs (unmounted on drop, also on panic).
struct Scratch {
    dir: tempfile::TempDir,
    tmpfs: Tmpfs,
}

impl Scratch {
    fn new() -> Result<Self> {
        let tmpfs = Tmpfs::mount("75%").context("mounting the scratch tmpfs (needs root)")?;
        // Canonical: the mount points are matched against the mount table.
        let (dir, _) = temp_dir("lighthouse-bench-");
        Ok(Scratch { dir, tmpfs })
    }

    /// A path on the scratch tmpfs.
    fn on_tmpfs(&self, name: &str) -> PathBuf {
        self.tmpfs.path().join(name)
    }

    /// A mount point's path (not yet created).
    fn mount_point(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

// ---------------------------------------------------------------------------------------
// Targets: a tmpfs directory, or a lighthouse-fs mount with its server process

/// One `lighthouse-fs mount` process; stopped and unmounted on drop (also on panic).
struct Server {
    backend: String,
    mnt: PathBuf,
    store: PathBuf,
    /// The watched views directory (lighthouse-fs only).
    views: PathBuf,
    /// Serve --metrics, and scrape it every [`SCRAPE_EVERY`] while running.
    metrics: bool,
    /// Serve under [`BENCH_POLICY`].
    policy: bool,
    /// Serve with `--passthrough=off` (the `+nopassthrough` variant).
    no_passthrough: bool,
    /// bindfs with `--multithreaded`.
    multithreaded: bool,
    scraper: Option<Arc<AtomicBool>>,
    /// Each scrape's time (ms) and the samples of the last one, over every start.
    scrapes: Arc<Mutex<Scrapes>>,
    log: PathBuf,
    child: Option<Child>,
    /// Highest VmHWM seen over every process this server has been (restarts included), KiB.
    peak_kib: u64,
}

impl Server {
    fn mount(name: &str, mnt: PathBuf, store: PathBuf, log: PathBuf) -> Result<Self> {
        let views = store.with_extension("views");
        let (backend, variant) = match name {
            BINDFS_MT => (BINDFS, "multithreaded"),
            _ => name.split_once('+').unwrap_or((name, "")),
        };
        let mut server = Server {
            backend: backend.into(),
            mnt,
            store,
            views,
            metrics: variant == "metrics",
            policy: variant == "policy",
            no_passthrough: variant == "nopassthrough",
            multithreaded: variant == "multithreaded",
            scraper: None,
            scrapes: Arc::default(),
            log,
            child: None,
            peak_kib: 0,
        };
        server.start()?;
        Ok(server)
    }

    fn start(&mut self) -> Result<()> {
        fs::create_dir_all(&self.mnt)?;
        fs::create_dir_all(&self.store)?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let parent_dev = stat_dev(self.mnt.parent().context("a mount point has a parent")?)?;
        let mut command = if self.backend == BINDFS {
            // The C peer: bindfs (libfuse3) over a plain directory, in the foreground.
            let mut c = Command::new(BINDFS);
            c.arg("-f");
            if self.multithreaded {
                c.arg("--multithreaded");
            }
            c.arg(&self.store).arg(&self.mnt);
            c
        } else {
            fs::create_dir_all(&self.views)?;
            let mut c = Command::new(BIN);
            c.arg("mount")
                .arg(&self.mnt)
                .arg("--store")
                .arg(&self.store)
                .arg("--views")
                .arg(&self.views)
                .arg("--watch");
            c.args(["--backend", &self.backend]);
            if self.metrics {
                c.args(["--metrics", "127.0.0.1:0"]);
            }
            if self.policy {
                let file = self.store.with_extension("policy.toml");
                fs::write(&file, BENCH_POLICY)?;
                c.arg("--policy").arg(file);
            }
            if self.no_passthrough {
                // Until the server knows the flag, it exits: the variant is then skipped.
                c.arg("--passthrough=off");
            }
            c
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {:?}", command.get_program()))?;
        let child = self.child.insert(child);
        match wait_live(child, &self.mnt, parent_dev, MOUNT_TIMEOUT) {
            Ok(_) => {}
            Err(NotLive::Exited(status)) => {
                self.child = None;
                bail!(
                    "server exited ({status}) without mounting; log tail:\n{}",
                    log_tail(&self.log)
                );
            }
            Err(why @ NotLive::TimedOut(_)) => {
                self.stop();
                bail!("{why}; log tail:\n{}", log_tail(&self.log));
            }
        }
        if self.metrics {
            self.scraper = Some(scrape(&self.log, self.scrapes.clone())?);
        }
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, wait (SIGKILL after a timeout), then detach any mount left behind.
    fn stop(&mut self) {
        if let Some(scraper) = self.scraper.take() {
            scraper.store(true, Ordering::Relaxed);
        }
        if let Some(mut child) = self.child.take() {
            let hwm = proc_status_kib(child.id(), "VmHWM").unwrap_or(0);
            self.peak_kib = self.peak_kib.max(hwm);
            if terminate(&mut child, STOP_TIMEOUT).is_none() {
                eprintln!(
                    "{}: server ignored SIGTERM for {STOP_TIMEOUT:?}, killing it",
                    self.backend
                );
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Nothing left after a clean exit; clears a dead (ENOTCONN) mount otherwise.
        detach_all(&self.mnt);
    }

    /// Fails, with the log tail, if the process is gone.
    fn check_alive(&mut self) -> Result<()> {
        match self.child.as_mut().map(Child::try_wait).transpose()? {
            None => bail!("server not running"),
            Some(Some(status)) => {
                self.child = None;
                bail!(
                    "server exited ({status}); log tail:\n{}",
                    log_tail(&self.log)
                )
            }
            Some(None) => Ok(()),
        }
    }
}

/// The policy of the `+policy` variant: root may do everything, as without a policy, but
/// each request is matched to an agent, checked against its permissions and charged to
/// an overall rate limit far above anything the benchmark reaches.
const BENCH_POLICY: &str = r#"
[[agents]]
name = "bench"
uids = [0]
permissions = ["*:write"]

[limits]
ops_per_sec = 1000000000
bytes_per_sec = 10000000000
"#;
/// How often the scraper reads /metrics (Prometheus's default is every 15 s).
const SCRAPE_EVERY: Duration = Duration::from_secs(1);

/// What the scraper saw.
#[derive(Default)]
struct Scrapes {
    /// Milliseconds from connecting to the end of the response, per scrape.
    times_ms: Vec<f64>,
    /// Sample lines in the last scrape.
    samples: usize,
}

/// Reads /metrics of the server whose log is `log` every [`SCRAPE_EVERY`] until the flag
/// it returns is set, timing each scrape into `seen`.
fn scrape(log: &Path, seen: Arc<Mutex<Scrapes>>) -> Result<Arc<AtomicBool>> {
    // The newest "serving /metrics" line of the log: this start's.
    let text = fs::read_to_string(log)?;
    let addr = text
        .lines()
        .rev()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| l.split("addr=").nth(1))
        .map(|a| a.split_whitespace().next().unwrap_or(a).to_owned())
        .context("the server did not log its metrics address")?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            let started = Instant::now();
            let scraped = (|| -> io::Result<String> {
                let mut s = std::net::TcpStream::connect(&addr)?;
                write!(s, "GET /metrics HTTP/1.0\r\n\r\n")?;
                let mut body = String::new();
                s.read_to_string(&mut body)?;
                Ok(body)
            })();
            match scraped {
                Ok(body) => {
                    let mut seen = seen.lock().unwrap();
                    seen.times_ms.push(started.elapsed().as_secs_f64() * 1e3);
                    seen.samples = body
                        .lines()
                        .filter(|l| l.starts_with("lighthouse_fs_"))
                        .count();
                }
                Err(e) => eprintln!("scraping {addr}: {e}"),
            }
            thread::sleep(SCRAPE_EVERY);
        }
    });
    Ok(stop)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Target {
    name: String,
    /// The writable tree: a tmpfs directory, or `MNT/current`.
    root: PathBuf,
    server: Option<Server>,
}

impl Target {
    /// Where the tree lives under a mount: lighthouse-fs serves it in `current/`.
    fn tree_root(server: &Server) -> PathBuf {
        if server.backend == BINDFS {
            server.mnt.clone()
        } else {
            server.mnt.join("current")
        }
    }

    /// Make the kernel forget the tree (see the module comment for what "cold" means).
    fn cold(&mut self) -> Result<()> {
        nix::unistd::sync();
        if let Some(server) = &mut self.server {
            server.stop();
            server.start().context("remounting to go cold")?;
        }
        let _ = drop_caches();
        Ok(())
    }
}

fn drop_caches() -> io::Result<()> {
    fs::write("/proc/sys/vm/drop_caches", "3")
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    match &lines[lines.len().saturating_sub(20)..] {
        [] => "(log empty)".into(),
        tail => tail.join("\n"),
    }
}

// ---------------------------------------------------------------------------------------
// Figures: each creates what it needs under the target's root and returns (key, value)s

type Figures = Vec<(&'static str, f64)>;
type Figure = fn(&mut Target, &Ctx) -> Result<Figures>;

struct Ctx {
    sizes: Sizes,
    /// The generated tree for the memory figure (on the scratch tmpfs).
    tree_src: PathBuf,
    /// Why the bindfs peers cannot run, if they cannot.
    bindfs_missing: Option<String>,
}

const FIGURES: &[(&str, Figure)] = &[
    ("stat", stat_cold_hot),
    ("open+read+close", open_read_close),
    ("readdir", readdir),
    ("sequential", sequential),
    ("create", create),
    ("missing lookups", missing_lookups),
    ("tree walk", tree_walk),
    ("history", history_vs_current),
    ("stream latency", stream_latency),
    ("view swap", view_swap),
    ("round trips", round_trips),
];

fn stat_cold_hot(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let paths = create_files(&t.root.join("stat"), ctx.sizes.stat_files, 0)?;
    t.cold()?;
    let mut cold = histogram();
    for p in &paths {
        sample(&mut cold, || fs::metadata(p))?;
    }
    let mut hot = histogram();
    for _ in 0..ctx.sizes.stat_hot_rounds {
        for p in &paths {
            sample(&mut hot, || fs::metadata(p))?;
        }
    }
    Ok([
        percentiles(&cold, ["stat_cold_p50_us", "stat_cold_p99_us"]),
        percentiles(&hot, ["stat_hot_p50_us", "stat_hot_p99_us"]),
    ]
    .concat())
}

fn open_read_close(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let paths = create_files(&t.root.join("read"), ctx.sizes.read_files, 4096)?;
    let mut storage = vec![0u8; 2 * PAGE];
    let buf = page_aligned(&mut storage, PAGE);
    let mut read = |p: &Path| File::open(p)?.read_exact(buf); // close on drop
    for p in &paths {
        read(p)?; // warm
    }
    let mut h = histogram();
    for _ in 0..ctx.sizes.read_rounds {
        for p in &paths {
            sample(&mut h, || read(p))?;
        }
    }
    Ok(percentiles(&h, ["orc_p50_us", "orc_p99_us"]))
}

/// The same 4 KiB files through `history/@N/` (a WebAssembly view) and `current/`, warm:
/// stat and open+read+close p50/p99. lighthouse-fs targets only.
fn history_vs_current(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let Some(server) = &t.server else {
        return Ok(vec![]);
    };
    if server.backend == BINDFS {
        return Ok(vec![]);
    }
    let mnt = server.mnt.clone();
    let paths = create_files(&t.root.join("hist"), ctx.sizes.read_files, 4096)?;
    File::open(&t.root)?.sync_all()?; // the log has every event before we pick the point
    let head = fs::read_dir(mnt.join("history"))?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix('@')?
                .parse::<u64>()
                .ok()
        })
        .max()
        .context("history lists no @SEQ point")?;
    let past: Vec<PathBuf> = paths
        .iter()
        .map(|p| {
            mnt.join(format!("history/@{head}"))
                .join(p.strip_prefix(&t.root).expect("below root"))
        })
        .collect();
    let mut storage = vec![0u8; 2 * PAGE];
    let buf = page_aligned(&mut storage, PAGE);
    let mut figures = Vec::new();
    for (set, stat_keys, orc_keys) in [
        (
            &paths,
            ["cur_stat_p50_us", "cur_stat_p99_us"],
            ["cur_orc_p50_us", "cur_orc_p99_us"],
        ),
        (
            &past,
            ["hist_stat_p50_us", "hist_stat_p99_us"],
            ["hist_orc_p50_us", "hist_orc_p99_us"],
        ),
    ] {
        let mut read = |p: &Path| File::open(p)?.read_exact(buf);
        for p in set.iter() {
            read(p)?; // warm
        }
        let (mut st, mut orc) = (histogram(), histogram());
        for _ in 0..ctx.sizes.read_rounds {
            for p in set.iter() {
                sample(&mut st, || fs::metadata(p))?;
                sample(&mut orc, || read(p))?;
            }
        }
        figures.extend(percentiles(&st, stat_keys));
        figures.extend(percentiles(&orc, orc_keys));
    }
    // A relative point is volatile (TTL 0): every stat is one FUSE lookup that reaches
    // the view. Against `cargo bench --bench view_calls`, this shows what share of a
    // round trip the wasm call is.
    let live_point = mnt.join("history/-0s");
    let mut st = histogram();
    for _ in 0..ctx.sizes.read_rounds * ctx.sizes.read_files {
        sample(&mut st, || fs::metadata(&live_point))?;
    }
    figures.extend(percentiles(
        &st,
        ["hist_live_stat_p50_us", "hist_live_stat_p99_us"],
    ));
    Ok(figures)
}

/// Event-to-reader latency of `streams/file_changes`: from the return of close() of a
/// written file to its `write` line being read by a reader blocked on the stream.
/// lighthouse-fs targets only.
fn stream_latency(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let Some(server) = &t.server else {
        return Ok(vec![]);
    };
    if server.backend == BINDFS {
        return Ok(vec![]);
    }
    // From the next event on (the plain name is the whole log, from the first event).
    let stream = File::open(server.mnt.join("streams/file_changes@now"))?;
    let mut lines = io::BufReader::new(stream).lines();
    let dir = t.root.join("stream");
    fs::create_dir_all(&dir)?;
    let mut h = histogram();
    for i in 0..ctx.sizes.read_files {
        let name = format!("lat{i}");
        fs::write(dir.join(&name), b"x")?; // returns after close()
        let closed = Instant::now();
        let want = format!("\"path\":\"/stream/{name}\"");
        loop {
            let line = lines.next().context("the stream ended")??;
            if line.contains("\"op\":\"write\"") && line.contains(&want) {
                break;
            }
        }
        h.saturating_record(closed.elapsed().as_nanos().max(1) as u64);
    }
    Ok(percentiles(&h, ["stream_p50_us", "stream_p99_us"]))
}

/// The operations whose FUSE requests are counted: key and what one is.
const TRIP_OPS: [(&str, &str); 3] = [
    ("create", "create + write 4 KiB + close"),
    ("orc", "open + read 4 KiB + close, hot unchanged file"),
    ("stat_cold", "stat, cold"),
];
/// Requests the kernel sends without waiting for their answer: not round trips.
const UNWAITED: [&str; 3] = ["release", "releasedir", "forget"];
/// Time given to the kernel's asynchronous requests (RELEASE after a close) to be served
/// before the counters are read.
const SETTLE: Duration = Duration::from_millis(200);

/// What one operation costs in FUSE requests of each kind on a lighthouse-fs target,
/// counted by the server (`debug/performance.json`, read before and after
/// [`Sizes::trip_ops`] operations): `rt:OP:KIND` requests per operation, and
/// `rt:OP:waited`, those the caller waits for (all but [`UNWAITED`]).
fn round_trips(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let mnt = match &t.server {
        Some(server) if server.backend != BINDFS => server.mnt.clone(),
        _ => return Ok(vec![]),
    };
    let n = ctx.sizes.trip_ops;
    let base = t.root.join("trips");
    let mut storage = vec![0x5a; 2 * PAGE];
    let buf = page_aligned(&mut storage, PAGE);
    let mut figures = Vec::new();

    let created = base.join("create");
    fs::create_dir_all(&created)?;
    figures.extend(requests_per_op("create", &mnt, n, |k| {
        buf[..8].copy_from_slice(&(k as u64).to_le_bytes());
        File::create(created.join(format!("c{k:05}")))?.write_all(buf)?;
        Ok(())
    })?);

    let hot = create_files(&base.join("orc"), n, PAGE)?;
    for p in &hot {
        File::open(p)?.read_exact(buf)?; // warm: from now on the file is hot and unchanged
    }
    figures.extend(requests_per_op("orc", &mnt, n, |k| {
        File::open(&hot[k])?.read_exact(buf)?;
        Ok(())
    })?);

    let stat = create_files(&base.join("stat"), n, 0)?;
    t.cold()?;
    // The directory is looked up before counting: a cold stat of a file in a known place.
    fs::metadata(base.join("stat"))?;
    figures.extend(requests_per_op("stat_cold", &mnt, n, |k| {
        fs::metadata(&stat[k])?;
        Ok(())
    })?);
    Ok(figures)
}

/// The server's request counts by kind (`ops.KIND.count` of `debug/performance.json`).
fn request_counts(mnt: &Path) -> Result<BTreeMap<String, u64>> {
    let path = mnt.join("debug/performance.json");
    // One large buffer, no stat first: the same requests every time (the document is
    // direct I/O, so each read() is one READ; the second one finds the end).
    let mut doc = vec![0u8; MIB];
    let mut len = 0;
    let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    loop {
        match file.read(&mut doc[len..])? {
            0 => break,
            n => len += n,
        }
        ensure!(len < doc.len(), "{} is over {MIB} bytes", path.display());
    }
    drop(file);
    let doc: serde_json::Value = serde_json::from_slice(&doc[..len])
        .with_context(|| format!("parsing {}", path.display()))?;
    let ops = doc["ops"]
        .as_object()
        .context("performance.json has no \"ops\" object")?;
    ops.iter()
        .map(|(kind, figures)| {
            let count = figures["count"]
                .as_u64()
                .with_context(|| format!("performance.json: ops.{kind}.count"))?;
            Ok((kind.clone(), count))
        })
        .collect()
}

/// Requests of each kind that one `op(k)`, k in 0..n, costs: the counters read before and
/// after, less what reading them costs (measured by reading them twice in a row first).
fn requests_per_op(
    op: &str,
    mnt: &Path,
    n: usize,
    mut run: impl FnMut(usize) -> Result<()>,
) -> Result<Figures> {
    let read = || -> Result<BTreeMap<String, u64>> {
        let counts = request_counts(mnt)?;
        thread::sleep(SETTLE); // the RELEASE of the document's handle lands before the next
        Ok(counts)
    };
    let first = read()?;
    let before = read()?;
    for k in 0..n {
        run(k).with_context(|| format!("{op} #{k}"))?;
    }
    let after = read()?;
    let count =
        |counts: &BTreeMap<String, u64>, kind: &str| counts.get(kind).map_or(0.0, |&c| c as f64);
    let mut figures = Vec::new();
    let mut waited = 0.0;
    for kind in after.keys() {
        let reading = count(&before, kind) - count(&first, kind);
        let per_op = (count(&after, kind) - count(&before, kind) - reading) / n as f64;
        if !UNWAITED.contains(&kind.as_str()) {
            waited += per_op;
        }
        figures.push((intern(format!("rt:{op}:{kind}")), per_op));
    }
    figures.push((intern(format!("rt:{op}:waited")), waited));
    Ok(figures)
}

/// A key made at run time as a `&'static str`, like the figures' own: each distinct one
/// is leaked once (a few dozen: operation × request kind).
fn intern(key: String) -> &'static str {
    static KEYS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut keys = KEYS.lock().unwrap();
    if let Some(&k) = keys.get(key.as_str()) {
        return k;
    }
    let k: &'static str = Box::leak(key.into_boxed_str());
    keys.insert(k);
    k
}

/// Swaps of the test view `swap` between its two versions in the watched views directory.
const SWAPS: usize = 20;

/// Hot swap. lighthouse-fs targets: the time from a new component landing in the watched
/// views directory (renamed in, as a build tool does) to its output being read through
/// the mount, over [`SWAPS`] swaps between two versions with the compile cache warm; and
/// open+read+close of the view's 10-byte file, quietly and by another thread during the
/// swaps. tmpfs and bindfs: the same read of a 10-byte file, the baselines.
fn view_swap(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let reads = ctx.sizes.read_files * ctx.sizes.read_rounds;
    let quiet = |file: &Path| -> Result<Figures> {
        let mut h = histogram();
        for _ in 0..reads {
            sample(&mut h, || fs::read(file))?;
        }
        Ok(percentiles(
            &h,
            ["swap_read_quiet_p50_us", "swap_read_quiet_p99_us"],
        ))
    };
    let server = match &t.server {
        Some(server) if server.backend != BINDFS => server,
        // The baseline: a plain file of the same size.
        _ => {
            let file = t.root.join("swap-base/version");
            fs::create_dir_all(file.parent().expect("has a parent"))?;
            fs::write(&file, b"version a\n")?;
            return quiet(&file);
        }
    };
    let component = |stem: &str| {
        lighthouse_fs::views::builtin::component(stem)
            .with_context(|| format!("the {stem} test component is not built"))
    };
    let versions = [
        (component("test_swap_a")?, b"version a\n"),
        (component("test_swap_b")?, b"version b\n"),
    ];
    let file = server.mnt.join("swap/version");
    let views = server.views.clone();
    // Lands the version and waits until the mount shows it: milliseconds taken.
    let swap_to = |(bytes, shows): (&[u8], &[u8; 10])| -> Result<f64> {
        let tmp = views.join(".swap.wasm.tmp");
        fs::write(&tmp, bytes)?;
        let landed = Instant::now();
        fs::rename(&tmp, views.join("swap.wasm"))?;
        while fs::read(&file).ok().as_deref() != Some(shows.as_slice()) {
            ensure!(
                landed.elapsed() < Duration::from_secs(30),
                "the swap did not show within 30 s"
            );
            thread::sleep(Duration::from_micros(500));
        }
        Ok(landed.elapsed().as_secs_f64() * 1e3)
    };
    // Both versions once: compiled and in the compile cache from now on.
    for version in versions {
        swap_to(version)?;
    }
    let mut figures = quiet(&file)?;

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (visible, busy) = thread::scope(|s| -> Result<_> {
        let reader = s.spawn(|| -> Result<Histogram<u64>> {
            let mut h = histogram();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let data = sample(&mut h, || fs::read(&file))?;
                ensure!(
                    versions.iter().any(|(_, shows)| data == shows.as_slice()),
                    "a read during the swaps returned {data:?}"
                );
            }
            Ok(h)
        });
        let mut visible = Vec::with_capacity(SWAPS);
        let mut result = Ok(());
        for i in 0..SWAPS {
            match swap_to(versions[i % 2]) {
                Ok(ms) => visible.push(ms),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let busy = reader.join().expect("the reader panicked")?;
        result.map(|()| (visible, busy))
    })?;
    let mut sorted = visible.clone();
    sorted.sort_by(f64::total_cmp);
    figures.push(("swap_visible_p50_ms", sorted[sorted.len() / 2]));
    figures.push(("swap_visible_max_ms", sorted[sorted.len() - 1]));
    figures.extend(percentiles(
        &busy,
        ["swap_read_busy_p50_us", "swap_read_busy_p99_us"],
    ));
    Ok(figures)
}

fn readdir(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let dir = t.root.join("readdir");
    let n = ctx.sizes.dir_entries;
    create_files(&dir, n, 0)?;
    let mut runs = Vec::new();
    for run in 0..=ctx.sizes.readdir_runs {
        let start = Instant::now();
        let mut count = 0;
        for entry in fs::read_dir(&dir)? {
            std::hint::black_box(entry?.file_name());
            count += 1;
        }
        let ms = start.elapsed().as_secs_f64() * 1e3;
        ensure!(count == n, "readdir listed {count} entries, expected {n}");
        if run > 0 {
            runs.push(ms); // run 0 warms up
        }
    }
    runs.sort_by(f64::total_cmp);
    Ok(vec![("readdir_ms", runs[runs.len() / 2])])
}

fn sequential(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let path = t.root.join("sequential.bin");
    let bytes = ctx.sizes.seq_bytes;
    let mut storage = vec![0u8; MIB + PAGE];
    let buf = page_aligned(&mut storage, MIB);
    SmallRng::seed_from_u64(7).fill_bytes(buf);
    let start = Instant::now();
    let mut file = File::create(&path)?;
    for i in 0..bytes / MIB {
        buf[..8].copy_from_slice(&(i as u64).to_le_bytes()); // no two chunks alike
        file.write_all(buf)?;
    }
    drop(file); // close() is part of the figure
    let write = mb_per_s(bytes, start.elapsed());

    t.cold()?;
    let read_cold = read_through(&path, buf, bytes)?;
    let read_hot = read_through(&path, buf, bytes)?;
    Ok(vec![
        ("seq_write_mbs", write),
        ("seq_read_cold_mbs", read_cold),
        ("seq_read_hot_mbs", read_hot),
    ])
}

fn read_through(path: &Path, buf: &mut [u8], expected: usize) -> Result<f64> {
    let start = Instant::now();
    let mut file = File::open(path)?;
    let mut total = 0;
    loop {
        match file.read(buf)? {
            0 => break,
            n => total += n,
        }
    }
    drop(file);
    let elapsed = start.elapsed();
    ensure!(total == expected, "read {total} bytes, expected {expected}");
    Ok(mb_per_s(total, elapsed))
}

fn create(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let dir = t.root.join("create");
    fs::create_dir_all(&dir)?;
    let start = Instant::now();
    create_files(&dir, ctx.sizes.create_files, 4096)?;
    Ok(vec![(
        "create_fps",
        ctx.sizes.create_files as f64 / start.elapsed().as_secs_f64(),
    )])
}

fn missing_lookups(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let dir = t.root.join("missing");
    fs::create_dir_all(&dir)?;
    let per_thread = ctx.sizes.lookups_per_thread;
    let distinct = lookups(&dir, per_thread, |th, k| format!("d{th}-{k}"))?;
    let repeated = lookups(&dir, per_thread, |th, k| {
        format!("r{th}-{}", k % REPEATED_NAMES)
    })?;
    Ok(vec![
        ("missing_distinct_ops", distinct),
        ("missing_repeated_ops", repeated),
    ])
}

/// `stat` of names that do not exist from LOOKUP_THREADS threads at once; ops/s.
fn lookups(dir: &Path, per_thread: usize, name: impl Fn(usize, usize) -> String) -> Result<f64> {
    let names: Vec<Vec<PathBuf>> = (0..LOOKUP_THREADS)
        .map(|th| (0..per_thread).map(|k| dir.join(name(th, k))).collect())
        .collect();
    let barrier = Barrier::new(LOOKUP_THREADS + 1);
    let (elapsed, unexpected) = thread::scope(|s| {
        let workers: Vec<_> = names
            .iter()
            .map(|paths| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    paths.iter().filter(|p| !is_missing(p)).count()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let unexpected: usize = workers
            .into_iter()
            .map(|w| w.join().expect("lookup thread"))
            .sum();
        (start.elapsed(), unexpected)
    });
    ensure!(
        unexpected == 0,
        "{unexpected} lookups of missing names did not fail with ENOENT"
    );
    Ok((LOOKUP_THREADS * per_thread) as f64 / elapsed.as_secs_f64())
}

fn is_missing(path: &Path) -> bool {
    matches!(fs::metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Walk the generated tree (readdir + stat of every entry). For a backend: import it into
/// a fresh store, mount that store, walk `current/`, and read the server's VmRSS.
fn tree_walk(t: &mut Target, ctx: &Ctx) -> Result<Figures> {
    let Some(server) = &mut t.server else {
        let (files, ms) = walk_timed(&ctx.tree_src)?;
        ensure!(
            files == ctx.sizes.tree_files,
            "walked {files} files, expected {}",
            ctx.sizes.tree_files
        );
        return Ok(vec![("tree_walk_ms", ms)]);
    };
    // Named after the target (a backend runs twice: plain and with metrics).
    let store = server
        .store
        .with_file_name(format!("tree-store-{}", t.name));
    let mnt = server.mnt.with_file_name(format!("mnt-tree-{}", t.name));
    if server.backend == BINDFS {
        // The peer serves the generated tree as it is (no store to import into).
        let tree = Server::mount(&t.name, mnt, ctx.tree_src.clone(), server.log.clone())?;
        return walk_server(server, tree, ctx);
    }
    fs::create_dir_all(&store)?;
    let out = Command::new(BIN)
        .arg("import")
        .arg(&ctx.tree_src)
        .arg("--store")
        .arg(&store)
        .output()?;
    ensure!(
        out.status.success(),
        "import failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = Server::mount(&server.backend, mnt, store, server.log.clone())?;
    walk_server(server, tree, ctx)
}

/// Walk the tree a server serves; its time and the server's resident memory after it.
fn walk_server(server: &mut Server, mut tree: Server, ctx: &Ctx) -> Result<Figures> {
    let (files, ms) = walk_timed(&Target::tree_root(&tree))?;
    let rss = tree
        .pid()
        .and_then(|pid| proc_status_kib(pid, "VmRSS"))
        .context("reading VmRSS")?;
    tree.stop();
    server.peak_kib = server.peak_kib.max(tree.peak_kib);
    ensure!(
        files == ctx.sizes.tree_files,
        "walked {files} files, expected {}",
        ctx.sizes.tree_files
    );
    Ok(vec![
        ("tree_walk_ms", ms),
        ("tree_rss_mib", rss as f64 / 1024.0),
    ])
}

fn walk_timed(root: &Path) -> Result<(usize, f64)> {
    fn walk(dir: &Path) -> io::Result<usize> {
        let mut files = 0;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                files += walk(&path)?;
            } else {
                files += 1;
            }
        }
        Ok(files)
    }
    let start = Instant::now();
    let files = walk(root).with_context(|| format!("walking {}", root.display()))?;
    Ok((files, start.elapsed().as_secs_f64() * 1e3))
}

fn generate_tree(root: &Path, files: usize) -> Result<()> {
    const PER_DIR: usize = 1_000;
    for d in 0..files.div_ceil(PER_DIR) {
        let dir = root.join(format!("d{d:03}"));
        fs::create_dir_all(&dir)?;
        for f in d * PER_DIR..files.min((d + 1) * PER_DIR) {
            fs::write(dir.join(format!("f{f:06}.txt")), format!("file {f}\n"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Helpers

/// `n` files `f00000..` of `len` bytes in `dir`, each stamped with its index (no two alike,
/// so a content-addressed store cannot deduplicate them); closed before returning.
fn create_files(dir: &Path, n: usize, len: usize) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut storage = vec![0x5a; len + PAGE];
    let buf = page_aligned(&mut storage, len);
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let path = dir.join(format!("f{i:05}"));
        let stamp = (i as u64).to_le_bytes();
        let k = len.min(stamp.len());
        buf[..k].copy_from_slice(&stamp[..k]);
        File::create(&path)?.write_all(buf)?;
        paths.push(path);
    }
    Ok(paths)
}

/// `len` bytes of `storage` starting on a page boundary. On this machine's CPU (AMD EPYC)
/// the kernel copies to a user buffer 16 bytes off a page boundary (where malloc puts a
/// large Vec) about 4x slower than to an aligned one, which would cap tmpfs reads near
/// 2 GB/s; dd and real readers use aligned buffers.
fn page_aligned(storage: &mut [u8], len: usize) -> &mut [u8] {
    let offset = storage.as_ptr().align_offset(PAGE);
    &mut storage[offset..offset + len]
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// Time one operation into `h` (nanoseconds).
fn sample<T>(h: &mut Histogram<u64>, op: impl FnOnce() -> io::Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = op()?;
    h.saturating_record(start.elapsed().as_nanos().max(1) as u64);
    Ok(out)
}

/// p50 and p99 in µs under the two keys given.
fn percentiles(h: &Histogram<u64>, [p50, p99]: [&'static str; 2]) -> Figures {
    let us = |q| h.value_at_quantile(q) as f64 / 1e3;
    vec![(p50, us(0.5)), (p99, us(0.99))]
}

fn mb_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------------------
// Running and reporting

#[derive(Default)]
struct Outcome {
    values: BTreeMap<&'static str, f64>,
    errors: Vec<String>,
}

impl Outcome {
    /// One target's rounds as one: each figure's median (of the rounds that have it),
    /// every distinct error.
    fn median(runs: Vec<Outcome>) -> Outcome {
        let mut all: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        let mut errors = Vec::new();
        for run in runs {
            for (key, v) in run.values {
                all.entry(key).or_default().push(v);
            }
            for e in run.errors {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
        let values = all
            .into_iter()
            .map(|(key, mut vs)| {
                vs.sort_by(f64::total_cmp);
                let mid = vs.len() / 2;
                let median = if vs.len() % 2 == 1 {
                    vs[mid]
                } else {
                    (vs[mid - 1] + vs[mid]) / 2.0
                };
                (key, median)
            })
            .collect();
        Outcome { values, errors }
    }
}

/// `LIGHTHOUSE_BENCH_ROUNDS` (default 1).
fn rounds_from_env() -> Result<usize> {
    match std::env::var("LIGHTHOUSE_BENCH_ROUNDS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .with_context(|| format!("LIGHTHOUSE_BENCH_ROUNDS={v:?}: expected a number ≥ 1")),
        Err(_) => Ok(1),
    }
}

/// Is the figure `name` asked for (`LIGHTHOUSE_BENCH_ONLY`)?
fn selected(name: &str) -> bool {
    match std::env::var("LIGHTHOUSE_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only
            .split(',')
            .any(|word| !word.trim().is_empty() && name.contains(word.trim())),
        _ => true,
    }
}

fn run(target: &mut Target, ctx: &Ctx) -> Outcome {
    let mut outcome = Outcome::default();
    for (name, figure) in FIGURES.iter().filter(|(name, _)| selected(name)) {
        if let Some(server) = &mut target.server {
            if let Err(e) = server.check_alive() {
                outcome
                    .errors
                    .push(format!("{name} and after: skipped: {e:#}"));
                break;
            }
        }
        eprintln!("  {}: {name}", target.name);
        match figure(target, ctx) {
            Ok(values) => outcome.values.extend(values),
            Err(e) => outcome.errors.push(format!("{name}: {e:#}")),
        }
    }
    if let Some(server) = &mut target.server {
        server.stop();
        outcome
            .values
            .insert("server_hwm_mib", server.peak_kib as f64 / 1024.0);
        let seen = server.scrapes.lock().unwrap();
        if !seen.times_ms.is_empty() {
            let mut times = seen.times_ms.clone();
            times.sort_by(f64::total_cmp);
            outcome
                .values
                .insert("scrape_p50_ms", times[times.len() / 2]);
            outcome.values.insert("scrape_samples", seen.samples as f64);
        }
    }
    outcome
}

/// Which way a figure is better: the direction of the fuse3-against-fuser goal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
    Neither,
}

/// A row's goal (issue 17 for the figures of its table).
enum Goal {
    None,
    AtMost(f64),
    /// value ≤ k × tmpfs (a latency within k× of tmpfs)
    AtMostTmpfs(f64),
    /// value ≥ k × tmpfs (a throughput at least k× tmpfs's)
    AtLeastTmpfs(f64),
    /// value ≤ k × bindfs --multithreaded, measured in the same run
    AtMostPeer(f64),
    /// value ≥ k × bindfs --multithreaded, measured in the same run
    AtLeastPeer(f64),
    /// the operation behind the figure waits for at most this many FUSE requests (its
    /// `rt:OP:waited` figure, see [`round_trips`])
    AtMostTrips(&'static str, f64),
}

impl Goal {
    fn describe(&self) -> String {
        match self {
            Goal::None => String::new(),
            Goal::AtMost(v) => format!("≤ {}", num(*v)),
            Goal::AtMostTmpfs(k) => format!("≤ {k}× tmpfs"),
            Goal::AtLeastTmpfs(k) => format!("≥ {k}× tmpfs"),
            Goal::AtMostPeer(k) if *k == 1.0 => format!("≤ {BINDFS_MT}"),
            Goal::AtMostPeer(k) => format!("≤ {k}× {BINDFS_MT}"),
            Goal::AtLeastPeer(k) => format!("≥ {k}× {BINDFS_MT}"),
            Goal::AtMostTrips(_, n) if *n == 1.0 => "≤ 1 round trip".into(),
            Goal::AtMostTrips(_, n) => format!("≤ {n} round trips"),
        }
    }
}

struct Row {
    key: &'static str,
    /// `{dir}`, `{seq}`, `{create}`, `{tree}` and `{names}` stand for this run's sizes.
    label: &'static str,
    goal: Goal,
    better: Better,
}

use Better::{Higher, Lower, Neither};

/// The table, top to bottom. The goals of the issue's figures are issue 17's; the
/// others are the design brief's.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { key: "stat_cold_p50_us", label: "stat, cold, p50 µs", goal: Goal::AtMostPeer(1.0), better: Lower },
    Row { key: "stat_cold_p99_us", label: "stat, cold, p99 µs", goal: Goal::None, better: Lower },
    Row { key: "stat_hot_p50_us", label: "stat, hot (cached), p50 µs", goal: Goal::AtMostTmpfs(2.0), better: Lower },
    Row { key: "stat_hot_p99_us", label: "stat, hot (cached), p99 µs", goal: Goal::None, better: Lower },
    Row { key: "orc_p50_us", label: "open+read 4 KiB+close, hot, p50 µs", goal: Goal::AtMostTrips("rt:orc:waited", 1.0), better: Lower },
    Row { key: "orc_p99_us", label: "open+read 4 KiB+close, hot, p99 µs", goal: Goal::None, better: Lower },
    Row { key: "readdir_ms", label: "readdir of {dir} entries, median ms", goal: Goal::None, better: Lower },
    Row { key: "seq_read_cold_mbs", label: "sequential read {seq}, cold, MB/s", goal: Goal::AtLeastTmpfs(0.9), better: Higher },
    Row { key: "seq_read_hot_mbs", label: "sequential read {seq}, hot, MB/s", goal: Goal::AtLeastTmpfs(0.9), better: Higher },
    Row { key: "seq_write_mbs", label: "sequential write {seq} incl. close, MB/s", goal: Goal::AtLeastTmpfs(0.9), better: Higher },
    Row { key: "create_fps", label: "create+write 4 KiB+close, {create} files, files/s", goal: Goal::AtLeastPeer(2.0), better: Higher },
    Row { key: "missing_distinct_ops", label: "missing names, 4 threads, all distinct, ops/s", goal: Goal::None, better: Higher },
    Row { key: "missing_repeated_ops", label: "missing names, 4 threads, {names} repeated (neg. cache), ops/s", goal: Goal::None, better: Higher },
    Row { key: "tree_walk_ms", label: "walk {tree}-file tree, stat each, ms", goal: Goal::None, better: Lower },
    Row { key: "cur_stat_p50_us", label: "stat current/ file, warm, p50 µs", goal: Goal::None, better: Lower },
    Row { key: "hist_stat_p50_us", label: "stat history/@N/ file, warm, p50 µs", goal: Goal::None, better: Lower },
    Row { key: "cur_orc_p50_us", label: "open+read 4 KiB+close current/, p50 µs", goal: Goal::None, better: Lower },
    Row { key: "hist_orc_p50_us", label: "open+read 4 KiB+close history/@N/, p50 µs", goal: Goal::None, better: Lower },
    Row { key: "hist_orc_p99_us", label: "open+read 4 KiB+close history/@N/, p99 µs", goal: Goal::None, better: Lower },
    Row { key: "hist_live_stat_p50_us", label: "stat history/-0s (uncached: lookup + view call), p50 µs", goal: Goal::None, better: Lower },
    Row { key: "hist_live_stat_p99_us", label: "stat history/-0s (uncached: lookup + view call), p99 µs", goal: Goal::None, better: Lower },
    Row { key: "stream_p50_us", label: "stream event-to-reader latency (close → line), p50 µs", goal: Goal::AtMost(1000.0), better: Lower },
    Row { key: "stream_p99_us", label: "stream event-to-reader latency (close → line), p99 µs", goal: Goal::None, better: Lower },
    Row { key: "swap_visible_p50_ms", label: "view swap: component lands → new output read, p50 ms", goal: Goal::AtMost(500.0), better: Lower },
    Row { key: "swap_visible_max_ms", label: "view swap: component lands → new output read, max ms", goal: Goal::None, better: Lower },
    Row { key: "swap_read_quiet_p50_us", label: "read 10 B view file (tmpfs, bindfs: a file), no swaps, p50 µs", goal: Goal::None, better: Lower },
    Row { key: "swap_read_quiet_p99_us", label: "read 10 B view file (tmpfs, bindfs: a file), no swaps, p99 µs", goal: Goal::None, better: Lower },
    Row { key: "swap_read_busy_p50_us", label: "read 10 B view file during {swaps} swaps, p50 µs", goal: Goal::None, better: Lower },
    Row { key: "swap_read_busy_p99_us", label: "read 10 B view file during {swaps} swaps, p99 µs", goal: Goal::None, better: Lower },
    Row { key: "tree_rss_mib", label: "server VmRSS, {tree}-file tree walked, MiB", goal: Goal::None, better: Lower },
    Row { key: "server_hwm_mib", label: "server peak RSS (max VmHWM, whole run), MiB", goal: Goal::None, better: Lower },
    Row { key: "scrape_p50_ms", label: "GET /metrics (+metrics runs: a scrape each second), p50 ms", goal: Goal::None, better: Lower },
    Row { key: "scrape_samples", label: "samples in a scrape", goal: Goal::None, better: Neither },
];

/// The issue's table (issue 17, section 4), top to bottom: keys of [`ROWS`]. Printed
/// first, drawn in the chart, and held to "fuse3 within 10% of fuser".
const SUMMARY: [&str; 8] = [
    "stat_cold_p50_us",
    "orc_p50_us",
    "readdir_ms",
    "seq_read_cold_mbs",
    "seq_read_hot_mbs",
    "seq_write_mbs",
    "create_fps",
    "missing_distinct_ops",
];

/// fuse3 may be this much worse than fuser on a figure of [`SUMMARY`] (issue 17).
const PARITY: f64 = 0.10;

fn row(key: &str) -> (usize, &'static Row) {
    ROWS.iter()
        .enumerate()
        .find(|(_, r)| r.key == key)
        .expect("SUMMARY names rows of ROWS")
}

fn label(row: &Row, s: &Sizes) -> String {
    let count = |n: usize| num(n as f64);
    row.label
        .replace("{dir}", &count(s.dir_entries))
        .replace("{seq}", &format!("{} MiB", s.seq_bytes / MIB))
        .replace("{create}", &count(s.create_files))
        .replace("{tree}", &count(s.tree_files))
        .replace("{names}", &REPEATED_NAMES.to_string())
        .replace("{swaps}", &SWAPS.to_string())
}

/// Thousands separators from 1,000; fewer decimals as the number grows.
fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}×"))
}

/// Lines of cells as aligned text: the first line a header, `numeric(column)` cells
/// right-aligned; as a markdown table when `markdown`, else columns with a rule.
fn render(lines: &[Vec<String>], numeric: impl Fn(usize) -> bool, markdown: bool) -> String {
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        })
        .collect();
    let mut out = String::new();
    for (n, line) in lines.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            let cell = if numeric(c) && n > 0 {
                format!("{pad}{cell}")
            } else {
                format!("{cell}{pad}")
            };
            if markdown {
                let _ = write!(text, "| {cell} ");
            } else {
                let _ = write!(text, "{cell}  ");
            }
        }
        if markdown {
            text.push('|');
        }
        let _ = writeln!(out, "{}", text.trim_end());
        if n == 0 {
            if markdown {
                let rule: Vec<String> = widths
                    .iter()
                    .enumerate()
                    .map(|(c, &w)| {
                        let dashes = "-".repeat(w);
                        if numeric(c) {
                            format!("{}:", &dashes[1..])
                        } else {
                            dashes
                        }
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", rule.join(" | "));
            } else {
                let _ = writeln!(
                    out,
                    "{}",
                    "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
                );
            }
        }
    }
    out
}

struct Table {
    names: Vec<String>,
    outcomes: Vec<Outcome>,
    /// ROWS' labels with this run's sizes.
    labels: Vec<String>,
    /// Operations counted per round trip figure.
    trip_ops: usize,
}

impl Table {
    fn value(&self, target: usize, key: &str) -> Option<f64> {
        self.outcomes[target].values.get(key).copied()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn tmpfs(&self) -> Option<usize> {
        self.index("tmpfs")
    }

    /// The peer the goals and ratios are judged against: bindfs --multithreaded.
    fn peer(&self) -> Option<usize> {
        self.index(BINDFS_MT)
    }

    fn is_peer(&self, i: usize) -> bool {
        self.names[i] == BINDFS || self.names[i] == BINDFS_MT
    }

    /// A plain lighthouse-fs backend (not a variant, nor tmpfs, nor a peer).
    fn is_ours(&self, i: usize) -> bool {
        Some(i) != self.tmpfs() && !self.is_peer(i) && !self.names[i].contains('+')
    }

    fn ours(&self) -> Vec<usize> {
        (0..self.names.len()).filter(|&i| self.is_ours(i)).collect()
    }

    /// The value a figure has to stay under or reach, when the goal is one.
    fn threshold(&self, row: &Row) -> Option<f64> {
        let at = |i: Option<usize>| self.value(i?, row.key);
        match row.goal {
            Goal::AtMost(v) => Some(v),
            Goal::AtMostTmpfs(k) | Goal::AtLeastTmpfs(k) => Some(k * at(self.tmpfs())?),
            Goal::AtMostPeer(k) | Goal::AtLeastPeer(k) => Some(k * at(self.peer())?),
            Goal::None | Goal::AtMostTrips(..) => None,
        }
    }

    /// Does target `i` meet the row's goal? `None` when there is none or a figure is
    /// missing.
    fn mark(&self, row: &Row, i: usize) -> Option<bool> {
        match row.goal {
            Goal::None => None,
            // As printed, two decimals: a stray lookup over a thousand runs is no trip.
            Goal::AtMostTrips(key, n) => Some((self.value(i, key)? * 100.0).round() / 100.0 <= n),
            Goal::AtMost(_) | Goal::AtMostTmpfs(_) | Goal::AtMostPeer(_) => {
                Some(self.value(i, row.key)? <= self.threshold(row)?)
            }
            Goal::AtLeastTmpfs(_) | Goal::AtLeastPeer(_) => {
                Some(self.value(i, row.key)? >= self.threshold(row)?)
            }
        }
    }

    /// Our plain backends' marks.
    fn marks(&self, row: &Row) -> Vec<(usize, bool)> {
        self.ours()
            .into_iter()
            .filter_map(|i| Some((i, self.mark(row, i)?)))
            .collect()
    }

    /// fuse3 / fuser on a figure of [`SUMMARY`], and whether it is within [`PARITY`] in
    /// the figure's worse direction.
    fn parity(&self, row: &Row) -> Option<(f64, bool)> {
        if !SUMMARY.contains(&row.key) {
            return None;
        }
        let r = self.value(self.index("fuse3")?, row.key)?
            / self.value(self.index("fuser")?, row.key)?;
        match row.better {
            Lower => Some((r, r <= 1.0 + PARITY)),
            Higher => Some((r, r >= 1.0 - PARITY)),
            Neither => None,
        }
    }

    fn mark_text(&self, row: &Row) -> String {
        let pass = |ok: bool| if ok { "pass" } else { "MISS" };
        let marks: Vec<String> = self
            .marks(row)
            .into_iter()
            .map(|(i, ok)| format!("{} {}", self.names[i], pass(ok)))
            .collect();
        marks.join(", ")
    }

    fn parity_text(&self, row: &Row) -> String {
        self.parity(row).map_or(String::new(), |(r, ok)| {
            format!("{r:.2}× {}", if ok { "pass" } else { "MISS" })
        })
    }

    /// The issue's table, as markdown: tmpfs, both bindfs, our plain backends; ratios to
    /// tmpfs and to bindfs --multithreaded; goals and marks.
    fn print_summary(&self) {
        let show = |name: &str| match name {
            "tmpfs" => "tmpfs".to_string(),
            BINDFS => "bindfs".to_string(),
            BINDFS_MT => "bindfs --multithreaded".to_string(),
            ours => format!("ours {ours}"),
        };
        let columns: Vec<usize> = ["tmpfs", BINDFS, BINDFS_MT]
            .iter()
            .filter_map(|n| self.index(n))
            .chain(self.ours())
            .collect();
        let ours = self.ours();
        let mut header = vec!["figure".to_string()];
        header.extend(columns.iter().map(|&i| show(&self.names[i])));
        if self.tmpfs().is_some() {
            header.extend(ours.iter().map(|&i| format!("{}/tmpfs", self.names[i])));
        }
        if self.peer().is_some() {
            header.extend(
                ours.iter()
                    .map(|&i| format!("{}/{BINDFS_MT}", self.names[i])),
            );
        }
        header.extend(["goal", "mark", "fuse3/fuser (≤ 10% worse)"].map(String::from));
        let mut lines = vec![header];
        for key in SUMMARY {
            let (r, row) = row(key);
            let mut cells = vec![self.labels[r].clone()];
            cells.extend(
                columns
                    .iter()
                    .map(|&i| self.value(i, key).map_or("-".into(), num)),
            );
            for base in [self.tmpfs(), self.peer()].into_iter().flatten() {
                for &i in &ours {
                    cells.push(ratio(
                        self.value(i, key)
                            .zip(self.value(base, key))
                            .map(|(v, b)| v / b),
                    ));
                }
            }
            cells.push(row.goal.describe());
            cells.push(self.mark_text(row));
            cells.push(self.parity_text(row));
            lines.push(cells);
        }
        let last = lines[0].len() - 3;
        print!("{}", render(&lines, |c| c > 0 && c < last, true));
    }

    /// Per counted operation: FUSE requests per operation by kind, for each of our
    /// targets that counted them, and those the caller waits for.
    fn print_round_trips(&self) {
        let counted: Vec<usize> = (0..self.names.len())
            .filter(|&i| self.value(i, "rt:orc:waited").is_some())
            .collect();
        if counted.is_empty() {
            println!("(no lighthouse-fs target counted its requests)");
            return;
        }
        for (op, what) in TRIP_OPS {
            let mut header = vec![format!("{what}: requests per op")];
            header.extend(counted.iter().map(|&i| self.names[i].clone()));
            let mut lines = vec![header];
            for kind in self.trip_kinds(op) {
                let key = format!("rt:{op}:{kind}");
                let mut cells = vec![kind];
                cells.extend(counted.iter().map(|&i| {
                    self.value(i, &key)
                        .map_or("-".into(), |v| format!("{v:.2}"))
                }));
                lines.push(cells);
            }
            let mut total = vec![format!("waited for (all but {})", UNWAITED.join(", "))];
            total.extend(counted.iter().map(|&i| {
                self.value(i, &format!("rt:{op}:waited"))
                    .map_or("-".into(), |v| format!("{v:.2}"))
            }));
            lines.push(total);
            print!("{}", render(&lines, |c| c > 0, true));
            println!();
        }
    }

    /// The request kinds that one `op` costs on some target (at least 0.005 per op).
    fn trip_kinds(&self, op: &str) -> Vec<String> {
        let prefix = format!("rt:{op}:");
        let mut kinds = BTreeSet::new();
        for outcome in &self.outcomes {
            for (key, v) in &outcome.values {
                if let Some(kind) = key.strip_prefix(&prefix) {
                    if kind != "waited" && v.abs() >= 0.005 {
                        kinds.insert(kind.to_string());
                    }
                }
            }
        }
        kinds.into_iter().collect()
    }

    /// Every figure of every target: ratios to tmpfs (every target) and to bindfs
    /// --multithreaded (ours), each variant against its plain run, goals and marks.
    fn print(&self) {
        let tmpfs = self.tmpfs();
        // The variants are compared with their plain runs only (below).
        let plain: Vec<usize> = (0..self.names.len())
            .filter(|&i| Some(i) != tmpfs && !self.names[i].contains('+'))
            .collect();
        let mut header = vec!["figure".to_string()];
        header.extend(self.names.iter().cloned());
        header.extend(plain.iter().map(|&i| format!("{}/tmpfs", self.names[i])));
        let peer = self.peer();
        let ours = self.ours();
        if peer.is_some() {
            header.extend(
                ours.iter()
                    .map(|&i| format!("{}/{BINDFS_MT}", self.names[i])),
            );
        }
        // X+variant against X: what serving metrics (and being scraped), a policy, or
        // going without passthrough costs.
        let variant_pairs: Vec<(usize, usize)> = (0..self.names.len())
            .filter_map(|i| {
                let (plain, _) = self.names[i].split_once('+')?;
                Some((i, self.index(plain)?))
            })
            .collect();
        header.extend(
            variant_pairs
                .iter()
                .map(|&(m, p)| format!("{}/{}", self.names[m], self.names[p])),
        );
        header.extend(["goal", "mark", "fuse3/fuser"].map(String::from));
        let mut lines = vec![header];
        for (row, label) in ROWS.iter().zip(&self.labels) {
            let mut cells = vec![label.clone()];
            for i in 0..self.names.len() {
                cells.push(self.value(i, row.key).map_or("-".into(), num));
            }
            let over = |v: usize, b: Option<usize>| {
                ratio(b.and_then(|b| Some(self.value(v, row.key)? / self.value(b, row.key)?)))
            };
            for &i in &plain {
                cells.push(over(i, tmpfs));
            }
            if peer.is_some() {
                for &i in &ours {
                    cells.push(over(i, peer));
                }
            }
            for &(m, p) in &variant_pairs {
                cells.push(over(m, Some(p)));
            }
            cells.push(row.goal.describe());
            cells.push(self.mark_text(row));
            cells.push(self.parity_text(row));
            lines.push(cells);
        }
        let last = lines[0].len() - 3;
        print!("{}", render(&lines, |c| c > 0 && c < last, false));
        for (name, outcome) in self.names.iter().zip(&self.outcomes) {
            for e in &outcome.errors {
                println!("{name}: {e}");
            }
        }
    }

    fn json(&self, sizes: &Sizes, chart: Option<&Path>) -> String {
        let per_target = |f: &dyn Fn(usize) -> Option<String>| {
            json_obj((0..self.names.len()).filter_map(|i| Some((&self.names[i], f(i)?))))
        };
        let rows: Vec<String> = ROWS
            .iter()
            .zip(&self.labels)
            .map(|(row, label)| {
                let marks = self.marks(row);
                let parity = self.parity(row).map_or("null".into(), |(r, ok)| {
                    json_obj([("fuse3/fuser", r.to_string()), ("pass", ok.to_string())])
                });
                let better = match row.better {
                    Lower => "lower",
                    Higher => "higher",
                    Neither => "neither",
                };
                json_obj([
                    ("key", json_str(row.key)),
                    ("label", json_str(label)),
                    ("target", json_str(&row.goal.describe())),
                    (
                        "threshold",
                        self.threshold(row).map_or("null".into(), |v| v.to_string()),
                    ),
                    ("better", json_str(better)),
                    (
                        "values",
                        per_target(&|i| self.value(i, row.key).map(|v| v.to_string())),
                    ),
                    (
                        "pass",
                        per_target(&|i| marks.iter().find(|m| m.0 == i).map(|m| m.1.to_string())),
                    ),
                    ("parity", parity),
                ])
            })
            .collect();
        let round_trips = per_target(&|i| {
            self.value(i, "rt:orc:waited")?;
            Some(json_obj(TRIP_OPS.iter().map(|&(op, what)| {
                let kinds = self.trip_kinds(op);
                let requests = json_obj(kinds.iter().filter_map(|kind| {
                    let v = self.value(i, &format!("rt:{op}:{kind}"))?;
                    Some((kind, v.to_string()))
                }));
                let waited = self
                    .value(i, &format!("rt:{op}:waited"))
                    .map_or("null".into(), |v| v.to_string());
                (
                    op,
                    json_obj([
                        ("what", json_str(what)),
                        ("requests_per_op", requests),
                        ("waited_per_op", waited),
                    ]),
                )
            })))
        });
        let errors = per_target(&|i| {
            let errors: Vec<String> = self.outcomes[i]
                .errors
                .iter()
                .map(|e| json_str(e))
                .collect();
            Some(format!("[{}]", errors.join(", ")))
        });
        let rows = format!("[\n    {}\n  ]", rows.join(",\n    "));
        let summary: Vec<String> = SUMMARY.iter().map(|k| json_str(k)).collect();
        json_obj([
            ("quick", sizes.quick.to_string()),
            ("summary", format!("[{}]", summary.join(", "))),
            ("rows", rows),
            ("round_trips_ops", self.trip_ops.to_string()),
            ("round_trips", round_trips),
            (
                "chart",
                chart.map_or("null".into(), |p| json_str(&p.display().to_string())),
            ),
            ("errors", errors),
        ]) + "\n"
    }

    /// The issue's table as a PNG: one panel per figure, a bar per target (tmpfs, both
    /// bindfs, our plain backends), the goal as a dashed line (or a note when it is not a
    /// value), marks and fuse3/fuser above; the round trips at the foot.
    fn chart(&self, path: &Path, title: &str) -> Result<()> {
        use plotters::coord::ranged1d::SegmentValue;
        use plotters::element::DashedPathElement;
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};

        const SIZE: (u32, u32) = (1920, 1080);
        let targets: Vec<usize> = ["tmpfs", BINDFS, BINDFS_MT]
            .iter()
            .filter_map(|n| self.index(n))
            .chain(self.ours())
            .collect();
        let color = |name: &str| match name {
            "tmpfs" => RGBColor(140, 140, 140),
            BINDFS => RGBColor(236, 178, 110),
            BINDFS_MT => RGBColor(200, 110, 40),
            "fuser" => RGBColor(55, 105, 195),
            "fuse3" => RGBColor(60, 160, 90),
            _ => RGBColor(150, 100, 200),
        };
        let font = |size: u32| ("sans-serif", size).into_font();
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(56);
        top.draw(&Text::new(title.to_string(), (24, 16), font(26)))?;
        let (grid, foot) = rest.split_vertically(SIZE.1 - 56 - 120);

        for (area, key) in grid.split_evenly((2, 4)).iter().zip(SUMMARY) {
            let (r, row) = row(key);
            let label = &self.labels[r];
            let unit = label.rsplit(' ').next().unwrap_or("");
            let bars: Vec<(usize, Option<f64>)> =
                targets.iter().map(|&i| (i, self.value(i, key))).collect();
            let threshold = self.threshold(row);
            let high = bars
                .iter()
                .filter_map(|b| b.1)
                .chain(threshold)
                .fold(0.0, f64::max);
            let high = if high > 0.0 { high * 1.3 } else { 1.0 };
            let n = targets.len() as i32;
            let mut chart = ChartBuilder::on(area)
                .caption(label, font(17))
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(72)
                .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..high)?;
            let names: Vec<&str> = targets
                .iter()
                .map(|&i| match self.names[i].as_str() {
                    BINDFS_MT => "bindfs-mt",
                    name => name,
                })
                .collect();
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(targets.len())
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(k) => names.get(*k as usize).unwrap_or(&"").to_string(),
                    _ => String::new(),
                })
                .y_desc(unit)
                .y_label_formatter(&|v| num(*v))
                .max_light_lines(1)
                .label_style(font(14))
                .axis_desc_style(font(15))
                .draw()?;
            let right = |k: i32| {
                if k + 1 < n {
                    SegmentValue::Exact(k + 1)
                } else {
                    SegmentValue::Last
                }
            };
            for (k, &(i, v)) in bars.iter().enumerate() {
                let k = k as i32;
                let above = font(14)
                    .into_text_style(area)
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                let Some(v) = v else {
                    chart.draw_series(std::iter::once(Text::new(
                        "n/a",
                        (SegmentValue::CenterOf(k), 0.0),
                        above,
                    )))?;
                    continue;
                };
                let mut bar = Rectangle::new(
                    [(SegmentValue::Exact(k), 0.0), (right(k), v)],
                    color(&self.names[i]).filled(),
                );
                bar.set_margin(0, 0, 10, 10);
                chart.draw_series(std::iter::once(bar))?;
                let text = match self.mark(row, i).filter(|_| self.is_ours(i)) {
                    Some(true) => format!("{} pass", num(v)),
                    Some(false) => format!("{} MISS", num(v)),
                    None => num(v),
                };
                chart.draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(k), v),
                    above,
                )))?;
            }
            let mut notes = Vec::new();
            if let Some(th) = threshold {
                chart.draw_series(std::iter::once(DashedPathElement::new(
                    vec![(SegmentValue::Exact(0), th), (SegmentValue::Last, th)],
                    8,
                    5,
                    RED.stroke_width(2),
                )))?;
                notes.push(format!("goal {} (dashed)", row.goal.describe()));
            } else if let Goal::AtMostTrips(trips, _) = row.goal {
                let counted: Vec<String> = self
                    .ours()
                    .into_iter()
                    .filter_map(|i| Some(format!("{} {:.2}", self.names[i], self.value(i, trips)?)))
                    .collect();
                notes.push(format!(
                    "goal {}: waited {}",
                    row.goal.describe(),
                    counted.join(", ")
                ));
            }
            if bars.iter().all(|b| b.1.is_none()) {
                notes.push("not measured in this run".into());
            }
            let parity = self.parity_text(row);
            if !parity.is_empty() {
                notes.push(format!("fuse3/fuser {parity}"));
            }
            for (line, note) in notes.iter().enumerate() {
                let style = font(14)
                    .into_text_style(area)
                    .pos(Pos::new(HPos::Left, VPos::Top))
                    .color(&RGBColor(170, 20, 20));
                let (x, y) = chart.backend_coord(&(SegmentValue::Exact(0), high));
                root.draw(&Text::new(
                    note.clone(),
                    (x + 6, y + 4 + 18 * line as i32),
                    style,
                ))?;
            }
        }

        let mut lines = vec![format!(
            "FUSE requests the caller waits for per operation (all but {}), counted by each server over {} operations:",
            UNWAITED.join(", "),
            num(self.trip_ops as f64)
        )];
        for (op, what) in TRIP_OPS {
            let counted: Vec<String> = (0..self.names.len())
                .filter_map(|i| {
                    Some(format!(
                        "{} {:.2}",
                        self.names[i],
                        self.value(i, &format!("rt:{op}:waited"))?
                    ))
                })
                .collect();
            if !counted.is_empty() {
                lines.push(format!("    {what}: {}", counted.join(", ")));
            }
        }
        for (n, line) in lines.iter().enumerate() {
            foot.draw(&Text::new(line.clone(), (24, 8 + 24 * n as i32), font(16)))?;
        }
        root.present()?;
        Ok(())
    }
}

/// Fonts tried for the chart's text, after `LIGHTHOUSE_BENCH_FONT`.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Load a TrueType font for the chart at run time (never built in: the machines that
/// build the benchmark need not have one); why not, when none is found.
fn load_font() -> std::result::Result<(), String> {
    let candidates: Vec<PathBuf> = std::env::var_os("LIGHTHOUSE_BENCH_FONT")
        .map(PathBuf::from)
        .into_iter()
        .chain(FONTS.iter().map(PathBuf::from))
        .collect();
    for path in &candidates {
        let Ok(bytes) = fs::read(path) else { continue };
        // plotters keeps its fonts for the life of the process: one file, leaked once.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
            .is_ok()
        {
            return Ok(());
        }
        eprintln!("{}: not a font plotters can read", path.display());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "no TrueType font found (tried {}; set LIGHTHOUSE_BENCH_FONT to a .ttf, or on Debian apt-get install fonts-dejavu-core)",
        tried.join(", ")
    ))
}

fn json_obj<K: AsRef<str>>(fields: impl IntoIterator<Item = (K, String)>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}: {v}", json_str(k.as_ref())))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The tmpfs directory, or a fresh store on the scratch tmpfs mounted by `name`'s server
/// (bindfs serves the store directory as it is).
fn target(name: &str, scratch: &Scratch, ctx: &Ctx) -> Result<Target> {
    if name == "tmpfs" {
        let root = scratch.on_tmpfs("tmpfs-dir");
        fs::create_dir_all(&root)?;
        return Ok(Target {
            name: name.into(),
            root,
            server: None,
        });
    }
    if name == BINDFS || name == BINDFS_MT {
        if let Some(why) = &ctx.bindfs_missing {
            bail!("{why}");
        }
    }
    let log = target_dir().join(format!("bench-mount-{name}.log"));
    let _ = fs::write(&log, "");
    let mnt = scratch.mount_point(&format!("mnt-{name}"));
    let server = Server::mount(
        name,
        mnt.clone(),
        scratch.on_tmpfs(&format!("store-{name}")),
        log,
    )?;
    Ok(Target {
        name: name.into(),
        root: Target::tree_root(&server),
        server: Some(server),
    })
}

fn main() -> Result<()> {
    // cargo passes `--bench`; there are no arguments to read.
    let sizes = Sizes::from_env();
    let backends = backends_from_env()?;
    let peers = peers_from_env()?;
    let scratch = Scratch::new()?;
    if drop_caches().is_err() {
        eprintln!("note: cannot write /proc/sys/vm/drop_caches; cold relies on remounting alone");
    }
    // The C peers run in the same run: the goals are judged against bindfs measured here
    // and now. Without bindfs they are skipped, with the reason in the table.
    let bindfs_missing = if peers.is_empty() {
        None
    } else {
        bindfs_missing()
    };
    if let Some(why) = &bindfs_missing {
        eprintln!("bindfs peers skipped: {why}");
    }
    let tree_src = scratch.on_tmpfs("tree-src");
    eprintln!(
        "generating a {}-file tree for the memory figure",
        sizes.tree_files
    );
    generate_tree(&tree_src, sizes.tree_files)?;
    let ctx = Ctx {
        sizes,
        tree_src,
        bindfs_missing,
    };

    let mut table = Table {
        names: vec![],
        outcomes: vec![],
        labels: ROWS.iter().map(|row| label(row, &ctx.sizes)).collect(),
        trip_ops: ctx.sizes.trip_ops,
    };
    // Each backend again as each variant (--metrics and a scraper; a policy; no
    // passthrough): its overhead.
    let variants =
        std::env::var("LIGHTHOUSE_BENCH_VARIANTS").unwrap_or_else(|_| "metrics,policy".into());
    let mut with_variants: Vec<String> = Vec::new();
    for variant in variants.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        ensure!(
            matches!(variant, "metrics" | "policy" | "nopassthrough"),
            "LIGHTHOUSE_BENCH_VARIANTS: unknown variant {variant:?} (metrics, policy, nopassthrough)"
        );
        with_variants.extend(backends.iter().map(|b| format!("{b}+{variant}")));
    }
    let names: Vec<&str> = std::iter::once("tmpfs")
        .chain(peers)
        .chain(backends.iter().map(String::as_str))
        .chain(with_variants.iter().map(String::as_str))
        .collect();
    // Several rounds, each over every target in turn, so that a slow spell of a shared
    // machine falls on all of them alike; each figure is the median of its rounds.
    let rounds = rounds_from_env()?;
    let mut runs: Vec<Vec<Outcome>> = names.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (name, runs) in names.iter().zip(&mut runs) {
            eprintln!("running on {name} (round {round} of {rounds})");
            runs.push(match target(name, &scratch, &ctx) {
                Ok(mut target) => run(&mut target, &ctx),
                Err(e) => {
                    eprintln!("{name}: skipped: {e:#}");
                    Outcome {
                        errors: vec![format!("skipped: {e:#}")],
                        ..Outcome::default()
                    }
                }
            });
            // A fresh store and mountpoint for the next round.
            let _ = fs::remove_dir_all(scratch.on_tmpfs(&format!("store-{name}")));
            let _ = fs::remove_dir_all(scratch.on_tmpfs(&format!("store-{name}.views")));
            let _ = fs::remove_file(scratch.on_tmpfs(&format!("store-{name}.policy.toml")));
            let _ = fs::remove_dir_all(scratch.on_tmpfs(&format!("tree-store-{name}")));
            let _ = fs::remove_dir_all(scratch.on_tmpfs("tmpfs-dir"));
        }
    }
    for (name, runs) in names.iter().zip(runs) {
        table.names.push(name.to_string());
        table.outcomes.push(Outcome::median(runs));
    }

    let sizes_note = if ctx.sizes.quick { ", QUICK sizes" } else { "" };
    let rounds_note = if rounds > 1 {
        format!(", median of {rounds} rounds")
    } else {
        String::new()
    };
    println!(
        "\nlighthouse-fs mounted benchmark{sizes_note}{rounds_note} (cold = remount + drop_caches; stores on tmpfs)\n"
    );
    println!("The issue's table (issue 17), ratios to tmpfs and to bindfs --multithreaded:\n");
    table.print_summary();
    println!(
        "\nRound trips: FUSE requests per operation by kind, counted by each server in debug/performance.json over {} operations:\n",
        num(ctx.sizes.trip_ops as f64)
    );
    table.print_round_trips();
    println!("Every figure:\n");
    table.print();

    let png = target_dir().join("bench-mount.png");
    // A chart of an earlier run must not pass for this one's.
    let _ = fs::remove_file(&png);
    let chart = match load_font() {
        Ok(()) => {
            let title = format!(
                "lighthouse-fs mounted benchmark{sizes_note}{rounds_note}: the issue's table (goals: issue 17)"
            );
            match table.chart(&png, &title) {
                Ok(()) => Some(png.as_path()),
                Err(e) => {
                    println!("\nno chart: drawing {} failed: {e:#}", png.display());
                    None
                }
            }
        }
        Err(why) => {
            println!("\nno chart: {why}");
            None
        }
    };
    let json_path = target_dir().join("bench-mount.json");
    fs::write(&json_path, table.json(&ctx.sizes, chart))
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("\nwritten to {}", json_path.display());
    if let Some(png) = chart {
        println!("chart: {}", png.display());
    }
    Ok(())
}
