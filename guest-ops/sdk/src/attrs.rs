//! `attrs` and `dir-entry` values. Views are read-only unless they say otherwise:
//! files are `0o444`, directories `0o555`, symlinks `0o777` (as the kernel shows them).

use crate::{Attrs, Caching, DirEntry, NodeKind};

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

/// A directory entry.
pub fn entry(name: impl Into<String>, kind: NodeKind) -> DirEntry {
    DirEntry {
        name: name.into(),
        kind,
    }
}
