//! FUSE passthrough (Linux 6.9+, protocol 7.40): the kernel reads and writes an open file
//! through a backing file the filesystem registered, without READ or WRITE requests.
//!
//! The filesystem asks for it in its INIT reply ([`ReplyInit::max_stack_depth`]); when the
//! kernel grants it, [`Notify::passthrough`] gives a [`Passthrough`] that registers backing
//! files on the session's /dev/fuse connection, and an open or create reply names one
//! ([`ReplyOpen::passthrough`], [`ReplyCreated::passthrough`]).
//!
//! [`ReplyInit::max_stack_depth`]: crate::raw::reply::ReplyInit::max_stack_depth
//! [`Notify::passthrough`]: crate::notify::Notify::passthrough
//! [`ReplyOpen::passthrough`]: crate::raw::reply::ReplyOpen::passthrough
//! [`ReplyCreated::passthrough`]: crate::raw::reply::ReplyCreated::passthrough

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Weak};

use tracing::warn;

use crate::raw::connection::FuseConnection;

/// `struct fuse_backing_map` of `FUSE_DEV_IOC_BACKING_OPEN`.
#[repr(C)]
struct fuse_backing_map {
    fd: i32,
    flags: u32,
    padding: u64,
}

const FUSE_DEV_IOC_MAGIC: u8 = 229;
const FUSE_DEV_IOC_BACKING_OPEN: u8 = 1;
const FUSE_DEV_IOC_BACKING_CLOSE: u8 = 2;

nix::ioctl_write_ptr!(
    fuse_dev_ioc_backing_open,
    FUSE_DEV_IOC_MAGIC,
    FUSE_DEV_IOC_BACKING_OPEN,
    fuse_backing_map
);

nix::ioctl_write_ptr!(
    fuse_dev_ioc_backing_close,
    FUSE_DEV_IOC_MAGIC,
    FUSE_DEV_IOC_BACKING_CLOSE,
    u32
);

/// Registers backing files on a session's /dev/fuse connection, once the kernel granted
/// passthrough ([`Notify::passthrough`](crate::notify::Notify::passthrough)).
///
/// It does not keep the connection open: once the session has ended, registering fails
/// with `ENOTCONN`.
#[derive(Debug, Clone)]
pub struct Passthrough {
    connection: Weak<FuseConnection>,
}

impl Passthrough {
    pub(crate) fn new(connection: &Arc<FuseConnection>) -> Self {
        Self {
            connection: Arc::downgrade(connection),
        }
    }

    /// Register `file` (open for what the kernel will do through it: read, write) as a
    /// backing file (`FUSE_DEV_IOC_BACKING_OPEN`). The kernel keeps its own reference to
    /// the file; the id stays registered until the returned [`BackingId`] is dropped.
    ///
    /// Needs `CAP_SYS_ADMIN`. Fails with `ELOOP` when `file` lies on a stack of
    /// filesystems as deep as the `max_stack_depth` the session asked for.
    pub fn open_backing(&self, file: impl AsFd) -> io::Result<BackingId> {
        let connection = self.connection()?;
        let map = fuse_backing_map {
            fd: file.as_fd().as_raw_fd(),
            flags: 0,
            padding: 0,
        };
        // SAFETY: the ioctl reads one `fuse_backing_map`, which outlives the call.
        let id = unsafe { fuse_dev_ioc_backing_open(connection.as_fd().as_raw_fd(), &map) }?;

        Ok(BackingId {
            connection: self.connection.clone(),
            id: id as u32,
        })
    }

    /// Take over a raw backing id (from [`BackingId::into_raw`]): it is closed when the
    /// returned [`BackingId`] is dropped.
    ///
    /// # Safety
    ///
    /// `id` must be registered on this session's connection, and not be closed otherwise
    /// while the returned `BackingId` lives.
    pub unsafe fn wrap_backing(&self, id: u32) -> BackingId {
        BackingId {
            connection: self.connection.clone(),
            id,
        }
    }

    fn connection(&self) -> io::Result<Arc<FuseConnection>> {
        self.connection
            .upgrade()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))
    }
}

/// A backing file registered on a session's connection: its id goes into open and create
/// replies. Dropping it unregisters the id (`FUSE_DEV_IOC_BACKING_CLOSE`); files the kernel
/// already opened through it keep the backing file.
///
/// Keep it while the inode has files open in passthrough: the kernel looks the id up only
/// after it has taken the reply, and all of an inode's open files must use one backing
/// file.
#[derive(Debug)]
pub struct BackingId {
    connection: Weak<FuseConnection>,
    id: u32,
}

impl BackingId {
    /// The id the kernel gave the backing file.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The raw id, no longer closed on drop: the caller closes it, or wraps it again
    /// ([`Passthrough::wrap_backing`]).
    pub fn into_raw(mut self) -> u32 {
        self.connection = Weak::new();
        self.id
    }
}

impl Drop for BackingId {
    fn drop(&mut self) {
        let Some(connection) = self.connection.upgrade() else {
            return;
        };
        // SAFETY: the ioctl reads one u32, which outlives the call.
        if let Err(err) =
            unsafe { fuse_dev_ioc_backing_close(connection.as_fd().as_raw_fd(), &self.id) }
        {
            warn!("closing backing id {} failed: {err}", self.id);
        }
    }
}
