//! Adapter for the `fuse3` crate (async, on a tokio runtime owned by `serve`). Requests
//! are read by `worker_threads` reader threads of our fuse3 patch (patches/README.md),
//! each blocked in read(2) on /dev/fuse as fuser's threads are: a request's future is
//! polled in its reader thread, so the core call runs there, inline, and the reply is
//! written from there. Only a future that waits (a parked read of a stream) goes on as a
//! task of the runtime. Calls that may wait for a disk sync or reach a view run in a
//! blocking section (on a reader thread: the thread itself). Translation only; the twin
//! of `fuser.rs`, method for method.

use std::ffi::{OsStr, OsString};
use std::num::NonZeroU32;
use std::path::Path;

use ::fuse3::notify::Notify;
use ::fuse3::raw::reply::{
    DirectoryEntry, DirectoryEntryPlus, FileAttr, ReplyAttr, ReplyCreated, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEntry, ReplyInit, ReplyOpen, ReplyStatFs, ReplyWrite,
    ReplyXAttr,
};
use ::fuse3::raw::{Filesystem, MountHandle, Request, Session};
use ::fuse3::{Errno, FileType, Inode, Timestamp};
use anyhow::{anyhow, Context};
use futures_util::stream::{self, Stream};

use super::common::{self, run, Backings, KernelSettings, Lifecycle};
use super::dev_notify::DevNotify;
use super::mountpoint::{self, Unmounted};
use super::parking::ReadRequest;
use super::*;
use crate::core::{
    Attr, Caller, Entry, FileKind, FsResult, Ino, Mount, Op, Opened, SetAttr, TimeSpec, XattrReply,
};

type Result<T> = std::result::Result<T, Errno>;

/// `sizeof(struct fuse_dirent)`, `sizeof(struct fuse_direntplus)`.
const DIRENT_HEADER: usize = 24;
const DIRENTPLUS_HEADER: usize = 152;

/// `fuse_open_out.open_flags` bits (the kernel ABI; fuse3 does not export its copy).
const FOPEN_DIRECT_IO: u32 = 1 << 0;
const FOPEN_KEEP_CACHE: u32 = 1 << 1;
const FOPEN_CACHE_DIR: u32 = 1 << 3;
const FOPEN_NOFLUSH: u32 = 1 << 5;
/// `fuse_write_in.write_flags`: drop the file's set-ID bits first (the kernel sends it
/// under FUSE_HANDLE_KILLPRIV_V2, which our fuse3 patch asks for).
const FUSE_WRITE_KILL_SUIDGID: u32 = 1 << 2;

