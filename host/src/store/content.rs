//! The bytes of one live file: its committed object, and while it is being written, a
//! scratch copy that becomes a new object when the file is closed or fsync'd.
//!
//! With FUSE passthrough the kernel reads (and through a writable mapping may write) an
//! open file straight from a local file, its *backing*: the committed object, or the
//! scratch copy. The kernel insists on one backing per inode while any passthrough
//! handle is open, and on no mixing with handles that use its page cache; the counts
//! here mirror that, so every open is answered in the mode the kernel will accept.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use rustc_hash::FxHashSet;

use super::objects::{copy_prefix, detach_mark, still_object, Hash, ObjectStore, Objects};

pub struct Content {
    state: Mutex<ContentState>,
    /// Open handles that may write; while any is open, a truncate waits for close to commit.
    writers: AtomicU32,
    /// Handles opened on an older version of the file are open on this host (another
    /// host's close replaced it under them, [`Content::newer`]): they read what they
    /// opened, so the kernel's pages of this file cannot be kept across opens.
    older_open: AtomicBool,
    /// Handles open that write without this process seeing it
    /// ([`HandleMode::writes_unseen`]): read first by every attribute answer, which
    /// then needs nothing more for almost every file.
    unseen_writers: AtomicU32,
    /// The backing those handles write. A leaf lock, taken under the tree's lock to
    /// answer attributes: the size and mtime are that file's.
    unseen_file: Mutex<Option<Arc<File>>>,
}

pub struct ContentState {
    committed: Option<Hash>,
    /// Open file of the committed object (opened on first read), and the
    /// [`detach_mark`] taken before it was opened.
    object: Option<(Arc<File>, u64)>,
    // Boxed: a hasher is ~2 KiB, and only files being written have one.
    scratch: Option<Box<Scratch>>,
    /// The file the kernel serves passthrough handles from, while any is open.
    backing: Option<Backing>,
    /// Handles open in the kernel's cached mode (page cache or direct I/O).
    cached_opens: u32,
    /// Handles open with passthrough, all on `backing`.
    passthrough_opens: u32,
    /// Of those, the writable ones: the kernel may write the scratch copy without telling
    /// us (their mappings write the backing, and a lone writer's writes go there
    /// directly), so its size is asked of the file, and a commit hashes it whole.
    passthrough_writers: u32,
    /// Served by passthrough since the last cached open: the kernel's pages of the file
    /// may be older than its bytes.
    pages_stale: bool,
}

struct Scratch {
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    /// Hash of the prefix written so far, kept while writes are sequential from offset 0,
    /// so committing a freshly written file needs no second pass over its bytes.
    hasher: Option<(blake3::Hasher, u64)>,
    /// The bytes equal the committed content (a backing object taken over to be
    /// changed, or committed by copy while it stays the backing): nothing to commit.
    clean: bool,
    /// A passthrough writer had it as backing since it was last hashed whole: it may
    /// have changed unseen even if `clean` (a write through a duplicated descriptor or
    /// a mapping after the commit at close), so it is hashed before it is let go.
    written_unseen: bool,
}

/// The file the kernel reads an inode from while passthrough handles are open.
struct Backing {
    file: Arc<File>,
    /// The committed object itself; `None`: the scratch copy.
    object: Option<Hash>,
    /// The object claimed in [`BackingClaims`] for this backing, held until it ends.
    claimed: Option<Hash>,
}

/// Objects serving as a backing now, process-wide: one object file backs at most one
/// inode, so that taking it over for a writer ([`ObjectStore::detach`]) changes no
/// other file's bytes. A second inode of the same content is served cached.
#[derive(Default)]
pub struct BackingClaims(parking_lot::Mutex<FxHashSet<Hash>>);

impl BackingClaims {
    fn claim(&self, hash: &Hash) -> bool {
        self.0.lock().insert(*hash)
    }

    fn release(&self, hash: &Hash) {
        self.0.lock().remove(hash);
    }

