//! Per-operation request statistics: how many of each FUSE operation the mount served,
//! how many failed (by errno), and how long they took, for `debug/performance.json`.
//!
//! Recorded by the adapters' shared wrapper (`fuse::common::run`) around every request,
//! so both backends measure the same span. This is the hot path: recording takes no lock
//! — a few relaxed atomic adds on the operation's own counters — and a latency goes into
//! a fixed log-scale histogram (8 buckets per power of two, so a reported percentile is
//! within 12.5% of the true value, never below it).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::vocab::errno_name;

/// The operations the adapters serve (one name per kernel request type; `rename` and
/// `rename2` are both `rename`, each inode of a batch forget is one `forget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lookup,
    Forget,
    Getattr,
    Setattr,
    Readlink,
    Mknod,
    Mkdir,
    Unlink,
    Rmdir,
    Symlink,
    Rename,
    Link,
    Open,
    Read,
    Write,
    Flush,
    Release,
    Fsync,
    Opendir,
    Readdir,
    Readdirplus,
    Releasedir,
    Fsyncdir,
    Statfs,
    Access,
    Create,
    Fallocate,
    Setxattr,
    Getxattr,
    Listxattr,
    Removexattr,
}

impl Op {
    pub const ALL: [Op; 31] = [
        Op::Lookup,
        Op::Forget,
        Op::Getattr,
        Op::Setattr,
        Op::Readlink,
        Op::Mknod,
        Op::Mkdir,
        Op::Unlink,
        Op::Rmdir,
        Op::Symlink,
        Op::Rename,
        Op::Link,
        Op::Open,
        Op::Read,
        Op::Write,
        Op::Flush,
        Op::Release,
        Op::Fsync,
        Op::Opendir,
        Op::Readdir,
        Op::Readdirplus,
        Op::Releasedir,
        Op::Fsyncdir,
        Op::Statfs,
        Op::Access,
        Op::Create,
        Op::Fallocate,
        Op::Setxattr,
        Op::Getxattr,
        Op::Listxattr,
        Op::Removexattr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Forget => "forget",
            Op::Getattr => "getattr",
            Op::Setattr => "setattr",
            Op::Readlink => "readlink",
            Op::Mknod => "mknod",
            Op::Mkdir => "mkdir",
            Op::Unlink => "unlink",
            Op::Rmdir => "rmdir",
            Op::Symlink => "symlink",
            Op::Rename => "rename",
            Op::Link => "link",
            Op::Open => "open",
            Op::Read => "read",
            Op::Write => "write",
            Op::Flush => "flush",
            Op::Release => "release",
            Op::Fsync => "fsync",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Readdirplus => "readdirplus",
            Op::Releasedir => "releasedir",
            Op::Fsyncdir => "fsyncdir",
            Op::Statfs => "statfs",
            Op::Access => "access",
            Op::Create => "create",
            Op::Fallocate => "fallocate",
            Op::Setxattr => "setxattr",
            Op::Getxattr => "getxattr",
            Op::Listxattr => "listxattr",
            Op::Removexattr => "removexattr",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sub-buckets per power of two, as bits: 8 per octave.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Latencies are kept in nanoseconds up to 2^40 ns (18 minutes); longer ones land in the
/// last bucket (the maximum is kept exactly all the same).
const TOP_BITS: u32 = 40;
const BUCKETS: usize = (SUB + (TOP_BITS - SUB_BITS) as u64 * SUB) as usize;

/// The bucket of a latency in nanoseconds: exact below 8 ns, then 8 per power of two.
fn bucket_of(ns: u64) -> usize {
    let ns = ns.min((1 << TOP_BITS) - 1);
    if ns < SUB {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // SUB_BITS..TOP_BITS
    let mantissa = (ns >> (exp - SUB_BITS)) - SUB; // 0..SUB
    (SUB + u64::from(exp - SUB_BITS) * SUB + mantissa) as usize
}

/// The largest latency (ns) that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = (i - SUB) / SUB + u64::from(SUB_BITS);
    let mantissa = (i - SUB) % SUB;
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    ((SUB + mantissa) << (exp - u64::from(SUB_BITS))) + width - 1
}

/// The errnos counted one by one (the ones the core returns, and the resource failures
/// logged at warn); any other is "other".
const ERRNOS: [i32; 29] = [
    libc::EPERM,
    libc::ENOENT,
    libc::EIO,
    libc::EBADF,
    libc::EACCES,
    libc::EBUSY,
    libc::EEXIST,
    libc::EXDEV,
    libc::ENOTDIR,
    libc::EISDIR,
    libc::EINVAL,
    libc::EFBIG,
    libc::ENOSPC,
    libc::EROFS,
    libc::EMLINK,
    libc::ENAMETOOLONG,
    libc::ENOSYS,
    libc::ENOTEMPTY,
    libc::ENODATA,
    libc::ENOTSUP,
    libc::EINTR,
    libc::EAGAIN,
    libc::ESTALE,
    libc::EDQUOT,
    libc::ERANGE,
    libc::E2BIG,
    libc::ENOMEM,
    libc::EMFILE,
    libc::ENFILE,
];

fn errno_index(errno: i32) -> usize {
    ERRNOS
        .iter()
        .position(|&e| e == errno)
        .unwrap_or(ERRNOS.len())
}

/// A latency distribution: requests per log-scale bucket, their sum and the maximum.
pub struct Latencies {
    /// Requests per latency bucket; their sum is the request count.
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl Latencies {
    /// One more request that took `elapsed` (relaxed atomic adds only).
    #[inline]
    pub fn record(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
    }

    /// The distribution now.
    pub fn read(&self) -> LatencyCounts {
        LatencyCounts {
            buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            sum_ns: self.sum_ns.load(Relaxed),
            max_ns: self.max_ns.load(Relaxed),
        }
    }
}

/// A [`Latencies`] as read at one moment (several may be added up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyCounts {
    buckets: Vec<u64>,
    pub sum_ns: u64,
    pub max_ns: u64,
}

impl Default for LatencyCounts {
    fn default() -> Self {
        LatencyCounts {
            buckets: vec![0; BUCKETS],
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl LatencyCounts {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    pub fn add(&mut self, other: &LatencyCounts) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The smallest latency at or above which lie at most (1-p) of the requests (within
    /// 12.5% above the true value); `None` while nothing was recorded.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((p * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_nanos(bucket_high(i).min(self.max_ns)));
            }
        }
        Some(Duration::from_nanos(self.max_ns))
    }

    /// The counts per bucket of `bounds` (ascending upper bounds in seconds; a last bucket
    /// for what lies above them all): for Prometheus histograms. A fine bucket goes to the
    /// first bound at or above its top, so a count may sit one bound high (by at most
    /// 12.5% of the latency), never low.
    pub fn coarse(&self, bounds: &[f64]) -> Vec<u64> {
        let mut out = vec![0; bounds.len() + 1];
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let top = bucket_high(i) as f64 / 1e9;
            let slot = bounds
                .iter()
                .position(|&b| top <= b)
                .unwrap_or(bounds.len());
            out[slot] += n;
        }
        out
    }
}

/// One operation's counters.
#[derive(Default)]
struct OpCounters {
    latencies: Latencies,
    /// Failed requests by errno (index in `ERRNOS`, the last slot for any other).
    errnos: [AtomicU64; ERRNOS.len() + 1],
}

/// Most sections a mount counts apart (the native ones and the views); requests in
/// further views are counted with the last.
const MAX_SECTIONS: usize = 32;

/// Where a request was served: the mount root, `current/`, `debug/`, or a view, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionId(usize);

impl SectionId {
    pub const ROOT: SectionId = SectionId(0);
    pub const CURRENT: SectionId = SectionId(1);
    pub const DEBUG: SectionId = SectionId(2);
}

/// One section's counters: its name and every operation's.
struct SectionCounters {
    name: Arc<str>,
    ops: Box<[OpCounters]>,
}

/// Counters of every operation since the mount started, per section.
pub struct OpStats {
    /// Allocated on first use; read without a lock on every request.
    sections: Box<[OnceLock<SectionCounters>]>,
    /// View names to their slots.
    names: RwLock<FxHashMap<Arc<str>, SectionId>>,
}

impl Default for OpStats {
    fn default() -> Self {
        let stats = OpStats {
            sections: (0..MAX_SECTIONS).map(|_| OnceLock::new()).collect(),
            names: RwLock::new(FxHashMap::default()),
        };
        for name in ["root", "current", "debug"] {
            stats.section(name);
        }
        stats
    }
}

/// One operation's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OpSnapshot {
    pub op: Op,
    pub count: u64,
    pub errors: u64,
    /// Failed requests by errno name (only the errnos seen).
    pub errnos: Vec<(&'static str, u64)>,
    pub sum: Duration,
    pub max: Duration,
    /// `None` while nothing was recorded.
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    pub p99: Option<Duration>,
    /// The distribution the figures come from.
    pub latencies: LatencyCounts,
}

impl OpSnapshot {
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0)
            .then(|| Duration::from_nanos((self.sum.as_nanos() / u128::from(self.count)) as u64))
    }

