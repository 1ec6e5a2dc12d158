//! Telling the kernel to forget what it cached (FUSE notify), for changes it cannot see
//! coming: a view replaced by a hot swap, or a change made through another mount of the
//! same filesystem (see [`super::mounts`]). Each adapter gives its [`super::Mount`] a
//! [`KernelCache`] once the mount is live.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use super::view_section::ViewPath;
use super::{Fs, Ino, ROOT_INO};

/// What an adapter can ask of the kernel. Both calls return once the kernel has done it
/// (or, on fuse3, once it is queued ahead of any later reply); a name or inode the kernel
/// does not hold is not an error.
pub trait KernelCache: Send + Sync {
    /// Forget the name `name` in directory `parent` (FUSE_NOTIFY_INVAL_ENTRY): the next
    /// path walk through it looks it up again.
    fn forget_entry(&self, parent: Ino, name: &str) -> io::Result<()>;

    /// Forget the attributes of `ino`, and its cached pages from `offset` for `len` bytes
    /// (`len` 0: to the end; a negative `offset`: attributes only)
    /// (FUSE_NOTIFY_INVAL_INODE).
    fn forget_inode(&self, ino: Ino, offset: i64, len: i64) -> io::Result<()>;
}

/// What [`Fs::forget_view`] told the kernel.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// Names the kernel was told to forget.
    pub entries: usize,
    /// Of those, names it refused to forget (logged).
    pub failed: usize,
}

impl Fs {
    /// A view was loaded, replaced or removed: make every mount's kernel forget every name of it
    /// that it may hold — its directory in the root and every name below, under
    /// directories of every generation — so the next path walk finds the view as it is
    /// now. Inodes are left alone: a file opened on the old generation keeps its size and
    /// pages (see [`super::view_section::Views`]).
    pub fn forget_view(&self, view: &str) -> Forgotten {
        // Logs rendered by a generation gone from the mount go too (open files keep
        // theirs); a stream opened from now on gets a log of the new one.
        let current = self.views.get().and_then(|v| v.generation(view));
        self.stream_logs.drop_old(view, current);
        let kernels: Vec<Arc<dyn KernelCache>> =
            self.mounts().iter().filter_map(|m| m.kernel()).collect();
        let mut out = Forgotten::default();
        if kernels.is_empty() {
            return out;
        }
        let mut forget = |parent: Ino, name: &str| {
            for kernel in &kernels {
                out.entries += 1;
                if let Err(e) = kernel.forget_entry(parent, name) {
                    out.failed += 1;
                    tracing::debug!(view, parent, name, error = %e, "the kernel kept an entry");
                }
            }
        };
        forget(ROOT_INO, view);
        let numbered = self.view_inodes.of_view(view);
        // Directories by path: a name below a path is forgotten under each of them.
        let mut dirs: HashMap<&str, Vec<Ino>> = HashMap::new();
        for (ino, vp) in &numbered {
            if self.view_inodes.is_dir(*ino) {
                dirs.entry(&vp.path).or_default().push(*ino);
            }
        }
        let mut names: Vec<(&str, &str)> = numbered
            .iter()
            .filter_map(|(_, vp)| split_path(vp))
            .collect();
        names.sort_unstable();
        names.dedup();
        for (parent, name) in names {
            for &dir in dirs.get(parent).into_iter().flatten() {
                forget(dir, name);
            }
        }
        out
    }
}

/// (parent path, name) of a view path; `None` for the view's root.
fn split_path(vp: &ViewPath) -> Option<(&str, &str)> {
    let path: &str = &vp.path;
    if path == "/" {
        return None;
    }
    let cut = path.rfind('/')?;
    let parent = if cut == 0 { "/" } else { &path[..cut] };
    Some((parent, &path[cut + 1..]))
}