    /// Objects backing an inode now.
    pub fn len(&self) -> usize {
        self.0.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a commit produced: the new content's hash (`None` when empty) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub hash: Option<Hash>,
    pub size: u64,
    /// The kernel wrote some of it without telling us (by passthrough): the tree's size
    /// and times were not updated as it was written. The time (ns) it was last written.
    pub unseen: Option<i64>,
}

/// How the kernel is to serve a new handle ([`ContentState::open_handle`]).
pub struct HandleMode {
    /// By passthrough from this file; `None`: cached.
    pub backing: Option<Arc<File>>,
    /// A cached handle must not keep the kernel's pages from earlier opens: the file
    /// changed while it was served by passthrough, which bypasses those pages.
    pub drop_pages: bool,
    /// A writer whose writes the kernel puts straight into the backing: this process
    /// sees none of them, only the close that commits them.
    pub writes_unseen: bool,
}

/// Which new handles may be served by passthrough ([`ContentState::open_handle`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PassthroughAllowed {
    /// Readers, and writers joining passthrough readers.
    pub readers: bool,
    /// A writer alone on an empty file (just created, or truncated by its open): the
    /// kernel writes an empty scratch copy directly.
    pub lone_writer: bool,
}

impl Content {
    pub fn new(committed: Option<Hash>) -> Arc<Content> {
        Arc::new(Content {
            state: Mutex::new(ContentState {
                committed,
                object: None,
                scratch: None,
                backing: None,
                cached_opens: 0,
                passthrough_opens: 0,
                passthrough_writers: 0,
                pages_stale: false,
            }),
            writers: AtomicU32::new(0),
            older_open: AtomicBool::new(false),
            unseen_writers: AtomicU32::new(0),
            unseen_file: Mutex::new(None),
        })
    }

    /// The content of a file that another host replaced while handles on this host
    /// had it open: those keep the version they opened (this `Content`'s predecessor),
    /// new opens get this one.
    pub fn newer(committed: Option<Hash>) -> Arc<Content> {
        let c = Content::new(committed);
        c.older_open.store(true, Ordering::Release);
        c
    }

    /// Are handles of an older version of this file open on this host?
    pub fn older_open(&self) -> bool {
        self.older_open.load(Ordering::Acquire)
    }

    /// The file's last handle closed: no older version is open any more.
    pub fn no_older_open(&self) {
        self.older_open.store(false, Ordering::Release);
    }

    pub fn lock(&self) -> MutexGuard<'_, ContentState> {
        self.state.lock()
    }

    pub fn add_writer(&self) {
        self.writers.fetch_add(1, Ordering::AcqRel);
    }

    pub fn remove_writer(&self) {
        self.writers.fetch_sub(1, Ordering::AcqRel);
    }

    /// Writable handles open now.
    pub fn writers(&self) -> u32 {
        self.writers.load(Ordering::Acquire)
    }

    pub fn has_writers(&self) -> bool {
        self.writers.load(Ordering::Acquire) > 0
    }

    /// The committed hash (what history and export see).
    pub fn committed(&self) -> Option<Hash> {
        self.state.lock().committed
    }

    /// A handle whose writes go straight to `backing` opened ([`HandleMode::writes_unseen`]).
    pub fn unseen_writer_opened(&self, backing: &Arc<File>) {
        let mut file = self.unseen_file.lock();
        *file = Some(backing.clone());
        self.unseen_writers.fetch_add(1, Ordering::AcqRel);
    }

    /// One such handle closed.
    pub fn unseen_writer_closed(&self) {
        let mut file = self.unseen_file.lock();
        let was = self
            .unseen_writers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or(0);
        if was <= 1 {
            *file = None;
        }
    }

    /// While a writer writes unseen: the size and mtime (ns) of the file it writes,
    /// which are the file's own (its mtime starts as the file's, and an explicit one is
    /// set there too: [`set_unseen_mtime`](Self::set_unseen_mtime)). `None` when no such
    /// writer is open (or the file cannot be asked: the tree's attributes stand).
    pub fn unseen_attr(&self) -> Option<(u64, i64)> {
        if self.unseen_writers.load(Ordering::Acquire) == 0 {
            return None;
        }
        let m = self.unseen_file.lock().as_ref()?.metadata().ok()?;
        Some((m.len(), mtime_ns(&m)))
    }

    /// An explicit mtime (`touch -m`, `cp -p`'s futimens before its close) of a file
    /// written unseen: set on the written file, whose mtime stands for the file's until
    /// the commit; a later write moves it on, as it would the file's.
    pub fn set_unseen_mtime(&self, ns: i64) -> io::Result<()> {
        let file = self.unseen_file.lock();
        let Some(file) = file.as_ref() else {
            return Ok(());
        };
        let at = if ns >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64)
        } else {
            std::time::UNIX_EPOCH - std::time::Duration::from_nanos(ns.unsigned_abs())
        };
        file.set_times(std::fs::FileTimes::new().set_modified(at))
    }
}

