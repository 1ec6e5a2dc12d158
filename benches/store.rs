//! The embedded store against the PostgreSQL store, through real mounts on both
//! backends (one host): small files created, metadata operations, and a large file read
//! cold (from the store: the database, or the store's disk) and warm (from the host's
//! local copy, the kernel's page cache dropped). Ratios are PostgreSQL / embedded.
//!
//! What bounds each figure: a change on PostgreSQL is three round trips (the write turn
//! with the others' new events, the append as one committed statement with its WAL
//! flush, the unlock) before it returns; on the embedded store it is a queue push,
//! committed in 5 ms batches. A cold read on PostgreSQL fetches 1 MiB chunks over
//! the connection into the local cache first; a warm one reads the local copy like the
//! embedded store does.
//!
//! Run (as root): `cargo bench --bench store`. `LIGHTHOUSE_BENCH_QUICK=1` shrinks the
//! counts; the database is `$LIGHTHOUSE_TEST_POSTGRES`'s server, or a throwaway one.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lighthouse_fs_support::postgres::test_server;
use lighthouse_fs_support::{detach_all, stat_dev, terminate, wait_live};

const BIN: &str = env!("CARGO_BIN_EXE_lighthouse-fs");

struct Sizes {
    files: usize,
    cycles: usize,
    big_mib: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("LIGHTHOUSE_BENCH_QUICK").is_some() {
        Sizes {
            files: 100,
            cycles: 50,
            big_mib: 16,
        }
    } else {
        Sizes {
            files: 1000,
            cycles: 300,
            big_mib: 128,
        }
    }
}

/// A mounted server; unmounted on drop.
struct Mounted {
    child: Option<Child>,
    mnt: PathBuf,
}

