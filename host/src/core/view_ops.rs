//! The operations of [`Fs`] on view paths (every top-level directory but `current/`).
//! Views are read-only unless a view says a path takes writes; their answers' caching
//! policy becomes the kernel's TTLs and page-cache flags. Streams are the host's
//! append-only log files ([`super::stream_log`]).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::handles::{Handle, ViewFileHandle};
use super::stream_log::{StreamKey, StreamLog};
use super::view_section::{
    attr_of, check_open, entry_of, is_view_ino, CacheTicket, Caching, Held, NodeKind, OpenMode,
    OpenedView, PageCache, ViewAttrs, ViewPath, ViewVersion, Views,
};
use super::*;
use crate::fs_err;

/// How the kernel may keep a directory's listing: across opens (`keep`), at all
/// (`cache`), and for whose sight (`ticket`, a view directory's).
pub(super) struct DirCache {
    pub keep: bool,
    pub cache: bool,
    pub ticket: Option<CacheTicket>,
}

impl DirCache {
    pub const NONE: DirCache = DirCache {
        keep: false,
        cache: false,
        ticket: None,
    };
    /// A live directory's, or `debug/`'s: every change passes through this kernel.
    pub const KEPT: DirCache = DirCache {
        keep: true,
        cache: true,
        ticket: None,
    };
}

/// Largest volatile view file a handle takes a whole copy of.
pub const MAX_SNAPSHOT: usize = 64 << 20;

impl Fs {
    fn views(&self) -> Option<&Arc<dyn Views>> {
        self.views.get()
    }

    /// The views, for a request to them: after the commits closes left due, so that a
    /// view sees every write closed before the request (`core/deferred.rs`).
    fn loaded_views(&self) -> FsResult<&Arc<dyn Views>> {
        self.settle_closes();
        self.views().ok_or(fs_err!(ENOENT, "no views are loaded"))
    }

    fn view_attr(&self, caller: &Caller, ino: Ino, vp: &ViewPath) -> FsResult<(Attr, ViewAttrs)> {
        self.view_attr_with(caller, ino, vp, None)
    }

    /// [`Self::view_attr`]; a stream's size from `log` when given (an open file's).
    fn view_attr_with(
        &self,
        caller: &Caller,
        ino: Ino,
        vp: &ViewPath,
        log: Option<Arc<Mutex<StreamLog>>>,
    ) -> FsResult<(Attr, ViewAttrs)> {
        let mut va = self.loaded_views()?.getattr(caller, vp)?;
        if va.kind == NodeKind::Stream {
            // The size is the host's: what the log renders up to its head, now.
            let log = match log {
                Some(log) => log,
                None => self.stream_log(caller, vp, None)?,
            };
            let mut log = log.lock();
            log.catch_up()?;
            va.size = log.size();
            va.mtime_ns = log.mtime();
            // Asked again on every stat, so that a poller (tail -f) sees it grow.
            va.caching = Caching::Volatile;
        }
        Ok((self.view_attr_of(ino, &va), va))
    }

    /// The log of stream `vp` for `caller`: the one kept, else a new one that starts
    /// where `opened` (or an open of the view asked now) says.
    fn stream_log(
        &self,
        caller: &Caller,
        vp: &ViewPath,
        opened: Option<&OpenedView>,
    ) -> FsResult<Arc<Mutex<StreamLog>>> {
        let sight = self
            .sights
            .of(caller.agent_name, caller.uid, caller.gid, caller.pid);
        let key = StreamKey::new(vp, caller, sight.id);
        if let Some(log) = self.stream_logs.get(&key) {
            return Ok(log);
        }
        let asked;
        let opened = match opened {
            Some(opened) => opened,
            None => {
                asked = self.loaded_views()?.open(caller, vp, false)?;
                &asked
            }
        };
        let OpenMode::Stream(start) = opened.mode else {
            return Err(fs_err!(
                EIO,
                "{}{}: getattr says stream, but open answers plain",
                vp.view,
                vp.path
            ));
        };
        let log = StreamLog::new(
            format!("{}{}", vp.view, vp.path),
            opened.version.clone(),
            *caller,
            vp.path.clone(),
            start,
            opened.attr.mtime_ns,
        );
        Ok(self.stream_logs.insert(key, log))
    }

