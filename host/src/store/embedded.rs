//! The embedded store: the event log in SQLite and the objects as files, in one
//! directory this process holds alone (an exclusive `flock` on `LOCK`). Layout in
//! [`super`]'s docs.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use parking_lot::Mutex;
use rusqlite::Connection;

use super::labels::{self, Label, Labels};
use super::log::{self, Durable};
use super::{
    AppendError, Beside, Change, Event, Hash, ObjectStore, Objects, OpenedStore, Refusal, Space,
    Store, Tree, RESERVE_BYTES,
};
use crate::store::no_space_errno;
use crate::vocab::{Caller, TimeNs};

const DB_FILE: &str = "events.db";
const LOCK_FILE: &str = "LOCK";

/// The embedded store, opened for writing: it holds the lock until dropped.
pub struct EmbeddedStore {
    dir: PathBuf,
    objects: Objects,
    /// Room on the store's filesystem, and the reserve kept for the log.
    space: Arc<Space>,
    log: log::LogWriter,
    /// A second connection for queries while the writer thread owns the first.
    reader: Mutex<Option<Connection>>,
    /// The seq of the newest event that changed the tree: a change based on an older
    /// tree is refused ([`Store::append`]). Only this process writes, so that is a bug.
    last_tree_change: AtomicU64,
    /// Who may see each event, the audit trail, past trees' figures.
    beside: Beside,
    _lock: File,
}

impl EmbeddedStore {
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
        let store = EmbeddedStore {
            dir,
            objects,
            space,
            log,
            reader: Mutex::new(Some(reader)),
            last_tree_change: AtomicU64::new(tree.folded()),
            beside: Beside::new(labels),
            _lock: lock,
        };
        Ok(OpenedStore {
            store: Arc::new(store),
            tree,
        })
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
}

impl Store for EmbeddedStore {
    fn head(&self) -> u64 {
        self.log.head()
    }

