//! The event log in SQLite (WAL). Appends are queued to one writer thread that commits
//! them in batches (group commit), so a close() never waits for the disk; fsync() waits
//! until the log is durable up to its event.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use parking_lot::{Condvar, Mutex, MutexGuard};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use super::columns::{ColumnRow, EventRow, COLUMNS};
use super::event::{Change, Event};
use super::space::{describe, Refusal, Space};
use crate::vocab::Caller;

/// Written in `meta` so that a store from another program, or a future format, is refused
/// rather than misread.
pub const FORMAT: &str = "lighthouse-fs/3";
/// The format before view events (no `view`, `body` columns); upgraded in place when a
/// store of it is opened to write.
const FORMAT_1: &str = "lighthouse-fs/1";
/// The format before extended attributes (no `value` column); upgraded in place when a
/// store of it is opened to write, and read as it is (no attribute has a value there).
const FORMAT_2: &str = "lighthouse-fs/2";

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    time_ns  INTEGER NOT NULL,
    agent    TEXT,
    uid      INTEGER NOT NULL,
    gid      INTEGER NOT NULL,
    pid      INTEGER NOT NULL,
    op       TEXT NOT NULL,
    path     TEXT NOT NULL,
    path2    TEXT,
    kind     TEXT,
    mode     INTEGER,
    owner    INTEGER,
    grp      INTEGER,
    size     INTEGER,
    hash     TEXT,
    atime_ns INTEGER,
    mtime_ns INTEGER,
    flags    INTEGER,
    rdev     INTEGER,
    view     TEXT,
    body     TEXT,
    value    BLOB
);
CREATE INDEX events_by_path ON events(path);
CREATE INDEX events_by_time ON events(time_ns);
";

/// Open the database file of a store, checking that it is one. Never writes to a file that
/// fails the check.
pub fn open_db(path: &Path, create: bool, read_only: bool) -> anyhow::Result<Connection> {
    let exists = path.exists();
    if !exists && !create {
        bail!("{} is missing", path.display());
    }
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        let mut f = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if !exists {
            f |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        f
    };
    let conn = Connection::open_with_flags(path, flags)?;
    if exists {
        if !read_only {
            upgrade_format(&conn)?;
        }
        check_format(&conn)?;
    }
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk when it returns (the writer batches, so this costs one
        // fsync per batch, not per event).
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Query-planner stability: without it SQLite re-prepares a cached statement whenever
    // a bound value could change the plan (`seq > ?`, `time_ns <= ?`), which cost a full
    // parse on every history lookup.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    if !exists {
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('format', ?1)",
            [FORMAT],
        )?;
    }
    Ok(conn)
}

/// A store of format 1 or 2 gains the columns it lacks (in one transaction; nothing else
/// changes, so a crash leaves the old format or the new, both complete).
fn upgrade_format(conn: &Connection) -> anyhow::Result<()> {
    let format: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()
        .unwrap_or(None);
    let columns = match format.as_deref() {
        Some(FORMAT_1) => {
            "ALTER TABLE events ADD COLUMN view TEXT;
             ALTER TABLE events ADD COLUMN body TEXT;
             ALTER TABLE events ADD COLUMN value BLOB;"
        }
        Some(FORMAT_2) => "ALTER TABLE events ADD COLUMN value BLOB;",
        _ => return Ok(()),
    };
    let old = format.unwrap_or_default();
    conn.execute_batch(&format!(
        "BEGIN;
         {columns}
         UPDATE meta SET value = '{FORMAT}' WHERE key = 'format';
         COMMIT;"
    ))
    .with_context(|| format!("upgrading the store from {old}"))?;
    tracing::info!("store upgraded from {old} to {FORMAT}");
    Ok(())
}

