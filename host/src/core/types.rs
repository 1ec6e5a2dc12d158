//! The core's own vocabulary with the adapters: what an operation answers (entries, open
//! files, listings, statfs) beside the words it shares with the store (`crate::vocab`).

use crate::vocab::{now_ns, Attr, FileKind, Ino, TimeNs};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A lookup's answer: the attributes and how long the kernel may cache name and attrs.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub attr: Attr,
    pub entry_ttl: Duration,
    pub attr_ttl: Duration,
    pub generation: u64,
}

/// `utimensat` times: an explicit time or "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Now,
    At(TimeNs),
}

/// A `setattr` request: each field set is one change (chmod, chown, truncate, utimens).
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeSpec>,
    pub mtime: Option<TimeSpec>,
    /// The handle the change came through, when it came through one (ftruncate).
    pub fh: Option<u64>,
}

/// How an opened file should be treated by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub fh: u64,
    /// Keep the page cache from earlier opens (the host is the only writer).
    pub keep_cache: bool,
    /// Bypass the page cache (streams, content without a fixed size).
    pub direct_io: bool,
    /// No FLUSH at close: nothing to commit through this handle (read-only opens), so
    /// close() costs no round trip.
    pub noflush: bool,
    /// The kernel may cache this directory's listing (it drops it when the directory
    /// changes through the mount).
    pub cache_dir: bool,
    /// Serve this handle by FUSE passthrough from this local file: the adapter registers
    /// it with its kernel connection (one registration per file while handles use it)
    /// and answers with its id, or, when the kernel turns it down, calls
    /// [`Fs::passthrough_refused`](super::Fs::passthrough_refused).
    pub backing: Option<Backing>,
}

/// The local file a passthrough handle is served from: every handle of one inode open
/// at the same time gets the same one (the kernel accepts no other).
#[derive(Debug, Clone)]
pub struct Backing(pub std::sync::Arc<std::fs::File>);

impl PartialEq for Backing {
    fn eq(&self, other: &Backing) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Backing {}

impl Opened {
    /// A handle whose content was made at open (a debug document, a challenge): read
    /// with direct I/O, so the page cache never serves an older one; nothing to flush.
    pub fn fresh(fh: u64) -> Opened {
        Opened {
            fh,
            keep_cache: false,
            direct_io: true,
            noflush: true,
            cache_dir: false,
            backing: None,
        }
    }
}

/// `size` bytes of `bytes` from `offset` (fewer at the end), as a read of them answers.
pub fn read_slice(bytes: &[u8], offset: u64, size: u32) -> Vec<u8> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = start.saturating_add(size as usize).min(bytes.len());
    bytes[start..end].to_vec()
}

/// One directory entry as `readdir` yields it. `offset` is the cookie of the *next*
/// entry, as FUSE expects.
#[derive(Debug, Clone)]
pub struct DirItem {
    pub ino: Ino,
    pub offset: u64,
    pub kind: FileKind,
    pub name: Arc<str>,
}

impl DirItem {
    /// "." or "..": listed, but never a lookup reference (the kernel skips them in
    /// READDIRPLUS replies).
    pub(crate) fn is_dots(&self) -> bool {
        &*self.name == "." || &*self.name == ".."
    }
}

/// The answer of `getxattr`/`listxattr`: the size the caller's buffer needs (it asked
/// with size 0), or the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

/// `statfs` figures, in `bsize` blocks.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// Where and by which backend a [`Mount`](super::Mount) is served, as the adapter layer
/// tells the core when it starts serving (for `debug/` and `/metrics`).
#[derive(Debug, Clone)]
pub struct MountInfo {
    /// The FUSE backend serving the mount: "fuser" or "fuse3".
    pub backend: &'static str,
    pub mountpoint: PathBuf,
    pub started: Instant,
    pub started_ns: TimeNs,
}

impl MountInfo {
    /// A mount starting now.
    pub fn new(backend: &'static str, mountpoint: PathBuf) -> MountInfo {
        MountInfo {
            backend,
            mountpoint,
            started: Instant::now(),
            started_ns: now_ns(),
        }
    }
}
