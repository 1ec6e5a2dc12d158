//! `streams/`: live feeds of the event log, one JSON line per event, like `tail -f`.
//!
//! ```text
//! $ ls MOUNT/streams
//! README  agent_activity  all  annotations  file_changes
//! $ cat MOUNT/streams/file_changes          # from now on, waits for more
//! {"seq":121,"time":"2026-11-23T21:40:00.123456789Z","time_ns":1795470000123456789,"agent":"claude","uid":1000,"gid":1000,"pid":42,"op":"write","path":"/src/a.rs","path2":null,"size":12,"hash":"…","view":null,"body":null}
//! $ cat MOUNT/streams/file_changes@120      # with event 120 (then waits)
//! $ cat MOUNT/streams/annotations@-10m      # the last ten minutes' annotations, then waits
//! ```
//!
//! | stream | events | lines |
//! |---|---|---|
//! | `file_changes` | changes to the live tree: create, mkdir, symlink, mknod, write, setattr, rename, link, unlink, rmdir | full |
//! | `annotations` | op `annotate` (what `shadows/` appends) | full |
//! | `agent_activity` | every event | compact: `{seq,time,agent,uid,pid,op,path[,path2]}` |
//! | `all` | every event | full |
//!
//! `agent_activity` and `all` show the same events; `agent_activity` is the short
//! who-did-what-where line (no sizes, hashes or bodies), for watching what agents do.
//! Line formats are in [`render`]; the `@FROM` forms in [`start`]. `streams/README`
//! says the same to a reader of the mount.
//!
//! How a stream is served (contract 0.2): `getattr` answers a file of size 0, 0o444,
//! volatile; `open` answers `stream(cursor)` with the cursor the name stands for (the
//! head for a plain name: only events after the open); the host then calls `next` with
//! that cursor and with each chunk's cursor after it, keeps what a reader did not take
//! yet, and parks a reader whose chunk was empty until the store moves. The view keeps
//! nothing: each reader's place is its cursor, so any number of readers each get every
//! event, in order, none lost or doubled (see [`streams::Streams::next`]). `read` by
//! offset is EINVAL for a stream; writes are EROFS.
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
            "Live feeds of the event log as JSON lines: file_changes, annotations, agent_activity, all (NAME@SEQ, NAME@-10m to start earlier)"
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