/// Mount `fs` with fuse3 and serve it until the mount goes away or `stop` fires.
pub fn serve(
    fs: Arc<Fs>,
    mount: Arc<Mount>,
    opts: &MountOptions,
    stop: StopSignal,
    ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    let path = opts.mountpoint.as_path();
    let context = || format!("mounting {} with fuse3", path.display());

    let settings = KernelSettings::from_config(fs.config());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(fs.config().worker_threads.max(1))
        .thread_name("fuse3-worker")
        .enable_all()
        .build()
        .with_context(context)?;

    let mut options = ::fuse3::MountOptions::default();
    options
        .fs_name(opts.fsname.clone())
        .allow_other(opts.allow_other)
        .read_only(false)
        // fuser does not insist on an empty mountpoint either.
        .nonempty(true)
        // `default_permissions` as a raw option, not fuse3's setting: that setting also
        // makes fuse3 answer INIT with FUSE_POSIX_ACL, which fuser does not. nodev and
        // nosuid have no fuse3 setting and are not mount(2) data: see `restrict`.
        // The kernel checks the mode bits, with or without a policy (docs/policy.md).
        .custom_options(format!("default_permissions,subtype={}", common::SUBTYPE))
        // Threads blocked in read(2) serve the requests, as many as fuser's: one task
        // reading for the whole runtime costs a wake-up of its I/O driver and a hand-off
        // per request, and leaves no reader waiting in the kernel while it is busy
        // (patches/README.md).
        .reader_threads(fs.config().worker_threads.max(1))
        // As fuser's adapter asks (its CAPABILITIES say why): through our patch.
        .handle_killpriv_v2(true);

    let life = Lifecycle::new(fs.clone(), mount);
    let initialized = Arc::new(tokio::sync::Notify::new());
    let adapter = Fuse3Fs {
        fs,
        life: life.clone(),
        settings,
        initialized: initialized.clone(),
        mountpoint: path.to_path_buf(),
        fuse_fds_before: dev_notify::fuse_fds().with_context(context)?,
        passthrough: std::sync::OnceLock::new(),
        backings: Backings::default(),
    };

    let result = runtime.block_on(async {
        // Through fusermount3 whenever it is installed, root included: it mounts
        // nodev,nosuid by itself (the direct mount needs `restrict` after). Either way
        // the reader threads read the session's /dev/fuse descriptor.
        let direct = !fusermount3_available();
        let session = Session::new(options);
        let mut handle = if direct {
            session.mount(adapter, path).await
        } else {
            session.mount_with_unprivileged(adapter, path).await
        }
        .with_context(context)?;
        if direct {
            if let Err(e) = restrict(path) {
                let _ = handle.unmount().await;
                return Err(e).with_context(context);
            }
        }
        // fuser's mount returns once INIT is answered; wait for the same here.
        tokio::select! {
            _ = initialized.notified() => {}
            ended = &mut handle => {
                let why = ended.err().map_or("no error".to_string(), |e| e.to_string());
                return Err(anyhow!("the session ended before INIT: {why}")).with_context(context);
            }
        }
        ready();

        let ended = loop {
            tokio::select! {
                ended = &mut handle => break Some(ended),
                _ = tokio::time::sleep(common::STOP_POLL) => {
                    if stop.is_stopped() {
                        break None;
                    }
                    life.check_attached(path);
                }
            }
        };
        match ended {
            Some(ended) => {
                tracing::info!(mountpoint = %path.display(), "unmounted from outside; fuse3 session ended");
                ended.with_context(|| format!("serving {} with fuse3", path.display()))
            }
            None => {
                life.stopping();
                stop_session(handle, path).await
            }
        }
    });
    runtime.shutdown_timeout(common::STOP_GRACE);
    life.destroy_once();
    result
}

/// Unmount (lazily when busy), then wait for the session to end. The unmount goes first,
/// as on fuser (fuse3's own `MountHandle::unmount` runs `destroy` while the mount still
/// takes requests, then fails on a busy mount): the session ends when the kernel closes
/// the connection, and `destroy` runs after the last request.
async fn stop_session(mut handle: MountHandle, path: &Path) -> anyhow::Result<()> {
    let owned = path.to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || mountpoint::unmount_with_outcome(&owned))
        .await
        .map_err(|e| anyhow!("unmount task failed: {e}"))?
        .with_context(|| format!("stopping fuse3 at {}", path.display()))?;
    let serving = || format!("serving {} with fuse3", path.display());
    match outcome {
        Unmounted::Clean => (&mut handle).await.with_context(serving),
        Unmounted::Lazy => match tokio::time::timeout(common::STOP_GRACE, &mut handle).await {
            Ok(ended) => ended.with_context(serving),
            Err(_) => {
                tracing::warn!(
                    mountpoint = %path.display(),
                    "the detached mount is still in use; no longer waiting for its users"
                );
                // Dropping the handle would have fuse3 unmount the path again, which now
                // names whatever lies below the detached mount.
                std::mem::forget(handle);
                Ok(())
            }
        },
    }
}

/// Is `fusermount3` (Debian `fuse3`) on the PATH?
fn fusermount3_available() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("fusermount3").is_file())
    })
}

/// Make the mount nodev,nosuid, as fuser's mount(2) does (fuse3 cannot ask for it):
/// a bind remount changes only the per-mount flags (and keeps rw, relatime).
fn restrict(path: &Path) -> anyhow::Result<()> {
    use nix::mount::MsFlags;
    nix::mount::mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .context("remounting nodev,nosuid")
}

