//! FUSE notifications written straight to the session's `/dev/fuse` descriptor, for the
//! fuse3 backend: fuse3 0.10's `Notify::invalid_entry` sends the header without the name
//! (its source says "TODO"), the kernel answers EINVAL, and fuse3 ends its session on any
//! reply error but ENOENT. The message is the kernel's `fuse_notify_inval_entry_out`
//! followed by the name and its NUL, in one write (writes to /dev/fuse are atomic, so it
//! cannot interleave with the session's replies).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::core::KernelCache;

/// `FUSE_NOTIFY_INVAL_ENTRY` (include/uapi/linux/fuse.h).
const FUSE_NOTIFY_INVAL_ENTRY: i32 = 3;
/// `fuse_out_header` (len u32, error i32, unique u64) + `fuse_notify_inval_entry_out`
/// (parent u64, namelen u32, flags u32).
const HEADER: usize = 16 + 16;

/// A duplicate of the session's descriptor, closed when dropped (the session keeps its
/// own).
pub(super) struct DevNotify {
    fd: OwnedFd,
}

impl DevNotify {
    /// Duplicates the process's one open `/dev/fuse` descriptor (the session's: a process
    /// serves one mount). An error when there is none, or more than one to choose from.
    pub fn of_this_process() -> io::Result<DevNotify> {
        let mut found: Vec<RawFd> = Vec::new();
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let entry = entry?;
            let is_fuse = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.as_os_str() == OsStr::new("/dev/fuse"));
            if let (true, Some(fd)) = (is_fuse, entry.file_name().to_str()) {
                if let Ok(fd) = fd.parse() {
                    found.push(fd);
                }
            }
        }
        let [fd] = found[..] else {
            return Err(io::Error::other(format!(
                "expected one open /dev/fuse descriptor, found {}",
                found.len()
            )));
        };
        // SAFETY: `fd` was open a moment ago and the session holds it until it ends, which
        // is after this (the session calls `ready`, which calls this, while it runs).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        // Close-on-exec: a fusermount3 started to unmount must not inherit it.
        let fd = borrowed.try_clone_to_owned()?;
        Ok(DevNotify { fd })
    }
}

impl KernelCache for DevNotify {
    fn forget_entry(&self, parent: u64, name: &str) -> io::Result<()> {
        let name = name.as_bytes();
        let len = HEADER + name.len() + 1;
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&FUSE_NOTIFY_INVAL_ENTRY.to_ne_bytes());
        msg.extend_from_slice(&0u64.to_ne_bytes()); // unique: 0 for a notification
        msg.extend_from_slice(&parent.to_ne_bytes());
        msg.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // flags
        msg.extend_from_slice(name);
        msg.push(0);
        // SAFETY: writes `msg.len()` bytes from a live buffer to a descriptor we own.
        let written = unsafe { libc::write(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
        if written >= 0 {
            return Ok(());
        }
        match io::Error::last_os_error() {
            // The kernel does not hold that name: nothing to forget.
            e if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            e => Err(e),
        }
    }
}
