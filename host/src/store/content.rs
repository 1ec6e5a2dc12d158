//! The bytes of one live file: its committed object, and while it is being written, a
//! scratch copy that becomes a new object when the file is closed or fsync'd.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::objects::{Hash, ObjectStore, Objects};

pub struct Content {
    state: Mutex<ContentState>,
    /// Open handles that may write; while any is open, a truncate waits for close to commit.
    writers: AtomicU32,
    /// Handles opened on an older version of the file are open on this host (another
    /// host's close replaced it under them, [`Content::newer`]): they read what they
    /// opened, so the kernel's pages of this file cannot be kept across opens.
    older_open: AtomicBool,
}

pub struct ContentState {
    committed: Option<Hash>,
    /// Open file of the committed object (opened on first read).
    object: Option<Arc<File>>,
    // Boxed: a hasher is ~2 KiB, and only files being written have one.
    scratch: Option<Box<Scratch>>,
}

struct Scratch {
    file: Arc<File>,
    path: PathBuf,
    len: u64,
    /// Hash of the prefix written so far, kept while writes are sequential from offset 0,
    /// so committing a freshly written file needs no second pass over its bytes.
    hasher: Option<(blake3::Hasher, u64)>,
}

/// What a commit produced: the new content's hash (`None` when empty) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub hash: Option<Hash>,
    pub size: u64,
}

impl Content {
    pub fn new(committed: Option<Hash>) -> Arc<Content> {
        Arc::new(Content {
            state: Mutex::new(ContentState {
                committed,
                object: None,
                scratch: None,
            }),
            writers: AtomicU32::new(0),
            older_open: AtomicBool::new(false),
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
        if let Some(s) = &self.scratch {
            return Ok(s.len);
        }
        match self.reader(objects)? {
            Some(file) => Ok(file.metadata()?.len()),
            None => Ok(0),
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.scratch.is_some()
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
        if self.object.is_none() {
            self.object = Some(Arc::new(objects.open_object(&hash).map_err(|e| {
                io::Error::new(e.kind(), format!("object {hash} of a live file: {e}"))
            })?));
        }
        Ok(self.object.clone())
    }

    /// Start a scratch copy if there is none. `keep` bytes of the committed content are
    /// copied into it (0 when the caller is about to truncate to empty).
    fn scratch(&mut self, objects: &dyn ObjectStore, keep: u64) -> io::Result<&mut Scratch> {
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
        if size == 0 {
            // Nothing survives: start over rather than copy what would be cut.
            if let Some(s) = self.scratch.take() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
        let s = self.scratch(objects, cur.min(size))?;
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
        let Some(s) = self.scratch.take() else {
            return Ok(None);
        };
        let hash = match s.hasher {
            Some((h, upto)) if upto == s.len => Hash::from(h.finalize()),
            _ => Objects::hash_file(&s.file)?,
        };
        if s.len == 0 {
            std::fs::remove_file(&s.path)?;
            self.committed = None;
            self.object = None;
            return Ok(Some(Committed {
                hash: None,
                size: 0,
            }));
        }
        if let Err(e) = objects.adopt(&s.path, &s.file, &hash, durable) {
            // Keep the scratch copy: the bytes are still the file's current content.
            self.scratch = Some(Box::new(Scratch { hasher: None, ..*s }));
            return Err(e);
        }
        self.committed = Some(hash);
        // The scratch descriptor now reads the object (same inode): reuse it.
        self.object = Some(s.file);
        Ok(Some(Committed {
            hash: Some(hash),
            size: s.len,
        }))
    }

    /// Drop uncommitted bytes (the file was unlinked and closed: nobody can see them).
    pub fn discard(&mut self) {
        if let Some(s) = self.scratch.take() {
            let _ = std::fs::remove_file(&s.path);
        }
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

/// Copy the first `len` bytes of `src` into `dst` in the kernel (copy_file_range), with a
/// read/write fallback where the kernel cannot.
fn copy_prefix(src: &File, dst: &File, len: u64) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let (mut off_in, mut off_out) = (0i64, 0i64);
    while (off_in as u64) < len {
        let want = (len - off_in as u64).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call; the offsets
        // are valid pointers to locals.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                want,
                0,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL) => break,
                _ => return Err(err),
            }
        }
        if n == 0 {
            return Ok(off_in as u64);
        }
    }
    let mut buf = vec![0u8; 1 << 20];
    while (off_in as u64) < len {
        let want = buf.len().min((len - off_in as u64) as usize);
        let n = src.read_at(&mut buf[..want], off_in as u64)?;
        if n == 0 {
            break;
        }
        dst.write_all_at(&buf[..n], off_out as u64)?;
        off_in += n as i64;
        off_out += n as i64;
    }
    Ok(off_in as u64)
}