    fn of(op: Op, latencies: LatencyCounts, errnos: Vec<(&'static str, u64)>) -> OpSnapshot {
        OpSnapshot {
            op,
            count: latencies.count(),
            errors: errnos.iter().map(|(_, n)| n).sum(),
            errnos,
            sum: Duration::from_nanos(latencies.sum_ns),
            max: Duration::from_nanos(latencies.max_ns),
            p50: latencies.percentile(0.50),
            p90: latencies.percentile(0.90),
            p99: latencies.percentile(0.99),
            latencies,
        }
    }
}

impl OpStats {
    /// The section named `name` (a view's name, or `root`, `current`, `debug`), counted
    /// apart from the others up to [`MAX_SECTIONS`].
    pub fn section(&self, name: &str) -> SectionId {
        if let Some(&id) = self.names.read().get(name) {
            return id;
        }
        let mut names = self.names.write();
        if let Some(&id) = names.get(name) {
            return id;
        }
        let id = SectionId(names.len().min(MAX_SECTIONS - 1));
        let name: Arc<str> = if names.len() >= MAX_SECTIONS - 1 {
            "other".into()
        } else {
            name.into()
        };
        self.sections[id.0].get_or_init(|| SectionCounters {
            name: name.clone(),
            ops: Op::ALL.iter().map(|_| OpCounters::default()).collect(),
        });
        names.insert(name, id);
        id
    }

