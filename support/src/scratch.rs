//! Scratch space: canonical temp dirs, and [`Tmpfs`], a fresh tmpfs (the tests'
//! reference filesystem; the benchmark's scratch for stores and the tmpfs target).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::mounts::{detach_all, is_mounted};

/// A temp dir with a canonical path (mount points are matched against mountinfo).
pub fn temp_dir(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir");
    let p = t.path().canonicalize().unwrap();
    (t, p)
}

/// A fresh tmpfs (nosuid, nodev, mode 0755) mounted in a temp dir; lazily unmounted on
/// drop, also on panic (the temp dir is leaked rather than removed through a mount that
/// would not go).
pub struct Tmpfs {
    path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Tmpfs {
    pub fn new() -> Tmpfs {
        Self::with_size("4g")
    }

    /// A tmpfs of `size` (`48m`, `75%`): a filesystem that fills up. Panics if it cannot
    /// be mounted (see [`Tmpfs::mount`]).
    pub fn with_size(size: &str) -> Tmpfs {
        Self::mount(size).expect("mount tmpfs (needs root)")
    }

    /// A tmpfs of `size`, or why it could not be mounted (it needs root).
    pub fn mount(size: &str) -> io::Result<Tmpfs> {
        let (tmp, path) = temp_dir("lhfs-tmpfs-");
        mount(
            Some("tmpfs"),
            &path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("mode=0755,size={size}").as_str()),
        )?;
        Ok(Tmpfs {
            path,
            _tmp: Some(tmp),
        })
    }

    /// Grow (or shrink) it in place, as `mount -o remount,size=SIZE` does.
    pub fn resize(&self, size: &str) {
        mount(
            None::<&str>,
            &self.path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={size}").as_str()),
        )
        .expect("remount tmpfs");
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for Tmpfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        detach_all(&self.path);
        if is_mounted(&self.path) {
            if let Some(t) = self._tmp.take() {
                std::mem::forget(t);
            }
        }
    }
}
