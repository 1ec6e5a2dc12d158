//! The operations of [`Fs`] on view paths (every top-level directory but `current/`).
//! Views are read-only unless a view says a path takes writes; their answers' caching
//! policy becomes the kernel's TTLs and page-cache flags.

use std::sync::Arc;
use std::time::Duration;

use super::handles::Handle;
use super::views::{attr_of, entry_of, is_view_ino, Caching, ViewAttr, ViewPath, Views};
use super::*;
use crate::fs_err;

/// An open view file.
pub struct ViewFileHandle {
    pub vp: ViewPath,
    pub writable: bool,
}

impl Fs {
    fn views(&self) -> Option<&Arc<dyn Views>> {
        self.views.get()
    }

    fn view_attr(&self, caller: &Caller, ino: Ino, vp: &ViewPath) -> FsResult<(Attr, ViewAttr)> {
        let views = self.views().ok_or(fs_err!(ENOENT, "no views are loaded"))?;
        let va = views.getattr(caller, &vp.view, &vp.path)?;
        Ok((
            attr_of(ino, &va, self.root_attr.uid, self.root_attr.gid),
            va,
        ))
    }

    /// Lookup in the mount root (a view's name) or below a view; `None` when the name
    /// belongs to the live tree.
    pub(super) fn view_lookup(
        &self,
        caller: &Caller,
        parent: Ino,
        name: &str,
    ) -> FsResult<Option<Entry>> {
        let vp = if parent == ROOT_INO {
            if name == "current" || name == super::debug::DEBUG_DIR || name == "." || name == ".." {
                return Ok(None);
            }
            let Some(views) = self.views() else {
                return Ok(None);
            };
            if !views.names().iter().any(|n| &**n == name) {
                return Ok(None);
            }
            ViewPath {
                view: name.into(),
                path: "/".into(),
            }
        } else if is_view_ino(parent) {
            let dir = self.view_inodes.path(parent)?;
            match name {
                "." => dir,
                ".." => match dir.parent() {
                    Some(p) => p,
                    None => return Ok(Some(self.entry_for_root())),
                },
                _ => dir.child(name),
            }
        } else {
            return Ok(None);
        };
        let ino = self.view_inodes.ino(&vp);
        let (attr, va) = self.view_attr(caller, ino, &vp)?;
        let mut entry = entry_of(attr, va.caching);
        if parent == ROOT_INO {
            // A view's name and its directory stand while the view is loaded, however
            // volatile its contents: no LOOKUP and no GETATTR (the kernel's permission
            // check of the path walk) for the view's root on every path through it.
            entry.entry_ttl = self.config().entry_ttl;
            entry.attr_ttl = self.config().attr_ttl;
        }
        Ok(Some(entry))
    }

    fn entry_for_root(&self) -> Entry {
        entry_of(self.root_attr, Caching::Volatile)
    }

    pub(super) fn view_getattr(&self, caller: &Caller, ino: Ino) -> FsResult<(Attr, Duration)> {
        let vp = self.view_inodes.path(ino)?;
        let (attr, va) = self.view_attr(caller, ino, &vp)?;
        let ttl = if &*vp.path == "/" {
            self.config().attr_ttl
        } else {
            va.caching.ttl()
        };
        Ok((attr, ttl))
    }

    pub(super) fn view_readlink(&self, caller: &Caller, ino: Ino) -> FsResult<Vec<u8>> {
        let vp = self.view_inodes.path(ino)?;
        let views = self.views().ok_or(fs_err!(ENOENT, "no views are loaded"))?;
        Ok(views.readlink(caller, &vp.view, &vp.path)?.into_bytes())
    }

    pub(super) fn view_open(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let vp = self.view_inodes.path(ino)?;
        let (attr, va) = self.view_attr(caller, ino, &vp)?;
        if attr.kind == FileKind::Dir {
            return Err(fs_err!(EISDIR, "is a directory"));
        }
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writable && !va.writable {
            return Err(fs_err!(EROFS, "this view is read-only"));
        }
        let fh = self
            .handles
            .insert(Handle::View(ViewFileHandle { vp, writable }));
        Ok(Opened {
            fh,
            keep_cache: va.caching == Caching::Immutable,
            // Content that may change under a reader has no size to trust: read it whole.
            direct_io: va.caching == Caching::Volatile,
            noflush: true,
            cache_dir: false,
        })
    }

