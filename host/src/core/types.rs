//! The backend-neutral vocabulary of the core: what an adapter passes in and gets back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Inode number as the kernel sees it.
pub type Ino = u64;

/// The mount's root directory (it lists the sections: `current`, later the views).
pub const ROOT_INO: Ino = 1;
/// `MOUNT/current/`, the root of the live tree.
pub const CURRENT_INO: Ino = 2;

/// Who is calling: every core operation takes one, from day one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// The mount the request came through (0: the host itself). A change is told to the
    /// kernels of the other mounts, never back to its own, which saw it.
    pub mount: super::MountId,
    /// Who the policy says it is (`--policy`; without one, every caller is the default).
    pub agent: crate::policy::AgentId,
    /// The agent's name, for events and view calls (`None` without a policy).
    pub agent_name: Option<&'static str>,
}

impl Caller {
    /// The host itself (import, replay, tests without FUSE).
    pub const HOST: Caller = Caller {
        uid: 0,
        gid: 0,
        pid: 0,
        mount: 0,
        agent: crate::policy::AgentId::DEFAULT,
        agent_name: None,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    /// Device nodes: stored (mode, owner, rdev) like any node, never opened through the
    /// mount (it is `nodev`).
    CharDev,
    BlockDev,
}

impl FileKind {
    pub fn is_device(self) -> bool {
        matches!(self, FileKind::CharDev | FileKind::BlockDev)
    }

    /// The `S_IFMT` bits of this kind.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileKind::File => libc::S_IFREG,
            FileKind::Dir => libc::S_IFDIR,
            FileKind::Symlink => libc::S_IFLNK,
            FileKind::Fifo => libc::S_IFIFO,
            FileKind::Socket => libc::S_IFSOCK,
            FileKind::CharDev => libc::S_IFCHR,
            FileKind::BlockDev => libc::S_IFBLK,
        }
    }

    /// The kind named by a `mode`'s `S_IFMT` bits.
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => Some(FileKind::File),
            libc::S_IFDIR => Some(FileKind::Dir),
            libc::S_IFLNK => Some(FileKind::Symlink),
            libc::S_IFIFO => Some(FileKind::Fifo),
            libc::S_IFSOCK => Some(FileKind::Socket),
            libc::S_IFCHR => Some(FileKind::CharDev),
            libc::S_IFBLK => Some(FileKind::BlockDev),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::CharDev => "chardev",
            FileKind::BlockDev => "blockdev",
        }
    }

    pub fn parse(s: &str) -> Option<FileKind> {
        Some(match s {
            "file" => FileKind::File,
            "dir" => FileKind::Dir,
            "symlink" => FileKind::Symlink,
            "fifo" => FileKind::Fifo,
            "socket" => FileKind::Socket,
            "chardev" => FileKind::CharDev,
            "blockdev" => FileKind::BlockDev,
            _ => return None,
        })
    }
}

/// Nanoseconds since the Unix epoch; the store and the core keep times this way.
pub type TimeNs = i64;

pub fn now_ns() -> TimeNs {
    system_time_to_ns(SystemTime::now())
}

pub fn system_time_to_ns(t: SystemTime) -> TimeNs {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as TimeNs,
        Err(e) => -(e.duration().as_nanos() as TimeNs),
    }
}

pub fn ns_to_system_time(ns: TimeNs) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Attributes of an inode, as `stat` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: FileKind,
    /// Permission bits only (`mode & 0o7777`).
    pub perm: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: TimeNs,
    pub mtime: TimeNs,
    pub ctime: TimeNs,
    pub rdev: u32,
}

impl Attr {
    pub const BLOCK_SIZE: u32 = 4096;

    /// 512-byte blocks, as `st_blocks` counts them (content is stored whole).
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(512)
    }

    /// Full `st_mode`: kind and permission bits.
    pub fn mode(&self) -> u32 {
        self.kind.mode_bits() | self.perm
    }
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

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

/// Rename flags the core understands (`renameat2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenameFlags {
    pub noreplace: bool,
    pub exchange: bool,
}

impl RenameFlags {
    /// From the raw `renameat2` flags; unknown bits give `None` (EINVAL).
    pub fn from_raw(flags: u32) -> Option<RenameFlags> {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
        if flags & !known != 0 {
            return None;
        }
        let f = RenameFlags {
            noreplace: flags & libc::RENAME_NOREPLACE != 0,
            exchange: flags & libc::RENAME_EXCHANGE != 0,
        };
        if f.noreplace && f.exchange {
            return None;
        }
        Some(f)
    }

    pub fn to_raw(self) -> u32 {
        (if self.noreplace {
            libc::RENAME_NOREPLACE
        } else {
            0
        }) | (if self.exchange {
            libc::RENAME_EXCHANGE
        } else {
            0
        })
    }
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