    fn view_attr_of(&self, ino: Ino, va: &ViewAttrs) -> Attr {
        let mut attr = attr_of(ino, va, self.root_attr.uid, self.root_attr.gid);
        // A directory a view gives no time (its root before the log has an event, a
        // directory made up of names) shows the mount's start, not 1 January 1970. Files
        // keep the view's word: a history file's mtime may really be the epoch.
        if attr.kind == FileKind::Dir && va.mtime_ns == 0 {
            let start = self.root_attr.mtime;
            (attr.atime, attr.mtime, attr.ctime) = (start, start, start);
        }
        attr
    }

    /// `name` in the view directory `dir`, numbered under the view's current generation:
    /// after a hot swap a name looked up again is a new file, even in a directory an
    /// older generation listed.
    fn view_child(&self, views: &Arc<dyn Views>, dir: &ViewPath, name: &str) -> ViewPath {
        let child = dir.child(name);
        match views.generation(&dir.view) {
            Some(generation) => child.at(generation),
            None => child,
        }
    }

    /// Lookup in the mount root (a view's name) or below a view; `None` when the name
    /// belongs to the live tree. A positive answer counts one kernel lookup reference.
    pub(super) fn view_lookup(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
    ) -> FsResult<Option<Entry>> {
        let Some((entry, held)) = self.view_entry_held(caller, parent, name)? else {
            return Ok(None);
        };
        if let Some(held) = held {
            held.hand_out(entry.attr.kind);
        }
        Ok(Some(entry))
    }

    /// [`Fs::view_lookup`] without counting the reference: the entry, and the hold on its
    /// path to count it on once the kernel gets it (none for the mount root).
    pub(super) fn view_entry_held(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
    ) -> FsResult<Option<(Entry, Option<Held>)>> {
        let vp = if parent == ROOT_INO {
            if name == "current" || name == super::debug::DEBUG_DIR || name == "." || name == ".." {
                return Ok(None);
            }
            let Some(views) = self.views() else {
                return Ok(None);
            };
            let Some(generation) = views.generation(name) else {
                return Ok(None);
            };
            ViewPath::root(name.into(), generation)
        } else if is_view_ino(parent) {
            let dir = self.view_inodes.path(parent)?;
            match name {
                "." => dir,
                ".." => match dir.parent() {
                    Some(p) => p,
                    None => return Ok(Some((self.entry_for_root(), None))),
                },
                _ => self.view_child(self.loaded_views()?, &dir, name),
            }
        } else {
            return Ok(None);
        };
        let held = self.view_inodes.hold(&vp);
        let (attr, va) = self.view_attr(caller, held.ino(), &vp)?;
        let mut entry = entry_of(attr, va.caching);
        if parent == ROOT_INO {
            // A view's name and its directory stand while the view is loaded, however
            // volatile its contents: no LOOKUP and no GETATTR (the kernel's permission
            // check of the path walk) for the view's root on every path through it.
            entry.entry_ttl = self.config().entry_ttl;
            entry.attr_ttl = self.config().attr_ttl;
        }
        Ok(Some((entry, Some(held))))
    }

    fn entry_for_root(&self) -> Entry {
        entry_of(self.root_attr, Caching::Volatile)
    }

    /// getattr of a view path; `fh`, when the kernel names the open file it asks for
    /// (fstat), gives a stream the size of that file's log.
    pub(super) fn view_getattr(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: Option<u64>,
    ) -> FsResult<(Attr, Duration)> {
        let vp = self.view_inodes.path(ino)?;
        let log = fh
            .and_then(|fh| self.handles.get(fh).ok())
            .and_then(|h| match &*h {
                Handle::View(v) if v.vp == vp => v.stream.clone(),
                _ => None,
            });
        let (attr, va) = self.view_attr_with(caller, ino, &vp, log)?;
        let ttl = if &*vp.path == "/" {
            self.config().attr_ttl
        } else {
            va.caching.ttl()
        };
        Ok((attr, ttl))
    }

    pub(super) fn view_readlink(&self, caller: &Caller, ino: Ino) -> FsResult<Vec<u8>> {
        let vp = self.view_inodes.path(ino)?;
        Ok(self.loaded_views()?.readlink(caller, &vp)?.into_bytes())
    }

