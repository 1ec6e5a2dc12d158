//! The view section of the mount: every top-level directory but `current/` belongs to a
//! view, which answers for the paths below it. The core gives view paths stable inode
//! numbers, turns a view's caching policy into kernel TTLs, and keeps views read-only
//! where they say so. What a view *is* (a WebAssembly component) is not the core's
//! business: it sees the [`Views`] trait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::{Attr, Caller, Entry, FileKind, FsResult, Ino, TimeNs};
use crate::fs_err;

/// Inode numbers of view paths start here, far above any live-tree inode.
pub const VIEW_INO_BASE: Ino = 1 << 48;

/// How long an answer may be kept (the view decides, per answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Ask again every time.
    Volatile,
    Millis(u32),
    /// Never changes while this version of the view is loaded.
    Immutable,
}

impl Caching {
    /// The kernel TTL for this policy. "Immutable" is bounded all the same, so that a view
    /// replaced by a new version is asked again within the hour even without notify.
    pub fn ttl(self) -> Duration {
        match self {
            Caching::Volatile => Duration::ZERO,
            Caching::Millis(ms) => Duration::from_millis(ms.into()),
            Caching::Immutable => Duration::from_secs(3600),
        }
    }
}

/// A view's answer to getattr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewAttr {
    pub kind: FileKind,
    /// A stream (`kind` is then `File`): an append-only log the host serves from the
    /// view's `open` and `next` (see [`super::stream_log`]); `size` is not the view's.
    pub stream: bool,
    pub size: u64,
    pub mtime: TimeNs,
    pub perm: u32,
    pub writable: bool,
    pub caching: Caching,
}

/// One loaded view, as `debug/views.json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ViewStatus {
    /// Its top-level directory.
    pub name: String,
    pub version: String,
    pub description: String,
    /// Unique per load; a view loaded again (hot swap) has a larger one.
    pub generation: u64,
    /// Where it was loaded from (a file, or the built-in it is).
    pub origin: String,
    /// The last fault (trap, timeout, memory cap, bad answer) of this generation.
    pub last_error: Option<String>,
    /// Faults of this generation.
    pub faults: u64,
    /// Instances idle in its pool.
    pub idle_instances: usize,
}

/// What the core needs of the loaded views.
///
/// A view is served in *generations*: each load of a component (a hot swap) is a new
/// one. Inode numbers carry the generation they were handed out under, so that after a
/// swap the kernel sees new files, as after a rename over the old ones: a file opened
/// before the swap keeps reading the version it was opened on (its [`ViewVersion`]),
/// to the end and with the size it had, and never a mix of two versions.
pub trait Views: Send + Sync {
    /// Names of the loaded views (their top-level directories), sorted.
    fn names(&self) -> Vec<Arc<str>>;
    /// The generation serving `view` now (`None`: no such view).
    fn generation(&self, view: &str) -> Option<u64>;
    /// The loaded views with their versions, generations and faults, sorted by name.
    fn status(&self) -> Vec<ViewStatus>;
    /// How the host's cache of answers views declared immutable serves (none: no cache).
    fn answer_cache(&self) -> Option<AnswerCacheFigures> {
        None
    }
    /// Components that were offered and refused (a broken new version, a bad file), for
    /// `debug/views.json`.
    fn refused(&self) -> Vec<RefusedView> {
        Vec::new()
    }
    // The calls below answer from `at.generation` while that generation is still loaded
    // (an open file holds it), else from the current one.
    fn getattr(&self, caller: &Caller, at: &ViewPath) -> FsResult<ViewAttr>;
    fn readdir(&self, caller: &Caller, at: &ViewPath) -> FsResult<Vec<(Arc<str>, FileKind)>>;
    fn readlink(&self, caller: &Caller, at: &ViewPath) -> FsResult<String>;
    /// Create a file (`FileKind::File`) or directory at `at`.
    fn create(&self, caller: &Caller, at: &ViewPath, kind: FileKind) -> FsResult<ViewAttr>;
    /// Remove the name `at` (`dir`: rmdir), as the view decides.
    fn remove(&self, caller: &Caller, at: &ViewPath, dir: bool) -> FsResult<()>;
    /// Open `at` on exactly its generation (`write`: for writing): ESTALE when that
    /// generation is gone, which makes the kernel look the path up again and so find the
    /// current one.
    fn open(&self, caller: &Caller, at: &ViewPath, write: bool) -> FsResult<OpenedView>;
}

