//! A flat, fixed directory of files: the smallest view there is (see `guest-ops/hello`).
//! As [`Files`], a `&'static FixedDir` is a whole [`TreeView`](crate::tree::TreeView).

use crate::tree::Files;
use crate::{attrs, error, path, slice_read, Attrs, Caching, DirEntry, FsError, NodeKind};

/// A root directory holding `files` (name, content), none of which ever changes.
pub struct FixedDir<'a> {
    pub files: &'a [(&'a str, &'a [u8])],
    /// The mtime of the directory and every file (ns since the Unix epoch).
    pub mtime_ns: i64,
}

impl FixedDir<'_> {
    fn file(&self, path: &str) -> Result<Option<&[u8]>, FsError> {
        match path::split(path)?.as_slice() {
            [] => Ok(None),
            [name] => self
                .files
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, content)| Some(*content))
                .ok_or(FsError::NotFound),
            _ => Err(FsError::NotFound),
        }
    }

    pub fn getattr(&self, path: &str) -> Result<Attrs, FsError> {
        Ok(match self.file(path)? {
            None => attrs::dir(self.mtime_ns, Caching::Immutable),
            Some(content) => attrs::file(content.len() as u64, self.mtime_ns, Caching::Immutable),
        })
    }

    pub fn readdir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        match self.file(path)? {
            None => Ok(self
                .files
                .iter()
                .map(|(name, _)| attrs::entry(*name, NodeKind::File))
                .collect()),
            Some(_) => Err(FsError::NotADirectory),
        }
    }

    pub fn read(&self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.file(path)? {
            None => Err(FsError::IsADirectory),
            Some(content) => Ok(slice_read(content, offset, len)),
        }
    }

    pub fn readlink(&self, path: &str) -> Result<String, FsError> {
        self.file(path)?;
        Err(error::not_a_symlink(path))
    }

    pub fn write(&self, path: &str) -> Result<u32, FsError> {
        self.file(path)?;
        Err(FsError::ReadOnly)
    }
}

/// The files of a fixed directory: immutable, served without copying more than is read.
impl Files for FixedDir<'_> {
    fn paths(&self) -> Result<Vec<String>, FsError> {
        Ok(self
            .files
            .iter()
            .map(|(name, _)| name.to_string())
            .collect())
    }

    fn content(&self, path: &str) -> Result<Vec<u8>, FsError> {
        Ok(self.file(path)?.ok_or(FsError::IsADirectory)?.to_vec())
    }

    fn caching(&self, _path: &str) -> Caching {
        Caching::Immutable
    }

    fn mtime_ns(&self, _path: &str) -> i64 {
        self.mtime_ns
    }

    fn size(&self, path: &str) -> Result<u64, FsError> {
        Ok(self.file(path)?.ok_or(FsError::IsADirectory)?.len() as u64)
    }

    fn read(&self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        FixedDir::read(self, path, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: FixedDir = FixedDir {
        files: &[("a", b"alpha"), ("b", b"")],
        mtime_ns: 7,
    };

    #[test]
    fn serves_its_files() {
        assert!(matches!(
            DIR.getattr("/").unwrap().kind,
            NodeKind::Directory
        ));
        let a = DIR.getattr("/a").unwrap();
        assert!(matches!(a.kind, NodeKind::File));
        assert_eq!((a.size, a.mtime_ns, a.perm), (5, 7, 0o444));
        assert_eq!(DIR.readdir("/").unwrap().len(), 2);
        assert_eq!(DIR.read("/a", 1, 2).unwrap(), b"lp");
        assert!(matches!(DIR.read("/", 0, 1), Err(FsError::IsADirectory)));
        assert!(matches!(DIR.readdir("/a"), Err(FsError::NotADirectory)));
        assert!(matches!(DIR.getattr("/c"), Err(FsError::NotFound)));
        assert!(matches!(DIR.getattr("/a/x"), Err(FsError::NotFound)));
        assert!(matches!(DIR.write("/a"), Err(FsError::ReadOnly)));
        assert!(matches!(DIR.readlink("/a"), Err(FsError::Invalid(_))));
    }

    #[test]
    fn serves_as_a_tree_too() {
        let tree = crate::Tree(&DIR);
        let a = tree.getattr("/a").unwrap();
        assert_eq!((a.size, a.mtime_ns), (5, 7));
        assert!(matches!(a.caching, Caching::Immutable));
        assert_eq!(tree.read("/a", 1, 2).unwrap(), b"lp");
        assert_eq!(tree.read("/b", 0, 9).unwrap(), b"");
        let names: Vec<String> = tree
            .readdir("/")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(matches!(tree.getattr("/c"), Err(FsError::NotFound)));
    }
}
