//! The projection: the tree of the live filesystem held in memory, folded from events.
//! The same primitives serve live operations (by inode, after the core's checks) and
//! replay (by path, from the log), so a remount rebuilds exactly what was served.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::content::Content;
use super::event::{Change, Event};
use crate::fs_err;
use crate::vocab::{Attr, FileKind, FsResult, Ino, RenameFlags, TimeNs, CURRENT_INO, ROOT_INO};

/// Longest name of one path component, as on Linux filesystems.
pub const NAME_MAX: usize = 255;

/// A node's extended attributes by full name (`user.x`), values binary.
pub type Xattrs = BTreeMap<Arc<str>, Arc<[u8]>>;

/// How a set of an extended attribute treats an existing name (`setxattr(2)` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrSet {
    /// Create or replace.
    Any,
    /// XATTR_CREATE: EEXIST when the name exists.
    Create,
    /// XATTR_REPLACE: ENODATA when it does not.
    Replace,
}

pub struct Node {
    pub attr: Attr,
    /// Where the node is linked: (parent, name). One entry but for hard-linked files;
    /// empty for an unlinked file that is still open.
    pub links: Vec<(Ino, Arc<str>)>,
    pub children: Option<BTreeMap<Arc<str>, Ino>>,
    pub target: Option<Arc<str>>,
    pub content: Option<Arc<Content>>,
    /// References the kernel holds (lookups not yet forgotten).
    pub lookups: AtomicU64,
    /// Open handles.
    pub open: AtomicU32,
    /// Extended attributes; `None` (no allocation, one test) for the many nodes without.
    pub xattrs: Option<Box<Xattrs>>,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.attr.kind == FileKind::Dir
    }

    /// The attributes to answer with: the tree's, but while a writer writes the file
    /// unseen (passthrough), its size and mtime are the written file's.
    pub fn attr_now(&self) -> Attr {
        let mut a = self.attr;
        if let Some((size, mtime)) = self.content.as_ref().and_then(|c| c.unseen_attr()) {
            a.size = size;
            a.mtime = mtime;
            a.ctime = a.ctime.max(mtime);
        }
        a
    }
}

/// A node to create.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub kind: FileKind,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub target: Option<Arc<str>>,
}

pub struct Tree {
    nodes: FxHashMap<Ino, Node>,
    next_ino: Ino,
    /// The seq of the last event folded into it (0: none).
    folded: u64,
}

impl Tree {
    /// An empty live tree: just its root directory.
    pub fn new(root_time: TimeNs, uid: u32, gid: u32) -> Tree {
        let mut nodes = FxHashMap::default();
        let attr = Attr {
            ino: CURRENT_INO,
            kind: FileKind::Dir,
            perm: 0o755,
            nlink: 2,
            uid,
            gid,
            size: 0,
            atime: root_time,
            mtime: root_time,
            ctime: root_time,
            rdev: 0,
        };
        nodes.insert(
            CURRENT_INO,
            Node {
                attr,
                links: vec![(ROOT_INO, Arc::from("current"))],
                children: Some(BTreeMap::new()),
                target: None,
                content: None,
                lookups: AtomicU64::new(0),
                open: AtomicU32::new(0),
                xattrs: None,
            },
        );
        Tree {
            nodes,
            next_ino: CURRENT_INO + 1,
            folded: 0,
        }
    }

    /// The tree before the first event of a store whose first event was at `created`: an
    /// empty root owned by this process's user.
    pub fn empty(created: TimeNs) -> Tree {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = (unsafe { libc::getuid() }, unsafe { libc::getgid() });
        Tree::new(created, uid, gid)
    }

    /// The seq of the last event folded into the tree (0: none): the base of the next
    /// change made on it (see `Store::append`).
    pub fn folded(&self) -> u64 {
        self.folded
    }

    /// A change made on this tree was appended to the log as event `seq`.
    pub fn set_folded(&mut self, seq: u64) {
        self.folded = self.folded.max(seq);
    }

    /// Fold event `e` of the log into the tree ([`apply`](Self::apply) its change).
    pub fn fold(&mut self, e: &Event) -> FsResult<()> {
        self.apply(&e.change, e.time)?;
        self.set_folded(e.seq);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// Every node held, linked or not, in no particular order (for statistics).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    pub fn node(&self, ino: Ino) -> FsResult<&Node> {
        self.nodes.get(&ino).ok_or(fs_err!(ENOENT, "stale inode"))
    }

    pub fn node_mut(&mut self, ino: Ino) -> FsResult<&mut Node> {
        self.nodes
            .get_mut(&ino)
            .ok_or(fs_err!(ENOENT, "stale inode"))
    }