impl ContentState {
    pub fn committed(&self) -> Option<Hash> {
        self.committed
    }

    /// Replace the committed content (replay of a write event).
    pub fn set_committed(&mut self, hash: Option<Hash>) {
        self.committed = hash;
        self.object = None;
    }

    /// This version's size (what a handle opened on it sees, whatever the tree says).
    pub fn len(&mut self, objects: &dyn ObjectStore) -> io::Result<u64> {
        if let Some(s) = &mut self.scratch {
            if self.passthrough_writers > 0 {
                s.len = s.file.metadata()?.len();
            }
            return Ok(s.len);
        }
        match self.reader(objects)? {
            Some(file) => Ok(file.metadata()?.len()),
            None => Ok(0),
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.scratch
            .as_ref()
            .is_some_and(|s| !s.clean || s.written_unseen || self.passthrough_writers > 0)
    }

    /// Close the committed object's file (the last handle of the live file closed): a
    /// tree of many files read once must not hold a descriptor per file. The next
    /// reader opens it again.
    pub fn close_object(&mut self) {
        self.object = None;
    }

    /// The file to read the current bytes from (`None`: the file is empty).
    pub fn reader(&mut self, objects: &dyn ObjectStore) -> io::Result<Option<Arc<File>>> {
        if let Some(s) = &self.scratch {
            return Ok(Some(s.file.clone()));
        }
        let Some(hash) = self.committed else {
            return Ok(None);
        };
        // An object file another inode's writer took over since it was opened here
        // (same content, [`BackingClaims`]) is no longer these bytes: open the copy.
        if let Some((file, mark)) = &self.object {
            if !still_object(objects, &hash, file, *mark)? {
                self.object = None;
            }
        }
        if self.object.is_none() {
            let mark = detach_mark();
            let file = objects.open_object(&hash).map_err(|e| {
                io::Error::new(e.kind(), format!("object {hash} of a live file: {e}"))
            })?;
            self.object = Some((Arc::new(file), mark));
        }
        Ok(self.object.as_ref().map(|(f, _)| f.clone()))
    }

    /// Count a new handle and say how the kernel is to serve it: `Some(file)`, with
    /// passthrough from `file` (the same file for every handle open together);
    /// `None`, through its cache and this process. `allowed`: where passthrough is in
    /// force for this open. A first reader reads the committed object, or the
    /// uncommitted scratch copy. A writer alone on an empty file writes an empty
    /// scratch copy itself, unseen. A writer joins passthrough readers (the kernel
    /// would refuse it a cached open then) on the scratch copy, taking the object
    /// over if needed; its writes still reach this process.
    pub fn open_handle(
        &mut self,
        objects: &dyn ObjectStore,
        claims: &BackingClaims,
        writable: bool,
        allowed: PassthroughAllowed,
    ) -> io::Result<HandleMode> {
        let mut writes_unseen = false;
        let backing = if self.passthrough_opens > 0 {
            if writable {
                self.scratch_as_backing(objects)?;
                self.passthrough_writer();
            }
            self.backing.as_ref().map(|b| b.file.clone())
        } else if self.cached_opens > 0 {
            None
        } else if writable {
            if allowed.lone_writer && self.is_empty() {
                self.empty_scratch(objects)?;
                writes_unseen = true;
                let backing = self.new_backing(objects, claims)?;
                self.passthrough_writer();
                backing
            } else {
                None
            }
        } else if allowed.readers {
            self.new_backing(objects, claims)?
        } else {
            None
        };
        let mut drop_pages = false;
        match backing {
            Some(_) => {
                self.passthrough_opens += 1;
                self.pages_stale = true;
            }
            None => {
                self.cached_opens += 1;
                drop_pages = std::mem::take(&mut self.pages_stale);
            }
        }
        Ok(HandleMode {
            backing,
            drop_pages,
            writes_unseen,
        })
    }

    /// A writable handle on the backing (the scratch copy) was counted.
    fn passthrough_writer(&mut self) {
        let s = self.scratch.as_mut().expect("the backing's scratch");
        s.hasher = None;
        s.written_unseen = true;
        self.passthrough_writers += 1;
    }

    /// Is this version empty (nothing committed, or a scratch copy cut to nothing)?
    fn is_empty(&self) -> bool {
        match &self.scratch {
            Some(s) => s.len == 0,
            None => self.committed.is_none(),
        }
    }

    /// An empty scratch copy, for a writer of an empty file to write. A new one equals
    /// the (empty) committed content: closing without a write commits nothing.
    fn empty_scratch(&mut self, objects: &dyn ObjectStore) -> io::Result<()> {
        if self.scratch.is_none() {
            let s = self.scratch(objects, 0)?;
            s.clean = true;
        }
        Ok(())
    }

    /// A backing for the first passthrough handle, if there is a file to back it.
    fn new_backing(
        &mut self,
        objects: &dyn ObjectStore,
        claims: &BackingClaims,
    ) -> io::Result<Option<Arc<File>>> {
        let backing = if let Some(s) = &self.scratch {
            Backing {
                file: s.file.clone(),
                object: None,
                claimed: None,
            }
        } else {
            // An empty file has nothing to read; an object backing another inode now
            // cannot back this one too.
            let Some(hash) = self.committed else {
                return Ok(None);
            };
            if !claims.claim(&hash) {
                return Ok(None);
            }
            match objects.open_object(&hash) {
                Ok(file) => Backing {
                    file: Arc::new(file),
                    object: Some(hash),
                    claimed: Some(hash),
                },
                Err(e) => {
                    claims.release(&hash);
                    return Err(e);
                }
            }
        };
        let file = backing.file.clone();
        self.backing = Some(backing);
        Ok(Some(file))
    }

    /// The kernel turned down passthrough for a handle [`open_handle`](Self::open_handle)
    /// gave a backing: it is served cached after all.
    pub fn passthrough_refused(&mut self, claims: &BackingClaims, writable: bool) {
        self.close_handle(true, writable, claims);
        self.cached_opens += 1;
    }

    /// A handle counted by [`open_handle`](Self::open_handle) closed. The last
    /// passthrough handle ends the backing; a scratch copy that holds nothing
    /// uncommitted goes with it.
    pub fn close_handle(&mut self, passthrough: bool, writable: bool, claims: &BackingClaims) {
        if !passthrough {
            self.cached_opens = self.cached_opens.saturating_sub(1);
            return;
        }
        self.passthrough_opens = self.passthrough_opens.saturating_sub(1);
        if writable {
            self.passthrough_writers = self.passthrough_writers.saturating_sub(1);
            if let Some(s) = &mut self.scratch {
                // What the kernel wrote unseen: from now on every change is seen.
                if let Ok(m) = s.file.metadata() {
                    s.len = m.len();
                }
            }
        }
        if self.passthrough_opens > 0 {
            return;
        }
        if let Some(b) = self.backing.take() {
            if let Some(hash) = b.claimed {
                claims.release(&hash);
            }
        }
        // A copy written unseen stays until a commit has hashed it: it may hold writes
        // made after the last one.
        if self
            .scratch
            .as_ref()
            .is_some_and(|s| s.clean && !s.written_unseen)
        {
            self.discard();
        }
    }

    /// Is the kernel serving this file by passthrough now?
    pub fn has_backing(&self) -> bool {
        self.backing.is_some()
    }

    /// Make the scratch copy the backing's file: while a backing is open, every change
    /// goes to the file the kernel reads. A backing object is taken over for it.
    fn scratch_as_backing(&mut self, objects: &dyn ObjectStore) -> io::Result<()> {
        let Some(b) = &mut self.backing else {
            return Ok(());
        };
        let Some(hash) = b.object else {
            return Ok(()); // the scratch copy is the backing already
        };
        let len = b.file.metadata()?.len();
        let path = objects.detach(&hash, &b.file)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        b.object = None;
        // The object this state had open may be the file taken over.
        self.object = None;
        self.scratch = Some(Box::new(Scratch {
            file: Arc::new(file),
            path,
            len,
            hasher: None,
            clean: true,
            written_unseen: false,
        }));
        Ok(())
    }

    /// Start a scratch copy if there is none. `keep` bytes of the committed content are
    /// copied into it (0 when the caller is about to truncate to empty).
    fn scratch(&mut self, objects: &dyn ObjectStore, keep: u64) -> io::Result<&mut Scratch> {
        if self.scratch.is_none() && self.backing.is_some() {
            // The kernel reads the backing: the change goes there.
            self.scratch_as_backing(objects)?;
        }
        if self.scratch.is_none() {
            let (file, path) = objects.new_scratch()?;
            let mut len = 0;
            if keep > 0 {
                let copied = self
                    .reader(objects)
                    .and_then(|src| src.map_or(Ok(0), |src| copy_prefix(&src, &file, keep)));
                match copied {
                    Ok(n) => len = n,
                    Err(e) => {
                        // A copy that did not fit (a full disk) leaves no scratch file.
                        let _ = std::fs::remove_file(&path);
                        return Err(e);
                    }
                }
            }
            let hasher = (len == 0).then(|| (blake3::Hasher::new(), 0));
            self.scratch = Some(Box::new(Scratch {
                file: Arc::new(file),
                path,
                len,
                hasher,
                clean: false,
                written_unseen: false,
            }));
        }
        Ok(self.scratch.as_mut().expect("just created"))
    }

    /// Write `data` at `offset` into the scratch copy. `size` is the file's current size.
    pub fn write_at(
        &mut self,
        objects: &dyn ObjectStore,
        size: u64,
        offset: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let s = self.scratch(objects, size)?;
        s.clean = false;
        let end = offset + data.len() as u64;
        if let Err(e) = s.file.write_all_at(data, offset) {
            // A refused write leaves nothing behind: a full disk may have taken part of
            // it, which is cut (so no commit can take bytes the caller was told failed),
            // and an overwrite may have changed bytes the running hash has seen.
            if end > s.len {
                let _ = s.file.set_len(s.len);
            }
            if offset < s.len {
                s.hasher = None;
            }
            return Err(e);
        }
        match &mut s.hasher {
            Some((h, upto)) if *upto == offset && s.len == offset => {
                h.update(data);
                *upto = end;
            }
            _ => s.hasher = None,
        }
        s.len = s.len.max(end);
        Ok(())
    }

    /// Set the size to `size` (cutting or extending with zeros). `cur` is the current size.
    pub fn truncate(&mut self, objects: &dyn ObjectStore, cur: u64, size: u64) -> io::Result<()> {
        if size == 0 && self.backing.is_none() {
            // Nothing survives: start over rather than copy what would be cut (a backing
            // is cut in place: the kernel reads that very file).
            if let Some(s) = self.scratch.take() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
        let s = self.scratch(objects, cur.min(size))?;
        s.clean = false;
        s.file.set_len(size)?;
        match &s.hasher {
            Some((_, upto)) if *upto == size => {}
            _ if size == 0 => s.hasher = Some((blake3::Hasher::new(), 0)),
            _ => s.hasher = None,
        }
        s.len = size;
        Ok(())
    }

    /// Turn the scratch copy into an object. `None` when there was nothing to commit.
    pub fn commit(
        &mut self,
        objects: &dyn ObjectStore,
        durable: bool,
    ) -> io::Result<Option<Committed>> {
        if self.backing.is_some() {
            return self.commit_copy(objects, durable);
        }
        let Some(mut s) = self.scratch.take() else {
            return Ok(None);
        };
        let unseen = if s.written_unseen {
            let m = s.file.metadata()?;
            s.len = m.len();
            Some(mtime_ns(&m))
        } else {
            None
        };
        let hash = match s.hasher {
            Some((h, upto)) if upto == s.len => Hash::from(h.finalize()),
            _ => Objects::hash_file(&s.file)?,
        };
        if s.clean && unchanged(self.committed, s.len, &hash) {
            std::fs::remove_file(&s.path)?;
            return Ok(None);
        }
        if s.len == 0 {
            std::fs::remove_file(&s.path)?;
            self.committed = None;
            self.object = None;
            return Ok(Some(Committed {
                hash: None,
                size: 0,
                unseen,
            }));
        }
        if let Err(e) = objects.adopt(&s.path, &s.file, &hash, durable) {
            // Keep the scratch copy: the bytes are still the file's current content.
            self.scratch = Some(Box::new(Scratch {
                hasher: None,
                clean: false,
                ..*s
            }));
            return Err(e);
        }
        self.committed = Some(hash);
        // The scratch descriptor now reads the object (same inode): reuse it.
        self.object = Some((s.file, detach_mark()));
        Ok(Some(Committed {
            hash: Some(hash),
            size: s.len,
            unseen,
        }))
    }

    /// [`commit`](Self::commit) of a scratch copy that is the kernel's backing: it stays
    /// the file the kernel reads (and writable handles may still change it), and the
    /// object is a copy of it, hashed from the copy, so that what is stored is exactly
    /// what its hash names.
    fn commit_copy(
        &mut self,
        objects: &dyn ObjectStore,
        durable: bool,
    ) -> io::Result<Option<Committed>> {
        let writing = self.passthrough_writers > 0;
        let Some(s) = self.scratch.as_mut() else {
            return Ok(None); // the backing is the committed object: nothing changed
        };
        let unseen = writing || s.written_unseen;
        if s.clean && !unseen {
            return Ok(None);
        }
        let (copy, path) = objects.new_scratch()?;
        // The time of the last write the copy holds: read before copying.
        let written_at = if unseen {
            Some(s.file.metadata().map(|m| mtime_ns(&m))?)
        } else {
            None
        };
        let copied = copy_prefix(&s.file, &copy, u64::MAX).and_then(|n| {
            let hash = match &s.hasher {
                Some((h, upto)) if !unseen && *upto == n => Hash::from(h.finalize()),
                _ => Objects::hash_file(&copy)?,
            };
            Ok((n, hash))
        });
        let (len, hash) = match copied {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        s.len = len;
        // Copied after the last writer closed: nothing written unseen escaped the copy.
        s.written_unseen = writing;
        if s.clean && unchanged(self.committed, len, &hash) {
            std::fs::remove_file(&path)?;
            return Ok(None);
        }
        if len == 0 {
            std::fs::remove_file(&path)?;
        } else if let Err(e) = objects.adopt(&path, &copy, &hash, durable) {
            let _ = std::fs::remove_file(&path);
            s.clean = false;
            return Err(e);
        }
        s.clean = true;
        self.committed = (len > 0).then_some(hash);
        self.object = None;
        Ok(Some(Committed {
            hash: self.committed,
            size: len,
            unseen: written_at,
        }))
    }

    /// Drop uncommitted bytes (the file was unlinked and closed: nobody can see them).
    pub fn discard(&mut self) {
        if let Some(s) = self.scratch.take() {
            let _ = std::fs::remove_file(&s.path);
        }
    }
}

/// A file's mtime in ns since the epoch.
fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// Do `len` bytes hashing to `hash` equal the committed content?
fn unchanged(committed: Option<Hash>, len: u64, hash: &Hash) -> bool {
    match committed {
        None => len == 0,
        Some(c) => len > 0 && c == *hash,
    }
}

/// Read up to `len` bytes at `offset`; short only at end of file.
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    const ANY: PassthroughAllowed = PassthroughAllowed {
        readers: true,
        lone_writer: true,
    };

    fn object(objects: &Objects, bytes: &[u8]) -> Hash {
        objects.put_reader(&mut &bytes[..]).unwrap().0.unwrap()
    }

    fn bytes_of(file: &File) -> Vec<u8> {
        read_at(file, 0, 1 << 20).unwrap()
    }

    #[test]
    fn a_writer_joining_readers_takes_the_object_over_and_leaves_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::open(dir.path()).unwrap();
        let claims = BackingClaims::default();
        let hash = object(&objects, b"original");
        let content = Content::new(Some(hash));
        let mut c = content.lock();

        // A first reader reads the object itself.
        let read = c.open_handle(&objects, &claims, false, ANY).unwrap();
        let backing = read.backing.expect("passthrough for a first reader");
        assert_eq!(bytes_of(&backing), b"original");
        assert_eq!(claims.len(), 1);
        let object_ino = std::fs::metadata(objects.path(&hash)).unwrap().ino();
        assert_eq!(backing.metadata().unwrap().ino(), object_ino);

        // Another file of the same content is served cached: the object backs one inode.
        let twin = Content::new(Some(hash));
        let mode = twin
            .lock()
            .open_handle(&objects, &claims, false, ANY)
            .unwrap();
        assert!(mode.backing.is_none());

        // A writer joins on the same file, which is no longer the object: a copy is.
        let write = c.open_handle(&objects, &claims, true, ANY).unwrap();
        assert!(Arc::ptr_eq(&write.backing.unwrap(), &backing));
        assert_ne!(
            std::fs::metadata(objects.path(&hash)).unwrap().ino(),
            object_ino
        );
        c.write_at(&objects, 8, 0, b"CHANGED!").unwrap();
        assert_eq!(bytes_of(&backing), b"CHANGED!", "readers see the write");
        assert_eq!(bytes_of(&objects.open_object(&hash).unwrap()), b"original");
        assert_eq!(
            twin.lock()
                .reader(&objects)
                .unwrap()
                .map(|f| bytes_of(&f))
                .unwrap(),
            b"original"
        );

        // The commit stores a copy; the backing stays the file the kernel reads.
        let done = c.commit(&objects, false).unwrap().expect("a change");
        assert_eq!(done.size, 8);
        assert!(
            done.unseen.is_some(),
            "a writable passthrough handle may have written unseen"
        );
        let new = done.hash.unwrap();
        assert_eq!(bytes_of(&objects.open_object(&new).unwrap()), b"CHANGED!");
        assert_ne!(
            std::fs::metadata(objects.path(&new)).unwrap().ino(),
            object_ino
        );
        // Nothing new since: a second commit finds the bytes unchanged.
        assert!(c.commit(&objects, false).unwrap().is_none());

        // The last handles close: the backing ends, its claim and its clean copy with it.
        c.close_handle(true, true, &claims);
        assert!(c.has_backing());
        // The writer's release commits (the core's order): nothing new since.
        assert!(c.commit(&objects, false).unwrap().is_none());
        c.close_handle(true, false, &claims);
        assert!(!c.has_backing());
        assert!(claims.is_empty());
        assert!(!c.is_dirty());
        assert_eq!(
            std::fs::read_dir(dir.path().join("scratch"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_cached_handle_after_passthrough_drops_the_kernels_pages() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::open(dir.path()).unwrap();
        let claims = BackingClaims::default();
        let content = Content::new(Some(object(&objects, b"abc")));
        let mut c = content.lock();
        let first = c.open_handle(&objects, &claims, false, ANY).unwrap();
        assert!(first.backing.is_some() && !first.drop_pages);
        c.close_handle(true, false, &claims);
        // A writer alone is served cached, and must not keep pages older than the file.
        let writer = c.open_handle(&objects, &claims, true, ANY).unwrap();
        assert!(writer.backing.is_none());
        assert!(writer.drop_pages);
        // While it is open no reader can join by passthrough (the kernel refuses a mix).
        let reader = c.open_handle(&objects, &claims, false, ANY).unwrap();
        assert!(reader.backing.is_none() && !reader.drop_pages);
    }

    #[test]
    fn a_lone_writer_of_an_empty_file_writes_unseen_and_is_committed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::open(dir.path()).unwrap();
        let claims = BackingClaims::default();
        let content = Content::new(None);
        let mut c = content.lock();
        let mode = c.open_handle(&objects, &claims, true, ANY).unwrap();
        assert!(mode.writes_unseen);
        let backing = mode.backing.expect("passthrough for a lone writer");
        assert!(c.is_dirty(), "an open writer may write unseen");
        // Closed without a write: nothing to commit.
        c.close_handle(true, true, &claims);
        assert!(c.commit(&objects, false).unwrap().is_none());
        drop(backing);

        // The kernel writes the backing; this process sees only the close.
        let mode = c.open_handle(&objects, &claims, true, ANY).unwrap();
        let backing = mode.backing.unwrap();
        backing.write_all_at(b"written by the kernel", 0).unwrap();
        assert_eq!(c.len(&objects).unwrap(), 21, "the size is the file's");
        let ino = backing.metadata().unwrap().ino();
        c.close_handle(true, true, &claims);
        let done = c.commit(&objects, false).unwrap().expect("a change");
        assert_eq!(done.size, 21);
        assert!(done.unseen.is_some(), "the time of the kernel's last write");
        let hash = done.hash.unwrap();
        assert_eq!(
            std::fs::metadata(objects.path(&hash)).unwrap().ino(),
            ino,
            "committed in place: the scratch copy became the object"
        );

        // A writer of a non-empty file is served cached.
        let mode = c.open_handle(&objects, &claims, true, ANY).unwrap();
        assert!(mode.backing.is_none() && !mode.writes_unseen);
    }

    #[test]
    fn a_commit_while_the_lone_writer_is_open_copies_so_the_object_never_changes() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::open(dir.path()).unwrap();
        let claims = BackingClaims::default();
        let content = Content::new(None);
        let mut c = content.lock();
        let backing = c
            .open_handle(&objects, &claims, true, ANY)
            .unwrap()
            .backing
            .unwrap();
        backing.write_all_at(b"first", 0).unwrap();
        // A close of one descriptor while another (a duplicate, a mapping) stays open.
        let first = c.commit(&objects, false).unwrap().expect("a change");
        let hash = first.hash.unwrap();
        assert_ne!(
            std::fs::metadata(objects.path(&hash)).unwrap().ino(),
            backing.metadata().unwrap().ino(),
            "the object is a copy"
        );
        backing.write_all_at(b"FIRST, then more", 0).unwrap();
        assert_eq!(bytes_of(&objects.open_object(&hash).unwrap()), b"first");
        // The last handle goes: the later writes are committed, in place.
        c.close_handle(true, true, &claims);
        let second = c
            .commit(&objects, false)
            .unwrap()
            .expect("the later writes");
        assert_eq!(second.size, 16);
        assert_eq!(
            bytes_of(&objects.open_object(&second.hash.unwrap()).unwrap()),
            b"FIRST, then more"
        );
        assert_eq!(bytes_of(&objects.open_object(&hash).unwrap()), b"first");
        // Nothing written since: nothing more to commit, no scratch copy left.
        assert!(c.commit(&objects, false).unwrap().is_none());
        assert_eq!(
            std::fs::read_dir(dir.path().join("scratch"))
                .unwrap()
                .count(),
            0
        );
    }
}
