//! What both adapters share, so that the two backends cannot drift apart: the kernel
//! settings derived from [`FsConfig`], the TTL rule for entry replies, time conversion,
//! error logging, panic containment, per-request statistics and the once-only `destroy`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::parking::Parking;
use crate::core::{Backing, Entry, Fs, FsConfig, FsError, FsResult, Ino, Mount, Op, TimeNs};

/// Filesystem subtype: the mount shows up as `fuse.lighthouse` in /proc/mounts.
pub(super) const SUBTYPE: &str = "lighthouse";

/// How often `serve` looks at the stop signal while the mount is live.
pub(super) const STOP_POLL: Duration = Duration::from_millis(100);

/// After a stop, how long `serve` waits for the session to end. A clean unmount ends it at
/// once; after a lazy (busy) unmount the session keeps serving the processes that still
/// use the detached tree, and `serve` stops waiting for them after this long.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Bounds of the FUSE protocol for `max_write` (fuser cannot go above 16 MiB; the kernel
/// raises anything below 4 KiB to 4 KiB).
const MIN_MAX_WRITE: u32 = 4096;
const MAX_MAX_WRITE: u32 = 16 << 20;

/// The kernel connection settings both backends answer INIT with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KernelSettings {
    pub max_write: u32,
    /// An upper bound: the kernel offers its own read-ahead in INIT and only accepts less.
    pub max_readahead: u32,
    pub max_background: u16,
    /// 3/4 of `max_background`, as libfuse and the kernel default do.
    pub congestion_threshold: u16,
}

impl KernelSettings {
    pub fn from_config(config: &FsConfig) -> Self {
        let max_background = config.max_background.max(1);
        KernelSettings {
            max_write: config.max_write.clamp(MIN_MAX_WRITE, MAX_MAX_WRITE),
            max_readahead: config.max_readahead.max(1),
            max_background,
            congestion_threshold: ((u32::from(max_background) * 3 / 4) as u16).max(1),
        }
    }
}

/// The one TTL of an entry reply. Neither crate can send separate entry and attribute
/// TTLs everywhere (fuser's create and readdirplus replies, and every fuse3 entry reply,
/// carry a single TTL), so both adapters send this everywhere an entry goes out:
/// the shorter of the two, which never lets the kernel keep a name or attributes longer
/// than the core allows. A negative entry (`attr.ino == 0`) has no attributes for the
/// kernel to cache, so its TTL is the entry TTL alone.
pub(super) fn entry_ttl(entry: &Entry) -> Duration {
    if entry.attr.ino == 0 {
        entry.entry_ttl
    } else {
        entry.entry_ttl.min(entry.attr_ttl)
    }
}

