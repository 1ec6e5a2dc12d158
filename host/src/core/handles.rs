//! Open file and directory handles (the `fh` of FUSE requests).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use super::{DirItem, FsResult, Ino};
use crate::fs_err;
use crate::store::Content;

pub enum Handle {
    File(FileHandle),
    Dir(DirHandle),
    View(super::view_ops::ViewFileHandle),
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
    pub listing: Mutex<Option<Arc<[DirItem]>>>,
}

#[derive(Default)]
pub struct Handles {
    next: AtomicU64,
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
            Handle::View(_) => Err(fs_err!(EROFS, "not a file of the live tree")),
        }
    }

    pub fn remove(&self, fh: u64) -> Option<Arc<Handle>> {
        self.map.write().remove(&fh)
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }
}

impl Handle {
    pub fn as_file(&self) -> &FileHandle {
        match self {
            Handle::File(f) => f,
            Handle::Dir(_) | Handle::View(_) => unreachable!("checked by Handles::file"),
        }
    }
}
