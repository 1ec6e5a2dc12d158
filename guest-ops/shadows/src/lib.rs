//! `shadows/`: annotations on the files of `current/`, anchored to lines that are found
//! again after the file changes.
//!
//! `shadows/` mirrors the directories of `current/` (at the head of the log). Each
//! regular file of `current/` has a shadow file (symlinks have none: they are not
//! listed and do not resolve; annotate their target). Reading it gives one JSON
//! document, pretty-printed and ending in a newline:
//!
//! ```json
//! {
//!   "path": "/src/a.rs",
//!   "hash": "<hex BLAKE3 of the file now>",
//!   "size": 1234,
//!   "annotations": [
//!     {
//!       "id": "@12",
//!       "seq": 12,
//!       "agent": "claude",
//!       "uid": 1000,
//!       "time": "2026-11-23T21:40:00.123456789Z",
//!       "kind": "comment",
//!       "text": "check this loop",
//!       "anchor": {
//!         "start_line": 5,
//!         "end_line": 5,
//!         "original_start_line": 2,
//!         "original_end_line": 2,
//!         "match": "exact",
//!         "lines": "    for i in 0..n {"
//!       },
//!       "status": "moved",
//!       "annotated_path": "/src/a.rs",
//!       "annotated_hash": "<hex BLAKE3 of the file when annotated>"
//!     }
//!   ]
//! }
//! ```
//!
//! Annotations are oldest first. `id` is `@SEQ`, the seq of the annotation's event,
//! which is also the name of the point in `history/` right after it was written
//! (`history/@12/<annotated_path>` is the file as it was annotated). Lines are 1-based
//! and inclusive. `anchor` is `null` for an annotation of the whole file, which is
//! always `fresh`. `status` is `fresh` (the anchored text is where it was), `moved`
//! (found elsewhere, or in place with only whitespace changed: `match` says which) or
//! `stale` (gone: the range is the original one, `match` is `none`). `lines` is the
//! anchored text as written (cut at 4 KiB, then `"truncated": true` follows it). How
//! anchors are found again is described in `anchor.rs`; how annotations follow renames
//! and survive saves that delete or replace the file, in `fold.rs`.
//!
//! Writing to a shadow file adds annotations: each write(2) carries one JSON object or
//! several (JSON lines), described in `input.rs`:
//!
//! ```text
//! $ echo '{"kind":"comment","text":"check this loop","anchor":{"start_line":2,"end_line":2}}' \
//!     >> MOUNT/shadows/src/a.rs
//! ```
//!
//! Each becomes an `annotate` event of the log (so `history/` and streams see it),
//! attributed to the writer. Every object is checked first, and if any is wrong (not
//! JSON, a field that is unknown or of the wrong type, a blank text, an anchor that is
//! not within the file's lines) the write fails with EINVAL and nothing is recorded.
//! At most 256 annotations per write. A path that is not a regular file of `current/`
//! is ENOENT (a directory: EISDIR); `shadows/` never creates files (creating one that
//! `current/` lacks is ENOENT) nor directories (EACCES).
//! Anchors are looked for in the whole lines of a file's first 8 MiB (past that, only
//! whole-file annotations can be written, and anchors there read as stale).
//! Writing only ever adds: the offset is ignored and so is `O_TRUNC`, so `>` and `>>`
//! do the same. A write must hold whole objects (`cat` of a long file of JSON lines
//! may split one across writes; write at most 1 MiB at a time, ending in whole lines).
//!
//! Attributes: shadow files are 0o644, writable, and their size is the length of the
//! document as it would be read now; directories are 0o755. Everything is volatile.
//! The mtime of a shadow file is the newer of the file's and its newest annotation's.
//!
//! The logic is in `shadows.rs` (generic over the store, tested natively against the
//! SDK's model store); this file only binds it to the component's imports and exports.

mod anchor;
mod fold;
mod input;
mod shadows;

#[cfg(test)]
mod tests;

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FsError, HostStore, NodeKind, OpenMode};
use lighthouse_view_sdk::{View, ViewInfo};

use crate::shadows::Shadows;

/// The view's name: its directory, and the `view` of the events it appends.
pub const NAME: &str = "shadows";

thread_local! {
    /// One per instance: its fold of the log is kept between calls.
    static VIEW: Shadows<HostStore> = Shadows::new(HostStore, NAME);
}

/// Runs `f` on this instance's view, serving caller `c`.
fn serve<T>(c: Caller, f: impl FnOnce(&Shadows<HostStore>) -> T) -> T {
    VIEW.with(|v| {
        v.serving(&c);
        f(v)
    })
}

struct ShadowsView;

impl View for ShadowsView {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!(
            NAME,
            "Annotations on the files of current/ (JSON), anchored to lines that follow edits; write JSON to add one"
        )
    }

    fn getattr(c: Caller, path: String) -> Result<Attrs, FsError> {
        serve(c, |v| v.getattr(&path))
    }

    fn readdir(c: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        serve(c, |v| v.readdir(&path))
    }

    fn read(c: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        serve(c, |v| v.read(&path, offset, len))
    }

    fn readlink(c: Caller, path: String) -> Result<String, FsError> {
        serve(c, |v| v.readlink(&path))
    }

    fn open(c: Caller, path: String, write: bool) -> Result<OpenMode, FsError> {
        serve(c, |v| v.open(&path, write))
    }

    fn write(c: Caller, path: String, _offset: u64, data: Vec<u8>) -> Result<u32, FsError> {
        serve(c, |v| v.write(&path, &data))
    }

    fn create(c: Caller, path: String, kind: NodeKind) -> Result<Attrs, FsError> {
        serve(c, |v| v.create(&path, kind))
    }
}

lighthouse_view_sdk::export!(ShadowsView);