/// Nanoseconds since the epoch → (seconds, nanoseconds 0..1e9), floor division so times
/// before 1970 come out right.
pub(super) fn split_time(ns: TimeNs) -> (i64, u32) {
    (
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// (seconds, nanoseconds) → nanoseconds since the epoch, saturating.
pub(super) fn join_time(sec: i64, nsec: u32) -> TimeNs {
    sec.saturating_mul(1_000_000_000)
        .saturating_add(i64::from(nsec))
}

/// Size of one entry in a READDIR (`header` = 24) or READDIRPLUS (`header` = 152) reply:
/// header plus name, padded to 8 bytes, exactly as both crates and the kernel count it.
pub(super) fn dirent_size(header: usize, name_len: usize) -> usize {
    (header + name_len).next_multiple_of(8)
}

/// Run one core call for a kernel request of type `op`: contain a panic, log a failure,
/// and record the request in the core's [`OpStats`](crate::core::OpStats) (count,
/// errno, latency) for `debug/performance.json`. Every request of both adapters passes
/// through here (or [`record`] around a hand-off), so both backends measure the same span:
/// from the adapter's call into the core to the answer ready for the reply.
#[inline]
pub(super) fn run<T>(
    life: &Lifecycle,
    op: Op,
    ino: Ino,
    f: impl FnOnce() -> FsResult<T>,
) -> Result<T, i32> {
    let started = Instant::now();
    // The section first: a FORGET may take a view path's number away.
    let stats = &life.mount.stats;
    let section = life.fs.stats_section(stats, ino);
    let result = contain(&life.fs, op.as_str(), ino, f);
    stats.record(
        section,
        op,
        started.elapsed(),
        result.as_ref().err().copied(),
    );
    result
}

/// Record one finished request of `op` on `ino` through `mount` that started at
/// `started` (see [`run`]).
#[inline]
pub(super) fn record<T>(
    fs: &Fs,
    mount: &Mount,
    op: Op,
    ino: Ino,
    started: Instant,
    result: &Result<T, i32>,
) {
    let stats = &mount.stats;
    stats.record(
        fs.stats_section(stats, ino),
        op,
        started.elapsed(),
        result.as_ref().err().copied(),
    );
}

/// Contain a panic of `f` (answer EIO instead of killing a fuser worker or leaving a
/// fuse3 request unanswered forever), log a failure, and hand back the errno to reply
/// with. Each call runs in a `fuse` span (op, ino) at debug level; at the default level
/// nothing is logged per request but failures of the filesystem itself (see
/// [`is_failure`]), at warn with the path.
pub(super) fn contain<T>(
    fs: &Fs,
    op: &'static str,
    ino: Ino,
    f: impl FnOnce() -> FsResult<T>,
) -> Result<T, i32> {
    let _span = tracing::debug_span!("fuse", op, ino).entered();
    let result = match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            tracing::error!(op, ino, "filesystem core panicked: {what}");
            Err(FsError::new(libc::EIO, "filesystem core panicked"))
        }
    };
    result.map_err(|e| {
        // Lack of room is said once, when it starts (the store logs it), not per request.
        let expected = crate::core::is_no_space(e.errno) && fs.store().shortage().is_some();
        if is_failure(e.errno) && !expected {
            let path = fs.describe(ino);
            tracing::warn!(op, path, errno = e.name(), "{}", e.message);
        } else {
            tracing::debug!(op, ino, errno = e.name(), "{}", e.message);
        }
        e.errno
    })
}

/// An errno that says the filesystem failed (the store, the disk, a view's fault), as
/// opposed to an answer to what the caller asked (ENOENT, EEXIST, EACCES, EAGAIN...),
/// which is normal operation and logged at debug level only.
fn is_failure(errno: i32) -> bool {
    matches!(
        errno,
        libc::EIO | libc::ENOSPC | libc::EDQUOT | libc::ENOMEM | libc::EMFILE | libc::ENFILE
    )
}

/// One mount being served: the filesystem, the core's [`Mount`] (its statistics and
/// kernel caches), and its lifecycle. Calls [`Fs::destroy`] exactly once, whichever comes
/// first: the session's own destroy callback or `serve`'s backstop after the session
/// ended (fuse3 skips the callback when its session dies of a failed reply; fuser's
/// session may outlive `serve` after a lazy unmount).
///
/// It also holds the mount's parked reads, which must end before an unmount can finish.
pub(super) struct Lifecycle {
    pub fs: Arc<Fs>,
    pub mount: Arc<Mount>,
    destroyed: AtomicBool,
    pub parking: Arc<Parking>,
    detached: AtomicBool,
}

impl Lifecycle {
    pub fn new(fs: Arc<Fs>, mount: Arc<Mount>) -> Arc<Self> {
        Arc::new(Lifecycle {
            parking: Parking::new(fs.clone(), mount.clone()),
            fs,
            mount,
            destroyed: AtomicBool::new(false),
            detached: AtomicBool::new(false),
        })
    }

    /// The mount is about to go away: end the reads that wait, so no reader keeps it
    /// busy (readers see end-of-file).
    pub fn stopping(&self) {
        self.mount.clear_kernel_cache();
        self.parking.stop();
    }

    /// Called on every poll of `serve`: once the mount was detached from outside (`umount
    /// -l`), the session ends only when its last user leaves, so end the waiting readers.
    pub fn check_attached(&self, path: &std::path::Path) {
        if !self.detached.load(Ordering::Relaxed) && !super::mountpoint::still_attached(path) {
            self.detached.store(true, Ordering::Relaxed);
            tracing::info!(mountpoint = %path.display(), "the mount was detached; ending waiting reads");
            self.parking.stop();
        }
    }

    pub fn destroy_once(&self) {
        self.mount.clear_kernel_cache();
        self.parking.stop();
        if !self.destroyed.swap(true, Ordering::SeqCst) {
            let _ = contain(&self.fs, "destroy", crate::core::ROOT_INO, || {
                self.fs.destroy();
                Ok(())
            });
        }
    }
}

