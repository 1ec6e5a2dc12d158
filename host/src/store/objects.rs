//! Content-addressed object store: every version of every file, kept once, named by its
//! BLAKE3 hash (`objects/ab/cdef…`). Objects are immutable; files being written live in
//! `scratch/` until they are committed (renamed into place).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A BLAKE3 content hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        blake3::Hash::from_hex(s).ok().map(|h| Hash(*h.as_bytes()))
    }

    /// The hash of no bytes (an empty file has no object, but it has a hash).
    pub fn of_empty() -> Hash {
        Hash(*blake3::hash(b"").as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

pub struct Objects {
    objects: PathBuf,
    scratch: PathBuf,
    next_scratch: AtomicU64,
}

impl Objects {
    /// Open (creating if needed) the object and scratch directories under `root`.
    /// Scratch files left by a crash are uncommitted writes: they are removed.
    pub fn open(root: &Path) -> io::Result<Objects> {
        let objects = root.join("objects");
        let scratch = root.join("scratch");
        fs::create_dir_all(&objects)?;
        if scratch.exists() {
            fs::remove_dir_all(&scratch)?;
        }
        fs::create_dir_all(&scratch)?;
        Ok(Objects {
            objects,
            scratch,
            next_scratch: AtomicU64::new(0),
        })
    }

    pub fn path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.objects.join(&hex[..2]).join(&hex[2..])
    }

    /// Hash a whole file from its start.
    pub fn hash_file(file: &File) -> io::Result<Hash> {
        use std::os::unix::fs::FileExt;
        // Large chunks, each hashed on every core: a close that must hash a file whole
        // (written unseen by passthrough, or not from its start) waits for it.
        const CHUNK: usize = 8 << 20;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK.min(file.metadata()?.len() as usize).max(64 << 10)];
        let mut offset = 0u64;
        loop {
            let n = match file.read_at(&mut buf, offset) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n >= 256 << 10 {
                hasher.update_rayon(&buf[..n]);
            } else {
                hasher.update(&buf[..n]);
            }
            offset += n as u64;
        }
        Ok(Hash::from(hasher.finalize()))
    }
}

/// File contents by hash, as a [`super::Store`] keeps them: bytes are written to a
/// scratch file, which is then adopted as the object they hash to. An object never
/// changes once it is there.
pub trait ObjectStore: Send + Sync {
    /// The object `hash`, open for reading.
    fn open_object(&self, hash: &Hash) -> io::Result<File>;

    /// A new empty scratch file, readable and writable, and its path.
    fn new_scratch(&self) -> io::Result<(File, PathBuf)>;

    /// Make the scratch file at `scratch` the object `hash` (its content must hash to it).
    /// With `durable`, the object is durable when this returns.
    fn adopt(&self, scratch: &Path, file: &File, hash: &Hash, durable: bool) -> io::Result<()>;

    /// Hand the object `hash`, open as `file`, over as a scratch file to change in place
    /// (FUSE passthrough: the kernel reads a file's object through that very inode, and a
    /// writer must then write that inode): an identical copy takes the object's name
    /// first, so the object itself never changes. Returns the scratch path now naming
    /// `file`'s inode. Stores whose objects are not plain local files cannot.
    fn detach(&self, hash: &Hash, file: &File) -> io::Result<PathBuf> {
        let _ = (hash, file);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this store's objects cannot be changed in place",
        ))
    }

    /// Is `file` (opened as the object `hash`) still the file the store keeps under that
    /// name, not one [`detach`](Self::detach) handed over since?
    fn still_names(&self, hash: &Hash, file: &File) -> io::Result<bool> {
        let _ = (hash, file);
        Ok(true)
    }

    /// Store the bytes of `reader` as an object; returns its hash (`None` when empty) and
    /// size. Used by import.
    fn put_reader(&self, reader: &mut dyn Read) -> io::Result<(Option<Hash>, u64)> {
        let (mut file, path) = self.new_scratch()?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = fs::remove_file(&path);
                    return Err(e);
                }
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
            size += n as u64;
        }
        if size == 0 {
            fs::remove_file(&path)?;
            return Ok((None, 0));
        }
        let hash = Hash::from(hasher.finalize());
        self.adopt(&path, &file, &hash, false)?;
        Ok((Some(hash), size))
    }
}

impl ObjectStore for Objects {
    fn open_object(&self, hash: &Hash) -> io::Result<File> {
        File::open(self.path(hash))
    }

