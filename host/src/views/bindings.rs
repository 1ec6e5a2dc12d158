//! Rust bindings of `wit/lighthouse-fs.wit` (world `view-component`), generated at
//! compile time, and the conversions between their types and the plain ones of
//! [`crate::contract`]. Nothing outside `views` sees these types.

use crate::contract::{
    Caching, Chunk, EventInfo, NodeKind, OpenMode, ViewAttrs, ViewDirEntry, ViewError, ViewInfo,
};
use crate::core::Caller;

wasmtime::component::bindgen!({
    world: "view-component",
    path: "../wit",
});

pub(crate) use exports::lighthouse::fs::view::Guest as ViewExports;
pub(crate) use lighthouse::fs::types as wit;

impl From<wit::NodeKind> for NodeKind {
    #[inline]
    fn from(k: wit::NodeKind) -> Self {
        match k {
            wit::NodeKind::File => NodeKind::File,
            wit::NodeKind::Directory => NodeKind::Directory,
            wit::NodeKind::Symlink => NodeKind::Symlink,
            wit::NodeKind::Stream => NodeKind::Stream,
        }
    }
}

impl From<NodeKind> for wit::NodeKind {
    #[inline]
    fn from(k: NodeKind) -> Self {
        match k {
            NodeKind::File => wit::NodeKind::File,
            NodeKind::Directory => wit::NodeKind::Directory,
            NodeKind::Symlink => wit::NodeKind::Symlink,
            NodeKind::Stream => wit::NodeKind::Stream,
        }
    }
}

impl From<wit::Caching> for Caching {
    #[inline]
    fn from(c: wit::Caching) -> Self {
        match c {
            wit::Caching::Volatile => Caching::Volatile,
            wit::Caching::Millis(ms) => Caching::Millis(ms),
            wit::Caching::Immutable => Caching::Immutable,
        }
    }
}

impl From<Caching> for wit::Caching {
    #[inline]
    fn from(c: Caching) -> Self {
        match c {
            Caching::Volatile => wit::Caching::Volatile,
            Caching::Millis(ms) => wit::Caching::Millis(ms),
            Caching::Immutable => wit::Caching::Immutable,
        }
    }
}

impl From<wit::Attrs> for ViewAttrs {
    #[inline]
    fn from(a: wit::Attrs) -> Self {
        ViewAttrs {
            kind: a.kind.into(),
            size: a.size,
            mtime_ns: a.mtime_ns,
            perm: a.perm,
            writable: a.writable,
            caching: a.caching.into(),
            owner: a.owner.map(|o| (o.uid, o.gid)),
        }
    }
}

impl From<ViewAttrs> for wit::Attrs {
    #[inline]
    fn from(a: ViewAttrs) -> Self {
        wit::Attrs {
            kind: a.kind.into(),
            size: a.size,
            mtime_ns: a.mtime_ns,
            perm: a.perm,
            writable: a.writable,
            caching: a.caching.into(),
            owner: a.owner.map(|(uid, gid)| wit::Owner { uid, gid }),
        }
    }
}

impl From<wit::DirEntry> for ViewDirEntry {
    #[inline]
    fn from(e: wit::DirEntry) -> Self {
        ViewDirEntry {
            name: e.name,
            kind: e.kind.into(),
        }
    }
}

impl From<ViewDirEntry> for wit::DirEntry {
    #[inline]
    fn from(e: ViewDirEntry) -> Self {
        wit::DirEntry {
            name: e.name,
            kind: e.kind.into(),
        }
    }
}

impl From<wit::FsError> for ViewError {
    fn from(e: wit::FsError) -> Self {
        match e {
            wit::FsError::NotFound => ViewError::NotFound,
            wit::FsError::NotADirectory => ViewError::NotADirectory,
            wit::FsError::IsADirectory => ViewError::IsADirectory,
            wit::FsError::ReadOnly => ViewError::ReadOnly,
            wit::FsError::PermissionDenied => ViewError::PermissionDenied,
            wit::FsError::WouldBlock => ViewError::WouldBlock,
            wit::FsError::NotEmpty => ViewError::NotEmpty,
            wit::FsError::Exists => ViewError::Exists,
            wit::FsError::Invalid(why) => ViewError::Invalid(why),
            wit::FsError::Internal(why) => ViewError::Internal(why),
        }
    }
}

impl From<ViewError> for wit::FsError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::NotFound => wit::FsError::NotFound,
            ViewError::NotADirectory => wit::FsError::NotADirectory,
            ViewError::IsADirectory => wit::FsError::IsADirectory,
            ViewError::ReadOnly => wit::FsError::ReadOnly,
            ViewError::PermissionDenied => wit::FsError::PermissionDenied,
            ViewError::WouldBlock => wit::FsError::WouldBlock,
            ViewError::NotEmpty => wit::FsError::NotEmpty,
            ViewError::Exists => wit::FsError::Exists,
            ViewError::Invalid(why) => wit::FsError::Invalid(why),
            ViewError::Internal(why) => wit::FsError::Internal(why),
        }
    }
}

impl From<EventInfo> for wit::Event {
    fn from(e: EventInfo) -> Self {
        wit::Event {
            seq: e.seq,
            time_ns: e.time_ns,
            agent: e.agent,
            uid: e.uid,
            gid: e.gid,
            pid: e.pid,
            op: e.op,
            path: e.path,
            path2: e.path2,
            size: e.size,
            hash: e.hash,
            view: e.view,
            body: e.body,
        }
    }
}

impl From<wit::OpenMode> for OpenMode {
    fn from(m: wit::OpenMode) -> Self {
        match m {
            wit::OpenMode::Plain => OpenMode::Plain,
            wit::OpenMode::Stream(cursor) => OpenMode::Stream(cursor),
        }
    }
}

impl From<wit::Chunk> for Chunk {
    fn from(c: wit::Chunk) -> Self {
        Chunk {
            data: c.data,
            cursor: c.cursor,
            time_ns: c.time_ns,
            end: c.end,
        }
    }
}

/// The WIT caller of a call for `c`, whom the store sees as sight `sight`.
#[inline]
pub(crate) fn wit_caller(c: &Caller, sight: u64) -> wit::Caller {
    wit::Caller {
        agent: c.agent_name.map(String::from),
        uid: c.uid,
        gid: c.gid,
        pid: c.pid,
        sight,
    }
}

impl From<wit::ViewInfo> for ViewInfo {
    fn from(i: wit::ViewInfo) -> Self {
        ViewInfo {
            name: i.name,
            version: i.version,
            description: i.description,
        }
    }
}
