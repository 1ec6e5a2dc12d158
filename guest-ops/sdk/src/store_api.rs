//! [`Store`]: what a view may ask of the host's event store, as a trait, so a view's
//! logic can run against [`HostStore`] (the WIT import) in the component and against
//! [`crate::model::ModelStore`] in native unit tests.

use crate::{store, Attrs, AuditRecord, DirEntry, Event, EventFilter, FsError};

/// The `store` interface of the WIT. Paths are relative to `current/`, with a leading "/".
pub trait Store {
    /// Seq of the newest event (0: empty log).
    fn head(&self) -> u64;
    /// The host's clock, ns since the Unix epoch.
    fn now_ns(&self) -> i64;
    /// Up to `limit` events after `after` that pass `filter`, in order.
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> Vec<Event>;
    /// The newest event at or before `time_ns` (0 when none).
    fn seq_at_time(&self, time_ns: i64) -> u64;
    fn stat_at(&self, path: &str, seq: u64) -> Result<Attrs, FsError>;
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<DirEntry>, FsError>;
    fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> Result<Vec<u8>, FsError>;
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, FsError>;
    /// Hex BLAKE3 of the file's content after `seq`.
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, FsError>;
    /// Records an event of this view (only during `write` and `create`).
    fn append(&self, op: &str, path: &str, body: &str) -> Result<u64, FsError>;
    /// Seq of the newest audit record of the mount's policy (0: none; a store that
    /// keeps no audit trail, like a test double, need not implement it).
    fn audit_head(&self) -> u64 {
        0
    }
    /// Up to `limit` audit records after `after`, in order.
    fn audit(&self, _after: u64, _limit: u32) -> Vec<AuditRecord> {
        Vec::new()
    }

    /// The content of file `path` after `seq`, at most `limit` bytes of it.
    fn read_all_at(&self, path: &str, seq: u64, limit: u64) -> Result<Vec<u8>, FsError> {
        const PIECE: u32 = 1 << 20;
        let mut out = Vec::new();
        loop {
            let want = PIECE.min((limit.saturating_sub(out.len() as u64)) as u32);
            if want == 0 {
                return Ok(out);
            }
            let part = self.read_at(path, seq, out.len() as u64, want)?;
            let done = (part.len() as u32) < want;
            out.extend_from_slice(&part);
            if done {
                return Ok(out);
            }
        }
    }
}

/// The host's store, through the component's `store` import.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostStore;

impl Store for HostStore {
    fn head(&self) -> u64 {
        store::head()
    }
    fn now_ns(&self) -> i64 {
        store::now_ns()
    }
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> Vec<Event> {
        store::events(after, limit, filter)
    }
    fn seq_at_time(&self, time_ns: i64) -> u64 {
        store::seq_at_time(time_ns)
    }
    fn stat_at(&self, path: &str, seq: u64) -> Result<Attrs, FsError> {
        store::stat_at(path, seq)
    }
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<DirEntry>, FsError> {
        store::list_at(path, seq)
    }
    fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        store::read_at(path, seq, offset, len)
    }
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        store::readlink_at(path, seq)
    }
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        store::hash_at(path, seq)
    }
    fn append(&self, op: &str, path: &str, body: &str) -> Result<u64, FsError> {
        store::append(op, path, body)
    }
    fn audit_head(&self) -> u64 {
        store::audit_head()
    }
    fn audit(&self, after: u64, limit: u32) -> Vec<AuditRecord> {
        store::audit(after, limit)
    }
}