    pub(super) fn view_open(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let (inode, vp) = self.view_inodes.hold_ino(ino)?;
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let opened = self.loaded_views()?.open(caller, &vp, writable)?;
        let va = opened.attr;
        check_open(&va, writable)?;
        let is_stream = va.kind == NodeKind::Stream || matches!(opened.mode, OpenMode::Stream(_));
        let stream = if is_stream {
            Some(self.stream_log(caller, &vp, Some(&opened))?)
        } else {
            None
        };
        let snapshot =
            (!is_stream && !writable && va.caching != Caching::Immutable).then(|| Mutex::new(None));
        // The page cache for a file read whole by one sight at a time (see `PageCache`);
        // volatile files, streams and files open for writing always read around it.
        let sight = self
            .sights
            .of(caller.agent_name, caller.uid, caller.gid, caller.pid)
            .id;
        let cached = (!is_stream && !writable && va.caching != Caching::Volatile)
            .then(|| inode.page_cache(sight));
        let (keep_cache, page_cache) = match cached {
            Some(PageCache::Keep(t)) => (va.caching == Caching::Immutable, Some(t)),
            Some(PageCache::Fresh(t)) => (false, Some(t)),
            Some(PageCache::Bypass) | None => (false, None),
        };
        let direct_io = page_cache.is_none();
        let fh = self.handles.insert(Handle::View(ViewFileHandle {
            vp,
            inode,
            version: opened.version,
            writable,
            stream,
            snapshot,
            nonblocking: flags & libc::O_NONBLOCK != 0,
            _page_cache: page_cache,
        }));
        Ok(Opened {
            fh,
            keep_cache,
            // Content that may change under a reader has no size to trust: read it whole.
            // A stream's reads reach the host whatever the kernel's size says (at the end
            // they wait for the log to grow); its offsets are the log's, so it seeks.
            direct_io,
            noflush: true,
            cache_dir: false,
            backing: None,
        })
    }

    /// Whether the kernel may keep the listing of view directory `ino` opened by `caller`
    /// (ENOTDIR: not a directory). Only an immutable one, and like a file's pages the
    /// kept listing is one sight's at a time: a view's names may be one caller's.
    pub(super) fn view_dir_cache(&self, caller: &Caller, ino: Ino) -> FsResult<DirCache> {
        let (attr, ttl) = self.view_getattr(caller, ino, None)?;
        if attr.kind != FileKind::Dir {
            return Err(fs_err!(ENOTDIR, "not a directory"));
        }
        if ttl < Caching::Immutable.ttl() {
            return Ok(DirCache::NONE);
        }
        let (inode, _) = self.view_inodes.hold_ino(ino)?;
        let sight = self
            .sights
            .of(caller.agent_name, caller.uid, caller.gid, caller.pid)
            .id;
        Ok(match inode.page_cache(sight) {
            PageCache::Keep(t) => DirCache {
                keep: true,
                cache: true,
                ticket: Some(t),
            },
            PageCache::Fresh(t) => DirCache {
                keep: false,
                cache: true,
                ticket: Some(t),
            },
            PageCache::Bypass => DirCache::NONE,
        })
    }

    /// Create (and open, for files) a name in a view directory: the view decides.
    pub(super) fn view_create(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
        kind: FileKind,
    ) -> FsResult<Entry> {
        let views = self.loaded_views()?;
        let vp = self.view_child(views, &self.view_inodes.path(parent)?, name);
        let va = views.create(caller, &vp, kind.into())?;
        let held = self.view_inodes.hold(&vp);
        held.hand_out(va.kind.file_kind());
        self.changed(caller, || Stale::name(parent, name).into());
        Ok(entry_of(self.view_attr_of(held.ino(), &va), va.caching))
    }

    /// unlink or rmdir (`dir`) of a name in a view directory: the view decides.
    pub(super) fn view_remove(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
        dir: bool,
    ) -> FsResult<()> {
        let views = self.loaded_views()?;
        let vp = self.view_child(views, &self.view_inodes.path(parent)?, name);
        views.remove(caller, &vp, dir)?;
        self.changed(caller, || Stale::name(parent, name).into());
        Ok(())
    }

    /// setattr on a view path: a writable view file takes a truncation (O_TRUNC, `>`, with
    /// the time update that comes with it) as a no-op — what a write means is the view's
    /// business — and nothing else.
    pub(super) fn view_setattr(
        &self,
        caller: &Caller,
        ino: Ino,
        set: &SetAttr,
    ) -> FsResult<(Attr, Duration)> {
        let vp = self.view_inodes.path(ino)?;
        let (attr, va) = self.view_attr(caller, ino, &vp)?;
        let no_owner_or_mode = set.mode.is_none() && set.uid.is_none() && set.gid.is_none();
        if !(va.writable && attr.kind == FileKind::File && no_owner_or_mode) {
            return Err(fs_err!(EROFS, "attributes of a view are the view's"));
        }
        Ok((attr, va.caching.ttl()))
    }

