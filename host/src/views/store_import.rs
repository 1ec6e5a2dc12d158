//! The `store` import of the WIT contract: what the host lets a view see of the event
//! store. [`StoreAccess`] says what that is; `bridge::HistoryAccess` implements it over
//! the store (and `MemoryStore` for tests); this module serves it to the component, for
//! the caller of the call in progress.

use std::time::Instant;

use super::bindings::{lighthouse::fs::store, wit};
use super::instance_state::InstanceState;
use crate::contract::{AuditPage, EventFilter, EventsPage, ViewAttrs, ViewDirEntry, ViewError};
use crate::core::Caller;
use crate::core::Viewer;

/// The read-only window onto the event store that views get.
///
/// Paths are relative to `current/`, with a leading "/". Calls come from whichever
/// thread is calling into a view (FUSE workers, tokio blocking sections), concurrently,
/// and sit inside the view's time budget: answer from memory where possible, never block
/// for long, and never panic (a panic here unwinds through the view into the caller).
/// The host caps `limit` of [`events`](Self::events) and `len` of
/// [`read_at`](Self::read_at) (see `ViewLimits`) before calling.
///
/// Every answer is for `viewer`, the caller of the view call being served: what it could
/// not read itself answers `PermissionDenied` or is left out (docs/policy.md, "What views
/// may reveal"), and the viewer is marked when an answer depended on who asked.
pub trait StoreAccess: Send + Sync {
    /// The viewer of a call made for `caller` (resolved once per call).
    fn viewer(&self, caller: &Caller) -> Viewer;
    /// Sequence number of the newest event (0: empty log).
    fn head(&self) -> u64;
    /// The host's clock, nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;
    /// Up to `limit` events with seq > `after` that pass `filter` and that `viewer` may
    /// see, in order, and how far the log was looked at.
    fn events(&self, viewer: &Viewer, after: u64, limit: u32, filter: &EventFilter) -> EventsPage;
    /// The newest event at or before `time_ns` (0 when none).
    fn seq_at_time(&self, time_ns: i64) -> u64;
    /// The attributes of `path` in the tree after event `seq` (seq 0: the empty tree).
    fn stat_at(&self, viewer: &Viewer, path: &str, seq: u64) -> Result<ViewAttrs, ViewError>;
    /// The entries of directory `path` after event `seq`.
    fn list_at(
        &self,
        viewer: &Viewer,
        path: &str,
        seq: u64,
    ) -> Result<Vec<ViewDirEntry>, ViewError>;
    /// Up to `len` bytes of file `path` from `offset`, after event `seq`.
    fn read_at(
        &self,
        viewer: &Viewer,
        path: &str,
        seq: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ViewError>;
    /// The target of symlink `path` after event `seq`.
    fn readlink_at(&self, viewer: &Viewer, path: &str, seq: u64) -> Result<String, ViewError>;
    /// Hex BLAKE3 of file `path`'s content after event `seq`.
    fn hash_at(&self, viewer: &Viewer, path: &str, seq: u64) -> Result<String, ViewError>;
    /// Records an event of `view`, made by `caller` (seen as `viewer`). The host has
    /// checked the op (not a tree op, well formed), the path (absolute, normalised) and the
    /// body (one JSON document, compact, within the size limit).
    fn append(
        &self,
        view: &str,
        caller: &Caller,
        viewer: &Viewer,
        op: &str,
        path: &str,
        body: &str,
    ) -> Result<u64, ViewError>;
    /// Seq of the newest audit record (0: none; a store without a policy has none).
    fn audit_head(&self) -> u64 {
        0
    }
    /// Up to `limit` audit records with seq > `after` that `viewer` may see, in order.
    fn audit(&self, _viewer: &Viewer, after: u64, _limit: u32) -> AuditPage {
        AuditPage {
            records: Vec::new(),
            through: after,
        }
    }
}

impl wit::Host for InstanceState {}

impl InstanceState {
    /// Runs one `store` call for the caller of the call in progress, counting its time as
    /// the host's (not the view's deadline). Outside a call (never, for a view's exports)
    /// the store shows nothing.
    fn timed<R>(
        &mut self,
        outside: impl FnOnce() -> R,
        f: impl FnOnce(&dyn StoreAccess, &Viewer) -> R,
    ) -> R {
        let Some(viewer) = self.call.as_ref().map(|c| c.viewer.clone()) else {
            return outside();
        };
        let start = Instant::now();
        let result = f(&*self.store_access, &viewer);
        self.clock.host_since(start);
        result
    }
}

impl store::Host for InstanceState {
    fn head(&mut self) -> u64 {
        self.store_access.head()
    }

    fn now_ns(&mut self) -> i64 {
        self.store_access.now_ns()
    }

    // The calls below may fold history or read content: timed.

    fn events(&mut self, after: u64, limit: u32, filter: wit::EventFilter) -> wit::EventsPage {
        let limit = limit.min(self.max_events_per_call);
        let filter = EventFilter {
            prefix: filter.prefix,
            ops: filter.ops,
        };
        let page = self.timed(EventsPage::default, |s, v| {
            s.events(v, after, limit, &filter)
        });
        wit::EventsPage {
            events: page.events.into_iter().map(Into::into).collect(),
            through: page.through.max(after),
        }
    }

