//! The durable embedded store: an event log (SQLite), content objects (BLAKE3-addressed
//! files) and the projection of the live tree that both fold into.
//!
//! Layout of a store directory:
//! ```text
//! STORE/events.db      the event log (SQLite, WAL); inspect with sqlite3
//! STORE/objects/ab/…   file contents by hash, immutable
//! STORE/scratch/       files being written (removed at start: uncommitted)
//! STORE/reserve        room kept for the log, given back when the disk fills (space.rs)
//! STORE/LOCK           held (flock) by the process that serves or edits the store
//! ```

mod audit;
mod content;
mod event;
mod history;
mod labels;
mod log;
mod objects;
mod projection;
mod space;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use parking_lot::Mutex;
use rusqlite::Connection;

pub use audit::{Audit, AuditRecord, AUDIT_KEPT, AUDIT_LINES_PER_SEC};
pub use content::{read_at, Committed, Content, ContentState};
pub use event::{Change, Event, TREE_OPS};
pub use history::{History, HistoryCacheStats, HistoryStats};
pub use labels::{grants_in, Grant, Label, Labels, Need, R, X};
pub use log::{Durable, FORMAT};
pub use objects::{Hash, Objects};
pub use projection::{NewNode, Node, Tree, XattrSet, Xattrs, NAME_MAX};
pub use space::{no_space_errno, Refusal, Space, RESERVE_BYTES};

use crate::vocab::{Caller, TimeNs};

const DB_FILE: &str = "events.db";
const LOCK_FILE: &str = "LOCK";

/// A store opened for writing: it holds the lock until dropped.
pub struct Store {
    dir: PathBuf,
    objects: Objects,
    /// Room on the store's filesystem, and the reserve kept for the log.
    space: Arc<Space>,
    log: log::LogWriter,
    /// A second connection for queries while the writer thread owns the first.
    reader: Mutex<Option<Connection>>,
    /// How the past trees kept by [`History`] serve (every `History` of this store).
    history_stats: HistoryStats,
    /// The policy's audit trail (empty without a policy).
    audit: Audit,
    /// Who may see each event (the mode bits of the tree at it).
    labels: Labels,
    _lock: File,
}

/// What opening a store for writing hands back: the store and the live tree folded from it.
pub struct OpenedStore {
    pub store: Store,
    pub tree: Tree,
}

impl Store {
    /// Open (or create) the store in `dir` for writing, and replay it into a tree.
    ///
    /// Refuses, touching nothing: a directory that holds other things, a store locked by
    /// another process, a log that is not ours or does not replay.
    pub fn open(dir: &Path) -> anyhow::Result<OpenedStore> {
        Self::open_reserving(dir, RESERVE_BYTES)
    }