/// Backing files registered with one session's kernel for passthrough (`Id`: the crate's
/// registration, which closes it in the kernel when dropped): one id per file while
/// handles use it (the kernel wants the same one for every handle of an inode), held by
/// the handles answered with it, closed when the last is released.
pub struct Backings<Id> {
    inner: parking_lot::Mutex<BackingTable<Id>>,
}

struct BackingTable<Id> {
    /// Each passthrough handle's id, with its file's key in `by_file`.
    by_fh: rustc_hash::FxHashMap<u64, (usize, Arc<Id>)>,
    /// The id of each backing file in use, by the file's address.
    by_file: rustc_hash::FxHashMap<usize, (std::sync::Weak<Id>, std::sync::Weak<std::fs::File>)>,
}

impl<Id> Default for Backings<Id> {
    fn default() -> Self {
        Backings {
            inner: parking_lot::Mutex::new(BackingTable {
                by_fh: Default::default(),
                by_file: Default::default(),
            }),
        }
    }
}

impl<Id> Backings<Id> {
    /// The id of `backing` for the handle `fh`: the one its file has, else registered now
    /// by `register`.
    fn id_for(
        &self,
        fh: u64,
        backing: &Backing,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> std::io::Result<Arc<Id>> {
        let key = Arc::as_ptr(&backing.0) as usize;
        let mut t = self.inner.lock();
        let known = t.by_file.get(&key).and_then(|(id, file)| {
            let (id, file) = (id.upgrade()?, file.upgrade()?);
            Arc::ptr_eq(&file, &backing.0).then_some(id)
        });
        let id = match known {
            Some(id) => id,
            None => {
                let id = Arc::new(register(&backing.0)?);
                t.by_file
                    .insert(key, (Arc::downgrade(&id), Arc::downgrade(&backing.0)));
                id
            }
        };
        t.by_fh.insert(fh, (key, id.clone()));
        Ok(id)
    }

    /// How to answer the open `o`: by passthrough with the returned id when the core gave
    /// a backing and the kernel takes it (`register`), else cached, as the core answers
    /// it once told the kernel refused ([`Fs::passthrough_refused`]).
    pub fn answer(
        &self,
        fs: &Fs,
        o: crate::core::Opened,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> (crate::core::Opened, Option<Arc<Id>>) {
        let Some(backing) = &o.backing else {
            return (o, None);
        };
        match self.id_for(o.fh, backing, register) {
            Ok(id) => (o, Some(id)),
            Err(e) => (fs.passthrough_refused(o.fh, &e), None),
        }
    }

    /// The handle `fh` was released: its hold on its backing id goes (the last closes it
    /// in the kernel).
    pub fn release(&self, fh: u64) {
        let mut t = self.inner.lock();
        if let Some((key, id)) = t.by_fh.remove(&fh) {
            if Arc::strong_count(&id) == 1 {
                t.by_file.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip_before_and_after_epoch() {
        for ns in [
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1,
            -1_000_000_001,
            1_700_000_000_123_456_789,
        ] {
            let (s, n) = split_time(ns);
            assert!(n < 1_000_000_000);
            assert_eq!(join_time(s, n), ns);
        }
        assert_eq!(split_time(-1), (-1, 999_999_999));
    }

    #[test]
    fn dirent_sizes_match_the_abi() {
        assert_eq!(dirent_size(24, 1), 32);
        assert_eq!(dirent_size(24, 8), 32);
        assert_eq!(dirent_size(24, 9), 40);
        assert_eq!(dirent_size(152, 3), 160);
    }

    #[test]
    fn kernel_settings_are_clamped() {
        let config = FsConfig {
            max_write: 64 << 20,
            max_background: 64,
            ..FsConfig::default()
        };
        let s = KernelSettings::from_config(&config);
        assert_eq!(s.max_write, 16 << 20);
        assert_eq!(s.congestion_threshold, 48);
        let config = FsConfig {
            max_write: 0,
            max_background: 1,
            ..FsConfig::default()
        };
        let s = KernelSettings::from_config(&config);
        assert_eq!(s.max_write, 4096);
        assert_eq!(s.congestion_threshold, 1);
    }
}