/// Whether a file of these attributes may be opened so (`write`: for writing): what a
/// [`Views::open`] checks before it asks the view.
pub fn check_open(attr: &ViewAttr, write: bool) -> FsResult<()> {
    if attr.kind == FileKind::Dir {
        return Err(fs_err!(EISDIR, "is a directory"));
    }
    if write && !attr.writable {
        return Err(fs_err!(EROFS, "this view is read-only"));
    }
    Ok(())
}

/// A view file opened on one generation of its view.
pub struct OpenedView {
    /// Its attributes in that generation.
    pub attr: ViewAttr,
    pub mode: ViewOpen,
    pub version: Arc<dyn ViewVersion>,
}

/// One generation of a view, held by the files opened on it: their reads, writes and
/// stream chunks go to it even after a newer generation has replaced it.
pub trait ViewVersion: Send + Sync {
    fn read(&self, caller: &Caller, path: &str, offset: u64, len: u32) -> FsResult<Vec<u8>>;
    fn write(&self, caller: &Caller, path: &str, offset: u64, data: &[u8]) -> FsResult<u32>;
    /// The next chunk of a stream from `cursor` (`max`: a hint of the bytes wanted).
    /// From a cursor it returned before, it renders the same bytes again.
    fn next(&self, caller: &Caller, path: &str, cursor: u64, max: u32) -> FsResult<ViewChunk>;
}

/// A component the host was offered and did not load: the version before it (if any)
/// keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefusedView {
    /// Where it came from.
    pub origin: String,
    /// The view it was to replace, when known.
    pub view: Option<String>,
    pub error: String,
    /// When it was refused (ns since the epoch).
    pub at_ns: i64,
}

/// The view host's cache of immutable answers, for `debug/cache_stats.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnswerCacheFigures {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub entries: u64,
    pub bytes: u64,
    pub capacity_bytes: u64,
}

/// How an opened view file is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewOpen {
    /// Reads by offset.
    Plain,
    /// A stream whose log starts at this cursor (see [`ViewChunk`]).
    Stream(u64),
}

/// The next part of a stream: whole records (empty: nothing new yet), where to go on
/// from, the time of its newest record, and whether the stream has ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewChunk {
    pub data: Vec<u8>,
    pub cursor: u64,
    pub time_ns: TimeNs,
    pub end: bool,
}

/// A view path: which view, the generation it was numbered under, and the path inside
/// the view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ViewPath {
    pub view: Arc<str>,
    pub generation: u64,
    pub path: Arc<str>,
}

impl ViewPath {
    /// The root directory of `view` in `generation`.
    pub fn root(view: Arc<str>, generation: u64) -> ViewPath {
        ViewPath {
            view,
            generation,
            path: "/".into(),
        }
    }

    /// The same path in another generation.
    pub fn at(self, generation: u64) -> ViewPath {
        ViewPath { generation, ..self }
    }

    /// `name` in this directory (same generation).
    pub fn child(&self, name: &str) -> ViewPath {
        let path = if &*self.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.path)
        };
        ViewPath {
            view: self.view.clone(),
            generation: self.generation,
            path: path.into(),
        }
    }

    pub fn parent(&self) -> Option<ViewPath> {
        if &*self.path == "/" {
            return None;
        }
        let cut = self.path.rfind('/').unwrap_or(0);
        let parent = if cut == 0 { "/" } else { &self.path[..cut] };
        Some(ViewPath {
            view: self.view.clone(),
            generation: self.generation,
            path: parent.into(),
        })
    }
}

/// Stable inode numbers for view paths, for the life of the mount. Numbers are never
/// reused, so a kernel holding an old number gets ESTALE-free answers for the same path.
#[derive(Default)]
pub struct ViewInodes {
    next: AtomicU64,
    map: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    by_path: FxHashMap<ViewPath, Ino>,
    by_ino: FxHashMap<Ino, ViewPath>,
    /// Whether each inode the kernel was given was a directory when it got it (the kernel
    /// never changes an inode's type: only these may be named as parents in a notify).
    given_as_dir: FxHashMap<Ino, bool>,
}

