//! A read-only view of computed files: the view lists its files' paths and says what each
//! holds; [`Tree`] answers `getattr`, `readdir` and `read` from that, directories
//! included. [`FixedDir`](crate::FixedDir) is the same for bytes known at compile time.
//!
//! ```ignore
//! use lighthouse_view_sdk::tree::{Files, TreeView};
//! use lighthouse_view_sdk::{Caller, FsError, HostStore, Store, ViewInfo};
//!
//! struct Head<S> { store: S }
//!
//! impl<S: Store> Files for Head<S> {
//!     fn paths(&self) -> Result<Vec<String>, FsError> {
//!         Ok(vec!["head".into(), "about/version".into()])
//!     }
//!     fn content(&self, path: &str) -> Result<Vec<u8>, FsError> {
//!         match path {
//!             "head" => Ok(format!("{}\n", self.store.head()).into_bytes()),
//!             "about/version" => Ok(b"1\n".to_vec()),
//!             _ => Err(FsError::NotFound),
//!         }
//!     }
//! }
//!
//! struct HeadView;
//!
//! impl TreeView for HeadView {
//!     type Files = Head<HostStore>;
//!     fn info() -> ViewInfo {
//!         lighthouse_view_sdk::view_info!("head", "the newest event's seq")
//!     }
//!     fn files(_: Caller) -> Self::Files {
//!         Head { store: HostStore }
//!     }
//! }
//!
//! lighthouse_view_sdk::export!(HeadView);
//! ```
//!
//! A native test builds `Tree(Head { store: &model })` over a
//! [`ModelStore`](crate::model::ModelStore) and asks it what the host would.
//!
//! Every answer is computed when asked: `getattr` of a file computes its content (its
//! size is the content's length), and so does every `read`. That suits files of a few
//! KiB; the host reads a volatile file whole once per open, so a reader never sees two
//! versions spliced.

use crate::{
    attrs, error, path, slice_read, Attrs, Caching, Caller, DirEntry, FsError, NodeKind, View,
    ViewInfo,
};

/// The files of a read-only view: their paths, their content, and how long answers
/// about them may be kept.
pub trait Files {
    /// Every file of the view, as a path below its root: `"head"`, `"agents/alice.txt"`
    /// (a leading `/` is allowed). The directories are those the paths imply. Called on
    /// every lookup and listing, so compute no content here.
    fn paths(&self) -> Result<Vec<String>, FsError>;

    /// The content of a file, called with its path exactly as [`paths`](Self::paths)
    /// listed it.
    fn content(&self, path: &str) -> Result<Vec<u8>, FsError>;

    /// How long the host and the kernel may keep answers about `path`: a file as
    /// listed, or a directory as its components joined by `/` (`""` for the root).
    ///
    /// Default: `Volatile`, asked again every time — right for anything computed from
    /// the store or the caller. Say `Millis(n)` for what may be `n` ms stale, and
    /// `Immutable` only for what can never change for this version of the view *and* is
    /// the same for every caller (the host keeps such answers and stops asking).
    fn caching(&self, path: &str) -> Caching {
        let _ = path;
        Caching::Volatile
    }

    /// The mtime (ns since the Unix epoch) of `path`, named as for
    /// [`caching`](Self::caching). Default: 0, for content that has no time of its own.
    fn mtime_ns(&self, path: &str) -> i64 {
        let _ = path;
        0
    }

    /// The size of a file. Default: the length of its [`content`](Self::content); say it
    /// without computing the content when you can.
    fn size(&self, path: &str) -> Result<u64, FsError> {
        Ok(self.content(path)?.len() as u64)
    }

    /// Up to `len` bytes of a file from `offset`. Default: that part of its
    /// [`content`](Self::content); serve it without copying the whole when you can.
    fn read(&self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        Ok(slice_read(&self.content(path)?, offset, len))
    }
}

/// A reference to files serves as the files (a `&'static` [`FixedDir`](crate::FixedDir),
/// a `&ModelStore`-backed view in tests).
impl<F: Files + ?Sized> Files for &F {
    fn paths(&self) -> Result<Vec<String>, FsError> {
        (**self).paths()
    }
    fn content(&self, path: &str) -> Result<Vec<u8>, FsError> {
        (**self).content(path)
    }
    fn caching(&self, path: &str) -> Caching {
        (**self).caching(path)
    }
    fn mtime_ns(&self, path: &str) -> i64 {
        (**self).mtime_ns(path)
    }
    fn size(&self, path: &str) -> Result<u64, FsError> {
        (**self).size(path)
    }
    fn read(&self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        (**self).read(path, offset, len)
    }
}

/// What a path of a [`Files`] tree is.
enum Node {
    /// A file, with its path as listed.
    File(String),
    /// A directory, with its path (components joined by `/`, `""` for the root) and its
    /// entries in the order the paths listed them.
    Dir(String, Vec<DirEntry>),
}