    fn append(
        &self,
        base: Option<u64>,
        time: TimeNs,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, AppendError> {
        let changes_tree = change.view().is_none();
        if let Some(base) = base.filter(|_| changes_tree) {
            let last = self.last_tree_change.load(Ordering::Acquire);
            if last > base {
                return Err(AppendError::Moved { head: self.head() });
            }
        }
        let seq = self
            .beside
            .labels
            .append(time, change, |change| {
                self.log.append(time, *caller, agent, change)
            })
            .map_err(AppendError::Refused)?;
        if changes_tree {
            self.last_tree_change.fetch_max(seq, Ordering::AcqRel);
        }
        Ok(seq)
    }

    fn read(
        &self,
        after: u64,
        until: Option<u64>,
        each: &mut dyn FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // SQLite lags the head by up to one commit interval: what it does not have yet
        // comes from the writer's queue (taken first, so no event falls between).
        let pending = self.log.pending();
        let mut last = after;
        self.with_reader(|conn| {
            log::read_events(conn, after, until, |e| {
                last = e.seq;
                each(e)
            })
        })?;
        for e in pending {
            if e.seq > last && until.is_none_or(|u| e.seq <= u) {
                last = e.seq;
                each(e)?;
            }
        }
        Ok(())
    }

    fn read_matching(
        &self,
        after: u64,
        limit: u32,
        prefix: Option<&str>,
        ops: &[String],
    ) -> anyhow::Result<Vec<Event>> {
        let pending = self.log.pending();
        let mut events =
            self.with_reader(|conn| log::read_events_matching(conn, after, limit, prefix, ops))?;
        // Queued events SQLite returned too (committed meanwhile) are at or before the
        // last match.
        let last = events.last().map_or(after, |e| e.seq);
        let prefix = prefix.map(|p| match p.trim_end_matches('/') {
            "" => "/",
            p => p,
        });
        events.extend(
            pending
                .into_iter()
                .filter(|e| e.seq > last && prefix.is_none_or(|p| e.touches(p)))
                .filter(|e| ops.is_empty() || ops.iter().any(|op| op == e.change.op())),
        );
        events.truncate(limit as usize);
        Ok(events)
    }

    fn seq_at_time(&self, time: TimeNs) -> anyhow::Result<u64> {
        let pending = self.log.pending();
        let committed = self.with_reader(|conn| log::seq_at_time(conn, time))?;
        let queued = pending
            .iter()
            .filter(|e| e.time <= time)
            .map(|e| e.seq)
            .max();
        Ok(committed.max(queued.unwrap_or(0)))
    }

    fn first_time(&self) -> anyhow::Result<Option<TimeNs>> {
        if let Some(t) = self.with_reader(log::read_first_time)? {
            return Ok(Some(t));
        }
        Ok(self.log.pending().first().map(|e| e.time))
    }

    fn moves(&self) -> u64 {
        self.log.head() + self.beside.audit.head()
    }

    fn wait_moved(&self, seen: u64, timeout: Duration) -> u64 {
        self.log
            .wait_while(|head| head + self.beside.audit.head() == seen, timeout);
        self.moves()
    }

    fn poke_waiters(&self) {
        self.log.poke()
    }

    fn durable(&self) -> Durable {
        self.log.durable()
    }

    fn wait_durable(&self, seq: u64) -> Result<(), Refusal> {
        self.log.wait_durable(seq)
    }

    fn objects(&self) -> &dyn ObjectStore {
        &self.objects
    }

    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn failure(&self) -> Option<String> {
        self.log.failure()
    }

    fn refusal(&self) -> Option<Refusal> {
        self.log.refusal()
    }

    fn admit(&self) -> Result<(), Refusal> {
        match self.log.admit() {
            None => Ok(()),
            Some(r) => Err(r),
        }
    }

    fn space(&self) -> &Space {
        &self.space
    }

    fn beside(&self) -> &Beside {
        &self.beside
    }

    fn close(&self) {
        // The writer's connection must be the last one open: SQLite then checkpoints and
        // removes the -wal and -shm files, leaving the store as one file.
        drop(self.reader.lock().take());
        self.log.close();
    }
}

/// A store opened only to read (log, export): takes no lock, so it works while the store
/// is mounted.
pub struct EmbeddedReader {
    dir: PathBuf,
    conn: Connection,
    _shared: Option<File>,
}

impl EmbeddedReader {
    pub fn open(dir: &Path) -> anyhow::Result<EmbeddedReader> {
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
        Ok(EmbeddedReader {
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

    /// The object `hash`, open for reading.
    pub fn open_object(&self, hash: &Hash) -> std::io::Result<File> {
        let hex = hash.to_hex();
        File::open(self.dir.join("objects").join(&hex[..2]).join(&hex[2..]))
    }
}

/// Fold the log (up to `until`) into a tree; returns it and the last seq applied.
fn replay(conn: &Connection, until: Option<u64>) -> anyhow::Result<(Tree, u64)> {
    let mut tree = empty_tree(conn)?;
    let head = replay_each(conn, &mut tree, 0, until, |_, _| Ok(()))?;
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
    let created = log::read_first_time(conn)?.unwrap_or_else(crate::vocab::now_ns);
    Ok(Tree::empty(created))
}

/// Fold the events after `after` (up to `until`) into `tree`, calling `each` with the
/// tree after each; returns the last seq applied (`after` when there were none).
fn replay_each(
    conn: &Connection,
    tree: &mut Tree,
    after: u64,
    until: Option<u64>,
    mut each: impl FnMut(&Tree, &Event) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut head = after;
    log::read_events(conn, after, until, |e| {
        super::fold_event(tree, &e)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::FileKind;

    fn mkdir(path: &str) -> Change {
        Change::Create {
            path: path.into(),
            kind: FileKind::Dir,
            perm: 0o755,
            uid: 0,
            gid: 0,
            rdev: 0,
        }
    }

    fn note(path: &str) -> Change {
        Change::View {
            view: "test".into(),
            op: "note".into(),
            path: path.into(),
            body: "{}".into(),
        }
    }

    #[test]
    fn a_change_on_a_tree_that_missed_a_tree_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let OpenedStore { store, mut tree } = EmbeddedStore::open(dir.path()).unwrap();
        let host = &Caller::HOST;
        assert_eq!(tree.folded(), 0);
        let a = store.append(Some(0), 1, host, None, mkdir("/a")).unwrap();
        tree.set_folded(a);
        // A view's event changes no tree: neither refused nor making others stale.
        let n = store.append(None, 2, host, None, note("/a")).unwrap();
        let b = store.append(Some(a), 3, host, None, mkdir("/b")).unwrap();
        assert_eq!((a, n, b), (1, 2, 3));
        // Made on the tree as it was after event 1: event 3 changed it since.
        assert_eq!(
            store.append(Some(a), 4, host, None, mkdir("/c")),
            Err(AppendError::Moved { head: 3 })
        );
        assert_eq!(store.head(), 3, "nothing appended");
        // Folding what it missed brings the tree level again.
        let mut missed = Vec::new();
        store
            .read(a, None, &mut |e| {
                missed.push(e.seq);
                Ok(())
            })
            .unwrap();
        assert_eq!(missed, [2, 3], "the queued events are read too");
        assert_eq!(store.append(Some(3), 4, host, None, mkdir("/c")), Ok(4));
        let mut upto = Vec::new();
        store
            .read(1, Some(3), &mut |e| {
                upto.push(e.seq);
                Ok(())
            })
            .unwrap();
        assert_eq!(upto, [2, 3]);
        store.close();
        drop(store);

        // Reopened: the tree is folded up to the last event.
        let opened = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(opened.tree.folded(), 4);
        assert_eq!(
            opened.store.append(Some(3), 5, host, None, mkdir("/d")),
            Err(AppendError::Moved { head: 4 })
        );
    }
}
