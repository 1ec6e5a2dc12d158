//! [`Fs`]: the one filesystem both adapters serve. Every method takes the caller and
//! returns a typed errno on failure; none of them blocks on the kernel.
//!
//! Locking: the tree is one `RwLock` (lookups and getattr share it); a file's bytes have
//! their own mutex. Whoever needs both takes the file's mutex first, then the tree.

use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::debug::{DEBUG_DIR, DEBUG_INO};
use super::handles::{DirHandle, FileHandle, Handle, Handles, Listing};
use super::stats::CacheCounters;
use super::view_section::{self, Held, ViewInodes, Views};
use super::*;
use crate::fs_err;
use crate::policy::Access;
use crate::store::{self, Change, Content, ContentState, NewNode, Refusal, Store, Tree, NAME_MAX};

mod xattr;

/// Largest file size accepted (EFBIG beyond): far above any real file, well inside i64.
const MAX_FILE_SIZE: u64 = 1 << 50;
/// Longest symlink target, as Linux's PATH_MAX.
const PATH_MAX: usize = 4095;

pub struct Fs {
    config: FsConfig,
    store: Arc<Store>,
    tree: RwLock<Tree>,
    pub(super) handles: Handles,
    pub(super) root_attr: Attr,
    /// The views serving every top-level directory but `current/` (none until set).
    pub(super) views: OnceLock<Arc<dyn Views>>,
    pub(super) view_inodes: Arc<ViewInodes>,
    /// The logs of stream paths, per caller (see [`super::stream_log`]).
    pub(super) stream_logs: super::stream_log::StreamLogs,
    /// What the kernel is told it may cache, counted as it is answered.
    pub(super) cache: CacheCounters,
    /// The kernel mounts serving this filesystem, each with its statistics and caches.
    pub(super) mounts: super::mounts::Mounts,
    /// The policy in force (`--policy`), if any: who may do what (see [`super::access`]).
    pub(super) gate: OnceLock<Arc<super::Gate>>,
    /// What each caller may see through views (the policy's classes, the mode bits).
    pub(super) sights: Arc<super::Sights>,
    /// Reads parked by the adapters, waiting for a stream to move.
    blocked_readers: std::sync::atomic::AtomicI64,
    /// Bytes of file content committed as write events since the start.
    written_bytes: std::sync::atomic::AtomicU64,
    /// Files whose last handle closed while their content could not be committed for
    /// lack of room: committed when room comes back (or at shutdown).
    uncommitted: Mutex<Vec<Uncommitted>>,
}

/// See [`Fs::commit_uncommitted`].
struct Uncommitted {
    ino: Ino,
    content: Weak<Content>,
    caller: Caller,
}

impl Fs {
    /// Serve the tree of an opened store.
    pub fn new(opened: store::OpenedStore, config: FsConfig) -> Fs {
        let now = now_ns();
        let root_attr = Attr {
            ino: ROOT_INO,
            kind: FileKind::Dir,
            perm: 0o555,
            // 2 + its native subdirectories (current/, debug/), as directories count.
            nlink: 4,
            // SAFETY: getuid/getgid cannot fail.
            uid: unsafe { libc::geteuid() },
            gid: unsafe { libc::getegid() },
            size: 0,
            atime: now,
            mtime: now,
            ctime: now,
            rdev: 0,
        };
        Fs {
            config,
            store: Arc::new(opened.store),
            tree: RwLock::new(opened.tree),
            handles: Handles::default(),
            root_attr,
            views: OnceLock::new(),
            view_inodes: Arc::default(),
            stream_logs: Default::default(),
            cache: CacheCounters::default(),
            mounts: Default::default(),
            gate: OnceLock::new(),
            sights: Arc::default(),
            blocked_readers: 0.into(),
            written_bytes: 0.into(),
            uncommitted: Mutex::new(Vec::new()),
        }
    }

    /// A read was parked (`+1`) or answered after waiting (`-1`), as the adapters say.
    pub fn note_blocked_reader(&self, delta: i64) {
        self.blocked_readers.fetch_add(delta, Ordering::Relaxed);
    }

    /// Reads waiting for a stream to move now.
    pub fn blocked_readers(&self) -> u64 {
        self.blocked_readers.load(Ordering::Relaxed).max(0) as u64
    }

