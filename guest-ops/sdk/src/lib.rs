//! Write a lighthouse-fs view: a WebAssembly component that serves one top-level
//! directory of the mount.
//!
//! A view is a type implementing [`View`] (the `view` interface of
//! `wit/lighthouse-fs.wit`), exported with [`export!`]. Every path it is asked about is
//! relative to its own directory (`"/"` is the view's root), and it answers from
//! nothing but its arguments and the [`store`] import (the read-only window onto the
//! event log). The host owns inode numbers, kernel caching, time and memory limits, and
//! the errno each [`FsError`] becomes. A whole view, in a crate with
//! `crate-type = ["cdylib"]` built with `cargo build --target wasm32-wasip2`:
//!
//! ```ignore
//! use lighthouse_view_sdk::{attrs, path, slice_read, Attrs, Caching, Caller, DirEntry};
//! use lighthouse_view_sdk::{FsError, NodeKind, View, ViewInfo};
//!
//! const GREETING: &[u8] = b"hello from a view\n";
//!
//! struct Hello;
//!
//! impl View for Hello {
//!     fn info() -> ViewInfo {
//!         lighthouse_view_sdk::view_info!("hello", "a one-file example view")
//!     }
//!     fn getattr(_: Caller, p: String) -> Result<Attrs, FsError> {
//!         match path::split(&p)?.as_slice() {
//!             [] => Ok(attrs::dir(0, Caching::Immutable)),
//!             ["greeting"] => Ok(attrs::file(GREETING.len() as u64, 0, Caching::Immutable)),
//!             _ => Err(FsError::NotFound),
//!         }
//!     }
//!     fn readdir(_: Caller, p: String) -> Result<Vec<DirEntry>, FsError> {
//!         match path::split(&p)?.as_slice() {
//!             [] => Ok(vec![attrs::entry("greeting", NodeKind::File)]),
//!             ["greeting"] => Err(FsError::NotADirectory),
//!             _ => Err(FsError::NotFound),
//!         }
//!     }
//!     fn read(_: Caller, p: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
//!         match path::split(&p)?.as_slice() {
//!             [] => Err(FsError::IsADirectory),
//!             ["greeting"] => Ok(slice_read(GREETING, offset, len)),
//!             _ => Err(FsError::NotFound),
//!         }
//!     }
//!     // readlink, open, next, write and create keep their defaults: a read-only view
//!     // of plain files.
//! }
//!
//! lighthouse_view_sdk::export!(Hello);
//! ```
//!
//! (`guest-ops/hello` is this view, using [`FixedDir`] to be shorter still; a view of
//! files computed from the store or the caller is shortest as a [`TreeView`].) Errors carry
//! their reason where the contract allows (`invalid`, `internal`): the host logs it. A
//! panic traps: the host drops that instance and answers EIO, so return errors instead.
//! Answers say how long they may be cached ([`Caching`]): `Immutable` only for what can
//! never change for this component version.

pub mod attrs;
pub mod error;
pub mod fixed;
pub mod json;
pub mod model;
pub mod path;
pub mod store_api;
pub mod time;
pub mod tree;

pub use fixed::FixedDir;
pub use store_api::{After, AuditAfter, EventsAfter, HostStore, Store};
pub use tree::{Files, Tree, TreeView};

// `wit` is the repository's `wit/` (a symlink here; a copy in a crate that vendors the
// SDK, such as one `lighthouse-fs views new` writes), so the path holds in both layouts.
wit_bindgen::generate!({
    world: "view-component",
    path: "wit",
    additional_derives: [PartialEq, Eq],
    pub_export_macro: true,
    default_bindings_module: "lighthouse_view_sdk",
});

/// The host's window onto the event store (`store` in the WIT). Views usually go through
/// the [`Store`] trait instead ([`HostStore`] in the component, [`model::ModelStore`]
/// in native tests).
pub use lighthouse::fs::store;
pub use lighthouse::fs::types::{
    Attrs, AuditPage, AuditRecord, Caching, Caller, Chunk, DirEntry, Event, EventFilter,
    EventsPage, FsError, NodeKind, OpenMode, Owner, ViewInfo,
};

use exports::lighthouse::fs::view::Guest;

