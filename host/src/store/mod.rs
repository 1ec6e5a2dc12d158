//! The store: an event log, the content objects its events name, and what both fold
//! into (the projection of the live tree, [`Tree`]).
//!
//! The core and the views see a store only through the [`Store`] trait: what they need of
//! one (append an event, read the log from a seq, objects by hash, durability, health,
//! waiting for the log to move). [`EmbeddedStore`] (`embedded.rs`) is the one this
//! process holds alone: SQLite + object files in one directory, under an exclusive lock.
//! A store shared by several processes or hosts implements the same trait; the trait is
//! shaped for a log that grows from other writers too (see [`Store::append`]).
//!
//! Layout of an embedded store's directory:
//! ```text
//! STORE/events.db      the event log (SQLite, WAL); inspect with sqlite3
//! STORE/objects/ab/…   file contents by hash, immutable
//! STORE/scratch/       files being written (removed at start: uncommitted)
//! STORE/reserve        room kept for the log, given back when the disk fills (space.rs)
//! STORE/LOCK           held (flock) by the process that serves or edits the store
//! ```

mod audit;
mod columns;
mod content;
mod embedded;
mod event;
mod history;
mod labels;
mod log;
mod object_cache;
mod objects;
mod pg_connect;
pub mod postgres;
mod projection;
mod space;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use audit::{Audit, AuditRecord, AUDIT_KEPT, AUDIT_LINES_PER_SEC};
pub use content::{
    read_at, BackingClaims, Committed, Content, ContentState, HandleMode, PassthroughAllowed,
};
pub use embedded::{EmbeddedReader, EmbeddedStore};
pub use event::{Change, Event, TREE_OPS};
pub use history::{History, HistoryCacheStats, HistoryStats};
pub use labels::{grants_in, Grant, Label, Labels, Need, R, X};
pub use log::{Durable, FORMAT};
pub use objects::{Hash, ObjectStore, Objects};
pub use postgres::{PgReader, PgStore};
pub use projection::{NewNode, Node, Tree, XattrSet, Xattrs, NAME_MAX};
pub use space::{no_space_errno, Refusal, Space, RESERVE_BYTES};

use crate::vocab::{Caller, TimeNs};

/// What the core and the views need of a store. Every method may be called from any
/// thread; none blocks on another caller's work longer than the disk (or database) takes.
pub trait Store: Send + Sync {
    // ---- the log ----

    /// The newest event's seq (0: none). Events `1..=head` are in the log, in order, and
    /// [`read`](Self::read) returns them (also those not yet durable).
    fn head(&self) -> u64;