struct Fuse3Fs {
    fs: Arc<Fs>,
    life: Arc<Lifecycle>,
    settings: KernelSettings,
    /// Told when INIT has been answered.
    initialized: Arc<tokio::sync::Notify>,
    /// Where it is mounted, and the process's /dev/fuse descriptors before this session
    /// opened its own: how `ready` finds the session's descriptor ([`DevNotify::of_mount`]).
    mountpoint: std::path::PathBuf,
    fuse_fds_before: Vec<std::os::fd::RawFd>,
    /// Registers backing files for passthrough, once the kernel granted it (`ready`).
    passthrough: std::sync::OnceLock<::fuse3::raw::Passthrough>,
    /// The backing ids of passthrough handles (see [`Backings`]).
    backings: Backings<::fuse3::raw::BackingId>,
}

fn errno(errno: i32) -> Errno {
    Errno::from(errno)
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDev => FileType::CharDevice,
        FileKind::BlockDev => FileType::BlockDevice,
    }
}

fn timestamp(ns: crate::core::TimeNs) -> Timestamp {
    let (sec, nsec) = common::split_time(ns);
    Timestamp::new(sec, nsec)
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: attr.ino,
        size: attr.size,
        blocks: attr.blocks(),
        atime: timestamp(attr.atime),
        mtime: timestamp(attr.mtime),
        ctime: timestamp(attr.ctime),
        kind: file_type(attr.kind),
        perm: (attr.perm & 0o7777) as u16,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: attr.rdev,
        blksize: Attr::BLOCK_SIZE,
    }
}

/// fuse3 turns UTIME_NOW into its own clock reading before we see it.
fn time_spec(time: Timestamp) -> TimeSpec {
    TimeSpec::At(common::join_time(time.sec, time.nsec))
}

fn fopen_flags(opened: &Opened) -> u32 {
    let mut flags = 0;
    if opened.keep_cache {
        flags |= FOPEN_KEEP_CACHE;
    }
    if opened.direct_io {
        flags |= FOPEN_DIRECT_IO;
    }
    if opened.noflush {
        flags |= FOPEN_NOFLUSH;
    }
    if opened.cache_dir {
        flags |= FOPEN_CACHE_DIR;
    }
    flags
}

/// An entry reply, positive or negative (`ino == 0`) alike.
fn reply_entry(result: std::result::Result<Entry, i32>) -> Result<ReplyEntry> {
    let e = result.map_err(errno)?;
    Ok(ReplyEntry {
        ttl: common::entry_ttl(&e),
        attr: file_attr(&e.attr),
        generation: e.generation,
    })
}

fn reply_empty(result: std::result::Result<(), i32>) -> Result<()> {
    result.map_err(errno)
}

fn reply_xattr(result: std::result::Result<XattrReply, i32>) -> Result<ReplyXAttr> {
    Ok(match result.map_err(errno)? {
        XattrReply::Size(size) => ReplyXAttr::Size(size),
        XattrReply::Data(data) => ReplyXAttr::Data(data.into()),
    })
}

/// A directory's open (no passthrough).
fn reply_open(result: std::result::Result<Opened, i32>) -> Result<ReplyOpen> {
    let o = result.map_err(errno)?;
    Ok(ReplyOpen {
        fh: o.fh,
        flags: fopen_flags(&o),
        backing_id: 0,
    })
}

impl Fuse3Fs {
    fn caller(&self, req: &Request) -> Caller {
        self.fs
            .caller(req.uid, req.gid, req.pid, self.life.mount.id)
    }

    /// How to answer the open `o` ([`Backings::answer`]).
    fn backing_of(&self, o: Opened) -> (Opened, Option<Arc<::fuse3::raw::BackingId>>) {
        self.backings
            .answer(&self.fs, o, |file| match self.passthrough.get() {
                Some(p) => p.open_backing(file),
                None => Err(std::io::Error::other(
                    "the kernel did not grant passthrough",
                )),
            })
    }

    /// Every request is served through here: [`run`], in a blocking section when the core
    /// says the request may call into a view ([`Fs::may_enter_view`]). A view call is
    /// synchronous wasm, and a guest's WASI I/O (its stderr, a panic message) blocks on
    /// wasmtime-wasi's runtime, which panics on an async worker; the view host requires a
    /// blocking section (`block_in_place`). Requests of the live tree stay inline.
    fn serve<T>(
        &self,
        op: Op,
        ino: Ino,
        f: impl FnOnce() -> FsResult<T>,
    ) -> std::result::Result<T, i32> {
        self.near_views(op, ino, || run(&self.life, op, ino, f))
    }

