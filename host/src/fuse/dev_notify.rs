//! FUSE notifications written straight to the session's `/dev/fuse` descriptor, for the
//! fuse3 backend: fuse3 0.10's `Notify::invalid_entry` sends the header without the name
//! (its source says "TODO"), the kernel answers EINVAL, and fuse3 ends its session on any
//! reply error but ENOENT. Each message (INVAL_ENTRY with its name and NUL, INVAL_INODE)
//! goes in one write: writes to /dev/fuse are atomic, so it cannot interleave with the
//! session's replies. fuse3 does not hand out its descriptor: [`DevNotify::of_mount`]
//! finds it among the process's.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use super::mountpoint;

use crate::core::KernelCache;

/// Notification codes (include/uapi/linux/fuse.h, `enum fuse_notify_code`).
const FUSE_NOTIFY_INVAL_INODE: i32 = 2;
const FUSE_NOTIFY_INVAL_ENTRY: i32 = 3;
/// `fuse_out_header`: len u32, error i32 (the notification code), unique u64 (0).
const OUT_HEADER: usize = 16;

/// A duplicate of the session's descriptor, closed when dropped (the session keeps its
/// own).
pub(super) struct DevNotify {
    fd: OwnedFd,
}

/// The process's open `/dev/fuse` descriptors now.
pub(super) fn fuse_fds() -> io::Result<Vec<RawFd>> {
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
    Ok(found)
}

impl DevNotify {
    /// A duplicate of the session descriptor of our mount at `mountpoint`: the descriptor
    /// whose kernel connection (`fuse_connection` in its fdinfo) is the mount's device.
    /// That tells it apart from every other mount's of the process, also a fuser
    /// session's cloned descriptors, which its threads open while this session mounts.
    /// On a kernel whose fdinfo does not name the connection: the one descriptor opened
    /// since `before` was taken (with [`fuse_fds`], just before the session mounted).
    pub fn of_mount(mountpoint: &Path, before: &[RawFd]) -> io::Result<DevNotify> {
        let device = mountpoint::device_of(mountpoint)
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::other(format!("{} is not mounted", mountpoint.display())))?;
        let mut named = false;
        for fd in fuse_fds()? {
            match connection_of(fd) {
                Some(conn) if conn == device => return DevNotify::duplicate(fd),
                Some(_) => named = true,
                None => {}
            }
        }
        if named {
            return Err(io::Error::other(format!(
                "no /dev/fuse descriptor of this process serves connection {}:{}",
                device.0, device.1
            )));
        }
        let found: Vec<RawFd> = fuse_fds()?
            .into_iter()
            .filter(|fd| !before.contains(fd))
            .collect();
        let [fd] = found[..] else {
            return Err(io::Error::other(format!(
                "expected one new /dev/fuse descriptor, found {}",
                found.len()
            )));
        };
        DevNotify::duplicate(fd)
    }

    fn duplicate(fd: RawFd) -> io::Result<DevNotify> {
        // SAFETY: `fd` was open a moment ago and the session holds it until it ends, which
        // is after this (the session calls `ready`, which calls this, while it runs).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        // Close-on-exec: a fusermount3 started to unmount must not inherit it.
        let fd = borrowed.try_clone_to_owned()?;
        Ok(DevNotify { fd })
    }
}

/// The connection `(major, minor)` a `/dev/fuse` descriptor serves, from its fdinfo
/// (`fuse_connection:`, the kernel's `dev_t` of the mount: major in the top 12 bits);
/// `None` when the kernel does not say.
fn connection_of(fd: RawFd) -> Option<(u32, u32)> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let dev: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("fuse_connection:"))?
        .trim()
        .parse()
        .ok()?;
    Some((dev >> 20, dev & 0xf_ffff))
}

/// A notification of `code` whose body `body` fills in (after the header).
fn message(code: i32, body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut msg = Vec::with_capacity(OUT_HEADER + 48);
    msg.extend_from_slice(&0u32.to_ne_bytes()); // len, set below
    msg.extend_from_slice(&code.to_ne_bytes());
    msg.extend_from_slice(&0u64.to_ne_bytes()); // unique: 0 for a notification
    body(&mut msg);
    let len = msg.len() as u32;
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

impl DevNotify {
    fn send(&self, msg: &[u8]) -> io::Result<()> {
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

impl KernelCache for DevNotify {
    fn forget_entry(&self, parent: u64, name: &str) -> io::Result<()> {
        // `fuse_notify_inval_entry_out`: parent u64, namelen u32, flags u32; then the
        // name and its NUL.
        let name = name.as_bytes();
        self.send(&message(FUSE_NOTIFY_INVAL_ENTRY, |m| {
            m.extend_from_slice(&parent.to_ne_bytes());
            m.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            m.extend_from_slice(&0u32.to_ne_bytes());
            m.extend_from_slice(name);
            m.push(0);
        }))
    }

    fn forget_inode(&self, ino: u64, offset: i64, len: i64) -> io::Result<()> {
        // `fuse_notify_inval_inode_out`: ino u64, off i64, len i64.
        self.send(&message(FUSE_NOTIFY_INVAL_INODE, |m| {
            m.extend_from_slice(&ino.to_ne_bytes());
            m.extend_from_slice(&offset.to_ne_bytes());
            m.extend_from_slice(&len.to_ne_bytes());
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_kernel_abi() {
        let m = message(FUSE_NOTIFY_INVAL_INODE, |m| {
            m.extend_from_slice(&7u64.to_ne_bytes());
            m.extend_from_slice(&(-1i64).to_ne_bytes());
            m.extend_from_slice(&0i64.to_ne_bytes());
        });
        assert_eq!(m.len(), OUT_HEADER + 24);
        assert_eq!(&m[..4], &40u32.to_ne_bytes());
        assert_eq!(&m[4..8], &2i32.to_ne_bytes());
        assert_eq!(&m[8..16], &[0; 8]);
        assert_eq!(&m[16..24], &7u64.to_ne_bytes());
    }
}