    /// Append `change`, made at `time` by `caller` (of `agent`), as the next event; returns
    /// its seq. `base`: the last event folded into the tree the change was made on. A
    /// change to the tree is refused with [`AppendError::Moved`] when an event changing
    /// the tree was appended after `base` by another writer: the caller folds what it
    /// missed ([`read`](Self::read) after `base`) and decides again. `None` for events
    /// that change no tree (a view's), which never conflict.
    fn append(
        &self,
        base: Option<u64>,
        time: TimeNs,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, AppendError>;

    /// The events after `after` (up to `until`), in order, each given to `each`.
    fn read(
        &self,
        after: u64,
        until: Option<u64>,
        each: &mut dyn FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;

    /// Up to `limit` events after `after`: only those touching `prefix` when given, only
    /// those with one of `ops` when it is not empty.
    fn read_matching(
        &self,
        after: u64,
        limit: u32,
        prefix: Option<&str>,
        ops: &[String],
    ) -> anyhow::Result<Vec<Event>>;

    /// The newest event at or before `time` (0 when none).
    fn seq_at_time(&self, time: TimeNs) -> anyhow::Result<u64>;

    /// The time of the first event (`None`: none yet): the age of the empty root a past
    /// tree is folded onto.
    fn first_time(&self) -> anyhow::Result<Option<TimeNs>>;

    // ---- moving ----

    /// How far the store has moved: events appended plus audit records made. It grows
    /// with either, which is what a stream reader waits for.
    fn moves(&self) -> u64;

    /// Wait until [`moves`](Self::moves) passes `seen`, [`poke_waiters`](Self::poke_waiters)
    /// is called, or `timeout` passes; returns the moves.
    fn wait_moved(&self, seen: u64, timeout: Duration) -> u64;

    /// Wake the threads in [`wait_moved`](Self::wait_moved).
    fn poke_waiters(&self);

    // ---- durability ----

    /// How far the log is durable.
    fn durable(&self) -> Durable;

    /// Wait until every event up to `seq` is durable.
    fn wait_durable(&self, seq: u64) -> Result<(), Refusal>;

    // ---- objects ----

    /// File contents by hash.
    fn objects(&self) -> &dyn ObjectStore;

    /// The store as messages name it: its directory, or its URL without the password.
    fn name(&self) -> String;

    /// The local directory the store keeps objects and scratch files in (its filesystem
    /// is what `statfs` of the mount reports).
    fn dir(&self) -> &Path;

    // ---- health ----

    /// Why the store refuses changes, if it does (a failed commit).
    fn failure(&self) -> Option<String>;

    /// Why the store refuses any change now, metadata included: it failed (EIO), or the
    /// log has no room even in its reserve (ENOSPC/EDQUOT, until there is room again).
    fn refusal(&self) -> Option<Refusal>;

    /// Before a change: [`refusal`](Self::refusal), except that a log waiting for room
    /// tries again first, so room that came back is seen at once.
    fn admit(&self) -> Result<(), Refusal>;

    /// Room on the filesystem of [`dir`](Self::dir), and the reserve kept for the log.
    fn space(&self) -> &Space;

    /// Why the store refuses new file content now: [`admit`](Self::admit) refuses, or it
    /// is short of room (checked again first, so room that came back is seen at once).
    fn content_refusal(&self) -> Option<Refusal> {
        if let Err(r) = self.admit() {
            return Some(r);
        }
        if self.space().recheck() {
            return None;
        }
        self.space().shortage()
    }

    /// Why the store is degraded without having failed: short of room, or its log
    /// waiting for room (`None` when it is well, or failed: see [`failure`](Self::failure)).
    fn shortage(&self) -> Option<Refusal> {
        match self.refusal() {
            Some(Refusal::Failed(_)) => None,
            Some(stuck) => Some(stuck),
            None => self.space().shortage(),
        }
    }

    // ---- other writers ----

    /// Does the log grow from other writers too (several hosts on one database)? Then
    /// the core takes the write turn for each change of the tree and folds what the
    /// others appended (see [`begin_change`](Self::begin_change)).
    fn shared(&self) -> bool {
        false
    }

    /// Begin a change of the tree: take the log's write turn (other writers' changes
    /// wait until [`end_change`](Self::end_change)) and [`catch_up`](Self::catch_up),
    /// so that the caller can fold every event before its own into its tree
    /// ([`read`](Self::read) after the tree's `folded`) and decide on a tree no other
    /// change can overtake. A store with one writer has nothing to take.
    fn begin_change(&self) -> Result<(), Refusal> {
        Ok(())
    }

    /// Why the store is degraded though it has not failed (a database out of reach):
    /// shown in `debug/health.json` until it is well again.
    fn degraded(&self) -> Option<String> {
        None
    }

    /// End the turn [`begin_change`](Self::begin_change) took.
    fn end_change(&self) {}

    /// Learn of what other writers appended: afterwards [`head`](Self::head) covers it
    /// (and the labels, and the waiters of [`wait_moved`](Self::wait_moved) are woken).
    fn catch_up(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Wait up to `timeout` for another writer to append; `true` when one may have.
    fn wait_others(&self, timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }

    // ---- kept beside the log ----

    /// What the store keeps beside its log (see [`Beside`]).
    fn beside(&self) -> &Beside;

    /// Who may see each event.
    fn labels(&self) -> &Labels {
        &self.beside().labels
    }

    /// The policy's audit trail.
    fn audit(&self) -> &Audit {
        &self.beside().audit
    }

    /// How the past trees kept for views serve (every [`History`] of this store).
    fn history_stats(&self) -> &HistoryStats {
        &self.beside().history_stats
    }

    /// Make what was appended durable and stop writing; later appends are refused.
    fn close(&self);
}

/// What every store keeps beside its log, in memory: who may see each event (labels, as
/// the log is appended and folded), the policy's audit trail, and how the past trees
/// kept for views serve.
pub struct Beside {
    pub labels: Labels,
    pub audit: Audit,
    pub history_stats: HistoryStats,
}

impl Beside {
    pub fn new(labels: Labels) -> Beside {
        Beside {
            labels,
            audit: Audit::default(),
            history_stats: HistoryStats::default(),
        }
    }
}

/// Why [`Store::append`] did not append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// The store refuses changes (a failed commit, a closed store): the reason.
    Refused(String),
    /// Another writer changed the tree after the change's base: the newest event's seq.
    Moved { head: u64 },
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Refused(why) => f.write_str(why),
            AppendError::Moved { head } => write!(
                f,
                "another writer changed the tree (the log is at {head}); fold its events first"
            ),
        }
    }
}

