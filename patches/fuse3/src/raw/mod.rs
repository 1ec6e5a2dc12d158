//! inode based
//!
//! it is not recommend to use this inode based [`Filesystem`] first, you need to handle inode
//! allocate, recycle and sometimes map to the path, [`PathFilesystem`][crate::path::PathFilesystem]
//! helps you do those jobs so you can pay more attention to your filesystem design. However if you
//! want to control the inode or do the path<->inode map on yourself, [`Filesystem`] is the only one
//! choose.

pub use filesystem::Filesystem;
#[cfg(all(
    target_os = "linux",
    any(feature = "async-io-runtime", feature = "tokio-runtime")
))]
pub use passthrough::{BackingId, Passthrough};
pub use request::Request;
pub(crate) use session::spawn_task;
#[cfg(any(feature = "async-io-runtime", feature = "tokio-runtime"))]
pub use session::{MountHandle, Session};

pub(crate) mod abi;
mod connection;
mod filesystem;
pub mod flags;
#[cfg(all(
    target_os = "linux",
    any(feature = "async-io-runtime", feature = "tokio-runtime")
))]
mod passthrough;
pub mod reply;
mod request;
pub(crate) mod session;

pub mod prelude {
    pub use super::Filesystem;
    pub use super::Request;
    pub use super::Session;
    pub use super::reply::FileAttr;
    pub use super::reply::*;
    pub use crate::FileType;
    pub use crate::SetAttr;
    pub use crate::notify::Notify;
}