    fn new_scratch(&self) -> io::Result<(File, PathBuf)> {
        let n = self.next_scratch.fetch_add(1, Ordering::Relaxed);
        let path = self.scratch.join(format!("{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok((file, path))
    }

    /// Durable: the bytes and the directory entry are on disk.
    fn adopt(&self, scratch: &Path, file: &File, hash: &Hash, durable: bool) -> io::Result<()> {
        let dest = self.path(hash);
        if dest.exists() {
            // Same content is already stored: keep the one object. Synced first: if
            // that fails, the scratch copy is still there to commit again.
            if durable {
                File::open(&dest)?.sync_all()?;
            }
            fs::remove_file(scratch)?;
            return Ok(());
        }
        let dir = dest.parent().expect("object path has a parent");
        if !dir.exists() {
            fs::create_dir_all(dir)?;
            if durable {
                File::open(&self.objects)?.sync_all()?;
            }
        }
        if durable {
            file.sync_all()?;
        }
        fs::set_permissions(scratch, fs::Permissions::from_mode(OBJECT_MODE))?;
        fs::rename(scratch, &dest)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn still_names(&self, hash: &Hash, file: &File) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let held = file.metadata()?;
        match fs::metadata(self.path(hash)) {
            Ok(named) => Ok((held.dev(), held.ino()) == (named.dev(), named.ino())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Always durable: once this returns the caller changes `file`, and the object's name
    /// must by then name the copy on disk, whatever happens next.
    fn detach(&self, hash: &Hash, file: &File) -> io::Result<PathBuf> {
        let held = file.metadata()?;
        if !self.still_names(hash, file)? {
            return Err(io::Error::other(format!(
                "object {hash}: the open file is no longer the stored object"
            )));
        }
        // The copy, complete and on disk before it takes the name.
        let (copy, copy_path) = self.new_scratch()?;
        let copied = copy_prefix(file, &copy, held.len())
            .and_then(|n| {
                if n == held.len() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("object {hash}: short copy")))
                }
            })
            .and_then(|()| copy.sync_all())
            .and_then(|()| {
                fs::set_permissions(&copy_path, fs::Permissions::from_mode(OBJECT_MODE))
            });
        if let Err(e) = copied {
            let _ = fs::remove_file(&copy_path);
            return Err(e);
        }
        let dest = self.path(hash);
        let n = self.next_scratch.fetch_add(1, Ordering::Relaxed);
        let work = self.scratch.join(format!("{}-{n}", std::process::id()));
        let named = fs::hard_link(&dest, &work)
            .and_then(|()| fs::rename(&copy_path, &dest))
            .and_then(|()| {
                File::open(dest.parent().expect("object path has a parent"))?.sync_all()
            });
        if let Err(e) = named {
            let _ = fs::remove_file(&work);
            let _ = fs::remove_file(&copy_path);
            return Err(e);
        }
        // Counted once the copy has the name, before anyone may change `file`: a reader
        // whose mark is older opened either file, and checks which after its read.
        STOLEN.fetch_add(1, Ordering::AcqRel);
        // A scratch file again: writable by its owner, as `new_scratch` makes them.
        fs::set_permissions(&work, fs::Permissions::from_mode(0o600))?;
        Ok(work)
    }
}

/// The mode of an object file.
const OBJECT_MODE: u32 = 0o444;

/// Objects handed over so far ([`ObjectStore::detach`]): a reader that saw no change of
/// it across its read read an object no one changed.
static STOLEN: AtomicU64 = AtomicU64::new(0);

/// A mark to take before opening an object by name, for [`still_object`].
pub fn detach_mark() -> u64 {
    STOLEN.load(Ordering::Acquire)
}

/// Did `file`, opened as the object `hash` after `mark` was taken, stay that object (no
/// [`ObjectStore::detach`] handed it over since)? Checked after reading it: a file
/// handed over is changed only after its name names the copy.
pub fn still_object(
    objects: &dyn ObjectStore,
    hash: &Hash,
    file: &File,
    mark: u64,
) -> io::Result<bool> {
    if STOLEN.load(Ordering::Acquire) == mark {
        return Ok(true);
    }
    objects.still_names(hash, file)
}

/// Read up to `len` bytes at `offset` of the object `hash`, by name: a read that raced
/// with the object being handed over reads the copy that took its name.
pub fn read_object(
    objects: &dyn ObjectStore,
    hash: &Hash,
    offset: u64,
    len: usize,
) -> io::Result<Vec<u8>> {
    loop {
        let mark = detach_mark();
        let file = objects.open_object(hash)?;
        let bytes = super::content::read_at(&file, offset, len)?;
        if still_object(objects, hash, &file, mark)? {
            return Ok(bytes);
        }
        std::thread::yield_now();
    }
}

/// Copy the first `len` bytes of `src` into `dst` in the kernel (copy_file_range), with a
/// read/write fallback where the kernel cannot; returns the bytes copied (fewer only
/// when `src` is shorter).
pub(super) fn copy_prefix(src: &File, dst: &File, len: u64) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_file_hashes_as_its_bytes_whatever_its_size() {
        // Around the sizes where hashing changes shape: one read, chunks hashed on every
        // core, a short last chunk.
        for len in [
            0,
            1,
            64 << 10,
            (256 << 10) - 1,
            256 << 10,
            (8 << 20) + 12_345,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4093) as u8).collect();
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&bytes).unwrap();
            // Whatever the descriptor's position.
            let got = Objects::hash_file(&file).unwrap();
            assert_eq!(got, Hash::from(blake3::hash(&bytes)), "{len} bytes");
        }
    }
}
