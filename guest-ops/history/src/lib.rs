//! `history/`: the live tree at any point of the event log, and every path's versions.
//!
//! - `history/<when>/...` is `current/` as it was at `<when>`, any depth, read-only.
//!   `<when>` is `@SEQ` (after event SEQ), an RFC 3339 time (`2026-11-23T21:40:00Z`,
//!   any offset or fraction), or a span before now (`-30s`, `-10m`, `-2h`, `-1d`,
//!   `-1h30m`). Any such name resolves, listed or not.
//! - `history/` lists `.log` and the last 20 events, each as `@SEQ` and as its time
//!   (UTC, nanoseconds), which resolves back to exactly that event.
//! - `history/.log/<path>` is that path's events as JSON lines; `.log` and its
//!   directories list the current tree.
//!
//! The logic is in [`history`] (generic over the store, tested natively); this file
//! only binds it to the component's `store` import and `view` export.

mod history;
mod log;
mod when;

#[cfg(test)]
mod tests;

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FsError, HostStore, View, ViewInfo};

use crate::history::History;

const VIEW: History<HostStore> = History { store: HostStore };

struct HistoryView;

impl View for HistoryView {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!(
            "history",
            "The live tree at any point of the log (@SEQ, RFC 3339, -10m), and each path's versions (.log/)"
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
}

lighthouse_view_sdk::export!(HistoryView);