    /// One request of `op` in `section` took `elapsed`; `errno` when it failed.
    /// Lock-free: relaxed atomic adds on the operation's own counters only.
    #[inline]
    pub fn record(&self, section: SectionId, op: Op, elapsed: Duration, errno: Option<i32>) {
        let Some(s) = self.sections[section.0].get() else {
            return;
        };
        let c = &s.ops[op as usize];
        c.latencies.record(elapsed);
        if let Some(e) = errno {
            c.errnos[errno_index(e)].fetch_add(1, Relaxed);
        }
    }

    /// The sections counted so far, in the order they were first seen.
    pub fn sections(&self) -> Vec<(SectionId, Arc<str>)> {
        self.sections
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.get().map(|s| (SectionId(i), s.name.clone())))
            .collect()
    }

    /// The figures of `op` in `section` now (`None`: all sections). Counters are read one
    /// by one while requests go on, so the error count may be a request ahead of `count`.
    pub fn snapshot_in(&self, section: Option<SectionId>, op: Op) -> OpSnapshot {
        let mut latencies = LatencyCounts::default();
        let mut errnos = vec![0u64; ERRNOS.len() + 1];
        for (i, s) in self.sections.iter().enumerate() {
            let Some(s) = s.get() else { continue };
            if section.is_some_and(|want| want.0 != i) {
                continue;
            }
            let c = &s.ops[op as usize];
            latencies.add(&c.latencies.read());
            for (sum, n) in errnos.iter_mut().zip(&c.errnos) {
                *sum += n.load(Relaxed);
            }
        }
        let errnos = errnos
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .map(|(i, n)| (ERRNOS.get(i).map_or("other", |&e| errno_name(e)), n))
            .collect();
        OpSnapshot::of(op, latencies, errnos)
    }

    /// The figures of `op` over every section.
    pub fn snapshot(&self, op: Op) -> OpSnapshot {
        self.snapshot_in(None, op)
    }

    /// Every operation's figures over every section, in [`Op::ALL`] order.
    pub fn snapshot_all(&self) -> Vec<OpSnapshot> {
        Op::ALL.iter().map(|&op| self.snapshot(op)).collect()
    }
}