/// Is this our event log, in a format this build reads, with no gaps?
fn check_format(conn: &Connection) -> anyhow::Result<()> {
    let format: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()
        .context("not a lighthouse-fs event log")?;
    match format.as_deref() {
        Some(FORMAT) => {}
        // Read where it lies (export, log) without writing: its events read as if the
        // column were there, empty. A temporary view lives in the connection only.
        Some(FORMAT_2) => conn
            .execute_batch("CREATE TEMP VIEW events AS SELECT *, NULL AS value FROM main.events")
            .context("reading a store of format 2")?,
        Some(FORMAT_1) => bail!(
            "store format {FORMAT_1} predates view events: mount it once with this build to upgrade it"
        ),
        Some(other) => bail!("unsupported store format {other:?} (this build reads {FORMAT})"),
        None => bail!("not a lighthouse-fs event log (no format mark)"),
    }
    let seqs_ok: bool = conn
        .query_row(
            "SELECT count(*) = 0 OR max(seq) = count(*) FROM events",
            [],
            |r| r.get(0),
        )
        .context("reading the event table")?;
    if !seqs_ok {
        bail!("the event sequence has gaps");
    }
    Ok(())
}

/// Open the log only to read it. `quiescent`: no process writes the store (we hold its
/// shared lock), so SQLite may treat the file as immutable and touch nothing beside it.
pub fn open_db_readonly(path: &Path, quiescent: bool) -> anyhow::Result<Connection> {
    if !quiescent {
        return open_db(path, false, true);
    }
    let uri = format!("file:{}?immutable=1", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(&uri, flags)?;
    check_format(&conn)?;
    Ok(conn)
}

/// Every event with `seq > after`, in order (up to `limit`), optionally only those
/// touching `prefix`.
pub fn read_events(
    conn: &Connection,
    after: u64,
    until: Option<u64>,
    mut each: impl FnMut(Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let until = until.unwrap_or(i64::MAX as u64).min(i64::MAX as u64);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![after as i64, until as i64])?;
    while let Some(row) = rows.next()? {
        each(row_to_event(row)?)?;
    }
    Ok(())
}

/// Up to `limit` events after `after` in order; with `prefix`, only those whose path (or
/// rename/link destination) is `prefix` or lies below it; with `ops`, only those ops.
pub fn read_events_matching(
    conn: &Connection,
    after: u64,
    limit: u32,
    prefix: Option<&str>,
    ops: &[String],
) -> anyhow::Result<Vec<Event>> {
    // One statement for every filter (NULL = no condition), so it is prepared once.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE seq > ?1 \
         AND (?3 IS NULL OR path = ?3 OR substr(path, 1, length(?3) + 1) = ?3 || '/' \
              OR (op NOT IN ('symlink', 'setxattr', 'removexattr') \
                  AND (path2 = ?3 OR substr(path2, 1, length(?3) + 1) = ?3 || '/'))) \
         AND (?4 IS NULL OR op IN (SELECT value FROM json_each(?4))) \
         ORDER BY seq LIMIT ?2"
    ))?;
    let prefix = prefix.map(|p| p.trim_end_matches('/'));
    let ops = (!ops.is_empty()).then(|| serde_json::to_string(ops).expect("strings"));
    let mut rows = stmt.query(params![after as i64, limit as i64, prefix, ops])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(row_to_event(row)?);
    }
    Ok(out)
}

/// The last event at or before `time_ns` (0 when none). Event times never decrease
/// (`LogWriter::append`), so this is one probe of the time index from its end, whatever
/// the size of the log; ties go to the newest event.
pub fn seq_at_time(conn: &Connection, time_ns: i64) -> anyhow::Result<u64> {
    let seq: Option<i64> = conn
        .prepare_cached(
            "SELECT seq FROM events WHERE time_ns <= ?1 ORDER BY time_ns DESC, seq DESC LIMIT 1",
        )?
        .query_row([time_ns], |r| r.get(0))
        .optional()?;
    Ok(seq.unwrap_or(0) as u64)
}

pub fn last_seq(conn: &Connection) -> anyhow::Result<u64> {
    let seq: Option<i64> = conn.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
    Ok(seq.unwrap_or(0) as u64)
}

/// The event of a row of [`COLUMNS`].
fn row_to_event(row: &Row) -> anyhow::Result<Event> {
    EventRow::read(row)?.into_event()
}

impl ColumnRow for Row<'_> {
    type Error = rusqlite::Error;

    fn int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }

    fn text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }

    fn bytes(&self, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
        self.get(i)
    }
}

