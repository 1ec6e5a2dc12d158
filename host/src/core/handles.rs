//! Open file and directory handles (the `fh` of FUSE requests): the table, and what a
//! handle of each section holds. The sections' modules (live, view_ops, debug,
//! auth_file) use this one; it uses none of them, only the layers below (view_section,
//! stream_log, store).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use super::stream_log::StreamLog;
use super::view_section::{CacheTicket, Held, ViewPath, ViewVersion};
use super::{DirItem, FsResult, Ino};
use crate::fs_err;
use crate::store::Content;

/// An open handle, by the section it was opened in.
pub enum Handle {
    File(FileHandle),
    Dir(DirHandle),
    View(ViewFileHandle),
    Debug(DebugFileHandle),
    Auth(AuthFileHandle),
}

/// An open file of the live tree.
pub struct FileHandle {
    pub ino: Ino,
    pub content: Arc<Content>,
    pub writable: bool,
    pub readable: bool,
    pub append: bool,
    /// Served by FUSE passthrough (cleared when the kernel turned its backing down).
    pub passthrough: std::sync::atomic::AtomicBool,
    /// Its writes go straight to the backing (cleared as `passthrough` is).
    pub writes_unseen: std::sync::atomic::AtomicBool,
}

/// An open directory, of any section.
pub struct DirHandle {
    pub ino: Ino,
    /// The listing taken at the first `readdir` from offset 0: later pages come from the
    /// same snapshot, so entries are neither skipped nor repeated while the directory
    /// changes underneath a reader.
    pub listing: Mutex<Option<Listing>>,
    /// A view directory whose listing the kernel keeps: kept for this caller's sight (see
    /// `view_section::PageCache`).
    pub _page_cache: Option<super::view_section::CacheTicket>,
}

/// A directory's listing as a handle keeps it.
pub struct Listing {
    pub items: Arc<[DirItem]>,
    /// The view paths it names, held so their numbers stand while it is read (released
    /// with the handle or the next listing).
    pub _held: Vec<Held>,
}

/// An open view file.
pub struct ViewFileHandle {
    pub vp: ViewPath,
    /// Keeps the path's inode number while the file is open.
    pub inode: Held,
    /// The generation of the view it was opened on, which serves it to the end.
    pub version: Arc<dyn ViewVersion>,
    pub writable: bool,
    /// A stream's log (plain files have none): the one of the path and caller that
    /// opened it, kept by the handle even when the mount's cache of logs lets it go.
    pub stream: Option<Arc<Mutex<StreamLog>>>,
    /// A volatile file read through this handle: its whole content, taken at the first
    /// read, so a reader in pieces sees one document, not pieces of several.
    pub snapshot: Option<Mutex<Option<Arc<[u8]>>>>,
    /// Opened with O_NONBLOCK: a read with nothing to give answers EAGAIN instead of
    /// waiting. (From the open flags: the fuse3 crate does not pass a READ's own flags, so
    /// a later fcntl(F_SETFL) is not seen, on either backend.)
    pub nonblocking: bool,
    /// Open with the kernel's page cache (whose pages are then this caller's sight's).
    pub _page_cache: Option<CacheTicket>,
}

/// An open `debug/` file: its document as rendered at open.
pub struct DebugFileHandle {
    pub bytes: Vec<u8>,
}

/// An open `.auth`: the challenge issued at open (empty when opened write-only).
pub struct AuthFileHandle {
    pub challenge: Vec<u8>,
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
