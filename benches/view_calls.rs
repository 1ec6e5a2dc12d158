//! In-process cost of a call into a WebAssembly view, without FUSE: what the host adds to
//! a request that reaches a view. Compare with the mounted benchmark's
//! `stat history/-0s` row (one FUSE round trip that reaches the view every time).
//!
//! Run: `cargo bench --bench view_calls`. `LIGHTHOUSE_BENCH_QUICK=1` shrinks the counts.
//! Each figure is the p50/p99 of single calls on one thread, after a warm-up, with the
//! host's cache of immutable answers off ("wasm") and on ("cached").

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use lighthouse_fs::core::Caller;
use lighthouse_fs::views::{builtin, MemoryStore, ViewHost, ViewLimits};

const S: i64 = 1_000_000_000;

fn host(cache_bytes: u64) -> Result<ViewHost> {
    let store = Arc::new(MemoryStore::new(1_795_470_000 * S));
    store.push(1_795_470_000 * S, "mkdir", "/docs", None, None);
    let page: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    store.push(1_795_470_001 * S, "write", "/docs/page", None, Some(&page));
    store.push(1_795_470_002 * S, "write", "/docs/other", None, Some(b"x"));
    let limits = ViewLimits {
        answer_cache_bytes: cache_bytes,
        ..ViewLimits::default()
    };
    let host = ViewHost::new(limits, store)?;
    let bytes = builtin::component("history").context("no built-in history component")?;
    host.load(bytes, "builtin:history")?;
    Ok(host)
}

/// One call being measured (returns something so it is not optimised away).
type Call<'a> = Box<dyn FnMut() -> u64 + 'a>;

fn measure(calls: usize, mut call: impl FnMut() -> u64) -> (f64, f64) {
    for _ in 0..calls / 10 {
        call();
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("bounds");
    for _ in 0..calls {
        let start = Instant::now();
        call();
        h.saturating_record(start.elapsed().as_nanos().max(1) as u64);
    }
    let us = |q| h.value_at_quantile(q) as f64 / 1e3;
    (us(0.5), us(0.99))
}

fn main() -> Result<()> {
    let quick = std::env::var_os("LIGHTHOUSE_BENCH_QUICK").is_some_and(|v| v != "0");
    let calls = if quick { 2_000 } else { 20_000 };
    let c = Caller {
        pid: 1,
        ..Caller::HOST
    };
    println!("\nview calls in process, history view over an in-memory store, {calls} calls each\n");
    println!("{:<46} {:>10} {:>10}", "call", "p50 µs", "p99 µs");
    for (mode, cache) in [("wasm", 0), ("cached", 64 << 20)] {
        let host = host(cache)?;
        let rows: [(&str, Call); 4] = [
            (
                "getattr /-0s (point, volatile)",
                Box::new(|| {
                    std::hint::black_box(host.getattr("history", &c, "/-0s").unwrap()).size
                }),
            ),
            (
                "getattr /@2/docs/page (immutable)",
                Box::new(|| {
                    std::hint::black_box(host.getattr("history", &c, "/@2/docs/page").unwrap()).size
                }),
            ),
            (
                "read 4 KiB /@2/docs/page (immutable)",
                Box::new(|| {
                    std::hint::black_box(
                        host.read("history", &c, "/@2/docs/page", 0, 4096).unwrap(),
                    )
                    .len() as u64
                }),
            ),
            (
                "readdir /@3/docs (immutable)",
                Box::new(|| {
                    std::hint::black_box(host.readdir("history", &c, "/@3/docs").unwrap()).len()
                        as u64
                }),
            ),
        ];
        // The cache keeps a listing or read once the path's getattr said immutable.
        host.getattr("history", &c, "/@3/docs")?;
        host.getattr("history", &c, "/@2/docs/page")?;
        for (name, mut call) in rows {
            let (p50, p99) = measure(calls, &mut call);
            println!("{:<46} {p50:>10.2} {p99:>10.2}", format!("{mode}: {name}"));
        }
    }
    Ok(())
}
