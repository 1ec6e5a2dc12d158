//! [`Fs`]: the one filesystem both adapters serve. Every method takes the caller and
//! returns a typed errno on failure; none of them blocks on the kernel.
//!
//! Each public operation is the pipeline of a request: the policy ([`Fs::allow`]), then
//! the request's [`Section`]'s code (the live tree in `live.rs`, views in `view_ops.rs`,
//! `debug/` in `debug.rs`, `.auth` in `auth_file.rs`), then counters and the other
//! mounts' notifications.

use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::debug::{DEBUG_DIR, DEBUG_INO};
use super::handles::{DirHandle, Handle, Handles, Listing};
use super::live::xattr::{self, XattrName};
use super::live::Uncommitted;
use super::stats::CacheCounters;
use super::view_ops::DirCache;
use super::view_section::{self, Held, ViewInodes, Views};
use super::*;
use crate::fs_err;
use crate::policy::Access;
use crate::store::{self, Store, Tree, NAME_MAX};

/// Longest symlink target, as Linux's PATH_MAX.
const PATH_MAX: usize = 4095;

pub struct Fs {
    pub(super) config: FsConfig,
    pub(super) store: Arc<dyn Store>,
    pub(super) tree: RwLock<Tree>,
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
    pub(super) written_bytes: std::sync::atomic::AtomicU64,
    /// Files whose last handle closed while their content could not be committed for
    /// lack of room: committed when room comes back (or at shutdown).
    pub(super) uncommitted: Mutex<Vec<Uncommitted>>,
    /// Shared stores: the newest event folded into the tree whose changes the kernels
    /// were told of ([`Fs::shown_seq`]).
    pub(super) told: std::sync::atomic::AtomicU64,
    /// Closes whose commit waits for their release (see [`super::deferred`]).
    pub(super) deferred: Arc<super::deferred::DeferredCommits>,
    /// FUSE passthrough: whether it is in force, and the objects backing open files.
    pub(super) passthrough: super::passthrough::Passthrough,
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
        let told = opened.tree.folded().into();
        Fs {
            told,
            passthrough: super::passthrough::Passthrough::new(config.passthrough),
            config,
            store: opened.store,
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
            deferred: Default::default(),
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

    pub fn store(&self) -> &Arc<dyn Store> {
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
        self.live_lookup(parent, name)
    }

    /// The kernel drops `nlookup` references to `ino`: a node or view path nothing refers
    /// to any more is forgotten.
    pub fn forget(&self, ino: Ino, nlookup: u64) {
        match self.section(ino) {
            Section::View(_) => self.view_inodes.forget(ino, nlookup),
            Section::Root | Section::Auth | Section::Debug => {}
            Section::Live => self.live_forget(ino, nlookup),
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
        self.settle_closes();
        match self.section(ino) {
            // `echo … > .auth` truncates first: nothing to truncate.
            Section::Auth => return Ok((self.auth_attr(), self.config.attr_ttl)),
            Section::View(_) => return self.view_setattr(caller, ino, &set),
            section @ (Section::Debug | Section::Root) => section.refuse_change()?,
            Section::Live => {
                let done = self.live_setattr(caller, ino, &set);
                // Told even when a later part failed: the truncate may have been done.
                self.changed(caller, || {
                    vec![match set.size {
                        Some(_) => Stale::inode(ino),
                        None => Stale::attrs(ino),
                    }]
                });
                done?
            }
        }
        self.attr_of(caller, ino, set.fh)
    }

    pub fn readlink(&self, caller: &Caller, ino: Ino) -> FsResult<Vec<u8>> {
        self.allow(caller, Op::Readlink, ino, None, Access::Read, 0)?;
        match self.section(ino) {
            Section::View(_) => self.view_readlink(caller, ino),
            Section::Live => self.live_readlink(ino),
            _ => Err(fs_err!(EINVAL, "not a symlink")),
        }
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
        perm: u32,
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
        self.settle_closes();
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
        let entry = self.live_make_node(caller, parent, name, kind, perm, rdev, target)?;
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
        self.settle_closes();
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
        let victim = self.live_remove(caller, parent, name, dir)?;
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
        self.settle_closes();
        let flags =
            RenameFlags::from_raw(flags).ok_or(fs_err!(EINVAL, "unsupported rename flags"))?;
        let section = self.section(parent);
        if section != self.section(newparent) {
            return Err(fs_err!(EXDEV, "rename between sections of the mount"));
        }
        section.refuse_change()?;
        let (name, newname) = (component(name)?, component(newname)?);
        let moved = self.live_rename(caller, (parent, name), (newparent, newname), flags)?;
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
        self.settle_closes();
        if ino == ROOT_INO {
            return Err(fs_err!(EPERM, "hard link to a directory"));
        }
        let section = self.section(ino);
        if section != self.section(newparent) {
            return Err(fs_err!(EXDEV, "link between sections of the mount"));
        }
        section.refuse_change()?;
        let newname = component(newname)?;
        let entry = self.live_link(caller, ino, newparent, newname)?;
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
        if writes {
            // A due commit of this file must not take what this open truncates or writes.
            self.settle_closes();
        }
        self.open_allowed(caller, ino, flags)
    }

    fn open_allowed(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let opened = match self.section(ino) {
            Section::Auth => self.auth_open(caller, flags)?,
            Section::View(_) => self.view_open(caller, ino, flags)?,
            Section::Debug => self.debug_open(caller, ino, flags)?,
            Section::Root | Section::Live => {
                // Close-to-open across hosts: what another host closed before this open
                // began is folded before it (a store of one writer has nothing to fold).
                self.catch_up_before_open(ino);
                let opened = self.open_live(caller, ino, flags);
                // An O_TRUNC open for writing truncates (and drops set-ID bits first).
                if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
                    self.changed(caller, || vec![Stale::inode(ino)]);
                }
                opened?
            }
        };
        let c = &self.cache;
        if opened.backing.is_some() {
            CacheCounters::count(&c.opens_passthrough);
        }
        CacheCounters::count(if opened.keep_cache {
            &c.opens_keep_cache
        } else if opened.direct_io {
            &c.opens_direct_io
        } else {
            &c.opens_uncached
        });
        Ok(opened)
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
            Handle::View(v) => self.view_read(caller, v, offset, size),
            Handle::Debug(d) => Ok(read_slice(&d.bytes, offset, size)),
            Handle::Auth(a) => Ok(read_slice(&a.challenge, offset, size)),
            Handle::File(_) | Handle::Dir(_) => {
                let h = self.handles.file(fh)?;
                self.live_read(h.as_file(), offset, size)
            }
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
                self.view_write(caller, v, offset, data)
            }
            Handle::Auth(_) => self.auth_write(caller, data),
            _ => {
                self.admit(caller, Op::Write, ino, data.len() as u64)?;
                let h = self.handles.file(fh)?;
                let f = h.as_file();
                let done = self.live_write(caller, f, offset, data, drop_suid_sgid);
                let stale = match done {
                    Ok(at) => Stale::Inode {
                        ino: f.ino,
                        offset: at as i64,
                        len: data.len() as i64,
                    },
                    Err(_) if drop_suid_sgid => Stale::attrs(f.ino),
                    Err(e) => return Err(e),
                };
                self.changed(caller, || vec![stale]);
                done.map(|_| data.len() as u32)
            }
        }
    }

    /// `close()` of one descriptor: a dirty file is committed to the store as one event.
    pub fn flush(&self, caller: &Caller, _ino: Ino, fh: u64) -> FsResult<()> {
        match &*self.handles.get(fh)? {
            // A view's writes take effect as they are made; debug/ is read-only.
            Handle::View(_) | Handle::Debug(_) | Handle::Auth(_) => Ok(()),
            Handle::File(_) | Handle::Dir(_) => {
                let h = self.handles.file(fh)?;
                self.live_flush(caller, h.as_file())
            }
        }
    }

    /// The last reference to a handle is gone.
    pub fn release(&self, caller: &Caller, _ino: Ino, fh: u64) -> FsResult<()> {
        let Some(h) = self.handles.remove(fh) else {
            return Err(fs_err!(EBADF, "unknown file handle"));
        };
        let Handle::File(f) = &*h else { return Ok(()) };
        self.live_release(caller, f)
    }

    /// Commit the file and wait until the store has it on disk.
    pub fn fsync(&self, caller: &Caller, _ino: Ino, fh: u64, _datasync: bool) -> FsResult<()> {
        match &*self.handles.get(fh)? {
            Handle::View(_) => {
                self.settle_closes();
                self.wait_durable(self.store.head())
            }
            Handle::Debug(_) | Handle::Auth(_) => Ok(()),
            Handle::File(_) | Handle::Dir(_) => {
                let h = self.handles.file(fh)?;
                self.live_fsync(caller, h.as_file())
            }
        }
    }

    pub fn opendir(&self, caller: &Caller, ino: Ino, _flags: i32) -> FsResult<Opened> {
        self.allow(caller, Op::Opendir, ino, None, Access::Read, 0)?;
        // Every change to a live directory passes through this kernel, which drops its
        // cached listing when it does: keep it across opens. The root's listing changes
        // as views come and go, a view's as the view says.
        let not_dir = || fs_err!(ENOTDIR, "not a directory");
        let dir = match self.section(ino) {
            Section::Root => DirCache::NONE,
            Section::Auth => return Err(not_dir()),
            Section::Debug if ino != DEBUG_INO => return Err(not_dir()),
            Section::Debug => DirCache::KEPT, // its names never change
            Section::View(_) => self.view_dir_cache(caller, ino)?,
            Section::Live if !self.is_live_dir(ino)? => return Err(not_dir()),
            Section::Live => DirCache::KEPT,
        };
        let cache = dir.cache;
        let fh = self.handles.insert(Handle::Dir(DirHandle {
            ino,
            listing: Default::default(),
            _page_cache: dir.ticket,
        }));
        CacheCounters::count(if cache {
            &self.cache.opendirs_cached
        } else {
            &self.cache.opendirs_uncached
        });
        Ok(Opened {
            fh,
            keep_cache: dir.keep,
            direct_io: false,
            noflush: true,
            cache_dir: cache,
            backing: None,
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
                if let (false, Some(held)) = (item.is_dots(), held) {
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
        self.live_readdirplus(&listing, offset, add)
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
            if let (false, Some(held)) = (item.is_dots(), held) {
                held.hand_out(entry.attr.kind);
            }
            if item.ino == CURRENT_INO {
                self.live_looked_up(CURRENT_INO)?;
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
        self.live_list(ino)
    }

    pub fn releasedir(&self, _caller: &Caller, _ino: Ino, fh: u64) -> FsResult<()> {
        self.handles
            .remove(fh)
            .map(drop)
            .ok_or(fs_err!(EBADF, "unknown directory handle"))
    }

    pub fn fsyncdir(&self, _caller: &Caller, _ino: Ino, _fh: u64, _datasync: bool) -> FsResult<()> {
        self.settle_closes();
        self.wait_durable(self.store.head())
    }

    pub fn statfs(&self, _caller: &Caller, _ino: Ino) -> FsResult<StatFs> {
        let st = nix::sys::statvfs::statvfs(self.store.dir())
            .map_err(|e| FsError::io("statfs of the store", &std::io::Error::from(e)))?;
        let frsize = st.fragment_size().max(1);
        let scale = |blocks: u64| blocks * frsize / Attr::BLOCK_SIZE as u64;
        let files = self.live_inodes() as u64;
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

    // ---- extended attributes: the live tree's alone (`core/live/xattr.rs`) ----

    /// `getxattr(2)`: the value of `name`, or its size when `size` is 0.
    pub fn getxattr(
        &self,
        caller: &Caller,
        ino: Ino,
        name: &OsStr,
        size: u32,
    ) -> FsResult<XattrReply> {
        self.allow(caller, Op::Getxattr, ino, None, Access::Read, 0)?;
        let name = XattrName::parse(name)?;
        match self.section(ino) {
            Section::Live => self.live_getxattr(caller, ino, name, size),
            _ => Err(fs_err!(ENODATA, "no such attribute")),
        }
    }

    /// `listxattr(2)`: the names the caller may see, each NUL-terminated, or their size
    /// when `size` is 0.
    pub fn listxattr(&self, caller: &Caller, ino: Ino, size: u32) -> FsResult<XattrReply> {
        self.allow(caller, Op::Listxattr, ino, None, Access::Read, 0)?;
        match self.section(ino) {
            Section::Live => self.live_listxattr(caller, ino, size),
            _ => xattr::sized(size, 0, Vec::new),
        }
    }

    /// `setxattr(2)`; `flags` are XATTR_CREATE / XATTR_REPLACE.
    pub fn setxattr(
        &self,
        caller: &Caller,
        ino: Ino,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> FsResult<()> {
        let size = value.len() as u64;
        self.allow(caller, Op::Setxattr, ino, None, Access::Write, size)?;
        self.settle_closes();
        let how = xattr::set_how(flags)?;
        let name = XattrName::parse(name)?;
        match self.section(ino) {
            Section::Live => self.live_setxattr(caller, ino, name, value, how)?,
            _ => return Err(fs_err!(EOPNOTSUPP, "no extended attributes here")),
        }
        self.changed(caller, || vec![Stale::attrs(ino)]);
        Ok(())
    }

    /// `removexattr(2)`.
    pub fn removexattr(&self, caller: &Caller, ino: Ino, name: &OsStr) -> FsResult<()> {
        self.allow(caller, Op::Removexattr, ino, None, Access::Write, 0)?;
        self.settle_closes();
        let name = XattrName::parse(name)?;
        match self.section(ino) {
            Section::Live => self.live_removexattr(caller, ino, name)?,
            _ => return Err(fs_err!(EOPNOTSUPP, "no extended attributes here")),
        }
        self.changed(caller, || vec![Stale::attrs(ino)]);
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
        self.live_fallocate(h.as_file(), offset, length, mode)?;
        self.changed(caller, || vec![Stale::attrs(h.as_file().ino)]);
        Ok(())
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
        self.settle_closes_now();
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
}

/// One path component from the kernel: UTF-8 (the log stores text), at most NAME_MAX bytes.
fn component(name: &OsStr) -> FsResult<&str> {
    if name.len() > NAME_MAX {
        return Err(fs_err!(ENAMETOOLONG, "name longer than 255 bytes"));
    }
    name.to_str().ok_or(fs_err!(EINVAL, "names must be UTF-8"))
}
