//! The view section of the mount: every top-level directory but `current/` belongs to a
//! view, which answers for the paths below it. The core numbers view paths for as long
//! as the kernel refers to them ([`ViewInodes`]), turns a view's caching policy into
//! kernel TTLs, and keeps views read-only where they say so. What a view *is* (a
//! WebAssembly component) is not the core's business: it sees the [`Views`] trait.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::{Attr, Caller, Entry, FileKind, FsResult, Ino};
use crate::fs_err;

/// Inode numbers of view paths start here, far above any live-tree inode.
pub const VIEW_INO_BASE: Ino = 1 << 48;

pub use crate::contract::{Caching, Chunk, NodeKind, OpenMode, ViewAttrs, ViewDirEntry};

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
    fn getattr(&self, caller: &Caller, at: &ViewPath) -> FsResult<ViewAttrs>;
    fn readdir(&self, caller: &Caller, at: &ViewPath) -> FsResult<Arc<[ViewDirEntry]>>;
    fn readlink(&self, caller: &Caller, at: &ViewPath) -> FsResult<String>;
    /// Create a file or directory at `at`.
    fn create(&self, caller: &Caller, at: &ViewPath, kind: NodeKind) -> FsResult<ViewAttrs>;
    /// Remove the name `at` (`dir`: rmdir), as the view decides.
    fn remove(&self, caller: &Caller, at: &ViewPath, dir: bool) -> FsResult<()>;
    /// Open `at` on exactly its generation (`write`: for writing): ESTALE when that
    /// generation is gone, which makes the kernel look the path up again and so find the
    /// current one.
    fn open(&self, caller: &Caller, at: &ViewPath, write: bool) -> FsResult<OpenedView>;
}

