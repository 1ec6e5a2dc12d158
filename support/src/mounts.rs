//! The mount table, read from `/proc/self/mountinfo` (never touching the mounts
//! themselves, so it cannot hang on a stuck FUSE server), and ways to take mounts away.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sys::{check, cpath};

#[derive(Debug, Clone)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// userspace-style "major:minor" as in mountinfo.
    pub major: u64,
    pub minor: u64,
    pub fstype: String,
}

impl MountEntry {
    pub fn kernel_dev(&self) -> u64 {
        (self.major << 20) | self.minor
    }
}

fn unescape_mountinfo(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// Parsed /proc/self/mountinfo (never touches the mounts themselves, so it cannot hang
/// on a stuck FUSE server).
pub fn mounts() -> Vec<MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 7 {
            continue;
        }
        let (maj, min) = fields[2].split_once(':').unwrap_or(("0", "0"));
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .unwrap_or(fields.len() - 1);
        out.push(MountEntry {
            mount_point: unescape_mountinfo(fields[4]),
            major: maj.parse().unwrap_or(0),
            minor: min.parse().unwrap_or(0),
            fstype: fields.get(sep + 1).unwrap_or(&"").to_string(),
        });
    }
    out
}

pub fn mounts_at(p: &Path) -> Vec<MountEntry> {
    mounts()
        .into_iter()
        .filter(|m| m.mount_point == p)
        .collect()
}

pub fn is_mounted(p: &Path) -> bool {
    !mounts_at(p).is_empty()
}

/// All FUSE mounts (type fuse or fuse.*) currently in the mount table.
pub fn fuse_mounts() -> Vec<MountEntry> {
    mounts()
        .into_iter()
        .filter(|m| m.fstype == "fuse" || m.fstype.starts_with("fuse."))
        .collect()
}

pub fn umount_lazy(p: &Path) -> io::Result<()> {
    let c = cpath(p);
    check(unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) }).map(|_| ())
}

/// Lazily unmount every mount at `p` (whatever it is). Used by cleanup guards.
pub fn detach_all(p: &Path) {
    for _ in 0..8 {
        if !is_mounted(p) {
            return;
        }
        if umount_lazy(p).is_err() {
            return;
        }
    }
}

/// Make sure fusectl is mounted so connections can be aborted.
fn ensure_fusectl() {
    let dir = Path::new("/sys/fs/fuse/connections");
    if dir.exists() && !is_mounted(dir) {
        let _ = Command::new("mount")
            .args(["-t", "fusectl", "fusectl"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Abort a FUSE connection by its kernel dev number: every pending and future request
/// fails with ENOTCONN at once.
pub fn abort_fuse_connection(kdev: u64) {
    ensure_fusectl();
    let p = format!("/sys/fs/fuse/connections/{kdev}/abort");
    let _ = std::fs::write(p, b"1");
}

/// Guard that lazily unmounts whatever is mounted at a path when dropped.
pub struct DetachOnDrop(pub PathBuf);
impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        for m in mounts_at(&self.0) {
            if m.fstype == "fuse" || m.fstype.starts_with("fuse.") {
                abort_fuse_connection(m.kernel_dev());
            }
        }
        detach_all(&self.0);
    }
}