    /// `f` in a blocking section when request `op` of `ino` may reach a view, inline else.
    fn near_views<R>(&self, op: Op, ino: Ino, f: impl FnOnce() -> R) -> R {
        if self.fs.may_enter_view(op, ino) {
            tokio::task::block_in_place(f)
        } else {
            f()
        }
    }

    /// A request that may wait for the disk (fsync), in a blocking section: on a reader
    /// thread that is the thread itself, as on fuser (the other readers go on reading); on
    /// a worker of the runtime, the worker first hands its other tasks to another thread.
    fn serve_blocking<T>(
        &self,
        op: Op,
        ino: Ino,
        f: impl FnOnce() -> FsResult<T>,
    ) -> std::result::Result<T, i32> {
        tokio::task::block_in_place(|| run(&self.life, op, ino, f))
    }
}

impl Filesystem for Fuse3Fs {
    async fn init(&self, _req: Request) -> Result<ReplyInit> {
        let s = self.settings;
        // fuse3 answers max_readahead with the kernel's offer, and the capability set
        // itself (see fuser.rs CAPABILITIES); only these are ours to set.
        let mut reply = ReplyInit::new(NonZeroU32::new(s.max_write).unwrap_or(NonZeroU32::MIN));
        reply.max_background = Some(s.max_background);
        reply.congestion_threshold = Some(s.congestion_threshold);
        if self.fs.passthrough_wanted() {
            // Depth 1, as on fuser (see there); our fuse3 patch asks for passthrough.
            reply.max_stack_depth = 1;
        }
        Ok(reply)
    }

    async fn ready(&self, notify: Notify) {
        // Whether the kernel granted passthrough is known once INIT is answered.
        let offered = match notify.passthrough() {
            Some(p) => {
                let _ = self.passthrough.set(p);
                Ok(())
            }
            None if self.fs.passthrough_wanted() => {
                Err("the kernel does not offer FUSE passthrough (Linux 6.9+)".to_string())
            }
            None => Ok(()), // the core knows why it does not want it
        };
        self.fs.passthrough_offered(offered);
        // Not fuse3's Notify: see dev_notify.rs.
        match DevNotify::of_mount(&self.mountpoint, &self.fuse_fds_before) {
            Ok(notices) => self.life.mount.set_kernel_cache(Arc::new(notices)),
            Err(e) => tracing::warn!(
                "no FUSE notifications (after a view swap the kernel may serve old names until their TTL runs out): {e}"
            ),
        }
        self.initialized.notify_one();
    }

    async fn destroy(&self, _req: Request) {
        let life = self.life.clone();
        let _ = tokio::task::spawn_blocking(move || life.destroy_once()).await;
    }

    async fn lookup(&self, req: Request, parent: Inode, name: &OsStr) -> Result<ReplyEntry> {
        let c = self.caller(&req);
        reply_entry(self.serve(Op::Lookup, parent, || self.fs.lookup(&c, parent, name)))
    }

    async fn forget(&self, _req: Request, inode: Inode, nlookup: u64) {
        let _ = self.serve(Op::Forget, inode, || {
            self.fs.forget(inode, nlookup);
            Ok(())
        });
    }

    async fn batch_forget(&self, _req: Request, inodes: &[(Inode, u64)]) {
        for &(inode, nlookup) in inodes {
            let _ = self.serve(Op::Forget, inode, || {
                self.fs.forget(inode, nlookup);
                Ok(())
            });
        }
    }

    async fn getattr(
        &self,
        req: Request,
        inode: Inode,
        fh: Option<u64>,
        _flags: u32,
    ) -> Result<ReplyAttr> {
        let c = self.caller(&req);
        let (attr, ttl) = self
            .serve(Op::Getattr, inode, || self.fs.getattr(&c, inode, fh))
            .map_err(errno)?;
        Ok(ReplyAttr {
            ttl,
            attr: file_attr(&attr),
        })
    }