impl ViewInodes {
    pub fn ino(&self, vp: &ViewPath) -> Ino {
        if let Some(&ino) = self.map.read().by_path.get(vp) {
            return ino;
        }
        let mut m = self.map.write();
        if let Some(&ino) = m.by_path.get(vp) {
            return ino;
        }
        let ino = VIEW_INO_BASE + self.next.fetch_add(1, Ordering::Relaxed);
        m.by_path.insert(vp.clone(), ino);
        m.by_ino.insert(ino, vp.clone());
        ino
    }

    /// The view `ino` belongs to.
    pub fn view_of(&self, ino: Ino) -> Option<Arc<str>> {
        self.map.read().by_ino.get(&ino).map(|vp| vp.view.clone())
    }

    /// The kernel was handed an entry for `ino` of this kind (the first one counts).
    pub fn handed_out(&self, ino: Ino, kind: FileKind) {
        if self.map.read().given_as_dir.contains_key(&ino) {
            return;
        }
        let mut m = self.map.write();
        m.given_as_dir.entry(ino).or_insert(kind == FileKind::Dir);
    }

    /// Was `ino` a directory when the kernel first got it?
    pub fn is_dir(&self, ino: Ino) -> bool {
        self.map.read().given_as_dir.get(&ino) == Some(&true)
    }

    /// The numbered paths of `view`, in every generation (to tell the kernel to forget
    /// them after a swap).
    pub fn of_view(&self, view: &str) -> Vec<(Ino, ViewPath)> {
        self.map
            .read()
            .by_ino
            .iter()
            .filter(|(_, vp)| &*vp.view == view)
            .map(|(&ino, vp)| (ino, vp.clone()))
            .collect()
    }

    /// View paths numbered so far (numbers are kept for the life of the mount).
    pub fn len(&self) -> usize {
        self.map.read().by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn path(&self, ino: Ino) -> FsResult<ViewPath> {
        self.map
            .read()
            .by_ino
            .get(&ino)
            .cloned()
            .ok_or(fs_err!(ESTALE, "unknown view inode"))
    }
}

pub fn is_view_ino(ino: Ino) -> bool {
    ino >= VIEW_INO_BASE
}

/// Attributes of a view path as `stat` shows them: owned by the mounting user, read-only
/// unless the view says it takes writes.
pub fn attr_of(ino: Ino, a: &ViewAttr, uid: u32, gid: u32) -> Attr {
    let perm = if a.writable {
        a.perm & 0o777
    } else {
        a.perm & 0o555
    };
    Attr {
        ino,
        kind: a.kind,
        perm,
        nlink: if a.kind == FileKind::Dir { 2 } else { 1 },
        uid,
        gid,
        size: a.size,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        rdev: 0,
    }
}

/// The entry for a view path: TTLs follow the view's caching policy.
pub fn entry_of(attr: Attr, caching: Caching) -> Entry {
    let ttl = caching.ttl();
    Entry {
        attr,
        entry_ttl: ttl,
        attr_ttl: ttl,
        generation: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_paths_have_stable_inodes_and_parents() {
        let inodes = ViewInodes::default();
        let root = ViewPath::root("history".into(), 1);
        let a = root.child("@3").child("src");
        assert_eq!(&*a.path, "/@3/src");
        assert_eq!(a.parent().unwrap().parent().unwrap(), root);
        assert!(root.parent().is_none());
        let ino = inodes.ino(&a);
        assert!(is_view_ino(ino));
        assert_eq!(inodes.ino(&a), ino);
        assert_ne!(inodes.ino(&root), ino);
        assert_eq!(inodes.path(ino).unwrap(), a);
        assert_eq!(inodes.path(5).unwrap_err().errno, libc::ESTALE);
        // Another generation of the same path is another file.
        let again = a.clone().at(2);
        assert_ne!(inodes.ino(&again), ino);
        assert_eq!(inodes.of_view("history").len(), 3);
        assert!(inodes.of_view("other").is_empty());
    }

    #[test]
    fn read_only_views_lose_write_bits() {
        let a = ViewAttr {
            kind: FileKind::File,
            stream: false,
            size: 3,
            mtime: 7,
            perm: 0o666,
            writable: false,
            caching: Caching::Immutable,
        };
        assert_eq!(attr_of(VIEW_INO_BASE, &a, 0, 0).perm, 0o444);
        assert_eq!(
            entry_of(attr_of(VIEW_INO_BASE, &a, 0, 0), a.caching).entry_ttl,
            Duration::from_secs(3600)
        );
    }
}