    /// Bytes of file content committed as write events since the mount started.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes.load(Ordering::Relaxed)
    }

    /// Open handles by kind.
    pub fn handle_census(&self) -> super::handles::HandleCensus {
        self.handles.census()
    }

    /// What the kernel was told it may cache, counted as it was answered.
    pub fn cache_counters(&self) -> &CacheCounters {
        &self.cache
    }

    /// Where `ino` is in the mount, for a log line: `/current/a/b`, `/history/@3/x`,
    /// `/debug/...`, or `inode N` when it is not known (any more).
    /// Inodes of the live tree now.
    pub fn live_inodes(&self) -> usize {
        self.tree.read().len()
    }

    /// View paths numbered now (kept while the kernel or the host refers to them).
    pub fn view_paths(&self) -> usize {
        self.view_inodes.len()
    }

    /// Serve `views` beside `current/` (once, before mounting).
    pub fn set_views(&self, views: Arc<dyn Views>) {
        if self.views.set(views).is_err() {
            tracing::warn!("views were already set; keeping the first");
        }
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Resolve `name` in `parent`. A missing name answers `Ok` with a negative entry
    /// (`attr.ino == 0`) so the kernel caches the miss; adapters pass it through as is.
    /// A positive answer counts one kernel lookup reference (see [`Fs::forget`]).
    pub fn lookup(&self, caller: &Caller, parent: Ino, name: &OsStr) -> FsResult<Entry> {
        self.allow(caller, Op::Lookup, parent, Some(name), Access::Read, 0)?;
        let entry = self.lookup_entry(caller, parent, component(name)?)?;
        CacheCounters::count(if entry.attr.ino == 0 {
            &self.cache.lookups_negative
        } else {
            &self.cache.lookups_positive
        });
        Ok(entry)
    }

    fn lookup_entry(&self, caller: &Caller, parent: Ino, name: &str) -> FsResult<Entry> {
        // The native sections first: no view can shadow them.
        if let Some(entry) = self.debug_lookup(parent, name)? {
            return Ok(entry);
        }
        if parent == ROOT_INO && name == AUTH_NAME && self.has_auth_file() {
            return Ok(self.auth_entry());
        }
        if let Some(entry) = self.view_lookup(caller, parent, name)? {
            return Ok(entry);
        }
        let t = self.tree.read();
        // "." and ".." arrive only through handle-based opens (export support).
        let child = match (parent, name) {
            (_, ".") => Some(parent),
            (ROOT_INO, "..") => Some(ROOT_INO),
            (_, "..") => Some(t.parent_of(parent)),
            (ROOT_INO, _) => (name == "current").then_some(CURRENT_INO),
            _ => t.child(parent, name)?,
        };
        if child == Some(ROOT_INO) {
            return Ok(self.entry(self.root_attr));
        }
        match child {
            Some(ino) => {
                let n = t.node(ino)?;
                n.lookups.fetch_add(1, Ordering::Relaxed);
                Ok(self.entry(n.attr))
            }
            None => Ok(self.negative_entry()),
        }
    }

    /// The kernel drops `nlookup` references to `ino`: a node or view path nothing refers
    /// to any more is forgotten.
    pub fn forget(&self, ino: Ino, nlookup: u64) {
        match self.section(ino) {
            Section::View(_) => return self.view_inodes.forget(ino, nlookup),
            Section::Root | Section::Auth | Section::Debug => return,
            Section::Live => {}
        }
        let unreferenced = {
            let t = self.tree.read();
            let Ok(n) = t.node(ino) else { return };
            let prev = n
                .lookups
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                    Some(v.saturating_sub(nlookup))
                })
                .unwrap_or(0);
            prev <= nlookup && n.links.is_empty()
        };
        if unreferenced {
            self.tree.write().release_if_unreferenced(ino);
        }
    }

    /// Attributes and how long the kernel may cache them.
    pub fn getattr(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: Option<u64>,
    ) -> FsResult<(Attr, Duration)> {
        self.allow(caller, Op::Getattr, ino, None, Access::Read, 0)?;
        self.attr_of(caller, ino, fh)
    }

    /// [`Fs::getattr`] without the permission check (the answer of a change).
    fn attr_of(&self, caller: &Caller, ino: Ino, fh: Option<u64>) -> FsResult<(Attr, Duration)> {
        match self.section(ino) {
            Section::Auth => Ok((self.auth_attr(), self.config.attr_ttl)),
            Section::View(_) => self.view_getattr(caller, ino, fh),
            Section::Debug => self.debug_getattr(ino, fh, caller.mount),
            Section::Root | Section::Live => Ok((self.attr(ino)?, self.config.attr_ttl)),
        }
    }

    pub fn setattr(&self, caller: &Caller, ino: Ino, set: SetAttr) -> FsResult<(Attr, Duration)> {
        self.allow(caller, Op::Setattr, ino, None, Access::Write, 0)?;
        match self.section(ino) {
            // `echo … > .auth` truncates first: nothing to truncate.
            Section::Auth => return Ok((self.auth_attr(), self.config.attr_ttl)),
            Section::View(_) => return self.view_setattr(caller, ino, &set),
            section @ (Section::Debug | Section::Root) => section.refuse_change()?,
            Section::Live => {}
        }
        let time = now_ns();
        if let Some(size) = set.size {
            self.truncate(caller, ino, size, time)?;
            self.changed(caller, || vec![Stale::inode(ino)]);
            // A truncate by a caller without CAP_FSETID drops set-ID bits. A kernel that
            // does it itself sends the new mode along; one that left it to us (fuser's
            // FUSE_HANDLE_KILLPRIV_V2) does not.
            if caller.uid != 0 && set.mode.is_none() {
                self.drop_suid_sgid(caller, ino, time)?;
            }
        }
        let at = |t: Option<TimeSpec>| {
            t.map(|t| match t {
                TimeSpec::Now => time,
                TimeSpec::At(ns) => ns,
            })
        };
        let (atime, mtime) = (at(set.atime), at(set.mtime));
        if set.mode.is_some()
            || set.uid.is_some()
            || set.gid.is_some()
            || atime.is_some()
            || mtime.is_some()
        {
            self.check_store()?;
            let mut t = self.tree.write();
            let mut perm = set.mode.map(|m| m & 0o7777);
            // chown of a non-directory drops set-ID bits, whoever calls (as above: unless
            // the kernel sent the mode it computed).
            if perm.is_none() && (set.uid.is_some() || set.gid.is_some()) {
                let a = t.node(ino)?.attr;
                if a.kind != FileKind::Dir {
                    perm = Some(without_suid_sgid(a.perm)).filter(|&p| p != a.perm);
                }
            }
            t.set_attr(ino, perm, set.uid, set.gid, atime, mtime, time)?;
            if let Some(path) = t.path_of(ino) {
                let change = Change::SetAttr {
                    path: path.into(),
                    perm,
                    uid: set.uid,
                    gid: set.gid,
                    atime,
                    mtime,
                };
                self.record(caller, time, change)?;
            }
            drop(t);
            self.changed(caller, || vec![Stale::attrs(ino)]);
        }
        self.attr_of(caller, ino, set.fh)
    }

    fn truncate(&self, caller: &Caller, ino: Ino, size: u64, time: TimeNs) -> FsResult<()> {
        if size > MAX_FILE_SIZE {
            return Err(fs_err!(EFBIG, "size beyond the largest file"));
        }
        let content = self.content_of(ino)?;
        self.check_store()?;
        let mut c = content.lock();
        let cur = self.attr(ino)?.size;
        if size > cur {
            self.check_room()?;
        }
        c.truncate(self.store.objects(), cur, size)
            .map_err(|e| self.store_io("truncating", &e))?;
        {
            let mut t = self.tree.write();
            let a = &mut t.node_mut(ino)?.attr;
            a.size = size;
            a.mtime = time;
            a.ctime = time;
        }
        // A truncate by path is a whole change; through an open writer it is part of the
        // write that the writer's close commits.
        if !content.has_writers() {
            self.commit(caller, ino, &mut c, false)?;
            if self.tree.read().node(ino)?.open.load(Ordering::Acquire) == 0 {
                c.close_object();
            }
        }
        Ok(())
    }

    pub fn readlink(&self, caller: &Caller, ino: Ino) -> FsResult<Vec<u8>> {
        self.allow(caller, Op::Readlink, ino, None, Access::Read, 0)?;
        match self.section(ino) {
            Section::View(_) => return self.view_readlink(caller, ino),
            Section::Live => {}
            _ => return Err(fs_err!(EINVAL, "not a symlink")),
        }
        let t = self.tree.read();
        let n = t.node(ino)?;
        n.target
            .as_ref()
            .map(|t| t.as_bytes().to_vec())
            .ok_or(fs_err!(EINVAL, "not a symlink"))
    }

    /// Create a regular file, FIFO, socket or device node (`mode` carries the kind).
    pub fn mknod(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> FsResult<Entry> {
        let kind = FileKind::from_mode(mode).ok_or(fs_err!(EINVAL, "unknown file type"))?;
        if kind == FileKind::Dir || kind == FileKind::Symlink {
            return Err(fs_err!(EINVAL, "mknod of a directory or symlink"));
        }
        // The kernel asks for CAP_MKNOD before the request reaches us; a caller that is
        // not root got past it only by not coming through a kernel (never, but cheap).
        if kind.is_device() && caller.uid != 0 {
            return Err(fs_err!(EPERM, "only root creates device nodes"));
        }
        // A device number means something for devices only (stat shows 0 for the rest).
        let rdev = if kind.is_device() { rdev } else { 0 };
        self.make_node(
            caller,
            parent,
            name,
            kind,
            mode & !umask & 0o7777,
            rdev,
            None,
        )
    }

    pub fn mkdir(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> FsResult<Entry> {
        self.make_node(
            caller,
            parent,
            name,
            FileKind::Dir,
            mode & !umask & 0o7777,
            0,
            None,
        )
    }

    pub fn symlink(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        target: &OsStr,
    ) -> FsResult<Entry> {
        let target = target
            .to_str()
            .ok_or(fs_err!(EINVAL, "symlink target is not UTF-8"))?;
        if target.len() > PATH_MAX {
            return Err(fs_err!(ENAMETOOLONG, "symlink target too long"));
        }
        if target.is_empty() {
            return Err(fs_err!(ENOENT, "empty symlink target"));
        }
        self.make_node(
            caller,
            parent,
            name,
            FileKind::Symlink,
            0o777,
            0,
            Some(target.into()),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn make_node(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        kind: FileKind,
        mut perm: u32,
        rdev: u32,
        target: Option<Arc<str>>,
    ) -> FsResult<Entry> {
        let op = match (kind, &target) {
            (_, Some(_)) => Op::Symlink,
            (FileKind::Dir, _) => Op::Mkdir,
            (FileKind::File, _) => Op::Create,
            _ => Op::Mknod,
        };
        self.allow(caller, op, parent, Some(name), Access::Write, 0)?;
        if matches!(self.section(parent), Section::View(_)) && target.is_none() {
            // FIFOs and sockets in a view are files of the view's choosing.
            let kind = if kind == FileKind::Dir {
                FileKind::Dir
            } else {
                FileKind::File
            };
            return self.view_create(caller, parent, component(name)?, kind);
        }
        self.section(parent).refuse_change()?;
        let name = component(name)?;
        self.check_store()?;
        let time = now_ns();
        let mut t = self.tree.write();
        let p = t.node(parent)?;
        if !p.is_dir() {
            return Err(fs_err!(ENOTDIR, "parent is not a directory"));
        }
        // BSD group semantics under a set-group-ID directory, as Linux filesystems do.
        let mut gid = caller.gid;
        if p.attr.perm & libc::S_ISGID != 0 {
            gid = p.attr.gid;
            if kind == FileKind::Dir {
                perm |= libc::S_ISGID;
            }
        }
        let path = t.child_path(parent, name)?;
        let new = NewNode {
            kind,
            perm,
            uid: caller.uid,
            gid,
            rdev,
            target: target.clone(),
        };
        let ino = t.create(parent, name, new, time)?;
        let change = match target {
            Some(target) => Change::Symlink {
                path,
                target,
                uid: caller.uid,
                gid,
            },
            None => Change::Create {
                path,
                kind,
                perm,
                uid: caller.uid,
                gid,
                rdev,
            },
        };
        self.record(caller, time, change)?;
        let n = t.node(ino)?;
        n.lookups.fetch_add(1, Ordering::Relaxed);
        let entry = self.entry(n.attr);
        drop(t);
        self.changed(caller, || Stale::name(parent, name).into());
        Ok(entry)
    }

    pub fn unlink(&self, caller: &Caller, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.remove(caller, parent, name, false)
    }

    pub fn rmdir(&self, caller: &Caller, parent: Ino, name: &OsStr) -> FsResult<()> {
        self.remove(caller, parent, name, true)
    }

    fn remove(&self, caller: &Caller, parent: Ino, name: &OsStr, dir: bool) -> FsResult<()> {
        let op = if dir { Op::Rmdir } else { Op::Unlink };
        self.allow(caller, op, parent, Some(name), Access::Write, 0)?;
        let name = component(name)?;
        let section = self.section(parent);
        match section {
            Section::View(_) => return self.view_remove(caller, parent, name, dir),
            Section::Debug => section.refuse_change()?,
            Section::Auth => return Err(fs_err!(ENOTDIR, "not a directory")),
            Section::Root | Section::Live => {}
        }
        if section == Section::Root {
            return Err(
                if name == "current"
                    || name == DEBUG_DIR
                    || (name == AUTH_NAME && self.has_auth_file())
                    || self.view_names().iter().any(|v| &**v == name)
                {
                    fs_err!(EACCES, "the mount root is read-only")
                } else {
                    fs_err!(ENOENT, "no such name")
                },
            );
        }
        self.check_store()?;
        let time = now_ns();
        let mut t = self.tree.write();
        let path = t.child_path(parent, name)?;
        let victim = t.child(parent, name)?;
        let change = if dir {
            t.rmdir(parent, name, time)?;
            Change::Rmdir { path }
        } else {
            t.unlink(parent, name, time)?;
            Change::Unlink { path }
        };
        self.record(caller, time, change)?;
        drop(t);
        self.changed(caller, || {
            let mut stale: Vec<Stale> = Stale::name(parent, name).into();
            stale.extend(victim.map(Stale::attrs));
            stale
        });
        Ok(())
    }

    /// `renameat2`: `flags` are the raw RENAME_* bits (unknown bits → EINVAL).
    pub fn rename(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        flags: u32,
    ) -> FsResult<()> {
        self.allow(caller, Op::Rename, parent, Some(name), Access::Write, 0)?;
        let flags =
            RenameFlags::from_raw(flags).ok_or(fs_err!(EINVAL, "unsupported rename flags"))?;
        let section = self.section(parent);
        if section != self.section(newparent) {
            return Err(fs_err!(EXDEV, "rename between sections of the mount"));
        }
        section.refuse_change()?;
        let (name, newname) = (component(name)?, component(newname)?);
        self.check_store()?;
        let time = now_ns();
        let mut t = self.tree.write();
        let from = t.child_path(parent, name)?;
        let to = t.child_path(newparent, newname)?;
        // The inodes whose ctime (and, replaced, link count) the rename changes.
        let moved = [t.child(parent, name)?, t.child(newparent, newname)?];
        t.rename(parent, name, newparent, newname, flags, time)?;
        self.record(caller, time, Change::Rename { from, to, flags })?;
        drop(t);
        self.changed(caller, || {
            let mut stale: Vec<Stale> = Stale::name(parent, name).into();
            stale.push(Stale::Entry {
                parent: newparent,
                name: newname.into(),
            });
            if newparent != parent {
                stale.push(Stale::inode(newparent));
            }
            stale.extend(moved.into_iter().flatten().map(Stale::attrs));
            stale
        });
        Ok(())
    }

    pub fn link(
        &self,
        caller: &Caller,
        ino: Ino,
        newparent: Ino,
        newname: &OsStr,
    ) -> FsResult<Entry> {
        self.allow(caller, Op::Link, newparent, Some(newname), Access::Write, 0)?;
        if ino == ROOT_INO {
            return Err(fs_err!(EPERM, "hard link to a directory"));
        }
        let section = self.section(ino);
        if section != self.section(newparent) {
            return Err(fs_err!(EXDEV, "link between sections of the mount"));
        }
        section.refuse_change()?;
        let newname = component(newname)?;
        self.check_store()?;
        let time = now_ns();
        let mut t = self.tree.write();
        let from = t.path_of(ino).ok_or(fs_err!(ENOENT, "file was removed"))?;
        let to = t.child_path(newparent, newname)?;
        t.link(ino, newparent, newname, time)?;
        self.record(
            caller,
            time,
            Change::Link {
                from: from.into(),
                to,
            },
        )?;
        let n = t.node(ino)?;
        n.lookups.fetch_add(1, Ordering::Relaxed);
        let entry = self.entry(n.attr);
        drop(t);
        self.changed(caller, || {
            let mut stale: Vec<Stale> = Stale::name(newparent, newname).into();
            stale.push(Stale::attrs(ino));
            stale
        });
        Ok(entry)
    }

    /// Open a file; `flags` are the raw `open(2)` flags.
    pub fn open(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let need = if writes { Access::Write } else { Access::Read };
        self.allow(caller, Op::Open, ino, None, need, 0)?;
        self.open_allowed(caller, ino, flags)
    }

    fn open_allowed(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let opened = match self.section(ino) {
            Section::Auth => self.auth_open(caller, flags)?,
            Section::View(_) => self.view_open(caller, ino, flags)?,
            Section::Debug => self.debug_open(caller, ino, flags)?,
            Section::Root | Section::Live => self.open_live(caller, ino, flags)?,
        };
        let c = &self.cache;
        CacheCounters::count(if opened.keep_cache {
            &c.opens_keep_cache
        } else if opened.direct_io {
            &c.opens_direct_io
        } else {
            &c.opens_uncached
        });
        Ok(opened)
    }

    fn open_live(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let content = self.content_of(ino)?;
        let acc = flags & libc::O_ACCMODE;
        let writable = acc != libc::O_RDONLY;
        if writable {
            self.check_store()?;
        }
        if writable && flags & libc::O_TRUNC != 0 {
            // As a truncate by a caller without CAP_FSETID (the kernel sends none for an
            // O_TRUNC open: the open truncates).
            if caller.uid != 0 {
                self.drop_suid_sgid(caller, ino, now_ns())?;
            }
            let mut c = content.lock();
            let cur = self.attr(ino)?.size;
            if cur > 0 || c.is_dirty() {
                c.truncate(self.store.objects(), cur, 0)
                    .map_err(|e| self.store_io("truncating", &e))?;
                let time = now_ns();
                let mut t = self.tree.write();
                let a = &mut t.node_mut(ino)?.attr;
                a.size = 0;
                a.mtime = time;
                a.ctime = time;
                drop(t);
                drop(c);
                self.changed(caller, || vec![Stale::inode(ino)]);
            }
        }
        if writable {
            content.add_writer();
        }
        self.tree
            .read()
            .node(ino)?
            .open
            .fetch_add(1, Ordering::AcqRel);
        let fh = self.handles.insert(Handle::File(FileHandle {
            ino,
            content,
            writable,
            readable: acc != libc::O_WRONLY,
            append: flags & libc::O_APPEND != 0,
        }));
        // Every change to a live file passes through this kernel, which keeps its page
        // cache current itself: keep it across opens.
        Ok(Opened {
            fh,
            keep_cache: true,
            direct_io: false,
            noflush: !writable,
            cache_dir: false,
        })
    }

    /// Create and open a regular file (O_CREAT without an existing name).
    pub fn create(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> FsResult<(Entry, Opened)> {
        let entry = self.make_node(
            caller,
            parent,
            name,
            FileKind::File,
            mode & !umask & 0o7777,
            0,
            None,
        )?;
        // Allowed with the create itself. If the open fails the kernel gets no entry, so
        // the reference the create counted is dropped again.
        match self.open_allowed(caller, entry.attr.ino, flags & !libc::O_TRUNC) {
            Ok(opened) => Ok((entry, opened)),
            Err(e) => {
                self.forget(entry.attr.ino, 1);
                Err(e)
            }
        }
    }

    /// Up to `size` bytes from `offset`; fewer only at end of file.
    pub fn read(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> FsResult<Vec<u8>> {
        let h = self.handles.get(fh)?;
        self.admit(caller, Op::Read, ino, u64::from(size))?;
        match &*h {
            Handle::View(v) => return self.view_read(caller, v, offset, size),
            Handle::Debug(d) => return Ok(read_slice(&d.bytes, offset, size)),
            Handle::Auth(a) => return Ok(read_slice(&a.challenge, offset, size)),
            Handle::File(_) | Handle::Dir(_) => {}
        }
        let h = self.handles.file(fh)?;
        let f = h.as_file();
        if !f.readable {
            return Err(fs_err!(EBADF, "handle not open for reading"));
        }
        let file = f
            .content
            .lock()
            .reader(self.store.objects())
            .map_err(|e| FsError::io("opening content", &e))?;
        match file {
            None => Ok(Vec::new()),
            Some(file) => store::read_at(&file, offset, size as usize)
                .map_err(|e| FsError::io("reading content", &e)),
        }
    }

    /// Write `data` at `offset` (at end of file for O_APPEND handles); returns bytes written.
    pub fn write(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: u64,
        offset: u64,
        data: &[u8],
    ) -> FsResult<u32> {
        self.write_dropping(caller, ino, fh, offset, data, false)
    }

    /// [`Fs::write`]; `drop_suid_sgid`: the kernel asks the filesystem to drop the file's
    /// set-ID bits first (FUSE_WRITE_KILL_SUIDGID, sent under FUSE_HANDLE_KILLPRIV_V2
    /// for a writer without CAP_FSETID).
    pub fn write_dropping(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: u64,
        offset: u64,
        data: &[u8],
        drop_suid_sgid: bool,
    ) -> FsResult<u32> {
        let h = self.handles.get(fh)?;
        match &*h {
            Handle::View(v) => {
                self.admit(caller, Op::Write, ino, data.len() as u64)?;
                return self.view_write(caller, v, offset, data);
            }
            Handle::Auth(_) => return self.auth_write(caller, data),
            _ => self.admit(caller, Op::Write, ino, data.len() as u64)?,
        }
        let h = self.handles.file(fh)?;
        let f = h.as_file();
        if !f.writable {
            return Err(fs_err!(EBADF, "handle not open for writing"));
        }
        self.check_room()?;
        if drop_suid_sgid {
            self.drop_suid_sgid(caller, f.ino, now_ns())?;
        }
        let mut c = f.content.lock();
        let cur = self.attr(f.ino)?.size;
        let offset = if f.append { cur } else { offset };
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(fs_err!(EFBIG, "write beyond the largest file"))?;
        c.write_at(self.store.objects(), cur, offset, data)
            .map_err(|e| self.store_io("writing content", &e))?;
        let time = now_ns();
        let mut t = self.tree.write();
        let a = &mut t.node_mut(f.ino)?.attr;
        a.size = a.size.max(end);
        a.mtime = time;
        a.ctime = time;
        drop(t);
        drop(c);
        self.changed(caller, || {
            vec![Stale::Inode {
                ino: f.ino,
                offset: offset as i64,
                len: data.len() as i64,
            }]
        });
        Ok(data.len() as u32)
    }

    /// `close()` of one descriptor: a dirty file is committed to the store as one event.
    pub fn flush(&self, caller: &Caller, _ino: Ino, fh: u64) -> FsResult<()> {
        match &*self.handles.get(fh)? {
            // A view's writes take effect as they are made; debug/ is read-only.
            Handle::View(_) | Handle::Debug(_) | Handle::Auth(_) => return Ok(()),
            Handle::File(_) | Handle::Dir(_) => {}
        }
        let h = self.handles.file(fh)?;
        let f = h.as_file();
        if f.writable {
            self.commit(caller, f.ino, &mut f.content.lock(), false)?;
        }
        Ok(())
    }

    /// The last reference to a handle is gone.
    pub fn release(&self, caller: &Caller, _ino: Ino, fh: u64) -> FsResult<()> {
        let Some(h) = self.handles.remove(fh) else {
            return Err(fs_err!(EBADF, "unknown file handle"));
        };
        let Handle::File(f) = &*h else { return Ok(()) };
        // Writes that no flush saw (a writable mmap, say) are committed here.
        let result = if f.writable {
            self.commit(caller, f.ino, &mut f.content.lock(), false)
                .map(drop)
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            if is_no_space(e.errno) {
                // No handle is left to close again: the content waits for room.
                self.keep_uncommitted(caller, f.ino, &f.content);
            }
        }
        if f.writable {
            f.content.remove_writer();
        }
        let (orphan, last) = {
            let t = self.tree.read();
            let n = t.node(f.ino)?;
            let last = n.open.fetch_sub(1, Ordering::AcqRel) == 1;
            (n.links.is_empty(), last)
        };
        // The content lock is taken before the tree's everywhere (truncate, write):
        // never while holding the tree lock.
        if last {
            f.content.lock().close_object();
        }
        if orphan {
            self.tree.write().release_if_unreferenced(f.ino);
        }
        result
    }

    /// Commit the file and wait until the store has it on disk.
    pub fn fsync(&self, caller: &Caller, _ino: Ino, fh: u64, _datasync: bool) -> FsResult<()> {
        match &*self.handles.get(fh)? {
            Handle::View(_) => return self.wait_durable(self.store.head()),
            Handle::Debug(_) | Handle::Auth(_) => return Ok(()),
            Handle::File(_) | Handle::Dir(_) => {}
        }
        let h = self.handles.file(fh)?;
        let f = h.as_file();
        let seq = {
            let mut c = f.content.lock();
            let seq = if f.writable {
                self.commit(caller, f.ino, &mut c, true)?
            } else {
                None
            };
            if seq.is_none() {
                // Committed at an earlier close without a sync: put those bytes on disk now.
                let reader = c.reader(self.store.objects());
                if let Some(file) = reader.map_err(|e| FsError::io("opening content", &e))? {
                    file.sync_data()
                        .map_err(|e| self.store_io("syncing content", &e))?;
                }
            }
            seq
        };
        self.wait_durable(seq.unwrap_or_else(|| self.store.head()))
    }

    pub fn opendir(&self, caller: &Caller, ino: Ino, _flags: i32) -> FsResult<Opened> {
        self.allow(caller, Op::Opendir, ino, None, Access::Read, 0)?;
        // Every change to a live directory passes through this kernel, which drops its
        // cached listing when it does: keep it across opens. The root's listing changes
        // as views come and go, a view's as the view says.
        let not_dir = || fs_err!(ENOTDIR, "not a directory");
        let cache = match self.section(ino) {
            Section::Root => false,
            Section::Auth => return Err(not_dir()),
            Section::Debug if ino != DEBUG_INO => return Err(not_dir()),
            Section::Debug => true, // its names never change
            Section::View(_) => {
                let (attr, ttl) = self.view_getattr(caller, ino, None)?;
                if attr.kind != FileKind::Dir {
                    return Err(not_dir());
                }
                ttl >= view_section::Caching::Immutable.ttl()
            }
            Section::Live if !self.tree.read().node(ino)?.is_dir() => return Err(not_dir()),
            Section::Live => true,
        };
        let fh = self.handles.insert(Handle::Dir(DirHandle {
            ino,
            listing: Default::default(),
        }));
        CacheCounters::count(if cache {
            &self.cache.opendirs_cached
        } else {
            &self.cache.opendirs_uncached
        });
        Ok(Opened {
            fh,
            keep_cache: cache,
            direct_io: false,
            noflush: true,
            cache_dir: cache,
        })
    }

    /// Entries after cookie `offset` (0 = from the start, "." and ".." included), handed to
    /// `add` in order until it returns `false` (the reply buffer is full).
    pub fn readdir(
        &self,
        caller: &Caller,
        _ino: Ino,
        fh: u64,
        offset: u64,
        add: &mut dyn FnMut(&DirItem) -> bool,
    ) -> FsResult<()> {
        let listing = self.listing(caller, fh, offset)?;
        for item in listing.iter().skip(offset as usize) {
            if !add(item) {
                break;
            }
        }
        Ok(())
    }

    /// As [`Fs::readdir`], with each entry's attributes. Every entry but "." and ".." that
    /// `add` accepts counts one kernel lookup reference, as for [`Fs::lookup`].
    pub fn readdirplus(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: u64,
        offset: u64,
        add: &mut dyn FnMut(&DirItem, &Entry) -> bool,
    ) -> FsResult<()> {
        let listing = self.listing(caller, fh, offset)?;
        if matches!(self.section(ino), Section::View(_)) {
            for item in listing.iter().skip(offset as usize) {
                let Some((entry, held)) = self.view_entry(caller, item.ino) else {
                    continue;
                };
                if !add(item, &entry) {
                    break;
                }
                if let (false, Some(held)) = (is_dots(&item.name), held) {
                    held.hand_out(entry.attr.kind);
                }
            }
            return Ok(());
        }
        if ino == ROOT_INO {
            return self.root_readdirplus(caller, &listing, offset, add);
        }
        if ino == DEBUG_INO {
            for item in listing.iter().skip(offset as usize) {
                let entry = match item.ino {
                    ROOT_INO => self.entry(self.root_attr),
                    ino => self.debug_entry(ino)?,
                };
                if !add(item, &entry) {
                    break;
                }
            }
            return Ok(());
        }
        let t = self.tree.read();
        for item in listing.iter().skip(offset as usize) {
            let dots = is_dots(&item.name);
            let node = if item.ino == ROOT_INO {
                None
            } else {
                match t.node(item.ino) {
                    Ok(n) => Some(n),
                    Err(_) => continue, // removed since the listing was taken
                }
            };
            let attr = node.map(|n| n.attr).unwrap_or(self.root_attr);
            if !add(item, &self.entry(attr)) {
                break;
            }
            if let (false, Some(n)) = (dots, node) {
                n.lookups.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// [`Fs::readdirplus`] of the mount root: its sections, each with the entry a lookup
    /// of its name gives (views are asked without the tree lock held).
    fn root_readdirplus(
        &self,
        caller: &Caller,
        listing: &[DirItem],
        offset: u64,
        add: &mut dyn FnMut(&DirItem, &Entry) -> bool,
    ) -> FsResult<()> {
        for item in listing.iter().skip(offset as usize) {
            let (entry, held) = match item.ino {
                ROOT_INO => (self.entry(self.root_attr), None),
                CURRENT_INO => (self.entry(self.attr(CURRENT_INO)?), None),
                DEBUG_INO => (self.debug_entry(DEBUG_INO)?, None),
                AUTH_INO => (self.auth_entry(), None),
                // A view listed in the root: as its lookup answers (`None`: unloaded since).
                _ => match self.view_entry_held(caller, ROOT_INO, &item.name) {
                    Ok(Some(found)) => found,
                    Ok(None) | Err(_) => continue,
                },
            };
            if !add(item, &entry) {
                break;
            }
            if let (false, Some(held)) = (is_dots(&item.name), held) {
                held.hand_out(entry.attr.kind);
            }
            if item.ino == CURRENT_INO {
                self.tree
                    .read()
                    .node(CURRENT_INO)?
                    .lookups
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// The handle's snapshot of its directory, taken anew when reading from the start.
    fn listing(&self, caller: &Caller, fh: u64, offset: u64) -> FsResult<Arc<[DirItem]>> {
        let h = self.handles.get(fh)?;
        let Handle::Dir(d) = &*h else {
            return Err(fs_err!(ENOTDIR, "not a directory handle"));
        };
        let mut listing = d.listing.lock();
        if offset == 0 || listing.is_none() {
            // The new listing's holds are taken before the old one's go: a path in both
            // keeps its number.
            let mut held = Vec::new();
            let items = self.list(caller, d.ino, &mut held)?;
            *listing = Some(Listing { items, _held: held });
        }
        Ok(listing.as_ref().expect("set above").items.clone())
    }

    /// A directory's items; the view paths numbered for them are held in `held`.
    fn list(&self, caller: &Caller, ino: Ino, held: &mut Vec<Held>) -> FsResult<Arc<[DirItem]>> {
        match self.section(ino) {
            Section::View(_) => return self.view_list(caller, ino, held),
            Section::Debug => return Ok(Arc::from(self.debug_list())),
            _ => {}
        }
        let item = |ino, kind, name: &str, offset| DirItem {
            ino,
            offset,
            kind,
            name: Arc::from(name),
        };
        if ino == ROOT_INO {
            let mut items = vec![
                item(ROOT_INO, FileKind::Dir, ".", 1),
                item(ROOT_INO, FileKind::Dir, "..", 2),
                item(CURRENT_INO, FileKind::Dir, "current", 3),
                item(DEBUG_INO, FileKind::Dir, DEBUG_DIR, 4),
            ];
            if self.has_auth_file() {
                items.push(item(AUTH_INO, FileKind::File, AUTH_NAME, 5));
            }
            // The native sections, then the views (none of which may take their names).
            for name in self.view_names() {
                if &*name == "current" || &*name == DEBUG_DIR {
                    continue;
                }
                let Some(generation) = self.views.get().and_then(|v| v.generation(&name)) else {
                    continue; // unloaded since
                };
                let vp = view_section::ViewPath::root(name.clone(), generation);
                let offset = items.len() as u64 + 1;
                let view_root = self.view_inodes.hold(&vp);
                items.push(DirItem {
                    ino: view_root.ino(),
                    offset,
                    kind: FileKind::Dir,
                    name,
                });
                held.push(view_root);
            }
            return Ok(Arc::from(items));
        }
        let t = self.tree.read();
        let children = t.children(ino)?;
        let mut items = Vec::with_capacity(children.len() + 2);
        items.push(item(ino, FileKind::Dir, ".", 1));
        items.push(item(t.parent_of(ino), FileKind::Dir, "..", 2));
        for (name, &child) in children {
            let kind = t.node(child).map(|n| n.attr.kind).unwrap_or(FileKind::File);
            items.push(DirItem {
                ino: child,
                offset: items.len() as u64 + 1,
                kind,
                name: name.clone(),
            });
        }
        Ok(Arc::from(items))
    }

    pub fn releasedir(&self, _caller: &Caller, _ino: Ino, fh: u64) -> FsResult<()> {
        self.handles
            .remove(fh)
            .map(drop)
            .ok_or(fs_err!(EBADF, "unknown directory handle"))
    }

    pub fn fsyncdir(&self, _caller: &Caller, _ino: Ino, _fh: u64, _datasync: bool) -> FsResult<()> {
        self.wait_durable(self.store.head())
    }

    pub fn statfs(&self, _caller: &Caller, _ino: Ino) -> FsResult<StatFs> {
        let st = nix::sys::statvfs::statvfs(self.store.dir())
            .map_err(|e| FsError::io("statfs of the store", &std::io::Error::from(e)))?;
        let frsize = st.fragment_size().max(1);
        let scale = |blocks: u64| blocks * frsize / Attr::BLOCK_SIZE as u64;
        let files = self.tree.read().len() as u64;
        Ok(StatFs {
            blocks: scale(st.blocks()),
            bfree: scale(st.blocks_free()),
            bavail: scale(st.blocks_available()),
            files: files + st.files_free(),
            ffree: st.files_free(),
            bsize: Attr::BLOCK_SIZE,
            namelen: NAME_MAX as u32,
            frsize: Attr::BLOCK_SIZE,
        })
    }

    /// `access(2)`: `mask` is R_OK|W_OK|X_OK bits, or F_OK (0).
    pub fn access(&self, caller: &Caller, ino: Ino, mask: i32) -> FsResult<()> {
        // The kernel answers access(2) itself (the mount has default_permissions); this
        // answers the same for callers without FUSE (and would for a kernel that asks):
        // the policy, then the mode bits.
        let need = if mask & libc::W_OK != 0 {
            Access::Write
        } else {
            Access::Read
        };
        self.allow(caller, Op::Access, ino, None, need, 0)?;
        let (a, _) = self.attr_of(caller, ino, None)?;
        if mask == libc::F_OK {
            return Ok(());
        }
        if mask & libc::W_OK != 0 {
            if let section @ (Section::Root | Section::Debug) = self.section(ino) {
                section.refuse_change()?;
            }
        }
        let want = mask as u32 & 0o7;
        let granted = if caller.uid == 0 {
            // root: read and write anything; execute where anyone may (or a directory).
            let x = if a.kind == FileKind::Dir || a.perm & 0o111 != 0 {
                1
            } else {
                0
            };
            0o6 | x
        } else if caller.uid == a.uid {
            (a.perm >> 6) & 0o7
        } else if caller.gid == a.gid {
            (a.perm >> 3) & 0o7
        } else {
            a.perm & 0o7
        };
        if want & !granted != 0 {
            return Err(fs_err!(EACCES, "permission denied by mode bits"));
        }
        Ok(())
    }

    /// `fallocate(2)` with mode 0 (allocate, extend size) or FALLOC_FL_KEEP_SIZE.
    pub fn fallocate(
        &self,
        caller: &Caller,
        _ino: Ino,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> FsResult<()> {
        let h = self.handles.file(fh)?;
        let f = h.as_file();
        if !f.writable {
            return Err(fs_err!(EBADF, "handle not open for writing"));
        }
        match mode {
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            0 => {
                let end = offset
                    .checked_add(length)
                    .filter(|&e| e <= MAX_FILE_SIZE)
                    .ok_or(fs_err!(EFBIG, "beyond the largest file"))?;
                let mut c = f.content.lock();
                let cur = self.attr(f.ino)?.size;
                if end > cur {
                    self.check_room()?;
                    c.truncate(self.store.objects(), cur, end)
                        .map_err(|e| self.store_io("extending", &e))?;
                    let time = now_ns();
                    let mut t = self.tree.write();
                    let a = &mut t.node_mut(f.ino)?.attr;
                    a.size = end;
                    a.ctime = time;
                    drop(t);
                    drop(c);
                    self.changed(caller, || vec![Stale::attrs(f.ino)]);
                }
                Ok(())
            }
            _ => Err(fs_err!(EOPNOTSUPP, "fallocate mode not supported")),
        }
    }

    /// The kernel is unmounting: nothing is lost by then (handles were released), but the
    /// moment is logged.
    pub fn destroy(&self) {
        tracing::debug!(
            open_handles = self.handles.len(),
            "filesystem destroyed by the kernel"
        );
    }

    /// Commit every file still open for writing and close the store's log (unmount, exit).
    pub fn shutdown(&self) {
        let left = self.commit_uncommitted();
        if left > 0 {
            tracing::warn!(
                files = left,
                "closing with files whose last content found no room on the store's \
                 filesystem: that content (never acknowledged: its close answered ENOSPC) is dropped"
            );
        }
        self.store.close();
    }

    /// Commit, each time room comes back on the store's filesystem, the files whose last
    /// handle closed without room for their content. (Without it they are committed by a
    /// later close of the file, or at shutdown.)
    pub fn commit_when_room(self: &Arc<Self>) {
        let fs: Weak<Fs> = Arc::downgrade(self);
        self.store.space().on_room(move || {
            // The log may still be committing what waited for room: a few tries.
            for _ in 0..20 {
                let Some(fs) = fs.upgrade() else { return };
                if fs.commit_uncommitted() == 0 || fs.store.space().is_short() {
                    return;
                }
                drop(fs);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
    }

    /// Try again to commit the files kept by [`release`](Self::release) for lack of room;
    /// returns how many still wait.
    pub fn commit_uncommitted(&self) -> usize {
        let waiting = std::mem::take(&mut *self.uncommitted.lock());
        let mut left = Vec::new();
        for u in waiting {
            let Some(content) = u.content.upgrade() else {
                continue; // the file is gone, and its scratch copy with it
            };
            let mut c = content.lock();
            let same = self
                .tree
                .read()
                .node(u.ino)
                .ok()
                .and_then(|n| n.content.clone())
                .is_some_and(|nc| Arc::ptr_eq(&nc, &content));
            if !same {
                continue;
            }
            match self.commit(&u.caller, u.ino, &mut c, false) {
                Ok(_) => {
                    // The commit kept the new object open; no handle needs it.
                    let open = self
                        .tree
                        .read()
                        .node(u.ino)
                        .map(|n| n.open.load(Ordering::Acquire));
                    if open.is_ok_and(|n| n == 0) {
                        c.close_object();
                    }
                }
                Err(e) if is_no_space(e.errno) => left.push(u),
                Err(e) => tracing::warn!(
                    path = self.describe(u.ino),
                    errno = e.name(),
                    "committing content kept for lack of room failed: {}",
                    e.message
                ),
            }
        }
        let mut list = self.uncommitted.lock();
        list.extend(left);
        list.len()
    }

    fn keep_uncommitted(&self, caller: &Caller, ino: Ino, content: &Arc<Content>) {
        let mut list = self.uncommitted.lock();
        if !list.iter().any(|u| u.ino == ino) {
            list.push(Uncommitted {
                ino,
                content: Arc::downgrade(content),
                caller: *caller,
            });
        }
    }

    /// Apply a change made by the host itself (import), recorded like any other.
    pub fn apply_host_change(&self, change: Change, time: TimeNs) -> FsResult<u64> {
        self.check_store()?;
        let mut t = self.tree.write();
        t.apply(&change, time)?;
        self.record(&Caller::HOST, time, change)
    }

    /// Run `f` over the live tree (read-only), e.g. to walk it.
    pub fn with_tree<R>(&self, f: impl FnOnce(&Tree) -> R) -> R {
        f(&self.tree.read())
    }

    // ---- helpers ----

    /// A change through `caller`'s mount made `stale()` out of date in the other mounts'
    /// kernels: tell them (`stale` is only built when there are others). Call with no
    /// lock held.
    #[inline]
    pub(super) fn changed(&self, caller: &Caller, stale: impl FnOnce() -> Vec<Stale>) {
        if self.others_cache(caller.mount) {
            self.tell_others(caller.mount, stale());
        }
    }

    /// Drop set-user-ID, and set-group-ID where the group may execute, as the kernel does
    /// on a write, truncate or chown; a change only when there is something to drop.
    /// Takes the tree lock: call with no lock held.
    fn drop_suid_sgid(&self, caller: &Caller, ino: Ino, time: TimeNs) -> FsResult<()> {
        if self.attr(ino)?.perm & (libc::S_ISUID | libc::S_ISGID) == 0 {
            return Ok(());
        }
        self.check_store()?;
        let mut t = self.tree.write();
        let a = t.node(ino)?.attr;
        let perm = without_suid_sgid(a.perm);
        if perm == a.perm {
            return Ok(());
        }
        t.set_attr(ino, Some(perm), None, None, None, None, time)?;
        if let Some(path) = t.path_of(ino) {
            let change = Change::SetAttr {
                path: path.into(),
                perm: Some(perm),
                uid: None,
                gid: None,
                atime: None,
                mtime: None,
            };
            self.record(caller, time, change)?;
        }
        drop(t);
        self.changed(caller, || vec![Stale::attrs(ino)]);
        Ok(())
    }

    fn attr(&self, ino: Ino) -> FsResult<Attr> {
        if ino == ROOT_INO {
            return Ok(self.root_attr);
        }
        Ok(self.tree.read().node(ino)?.attr)
    }

    fn content_of(&self, ino: Ino) -> FsResult<Arc<Content>> {
        if ino == ROOT_INO {
            return Err(fs_err!(EISDIR, "the mount root is a directory"));
        }
        let t = self.tree.read();
        let n = t.node(ino)?;
        match n.attr.kind {
            FileKind::File => Ok(n.content.clone().expect("files have content")),
            FileKind::Dir => Err(fs_err!(EISDIR, "is a directory")),
            _ => Err(fs_err!(EINVAL, "not a regular file")),
        }
    }

    pub(super) fn entry(&self, attr: Attr) -> Entry {
        Entry {
            attr,
            entry_ttl: self.config.entry_ttl,
            attr_ttl: self.config.attr_ttl,
            generation: 0,
        }
    }

    pub(super) fn negative_entry(&self) -> Entry {
        let attr = Attr {
            ino: 0,
            nlink: 0,
            ..self.root_attr
        };
        Entry {
            attr,
            entry_ttl: self.config.negative_ttl,
            attr_ttl: Duration::ZERO,
            generation: 0,
        }
    }

    /// May the store take a change? EIO once it failed; ENOSPC (EDQUOT) while its log
    /// has no room even in its reserve.
    fn check_store(&self) -> FsResult<()> {
        self.store.admit().map_err(refused)
    }

    /// May new file content be written? Not while the store is short of room: what is
    /// left (the reserve) is for the log, so that `rm` and `mv` keep working.
    fn check_room(&self) -> FsResult<()> {
        if !self.store.space().is_short() {
            return Ok(());
        }
        match self.store.content_refusal() {
            None => Ok(()),
            Some(r) => Err(refused(r)),
        }
    }

    /// An I/O error of the store's disk for the caller: ENOSPC and EDQUOT also put the
    /// store in its short-of-room state.
    fn store_io(&self, context: &str, e: &std::io::Error) -> FsError {
        let err = FsError::io(context, e);
        if let Some(errno) = store::no_space_errno(e) {
            self.store.space().report(errno, &err.message);
        }
        err
    }

    /// Append a change to the log; the caller holds the tree's write lock.
    fn record(&self, caller: &Caller, time: TimeNs, change: Change) -> FsResult<u64> {
        if let Change::Write { size, .. } = &change {
            self.written_bytes.fetch_add(*size, Ordering::Relaxed);
        }
        self.store
            .append(time, caller, self.agent_name(caller), change)
            .map_err(|e| FsError::with(libc::EIO, e))
    }

    fn wait_durable(&self, seq: u64) -> FsResult<()> {
        self.store.wait_durable(seq).map_err(refused)
    }

    /// Commit a dirty file as one write event; returns its seq (`None`: nothing to commit,
    /// or the file is unlinked and its bytes die with its last handle).
    fn commit(
        &self,
        caller: &Caller,
        ino: Ino,
        c: &mut MutexGuard<'_, ContentState>,
        durable: bool,
    ) -> FsResult<Option<u64>> {
        if !c.is_dirty() || self.tree.read().node(ino)?.links.is_empty() {
            return Ok(None);
        }
        self.check_store()?;
        let Some(done) = c
            .commit(self.store.objects(), durable)
            .map_err(|e| self.store_io("committing content", &e))?
        else {
            return Ok(None);
        };
        let time = now_ns();
        let t = self.tree.write();
        let n = t.node(ino)?;
        let Some(path) = t.path_of(ino) else {
            return Ok(None);
        };
        let change = Change::Write {
            path: path.into(),
            hash: done.hash,
            size: done.size,
            mtime: n.attr.mtime,
        };
        self.record(caller, time, change).map(Some)
    }
}

fn refused(r: Refusal) -> FsError {
    FsError::with(r.errno(), r.to_string())
}

/// `perm` without set-user-ID, and without set-group-ID when the group may execute
/// (without group execute it marks mandatory locking, and stays).
fn without_suid_sgid(perm: u32) -> u32 {
    let mut perm = perm & !libc::S_ISUID;
    if perm & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP {
        perm &= !libc::S_ISGID;
    }
    perm
}

/// "." or "..": listed, but never a lookup reference (the kernel skips them in
/// READDIRPLUS replies).
fn is_dots(name: &str) -> bool {
    name == "." || name == ".."
}

/// One path component from the kernel: UTF-8 (the log stores text), at most NAME_MAX bytes.
fn component(name: &OsStr) -> FsResult<&str> {
    if name.len() > NAME_MAX {
        return Err(fs_err!(ENAMETOOLONG, "name longer than 255 bytes"));
    }
    name.to_str().ok_or(fs_err!(EINVAL, "names must be UTF-8"))
}