    fn seq_at_time(&mut self, time_ns: i64) -> u64 {
        let access = self.store_access.clone();
        let start = Instant::now();
        let seq = access.seq_at_time(time_ns);
        self.clock.host_since(start);
        seq
    }

    fn stat_at(&mut self, path: String, seq: u64) -> Result<wit::Attrs, wit::FsError> {
        self.timed(outside_call, |s, v| s.stat_at(v, &path, seq))
            .map(Into::into)
            .map_err(Into::into)
    }

    fn list_at(&mut self, path: String, seq: u64) -> Result<Vec<wit::DirEntry>, wit::FsError> {
        match self.timed(outside_call, |s, v| s.list_at(v, &path, seq)) {
            Ok(entries) => Ok(entries.into_iter().map(Into::into).collect()),
            Err(e) => Err(e.into()),
        }
    }

    fn read_at(
        &mut self,
        path: String,
        seq: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, wit::FsError> {
        let len = len.min(self.max_read_bytes);
        self.timed(outside_call, |s, v| s.read_at(v, &path, seq, offset, len))
            .map_err(Into::into)
    }

    fn readlink_at(&mut self, path: String, seq: u64) -> Result<String, wit::FsError> {
        self.timed(outside_call, |s, v| s.readlink_at(v, &path, seq))
            .map_err(Into::into)
    }

    fn hash_at(&mut self, path: String, seq: u64) -> Result<String, wit::FsError> {
        self.timed(outside_call, |s, v| s.hash_at(v, &path, seq))
            .map_err(Into::into)
    }

    fn append(&mut self, op: String, path: String, body: String) -> Result<u64, wit::FsError> {
        let Some(call) = self.call.as_ref().filter(|c| c.may_append) else {
            return Err(invalid(
                "store.append is only allowed during write, create and remove",
            ));
        };
        check_view_op(&op)?;
        if !is_live_path(&path) {
            return Err(invalid(format!(
                "append: {path:?} is not a path of current/ (absolute, normalised)"
            )));
        }
        if body.len() > MAX_BODY_BYTES {
            return Err(invalid(format!(
                "append: the body is {} bytes, the limit is {MAX_BODY_BYTES}",
                body.len()
            )));
        }
        // One compact JSON document per event: the log stays one line per event.
        let body = serde_json::from_str::<serde_json::Value>(&body)
            .map_err(|e| invalid(format!("append: the body is not one JSON document: {e}")))?
            .to_string();
        let (view, caller) = (call.view.clone(), call.caller);
        self.timed(outside_call, |s, v| {
            s.append(&view, &caller, v, &op, &path, &body)
        })
        .map_err(Into::into)
    }

    fn audit_head(&mut self) -> u64 {
        self.store_access.audit_head()
    }

    fn audit(&mut self, after: u64, limit: u32) -> wit::AuditPage {
        self.audit_records(after, limit)
    }
}

impl InstanceState {
    /// `audit-head` and `audit` of the store import (see `store::Host` below).
    fn audit_records(&mut self, after: u64, limit: u32) -> wit::AuditPage {
        let limit = limit.min(self.max_events_per_call);
        let page = self.timed(
            || AuditPage {
                records: Vec::new(),
                through: after,
            },
            |s, v| s.audit(v, after, limit),
        );
        let records = page
            .records
            .into_iter()
            .map(|a| wit::AuditRecord {
                seq: a.seq,
                time_ns: a.time_ns,
                agent: a.agent,
                uid: a.uid,
                gid: a.gid,
                pid: a.pid,
                op: a.op,
                path: a.path,
                outcome: a.outcome,
            })
            .collect();
        wit::AuditPage {
            records,
            through: page.through.max(after),
        }
    }
}

/// A tree read outside a view call: nothing to answer for.
fn outside_call<T>() -> Result<T, ViewError> {
    Err(ViewError::Internal(
        "a store call outside a view call".into(),
    ))
}

/// Largest body of a view event.
pub const MAX_BODY_BYTES: usize = 64 << 10;

fn invalid(why: impl Into<String>) -> wit::FsError {
    wit::FsError::Invalid(why.into())
}

/// A view's own op: 1–32 of a-z, 0-9, '-', and not an op of the live tree.
fn check_view_op(op: &str) -> Result<(), wit::FsError> {
    let well_formed = (1..=32).contains(&op.len())
        && op
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(invalid(format!(
            "append: op {op:?} must be 1-32 characters of a-z, 0-9 and '-'"
        )));
    }
    if crate::store::TREE_OPS.contains(&op) {
        return Err(invalid(format!(
            "append: {op:?} is an op of the live tree, a view may not record it"
        )));
    }
    Ok(())
}

/// "/" or "/a/b": absolute, no empty, "." or ".." components, no trailing slash.
fn is_live_path(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && path[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0')))
}