/// Answers `getattr`, `readdir` and `read` (and refuses `readlink` and `write`) for a
/// [`Files`]. Paths are the host's: `"/"` is the view's root.
pub struct Tree<F>(pub F);

impl<F: Files> Tree<F> {
    fn node(&self, view_path: &str) -> Result<Node, FsError> {
        let want = path::split(view_path)?;
        let mut entries: Vec<DirEntry> = Vec::new();
        let mut is_dir = want.is_empty();
        for listed in self.0.paths()? {
            let parts = path::split(&listed)?;
            if parts.is_empty() {
                return Err(error::internal(format!("{listed:?} is not a file path")));
            }
            if parts == want {
                return Ok(Node::File(listed));
            }
            if parts.len() > want.len() && parts[..want.len()] == want[..] {
                is_dir = true;
                let name = parts[want.len()];
                let kind = if parts.len() == want.len() + 1 {
                    NodeKind::File
                } else {
                    NodeKind::Directory
                };
                if !entries.iter().any(|e| e.name == name) {
                    entries.push(attrs::entry(name, kind));
                }
            }
        }
        if is_dir {
            Ok(Node::Dir(want.join("/"), entries))
        } else {
            Err(FsError::NotFound)
        }
    }

    pub fn getattr(&self, path: &str) -> Result<Attrs, FsError> {
        Ok(match self.node(path)? {
            Node::File(p) => attrs::file(self.0.size(&p)?, self.0.mtime_ns(&p), self.0.caching(&p)),
            Node::Dir(p, _) => attrs::dir(self.0.mtime_ns(&p), self.0.caching(&p)),
        })
    }

    pub fn readdir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        match self.node(path)? {
            Node::File(_) => Err(FsError::NotADirectory),
            Node::Dir(_, entries) => Ok(entries),
        }
    }

    pub fn read(&self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.node(path)? {
            Node::File(p) => self.0.read(&p, offset, len),
            Node::Dir(..) => Err(FsError::IsADirectory),
        }
    }

    pub fn readlink(&self, path: &str) -> Result<String, FsError> {
        self.node(path)?;
        Err(error::not_a_symlink(path))
    }

    pub fn write(&self, path: &str) -> Result<u32, FsError> {
        self.node(path)?;
        Err(FsError::ReadOnly)
    }
}

/// A whole read-only view over [`Files`]: implement this instead of [`View`], and
/// [`export!`](crate::export) the type. (For a view that also takes writes or serves
/// streams, implement [`View`] and answer its reads with a [`Tree`].)
pub trait TreeView {
    /// The view's files for one call ([`HostStore`](crate::HostStore) inside, usually).
    type Files: Files;
    fn info() -> ViewInfo;
    /// The files as `caller` sees them.
    fn files(caller: Caller) -> Self::Files;
}

