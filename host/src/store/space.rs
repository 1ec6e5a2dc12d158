//! Room on the store's filesystem. Running out of it is a transient state, not a failure
//! of the store: while it lasts, new file content answers ENOSPC (EDQUOT when that is
//! what the disk said), metadata changes go on into a reserve kept for the log, and the
//! state ends by itself once there is room again.
//!
//! The reserve is a file (`STORE/reserve`) of a few MiB allocated up front. When the disk
//! fills, it is released, so the log can still take the small events of `rm`, `mv`,
//! `chmod`… and content writes are refused from then on (they would eat the reserve).
//! When the filesystem has room for the reserve and some headroom beyond it, the reserve
//! is allocated again and writes are accepted again.
//!
//! On copy-on-write filesystems (btrfs, ZFS) an allocated file does not promise its
//! blocks to later writes, so there the reserve is a best effort.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Size of the reserve: once the disk is full, room for hundreds of metadata events
/// committed one by one (a few 4 KiB pages each), thousands when they commit together.
pub const RESERVE_BYTES: u64 = 4 << 20;
/// statvfs does not see quotas: under EDQUOT, room is probed by allocating the reserve
/// again, at most this often.
const QUOTA_PROBE: Duration = Duration::from_secs(1);

pub const RESERVE_FILE: &str = "reserve";

/// Why the store refuses a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No room on the store's filesystem (`errno` is ENOSPC or EDQUOT): transient.
    NoSpace { errno: i32, reason: String },
    /// The store failed (a corrupt or unwritable log): it refuses changes until restarted.
    Failed(String),
}

impl Refusal {
    /// The errno a caller sees: ENOSPC/EDQUOT for lack of room, EIO for a failure.
    pub fn errno(&self) -> i32 {
        match self {
            Refusal::NoSpace { errno, .. } => *errno,
            Refusal::Failed(_) => libc::EIO,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoSpace { reason, .. } | Refusal::Failed(reason) => f.write_str(reason),
        }
    }
}

/// ENOSPC or EDQUOT: the errors that mean "no room", as opposed to a fault.
pub fn no_space_errno(e: &io::Error) -> Option<i32> {
    match e.raw_os_error() {
        Some(n @ (libc::ENOSPC | libc::EDQUOT)) => Some(n),
        _ => None,
    }
}

/// What a shortage is called in messages.
pub fn describe(errno: i32) -> &'static str {
    if errno == libc::EDQUOT {
        "disk quota exceeded"
    } else {
        "no space left"
    }
}

type Hook = Arc<dyn Fn() + Send + Sync>;

pub struct Space {
    dir: PathBuf,
    reserve: PathBuf,
    reserve_bytes: u64,
    /// `state.shortage.is_some()`, read without the lock on every content write.
    short: AtomicBool,
    state: Mutex<State>,
    /// Called (on a thread of their own) each time room comes back.
    on_room: Mutex<Vec<Hook>>,
}

#[derive(Default)]
struct State {
    shortage: Option<Shortage>,
    /// Last time the reserve was allocated again to probe a quota.
    last_quota_probe: Option<Instant>,
}

struct Shortage {
    errno: i32,
    reason: String,
    since: Instant,
}

impl Space {
    /// Watch the filesystem of the store in `dir`, allocating its reserve. A filesystem
    /// already too full for it is a store that starts short of space, not an error.
    pub fn open(dir: &Path, reserve_bytes: u64) -> io::Result<Space> {
        let space = Space {
            dir: dir.to_path_buf(),
            reserve: dir.join(RESERVE_FILE),
            reserve_bytes,
            short: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            on_room: Mutex::new(Vec::new()),
        };
        match space.restore_reserve() {
            Ok(true) => {}
            Ok(false) => space.enter(
                &mut space.state.lock(),
                libc::ENOSPC,
                "at start: too little room for the reserve".into(),
            ),
            Err(e) => match no_space_errno(&e) {
                Some(errno) => space.enter(
                    &mut space.state.lock(),
                    errno,
                    format!("at start, allocating the reserve: {e}"),
                ),
                None => return Err(e),
            },
        }
        Ok(space)
    }

    /// Is the store short of room now (content writes refused)?
    pub fn is_short(&self) -> bool {
        self.short.load(Ordering::Acquire)
    }

    /// The shortage, if any: the errno to answer and why.
    pub fn shortage(&self) -> Option<Refusal> {
        if !self.is_short() {
            return None;
        }
        let st = self.state.lock();
        st.shortage.as_ref().map(|s| Refusal::NoSpace {
            errno: s.errno,
            reason: s.reason.clone(),
        })
    }