/// How the kernel's caches are used, as far as the core can see it: the requests that
/// reach it are the kernel's misses, and what it answers decides what the kernel keeps.
#[derive(Default)]
pub struct CacheCounters {
    /// Lookups answered with an inode, and with a negative entry (which the kernel keeps
    /// for the negative TTL).
    pub lookups_positive: AtomicU64,
    pub lookups_negative: AtomicU64,
    /// Opens of files that keep the kernel's page cache, that bypass it (direct I/O), and
    /// that drop it (neither).
    pub opens_keep_cache: AtomicU64,
    pub opens_direct_io: AtomicU64,
    pub opens_uncached: AtomicU64,
    /// Opens served by FUSE passthrough.
    pub opens_passthrough: AtomicU64,
    /// Directory opens whose listing the kernel may keep, and the others.
    pub opendirs_cached: AtomicU64,
    pub opendirs_uncached: AtomicU64,
}

impl CacheCounters {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        assert_eq!(BUCKETS, 304);
        let mut prev_high = None;
        for i in 0..BUCKETS {
            let high = bucket_high(i);
            if let Some(p) = prev_high {
                assert_eq!(bucket_of(p + 1), i, "bucket {i} starts after {p}");
            }
            assert_eq!(bucket_of(high), i, "the top of bucket {i} is in it");
            prev_high = Some(high);
        }
        for ns in [0, 1, 7, 8, 9, 15, 16, 1000, 1023, 1024, 123_456_789] {
            let i = bucket_of(ns);
            let high = bucket_high(i);
            assert!(high >= ns, "{ns} <= {high}");
            assert!(
                (high - ns) as f64 <= ns as f64 / 8.0 + 1.0,
                "{ns} within 12.5%: {high}"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_counts_and_errors() {
        let s = OpStats::default();
        let current = SectionId::CURRENT;
        assert_eq!(s.snapshot(Op::Read).count, 0);
        assert_eq!(s.snapshot(Op::Read).p50, None);
        for us in 1..=100u64 {
            s.record(current, Op::Read, Duration::from_micros(us), None);
        }
        s.record(current, Op::Read, Duration::from_micros(7), Some(libc::EIO));
        s.record(current, Op::Read, Duration::from_micros(7), Some(libc::EIO));
        s.record(current, Op::Read, Duration::from_micros(7), Some(12345));
        let r = s.snapshot(Op::Read);
        assert_eq!((r.count, r.errors), (103, 3));
        assert_eq!(r.errnos, vec![("EIO", 2), ("other", 1)]);
        assert_eq!(r.max, Duration::from_micros(100));
        // The 52nd of 103: 1..=6, four 7s, then 8..; that is 49 µs.
        let p50 = r.p50.unwrap().as_nanos() as f64;
        assert!((49_000.0..=49_000.0 * 1.125).contains(&p50), "{p50}");
        let p99 = r.p99.unwrap();
        assert!(p99 >= Duration::from_micros(98) && p99 <= r.max, "{p99:?}");
        assert!(r.mean().unwrap() > Duration::from_micros(40));
        assert_eq!(
            s.snapshot(Op::Write).count,
            0,
            "operations are counted apart"
        );
        assert_eq!(s.snapshot_all().len(), Op::ALL.len());

        // Sections are counted apart and added up.
        let history = s.section("history");
        assert_eq!(s.section("history"), history);
        s.record(
            history,
            Op::Read,
            Duration::from_millis(2),
            Some(libc::ENOENT),
        );
        assert_eq!(s.snapshot_in(Some(history), Op::Read).count, 1);
        assert_eq!(s.snapshot_in(Some(current), Op::Read).count, 103);
        assert_eq!(s.snapshot(Op::Read).count, 104);
        assert_eq!(
            s.snapshot(Op::Read).errnos,
            vec![("ENOENT", 1), ("EIO", 2), ("other", 1)]
        );
        let names: Vec<String> = s.sections().iter().map(|(_, n)| n.to_string()).collect();
        assert_eq!(names, ["root", "current", "debug", "history"]);
        // Coarse buckets for Prometheus: 1..=100 µs and the 2 ms read.
        let coarse = s.snapshot(Op::Read).latencies.coarse(&[50e-6, 1e-3]);
        assert_eq!(coarse.iter().sum::<u64>(), 104);
        assert_eq!(coarse[2], 1, "2 ms is above both bounds");
        assert!((45..=52).contains(&coarse[0]), "{coarse:?}");
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "Op::ALL is in declaration order");
        }
    }
}