impl<T: TreeView> View for T {
    fn info() -> ViewInfo {
        T::info()
    }
    fn getattr(c: Caller, path: String) -> Result<Attrs, FsError> {
        Tree(T::files(c)).getattr(&path)
    }
    fn readdir(c: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        Tree(T::files(c)).readdir(&path)
    }
    fn read(c: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        Tree(T::files(c)).read(&path, offset, len)
    }
    fn readlink(c: Caller, path: String) -> Result<String, FsError> {
        Tree(T::files(c)).readlink(&path)
    }
    fn write(c: Caller, path: String, _offset: u64, _data: Vec<u8>) -> Result<u32, FsError> {
        Tree(T::files(c)).write(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelStore;
    use crate::Store;

    /// Two files computed from the store, one fixed, one in a subdirectory.
    struct Sample<S> {
        store: S,
    }

    impl<S: Store> Files for Sample<S> {
        fn paths(&self) -> Result<Vec<String>, FsError> {
            Ok(vec![
                "head".into(),
                "/fixed.txt".into(),
                "deep/er/file".into(),
                "deep/sibling".into(),
            ])
        }
        fn content(&self, path: &str) -> Result<Vec<u8>, FsError> {
            match path {
                "head" => Ok(format!("{}\n", self.store.head()).into_bytes()),
                "/fixed.txt" => Ok(b"fixed".to_vec()),
                "deep/er/file" | "deep/sibling" => Ok(path.as_bytes().to_vec()),
                _ => Err(FsError::NotFound),
            }
        }
        fn caching(&self, path: &str) -> Caching {
            match path {
                "/fixed.txt" | "deep" => Caching::Immutable,
                _ => Caching::Volatile,
            }
        }
        fn mtime_ns(&self, path: &str) -> i64 {
            if path == "head" {
                self.store.now_ns()
            } else {
                0
            }
        }
    }

    fn names(entries: &[DirEntry]) -> Vec<(&str, NodeKind)> {
        entries.iter().map(|e| (e.name.as_str(), e.kind)).collect()
    }

    #[test]
    fn lists_the_directories_the_paths_imply() {
        let m = ModelStore::new(0);
        let t = Tree(Sample { store: &m });
        assert_eq!(
            names(&t.readdir("/").unwrap()),
            [
                ("head", NodeKind::File),
                ("fixed.txt", NodeKind::File),
                ("deep", NodeKind::Directory),
            ]
        );
        assert_eq!(
            names(&t.readdir("/deep").unwrap()),
            [("er", NodeKind::Directory), ("sibling", NodeKind::File)]
        );
        assert_eq!(
            names(&t.readdir("/deep/er/").unwrap()),
            [("file", NodeKind::File)]
        );
        assert_eq!(t.readdir("/head"), Err(FsError::NotADirectory));
        assert_eq!(t.readdir("/nope"), Err(FsError::NotFound));
        assert_eq!(t.readdir("/head/x"), Err(FsError::NotFound));
    }

    #[test]
    fn files_are_computed_when_asked() {
        let m = ModelStore::new(0);
        let t = Tree(Sample { store: &m });
        assert_eq!(t.read("/head", 0, 100).unwrap(), b"0\n");
        assert_eq!(t.getattr("/head").unwrap().size, 2);
        for _ in 0..10 {
            m.mkdir("/d");
        }
        let head = t.getattr("/head").unwrap();
        assert_eq!((head.size, head.mtime_ns), (3, 10_000_000_000));
        assert_eq!((head.perm, head.writable), (0o444, false));
        assert_eq!(head.caching, Caching::Volatile);
        assert_eq!(t.read("/head", 0, 100).unwrap(), b"10\n");
        assert_eq!(t.read("/head", 1, 100).unwrap(), b"0\n");
        assert_eq!(t.read("/fixed.txt", 2, 2).unwrap(), b"xe");
        assert_eq!(t.read("/deep/er/file", 0, 100).unwrap(), b"deep/er/file");
        assert_eq!(t.read("/deep", 0, 1), Err(FsError::IsADirectory));
        assert_eq!(t.read("/missing", 0, 1), Err(FsError::NotFound));
    }

    #[test]
    fn attributes_follow_the_views_caching_and_kinds() {
        let m = ModelStore::new(0);
        let t = Tree(Sample { store: &m });
        let root = t.getattr("/").unwrap();
        assert_eq!(
            (root.kind, root.perm, root.caching),
            (NodeKind::Directory, 0o555, Caching::Volatile)
        );
        assert_eq!(t.getattr("/deep").unwrap().caching, Caching::Immutable);
        assert_eq!(t.getattr("/deep/er").unwrap().kind, NodeKind::Directory);
        let fixed = t.getattr("/fixed.txt").unwrap();
        assert_eq!((fixed.size, fixed.caching), (5, Caching::Immutable));
        assert_eq!(t.getattr("/de"), Err(FsError::NotFound));
        assert!(matches!(t.getattr("/../x"), Err(FsError::Invalid(_))));
        assert_eq!(t.write("/head"), Err(FsError::ReadOnly));
        assert!(matches!(t.readlink("/head"), Err(FsError::Invalid(_))));
        assert_eq!(t.readlink("/nope"), Err(FsError::NotFound));
    }

    #[test]
    fn an_empty_path_is_the_views_fault() {
        struct Bad;
        impl Files for Bad {
            fn paths(&self) -> Result<Vec<String>, FsError> {
                Ok(vec!["/".into()])
            }
            fn content(&self, _: &str) -> Result<Vec<u8>, FsError> {
                Ok(Vec::new())
            }
        }
        assert!(matches!(Tree(Bad).getattr("/"), Err(FsError::Internal(_))));
    }

    /// The blanket `View` for a `TreeView` answers through `Tree`.
    #[test]
    fn a_tree_view_is_a_view() {
        struct Fixed;
        impl Files for Fixed {
            fn paths(&self) -> Result<Vec<String>, FsError> {
                Ok(vec!["a".into()])
            }
            fn content(&self, _: &str) -> Result<Vec<u8>, FsError> {
                Ok(b"alpha".to_vec())
            }
        }
        struct FixedView;
        impl TreeView for FixedView {
            type Files = Fixed;
            fn info() -> ViewInfo {
                crate::view_info!("fixed", "test")
            }
            fn files(_: Caller) -> Fixed {
                Fixed
            }
        }
        let c = || Caller {
            agent: None,
            uid: 0,
            gid: 0,
            pid: 1,
            sight: 1,
        };
        assert_eq!(<FixedView as View>::info().name, "fixed");
        assert_eq!(
            <FixedView as View>::read(c(), "/a".into(), 1, 3).unwrap(),
            b"lph"
        );
        assert_eq!(
            <FixedView as View>::write(c(), "/a".into(), 0, b"x".to_vec()),
            Err(FsError::ReadOnly)
        );
        assert_eq!(
            <FixedView as View>::open(c(), "/a".into(), false),
            Ok(crate::OpenMode::Plain)
        );
    }
}