/// Fold event `e` of a log into `tree` (replay); an error names the event.
fn fold_event(tree: &mut Tree, e: &Event) -> anyhow::Result<()> {
    tree.fold(e).map_err(|err| {
        anyhow::anyhow!(
            "event {} ({} {}) does not apply: {}",
            e.seq,
            e.change.op(),
            e.change.path(),
            err
        )
    })
}

/// A store opened only to read (`log`, `export`): it takes no lock, so it works while
/// the store is mounted.
pub enum StoreReader {
    Embedded(EmbeddedReader),
    Postgres(Box<PgReader>),
}

impl StoreReader {
    /// The store `spec` names: a directory, or a PostgreSQL URL.
    pub fn open(spec: &Path) -> anyhow::Result<StoreReader> {
        match spec.to_str().filter(|s| postgres::is_url(s)) {
            Some(url) => Ok(StoreReader::Postgres(Box::new(PgReader::open(url)?))),
            None => EmbeddedReader::open(spec).map(StoreReader::Embedded),
        }
    }

    /// The newest event's seq.
    pub fn head(&self) -> anyhow::Result<u64> {
        match self {
            StoreReader::Embedded(r) => r.head(),
            StoreReader::Postgres(r) => r.head(),
        }
    }

    /// The newest event at or before `time` (0 when none).
    pub fn seq_at_time(&self, time: TimeNs) -> anyhow::Result<u64> {
        match self {
            StoreReader::Embedded(r) => r.seq_at_time(time),
            StoreReader::Postgres(r) => r.seq_at_time(time),
        }
    }

    /// Events after `after` (up to `until`), in order.
    pub fn events(
        &self,
        after: u64,
        until: Option<u64>,
        each: impl FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            StoreReader::Embedded(r) => r.events(after, until, each),
            StoreReader::Postgres(r) => r.events(after, until, each),
        }
    }

    /// The tree as it was after event `seq` (all events when `None`).
    pub fn tree_at(&self, seq: Option<u64>) -> anyhow::Result<Tree> {
        match self {
            StoreReader::Embedded(r) => r.tree_at(seq),
            StoreReader::Postgres(r) => r.tree_at(seq),
        }
    }

    /// The object `hash`, open for reading.
    pub fn open_object(&self, hash: &Hash) -> std::io::Result<std::fs::File> {
        match self {
            StoreReader::Embedded(r) => r.open_object(hash),
            StoreReader::Postgres(r) => r.open_object(hash),
        }
    }
}

/// What opening a store for writing hands back: the store and the live tree folded from it.
pub struct OpenedStore {
    pub store: Arc<dyn Store>,
    pub tree: Tree,
}
