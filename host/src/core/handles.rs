//! Open file and directory handles (the `fh` of FUSE requests).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use super::view_section::Held;
use super::{DirItem, FsResult, Ino};
use crate::fs_err;
use crate::store::Content;

pub enum Handle {
    File(FileHandle),
    Dir(DirHandle),
    View(super::view_ops::ViewFileHandle),
    Debug(super::debug::DebugFileHandle),
    Auth(super::auth_file::AuthFileHandle),
}

pub struct FileHandle {
    pub ino: Ino,
    pub content: Arc<Content>,
    pub writable: bool,
    pub readable: bool,
    pub append: bool,
}

pub struct DirHandle {
    pub ino: Ino,
    /// The listing taken at the first `readdir` from offset 0: later pages come from the
    /// same snapshot, so entries are neither skipped nor repeated while the directory
    /// changes underneath a reader.
    pub listing: Mutex<Option<Listing>>,
}

/// A directory's listing as a handle keeps it.
pub struct Listing {
    pub items: Arc<[DirItem]>,
    /// The view paths it names, held so their numbers stand while it is read (released
    /// with the handle or the next listing).
    pub _held: Vec<Held>,
}

#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
    /// Bounded by the kernel's open files (each is released by RELEASE/RELEASEDIR).
    map: RwLock<FxHashMap<u64, Arc<Handle>>>,
}

impl Handles {
    pub fn insert(&self, h: Handle) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.map.write().insert(fh, Arc::new(h));
        fh
    }

    pub fn get(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.map
            .read()
            .get(&fh)
            .cloned()
            .ok_or(fs_err!(EBADF, "unknown file handle"))
    }

    pub fn file(&self, fh: u64) -> FsResult<Arc<Handle>> {
        let h = self.get(fh)?;
        match &*h {
            Handle::File(_) => Ok(h),
            Handle::Dir(_) => Err(fs_err!(EISDIR, "file operation on a directory handle")),
            Handle::View(_) | Handle::Debug(_) | Handle::Auth(_) => {
                Err(fs_err!(EROFS, "not a file of the live tree"))
            }
        }
    }

    pub fn remove(&self, fh: u64) -> Option<Arc<Handle>> {
        self.map.write().remove(&fh)
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Open handles by kind (walks the table under its read lock).
    pub fn census(&self) -> HandleCensus {
        let mut c = HandleCensus::default();
        for h in self.map.read().values() {
            c.total += 1;
            match &**h {
                Handle::File(f) => {
                    c.files += 1;
                    c.writable += usize::from(f.writable);
                }
                Handle::Dir(_) => c.dirs += 1,
                Handle::View(_) => c.views += 1,
                Handle::Debug(_) | Handle::Auth(_) => c.debug += 1,
            }
        }
        c
    }
}

/// Open handles by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HandleCensus {
    pub total: usize,
    /// Files of the live tree, and how many of them are open for writing.
    pub files: usize,
    pub writable: usize,
    pub dirs: usize,
    /// Files of views.
    pub views: usize,
    /// Files of `debug/`.
    pub debug: usize,
}

impl Handle {
    pub fn as_file(&self) -> &FileHandle {
        match self {
            Handle::File(f) => f,
            Handle::Dir(_) | Handle::View(_) | Handle::Debug(_) | Handle::Auth(_) => {
                unreachable!("checked by Handles::file")
            }
        }
    }
}
