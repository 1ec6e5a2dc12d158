//! [`Fs`]: the one filesystem both adapters serve. Every method takes the caller and
//! returns a typed errno on failure; none of them blocks on the kernel.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::Store;

pub struct Fs {
    _p: (),
}

#[allow(unused_variables)]
impl Fs {
    /// Open the filesystem over a store (replays the store's log into the live tree).
    pub fn new(store: Arc<Store>, config: FsConfig) -> anyhow::Result<Fs> {
        todo!()
    }

    pub fn config(&self) -> &FsConfig {
        todo!()
    }

    /// Resolve `name` in `parent`. A missing name answers `Ok` with a negative entry
    /// (`attr.ino == 0`) so the kernel caches the miss; adapters pass it through as is.
    /// A positive answer counts one kernel lookup reference (see [`Fs::forget`]).
    pub fn lookup(&self, caller: &Caller, parent: Ino, name: &OsStr) -> FsResult<Entry> {
        todo!()
    }

    /// The kernel drops `nlookup` references to `ino`.
    pub fn forget(&self, ino: Ino, nlookup: u64) {
        todo!()
    }

    /// Attributes and how long the kernel may cache them.
    pub fn getattr(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: Option<u64>,
    ) -> FsResult<(Attr, Duration)> {
        todo!()
    }

    pub fn setattr(&self, caller: &Caller, ino: Ino, set: SetAttr) -> FsResult<(Attr, Duration)> {
        todo!()
    }

    pub fn readlink(&self, caller: &Caller, ino: Ino) -> FsResult<Vec<u8>> {
        todo!()
    }

    /// Create a regular file, FIFO or socket (`mode` carries the kind); devices give EPERM.
    pub fn mknod(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> FsResult<Entry> {
        todo!()
    }

    pub fn mkdir(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> FsResult<Entry> {
        todo!()
    }

    pub fn unlink(&self, caller: &Caller, parent: Ino, name: &OsStr) -> FsResult<()> {
        todo!()
    }

    pub fn rmdir(&self, caller: &Caller, parent: Ino, name: &OsStr) -> FsResult<()> {
        todo!()
    }

    pub fn symlink(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &OsStr,
        target: &OsStr,
    ) -> FsResult<Entry> {
        todo!()
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
        todo!()
    }

    pub fn link(
        &self,
        caller: &Caller,
        ino: Ino,
        newparent: Ino,
        newname: &OsStr,
    ) -> FsResult<Entry> {
        todo!()
    }

    /// Open a file; `flags` are the raw `open(2)` flags.
    pub fn open(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        todo!()
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
        todo!()
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
        todo!()
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
        todo!()
    }

    /// `close()` of one descriptor: a dirty file is committed to the store as one event.
    pub fn flush(&self, caller: &Caller, ino: Ino, fh: u64) -> FsResult<()> {
        todo!()
    }

    /// The last reference to a handle is gone.
    pub fn release(&self, caller: &Caller, ino: Ino, fh: u64) -> FsResult<()> {
        todo!()
    }

    /// Commit the file and wait until the store has it on disk.
    pub fn fsync(&self, caller: &Caller, ino: Ino, fh: u64, datasync: bool) -> FsResult<()> {
        todo!()
    }

    pub fn opendir(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        todo!()
    }

    /// Entries after cookie `offset` (0 = from the start, "." and ".." included), handed to
    /// `add` in order until it returns `false` (the reply buffer is full).
    pub fn readdir(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: u64,
        offset: u64,
        add: &mut dyn FnMut(&DirItem) -> bool,
    ) -> FsResult<()> {
        todo!()
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
        todo!()
    }

    pub fn releasedir(&self, caller: &Caller, ino: Ino, fh: u64) -> FsResult<()> {
        todo!()
    }

    pub fn fsyncdir(&self, caller: &Caller, ino: Ino, fh: u64, datasync: bool) -> FsResult<()> {
        todo!()
    }

    pub fn statfs(&self, caller: &Caller, ino: Ino) -> FsResult<StatFs> {
        todo!()
    }

    /// `access(2)`: `mask` is R_OK|W_OK|X_OK bits, or F_OK (0).
    pub fn access(&self, caller: &Caller, ino: Ino, mask: i32) -> FsResult<()> {
        todo!()
    }

    /// `fallocate(2)` with mode 0 (allocate, extend size) or FALLOC_FL_KEEP_SIZE.
    pub fn fallocate(
        &self,
        caller: &Caller,
        ino: Ino,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> FsResult<()> {
        todo!()
    }

    /// The kernel is unmounting: commit what is dirty and flush the store.
    pub fn destroy(&self) {
        todo!()
    }
}
