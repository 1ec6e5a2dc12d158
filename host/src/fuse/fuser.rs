//! Adapter for the `fuser` crate (threaded): each kernel request runs on one of
//! `worker_threads` session threads (one cloned /dev/fuse fd each), calls the core and
//! replies. Translation only; the twin of `fuse3.rs`, method for method.

use std::ffi::OsStr;
use std::io;
use std::mem::ManuallyDrop;
use std::path::Path;
use std::time::{Instant, UNIX_EPOCH};

use ::fuser::{
    AccessFlags, BackgroundSession, BackingId, Config, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, MountOption,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL,
    TimeOrNow, WriteFlags,
};
use anyhow::Context;

use super::common::{self, run, Backings, KernelSettings, Lifecycle};
use super::mountpoint::{self, Unmounted};
use super::parking::ReadRequest;
use super::*;
use crate::core::{
    ns_to_system_time, system_time_to_ns, Attr, Caller, Entry, FileKind, KernelCache, Mount, Op,
    Opened, SetAttr, TimeSpec, XattrReply,
};

/// INIT capabilities, each requested when the kernel offers it. This is the set fuse3
/// 0.10 answers with (it is hard-wired there), minus FUSE_POSIX_ACL which both adapters
/// avoid, plus FUSE_HANDLE_KILLPRIV_V2, which fuse3 asks for through our patch: with it the kernel
/// marks the superblock SB_NOSEC and stops asking GETXATTR(security.capability) before
/// every write to an inode it has checked once, and leaves dropping set-ID bits to the
/// core (which does it on both backends alike: `Fs::drop_suid_sgid`). Notably absent:
/// FUSE_WRITEBACK_CACHE (the core must see every write), FUSE_DONT_MASK (the kernel
/// applies the umask), FUSE_POSIX_LOCKS/FLOCK_LOCKS (locks stay local to the kernel).
const CAPABILITIES: [InitFlags; 16] = [
    InitFlags::FUSE_ASYNC_READ,
    InitFlags::FUSE_FILE_OPS,
    InitFlags::FUSE_ATOMIC_O_TRUNC,
    InitFlags::FUSE_EXPORT_SUPPORT,
    InitFlags::FUSE_BIG_WRITES,
    InitFlags::FUSE_SPLICE_WRITE,
    InitFlags::FUSE_SPLICE_MOVE,
    InitFlags::FUSE_SPLICE_READ,
    InitFlags::FUSE_AUTO_INVAL_DATA,
    InitFlags::FUSE_DO_READDIRPLUS,
    InitFlags::FUSE_READDIRPLUS_AUTO,
    InitFlags::FUSE_ASYNC_DIO,
    InitFlags::FUSE_PARALLEL_DIROPS,
    InitFlags::FUSE_MAX_PAGES,
    InitFlags::FUSE_CACHE_SYMLINKS,
    InitFlags::FUSE_HANDLE_KILLPRIV_V2,
];

/// Mount `fs` with fuser and serve it until the mount goes away or `stop` fires.
pub fn serve(
    fs: Arc<Fs>,
    mount: Arc<Mount>,
    opts: &MountOptions,
    stop: StopSignal,
    ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    let path = opts.mountpoint.as_path();
    let context = || format!("mounting {} with fuser", path.display());

    let settings = KernelSettings::from_config(fs.config());
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        // A kernel option (not fuser's `Subtype`, which its direct mount drops), so the
        // type reads `fuse.lighthouse` whether mount(2) or fusermount3 mounts.
        MountOption::CUSTOM(format!("subtype={}", common::SUBTYPE)),
        MountOption::RW,
        MountOption::NoDev,
        MountOption::NoSuid,
        // The kernel checks the mode bits, with or without a policy (docs/policy.md).
        MountOption::DefaultPermissions,
    ];
    // `All` adds `allow_other`; `Owner` would also make fuser itself refuse other uids,
    // which the kernel already does without allow_other.
    config.acl = if opts.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(fs.config().worker_threads.max(1));
    config.clone_fd = true;

    let life = Lifecycle::new(fs.clone(), mount.clone());
    let adapter = FuserFs {
        fs,
        life: life.clone(),
        settings,
        backings: Default::default(),
    };
    // Mounts and answers the kernel's INIT; no other request is read until `spawn`. The
    // notifier is registered in between: a mount beside another must be told of the
    // other's changes from its very first answer, or a name it cached as missing while
    // no one could tell it otherwise would stay missing (side-by-side mounts).
    let session = ::fuser::Session::new(adapter, path, &config).with_context(context)?;
    mount.set_kernel_cache(Arc::new(Notices(session.notifier())));
    let session = session.spawn().with_context(context)?;
    ready();

    let stopped = loop {
        if session.guard.is_finished() {
            break false;
        }
        if stop.wait_timeout(common::STOP_POLL) {
            break true;
        }
        life.check_attached(path);
    };
    let result = if stopped {
        life.stopping();
        stop_session(session, path)
    } else {
        tracing::info!(mountpoint = %path.display(), "unmounted from outside; fuser session ended");
        end_session(session, path)
    };
    life.destroy_once();
    result
}