    pub(super) fn view_read(
        &self,
        caller: &Caller,
        h: &ViewFileHandle,
        offset: u64,
        size: u32,
    ) -> FsResult<Vec<u8>> {
        let version = &h.version;
        if let Some(snapshot) = &h.snapshot {
            let mut snap = snapshot.lock();
            let data = match &*snap {
                Some(data) => data.clone(),
                None => {
                    let data = read_whole(caller, &**version, &h.vp.path)?;
                    *snap = Some(data.clone());
                    data
                }
            };
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let end = start.saturating_add(size as usize).min(data.len());
            return Ok(data[start..end].to_vec());
        }
        match &h.stream {
            Some(log) => log.lock().read(offset, size),
            None => version.read(caller, &h.vp.path, offset, size),
        }
    }

    pub(super) fn view_write(
        &self,
        caller: &Caller,
        h: &ViewFileHandle,
        offset: u64,
        data: &[u8],
    ) -> FsResult<u32> {
        if !h.writable {
            return Err(fs_err!(EBADF, "handle not open for writing"));
        }
        let written = h.version.write(caller, &h.vp.path, offset, data)?;
        self.changed(caller, || {
            // What a write means is the view's business: the whole file may change.
            vec![Stale::inode(h.inode.ino())]
        });
        Ok(written)
    }

    /// Should a read of `fh` that answered [`WOULD_BLOCK`] wait (be parked by the adapter)
    /// rather than return EAGAIN to the reader?
    pub fn read_waits(&self, fh: u64) -> bool {
        matches!(self.handles.get(fh).as_deref(), Ok(Handle::View(v)) if !v.nonblocking)
    }

    /// Names of the loaded views, for the mount root's listing.
    pub(super) fn view_names(&self) -> Vec<Arc<str>> {
        self.views().map(|v| v.names()).unwrap_or_default()
    }

    /// A view directory's listing with inode numbers, held in `held` for as long as the
    /// listing is read.
    pub(super) fn view_list(
        &self,
        caller: &Caller,
        ino: Ino,
        held: &mut Vec<Held>,
    ) -> FsResult<Arc<[DirItem]>> {
        let vp = self.view_inodes.path(ino)?;
        let views = self.loaded_views()?;
        let children = views.readdir(caller, &vp)?;
        let parent = match vp.parent() {
            Some(p) => {
                let h = self.view_inodes.hold(&p);
                let ino = h.ino();
                held.push(h);
                ino
            }
            None => ROOT_INO,
        };
        let mut items = Vec::with_capacity(children.len() + 2);
        items.push(DirItem {
            ino,
            offset: 1,
            kind: FileKind::Dir,
            name: ".".into(),
        });
        items.push(DirItem {
            ino: parent,
            offset: 2,
            kind: FileKind::Dir,
            name: "..".into(),
        });
        held.reserve(children.len());
        for entry in children.iter() {
            let child = self
                .view_inodes
                .hold(&self.view_child(views, &vp, &entry.name));
            items.push(DirItem {
                ino: child.ino(),
                offset: items.len() as u64 + 1,
                kind: entry.kind.file_kind(),
                name: entry.name.as_str().into(),
            });
            held.push(child);
        }
        Ok(Arc::from(items))
    }

    /// The entry readdirplus hands out for a listed view path (`None`: it vanished),
    /// with the hold to count the kernel's reference on once it is added (none for the
    /// mount root).
    pub(super) fn view_entry(&self, caller: &Caller, ino: Ino) -> Option<(Entry, Option<Held>)> {
        if ino == ROOT_INO {
            return Some((self.entry_for_root(), None));
        }
        let (held, vp) = self.view_inodes.hold_ino(ino).ok()?;
        let (attr, va) = self.view_attr(caller, ino, &vp).ok()?;
        Some((entry_of(attr, va.caching), Some(held)))
    }
}

/// All of a view file, in 1 MiB reads (at most [`MAX_SNAPSHOT`]).
fn read_whole(caller: &Caller, version: &dyn ViewVersion, path: &str) -> FsResult<Arc<[u8]>> {
    const PIECE: u32 = 1 << 20;
    let mut data = Vec::new();
    loop {
        let part = version.read(caller, path, data.len() as u64, PIECE)?;
        let short = part.len() < PIECE as usize;
        data.extend_from_slice(&part);
        if short {
            return Ok(data.into());
        }
        if data.len() >= MAX_SNAPSHOT {
            return Err(fs_err!(EFBIG, "a volatile view file larger than 64 MiB"));
        }
    }
}