    async fn setattr(
        &self,
        req: Request,
        inode: Inode,
        fh: Option<u64>,
        set_attr: ::fuse3::SetAttr,
    ) -> Result<ReplyAttr> {
        let c = self.caller(&req);
        let set = SetAttr {
            mode: set_attr.mode,
            uid: set_attr.uid,
            gid: set_attr.gid,
            size: set_attr.size,
            atime: set_attr.atime.map(time_spec),
            mtime: set_attr.mtime.map(time_spec),
            fh,
        };
        let (attr, ttl) = self
            .serve(Op::Setattr, inode, || self.fs.setattr(&c, inode, set))
            .map_err(errno)?;
        Ok(ReplyAttr {
            ttl,
            attr: file_attr(&attr),
        })
    }

    async fn readlink(&self, req: Request, inode: Inode) -> Result<ReplyData> {
        let c = self.caller(&req);
        let target = self
            .serve(Op::Readlink, inode, || self.fs.readlink(&c, inode))
            .map_err(errno)?;
        Ok(ReplyData {
            data: target.into(),
        })
    }

    async fn mknod(
        &self,
        req: Request,
        parent: Inode,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<ReplyEntry> {
        let c = self.caller(&req);
        // fuse3 drops the umask of MKNOD; the kernel has applied it to `mode` already.
        reply_entry(self.serve(Op::Mknod, parent, || {
            self.fs.mknod(&c, parent, name, mode, 0, rdev)
        }))
    }

    async fn mkdir(
        &self,
        req: Request,
        parent: Inode,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<ReplyEntry> {
        let c = self.caller(&req);
        reply_entry(self.serve(Op::Mkdir, parent, || {
            self.fs.mkdir(&c, parent, name, mode, umask)
        }))
    }

    async fn unlink(&self, req: Request, parent: Inode, name: &OsStr) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Unlink, parent, || self.fs.unlink(&c, parent, name)))
    }

    async fn rmdir(&self, req: Request, parent: Inode, name: &OsStr) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Rmdir, parent, || self.fs.rmdir(&c, parent, name)))
    }

    async fn symlink(
        &self,
        req: Request,
        parent: Inode,
        name: &OsStr,
        link: &OsStr,
    ) -> Result<ReplyEntry> {
        let c = self.caller(&req);
        reply_entry(self.serve(Op::Symlink, parent, || {
            self.fs.symlink(&c, parent, name, link)
        }))
    }

    async fn rename(
        &self,
        req: Request,
        parent: Inode,
        name: &OsStr,
        new_parent: Inode,
        new_name: &OsStr,
    ) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Rename, parent, || {
            self.fs.rename(&c, parent, name, new_parent, new_name, 0)
        }))
    }

    async fn rename2(
        &self,
        req: Request,
        parent: Inode,
        name: &OsStr,
        new_parent: Inode,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Rename, parent, || {
            self.fs
                .rename(&c, parent, name, new_parent, new_name, flags)
        }))
    }

    async fn link(
        &self,
        req: Request,
        inode: Inode,
        new_parent: Inode,
        new_name: &OsStr,
    ) -> Result<ReplyEntry> {
        let c = self.caller(&req);
        reply_entry(self.serve(Op::Link, inode, || {
            self.fs.link(&c, inode, new_parent, new_name)
        }))
    }

    async fn open(&self, req: Request, inode: Inode, flags: u32) -> Result<ReplyOpen> {
        let c = self.caller(&req);
        let o = self
            .serve(Op::Open, inode, || self.fs.open(&c, inode, flags as i32))
            .map_err(errno)?;
        Ok(match self.backing_of(o) {
            (o, Some(id)) => ReplyOpen::passthrough(o.fh, fopen_flags(&o), &id),
            (o, None) => ReplyOpen {
                fh: o.fh,
                flags: fopen_flags(&o),
                backing_id: 0,
            },
        })
    }

    async fn read(
        &self,
        req: Request,
        inode: Inode,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<ReplyData> {
        let read = ReadRequest {
            unique: req.unique,
            caller: self.caller(&req),
            ino: inode,
            fh,
            offset,
            size,
        };
        // A read that may reach a view runs in a blocking section (see `serve`).
        let data = match self.near_views(Op::Read, inode, || self.life.parking.read(read)) {
            Ok(result) => result,
            // A stream waiting for news: the parked-reads thread answers; the request
            // waits as a task of the runtime, and its reader thread goes back to reading.
            Err(waiting) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                self.life.parking.park(
                    waiting,
                    Box::new(move |result| {
                        let _ = tx.send(result);
                    }),
                );
                rx.await.unwrap_or(Err(libc::EIO))
            }
        }
        .map_err(errno)?;
        Ok(ReplyData { data: data.into() })
    }

    async fn interrupt(&self, _req: Request, unique: u64) -> Result<()> {
        self.life.parking.interrupt(unique);
        Ok(())
    }

    async fn write(
        &self,
        req: Request,
        inode: Inode,
        fh: u64,
        offset: u64,
        data: &[u8],
        write_flags: u32,
        _flags: u32,
    ) -> Result<ReplyWrite> {
        let c = self.caller(&req);
        let kill = write_flags & FUSE_WRITE_KILL_SUIDGID != 0;
        let written = self
            .serve(Op::Write, inode, || {
                self.fs.write_dropping(&c, inode, fh, offset, data, kill)
            })
            .map_err(errno)?;
        Ok(ReplyWrite { written })
    }

    async fn flush(&self, req: Request, inode: Inode, fh: u64, _lock_owner: u64) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Flush, inode, || self.fs.flush(&c, inode, fh)))
    }

    async fn release(
        &self,
        req: Request,
        inode: Inode,
        fh: u64,
        _flags: u32,
        _lock_owner: u64,
        _flush: bool,
    ) -> Result<()> {
        let c = self.caller(&req);
        let released = self.serve(Op::Release, inode, || self.fs.release(&c, inode, fh));
        self.backings.release(fh);
        reply_empty(released)
    }

    async fn fsync(&self, req: Request, inode: Inode, fh: u64, datasync: bool) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(
            self.serve_blocking(Op::Fsync, inode, || self.fs.fsync(&c, inode, fh, datasync)),
        )
    }

    async fn opendir(&self, req: Request, inode: Inode, flags: u32) -> Result<ReplyOpen> {
        let c = self.caller(&req);
        reply_open(self.serve(Op::Opendir, inode, || {
            self.fs.opendir(&c, inode, flags as i32)
        }))
    }

    // READDIR(PLUS) through the `_sized` methods of our fuse3 patch, which give the
    // kernel's buffer size: fuse3 silently drops entries past it, and a dropped
    // readdirplus entry would leave a lookup counted in the core that the kernel never
    // got. Filled to that size, as fuser's replies are (the kernel asks for up to
    // `max_pages`, e.g. 32 KiB for a getdents of glibc's readdir, not one page).
    async fn readdir_sized<'a>(
        &'a self,
        req: Request,
        parent: Inode,
        fh: u64,
        offset: i64,
        size: u32,
    ) -> Result<ReplyDirectory<impl Stream<Item = Result<DirectoryEntry>> + Send + 'a>> {
        let c = self.caller(&req);
        let budget = size as usize;
        let mut entries = Vec::new();
        let mut used = 0;
        // `add` returns false when the budget is spent and the entry was not added.
        self.serve(Op::Readdir, parent, || {
            self.fs.readdir(&c, parent, fh, offset as u64, &mut |item| {
                let size = common::dirent_size(DIRENT_HEADER, item.name.len());
                if used + size > budget {
                    return false;
                }
                used += size;
                entries.push(Ok(DirectoryEntry {
                    inode: item.ino,
                    kind: file_type(item.kind),
                    name: OsString::from(&*item.name),
                    offset: item.offset as i64,
                }));
                true
            })
        })
        .map_err(errno)?;
        Ok(ReplyDirectory {
            entries: stream::iter(entries),
        })
    }

    async fn readdirplus_sized<'a>(
        &'a self,
        req: Request,
        parent: Inode,
        fh: u64,
        offset: u64,
        _lock_owner: u64,
        size: u32,
    ) -> Result<ReplyDirectoryPlus<impl Stream<Item = Result<DirectoryEntryPlus>> + Send + 'a>>
    {
        let c = self.caller(&req);
        let budget = size as usize;
        let mut entries = Vec::new();
        let mut used = 0;
        // As fuser, which can only take the entry's inode and type from its attributes.
        self.serve(Op::Readdirplus, parent, || {
            self.fs
                .readdirplus(&c, parent, fh, offset, &mut |item, entry| {
                    let size = common::dirent_size(DIRENTPLUS_HEADER, item.name.len());
                    if used + size > budget {
                        return false;
                    }
                    used += size;
                    let ttl = common::entry_ttl(entry);
                    entries.push(Ok(DirectoryEntryPlus {
                        inode: entry.attr.ino,
                        generation: entry.generation,
                        kind: file_type(entry.attr.kind),
                        name: OsString::from(&*item.name),
                        offset: item.offset as i64,
                        attr: file_attr(&entry.attr),
                        entry_ttl: ttl,
                        attr_ttl: ttl,
                    }));
                    true
                })
        })
        .map_err(errno)?;
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(entries),
        })
    }

    async fn releasedir(&self, req: Request, inode: Inode, fh: u64, _flags: u32) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Releasedir, inode, || self.fs.releasedir(&c, inode, fh)))
    }

    async fn fsyncdir(&self, req: Request, inode: Inode, fh: u64, datasync: bool) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve_blocking(Op::Fsyncdir, inode, || {
            self.fs.fsyncdir(&c, inode, fh, datasync)
        }))
    }

    async fn statfs(&self, req: Request, inode: Inode) -> Result<ReplyStatFs> {
        let c = self.caller(&req);
        let s = self
            .serve(Op::Statfs, inode, || self.fs.statfs(&c, inode))
            .map_err(errno)?;
        Ok(ReplyStatFs {
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            bsize: s.bsize,
            namelen: s.namelen,
            frsize: s.frsize,
        })
    }

    async fn access(&self, req: Request, inode: Inode, mask: u32) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Access, inode, || self.fs.access(&c, inode, mask as i32)))
    }

    async fn create(
        &self,
        req: Request,
        parent: Inode,
        name: &OsStr,
        mode: u32,
        flags: u32,
    ) -> Result<ReplyCreated> {
        let c = self.caller(&req);
        // fuse3 drops the umask of CREATE; the kernel has applied it to `mode` already.
        let (e, o) = self
            .serve(Op::Create, parent, || {
                self.fs.create(&c, parent, name, mode, 0, flags as i32)
            })
            .map_err(errno)?;
        let (ttl, attr) = (common::entry_ttl(&e), file_attr(&e.attr));
        Ok(match self.backing_of(o) {
            (o, Some(id)) => {
                ReplyCreated::passthrough(ttl, attr, e.generation, o.fh, fopen_flags(&o), &id)
            }
            (o, None) => ReplyCreated {
                ttl,
                attr,
                generation: e.generation,
                fh: o.fh,
                flags: fopen_flags(&o),
                backing_id: 0,
            },
        })
    }

    async fn fallocate(
        &self,
        req: Request,
        inode: Inode,
        fh: u64,
        offset: u64,
        length: u64,
        mode: u32,
    ) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve_blocking(Op::Fallocate, inode, || {
            self.fs
                .fallocate(&c, inode, fh, offset, length, mode as i32)
        }))
    }

    async fn setxattr(
        &self,
        req: Request,
        inode: Inode,
        name: &OsStr,
        value: &[u8],
        flags: u32,
        _position: u32,
    ) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Setxattr, inode, || {
            self.fs.setxattr(&c, inode, name, value, flags as i32)
        }))
    }

    async fn getxattr(
        &self,
        req: Request,
        inode: Inode,
        name: &OsStr,
        size: u32,
    ) -> Result<ReplyXAttr> {
        let c = self.caller(&req);
        reply_xattr(self.serve(Op::Getxattr, inode, || {
            self.fs.getxattr(&c, inode, name, size)
        }))
    }

    async fn listxattr(&self, req: Request, inode: Inode, size: u32) -> Result<ReplyXAttr> {
        let c = self.caller(&req);
        reply_xattr(self.serve(Op::Listxattr, inode, || self.fs.listxattr(&c, inode, size)))
    }

    async fn removexattr(&self, req: Request, inode: Inode, name: &OsStr) -> Result<()> {
        let c = self.caller(&req);
        reply_empty(self.serve(Op::Removexattr, inode, || {
            self.fs.removexattr(&c, inode, name)
        }))
    }
}
