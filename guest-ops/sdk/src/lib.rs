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
//! use lighthouse_view_sdk::{attrs, error, path, slice_read, Attrs, Caching, Caller, DirEntry};
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
//!     fn readlink(_: Caller, _: String) -> Result<String, FsError> {
//!         Err(error::invalid("not a symlink"))
//!     }
//!     fn write(_: Caller, _: String, _: u64, _: Vec<u8>) -> Result<u32, FsError> {
//!         Err(FsError::ReadOnly)
//!     }
//! }
//!
//! lighthouse_view_sdk::export!(Hello);
//! ```
//!
//! (`guest-ops/hello` is this view, using [`FixedDir`] to be shorter still.) Errors carry
//! their reason where the contract allows (`invalid`, `internal`): the host logs it. A
//! panic traps: the host drops that instance and answers EIO, so return errors instead.
//! Answers say how long they may be cached ([`Caching`]): `Immutable` only for what can
//! never change for this component version.

pub mod attrs;
pub mod error;
pub mod fixed;
pub mod json;
pub mod path;
pub mod time;

pub use fixed::FixedDir;

wit_bindgen::generate!({
    world: "view-component",
    path: "../../wit",
    additional_derives: [PartialEq, Eq],
    pub_export_macro: true,
    default_bindings_module: "lighthouse_view_sdk",
});

/// What every view implements (`view` in the WIT); export it with [`export!`].
pub use exports::lighthouse::fs::view::Guest as View;
/// The host's read-only window onto the event store (`store` in the WIT).
pub use lighthouse::fs::store;
pub use lighthouse::fs::types::{
    Attrs, Caching, Caller, DirEntry, Event, FsError, NodeKind, ViewInfo,
};

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