    pub fn children(&self, dir: Ino) -> FsResult<&BTreeMap<Arc<str>, Ino>> {
        self.node(dir)?
            .children
            .as_ref()
            .ok_or(fs_err!(ENOTDIR, "not a directory"))
    }

    pub fn child(&self, dir: Ino, name: &str) -> FsResult<Option<Ino>> {
        Ok(self.children(dir)?.get(name).copied())
    }

    /// Parent of a directory (the mount root for the live tree's root).
    pub fn parent_of(&self, ino: Ino) -> Ino {
        self.nodes
            .get(&ino)
            .and_then(|n| n.links.first())
            .map(|l| l.0)
            .unwrap_or(ROOT_INO)
    }

    /// The path of `ino` relative to `current/` (`/` for the root); `None` once unlinked.
    pub fn path_of(&self, ino: Ino) -> Option<String> {
        if ino == CURRENT_INO {
            return Some("/".into());
        }
        let mut parts = Vec::new();
        let mut cur = ino;
        while cur != CURRENT_INO {
            let (parent, name) = self.nodes.get(&cur)?.links.first()?;
            parts.push(name.clone());
            cur = *parent;
        }
        let mut path = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for p in parts.iter().rev() {
            path.push('/');
            path.push_str(p);
        }
        Some(path)
    }

    /// The path `name` would have in directory `parent`.
    pub fn child_path(&self, parent: Ino, name: &str) -> FsResult<Arc<str>> {
        let base = self
            .path_of(parent)
            .ok_or(fs_err!(ENOENT, "directory was removed"))?;
        Ok(if base == "/" {
            format!("/{name}")
        } else {
            format!("{base}/{name}")
        }
        .into())
    }