/// Whether a file of these attributes may be opened so (`write`: for writing): what a
/// [`Views::open`] checks before it asks the view.
pub fn check_open(attr: &ViewAttrs, write: bool) -> FsResult<()> {
    if attr.kind == NodeKind::Directory {
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
    pub attr: ViewAttrs,
    pub mode: OpenMode,
    pub version: Arc<dyn ViewVersion>,
}

/// One generation of a view, held by the files opened on it: their reads, writes and
/// stream chunks go to it even after a newer generation has replaced it.
pub trait ViewVersion: Send + Sync {
    fn read(&self, caller: &Caller, path: &str, offset: u64, len: u32) -> FsResult<Vec<u8>>;
    fn write(&self, caller: &Caller, path: &str, offset: u64, data: &[u8]) -> FsResult<u32>;
    /// The next chunk of a stream from `cursor` (`max`: a hint of the bytes wanted).
    /// From a cursor it returned before, it renders the same bytes again.
    fn next(&self, caller: &Caller, path: &str, cursor: u64, max: u32) -> FsResult<Chunk>;
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

/// Inode numbers for view paths, kept while something refers to the path: a kernel (its
/// lookup references, FUSE's `nlookup`, summed over the mounts) or the host itself (an
/// open file, a directory listing being read, a reply being made: [`Held`]). When both
/// are gone the path is forgotten with everything kept for its number, so the table is
/// as large as what the kernels hold, not as the mount is old.
///
/// Numbers are never reused. While a kernel refers to a number it maps to the same path
/// (never ESTALE); once every kernel has forgotten it, a later lookup of the path gets a
/// new number, as a file replaced by a rename would.
#[derive(Default)]
pub struct ViewInodes {
    next: AtomicU64,
    /// Bounded by the paths the kernels and the host's handles refer to now.
    map: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    by_path: FxHashMap<ViewPath, Ino>,
    by_ino: FxHashMap<Ino, Numbered>,
}

/// One numbered path. The counts change under the map's read lock; a path is removed
/// under its write lock, once both are seen at zero there.
struct Numbered {
    vp: ViewPath,
    /// Lookup references the kernels hold (every positive LOOKUP, READDIRPLUS entry but
    /// "." and "..", CREATE and MKDIR reply counts one; FORGET drops them).
    lookups: AtomicU64,
    /// Holds of the host: open files, listings, replies being made.
    holds: AtomicU64,
    /// How a kernel first got it: [`GIVEN_NOT_YET`], [`GIVEN_FILE`] or [`GIVEN_DIR`]. The
    /// kernel never changes an inode's type: only directories may be named as parents in
    /// a notify.
    given: AtomicU8,
    /// Whose rendering the kernel's page cache of this file may hold.
    cache: parking_lot::Mutex<CacheUse>,
}

/// The page cache of a view file is one for all callers, and a view's bytes may be one
/// caller's (what the store showed it for that caller): so the pages are one sight's at
/// a time. `open` counts that sight's files open with the page cache.
#[derive(Default)]
struct CacheUse {
    sight: u64,
    open: u32,
}

/// How a view file opened by one sight may use the kernel's page cache.
pub enum PageCache {
    /// The pages are this sight's: keep them (for an immutable file).
    Keep(CacheTicket),
    /// They may be another sight's, whose files are all closed: drop them at this open
    /// (no `keep_cache`), then fill them for this one.
    Fresh(CacheTicket),
    /// Another sight has the file open with the page cache: read around it (direct I/O).
    Bypass,
}

/// A file open with the page cache; dropped with its handle.
pub struct CacheTicket {
    inodes: Arc<ViewInodes>,
    ino: Ino,
}

impl Drop for CacheTicket {
    fn drop(&mut self) {
        let m = self.inodes.map.read();
        if let Some(n) = m.by_ino.get(&self.ino) {
            let mut cache = n.cache.lock();
            cache.open = cache.open.saturating_sub(1);
        }
    }
}

const GIVEN_NOT_YET: u8 = 0;
const GIVEN_FILE: u8 = 1;
const GIVEN_DIR: u8 = 2;

/// A hold on a numbered view path: the number stays while the hold lives.
pub struct Held {
    inodes: Arc<ViewInodes>,
    ino: Ino,
}

impl Held {
    pub fn ino(&self) -> Ino {
        self.ino
    }

    /// The kernel was handed an entry for this path, of this kind: one lookup reference,
    /// dropped by [`ViewInodes::forget`].
    pub fn hand_out(&self, kind: FileKind) {
        let m = self.inodes.map.read();
        if let Some(n) = m.by_ino.get(&self.ino) {
            n.lookups.fetch_add(1, Ordering::AcqRel);
            let given = if kind == FileKind::Dir {
                GIVEN_DIR
            } else {
                GIVEN_FILE
            };
            let _ =
                n.given
                    .compare_exchange(GIVEN_NOT_YET, given, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

impl Held {
    /// How a file of this path opened by `sight` may use the page cache (see
    /// [`PageCache`]).
    pub fn page_cache(&self, sight: u64) -> PageCache {
        let m = self.inodes.map.read();
        let Some(n) = m.by_ino.get(&self.ino) else {
            return PageCache::Bypass;
        };
        let mut cache = n.cache.lock();
        if cache.open > 0 && cache.sight != sight {
            return PageCache::Bypass;
        }
        let keep = cache.sight == sight;
        cache.sight = sight;
        cache.open += 1;
        let ticket = CacheTicket {
            inodes: self.inodes.clone(),
            ino: self.ino,
        };
        if keep {
            PageCache::Keep(ticket)
        } else {
            PageCache::Fresh(ticket)
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let unreferenced = {
            let m = self.inodes.map.read();
            m.by_ino.get(&self.ino).is_some_and(|n| {
                n.holds.fetch_sub(1, Ordering::AcqRel) == 1
                    && n.lookups.load(Ordering::Acquire) == 0
            })
        };
        if unreferenced {
            self.inodes.remove_if_unreferenced(self.ino);
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Held").field(&self.ino).finish()
    }
}

/// The table's size, for `debug/cache_stats.json`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ViewInodeCounts {
    /// Paths numbered now.
    pub paths: usize,
    /// Of those, the ones a kernel refers to, and its references together.
    pub kernel_referenced: u64,
    pub kernel_refs: u64,
    /// Of those, the ones the host holds (open files, listings being read).
    pub held: u64,
}

impl ViewInodes {
    /// Hold `vp`, numbering it if it is not numbered now.
    pub fn hold(self: &Arc<Self>, vp: &ViewPath) -> Held {
        let held = |ino| Held {
            inodes: self.clone(),
            ino,
        };
        {
            let m = self.map.read();
            if let Some(&ino) = m.by_path.get(vp) {
                m.by_ino[&ino].holds.fetch_add(1, Ordering::AcqRel);
                return held(ino);
            }
        }
        let mut m = self.map.write();
        if let Some(&ino) = m.by_path.get(vp) {
            m.by_ino[&ino].holds.fetch_add(1, Ordering::AcqRel);
            return held(ino);
        }
        let ino = VIEW_INO_BASE + self.next.fetch_add(1, Ordering::Relaxed);
        m.by_path.insert(vp.clone(), ino);
        m.by_ino.insert(
            ino,
            Numbered {
                vp: vp.clone(),
                lookups: AtomicU64::new(0),
                holds: AtomicU64::new(1),
                given: AtomicU8::new(GIVEN_NOT_YET),
                cache: Default::default(),
            },
        );
        held(ino)
    }

    /// Hold the path numbered `ino` (ESTALE: not numbered now).
    pub fn hold_ino(self: &Arc<Self>, ino: Ino) -> FsResult<(Held, ViewPath)> {
        let m = self.map.read();
        let n = m
            .by_ino
            .get(&ino)
            .ok_or(fs_err!(ESTALE, "unknown view inode"))?;
        n.holds.fetch_add(1, Ordering::AcqRel);
        let held = Held {
            inodes: self.clone(),
            ino,
        };
        Ok((held, n.vp.clone()))
    }

    /// A kernel drops `nlookup` references to `ino` (FORGET): the path is forgotten when
    /// nothing refers to it any more.
    pub fn forget(&self, ino: Ino, nlookup: u64) {
        let unreferenced = {
            let m = self.map.read();
            let Some(n) = m.by_ino.get(&ino) else {
                tracing::debug!(ino, nlookup, "FORGET of a view inode not numbered");
                return;
            };
            let prev = n
                .lookups
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    Some(v.saturating_sub(nlookup))
                })
                .unwrap_or(0);
            if prev < nlookup {
                tracing::debug!(ino, nlookup, prev, "FORGET of more references than counted");
            }
            prev <= nlookup && n.holds.load(Ordering::Acquire) == 0
        };
        if unreferenced {
            self.remove_if_unreferenced(ino);
        }
    }

    /// Remove `ino` if nothing refers to it (checked again under the write lock: a
    /// lookup or hold may have come in between).
    fn remove_if_unreferenced(&self, ino: Ino) {
        let mut m = self.map.write();
        let free = m.by_ino.get(&ino).is_some_and(|n| {
            n.lookups.load(Ordering::Acquire) == 0 && n.holds.load(Ordering::Acquire) == 0
        });
        if free {
            if let Some(n) = m.by_ino.remove(&ino) {
                m.by_path.remove(&n.vp);
            }
        }
    }

    /// The number `vp` has now, if any (numbers nothing).
    pub fn find(&self, vp: &ViewPath) -> Option<Ino> {
        self.map.read().by_path.get(vp).copied()
    }

    /// The view `ino` belongs to.
    pub fn view_of(&self, ino: Ino) -> Option<Arc<str>> {
        self.map.read().by_ino.get(&ino).map(|n| n.vp.view.clone())
    }

    /// Was `ino` a directory when a kernel first got it?
    pub fn is_dir(&self, ino: Ino) -> bool {
        self.map
            .read()
            .by_ino
            .get(&ino)
            .is_some_and(|n| n.given.load(Ordering::Acquire) == GIVEN_DIR)
    }

    /// The numbered paths of `view`, in every generation (to tell the kernels to forget
    /// them after a swap: a kernel holds no other).
    pub fn of_view(&self, view: &str) -> Vec<(Ino, ViewPath)> {
        self.map
            .read()
            .by_ino
            .iter()
            .filter(|(_, n)| &*n.vp.view == view)
            .map(|(&ino, n)| (ino, n.vp.clone()))
            .collect()
    }

    /// View paths numbered now.
    pub fn len(&self) -> usize {
        self.map.read().by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table's size and references (walks it under the read lock).
    pub fn counts(&self) -> ViewInodeCounts {
        let m = self.map.read();
        let mut c = ViewInodeCounts {
            paths: m.by_ino.len(),
            ..ViewInodeCounts::default()
        };
        for n in m.by_ino.values() {
            let lookups = n.lookups.load(Ordering::Relaxed);
            c.kernel_referenced += u64::from(lookups > 0);
            c.kernel_refs += lookups;
            c.held += u64::from(n.holds.load(Ordering::Relaxed) > 0);
        }
        c
    }

    pub fn path(&self, ino: Ino) -> FsResult<ViewPath> {
        self.map
            .read()
            .by_ino
            .get(&ino)
            .map(|n| n.vp.clone())
            .ok_or(fs_err!(ESTALE, "unknown view inode"))
    }
}

pub fn is_view_ino(ino: Ino) -> bool {
    ino >= VIEW_INO_BASE
}

/// Attributes of a view path as `stat` shows them: owned by the owner the view names, else
/// by the mounting user, read-only unless the view says it takes writes.
pub fn attr_of(ino: Ino, a: &ViewAttrs, uid: u32, gid: u32) -> Attr {
    let (uid, gid) = a.owner.unwrap_or((uid, gid));
    let perm = u32::from(a.perm) & if a.writable { 0o777 } else { 0o555 };
    let kind = a.kind.file_kind();
    Attr {
        ino,
        kind,
        perm,
        nlink: if kind == FileKind::Dir { 2 } else { 1 },
        uid,
        gid,
        size: a.size,
        atime: a.mtime_ns,
        mtime: a.mtime_ns,
        ctime: a.mtime_ns,
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
        let inodes = Arc::new(ViewInodes::default());
        let root = ViewPath::root("history".into(), 1);
        let a = root.child("@3").child("src");
        assert_eq!(&*a.path, "/@3/src");
        assert_eq!(a.parent().unwrap().parent().unwrap(), root);
        assert!(root.parent().is_none());
        let held = inodes.hold(&a);
        let ino = held.ino();
        assert!(is_view_ino(ino));
        assert_eq!(inodes.hold(&a).ino(), ino);
        let held_root = inodes.hold(&root);
        assert_ne!(held_root.ino(), ino);
        assert_eq!(inodes.path(ino).unwrap(), a);
        assert_eq!(inodes.path(5).unwrap_err().errno, libc::ESTALE);
        // Another generation of the same path is another file.
        let again = inodes.hold(&a.clone().at(2));
        assert_ne!(again.ino(), ino);
        assert_eq!(inodes.of_view("history").len(), 3);
        assert!(inodes.of_view("other").is_empty());
    }

    #[test]
    fn a_path_is_kept_while_referenced_and_its_number_never_reused() {
        let inodes = Arc::new(ViewInodes::default());
        let a = ViewPath::root("history".into(), 1).child("a");
        // Numbered for a reply that failed: nothing kept.
        let ino = inodes.hold(&a).ino();
        assert!(inodes.is_empty());
        assert_eq!(inodes.path(ino).unwrap_err().errno, libc::ESTALE);

        // Handed out twice (a lookup, a readdirplus entry) as a directory.
        let first = inodes.hold(&a);
        let ino = first.ino();
        first.hand_out(FileKind::Dir);
        drop(first);
        inodes.hold(&a).hand_out(FileKind::File);
        assert!(inodes.is_dir(ino), "the first kind given counts");
        let c = inodes.counts();
        assert_eq!(
            (c.paths, c.kernel_referenced, c.kernel_refs, c.held),
            (1, 1, 2, 0)
        );
        inodes.forget(ino, 1);
        assert_eq!(inodes.path(ino).unwrap(), a, "still referenced once");
        // An open file holds it past the kernel's last reference.
        let (open, vp) = inodes.hold_ino(ino).unwrap();
        assert_eq!(vp, a);
        inodes.forget(ino, 1);
        assert_eq!(inodes.path(ino).unwrap(), a, "held by the open file");
        assert_eq!(inodes.counts().held, 1);
        drop(open);
        assert_eq!(inodes.path(ino).unwrap_err().errno, libc::ESTALE);
        assert!(!inodes.is_dir(ino), "its kind goes with it");
        assert!(inodes.is_empty() && inodes.of_view("history").is_empty());
        assert!(inodes.hold_ino(ino).is_err());
        // More FORGETs than counted, or of unknown numbers, change nothing.
        inodes.forget(ino, 3);

        // Looked up again: a new number.
        let b = inodes.hold(&a);
        assert!(b.ino() > ino);
        b.hand_out(FileKind::File);
        assert_eq!(inodes.find(&a), Some(b.ino()));
        drop(b);
        assert_eq!(inodes.len(), 1, "kept for the kernel's reference");
    }

    #[test]
    fn read_only_views_lose_write_bits() {
        let a = ViewAttrs {
            kind: NodeKind::File,
            size: 3,
            mtime_ns: 7,
            perm: 0o666,
            writable: false,
            caching: Caching::Immutable,
            owner: None,
        };
        assert_eq!(attr_of(VIEW_INO_BASE, &a, 0, 0).perm, 0o444);
        assert_eq!(
            entry_of(attr_of(VIEW_INO_BASE, &a, 0, 0), a.caching).entry_ttl,
            std::time::Duration::from_secs(3600)
        );
    }
}