impl Mounted {
    fn start(backend: &str, store: &str, cache: &Path, mnt: &Path) -> Result<Mounted> {
        fs::create_dir_all(mnt)?;
        let parent_dev = stat_dev(mnt.parent().context("a mount point has a parent")?)?;
        let mut child = Command::new(BIN)
            .arg("mount")
            .arg(mnt)
            .args(["--store", store, "--backend", backend, "--cache"])
            .arg(cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {BIN}"))?;
        if let Err(why) = wait_live(&mut child, mnt, parent_dev, Duration::from_secs(60)) {
            let _ = child.kill();
            let _ = child.wait();
            detach_all(mnt);
            bail!("{backend} on {store}: did not mount: {why}");
        }
        Ok(Mounted {
            child: Some(child),
            mnt: mnt.to_path_buf(),
        })
    }

    fn current(&self) -> PathBuf {
        self.mnt.join("current")
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if terminate(&mut child, Duration::from_secs(30)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        detach_all(&self.mnt);
    }
}

fn drop_caches() {
    let _ = fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Files of 4 KiB created per second.
fn small_files(root: &Path, n: usize) -> Result<f64> {
    let dir = root.join("small");
    fs::create_dir(&dir)?;
    let data = vec![b'x'; 4096];
    let t = Instant::now();
    for i in 0..n {
        fs::write(dir.join(format!("f{i}")), &data)?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Metadata operations (mkdir, rename, rmdir) per second from `writers` threads.
fn metadata(root: &Path, host: &str, cycles: usize, writers: usize) -> Result<f64> {
    let t = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                s.spawn(move || -> Result<()> {
                    let base = root.join(format!("meta-{host}-{writers}-{w}"));
                    fs::create_dir(&base)?;
                    for _ in 0..cycles / writers {
                        fs::create_dir(base.join("a"))?;
                        fs::rename(base.join("a"), base.join("b"))?;
                        fs::remove_dir(base.join("b"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("writer thread")?;
        }
        Ok(())
    })?;
    Ok((cycles / writers * writers * 3) as f64 / t.elapsed().as_secs_f64())
}

/// MB/s of reading `path` whole.
fn read_rate(path: &Path) -> Result<f64> {
    let t = Instant::now();
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0usize;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total as f64 / 1e6 / t.elapsed().as_secs_f64())
}

struct Row {
    store: &'static str,
    backend: &'static str,
    figures: Vec<f64>,
}

const COLUMNS: [&str; 6] = [
    "create+4KiB/s",
    "meta ops/s x1",
    "meta ops/s x2",
    "meta ops/s x4",
    "read cold MB/s",
    "read warm MB/s",
];

fn run(store_kind: &'static str, backend: &'static str, store: &str, work: &Path) -> Result<Row> {
    let s = sizes();
    let mnt = work.join(format!("mnt-{store_kind}-{backend}"));
    let cache = work.join(format!("cache-{store_kind}-{backend}"));
    let mut figures = Vec::new();
    {
        let m = Mounted::start(backend, store, &cache, &mnt)?;
        let c = m.current();
        figures.push(small_files(&c, s.files)?);
        for writers in [1, 2, 4] {
            figures.push(metadata(&c, "a", s.cycles, writers)?);
        }
        let big: Vec<u8> = (0..s.big_mib << 20).map(|i| (i % 253) as u8).collect();
        let f = fs::File::create(c.join("big"))?;
        std::io::Write::write_all(&mut &f, &big)?;
        f.sync_all()?;
    }
    // Cold: the host's copy gone (PostgreSQL: an empty cache; embedded: the store's
    // own objects, page cache dropped).
    if store_kind == "postgres" {
        fs::remove_dir_all(&cache)?;
    }
    let m = Mounted::start(backend, store, &cache, &mnt)?;
    drop_caches();
    figures.push(read_rate(&m.current().join("big"))?);
    drop_caches();
    figures.push(read_rate(&m.current().join("big"))?);
    drop(m);
    Ok(Row {
        store: store_kind,
        backend,
        figures,
    })
}

/// Two hosts (two servers) on one database, A on `backends.0` and B on `backends.1`:
/// how long after A's `close()` a new file shows by name on B (B looking every 200 µs;
/// the name comes through B's follower), and metadata operations per second with two
/// writer threads on each host at once.
fn two_hosts(
    url: &str,
    work: &Path,
    backends: (&'static str, &'static str),
) -> Result<(Vec<Duration>, f64)> {
    let s = sizes();
    let tag = format!("{}-{}", backends.0, backends.1);
    let a = Mounted::start(
        backends.0,
        url,
        &work.join(format!("cache-a-{tag}")),
        &work.join(format!("mnt-a-{tag}")),
    )?;
    let b = Mounted::start(
        backends.1,
        url,
        &work.join(format!("cache-b-{tag}")),
        &work.join(format!("mnt-b-{tag}")),
    )?;
    let (ca, cb) = (a.current(), b.current());
    fs::create_dir(ca.join("vis"))?;
    let deadline = Duration::from_secs(10);
    let mut delays = Vec::new();
    for i in 0..s.cycles {
        fs::write(ca.join(format!("vis/f{i}")), b"x")?;
        let t = Instant::now();
        while !cb.join(format!("vis/f{i}")).exists() {
            if t.elapsed() > deadline {
                bail!("f{i} did not show on B within {deadline:?}");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        delays.push(t.elapsed());
    }
    delays.sort();
    let t = Instant::now();
    let ops = std::thread::scope(|scope| -> Result<f64> {
        let on_a = scope.spawn(|| metadata(&ca, "a", s.cycles, 2));
        let on_b = scope.spawn(|| metadata(&cb, "b", s.cycles, 2));
        on_a.join().expect("host A")?;
        on_b.join().expect("host B")?;
        Ok((s.cycles / 2 * 2 * 3 * 2) as f64 / t.elapsed().as_secs_f64())
    })?;
    Ok((delays, ops))
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        println!("store: bench");
        return Ok(());
    }
    if !nix_is_root() {
        bail!("the store benchmark mounts: run it as root");
    }
    let server = test_server();
    let work = tempfile::Builder::new()
        .prefix("lhfs-bench-store-")
        .tempdir()?;
    let work = work.path().canonicalize()?;
    let mut rows = Vec::new();
    for backend in ["fuser", "fuse3"] {
        let dir = work.join(format!("store-{backend}"));
        rows.push(run("embedded", backend, dir.to_str().unwrap(), &work)?);
        let url = server.fresh_database();
        rows.push(run("postgres", backend, &url, &work)?);
    }
    println!();
    print!("{:<10} {:<7}", "store", "backend");
    for c in COLUMNS {
        print!(" {c:>15}");
    }
    println!();
    for r in &rows {
        print!("{:<10} {:<7}", r.store, r.backend);
        for f in &r.figures {
            print!(" {f:>15.1}");
        }
        println!();
    }
    for backend in ["fuser", "fuse3"] {
        let of = |kind: &str| {
            rows.iter()
                .find(|r| r.store == kind && r.backend == backend)
        };
        if let (Some(e), Some(p)) = (of("embedded"), of("postgres")) {
            print!("{:<10} {:<7}", "pg/emb", backend);
            for (a, b) in p.figures.iter().zip(&e.figures) {
                print!(" {:>15.2}", a / b);
            }
            println!();
        }
    }
    println!();
    println!(
        "two hosts on one database (A, B)  visible on B p50 / p99        meta ops/s, 2+2 writers"
    );
    for pair in [("fuser", "fuser"), ("fuse3", "fuse3"), ("fuser", "fuse3")] {
        let url = server.fresh_database();
        let (delays, ops) = two_hosts(&url, &work, pair)?;
        let pct = |p: f64| delays[((delays.len() - 1) as f64 * p) as usize];
        println!(
            "{:<6} {:<6}                          {:>8.2?} / {:>8.2?}        {ops:>10.1}",
            pair.0,
            pair.1,
            pct(0.5),
            pct(0.99)
        );
    }
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}
