//! The live tree, `current/`: its nodes, their content, and the store's log every change
//! to them is recorded in. [`Fs`]'s public operations (fs.rs) check the policy and route
//! here for [`Section::Live`] (and for the root's own attributes).
//!
//! Locking: the tree is one `RwLock` (lookups and getattr share it); a file's bytes have
//! their own mutex. Whoever needs both takes the file's mutex first, then the tree.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::MutexGuard;

use super::handles::{FileHandle, Handle};
use super::*;
use crate::fs_err;
use crate::store::{
    self, Change, Content, ContentState, NewNode, PassthroughAllowed, Refusal, Tree,
};

pub(super) mod xattr;

/// Largest file size accepted (EFBIG beyond): far above any real file, well inside i64.
const MAX_FILE_SIZE: u64 = 1 << 50;

/// See [`Fs::commit_uncommitted`].
pub(super) struct Uncommitted {
    ino: Ino,
    content: Weak<Content>,
    caller: Caller,
}

impl Fs {
    /// Inodes of the live tree now.
    pub fn live_inodes(&self) -> usize {
        self.tree.read().len()
    }

    /// Resolve `name` in the live directory `parent` (or `current` in the root).
    pub(super) fn live_lookup(&self, parent: Ino, name: &str) -> FsResult<Entry> {
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
                Ok(self.entry(n.attr_now()))
            }
            None => Ok(self.negative_entry()),
        }
    }

    /// One more kernel lookup reference to the live node `ino` (see [`Fs::forget`]).
    pub(super) fn live_looked_up(&self, ino: Ino) -> FsResult<()> {
        self.tree
            .read()
            .node(ino)?
            .lookups
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// [`Fs::forget`] of a live node: forgotten once nothing refers to it.
    pub(super) fn live_forget(&self, ino: Ino, nlookup: u64) {
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

    /// [`Fs::setattr`] of a live node.
    pub(super) fn live_setattr(&self, caller: &Caller, ino: Ino, set: &SetAttr) -> FsResult<()> {
        let time = now_ns();
        if let Some(size) = set.size {
            self.truncate(caller, ino, size, time)?;
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
            let mut t = self.change_tree()?;
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
                self.record(&mut t, caller, time, change)?;
            }
            // A file written unseen takes its mtime from the written file until its
            // commit: the explicit time goes there too.
            if let (Some(ns), Some(content)) = (mtime, t.node(ino)?.content.clone()) {
                content
                    .set_unseen_mtime(ns)
                    .map_err(|e| self.store_io("setting the written file's mtime", &e))?;
            }
        }
        Ok(())
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
            self.commit_content(caller, ino, &content, &mut c, false)?;
            if self.tree.read().node(ino)?.open.load(Ordering::Acquire) == 0 {
                c.close_object();
            }
        }
        Ok(())
    }

    /// The target of the live symlink `ino`.
    pub(super) fn live_readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let t = self.tree.read();
        let n = t.node(ino)?;
        n.target
            .as_ref()
            .map(|t| t.as_bytes().to_vec())
            .ok_or(fs_err!(EINVAL, "not a symlink"))
    }

    /// Create `name` in the live directory `parent`, recorded; the answer counts one
    /// kernel lookup reference.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn live_make_node(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
        kind: FileKind,
        mut perm: u32,
        rdev: u32,
        target: Option<Arc<str>>,
    ) -> FsResult<Entry> {
        self.check_store()?;
        let time = now_ns();
        let mut t = self.change_tree()?;
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
        self.record(&mut t, caller, time, change)?;
        let n = t.node(ino)?;
        n.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(self.entry(n.attr))
    }

    /// Unlink (`dir`: rmdir) `name` in the live directory `parent`, recorded; returns the
    /// inode it named.
    pub(super) fn live_remove(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
        dir: bool,
    ) -> FsResult<Option<Ino>> {
        self.check_store()?;
        let time = now_ns();
        let mut t = self.change_tree()?;
        let path = t.child_path(parent, name)?;
        let victim = t.child(parent, name)?;
        let change = if dir {
            t.rmdir(parent, name, time)?;
            Change::Rmdir { path }
        } else {
            t.unlink(parent, name, time)?;
            Change::Unlink { path }
        };
        self.record(&mut t, caller, time, change)?;
        Ok(victim)
    }

    /// Rename within the live tree, recorded; returns the inodes whose ctime (and,
    /// replaced, link count) the rename changed.
    pub(super) fn live_rename(
        &self,
        caller: &Caller,
        (parent, name): (Ino, &str),
        (newparent, newname): (Ino, &str),
        flags: RenameFlags,
    ) -> FsResult<[Option<Ino>; 2]> {
        self.check_store()?;
        let time = now_ns();
        let mut t = self.change_tree()?;
        let from = t.child_path(parent, name)?;
        let to = t.child_path(newparent, newname)?;
        let moved = [t.child(parent, name)?, t.child(newparent, newname)?];
        t.rename(parent, name, newparent, newname, flags, time)?;
        self.record(&mut t, caller, time, Change::Rename { from, to, flags })?;
        Ok(moved)
    }

    /// Hard-link the live node `ino` as `newname` in `newparent`, recorded; the answer
    /// counts one kernel lookup reference.
    pub(super) fn live_link(
        &self,
        caller: &Caller,
        ino: Ino,
        newparent: Ino,
        newname: &str,
    ) -> FsResult<Entry> {
        self.check_store()?;
        let time = now_ns();
        let mut t = self.change_tree()?;
        let from = t.path_of(ino).ok_or(fs_err!(ENOENT, "file was removed"))?;
        let to = t.child_path(newparent, newname)?;
        t.link(ino, newparent, newname, time)?;
        self.record(
            &mut t,
            caller,
            time,
            Change::Link {
                from: from.into(),
                to,
            },
        )?;
        let n = t.node(ino)?;
        n.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(self.entry(n.attr_now()))
    }

    pub(super) fn open_live(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let content = self.content_of(ino)?;
        let acc = flags & libc::O_ACCMODE;
        let writable = acc != libc::O_RDONLY;
        if writable {
            self.check_store()?;
        }
        // A writer before it truncates: a RELEASE of an earlier handle coming meanwhile
        // must not take the truncated content for its own and commit it (it commits only
        // as the last writer).
        if writable {
            content.add_writer();
        }
        let truncated = if writable && flags & libc::O_TRUNC != 0 {
            self.truncate_on_open(caller, ino, &content)
        } else {
            Ok(())
        };
        if let Err(e) = truncated {
            content.remove_writer();
            return Err(e);
        }
        // Handles opened before another host replaced the file read their version
        // through the page cache: this open reads past it (direct I/O), or it would be
        // served their pages, and they ours.
        let older_open = content.older_open();
        let (size, mtime) = match self.tree.read().node(ino) {
            Ok(n) => {
                n.open.fetch_add(1, Ordering::AcqRel);
                (n.attr.size, n.attr.mtime)
            }
            Err(e) => {
                if writable {
                    content.remove_writer();
                }
                return Err(e);
            }
        };
        let in_force = self.passthrough.in_force() && !older_open;
        let allowed = PassthroughAllowed {
            readers: in_force && size >= self.config.passthrough_min_size,
            // Writes this process does not see: not where they must be counted (rate
            // limits), refused (the store short of room), or told at once to another
            // mount's kernel.
            lone_writer: in_force
                && !self.io_counted()
                && !self.store.space().is_short()
                && !self.others_cache(caller.mount),
        };
        let opened = content.lock().open_handle(
            self.store.objects(),
            &self.passthrough.claims,
            writable,
            allowed,
        );
        let mode = match opened {
            Ok(mode) => mode,
            Err(e) => {
                if let Ok(n) = self.tree.read().node(ino) {
                    n.open.fetch_sub(1, Ordering::AcqRel);
                }
                if writable {
                    content.remove_writer();
                }
                return Err(self.store_io("opening the file's backing", &e));
            }
        };
        let passthrough = mode.backing.is_some();
        if let (true, Some(backing)) = (mode.writes_unseen, &mode.backing) {
            content.unseen_writer_opened(backing);
            // The written file's mtime stands for the file's: until a write, the file's.
            if let Err(e) = content.set_unseen_mtime(mtime) {
                tracing::debug!(error = %e, "setting a scratch copy's mtime");
            }
        }
        let fh = self.handles.insert(Handle::File(FileHandle {
            ino,
            content,
            writable,
            readable: acc != libc::O_WRONLY,
            append: flags & libc::O_APPEND != 0,
            passthrough: passthrough.into(),
            writes_unseen: mode.writes_unseen.into(),
        }));
        if passthrough {
            self.passthrough.opens.fetch_add(1, Ordering::Relaxed);
        }
        if mode.writes_unseen {
            self.passthrough
                .writer_opens
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(Opened {
            fh,
            // Every change to a live file passes through this kernel, which keeps its
            // page cache current itself (another host's changes are told to it): keep
            // it across opens. (Passthrough bypasses it, and the kernel refuses both.)
            keep_cache: !older_open && !passthrough && !mode.drop_pages,
            // Passthrough: the writes of a writer joining readers, and every read and
            // write under rate limits, still come here (the backing then serves mappings
            // only); a lone writer writes the backing itself.
            direct_io: older_open
                || passthrough && (writable && !mode.writes_unseen || self.io_counted()),
            noflush: !writable,
            cache_dir: false,
            backing: mode.backing.map(Backing),
        })
    }

    /// [`Fs::passthrough_refused`]: the handle `fh` is served cached after all.
    pub(super) fn live_passthrough_refused(&self, fh: u64) -> Opened {
        let writable = match self.handles.file(fh) {
            Ok(h) => {
                let f = h.as_file();
                if f.passthrough.swap(false, Ordering::AcqRel) {
                    f.content
                        .lock()
                        .passthrough_refused(&self.passthrough.claims, f.writable);
                }
                if f.writes_unseen.swap(false, Ordering::AcqRel) {
                    f.content.unseen_writer_closed();
                }
                f.writable
            }
            Err(_) => false,
        };
        Opened {
            fh,
            keep_cache: false,
            direct_io: false,
            noflush: !writable,
            cache_dir: false,
            backing: None,
        }
    }

    /// [`Fs::read`] through a live file's handle.
    pub(super) fn live_read(&self, f: &FileHandle, offset: u64, size: u32) -> FsResult<Vec<u8>> {
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

    /// An O_TRUNC open for writing truncates, as a truncate by a caller without
    /// CAP_FSETID would (the kernel sends none: the open truncates).
    fn truncate_on_open(&self, caller: &Caller, ino: Ino, content: &Content) -> FsResult<()> {
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
        }
        Ok(())
    }

    /// [`Fs::write_dropping`] through a live file's handle; returns the offset written at
    /// (the end of the file for an O_APPEND handle).
    pub(super) fn live_write(
        &self,
        caller: &Caller,
        f: &FileHandle,
        offset: u64,
        data: &[u8],
        drop_suid_sgid: bool,
    ) -> FsResult<u64> {
        if !f.writable {
            return Err(fs_err!(EBADF, "handle not open for writing"));
        }
        self.check_room()?;
        if drop_suid_sgid {
            self.drop_suid_sgid(caller, f.ino, now_ns())?;
        }
        let mut c = f.content.lock();
        let current = self.is_current(f)?;
        let cur = self.size_for(f, &mut c, current)?;
        let offset = if f.append { cur } else { offset };
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(fs_err!(EFBIG, "write beyond the largest file"))?;
        c.write_at(self.store.objects(), cur, offset, data)
            .map_err(|e| self.store_io("writing content", &e))?;
        if current {
            let time = now_ns();
            let mut t = self.tree.write();
            let a = &mut t.node_mut(f.ino)?.attr;
            a.size = a.size.max(end);
            a.mtime = time;
            a.ctime = time;
        }
        Ok(offset)
    }

    /// [`Fs::flush`] of a live file's handle: a dirty file is committed as one event.
    pub(super) fn live_flush(&self, caller: &Caller, f: &FileHandle) -> FsResult<()> {
        // Committed in place at the release, or before anything could tell. Not while
        // the store is short of room or degraded: then the close says whether the
        // commit fit (ENOSPC), as every close does.
        if f.writes_unseen.load(Ordering::Acquire)
            && !self.store.space().is_short()
            && self.store.degraded().is_none()
        {
            self.deferred.add(f.ino, &f.content, caller);
            return Ok(());
        }
        if f.writable {
            self.settle_closes_but(Some(&f.content));
            let replaces = !self.is_current(f)?;
            self.commit(caller, f, &mut f.content.lock(), false)?;
            self.told_replaced(f, replaces);
        }
        Ok(())
    }

    /// [`Fs::release`] of a live file's handle (already out of the table).
    pub(super) fn live_release(&self, caller: &Caller, f: &FileHandle) -> FsResult<()> {
        // Writes that no flush saw (a writable mmap, say) are committed here, by the last
        // writer: while another writable handle is open, the content may be that one's
        // work in progress (an O_TRUNC open not yet written), which its own close commits.
        // (A kernel sends RELEASE after close returns: the release of an earlier handle
        // may come while the next open is writing.)
        // The handle stops counting first: a backing the kernel has let go of is
        // committed in place, not copied, and no longer written unseen.
        f.content.lock().close_handle(
            f.passthrough.load(Ordering::Acquire),
            f.writable,
            &self.passthrough.claims,
        );
        // A commit its close left due is the closer's (a RELEASE comes from no process).
        let closer = self.deferred.closed_by(&f.content);
        let caller = closer.as_ref().unwrap_or(caller);
        let result = if f.writable && f.content.writers() == 1 {
            self.settle_closes_but(Some(&f.content));
            let replaces = !self.is_current(f)?;
            let r = self
                .commit(caller, f, &mut f.content.lock(), false)
                .map(drop);
            self.told_replaced(f, replaces);
            r
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            if is_no_space(e.errno) || self.store.degraded().is_some() {
                // No handle is left to close again: the content waits for room, or for
                // the database to answer again (it stays on this host meanwhile).
                self.keep_uncommitted(caller, f.ino, &f.content);
            }
        }
        if f.writes_unseen.load(Ordering::Acquire) {
            // What the kernel wrote is the file's size and time from now on, whether
            // or not its commit fit.
            if let Some((size, mtime)) = f.content.unseen_attr() {
                if let Ok(n) = self.tree.write().node_mut(f.ino) {
                    n.attr.size = size;
                    n.attr.mtime = mtime;
                    n.attr.ctime = n.attr.ctime.max(mtime);
                }
            }
            f.content.unseen_writer_closed();
        }
        if f.writable {
            f.content.remove_writer();
        }
        let (orphan, last) = {
            let t = self.tree.read();
            let n = t.node(f.ino)?;
            let last = n.open.fetch_sub(1, Ordering::AcqRel) == 1;
            if last {
                if let Some(c) = &n.content {
                    c.no_older_open();
                }
            }
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

    /// [`Fs::fsync`] of a live file's handle: commit it and wait until it is on disk.
    pub(super) fn live_fsync(&self, caller: &Caller, f: &FileHandle) -> FsResult<()> {
        self.settle_closes_but(Some(&f.content));
        let replaces = f.writable && !self.is_current(f)?;
        let seq = {
            let mut c = f.content.lock();
            let seq = if f.writable {
                self.commit(caller, f, &mut c, true)?
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
        self.told_replaced(f, replaces);
        self.wait_durable(seq.unwrap_or_else(|| self.store.head()))
    }

    /// [`Fs::fallocate`] through a live file's handle.
    pub(super) fn live_fallocate(
        &self,
        f: &FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> FsResult<()> {
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
                let current = self.is_current(f)?;
                let cur = self.size_for(f, &mut c, current)?;
                if end > cur {
                    self.check_room()?;
                    c.truncate(self.store.objects(), cur, end)
                        .map_err(|e| self.store_io("extending", &e))?;
                    if !current {
                        return Ok(());
                    }
                    let time = now_ns();
                    let mut t = self.tree.write();
                    let a = &mut t.node_mut(f.ino)?.attr;
                    a.size = end;
                    a.ctime = time;
                }
                Ok(())
            }
            _ => Err(fs_err!(EOPNOTSUPP, "fallocate mode not supported")),
        }
    }

    /// Is the live node `ino` a directory?
    pub(super) fn is_live_dir(&self, ino: Ino) -> FsResult<bool> {
        Ok(self.tree.read().node(ino)?.is_dir())
    }

    /// The items of the live directory `ino`, "." and ".." first.
    pub(super) fn live_list(&self, ino: Ino) -> FsResult<Arc<[DirItem]>> {
        let item = |ino, kind, name: &str, offset| DirItem {
            ino,
            offset,
            kind,
            name: Arc::from(name),
        };
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

    /// [`Fs::readdirplus`] of a live directory's `listing`.
    pub(super) fn live_readdirplus(
        &self,
        listing: &[DirItem],
        offset: u64,
        add: &mut dyn FnMut(&DirItem, &Entry) -> bool,
    ) -> FsResult<()> {
        let t = self.tree.read();
        for item in listing.iter().skip(offset as usize) {
            let dots = item.is_dots();
            let node = if item.ino == ROOT_INO {
                None
            } else {
                match t.node(item.ino) {
                    Ok(n) => Some(n),
                    Err(_) => continue, // removed since the listing was taken
                }
            };
            let attr = node.map(|n| n.attr_now()).unwrap_or(self.root_attr);
            if !add(item, &self.entry(attr)) {
                break;
            }
            if let (false, Some(n)) = (dots, node) {
                n.lookups.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
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
            match self.commit_content(&u.caller, u.ino, &content, &mut c, false) {
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
                Err(e) if is_no_space(e.errno) || self.store.degraded().is_some() => left.push(u),
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

    /// Commit `content`, the file `ino` some handles of which closed (a due commit,
    /// `core/deferred.rs`); without room it waits as a release's would.
    pub(super) fn commit_closed(
        &self,
        caller: &Caller,
        ino: Ino,
        content: &Arc<Content>,
        c: &mut MutexGuard<'_, ContentState>,
    ) -> FsResult<()> {
        let result = self
            .commit_content(caller, ino, content, c, false)
            .map(drop);
        if let Err(e) = &result {
            if is_no_space(e.errno) || self.store.degraded().is_some() {
                self.keep_uncommitted(caller, ino, content);
            }
        }
        result
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
        let mut t = self.change_tree()?;
        t.apply(&change, time)?;
        self.record(&mut t, &Caller::HOST, time, change)
    }

    /// Run `f` over the live tree (read-only), e.g. to walk it.
    pub fn with_tree<R>(&self, f: impl FnOnce(&Tree) -> R) -> R {
        f(&self.tree.read())
    }

    /// Drop set-user-ID, and set-group-ID where the group may execute, as the kernel does
    /// on a write, truncate or chown; a change only when there is something to drop.
    /// Takes the tree lock: call with no lock held.
    fn drop_suid_sgid(&self, caller: &Caller, ino: Ino, time: TimeNs) -> FsResult<()> {
        if self.attr(ino)?.perm & (libc::S_ISUID | libc::S_ISGID) == 0 {
            return Ok(());
        }
        self.check_store()?;
        let mut t = self.change_tree()?;
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
            self.record(&mut t, caller, time, change)?;
        }
        Ok(())
    }

    pub(super) fn attr(&self, ino: Ino) -> FsResult<Attr> {
        if ino == ROOT_INO {
            return Ok(self.root_attr);
        }
        Ok(self.tree.read().node(ino)?.attr_now())
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

    /// May the store take a change? EIO once it failed; ENOSPC (EDQUOT) while its log
    /// has no room even in its reserve.
    pub(super) fn check_store(&self) -> FsResult<()> {
        self.store.admit().map_err(refused)?;
        // A shared store out of reach: refused at once (the follower finds out when
        // it is back), not after the connection's timeouts again.
        if self.store.shared() {
            if let Some(why) = self.store.degraded() {
                return Err(FsError::with(libc::EIO, why));
            }
        }
        Ok(())
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
    /// Append `change`, just made on the tree `t` (whose lock the caller holds, so that log
    /// order is tree order), as an event; returns its seq.
    pub(super) fn record(
        &self,
        t: &mut Tree,
        caller: &Caller,
        time: TimeNs,
        change: Change,
    ) -> FsResult<u64> {
        if let Change::Write { size, .. } = &change {
            self.written_bytes.fetch_add(*size, Ordering::Relaxed);
        }
        let seq = self
            .store
            .append(
                Some(t.folded()),
                time,
                caller,
                self.agent_name(caller),
                change,
            )
            .map_err(|e| FsError::with(libc::EIO, e.to_string()))?;
        t.set_folded(seq);
        Ok(seq)
    }

    pub(super) fn wait_durable(&self, seq: u64) -> FsResult<()> {
        self.store.wait_durable(seq).map_err(refused)
    }

    /// Commit a dirty file as one write event; returns its seq (`None`: nothing to commit,
    /// or the file is unlinked and its bytes die with its last handle).
    fn commit(
        &self,
        caller: &Caller,
        f: &FileHandle,
        c: &mut MutexGuard<'_, ContentState>,
        durable: bool,
    ) -> FsResult<Option<u64>> {
        self.commit_content(caller, f.ino, &f.content, c, durable)
    }

    /// [`commit`](Self::commit) of `content`, a version of file `ino`: when another
    /// host's version replaced it meanwhile, this one, later in the log, is the file's
    /// content again.
    fn commit_content(
        &self,
        caller: &Caller,
        ino: Ino,
        content: &Arc<Content>,
        c: &mut MutexGuard<'_, ContentState>,
        durable: bool,
    ) -> FsResult<Option<u64>> {
        // Whatever its closes left due is part of this commit (`core/deferred.rs`).
        let _due = self.deferred.committing(content);
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
        let mut t = self.change_tree()?;
        let Some(path) = t.path_of(ino) else {
            return Ok(None);
        };
        let n = t.node_mut(ino)?;
        let replaced = !n
            .content
            .as_ref()
            .is_some_and(|nc| Arc::ptr_eq(nc, content));
        if replaced {
            n.content = Some(content.clone());
        }
        if let Some(written) = done.unseen {
            // Written by the kernel itself: the time is the written file's (its last
            // write's, or an explicit mtime set since).
            n.attr.size = done.size;
            n.attr.mtime = written;
            n.attr.ctime = n.attr.ctime.max(written);
        } else if replaced {
            n.attr.size = done.size;
            n.attr.mtime = time;
            n.attr.ctime = time;
        }
        let change = Change::Write {
            path: path.into(),
            hash: done.hash,
            size: done.size,
            mtime: n.attr.mtime,
        };
        self.record(&mut t, caller, time, change).map(Some)
    }

    /// Is `f` open on the file's current version (not one another host's close
    /// replaced)?
    fn is_current(&self, f: &FileHandle) -> FsResult<bool> {
        // Only another host's change replaces a file's content (`core/others.rs`): with
        // a store of one writer every handle is on the current version, and a write
        // takes no extra lock to find out.
        if !self.store.shared() {
            return Ok(true);
        }
        let t = self.tree.read();
        let n = t.node(f.ino)?;
        Ok(n.content
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &f.content)))
    }

    /// The size of the version `f` writes: the tree's, or for a version another host
    /// replaced, its own.
    fn size_for(
        &self,
        f: &FileHandle,
        c: &mut MutexGuard<'_, ContentState>,
        current: bool,
    ) -> FsResult<u64> {
        if current {
            return Ok(self.attr(f.ino)?.size);
        }
        c.len(self.store.objects())
            .map_err(|e| FsError::io("sizing an older version", &e))
    }

    /// `f`'s close made its version current again (`replaces`): the kernels hold the
    /// replaced version's pages and size. Told with no lock held.
    fn told_replaced(&self, f: &FileHandle, replaces: bool) {
        if replaces && self.is_current(f).unwrap_or(false) {
            self.tell_others(0, vec![Stale::inode(f.ino)]);
        }
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