    /// Resolve a path relative to `current/` (no symlinks are followed).
    pub fn resolve(&self, path: &str) -> FsResult<Ino> {
        let mut cur = CURRENT_INO;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur = self
                .child(cur, part)?
                .ok_or(fs_err!(ENOENT, "no such path"))?;
        }
        Ok(cur)
    }

    /// Resolve all but the last component: (parent inode, last name).
    pub fn resolve_parent<'p>(&self, path: &'p str) -> FsResult<(Ino, &'p str)> {
        let trimmed = path.trim_end_matches('/');
        let (dir, name) = trimmed
            .rsplit_once('/')
            .ok_or(fs_err!(EINVAL, "relative path"))?;
        if name.is_empty() {
            return Err(fs_err!(EINVAL, "path has no last component"));
        }
        Ok((self.resolve(dir)?, name))
    }

    fn touch_dir(&mut self, dir: Ino, time: TimeNs) {
        if let Some(n) = self.nodes.get_mut(&dir) {
            n.attr.mtime = time;
            n.attr.ctime = time;
        }
    }

    /// Link a new node as `name` in `parent`.
    pub fn create(&mut self, parent: Ino, name: &str, new: NewNode, time: TimeNs) -> FsResult<Ino> {
        if self.child(parent, name)?.is_some() {
            return Err(fs_err!(EEXIST, "name exists"));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let is_dir = new.kind == FileKind::Dir;
        let size = new.target.as_ref().map(|t| t.len() as u64).unwrap_or(0);
        let node = Node {
            attr: Attr {
                ino,
                kind: new.kind,
                perm: new.perm & 0o7777,
                nlink: if is_dir { 2 } else { 1 },
                uid: new.uid,
                gid: new.gid,
                size,
                atime: time,
                mtime: time,
                ctime: time,
                rdev: new.rdev,
            },
            links: vec![(parent, Arc::from(name))],
            children: is_dir.then(BTreeMap::new),
            target: new.target,
            content: (new.kind == FileKind::File).then(|| Content::new(None)),
            lookups: AtomicU64::new(0),
            open: AtomicU32::new(0),
            xattrs: None,
        };
        self.nodes.insert(ino, node);
        let p = self.node_mut(parent)?;
        p.children
            .as_mut()
            .expect("checked dir")
            .insert(Arc::from(name), ino);
        if is_dir {
            p.attr.nlink += 1;
        }
        self.touch_dir(parent, time);
        Ok(ino)
    }

    /// Remove the name `name` (not a directory) from `parent`; returns the inode.
    pub fn unlink(&mut self, parent: Ino, name: &str, time: TimeNs) -> FsResult<Ino> {
        let ino = self
            .child(parent, name)?
            .ok_or(fs_err!(ENOENT, "no such name"))?;
        if self.node(ino)?.is_dir() {
            return Err(fs_err!(EISDIR, "unlink of a directory"));
        }
        self.drop_link(parent, name, ino, time);
        Ok(ino)
    }

    /// Remove the empty directory `name` from `parent`.
    pub fn rmdir(&mut self, parent: Ino, name: &str, time: TimeNs) -> FsResult<Ino> {
        let ino = self
            .child(parent, name)?
            .ok_or(fs_err!(ENOENT, "no such name"))?;
        let node = self.node(ino)?;
        match &node.children {
            None => return Err(fs_err!(ENOTDIR, "rmdir of a non-directory")),
            Some(c) if !c.is_empty() => return Err(fs_err!(ENOTEMPTY, "directory not empty")),
            Some(_) => {}
        }
        self.drop_link(parent, name, ino, time);
        Ok(ino)
    }

    /// Take away one link of `ino` (`parent`/`name`), updating link counts; frees the node
    /// when nothing refers to it any more.
    fn drop_link(&mut self, parent: Ino, name: &str, ino: Ino, time: TimeNs) {
        let is_dir = self.nodes.get(&ino).map(|n| n.is_dir()).unwrap_or(false);
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.as_mut().map(|c| c.remove(name));
            if is_dir {
                p.attr.nlink -= 1;
            }
        }
        self.touch_dir(parent, time);
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.links.retain(|(p, nm)| !(*p == parent && &**nm == name));
            n.attr.nlink = if is_dir {
                0
            } else {
                n.attr.nlink.saturating_sub(1)
            };
            n.attr.ctime = time;
        }
        self.release_if_unreferenced(ino);
    }

    /// Free a node that has no links, no kernel references and no open handles.
    pub fn release_if_unreferenced(&mut self, ino: Ino) -> bool {
        let free = match self.nodes.get(&ino) {
            Some(n) => {
                n.links.is_empty()
                    && n.lookups.load(Ordering::Acquire) == 0
                    && n.open.load(Ordering::Acquire) == 0
                    && ino != CURRENT_INO
            }
            None => false,
        };
        if free {
            if let Some(n) = self.nodes.remove(&ino) {
                if let Some(c) = n.content {
                    c.lock().discard();
                }
            }
        }
        free
    }

    /// Is `ancestor` the directory `ino` or one of its ancestors?
    fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            if ino == CURRENT_INO {
                return false;
            }
            match self.nodes.get(&ino).and_then(|n| n.links.first()) {
                Some((p, _)) => ino = *p,
                None => return false,
            }
        }
    }

    /// `renameat2` with POSIX semantics.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &str,
        newparent: Ino,
        newname: &str,
        flags: RenameFlags,
        time: TimeNs,
    ) -> FsResult<()> {
        let src = self
            .child(parent, name)?
            .ok_or(fs_err!(ENOENT, "no such name"))?;
        let dst = self.child(newparent, newname)?;
        let src_dir = self.node(src)?.is_dir();
        if src_dir && self.is_ancestor(src, newparent) {
            return Err(fs_err!(EINVAL, "cannot move a directory into itself"));
        }
        if flags.exchange {
            let dst = dst.ok_or(fs_err!(ENOENT, "exchange with a missing name"))?;
            let dst_dir = self.node(dst)?.is_dir();
            if dst_dir && self.is_ancestor(dst, parent) {
                return Err(fs_err!(EINVAL, "cannot move a directory into itself"));
            }
            if src == dst {
                return Ok(());
            }
            self.relink(src, parent, name, newparent, newname);
            self.relink(dst, newparent, newname, parent, name);
            self.set_child(parent, name, dst);
            self.set_child(newparent, newname, src);
            if src_dir != dst_dir && parent != newparent {
                let (gains, loses) = if src_dir {
                    (newparent, parent)
                } else {
                    (parent, newparent)
                };
                self.node_mut(gains)?.attr.nlink += 1;
                self.node_mut(loses)?.attr.nlink -= 1;
            }
            for ino in [src, dst] {
                self.node_mut(ino)?.attr.ctime = time;
            }
            self.touch_dir(parent, time);
            self.touch_dir(newparent, time);
            return Ok(());
        }
        if let Some(dst) = dst {
            if flags.noreplace {
                return Err(fs_err!(EEXIST, "destination exists"));
            }
            if dst == src {
                // Two names of one inode (hard links) or the same name: nothing to do.
                return Ok(());
            }
            let d = self.node(dst)?;
            match (src_dir, &d.children) {
                (true, None) => {
                    return Err(fs_err!(
                        ENOTDIR,
                        "cannot replace a non-directory with a directory"
                    ))
                }
                (false, Some(_)) => {
                    return Err(fs_err!(
                        EISDIR,
                        "cannot replace a directory with a non-directory"
                    ))
                }
                (true, Some(c)) if !c.is_empty() => {
                    return Err(fs_err!(ENOTEMPTY, "destination directory not empty"))
                }
                _ => {}
            }
            self.drop_link(newparent, newname, dst, time);
        }
        self.nodes
            .get_mut(&parent)
            .and_then(|p| p.children.as_mut())
            .map(|c| c.remove(name));
        self.set_child(newparent, newname, src);
        self.relink(src, parent, name, newparent, newname);
        if src_dir && parent != newparent {
            self.node_mut(parent)?.attr.nlink -= 1;
            self.node_mut(newparent)?.attr.nlink += 1;
        }
        self.node_mut(src)?.attr.ctime = time;
        self.touch_dir(parent, time);
        self.touch_dir(newparent, time);
        Ok(())
    }

    fn set_child(&mut self, dir: Ino, name: &str, ino: Ino) {
        if let Some(c) = self.nodes.get_mut(&dir).and_then(|d| d.children.as_mut()) {
            c.insert(Arc::from(name), ino);
        }
    }

    fn relink(&mut self, ino: Ino, parent: Ino, name: &str, newparent: Ino, newname: &str) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            if let Some(l) = n
                .links
                .iter_mut()
                .find(|(p, nm)| *p == parent && &**nm == name)
            {
                *l = (newparent, Arc::from(newname));
            }
        }
    }

    /// A new name for the existing non-directory `ino`.
    pub fn link(&mut self, ino: Ino, newparent: Ino, newname: &str, time: TimeNs) -> FsResult<()> {
        if self.node(ino)?.is_dir() {
            return Err(fs_err!(EPERM, "hard link to a directory"));
        }
        if self.child(newparent, newname)?.is_some() {
            return Err(fs_err!(EEXIST, "name exists"));
        }
        if self.node(ino)?.links.is_empty() {
            return Err(fs_err!(ENOENT, "file was removed"));
        }
        self.set_child(newparent, newname, ino);
        let n = self.node_mut(ino)?;
        n.links.push((newparent, Arc::from(newname)));
        n.attr.nlink += 1;
        n.attr.ctime = time;
        self.touch_dir(newparent, time);
        Ok(())
    }

    /// chmod / chown / utimens: the fields of a `Change::SetAttr`, each optional.
    #[allow(clippy::too_many_arguments)]
    pub fn set_attr(
        &mut self,
        ino: Ino,
        perm: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        atime: Option<TimeNs>,
        mtime: Option<TimeNs>,
        time: TimeNs,
    ) -> FsResult<()> {
        let a = &mut self.node_mut(ino)?.attr;
        if let Some(p) = perm {
            a.perm = p & 0o7777;
        }
        if let Some(u) = uid {
            a.uid = u;
        }
        if let Some(g) = gid {
            a.gid = g;
        }
        if let Some(t) = atime {
            a.atime = t;
        }
        if let Some(t) = mtime {
            a.mtime = t;
        }
        a.ctime = time;
        Ok(())
    }

    /// Set extended attribute `name` of `ino` (as `how` allows); changes its ctime.
    pub fn set_xattr(
        &mut self,
        ino: Ino,
        name: &Arc<str>,
        value: &Arc<[u8]>,
        how: XattrSet,
        time: TimeNs,
    ) -> FsResult<()> {
        let n = self.node_mut(ino)?;
        let exists = n.xattrs.as_ref().is_some_and(|x| x.contains_key(name));
        match how {
            XattrSet::Create if exists => return Err(fs_err!(EEXIST, "attribute exists")),
            XattrSet::Replace if !exists => return Err(fs_err!(ENODATA, "no such attribute")),
            _ => {}
        }
        n.xattrs
            .get_or_insert_with(Default::default)
            .insert(name.clone(), value.clone());
        n.attr.ctime = time;
        Ok(())
    }

    /// Remove extended attribute `name` of `ino`; changes its ctime.
    pub fn remove_xattr(&mut self, ino: Ino, name: &str, time: TimeNs) -> FsResult<()> {
        let n = self.node_mut(ino)?;
        let xattrs = n
            .xattrs
            .as_mut()
            .ok_or(fs_err!(ENODATA, "no such attribute"))?;
        xattrs
            .remove(name)
            .ok_or(fs_err!(ENODATA, "no such attribute"))?;
        if xattrs.is_empty() {
            n.xattrs = None;
        }
        n.attr.ctime = time;
        Ok(())
    }

    /// Record committed content of a file.
    pub fn set_content(
        &mut self,
        ino: Ino,
        hash: Option<super::Hash>,
        size: u64,
        mtime: TimeNs,
        time: TimeNs,
    ) -> FsResult<()> {
        let n = self.node_mut(ino)?;
        let content = n
            .content
            .as_ref()
            .ok_or(fs_err!(EISDIR, "content of a non-file"))?;
        content.lock().set_committed(hash);
        n.attr.size = size;
        n.attr.mtime = mtime;
        n.attr.ctime = time;
        Ok(())
    }

    /// Apply a logged change (replay). The live core validates before it records, so a
    /// change that fails here means the log does not describe a reachable state.
    pub fn apply(&mut self, change: &Change, time: TimeNs) -> FsResult<()> {
        match change {
            Change::Create {
                path,
                kind,
                perm,
                uid,
                gid,
                rdev,
            } => {
                let (parent, name) = self.resolve_parent(path)?;
                let new = NewNode {
                    kind: *kind,
                    perm: *perm,
                    uid: *uid,
                    gid: *gid,
                    rdev: *rdev,
                    target: None,
                };
                self.create(parent, name, new, time).map(drop)
            }
            Change::Symlink {
                path,
                target,
                uid,
                gid,
            } => {
                let (parent, name) = self.resolve_parent(path)?;
                let new = NewNode {
                    kind: FileKind::Symlink,
                    perm: 0o777,
                    uid: *uid,
                    gid: *gid,
                    rdev: 0,
                    target: Some(target.clone()),
                };
                self.create(parent, name, new, time).map(drop)
            }
            Change::Write {
                path,
                hash,
                size,
                mtime,
            } => {
                let ino = self.resolve(path)?;
                self.set_content(ino, *hash, *size, *mtime, time)
            }
            Change::SetAttr {
                path,
                perm,
                uid,
                gid,
                atime,
                mtime,
            } => {
                let ino = self.resolve(path)?;
                self.set_attr(ino, *perm, *uid, *gid, *atime, *mtime, time)
            }
            Change::Rename { from, to, flags } => {
                let (p, n) = self.resolve_parent(from)?;
                let (np, nn) = self.resolve_parent(to)?;
                self.rename(p, n, np, nn, *flags, time)
            }
            Change::Link { from, to } => {
                let ino = self.resolve(from)?;
                let (np, nn) = self.resolve_parent(to)?;
                self.link(ino, np, nn, time)
            }
            Change::Unlink { path } => {
                let (p, n) = self.resolve_parent(path)?;
                self.unlink(p, n, time).map(drop)
            }
            Change::Rmdir { path } => {
                let (p, n) = self.resolve_parent(path)?;
                self.rmdir(p, n, time).map(drop)
            }
            Change::SetXattr { path, name, value } => {
                let ino = self.resolve(path)?;
                self.set_xattr(ino, name, value, XattrSet::Any, time)
            }
            Change::RemoveXattr { path, name } => {
                let ino = self.resolve(path)?;
                self.remove_xattr(ino, name, time)
            }
            // What a view recorded leaves the tree as it is.
            Change::View { .. } => Ok(()),
        }
    }

    /// A copy that shares nothing mutable with this tree: committed content only, no
    /// kernel references or open handles (a past state to fold further events onto).
    pub fn detached_copy(&self) -> Tree {
        let nodes = self
            .nodes
            .iter()
            .map(|(&ino, n)| {
                let copy = Node {
                    attr: n.attr,
                    links: n.links.clone(),
                    children: n.children.clone(),
                    target: n.target.clone(),
                    content: n.content.as_ref().map(|c| Content::new(c.committed())),
                    lookups: AtomicU64::new(0),
                    open: AtomicU32::new(0),
                    xattrs: n.xattrs.clone(),
                };
                (ino, copy)
            })
            .collect();
        Tree {
            nodes,
            next_ino: self.next_ino,
            folded: self.folded,
        }
    }

    /// Every node below `dir` (depth first, parents before children), for export.
    pub fn walk(&self, dir: Ino, mut each: impl FnMut(&str, &Node)) {
        let mut stack = vec![(dir, String::new())];
        while let Some((d, prefix)) = stack.pop() {
            let Ok(children) = self.children(d) else {
                continue;
            };
            for (name, &ino) in children {
                let path = format!("{prefix}/{name}");
                if let Some(n) = self.nodes.get(&ino) {
                    each(&path, n);
                    if n.is_dir() {
                        stack.push((ino, path));
                    }
                }
            }
        }
    }
}
