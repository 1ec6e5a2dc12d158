//! In-process cost of `--policy` on the core's request path, without FUSE: the same
//! requests on a filesystem without a policy, with one (root matched by uid, checked
//! against its permissions, charged to an overall rate limit), and with the caller's
//! session bound to an agent by token (its session looked up in the pid cache). The
//! mounted benchmark's `X+policy/X` columns are the same comparison through FUSE, where a
//! round trip (tens of µs) hides these nanoseconds in the noise.
//!
//! Run: `cargo bench --bench policy_check`. `LIGHTHOUSE_BENCH_QUICK=1` shrinks the counts.

use std::ffi::OsStr;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use hdrhistogram::Histogram;
use lighthouse_fs::core::{Fs, FsConfig, Gate, AUTH_INO, CURRENT_INO, ROOT_INO};
use lighthouse_fs::policy::{response_mac, Policy};
use lighthouse_fs::store::EmbeddedStore;

const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn policy() -> Result<Policy> {
    Policy::parse(
        &format!(
            r#"
[[agents]]
name = "bench"
uids = [0]
permissions = ["*:write"]

[[agents]]
name = "bound"
secret = "{SECRET}"
permissions = ["*:write"]

[limits]
ops_per_sec = 1000000000
bytes_per_sec = 10000000000
"#
        ),
        "bench-policy.toml",
    )
}

/// A filesystem over a fresh store with one 4 KiB file `f`, under `gate` if given.
fn fs_with(dir: &std::path::Path, gate: Option<Gate>) -> Result<(Fs, u64)> {
    let fs = Fs::new(EmbeddedStore::open(dir)?, FsConfig::default());
    if let Some(gate) = gate {
        fs.set_gate(std::sync::Arc::new(gate));
    }
    let c = fs.caller(0, 0, std::process::id(), 1);
    let (e, o) = fs
        .create(&c, CURRENT_INO, OsStr::new("f"), 0o644, 0, libc::O_WRONLY)
        .map_err(|e| anyhow::anyhow!("create: {e:?}"))?;
    fs.write(&c, e.attr.ino, o.fh, 0, &[7u8; 4096])
        .map_err(|e| anyhow::anyhow!("write: {e:?}"))?;
    fs.release(&c, e.attr.ino, o.fh)
        .map_err(|e| anyhow::anyhow!("release: {e:?}"))?;
    Ok((fs, e.attr.ino))
}

/// Bind this process's session to the agent `bound` through `.auth`, as a client would.
fn bind(fs: &Fs) -> Result<()> {
    let c = fs.caller(0, 0, std::process::id(), 1);
    let o = fs
        .open(&c, AUTH_INO, libc::O_RDWR)
        .map_err(|e| anyhow::anyhow!("open .auth: {e:?}"))?;
    let challenge = fs
        .read(&c, AUTH_INO, o.fh, 0, 4096)
        .map_err(|e| anyhow::anyhow!("read .auth: {e:?}"))?;
    let challenge = String::from_utf8(challenge)?;
    let nonce = challenge.split_whitespace().nth(2).context("no nonce")?;
    let line = format!("bound {}\n", response_mac(&hex(SECRET), nonce, "bound"));
    fs.write(&c, AUTH_INO, o.fh, 0, line.as_bytes())
        .map_err(|e| anyhow::anyhow!("write .auth: {e:?}"))?;
    fs.release(&c, AUTH_INO, o.fh)
        .map_err(|e| anyhow::anyhow!("release .auth: {e:?}"))?;
    ensure!(
        fs.caller(0, 0, std::process::id(), 1).agent_name == Some("bound"),
        "the session was not bound"
    );
    Ok(())
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

/// p50 and p99 in ns of `call`, after a warm-up.
fn measure(calls: usize, mut call: impl FnMut() -> u64) -> (f64, f64) {
    for _ in 0..calls / 10 {
        std::hint::black_box(call());
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("bounds");
    for _ in 0..calls {
        let start = Instant::now();
        std::hint::black_box(call());
        h.saturating_record(start.elapsed().as_nanos().max(1) as u64);
    }
    (
        h.value_at_quantile(0.5) as f64,
        h.value_at_quantile(0.99) as f64,
    )
}

/// The requests measured, each as an adapter makes it: name the caller, then call.
fn requests(fs: &Fs, ino: u64, calls: usize) -> Vec<(&'static str, (f64, f64))> {
    let pid = std::process::id();
    let mut out = Vec::new();
    out.push((
        "lookup current/f",
        measure(calls, || {
            let c = fs.caller(0, 0, pid, 1);
            fs.lookup(&c, CURRENT_INO, OsStr::new("f"))
                .map(|e| e.attr.ino)
                .unwrap_or(0)
        }),
    ));
    out.push((
        "getattr current/f",
        measure(calls, || {
            let c = fs.caller(0, 0, pid, 1);
            fs.getattr(&c, ino, None).map(|a| a.0.size).unwrap_or(0)
        }),
    ));
    out.push((
        "open + read 4 KiB + release",
        measure(calls, || {
            let c = fs.caller(0, 0, pid, 1);
            let Ok(o) = fs.open(&c, ino, libc::O_RDONLY) else {
                return 0;
            };
            let n = fs
                .read(&c, ino, o.fh, 0, 4096)
                .map(|d| d.len())
                .unwrap_or(0);
            let _ = fs.release(&c, ino, o.fh);
            n as u64
        }),
    ));
    out.push((
        "getattr of the root",
        measure(calls, || {
            let c = fs.caller(0, 0, pid, 1);
            fs.getattr(&c, ROOT_INO, None).map(|a| a.0.ino).unwrap_or(0)
        }),
    ));
    out
}

fn main() -> Result<()> {
    let quick = std::env::var_os("LIGHTHOUSE_BENCH_QUICK").is_some_and(|v| v != "0");
    let calls = if quick { 20_000 } else { 200_000 };
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let (plain, plain_ino) = fs_with(dirs[0].path(), None)?;
    let (checked, checked_ino) = fs_with(dirs[1].path(), Some(Gate::new(policy()?)))?;
    let (bound, bound_ino) = fs_with(dirs[2].path(), Some(Gate::new(policy()?)))?;
    bind(&bound)?;

    let runs = [
        ("no policy", requests(&plain, plain_ino, calls)),
        ("policy, by uid", requests(&checked, checked_ino, calls)),
        ("policy, token-bound", requests(&bound, bound_ino, calls)),
    ];
    println!("\ncore requests in process (no FUSE), {calls} each: p50 / p99 ns, and p50 over no policy\n");
    println!(
        "{:<30} {:>22} {:>30} {:>30}",
        "request", runs[0].0, runs[1].0, runs[2].0
    );
    for (i, (name, (p50, p99))) in runs[0].1.iter().enumerate() {
        let cell = |run: usize| {
            let (q50, q99) = runs[run].1[i].1;
            format!("{q50:.0} / {q99:.0} ({:.2}×)", q50 / p50)
        };
        println!(
            "{name:<30} {:>22} {:>30} {:>30}",
            format!("{p50:.0} / {p99:.0}"),
            cell(1),
            cell(2)
        );
    }
    println!("\nA FUSE round trip costs tens of µs (the mounted benchmark): the difference above is its share.");
    Ok(())
}
