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
        let mut hasher = blake3::Hasher::new();
        let mut reader = io::BufReader::with_capacity(1 << 20, file);
        // `&File` reads from the current position; hash from the start explicitly.
        use std::io::Seek;
        reader.seek(io::SeekFrom::Start(0))?;
        io::copy(&mut reader, &mut hasher)?;
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
        fs::set_permissions(scratch, fs::Permissions::from_mode(0o444))?;
        fs::rename(scratch, &dest)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}