    /// [`open`](Self::open) with a reserve of `reserve` bytes for the log.
    pub fn open_reserving(dir: &Path, reserve: u64) -> anyhow::Result<OpenedStore> {
        let dir = prepare_dir(dir)?;
        let mut lock = take_lock(&dir)?;
        let db_path = dir.join(DB_FILE);
        let conn = log::open_db(&db_path, true, false).map_err(|e| corrupt(&dir, e))?;
        let mut replayed = Vec::new();
        let (tree, head) = replay_labelled(&conn, &mut replayed).map_err(|e| corrupt(&dir, e))?;
        let labels = Labels::new(tree.detached_copy(), replayed);
        let objects = Objects::open(&dir)
            .with_context(|| format!("opening objects of store {}", dir.display()))?;
        let reader = log::open_db(&db_path, false, true).map_err(|e| corrupt(&dir, e))?;
        let objects_dir = File::open(dir.join("objects"))
            .with_context(|| format!("opening objects of store {}", dir.display()))?;
        let space = Arc::new(
            Space::open(&dir, reserve)
                .with_context(|| format!("allocating the reserve of store {}", dir.display()))?,
        );
        let log = log::LogWriter::start(conn, head, objects_dir, space.clone())?;
        match write_pid(&mut lock) {
            Ok(()) => {}
            // The pid only names us in a second process's error: a full disk must not
            // keep the store from opening.
            Err(e) if no_space_errno(&e).is_some() => {
                tracing::warn!(error = %e, "no room to write the pid in the lock file")
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("writing the lock file of {}", dir.display()))
            }
        }
        tracing::info!(store = %dir.display(), events = head, nodes = tree.len(), "store opened");
        Ok(OpenedStore {
            store: Store {
                dir,
                objects,
                space,
                log,
                reader: Mutex::new(Some(reader)),
                history_stats: HistoryStats::default(),
                audit: Audit::default(),
                labels,
                _lock: lock,
            },
            tree,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// Last sequence number handed out (events up to it are in the log, in order).
    pub fn head(&self) -> u64 {
        self.log.head()
    }

    /// How far the store has moved: events appended plus audit records made. It grows
    /// with either, which is what a stream reader waits for.
    pub fn moves(&self) -> u64 {
        self.log.head() + self.audit.head()
    }

    /// Wait until [`moves`](Self::moves) passes `seen`, [`poke_waiters`](Self::poke_waiters)
    /// is called, or `timeout` passes; returns the moves.
    pub fn wait_moved(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        self.log
            .wait_while(|head| head + self.audit.head() == seen, timeout);
        self.moves()
    }

    /// The policy's audit trail.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Wake the threads in [`wait_moved`](Self::wait_moved).
    pub fn poke_waiters(&self) {
        self.log.poke()
    }

    /// Why the store refuses changes, if it does (a failed commit).
    pub fn failure(&self) -> Option<String> {
        self.log.failure()
    }

    /// Room on the store's filesystem.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Why the store refuses any change now, metadata included: it failed (EIO), or the
    /// log has no room even in its reserve (ENOSPC/EDQUOT, until there is room again).
    pub fn refusal(&self) -> Option<Refusal> {
        self.log.refusal()
    }

    /// Before a change: [`refusal`](Self::refusal), except that a log waiting for room
    /// tries again first, so room that came back is seen at once.
    pub fn admit(&self) -> Result<(), Refusal> {
        match self.log.admit() {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }

    /// Why the store refuses new file content now: [`admit`](Self::admit) refuses, or it
    /// is short of room (checked again first, so room that came back is seen at once).
    pub fn content_refusal(&self) -> Option<Refusal> {
        if let Err(r) = self.admit() {
            return Some(r);
        }
        if self.space.recheck() {
            return None;
        }
        self.space.shortage()
    }

    /// Why the store is degraded without having failed: short of room, or its log
    /// waiting for room (`None` when it is well, or failed: see [`failure`](Self::failure)).
    pub fn shortage(&self) -> Option<Refusal> {
        match self.log.refusal() {
            Some(Refusal::Failed(_)) => None,
            Some(stuck) => Some(stuck),
            None => self.space.shortage(),
        }
    }

    /// How far the log is committed to disk.
    pub fn durable(&self) -> Durable {
        self.log.durable()
    }

    /// How the past trees kept for views serve.
    pub fn history_stats(&self) -> &HistoryStats {
        &self.history_stats
    }

    /// Record a change. Call with the tree lock held so that log order is tree order.
    pub fn append(
        &self,
        time: TimeNs,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, String> {
        self.labels.append(time, change, |change| {
            self.log.append(time, *caller, agent, change)
        })
    }

    /// Who may see each event.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Events not yet committed to SQLite, in order (see [`log::LogWriter::pending`]).
    pub fn pending_events(&self) -> Vec<Event> {
        self.log.pending()
    }

    /// Wait until every event up to `seq` is on disk.
    pub fn wait_durable(&self, seq: u64) -> Result<(), Refusal> {
        self.log.wait_durable(seq)
    }

    /// Events after `after` (up to `until`) in order.
    pub fn events(
        &self,
        after: u64,
        until: Option<u64>,
        each: impl FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self.reader.lock().as_ref() {
            Some(conn) => log::read_events(conn, after, until, each),
            None => bail!("the store is closed"),
        }
    }

    /// Run `f` with the store's read connection (queries beside the writer thread).
    fn with_reader<R>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        match self.reader.lock().as_ref() {
            Some(conn) => f(conn),
            None => bail!("the store is closed"),
        }
    }

    /// Commit what is queued and stop the log writer.
    pub fn close(&self) {
        // The writer's connection must be the last one open: SQLite then checkpoints and
        // removes the -wal and -shm files, leaving the store as one file.
        drop(self.reader.lock().take());
        self.log.close();
    }
}

/// A store opened only to read (log, export): takes no lock, so it works while the store
/// is mounted.
pub struct StoreReader {
    dir: PathBuf,
    conn: Connection,
    _shared: Option<File>,
}

impl StoreReader {
    pub fn open(dir: &Path) -> anyhow::Result<StoreReader> {
        if !dir.is_dir() {
            bail!("store {} does not exist", dir.display());
        }
        let db = dir.join(DB_FILE);
        if !db.exists() {
            bail!(
                "{} is not a lighthouse-fs store (no {DB_FILE})",
                dir.display()
            );
        }
        // With no server holding the store, a shared lock keeps one from starting while we
        // read, and the log can be opened immutable: SQLite then creates no -shm/-wal file
        // and reading leaves the store byte for byte as it was.
        let shared = File::open(dir.join(LOCK_FILE)).ok().filter(|f| {
            // SAFETY: flock on a descriptor we own.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) == 0 }
        });
        let conn = log::open_db_readonly(&db, shared.is_some()).map_err(|e| corrupt(dir, e))?;
        Ok(StoreReader {
            dir: dir.to_path_buf(),
            conn,
            _shared: shared,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> anyhow::Result<u64> {
        log::last_seq(&self.conn)
    }

    pub fn seq_at_time(&self, time: TimeNs) -> anyhow::Result<u64> {
        log::seq_at_time(&self.conn, time)
    }

    pub fn events(
        &self,
        after: u64,
        until: Option<u64>,
        each: impl FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        log::read_events(&self.conn, after, until, each)
    }

    /// The tree as it was after event `seq` (all events when `None`).
    pub fn tree_at(&self, seq: Option<u64>) -> anyhow::Result<Tree> {
        replay(&self.conn, seq)
            .map(|(t, _)| t)
            .map_err(|e| corrupt(&self.dir, e))
    }

    pub fn object_path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join("objects").join(&hex[..2]).join(&hex[2..])
    }
}

/// Fold the log (up to `until`) into a tree; returns it and the last seq applied.
fn replay(conn: &Connection, until: Option<u64>) -> anyhow::Result<(Tree, u64)> {
    let mut tree = empty_tree(conn)?;
    let head = replay_onto(conn, &mut tree, 0, until)?;
    Ok((tree, head))
}

/// [`replay`] of the whole log, with the label of each event in `labels`.
fn replay_labelled(
    conn: &Connection,
    labels: &mut Vec<(u64, Label)>,
) -> anyhow::Result<(Tree, u64)> {
    let mut tree = empty_tree(conn)?;
    let head = replay_each(conn, &mut tree, 0, None, |tree, e| {
        labels.push((e.seq, labels::label_of(tree, &e.change)));
        Ok(())
    })?;
    Ok((tree, head))
}

/// The tree before the first event: an empty root as old as the store.
fn empty_tree(conn: &Connection) -> anyhow::Result<Tree> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = (unsafe { libc::getuid() }, unsafe { libc::getgid() });
    let created = log::read_first_time(conn)?.unwrap_or_else(crate::vocab::now_ns);
    Ok(Tree::new(created, uid, gid))
}

/// Apply the events after `after` (up to `until`) to `tree`; returns the last seq applied
/// (`after` when there were none).
fn replay_onto(
    conn: &Connection,
    tree: &mut Tree,
    after: u64,
    until: Option<u64>,
) -> anyhow::Result<u64> {
    replay_each(conn, tree, after, until, |_, _| Ok(()))
}

/// [`replay_onto`], calling `each` with the tree after each event.
fn replay_each(
    conn: &Connection,
    tree: &mut Tree,
    after: u64,
    until: Option<u64>,
    mut each: impl FnMut(&Tree, &Event) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut head = after;
    log::read_events(conn, after, until, |e| {
        tree.apply(&e.change, e.time).map_err(|err| {
            anyhow::anyhow!(
                "event {} ({} {}) does not apply: {}",
                e.seq,
                e.change.op(),
                e.change.path(),
                err
            )
        })?;
        each(tree, &e)?;
        head = e.seq;
        Ok(())
    })?;
    Ok(head)
}

fn corrupt(dir: &Path, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "store {} is corrupt or unreadable: {:#} (left as is, not repaired)",
        dir.display(),
        e
    )
}

/// Create the directory if missing; refuse a non-empty directory that is not a store.
fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating store directory {}", dir.display()))?;
    } else if !dir.is_dir() {
        bail!("store {} is not a directory", dir.display());
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving store path {}", dir.display()))?;
    if !dir.join(DB_FILE).exists() {
        let mut entries = std::fs::read_dir(&dir)
            .with_context(|| format!("reading store directory {}", dir.display()))?;
        if entries.any(|e| e.map(|e| e.file_name() != LOCK_FILE).unwrap_or(true)) {
            bail!(
                "{} is not empty and not a lighthouse-fs store (no {DB_FILE}); refusing to use it",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// Take the store's exclusive lock (flock), recording our pid for the error message of
/// whoever comes second.
fn take_lock(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            bail!(
                "store {} is locked by another running process{who}",
                dir.display()
            );
        }
        return Err(err).with_context(|| format!("locking {}", path.display()));
    }
    Ok(file)
}

/// Record our pid in the lock file, for the error message of whoever comes second. Done
/// only once the store has proved valid: a refused store is left byte for byte.
fn write_pid(lock: &mut File) -> std::io::Result<()> {
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())
}