fn insert_event(conn: &Connection, e: &Event) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
    ))?;
    let r = EventRow::of(e);
    stmt.execute(params![
        r.seq, r.time_ns, r.agent, r.uid, r.gid, r.pid, r.op, r.path, r.path2, r.kind, r.mode,
        r.owner, r.grp, r.size, r.hash, r.atime_ns, r.mtime_ns, r.flags, r.rdev, r.view, r.body,
        r.value,
    ])?;
    Ok(())
}

/// How long the writer gathers events before it commits them as one transaction (unless
/// an fsync asks sooner): the "commit interval" of the durability contract. One fsync of
/// the log per interval instead of per event.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(5);
/// How often a batch the disk had no room for is tried again (sooner when an fsync waits).
const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// How often an idle writer looks whether room came back to a store short of it.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The append side of the log: sequence numbers, the queue, the writer thread.
///
/// Appends only push onto a queue under a mutex; the writer is woken once per batch (when
/// the queue stops being empty) and not per event, so a close() costs no thread wake-up.
pub struct LogWriter {
    shared: Arc<Shared>,
    head: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Wakes whoever waits for the log to move (parked stream readers).
    moved: HeadWatch,
}

/// "The log moved": a condition variable the appender notifies after every event, and
/// others may poke (to wake the waiter for reasons of their own).
#[derive(Default)]
pub struct HeadWatch {
    pokes: Mutex<u64>,
    cv: Condvar,
}

