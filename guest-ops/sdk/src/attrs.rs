//! `attrs` and `dir-entry` values. Views are read-only unless they say otherwise:
//! files are `0o444`, directories `0o555`, symlinks `0o777` (as the kernel shows them).
//! Their owner is `None`, the mount's owner (a view's own files); [`with_owner`] gives
//! an answer the owner of a node of the store (as history shows the past tree).

use crate::{Attrs, Caching, DirEntry, NodeKind, Owner};

/// Permission bits of a read-only file.
pub const FILE_PERM: u16 = 0o444;
/// Permission bits of a read-only directory.
pub const DIR_PERM: u16 = 0o555;
/// Permission bits of a symlink (not used for access checks).
pub const SYMLINK_PERM: u16 = 0o777;

/// A read-only file of `size` bytes, modified at `mtime_ns` (ns since the Unix epoch).
pub fn file(size: u64, mtime_ns: i64, caching: Caching) -> Attrs {
    Attrs {
        kind: NodeKind::File,
        size,
        mtime_ns,
        perm: FILE_PERM,
        writable: false,
        caching,
        owner: None,
    }
}

/// A stream: an append-only log the host serves from `open` and `next` (a regular,
/// read-only file to the kernel; the host owns its size). `mtime_ns` is shown until the
/// log has a record; the host never caches a stream's attributes.
pub fn stream(mtime_ns: i64) -> Attrs {
    Attrs {
        kind: NodeKind::Stream,
        size: 0,
        mtime_ns,
        perm: FILE_PERM,
        writable: false,
        caching: Caching::Volatile,
        owner: None,
    }
}

/// A read-only directory.
pub fn dir(mtime_ns: i64, caching: Caching) -> Attrs {
    Attrs {
        kind: NodeKind::Directory,
        size: 0,
        mtime_ns,
        perm: DIR_PERM,
        writable: false,
        caching,
        owner: None,
    }
}

/// A symlink whose target is `target_len` bytes long.
pub fn symlink(target_len: u64, mtime_ns: i64, caching: Caching) -> Attrs {
    Attrs {
        kind: NodeKind::Symlink,
        size: target_len,
        mtime_ns,
        perm: SYMLINK_PERM,
        writable: false,
        caching,
        owner: None,
    }
}

/// `attrs` made read-only (write bits cleared, `writable` false), e.g. for answers a
/// view passes on from the store.
pub fn read_only(attrs: Attrs) -> Attrs {
    Attrs {
        perm: attrs.perm & !0o222,
        writable: false,
        ..attrs
    }
}

/// `attrs` shown as owned by `owner` (`None`: the mount's owner), e.g. the owner
/// `stat-at` answered for a node of the store, carried onto the view's own answer.
/// The kernel checks `perm` against it, so a view passing a node on passes its owner too.
pub fn with_owner(attrs: Attrs, owner: Option<Owner>) -> Attrs {
    Attrs { owner, ..attrs }
}

/// A directory entry.
pub fn entry(name: impl Into<String>, kind: NodeKind) -> DirEntry {
    DirEntry {
        name: name.into(),
        kind,
    }
}