/// Unmount (lazily when busy), then wait for the session threads to end: the kernel
/// closes the connection at once after a clean unmount, and only when the last user
/// leaves after a lazy one. `destroy` runs when the threads end, after the last request.
fn stop_session(session: BackgroundSession, path: &Path) -> anyhow::Result<()> {
    let outcome = mountpoint::unmount_with_outcome(path)
        .with_context(|| format!("stopping fuser at {}", path.display()))?;
    if outcome == Unmounted::Lazy {
        let deadline = Instant::now() + common::STOP_GRACE;
        while !session.guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !session.guard.is_finished() {
            tracing::warn!(
                mountpoint = %path.display(),
                "the detached mount is still in use; no longer waiting for its users"
            );
            // The session threads go on serving the detached tree until the last user
            // leaves or the process exits; forgotten, not dropped (see `end_session`).
            std::mem::forget(session);
            return Ok(());
        }
    }
    end_session(session, path)
}

/// The connection is gone (or going): join the session thread, which runs `destroy`
/// after its last request.
///
/// Not `umount_and_join`, nor a plain drop: fuser 0.18 unmounts the mountpoint *path*
/// again when its `Mount` drops, because its `is_mounted` check reads the closed
/// connection's POLLERR as "still mounted" — and by then the path names whatever lies
/// below our mount (a volume mounted there, say). So the session is never dropped; that
/// leaks its /dev/fuse descriptor, whose connection is already closed.
fn end_session(session: BackgroundSession, path: &Path) -> anyhow::Result<()> {
    let session = ManuallyDrop::new(session);
    // SAFETY: `guard` is read out exactly once, and `session` is never used or dropped
    // again, so the handle is not duplicated.
    let guard = unsafe { std::ptr::read(&session.guard) };
    guard
        .join()
        .map_err(|_| anyhow::anyhow!("the fuser session thread panicked"))?
        .with_context(|| format!("serving {} with fuser", path.display()))
}

/// FUSE notifications through fuser: written to /dev/fuse from the caller's thread.
struct Notices(::fuser::Notifier);

impl KernelCache for Notices {
    fn forget_entry(&self, parent: u64, name: &str) -> std::io::Result<()> {
        // fuser already takes ENOENT (not cached) as success.
        self.0.inval_entry(INodeNo(parent), OsStr::new(name))
    }

    fn forget_inode(&self, ino: u64, offset: i64, len: i64) -> std::io::Result<()> {
        self.0.inval_inode(INodeNo(ino), offset, len)
    }
}

struct FuserFs {
    fs: Arc<Fs>,
    life: Arc<Lifecycle>,
    settings: KernelSettings,
    backings: Backings<BackingId>,
}

impl FuserFs {
    fn caller(&self, req: &Request) -> Caller {
        self.fs
            .caller(req.uid(), req.gid(), req.pid(), self.life.mount.id)
    }

    /// Answer an open: with passthrough when the core gave a backing and the kernel
    /// takes it, else cached.
    fn reply_opened(&self, reply: ReplyOpen, result: Result<Opened, i32>) {
        let o = match result {
            Ok(o) => o,
            Err(e) => return reply.error(errno(e)),
        };
        match self
            .backings
            .answer(&self.fs, o, |file| reply.open_backing(file))
        {
            (o, Some(id)) => reply.opened_passthrough(FileHandle(o.fh), fopen_flags(&o), &id),
            (o, None) => reply.opened(FileHandle(o.fh), fopen_flags(&o)),
        }
    }
}

fn errno(errno: i32) -> Errno {
    Errno::from_i32(errno)
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

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks(),
        atime: ns_to_system_time(attr.atime),
        mtime: ns_to_system_time(attr.mtime),
        ctime: ns_to_system_time(attr.ctime),
        crtime: UNIX_EPOCH,
        kind: file_type(attr.kind),
        perm: (attr.perm & 0o7777) as u16,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: attr.rdev,
        blksize: Attr::BLOCK_SIZE,
        flags: 0,
    }
}

fn time_spec(time: TimeOrNow) -> TimeSpec {
    match time {
        TimeOrNow::Now => TimeSpec::Now,
        TimeOrNow::SpecificTime(t) => TimeSpec::At(system_time_to_ns(t)),
    }
}