impl HeadWatch {
    pub fn notify(&self) {
        let mut pokes = self.pokes.lock();
        *pokes = pokes.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Wait while `unchanged()` holds, until a [`notify`](Self::notify) or `timeout`.
    pub fn wait_while(&self, unchanged: impl Fn() -> bool, timeout: Duration) {
        let mut pokes = self.pokes.lock();
        let start = *pokes;
        if unchanged() {
            let deadline = Instant::now() + timeout;
            while *pokes == start && unchanged() {
                if self.cv.wait_until(&mut pokes, deadline).timed_out() {
                    break;
                }
            }
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer: first event of a batch, a sync request, close.
    wake: Condvar,
    durable: Mutex<DurableState>,
    /// Wakes `wait_durable` callers after each commit.
    committed: Condvar,
}

#[derive(Default)]
struct Queue {
    events: Vec<Event>,
    /// The batch the writer is committing (taken from `events`, not yet in SQLite).
    inflight: Arc<Vec<Event>>,
    sync_requested: bool,
    closed: bool,
    /// Time of the newest event: event times never decrease (a clock stepping back is
    /// clamped), so "the newest event at or before T" is one index probe.
    last_time: i64,
}

struct DurableState {
    seq: u64,
    failure: Option<String>,
    /// The batch being committed did not fit on the disk, even with the reserve given
    /// back: it is kept and tried again; meanwhile changes are refused with this errno.
    stuck: Option<(i32, String)>,
    /// Commit attempts made (a waiter on a stuck log waits for the next one's outcome).
    attempts: u64,
    /// When the last batch committed (ns since the epoch), and how many have.
    last_commit_ns: Option<i64>,
    commits: u64,
}

/// How far the log is on disk (for `debug/health.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    /// Every event up to this one is committed to SQLite.
    pub seq: u64,
    /// When the last batch committed, since this process opened the store.
    pub last_commit_ns: Option<i64>,
    /// Batches committed since this process opened the store.
    pub commits: u64,
}

impl LogWriter {
    /// Take over `conn` (already replayed up to `head`) and start the writer thread.
    /// `objects` is a directory on the filesystem that holds the content objects: before a
    /// batch that refers to new content commits, that filesystem is synced, so the log
    /// never points at bytes that a power loss could take back.
    /// `space` is told when the disk has no room for a batch (it gives back its reserve),
    /// and looked at while the writer is idle, so that room coming back is noticed.
    pub fn start(
        conn: Connection,
        head: u64,
        objects: std::fs::File,
        space: Arc<Space>,
    ) -> anyhow::Result<LogWriter> {
        let last_time: Option<i64> =
            conn.query_row("SELECT max(time_ns) FROM events", [], |r| r.get(0))?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                last_time: last_time.unwrap_or(i64::MIN),
                ..Queue::default()
            }),
            wake: Condvar::new(),
            durable: Mutex::new(DurableState {
                seq: head,
                failure: None,
                stuck: None,
                attempts: 0,
                last_commit_ns: None,
                commits: 0,
            }),
            committed: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || writer_loop(conn, s, objects, space))
            .context("starting the event log writer")?;
        Ok(LogWriter {
            shared,
            head: AtomicU64::new(head),
            thread: Mutex::new(Some(thread)),
            moved: HeadWatch::default(),
        })
    }

    /// The last sequence number handed out.
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// How far the log is committed.
    pub fn durable(&self) -> Durable {
        let state = self.shared.durable.lock();
        Durable {
            seq: state.seq,
            last_commit_ns: state.last_commit_ns,
            commits: state.commits,
        }
    }

    /// Why the log can no longer be written, if it cannot.
    pub fn failure(&self) -> Option<String> {
        self.shared.durable.lock().failure.clone()
    }

    /// Why the log refuses changes now: failed for good, or waiting for room.
    pub fn refusal(&self) -> Option<Refusal> {
        let state = self.shared.durable.lock();
        if let Some(f) = &state.failure {
            return Some(Refusal::Failed(f.clone()));
        }
        state
            .stuck
            .as_ref()
            .map(|(errno, reason)| Refusal::NoSpace {
                errno: *errno,
                reason: reason.clone(),
            })
    }

    /// Why the log refuses a change now, as [`refusal`](Self::refusal), except that a log
    /// waiting for room tries again first (and this waits for that attempt): room that
    /// came back is seen by the next change, not a retry interval later.
    pub fn admit(&self) -> Option<Refusal> {
        let mut state = self.shared.durable.lock();
        if state.stuck.is_some() && state.failure.is_none() {
            let at = state.attempts;
            {
                let mut q = self.shared.queue.lock();
                q.sync_requested = true;
                self.shared.wake.notify_one();
            }
            let deadline = Instant::now() + RETRY_INTERVAL;
            while state.stuck.is_some() && state.attempts == at && state.failure.is_none() {
                if self
                    .shared
                    .committed
                    .wait_until(&mut state, deadline)
                    .timed_out()
                {
                    break;
                }
            }
        }
        drop(state);
        self.refusal()
    }

    /// Queue an event; returns its sequence number. Callers serialize appends with the
    /// mutation they record (the tree lock), so log order is tree order.
    pub fn append(
        &self,
        time: i64,
        caller: Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, String> {
        if let Some(f) = self.failure() {
            return Err(f);
        }
        let mut q = self.shared.queue.lock();
        if q.closed {
            return Err("the event log is closed".into());
        }
        let seq = self.head.load(Ordering::Relaxed) + 1;
        let time = time.max(q.last_time);
        q.last_time = time;
        q.events.push(Event {
            seq,
            time,
            caller,
            agent,
            change,
        });
        self.head.store(seq, Ordering::Release);
        if q.events.len() == 1 {
            self.shared.wake.notify_one();
        }
        drop(q);
        self.moved.notify();
        Ok(seq)
    }

    /// Wait while `unchanged(head)` holds, until a poke or `timeout`. `unchanged` is asked
    /// under the lock that appends and pokes notify under, so no wake-up is lost to a
    /// change made between asking and waiting (a poker changes its state first).
    pub fn wait_while(&self, unchanged: impl Fn(u64) -> bool, timeout: Duration) {
        self.moved.wait_while(|| unchanged(self.head()), timeout)
    }

    /// Wake [`wait_while`](Self::wait_while) waiters now.
    pub fn poke(&self) {
        self.moved.notify();
    }

    /// Events handed out but not yet in SQLite (the batch being committed and the queue),
    /// in order. Read this *before* querying SQLite: together they cover every event.
    pub fn pending(&self) -> Vec<Event> {
        let q = self.shared.queue.lock();
        q.inflight.iter().chain(q.events.iter()).cloned().collect()
    }

    /// Block until every event up to `seq` is committed to disk. While the disk has no
    /// room for the log, answers at once with the shortage (the events stay queued and
    /// commit when room comes back).
    pub fn wait_durable(&self, seq: u64) -> Result<(), Refusal> {
        let mut state = self.shared.durable.lock();
        if state.seq < seq && state.failure.is_none() {
            // Someone waits: the writer commits now instead of at the end of its interval.
            let mut q = self.shared.queue.lock();
            q.sync_requested = true;
            self.shared.wake.notify_one();
        }
        let mut tried = None;
        loop {
            if state.seq >= seq {
                return Ok(());
            }
            if let Some(f) = &state.failure {
                return Err(Refusal::Failed(f.clone()));
            }
            if let Some((errno, reason)) = &state.stuck {
                // The sync request above makes the writer try again now: answer with the
                // outcome of that attempt, not of one made before room came back.
                match tried {
                    Some(at) if state.attempts > at => {
                        return Err(Refusal::NoSpace {
                            errno: *errno,
                            reason: reason.clone(),
                        })
                    }
                    Some(_) => {}
                    None => tried = Some(state.attempts),
                }
            }
            self.shared.committed.wait(&mut state);
        }
    }

    /// Commit what is queued and stop the writer. Idempotent.
    pub fn close(&self) {
        {
            let mut q = self.shared.queue.lock();
            q.closed = true;
            self.shared.wake.notify_one();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(
    mut conn: Connection,
    shared: Arc<Shared>,
    objects: std::fs::File,
    space: Arc<Space>,
) {
    loop {
        let (batch, closing) = {
            let mut q = shared.queue.lock();
            while q.events.is_empty() && !q.closed {
                q.sync_requested = false;
                let idle = shared.wake.wait_for(&mut q, PROBE_INTERVAL).timed_out();
                if idle && space.is_short() {
                    // Nobody may write for a while: notice room coming back anyway.
                    MutexGuard::unlocked(&mut q, || space.recheck());
                }
            }
            // Gather for one interval unless someone waits for durability or we close.
            let deadline = Instant::now() + COMMIT_INTERVAL;
            while !q.sync_requested && !q.closed {
                if shared.wake.wait_until(&mut q, deadline).timed_out() {
                    break;
                }
            }
            q.sync_requested = false;
            q.inflight = Arc::new(std::mem::take(&mut q.events));
            (q.inflight.clone(), q.closed)
        };
        let committed =
            batch.is_empty() || commit_until_done(&mut conn, &shared, &objects, &space, &batch);
        shared.queue.lock().inflight = Arc::default();
        if !committed {
            break; // Nothing after a failed batch may commit, or the log would have a gap.
        }
        if closing {
            break;
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        // The events are safe in the WAL, which the next open reads: no room for the
        // checkpoint is only a shortage.
        if let Some(errno) = no_space(&conn, &e) {
            space.report(errno, &format!("checkpointing the event log: {e}"));
        }
        tracing::warn!(error = %e, "checkpoint at close failed (the log keeps its WAL file)");
    }
}

/// Commit one batch; while the disk has no room for it, keep it and try again (the
/// events after it wait: the log has no gaps). False when the log can no longer be
/// written: a fault, or no room still when the store closes.
fn commit_until_done(
    conn: &mut Connection,
    shared: &Shared,
    objects: &std::fs::File,
    space: &Space,
    batch: &[Event],
) -> bool {
    let mut outcome = commit_batch(conn, shared, objects, space, batch);
    if let Outcome::NoSpace(errno, _) = &outcome {
        // The reserve is for this: the first time the log finds no room, the reserve
        // goes back to the filesystem and the batch is tried again at once.
        let released = !space.is_short();
        space.report(*errno, "committing to the event log");
        if released {
            outcome = commit_batch(conn, shared, objects, space, batch);
        }
    }
    let mut stuck_since = None;
    loop {
        let (errno, e) = match outcome {
            Outcome::Committed => break,
            Outcome::Failed => return false,
            Outcome::NoSpace(errno, e) => (errno, e),
        };
        let closing = {
            let mut state = shared.durable.lock();
            if state.stuck.is_none() {
                tracing::warn!(
                    events = batch.len(),
                    error = %e,
                    "the event log has no room on disk: its events wait and changes answer {} \
                     until there is room again",
                    crate::vocab::errno_name(errno)
                );
                stuck_since = Some(Instant::now());
            }
            state.stuck = Some((
                errno,
                format!(
                    "{} on the store's filesystem for the event log ({e})",
                    describe(errno)
                ),
            ));
            shared.committed.notify_all();
            drop(state);
            let mut q = shared.queue.lock();
            if !q.closed && !q.sync_requested {
                shared.wake.wait_for(&mut q, RETRY_INTERVAL);
            }
            q.sync_requested = false;
            q.closed
        };
        space.recheck();
        outcome = commit_batch(conn, shared, objects, space, batch);
        if closing {
            if let Outcome::NoSpace(_, e) = &outcome {
                let reason = format!(
                    "{} events could not be committed before the store closed: {} on its \
                     filesystem ({e})",
                    batch.len(),
                    describe(errno)
                );
                tracing::error!("{reason}");
                let mut state = shared.durable.lock();
                state.stuck = None;
                state.failure = Some(reason);
                shared.committed.notify_all();
                return false;
            }
        }
    }
    if let Some(since) = stuck_since {
        tracing::info!(
            waited_s = since.elapsed().as_secs_f64(),
            "the event log commits again"
        );
    }
    true
}

enum Outcome {
    Committed,
    /// The disk had no room (errno ENOSPC or EDQUOT); the transaction was rolled back.
    NoSpace(i32, rusqlite::Error),
    /// Any other error: the log can no longer be written.
    Failed,
}

/// Commit one batch as one transaction.
fn commit_batch(
    conn: &mut Connection,
    shared: &Shared,
    objects: &std::fs::File,
    space: &Space,
    batch: &[Event],
) -> Outcome {
    let last = batch.last().map(|e| e.seq).unwrap_or(0);
    if batch
        .iter()
        .any(|e| matches!(e.change, Change::Write { hash: Some(_), .. }))
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs on a descriptor we own.
        if unsafe { libc::syncfs(objects.as_raw_fd()) } != 0 {
            let err = std::io::Error::last_os_error();
            match super::space::no_space_errno(&err) {
                Some(errno) => space.report(errno, &format!("syncing the object store: {err}")),
                None => tracing::warn!(error = %err, "syncing the object store failed"),
            }
        }
    }
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        for e in batch {
            insert_event(&tx, e)?;
        }
        tx.commit()
    })();
    let mut state = shared.durable.lock();
    state.attempts += 1;
    let outcome = match result {
        Ok(()) => {
            state.seq = last;
            state.last_commit_ns = Some(crate::vocab::now_ns());
            state.commits += 1;
            state.stuck = None;
            Outcome::Committed
        }
        Err(e) => match no_space(conn, &e) {
            Some(errno) => Outcome::NoSpace(errno, e),
            None => {
                tracing::error!(error = %e, "event log commit failed; the filesystem refuses further changes");
                state.failure = Some(format!("event log commit failed: {e}"));
                Outcome::Failed
            }
        },
    };
    shared.committed.notify_all();
    outcome
}

/// Did SQLite fail for lack of room (SQLITE_FULL, or an I/O error whose system errno is
/// ENOSPC or EDQUOT: a WAL or shm file that could not grow)? The errno to answer.
fn no_space(conn: &Connection, e: &rusqlite::Error) -> Option<i32> {
    let rusqlite::Error::SqliteFailure(f, _) = e else {
        return None;
    };
    // SAFETY: the handle belongs to `conn`, alive for the call; the function only reads
    // the errno SQLite kept of its last failed system call.
    let sys = unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) };
    match f.code {
        rusqlite::ErrorCode::DiskFull if sys == libc::EDQUOT => Some(libc::EDQUOT),
        rusqlite::ErrorCode::DiskFull => Some(libc::ENOSPC),
        rusqlite::ErrorCode::SystemIoFailure if matches!(sys, libc::ENOSPC | libc::EDQUOT) => {
            Some(sys)
        }
        _ => None,
    }
}

/// Time of the first event: the live tree's root is as old as the store.
pub fn read_first_time(conn: &Connection) -> anyhow::Result<Option<i64>> {
    Ok(conn.query_row("SELECT min(time_ns) FROM events", [], |r| r.get(0))?)
}