    pub(super) fn view_read(
        &self,
        caller: &Caller,
        h: &ViewFileHandle,
        offset: u64,
        size: u32,
    ) -> FsResult<Vec<u8>> {
        let views = self.views().ok_or(fs_err!(ENOENT, "no views are loaded"))?;
        views.read(caller, &h.vp.view, &h.vp.path, offset, size)
    }

    pub(super) fn view_write(
        &self,
        caller: &Caller,
        h: &ViewFileHandle,
        offset: u64,
        data: &[u8],
    ) -> FsResult<u32> {
        if !h.writable {
            return Err(fs_err!(EBADF, "handle not open for writing"));
        }
        let views = self.views().ok_or(fs_err!(ENOENT, "no views are loaded"))?;
        views.write(caller, &h.vp.view, &h.vp.path, offset, data)
    }

    /// Names of the loaded views, for the mount root's listing.
    pub(super) fn view_names(&self) -> Vec<Arc<str>> {
        self.views().map(|v| v.names()).unwrap_or_default()
    }

    /// A view directory's listing with inode numbers.
    pub(super) fn view_list(&self, caller: &Caller, ino: Ino) -> FsResult<Arc<[DirItem]>> {
        let vp = self.view_inodes.path(ino)?;
        let views = self.views().ok_or(fs_err!(ENOENT, "no views are loaded"))?;
        let children = views.readdir(caller, &vp.view, &vp.path)?;
        let parent = vp
            .parent()
            .map(|p| self.view_inodes.ino(&p))
            .unwrap_or(ROOT_INO);
        let mut items = Vec::with_capacity(children.len() + 2);
        items.push(DirItem {
            ino,
            offset: 1,
            kind: FileKind::Dir,
            name: ".".into(),
        });
        items.push(DirItem {
            ino: parent,
            offset: 2,
            kind: FileKind::Dir,
            name: "..".into(),
        });
        for (name, kind) in children {
            let child = self.view_inodes.ino(&vp.child(&name));
            items.push(DirItem {
                ino: child,
                offset: items.len() as u64 + 1,
                kind,
                name,
            });
        }
        Ok(Arc::from(items))
    }

    /// The entry readdirplus hands out for a listed view path (`None`: it vanished).
    pub(super) fn view_entry(&self, caller: &Caller, ino: Ino) -> Option<Entry> {
        if ino == ROOT_INO {
            return Some(self.entry_for_root());
        }
        let vp = self.view_inodes.path(ino).ok()?;
        let (attr, va) = self.view_attr(caller, ino, &vp).ok()?;
        Some(entry_of(attr, va.caching))
    }
}

/// Which part of the mount an inode belongs to (renames and links never cross parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Section {
    Root,
    Live,
    Debug,
    View(Arc<str>),
}

impl Fs {
    pub(super) fn section(&self, ino: Ino) -> Section {
        if ino == ROOT_INO {
            Section::Root
        } else if super::debug::is_debug_ino(ino) {
            Section::Debug
        } else if is_view_ino(ino) {
            match self.view_inodes.path(ino) {
                Ok(vp) => Section::View(vp.view),
                Err(_) => Section::View("".into()),
            }
        } else {
            Section::Live
        }
    }

    /// Why a change in `section` is refused, if it is (only the live tree takes changes).
    pub(super) fn refuse_change(section: &Section) -> FsResult<()> {
        match section {
            Section::Live => Ok(()),
            Section::Root => Err(fs_err!(EACCES, "the mount root is read-only")),
            Section::Debug => Err(fs_err!(EROFS, "debug/ is read-only")),
            Section::View(_) => Err(fs_err!(EROFS, "this view is read-only")),
        }
    }
}