/// What a view implements (`view` in the WIT); export it with [`export!`].
///
/// `info`, `getattr`, `readdir` and `read` are the view's own; the rest default to a
/// read-only view of plain files: `readlink` is EINVAL (no symlinks), `open` serves
/// reads by offset and refuses writing with EROFS, `next` is EINVAL (no streams),
/// `write` and `create` are EROFS.
///
/// A view with streams answers getattr with kind [`NodeKind::Stream`]
/// ([`attrs::stream`]), `open` with [`OpenMode::Stream`] and the cursor where the log
/// starts, and `next` with the records after a cursor. `next` from a cursor it returned
/// before must render the same bytes again (the host renders old parts again from
/// cursors it kept): records in order, a past that never changes.
pub trait View {
    fn info() -> ViewInfo;
    fn getattr(c: Caller, path: String) -> Result<Attrs, FsError>;
    fn readdir(c: Caller, path: String) -> Result<Vec<DirEntry>, FsError>;
    fn read(c: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError>;

    fn readlink(_c: Caller, path: String) -> Result<String, FsError> {
        Err(error::not_a_symlink(&path))
    }
    fn open(_c: Caller, _path: String, write: bool) -> Result<OpenMode, FsError> {
        if write {
            Err(FsError::ReadOnly)
        } else {
            Ok(OpenMode::Plain)
        }
    }
    fn next(_c: Caller, path: String, _cursor: u64, _max: u32) -> Result<Chunk, FsError> {
        Err(error::invalid(format!("{path:?} is not a stream")))
    }
    fn write(_c: Caller, _path: String, _offset: u64, _data: Vec<u8>) -> Result<u32, FsError> {
        Err(FsError::ReadOnly)
    }
    fn create(_c: Caller, _path: String, _kind: NodeKind) -> Result<Attrs, FsError> {
        Err(FsError::ReadOnly)
    }
    fn remove(_c: Caller, _path: String, _dir: bool) -> Result<(), FsError> {
        Err(FsError::ReadOnly)
    }
}

/// The WIT export, for every [`View`].
impl<T: View> Guest for T {
    fn info() -> ViewInfo {
        T::info()
    }
    fn getattr(c: Caller, path: String) -> Result<Attrs, FsError> {
        T::getattr(c, path)
    }
    fn readdir(c: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        T::readdir(c, path)
    }
    fn read(c: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        T::read(c, path, offset, len)
    }
    fn readlink(c: Caller, path: String) -> Result<String, FsError> {
        T::readlink(c, path)
    }
    fn open(c: Caller, path: String, write: bool) -> Result<OpenMode, FsError> {
        T::open(c, path, write)
    }
    fn next(c: Caller, path: String, cursor: u64, max: u32) -> Result<Chunk, FsError> {
        T::next(c, path, cursor, max)
    }
    fn write(c: Caller, path: String, offset: u64, data: Vec<u8>) -> Result<u32, FsError> {
        T::write(c, path, offset, data)
    }
    fn create(c: Caller, path: String, kind: NodeKind) -> Result<Attrs, FsError> {
        T::create(c, path, kind)
    }
    fn remove(c: Caller, path: String, dir: bool) -> Result<(), FsError> {
        T::remove(c, path, dir)
    }
}

/// The ops of changes to the live tree, as the host records them (a view may not append
/// events under these names). `setxattr`/`removexattr` carry the attribute's name in
/// `path2`, `symlink` its target: neither is a path.
pub const LIVE_OPS: &[&str] = &[
    "create",
    "mkdir",
    "symlink",
    "mknod",
    "write",
    "setattr",
    "rename",
    "link",
    "unlink",
    "rmdir",
    "setxattr",
    "removexattr",
];

/// Whether an event of `op` has a tree path in `path2` (a rename or link destination).
pub fn path2_is_a_path(op: &str) -> bool {
    !matches!(op, "symlink" | "setxattr" | "removexattr")
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        EventFilter {
            prefix: None,
            ops: Vec::new(),
        }
    }

    /// Events about `prefix` or anything below it.
    pub fn under(prefix: impl Into<String>) -> Self {
        EventFilter {
            prefix: Some(prefix.into()),
            ops: Vec::new(),
        }
    }

    /// Only events with one of these ops.
    pub fn ops(mut self, ops: &[&str]) -> Self {
        self.ops = ops.iter().map(|op| op.to_string()).collect();
        self
    }

    /// Does `event` pass this filter (what the host does; for models and tests)?
    pub fn matches(&self, event: &Event) -> bool {
        let under = |p: &str, prefix: &str| {
            prefix == "/"
                || p == prefix
                || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
        };
        let op_ok = self.ops.is_empty() || self.ops.contains(&event.op);
        let path_ok = match self.prefix.as_deref().map(|p| p.trim_end_matches('/')) {
            None => true,
            Some(p) => {
                let p = if p.is_empty() { "/" } else { p };
                // path2 of a symlink is its target, not a path of the tree.
                under(&event.path, p)
                    || (path2_is_a_path(&event.op)
                        && event.path2.as_deref().is_some_and(|p2| under(p2, p)))
            }
        };
        op_ok && path_ok
    }
}

/// The libraries views commonly need, so their versions follow the SDK's.
pub use {chrono, serde, serde_json};

/// The `info` answer: `name` is the view's top-level directory; the version is the
/// calling crate's.
#[macro_export]
macro_rules! view_info {
    ($name:expr, $description:expr) => {
        $crate::ViewInfo {
            name: ::std::string::String::from($name),
            version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
            description: ::std::string::String::from($description),
        }
    };
}

/// The part of `bytes` a read of `len` bytes at `offset` returns (empty past the end).
pub fn slice_read(bytes: &[u8], offset: u64, len: u32) -> Vec<u8> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = start.saturating_add(len as usize).min(bytes.len());
    bytes[start..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_read_clamps_to_the_content() {
        assert_eq!(slice_read(b"hello", 0, 10), b"hello");
        assert_eq!(slice_read(b"hello", 1, 3), b"ell");
        assert_eq!(slice_read(b"hello", 5, 3), b"");
        assert_eq!(slice_read(b"hello", 99, 3), b"");
        assert_eq!(slice_read(b"hello", u64::MAX, u32::MAX), b"");
        assert_eq!(slice_read(b"hello", 3, 0), b"");
    }
}
