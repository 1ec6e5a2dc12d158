//! Events: every change to the live tree, in order. The tree is a fold of its events.

use std::sync::Arc;

use crate::store::Hash;
use crate::vocab::{Caller, FileKind, RenameFlags, TimeNs};

/// One change to the live tree. Paths are relative to `current/` with a leading `/`
/// (`/src/main.rs`); the root of the live tree is `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new file, directory, FIFO or socket.
    Create {
        path: Arc<str>,
        kind: FileKind,
        perm: u32,
        uid: u32,
        gid: u32,
        rdev: u32,
    },
    Symlink {
        path: Arc<str>,
        target: Arc<str>,
        uid: u32,
        gid: u32,
    },
    /// New content of a file, committed at close or fsync (`hash` is `None` when empty).
    Write {
        path: Arc<str>,
        hash: Option<Hash>,
        size: u64,
        mtime: TimeNs,
    },
    /// chmod / chown / utimens; only the fields set change.
    SetAttr {
        path: Arc<str>,
        perm: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        atime: Option<TimeNs>,
        mtime: Option<TimeNs>,
    },
    Rename {
        from: Arc<str>,
        to: Arc<str>,
        flags: RenameFlags,
    },
    Link {
        from: Arc<str>,
        to: Arc<str>,
    },
    Unlink {
        path: Arc<str>,
    },
    Rmdir {
        path: Arc<str>,
    },
    /// An extended attribute set (created or replaced) on the inode at `path`; the value
    /// is binary.
    SetXattr {
        path: Arc<str>,
        name: Arc<str>,
        value: Arc<[u8]>,
    },
    RemoveXattr {
        path: Arc<str>,
        name: Arc<str>,
    },
    /// An event a view recorded (an annotation, a context manifest): not a change to the
    /// tree, but in the log so history and streams see it. `op` is the view's own verb
    /// (never one of the tree's), `path` the live path it is about, `body` one JSON
    /// document.
    View {
        view: Arc<str>,
        op: Arc<str>,
        path: Arc<str>,
        body: Arc<str>,
    },
}

/// The ops of changes to the tree: a view may not record an event under these names.
pub const TREE_OPS: &[&str] = &[
    "create",
    "mkdir",
    "mknod",
    "symlink",
    "write",
    "setattr",
    "rename",
    "link",
    "unlink",
    "rmdir",
    "setxattr",
    "removexattr",
];

impl Change {
    /// The operation's name as the log shows it.
    pub fn op(&self) -> &str {
        match self {
            Change::Create {
                kind: FileKind::Dir,
                ..
            } => "mkdir",
            Change::Create {
                kind: FileKind::File,
                ..
            } => "create",
            Change::Create { .. } => "mknod",
            Change::Symlink { .. } => "symlink",
            Change::Write { .. } => "write",
            Change::SetAttr { .. } => "setattr",
            Change::Rename { .. } => "rename",
            Change::Link { .. } => "link",
            Change::Unlink { .. } => "unlink",
            Change::Rmdir { .. } => "rmdir",
            Change::SetXattr { .. } => "setxattr",
            Change::RemoveXattr { .. } => "removexattr",
            Change::View { op, .. } => op,
        }
    }

    /// The path the change is about.
    pub fn path(&self) -> &str {
        match self {
            Change::Create { path, .. }
            | Change::Symlink { path, .. }
            | Change::Write { path, .. }
            | Change::SetAttr { path, .. }
            | Change::Unlink { path }
            | Change::Rmdir { path }
            | Change::SetXattr { path, .. }
            | Change::RemoveXattr { path, .. }
            | Change::View { path, .. } => path,
            Change::Rename { from, .. } | Change::Link { from, .. } => from,
        }
    }

    /// The view that recorded the event, for view events.
    pub fn view(&self) -> Option<&str> {
        match self {
            Change::View { view, .. } => Some(view),
            _ => None,
        }
    }

    /// The value an extended attribute was set to.
    pub fn xattr_value(&self) -> Option<&[u8]> {
        match self {
            Change::SetXattr { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The JSON document of a view event.
    pub fn body(&self) -> Option<&str> {
        match self {
            Change::View { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The second path: rename or link destination, symlink target; for an extended
    /// attribute, its name.
    pub fn path2(&self) -> Option<&str> {
        match self {
            Change::Rename { to, .. } | Change::Link { to, .. } => Some(to),
            Change::Symlink { target, .. } => Some(target),
            Change::SetXattr { name, .. } | Change::RemoveXattr { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// A change with its place in the log: when, and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub time: TimeNs,
    pub caller: Caller,
    /// The agent name, once the auth layer knows callers by name.
    pub agent: Option<Arc<str>>,
    pub change: Change,
}

impl Event {
    /// Does the event touch `prefix` (the path itself or anything below it)?
    pub fn touches(&self, prefix: &str) -> bool {
        let under = |p: &str| {
            prefix == "/"
                || p == prefix
                || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
        };
        under(self.change.path())
            || matches!(&self.change, Change::Rename { to, .. } | Change::Link { to, .. } if under(to))
    }
}