fn fopen_flags(opened: &Opened) -> FopenFlags {
    let mut flags = FopenFlags::empty();
    if opened.keep_cache {
        flags |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if opened.direct_io {
        flags |= FopenFlags::FOPEN_DIRECT_IO;
    }
    if opened.noflush {
        flags |= FopenFlags::FOPEN_NOFLUSH;
    }
    if opened.cache_dir {
        flags |= FopenFlags::FOPEN_CACHE_DIR;
    }
    flags
}

/// An entry reply, positive or negative (`ino == 0`) alike.
fn reply_entry(reply: ReplyEntry, result: Result<Entry, i32>) {
    match result {
        Ok(e) => reply.entry(
            &common::entry_ttl(&e),
            &file_attr(&e.attr),
            Generation(e.generation),
        ),
        Err(e) => reply.error(errno(e)),
    }
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), i32>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn reply_xattr(reply: ReplyXattr, result: Result<XattrReply, i32>) {
    match result {
        Ok(XattrReply::Size(size)) => reply.size(size),
        Ok(XattrReply::Data(data)) => reply.data(&data),
        Err(e) => reply.error(errno(e)),
    }
}

fn reply_open(reply: ReplyOpen, result: Result<Opened, i32>) {
    match result {
        Ok(o) => reply.opened(FileHandle(o.fh), fopen_flags(&o)),
        Err(e) => reply.error(errno(e)),
    }
}

impl Filesystem for FuserFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        for capability in CAPABILITIES {
            if let Err(missing) = config.add_capabilities(capability) {
                tracing::debug!("kernel does not offer {missing:?}");
            }
        }
        let s = self.settings;
        // Errors name the nearest acceptable value; take it (max_readahead: the kernel
        // only accepts at most what it offered).
        if let Err(nearest) = config.set_max_write(s.max_write) {
            let _ = config.set_max_write(nearest);
        }
        if let Err(nearest) = config.set_max_readahead(s.max_readahead) {
            let _ = config.set_max_readahead(nearest);
        }
        let _ = config.set_max_background(s.max_background);
        let _ = config.set_congestion_threshold(s.congestion_threshold);
        let offered = if !self.fs.passthrough_wanted() {
            Ok(()) // the core knows why it does not want it
        } else if config
            .add_capabilities(InitFlags::FUSE_PASSTHROUGH)
            .is_err()
        {
            Err("the kernel does not offer FUSE passthrough (Linux 6.9+)".to_string())
        } else {
            // Depth 1: the backing files lie on a plain filesystem, and this mount may
            // still sit under a stacking one (overlayfs). 0 would turn passthrough off
            // without a word (every backing registration then fails with EPERM).
            let _ = config.set_max_stack_depth(1);
            Ok(())
        };
        self.fs.passthrough_offered(offered);
        Ok(())
    }

    fn destroy(&mut self) {
        self.life.destroy_once();
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let c = self.caller(req);
        reply_entry(
            reply,
            run(&self.life, Op::Lookup, parent.0, || {
                self.fs.lookup(&c, parent.0, name)
            }),
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _ = run(&self.life, Op::Forget, ino.0, || {
            self.fs.forget(ino.0, nlookup);
            Ok(())
        });
    }

    // batch_forget: fuser's default calls `forget` for each node (its `ForgetOne` type is
    // not exported, so it cannot be overridden).

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let c = self.caller(req);
        match run(&self.life, Op::Getattr, ino.0, || {
            self.fs.getattr(&c, ino.0, fh.map(|fh| fh.0))
        }) {
            Ok((attr, ttl)) => reply.attr(&ttl, &file_attr(&attr)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<::fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let c = self.caller(req);
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time_spec),
            mtime: mtime.map(time_spec),
            fh: fh.map(|fh| fh.0),
        };
        match run(&self.life, Op::Setattr, ino.0, || {
            self.fs.setattr(&c, ino.0, set)
        }) {
            Ok((attr, ttl)) => reply.attr(&ttl, &file_attr(&attr)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let c = self.caller(req);
        match run(&self.life, Op::Readlink, ino.0, || {
            self.fs.readlink(&c, ino.0)
        }) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let c = self.caller(req);
        reply_entry(
            reply,
            run(&self.life, Op::Mknod, parent.0, || {
                self.fs.mknod(&c, parent.0, name, mode, umask, rdev)
            }),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let c = self.caller(req);
        reply_entry(
            reply,
            run(&self.life, Op::Mkdir, parent.0, || {
                self.fs.mkdir(&c, parent.0, name, mode, umask)
            }),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Unlink, parent.0, || {
                self.fs.unlink(&c, parent.0, name)
            }),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Rmdir, parent.0, || {
                self.fs.rmdir(&c, parent.0, name)
            }),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let c = self.caller(req);
        reply_entry(
            reply,
            run(&self.life, Op::Symlink, parent.0, || {
                self.fs.symlink(&c, parent.0, link_name, target.as_os_str())
            }),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Rename, parent.0, || {
                self.fs
                    .rename(&c, parent.0, name, newparent.0, newname, flags.bits())
            }),
        );
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let c = self.caller(req);
        reply_entry(
            reply,
            run(&self.life, Op::Link, ino.0, || {
                self.fs.link(&c, ino.0, newparent.0, newname)
            }),
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let c = self.caller(req);
        self.reply_opened(
            reply,
            run(&self.life, Op::Open, ino.0, || {
                self.fs.open(&c, ino.0, flags.0)
            }),
        );
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let read = ReadRequest {
            unique: req.unique().into(),
            caller: self.caller(req),
            ino: ino.0,
            fh: fh.0,
            offset,
            size,
        };
        let answer = |reply: ReplyData, result: std::result::Result<Vec<u8>, i32>| match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        };
        match self.life.parking.read(read) {
            Ok(result) => answer(reply, result),
            // A stream waiting for news: the parked-reads thread answers, this worker goes on.
            Err(waiting) => self
                .life
                .parking
                .park(waiting, Box::new(move |result| answer(reply, result))),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let c = self.caller(req);
        let kill = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        match run(&self.life, Op::Write, ino.0, || {
            self.fs.write_dropping(&c, ino.0, fh.0, offset, data, kill)
        }) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Flush, ino.0, || {
                self.fs.flush(&c, ino.0, fh.0)
            }),
        );
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        let released = run(&self.life, Op::Release, ino.0, || {
            self.fs.release(&c, ino.0, fh.0)
        });
        self.backings.release(fh.0);
        reply_empty(reply, released);
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Fsync, ino.0, || {
                self.fs.fsync(&c, ino.0, fh.0, datasync)
            }),
        );
    }

    fn opendir(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let c = self.caller(req);
        reply_open(
            reply,
            run(&self.life, Op::Opendir, ino.0, || {
                self.fs.opendir(&c, ino.0, flags.0)
            }),
        );
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let c = self.caller(req);
        // `add` returns true when the buffer is full and the entry was not added.
        let result = run(&self.life, Op::Readdir, ino.0, || {
            self.fs.readdir(&c, ino.0, fh.0, offset, &mut |item| {
                !reply.add(
                    INodeNo(item.ino),
                    item.offset,
                    file_type(item.kind),
                    &*item.name,
                )
            })
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let c = self.caller(req);
        // fuser takes the entry's inode and type from its attributes.
        let result = run(&self.life, Op::Readdirplus, ino.0, || {
            self.fs
                .readdirplus(&c, ino.0, fh.0, offset, &mut |item, entry| {
                    !reply.add(
                        INodeNo(entry.attr.ino),
                        item.offset,
                        &*item.name,
                        &common::entry_ttl(entry),
                        &file_attr(&entry.attr),
                        Generation(entry.generation),
                    )
                })
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Releasedir, ino.0, || {
                self.fs.releasedir(&c, ino.0, fh.0)
            }),
        );
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Fsyncdir, ino.0, || {
                self.fs.fsyncdir(&c, ino.0, fh.0, datasync)
            }),
        );
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let c = self.caller(req);
        match run(&self.life, Op::Statfs, ino.0, || self.fs.statfs(&c, ino.0)) {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Access, ino.0, || {
                self.fs.access(&c, ino.0, mask.bits())
            }),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let c = self.caller(req);
        match run(&self.life, Op::Create, parent.0, || {
            self.fs.create(&c, parent.0, name, mode, umask, flags)
        }) {
            Ok((e, o)) => {
                let ttl = common::entry_ttl(&e);
                let attr = file_attr(&e.attr);
                let generation = Generation(e.generation);
                match self
                    .backings
                    .answer(&self.fs, o, |file| reply.open_backing(file))
                {
                    (o, Some(id)) => reply.created_passthrough(
                        &ttl,
                        &attr,
                        generation,
                        FileHandle(o.fh),
                        fopen_flags(&o),
                        &id,
                    ),
                    (o, None) => {
                        reply.created(&ttl, &attr, generation, FileHandle(o.fh), fopen_flags(&o))
                    }
                }
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Fallocate, ino.0, || {
                self.fs.fallocate(&c, ino.0, fh.0, offset, length, mode)
            }),
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Setxattr, ino.0, || {
                self.fs.setxattr(&c, ino.0, name, value, flags)
            }),
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let c = self.caller(req);
        reply_xattr(
            reply,
            run(&self.life, Op::Getxattr, ino.0, || {
                self.fs.getxattr(&c, ino.0, name, size)
            }),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let c = self.caller(req);
        reply_xattr(
            reply,
            run(&self.life, Op::Listxattr, ino.0, || {
                self.fs.listxattr(&c, ino.0, size)
            }),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let c = self.caller(req);
        reply_empty(
            reply,
            run(&self.life, Op::Removexattr, ino.0, || {
                self.fs.removexattr(&c, ino.0, name)
            }),
        );
    }
}
