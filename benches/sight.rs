//! In-process cost of seeing with the caller's eyes (docs/policy.md, section 9): what the
//! views' `store` import pays to check what it gives, without FUSE and without wasm.
//!
//! A store of 10,000 events (5,000 files created and written, half of them in a
//! directory of mode 0700 owned by uid 1000), read three ways: the store unchecked, as
//! root (everything passes, every check still made), and as uid 1001 (the private half
//! is left out). Two figures: the whole log through `events` pages (a stream of 10,000
//! events), and one history read (`stat-at` + `read-at` of a 4 KiB file).
//!
//! Run: `cargo bench --bench sight`. `LIGHTHOUSE_BENCH_QUICK=1` shrinks the counts.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use lighthouse_fs::contract::EventFilter;
use lighthouse_fs::core::{Caller, Fs, FsConfig, Viewer, CURRENT_INO};
use lighthouse_fs::store::{EmbeddedStore, History};
use lighthouse_fs::views::{HistoryAccess, StoreAccess};

const FILES: usize = 5000;
const PAGE: u32 = 4096;

fn err(what: &str) -> impl Fn(lighthouse_fs::core::FsError) -> anyhow::Error + '_ {
    move |e| anyhow!("{what}: {e}")
}

/// A store with `FILES` files of 4 KiB, half in /pub (0755), half in /priv (0700, uid 1000).
fn populate(fs: &Fs) -> Result<()> {
    let root = fs.caller(0, 0, 0, 1);
    let owner = fs.caller(1000, 1000, 0, 1);
    let made = |c: &Caller, parent, name: &str, perm| {
        fs.mkdir(c, parent, OsStr::new(name), perm, 0)
            .map(|e| e.attr.ino)
            .map_err(err("mkdir"))
    };
    let public = made(&root, CURRENT_INO, "pub", 0o755)?;
    let private = made(&root, CURRENT_INO, "priv", 0o777)?;
    let private_mode = lighthouse_fs::core::SetAttr {
        mode: Some(0o700),
        uid: Some(1000),
        gid: Some(1000),
        ..Default::default()
    };
    fs.setattr(&root, private, private_mode)
        .map_err(err("setattr"))?;
    let data = vec![7u8; 4096];
    for i in 0..FILES {
        let (c, dir) = if i % 2 == 0 {
            (&root, public)
        } else {
            (&owner, private)
        };
        let (e, o) = fs
            .create(
                c,
                dir,
                OsStr::new(&format!("f{i}")),
                0o644,
                0,
                libc::O_WRONLY,
            )
            .map_err(err("create"))?;
        fs.write(c, e.attr.ino, o.fh, 0, &data)
            .map_err(err("write"))?;
        fs.release(c, e.attr.ino, o.fh).map_err(err("release"))?;
    }
    Ok(())
}

fn caller(uid: u32) -> Caller {
    Caller {
        uid,
        gid: uid,
        ..Caller::HOST
    }
}

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut() -> Result<usize>) -> Result<(Duration, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut seen = 0;
    for _ in 0..runs {
        let start = Instant::now();
        seen = f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((times[runs / 2], seen))
}

fn main() -> Result<()> {
    let quick = std::env::var_os("LIGHTHOUSE_BENCH_QUICK").is_some();
    let (runs, reads) = if quick { (3, 2_000) } else { (15, 20_000) };
    let dir = tempfile::tempdir()?;
    let fs = Fs::new(EmbeddedStore::open(dir.path())?, FsConfig::default());
    populate(&fs)?;
    let history = History::new(fs.store().clone());
    let head = history.head();
    ensure!(head >= 2 * FILES as u64, "{head} events");
    let access = HistoryAccess::new(History::new(fs.store().clone()), fs.sights().clone());
    let all = EventFilter::default();

    println!(
        "{head} events; {} distinct labels",
        fs.store().labels().distinct()
    );
    println!(
        "{:<34} {:>12} {:>10} {:>10}",
        "", "median", "shown", "ratio"
    );
    let (raw, n) = median(runs, || {
        let (mut after, mut n) = (0, 0);
        loop {
            let batch = history
                .events(after, PAGE, None, &[])
                .map_err(err("events"))?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            // What the import makes of them (strings, hashes in hex), as before the checks.
            n += batch
                .iter()
                .map(as_view_event)
                .filter(|e| !e.0.is_empty())
                .count();
        }
        Ok(n)
    })?;
    println!(
        "{:<34} {:>9.2} ms {:>10} {:>10}",
        "log, unchecked",
        ms(raw),
        n,
        "1.00"
    );
    for (who, uid) in [("log, as root", 0), ("log, as uid 1001", 1001)] {
        let viewer: Viewer = access.viewer(&caller(uid));
        let (t, n) = median(runs, || {
            let (mut after, mut n) = (0, 0);
            loop {
                let page = access.events(&viewer, after, PAGE, &all);
                n += page.events.len();
                if page.through == after {
                    break;
                }
                after = page.through;
            }
            Ok(n)
        })?;
        println!(
            "{who:<34} {:>9.2} ms {n:>10} {:>10.2}",
            ms(t),
            ratio(t, raw)
        );
    }

    let path = "/pub/f0";
    let (raw, _) = median(runs, || {
        for _ in 0..reads {
            history.node_at(path, head).map_err(err("node"))?;
            history.read_at(path, head, 0, 4096).map_err(err("read"))?;
        }
        Ok(reads)
    })?;
    println!(
        "{:<34} {:>9.2} µs {:>10} {:>10}",
        "history read, unchecked",
        us(raw, reads),
        "",
        "1.00"
    );
    for (who, uid) in [
        ("history read, as root", 0),
        ("history read, as uid 1001", 1001),
    ] {
        let viewer = access.viewer(&caller(uid));
        let (t, _) = median(runs, || {
            for _ in 0..reads {
                access
                    .stat_at(&viewer, path, head)
                    .map_err(|e| anyhow!("stat: {e}"))?;
                access
                    .read_at(&viewer, path, head, 0, 4096)
                    .map_err(|e| anyhow!("read: {e}"))?;
            }
            Ok(reads)
        })?;
        println!(
            "{who:<34} {:>9.2} µs {:>10} {:>10.2}",
            us(t, reads),
            "",
            ratio(t, raw)
        );
    }
    Ok(())
}

/// What the import makes of an event (its strings and the hash in hex), for the
/// unchecked figure.
fn as_view_event(
    e: &lighthouse_fs::store::Event,
) -> (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let hash = match &e.change {
        lighthouse_fs::store::Change::Write { hash, .. } => hash.map(|h| h.to_hex()),
        _ => None,
    };
    (
        e.change.op().to_string(),
        e.change.path().to_string(),
        e.change.path2().map(String::from),
        e.agent.as_deref().map(String::from),
        hash,
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn ratio(t: Duration, base: Duration) -> f64 {
    t.as_secs_f64() / base.as_secs_f64()
}