    /// Size of the reserve when whole.
    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    /// The disk said ENOSPC or EDQUOT (`errno`) while doing `what`: enter the shortage
    /// (once; later reports of the same shortage change nothing) and release the reserve
    /// for the log.
    pub fn report(&self, errno: i32, what: &str) {
        let mut st = self.state.lock();
        if st.shortage.is_none() {
            self.enter(&mut st, errno, what.to_string());
        }
    }

    fn enter(&self, st: &mut State, errno: i32, what: String) {
        let released = self.release_reserve();
        let reason = format!("{} on the store's filesystem ({what})", describe(errno));
        tracing::warn!(
            store = %self.dir.display(),
            reserve_released = released,
            "{reason}: new file content is refused until there is room again; metadata \
             changes go on in the store's reserve"
        );
        st.shortage = Some(Shortage {
            errno,
            reason,
            since: Instant::now(),
        });
        self.short.store(true, Ordering::Release);
    }

    /// Is there room again? When the store is short, look: with room for the reserve and
    /// the headroom beyond it, allocate the reserve again and end the shortage. True when
    /// the store is not short (any more).
    pub fn recheck(&self) -> bool {
        if !self.is_short() {
            return true;
        }
        let mut st = self.state.lock();
        let Some((errno, since)) = st.shortage.as_ref().map(|s| (s.errno, s.since)) else {
            return true;
        };
        if errno == libc::EDQUOT {
            if st
                .last_quota_probe
                .is_some_and(|t| t.elapsed() < QUOTA_PROBE)
            {
                return false;
            }
            st.last_quota_probe = Some(Instant::now());
        }
        match self.restore_reserve() {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                // Still no room (the allocation raced another writer), or the disk is
                // failing in another way: either way the shortage goes on, and a real
                // fault shows up where the store writes.
                tracing::debug!(error = %e, "allocating the store's reserve again failed");
                return false;
            }
        }
        let lasted = since.elapsed();
        st.shortage = None;
        self.short.store(false, Ordering::Release);
        drop(st);
        tracing::info!(
            store = %self.dir.display(),
            short_for_s = lasted.as_secs_f64(),
            "room again on the store's filesystem: writes are accepted again"
        );
        let hooks: Vec<Hook> = self.on_room.lock().clone();
        if !hooks.is_empty() {
            // Never on the caller's thread: it may hold locks the hooks take.
            let spawned = std::thread::Builder::new()
                .name("store-room".into())
                .spawn(move || hooks.iter().for_each(|h| h()));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no thread to retry commits once room came back");
            }
        }
        true
    }

    /// Call `hook` each time room comes back (on a thread of its own).
    pub fn on_room(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.on_room.lock().push(Arc::new(hook));
    }

    /// Give the reserve's blocks back to the filesystem; returns how many bytes.
    fn release_reserve(&self) -> u64 {
        let had = std::fs::metadata(&self.reserve)
            .map(|m| m.len())
            .unwrap_or(0);
        if had == 0 {
            return 0;
        }
        match OpenOptions::new()
            .write(true)
            .open(&self.reserve)
            .and_then(|f| f.set_len(0))
        {
            Ok(()) => had,
            Err(e) => {
                tracing::warn!(error = %e, "releasing the store's reserve failed");
                0
            }
        }
    }

    /// Bring the reserve to its full size if the filesystem has room for it and the
    /// headroom. Ok(true) when it is whole.
    fn restore_reserve(&self) -> io::Result<bool> {
        let have = std::fs::metadata(&self.reserve)
            .map(|m| m.len())
            .unwrap_or(0);
        if have >= self.reserve_bytes {
            return Ok(true);
        }
        // As much again beyond the reserve: the first write after a shortage must not
        // start the next one at once.
        if available(&self.dir)? < self.reserve_bytes - have + self.reserve_bytes {
            return Ok(false);
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.reserve)?;
        if let Err(e) = allocate(&file, self.reserve_bytes) {
            // Whatever part was allocated goes back: the reserve is whole or empty.
            let _ = file.set_len(0);
            return match no_space_errno(&e) {
                Some(_) => Ok(false),
                None => Err(e),
            };
        }
        Ok(true)
    }
}

/// Bytes the store's process may still allocate on the filesystem of `dir` (root may use
/// the blocks reserved for root).
fn available(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    // SAFETY: geteuid cannot fail.
    let blocks = if unsafe { libc::geteuid() } == 0 {
        st.blocks_free()
    } else {
        st.blocks_available()
    };
    Ok(blocks.saturating_mul(st.fragment_size()))
}

/// Allocate `len` bytes of `file` for real (not a sparse hole), so they are the
/// filesystem's to give back later.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on a descriptor we own.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(err);
    }
    // A filesystem without fallocate: write the zeros.
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        let n = zeros.len().min((len - at) as usize);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_data()
}

#[cfg(test)]
mod tests;
