//! The contract between the host and its views (`wit/lighthouse-fs.wit`, `interface
//! types`) as plain Rust: what the core and the view host share. The wasmtime bindings'
//! own types stay inside `views::bindings`, which converts them to these at the boundary,
//! once; the core turns them into kernel attributes and TTLs (`core::view_section`).

use std::fmt;
use std::time::Duration;

use crate::vocab::FileKind;

/// `node-kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    File,
    Directory,
    Symlink,
    /// An append-only log file served through `open` and `next` (the kernel sees a file).
    Stream,
}

impl NodeKind {
    /// What the kernel is told: a stream is a regular file (the host serves it as a log).
    pub fn file_kind(self) -> FileKind {
        match self {
            NodeKind::File | NodeKind::Stream => FileKind::File,
            NodeKind::Directory => FileKind::Dir,
            NodeKind::Symlink => FileKind::Symlink,
        }
    }
}

impl From<FileKind> for NodeKind {
    /// A node of the live tree as a view sees it. FIFOs, sockets and devices have no bytes
    /// to show (and `create` of a FIFO or socket in a view makes a file): plain files.
    fn from(kind: FileKind) -> NodeKind {
        match kind {
            FileKind::Dir => NodeKind::Directory,
            FileKind::Symlink => NodeKind::Symlink,
            FileKind::File
            | FileKind::Fifo
            | FileKind::Socket
            | FileKind::CharDev
            | FileKind::BlockDev => NodeKind::File,
        }
    }
}

/// `caching`: how long the host (and the kernel) may keep an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caching {
    /// Ask again every time (live data).
    Volatile,
    /// May be kept this many milliseconds.
    Millis(u32),
    /// Never changes for this component generation.
    Immutable,
}

impl Caching {
    /// The kernel TTL for this policy. "Immutable" is bounded all the same, so that a view
    /// replaced by a new version is asked again within the hour even without notify.
    pub fn ttl(self) -> Duration {
        match self {
            Caching::Volatile => Duration::ZERO,
            Caching::Millis(ms) => Duration::from_millis(ms.into()),
            Caching::Immutable => Duration::from_secs(3600),
        }
    }
}

/// `attrs`: what `getattr` answers (and what `StoreAccess::stat_at` returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewAttrs {
    pub kind: NodeKind,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Permission bits (e.g. 0o444).
    pub perm: u16,
    pub writable: bool,
    pub caching: Caching,
    /// The node's (uid, gid); `None`: the mount's owner (a view's own files).
    pub owner: Option<(u32, u32)>,
}

/// `dir-entry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewDirEntry {
    pub name: String,
    pub kind: NodeKind,
}

/// `fs-error`: an answer of the view (or of the store) that is an error by design.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewError {
    NotFound,
    NotADirectory,
    IsADirectory,
    ReadOnly,
    PermissionDenied,
    /// The host parks the read until the store's head moves, then asks again.
    WouldBlock,
    /// ENOTEMPTY: a directory to remove still holds something.
    NotEmpty,
    /// EEXIST: a name to create is already there.
    Exists,
    /// EINVAL, with the reason for the log.
    Invalid(String),
    /// EIO, with the reason for the log.
    Internal(String),
}

impl ViewError {
    /// The errno this error becomes in a FUSE reply. `WouldBlock` maps to EAGAIN, but the
    /// core is expected to park the read and retry rather than reply with it.
    pub fn errno(&self) -> i32 {
        match self {
            ViewError::NotFound => libc::ENOENT,
            ViewError::NotADirectory => libc::ENOTDIR,
            ViewError::IsADirectory => libc::EISDIR,
            ViewError::ReadOnly => libc::EROFS,
            ViewError::PermissionDenied => libc::EACCES,
            ViewError::WouldBlock => libc::EAGAIN,
            ViewError::NotEmpty => libc::ENOTEMPTY,
            ViewError::Exists => libc::EEXIST,
            ViewError::Invalid(_) => libc::EINVAL,
            ViewError::Internal(_) => libc::EIO,
        }
    }
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::NotFound => f.write_str("not found"),
            ViewError::NotADirectory => f.write_str("not a directory"),
            ViewError::IsADirectory => f.write_str("is a directory"),
            ViewError::ReadOnly => f.write_str("read-only"),
            ViewError::PermissionDenied => f.write_str("permission denied"),
            ViewError::WouldBlock => f.write_str("would block"),
            ViewError::NotEmpty => f.write_str("directory not empty"),
            ViewError::Exists => f.write_str("already exists"),
            ViewError::Invalid(why) => write!(f, "invalid: {why}"),
            ViewError::Internal(why) => write!(f, "internal: {why}"),
        }
    }
}

impl std::error::Error for ViewError {}

/// `audit-record`: one audited decision of the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditInfo {
    pub seq: u64,
    pub time_ns: i64,
    pub agent: String,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    pub op: String,
    pub path: String,
    pub outcome: String,
}

/// `event`: one change to the live tree, as the event log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    pub seq: u64,
    pub time_ns: i64,
    pub agent: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    /// create, mkdir, symlink, mknod, write, setattr, rename, link, unlink, rmdir
    pub op: String,
    /// Relative to current/, with a leading "/".
    pub path: String,
    /// Rename/link destination, or symlink target.
    pub path2: Option<String>,
    pub size: Option<u64>,
    /// Hex BLAKE3 of the content a write committed (none when empty).
    pub hash: Option<String>,
    /// The view that recorded the event (none for changes to the live tree).
    pub view: Option<String>,
    /// What the view recorded: one JSON document.
    pub body: Option<String>,
}

/// `events-page`: the events a caller may see, and how far the store looked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventsPage {
    pub events: Vec<EventInfo>,
    /// Every event up to this seq was looked at: the next call continues after it.
    pub through: u64,
}

/// `audit-page`: the audit records a caller may see, and how far the trail was read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditPage {
    pub records: Vec<AuditInfo>,
    pub through: u64,
}

/// `event-filter`: which events `store.events` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events whose path (or rename/link destination) is this or below it.
    pub prefix: Option<String>,
    /// Only events with one of these ops (empty: all).
    pub ops: Vec<String>,
}

impl EventFilter {
    /// Does `e` pass? (The store's own query does the same; this is for models.)
    pub fn matches(&self, e: &EventInfo) -> bool {
        let under = |p: &str, prefix: &str| {
            prefix.is_empty()
                || p == prefix
                || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
        };
        let op_ok = self.ops.is_empty() || self.ops.contains(&e.op);
        let path_ok = self.prefix.as_deref().is_none_or(|p| {
            let p = p.trim_end_matches('/');
            under(&e.path, p)
                || (e.op != "symlink" && e.path2.as_deref().is_some_and(|p2| under(p2, p)))
        });
        op_ok && path_ok
    }
}

/// `open-mode`: how the host serves an opened file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Reads by offset through `read`.
    Plain,
    /// A stream's log, starting at this cursor, through `next`.
    Stream(u64),
}

/// `chunk`: the next part of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Whole records; empty: nothing new yet.
    pub data: Vec<u8>,
    pub cursor: u64,
    /// The time of the newest record in `data` (ns since the epoch).
    pub time_ns: i64,
    /// The stream has ended.
    pub end: bool,
}

/// `view-info`: what a view says about itself (its name is its top-level directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewInfo {
    pub name: String,
    pub version: String,
    pub description: String,
}
