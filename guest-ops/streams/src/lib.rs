//! `streams/`: the event log as append-only log files, one JSON line per event.
//!
//! ```text
//! $ ls MOUNT/streams
//! README  agent_activity  all  annotations  audit  file_changes
//! $ tail -f MOUNT/streams/file_changes      # the last 10 lines, then what comes
//! {"seq":121,"time":"2026-11-23T21:40:00.123456789Z","time_ns":1795470000123456789,"agent":"claude","uid":1000,"gid":1000,"pid":42,"op":"write","path":"/src/a.rs","path2":null,"size":12,"hash":"…","view":null,"body":null}
//! $ cat MOUNT/streams/file_changes@now      # a symlink to file_changes@SEQ: from now on
//! $ cat MOUNT/streams/file_changes@120      # from event 120 on (then waits)
//! $ cat MOUNT/streams/annotations@-10m      # the last ten minutes' annotations, then waits
//! ```
//!
//! | stream | events | lines |
//! |---|---|---|
//! | `file_changes` | changes to the live tree: create, mkdir, symlink, mknod, write, setattr, rename, link, unlink, rmdir | full |
//! | `annotations` | op `annotate` (what `shadows/` appends) | full |
//! | `agent_activity` | every event | compact: `{seq,time,agent,uid,pid,op,path[,path2]}` |
//! | `all` | every event | full |
//! | `audit` | the policy's audit records (their own seqs) | `{seq,time,agent,uid,gid,pid,op,path,outcome}` |
//!
//! `agent_activity` and `all` show the same events; `agent_activity` is the short
//! who-did-what-where line (no sizes, hashes or bodies), for watching what agents do.
//! Line formats are in [`render`]; the `@FROM` forms in [`start`]. `streams/README`
//! says the same to a reader of the mount.
//!
//! How a stream is served (contract 0.4): `getattr` of `NAME` and `NAME@SEQ` answers
//! kind `stream`; `open` answers `stream(cursor)` with the cursor the log starts after
//! (0 for `NAME`, SEQ - 1 for `NAME@SEQ`); `next` renders the lines after a cursor. The
//! host owns the rest: the file's size (the lines up to the head), offsets, a reader
//! waiting at the end. It renders old parts again from cursors it kept, so `next` from
//! a cursor renders the same lines again (see [`streams::Streams::next`]). `NAME@now`,
//! `NAME@-10m` and `NAME@<RFC 3339>` are symlinks to `NAME@SEQ`, resolved when read.
//! `read` by offset is EINVAL for a stream; writes are EROFS.
//!
//! Layout: [`catalog`] (the streams and their filters), [`start`] (`@FROM`), [`render`]
//! (JSON lines), [`streams`] (the answers, generic over the store and tested natively
//! against the SDK's model store); this file binds them to the component.

pub mod catalog;
pub mod render;
pub mod start;
pub mod streams;

#[cfg(test)]
mod tests;

use lighthouse_view_sdk::{
    Attrs, Caller, Chunk, DirEntry, FsError, HostStore, OpenMode, View, ViewInfo,
};

use crate::streams::Streams;

const VIEW: Streams<HostStore> = Streams { store: HostStore };

struct StreamsView;

impl View for StreamsView {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!(
            "streams",
            "The event log as append-only JSON-lines files: file_changes, annotations, agent_activity, all, audit (NAME@SEQ from an event; NAME@now, NAME@-10m link there)"
        )
    }

    fn getattr(_: Caller, path: String) -> Result<Attrs, FsError> {
        VIEW.getattr(&path)
    }

    fn readdir(_: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        VIEW.readdir(&path)
    }

    fn read(_: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        VIEW.read(&path, offset, len)
    }

    fn readlink(_: Caller, path: String) -> Result<String, FsError> {
        VIEW.readlink(&path)
    }

    fn open(_: Caller, path: String, write: bool) -> Result<OpenMode, FsError> {
        VIEW.open(&path, write)
    }

    fn next(_: Caller, path: String, cursor: u64, max: u32) -> Result<Chunk, FsError> {
        VIEW.next(&path, cursor, max)
    }
}

lighthouse_view_sdk::export!(StreamsView);
