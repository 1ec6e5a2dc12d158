//! The `store` import of the WIT contract: what the host lets a view see of the event
//! store. The core implements [`StoreAccess`]; this module adapts it to the component.

use std::time::Instant;

use super::bindings::{lighthouse::fs::store, wit};
use super::instance_state::InstanceState;
use super::types::{AuditInfo, Caller, EventFilter, EventInfo, ViewAttrs, ViewDirEntry, ViewError};

/// The read-only window onto the event store that views get, implemented by the core.
///
/// Paths are relative to `current/`, with a leading "/". Calls come from whichever
/// thread is calling into a view (FUSE workers, tokio blocking sections), concurrently,
/// and sit inside the view's time budget: answer from memory where possible, never block
/// for long, and never panic (a panic here unwinds through the view into the caller).
/// The host caps `limit` of [`events`](Self::events) and `len` of
/// [`read_at`](Self::read_at) (see `ViewLimits`) before calling.
pub trait StoreAccess: Send + Sync {
    /// Sequence number of the newest event (0: empty log).
    fn head(&self) -> u64;
    /// The host's clock, nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;
    /// Up to `limit` events with seq > `after` that pass `filter`, in order.
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> Vec<EventInfo>;
    /// The newest event at or before `time_ns` (0 when none).
    fn seq_at_time(&self, time_ns: i64) -> u64;
    /// The attributes of `path` in the tree after event `seq` (seq 0: the empty tree).
    fn stat_at(&self, path: &str, seq: u64) -> Result<ViewAttrs, ViewError>;
    /// The entries of directory `path` after event `seq`.
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<ViewDirEntry>, ViewError>;
    /// Up to `len` bytes of file `path` from `offset`, after event `seq`.
    fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> Result<Vec<u8>, ViewError>;
    /// The target of symlink `path` after event `seq`.
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, ViewError>;
    /// Hex BLAKE3 of file `path`'s content after event `seq`.
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, ViewError>;
    /// Records an event of `view`, made by `caller`. The host has checked the op (not a
    /// tree op, well formed), the path (absolute, normalised) and the body (one JSON
    /// document, compact, within the size limit).
    fn append(
        &self,
        view: &str,
        caller: &Caller,
        op: &str,
        path: &str,
        body: &str,
    ) -> Result<u64, ViewError>;
    /// Seq of the newest audit record (0: none; a store without a policy has none).
    fn audit_head(&self) -> u64 {
        0
    }
    /// Up to `limit` audit records with seq > `after`, in order.
    fn audit(&self, _after: u64, _limit: u32) -> Vec<AuditInfo> {
        Vec::new()
    }
}

impl wit::Host for InstanceState {}

impl InstanceState {
    /// Runs one `store` call, counting its time as the host's (not the view's deadline).
    fn timed<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let start = Instant::now();
        let result = f(self);
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

    fn events(&mut self, after: u64, limit: u32, filter: wit::EventFilter) -> Vec<wit::Event> {
        let limit = limit.min(self.max_events_per_call);
        let filter = EventFilter {
            prefix: filter.prefix,
            ops: filter.ops,
        };
        self.timed(|s| s.store_access.events(after, limit, &filter))
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn seq_at_time(&mut self, time_ns: i64) -> u64 {
        self.timed(|s| s.store_access.seq_at_time(time_ns))
    }

    fn stat_at(&mut self, path: String, seq: u64) -> Result<wit::Attrs, wit::FsError> {
        self.timed(|s| s.store_access.stat_at(&path, seq))
            .map(Into::into)
            .map_err(Into::into)
    }

    fn list_at(&mut self, path: String, seq: u64) -> Result<Vec<wit::DirEntry>, wit::FsError> {
        match self.timed(|s| s.store_access.list_at(&path, seq)) {
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
        self.timed(|s| s.store_access.read_at(&path, seq, offset, len))
            .map_err(Into::into)
    }

    fn readlink_at(&mut self, path: String, seq: u64) -> Result<String, wit::FsError> {
        self.timed(|s| s.store_access.readlink_at(&path, seq))
            .map_err(Into::into)
    }

    fn hash_at(&mut self, path: String, seq: u64) -> Result<String, wit::FsError> {
        self.timed(|s| s.store_access.hash_at(&path, seq))
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
        let (view, caller) = (call.view.clone(), call.caller.clone());
        self.timed(|s| s.store_access.append(&view, &caller, &op, &path, &body))
            .map_err(Into::into)
    }

    fn audit_head(&mut self) -> u64 {
        self.store_access.audit_head()
    }

    fn audit(&mut self, after: u64, limit: u32) -> Vec<wit::AuditRecord> {
        self.audit_records(after, limit)
    }
}

impl InstanceState {
    /// `audit-head` and `audit` of the store import (see `store::Host` below).
    fn audit_records(&mut self, after: u64, limit: u32) -> Vec<wit::AuditRecord> {
        let limit = limit.min(self.max_events_per_call);
        self.timed(|s| s.store_access.audit(after, limit))
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
            .collect()
    }
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
