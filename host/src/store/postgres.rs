//! The store on PostgreSQL (`--store postgres://…`): the event log is a table with the
//! same columns as the embedded store's (`columns.rs`), file contents are
//! content-addressed chunks in the database, and each host keeps a local cache of the
//! objects it read or wrote (`CACHE/objects`, with its scratch files in `CACHE/scratch`).
//!
//! Every append is its own committed transaction, so an event is durable in the database
//! when `append` returns (`wait_durable` has nothing left to wait for), and an object is
//! committed before any event can name it (`adopt` uploads before the close that
//! commits the file appends its event).
//!
//! Several hosts write one project: each append is one statement, its own transaction
//! (the server-side function `lighthouse_append`), under the log's advisory lock: it
//! refuses when others appended after this host's head (the host folds them and tries
//! again, so seqs stay dense and one order) or changed the tree after the change's
//! base, else inserts and notifies the others (`LISTEN lighthouse_log`). The core holds
//! the same lock, as a session lock, across a whole change of the tree
//! ([`Store::begin_change`]): it decides on a tree no other host's change can overtake.
//!
//! A change of the tree costs three round trips: the turn with what the others appended
//! before it (`lighthouse_turn`, one answer the store folds and keeps for the core's
//! [`Store::read`]), the append, the unlock. Every hot statement is prepared once per
//! session ([`Session`]).
//!
//! Connecting (`pg_connect.rs`): TLS as libpq's `sslmode` says, the password from the
//! URL, `PGPASSWORD` or `~/.pgpass`. The password never appears in a message: the store
//! is named by [`redacted`] everywhere.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use parking_lot::{Mutex, MutexGuard};
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use super::columns::{ColumnRow, EventRow, COLUMNS};
use super::labels::{self, Label, Labels};
use super::log::{Durable, HeadWatch};
use super::object_cache::ObjectCache;
use super::pg_connect::{target_of, Target};
use super::{
    AppendError, Beside, Change, Event, Hash, ObjectStore, Objects, OpenedStore, Refusal, Space,
    Store, Tree,
};
use crate::vocab::{Caller, TimeNs};

/// Written in `meta`: a database of another program, or of a future format, is refused.
const FORMAT: &str = "lighthouse-fs/pg/1";
/// Advisory lock keys (one database is one project): the schema's creation, and the
/// project's writer.
const SCHEMA_LOCK: i64 = 0x6c68_6673_0001;
const WRITER_LOCK: i64 = 0x6c68_6673_0002;
/// The channel an append notifies (its seq as the payload), which the other hosts'
/// followers listen on.
const CHANNEL: &str = "lighthouse_log";
/// Bytes per chunk of an object: large files stream through the database a chunk at a
/// time, never whole in memory.
const CHUNK: usize = 1 << 20;
/// How long a statement may take: a database that does not answer fails the change
/// instead of hanging its caller.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq      BIGINT PRIMARY KEY,
    time_ns  BIGINT NOT NULL,
    agent    TEXT,
    uid      BIGINT NOT NULL,
    gid      BIGINT NOT NULL,
    pid      BIGINT NOT NULL,
    op       TEXT NOT NULL,
    path     TEXT NOT NULL,
    path2    TEXT,
    kind     TEXT,
    mode     BIGINT,
    owner    BIGINT,
    grp      BIGINT,
    size     BIGINT,
    hash     TEXT,
    atime_ns BIGINT,
    mtime_ns BIGINT,
    flags    BIGINT,
    rdev     BIGINT,
    view     TEXT,
    body     TEXT,
    value    BYTEA,
    host     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_path ON events(path);
CREATE INDEX IF NOT EXISTS events_by_time ON events(time_ns);
-- The newest event that changed the tree (view events change none): what a
-- conditional append checks its base against.
CREATE INDEX IF NOT EXISTS tree_events ON events(seq) WHERE view IS NULL;
CREATE TABLE IF NOT EXISTS objects (
    hash   TEXT PRIMARY KEY,
    size   BIGINT NOT NULL,
    chunks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    hash TEXT NOT NULL,
    idx  INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (hash, idx)
);
";

/// What `lighthouse_append` answers instead of a seq: events after the caller's head
/// (fold them and try again), or a change of the tree after the caller's base.
const BEHIND: i64 = -1;
const MOVED: i64 = -2;
/// How often an append without the turn folds what others appended and tries again
/// before it gives up (each try loses only to an append that came in between).
const APPEND_TRIES: usize = 100;
/// How many of the newest events the store keeps for the core to fold from memory.
const RECENT: usize = 1024;
/// How long an append whose connection went tries to read back whether it landed (a
/// database restarting), and how often; past it, the store refuses changes until the
/// mount restarts.
const MEND_WITHIN: Duration = Duration::from_secs(15);
const MEND_PAUSE: Duration = Duration::from_millis(250);

/// The server-side functions, made with the schema (each replaced only when its body
/// differs: a function belongs to the role that made it). `(signature, body,
/// definition)`; the definition holds the body verbatim, so `prosrc` compares.
static FUNCTIONS: LazyLock<Vec<(&'static str, String, String)>> = LazyLock::new(|| {
    // One statement, one transaction, one round trip: the log's lock (other hosts'
    // appends wait), the caller's head and base checked, the row inserted, the others
    // notified.
    let append_body = format!(
        "
BEGIN
    PERFORM pg_advisory_xact_lock({WRITER_LOCK});
    IF EXISTS (SELECT 1 FROM events WHERE seq > known) THEN
        RETURN {BEHIND};
    END IF;
    IF base IS NOT NULL AND EXISTS (SELECT 1 FROM events WHERE view IS NULL AND seq > base) THEN
        RETURN {MOVED};
    END IF;
    INSERT INTO events ({COLUMNS}, host) VALUES (known + 1, p_time_ns, p_agent, p_uid,
        p_gid, p_pid, p_op, p_path, p_path2, p_kind, p_mode, p_owner, p_grp, p_size, p_hash,
        p_atime_ns, p_mtime_ns, p_flags, p_rdev, p_view, p_body, p_value, p_host);
    PERFORM pg_notify('{CHANNEL}', (known + 1)::text);
    RETURN known + 1;
END
"
    );
    let append = format!(
        "CREATE OR REPLACE FUNCTION lighthouse_append(known BIGINT, base BIGINT, \
         p_time_ns BIGINT, p_agent TEXT, p_uid BIGINT, p_gid BIGINT, p_pid BIGINT, p_op TEXT, \
         p_path TEXT, p_path2 TEXT, p_kind TEXT, p_mode BIGINT, p_owner BIGINT, p_grp BIGINT, \
         p_size BIGINT, p_hash TEXT, p_atime_ns BIGINT, p_mtime_ns BIGINT, p_flags BIGINT, \
         p_rdev BIGINT, p_view TEXT, p_body TEXT, p_value BYTEA, p_host TEXT) \
         RETURNS BIGINT LANGUAGE plpgsql AS $lighthouse${append_body}$lighthouse$"
    );
    // The write turn (a session lock, held until `end_change`) and what the others
    // appended since `after`, in one answer. The query after the lock sees every append
    // committed before the turn was had (a new snapshot per statement).
    let turn_body = format!(
        "
BEGIN
    PERFORM pg_advisory_lock({WRITER_LOCK});
    RETURN QUERY SELECT * FROM events WHERE seq > after ORDER BY seq;
END
"
    );
    let turn = format!(
        "CREATE OR REPLACE FUNCTION lighthouse_turn(after BIGINT) RETURNS SETOF events \
         LANGUAGE plpgsql AS $lighthouse${turn_body}$lighthouse$"
    );
    vec![
        (
            "lighthouse_append(bigint, bigint, bigint, text, bigint, bigint, bigint, text, \
             text, text, text, bigint, bigint, bigint, bigint, text, bigint, bigint, bigint, \
             bigint, text, text, bytea, text)",
            append_body,
            append,
        ),
        ("lighthouse_turn(bigint)", turn_body, turn),
    ]
});

/// The hot statements, each prepared once per session ([`Session`]).
static APPEND_SQL: LazyLock<String> = LazyLock::new(|| {
    let params: Vec<String> = (1..=24).map(|i| format!("${i}")).collect();
    format!("SELECT lighthouse_append({})", params.join(", "))
});
static TURN_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM lighthouse_turn($1)"));
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock($1)";
static AFTER_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM events WHERE seq > $1 ORDER BY seq"));
static RANGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {COLUMNS} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3")
});
static MATCHING_SQL: LazyLock<String> = LazyLock::new(|| {
    // The same conditions as the embedded log's (log.rs `read_events_matching`).
    format!(
        "SELECT {COLUMNS} FROM events WHERE seq > $1 \
         AND ($3::text IS NULL OR path = $3 OR left(path, length($3) + 1) = $3 || '/' \
              OR (op NOT IN ('symlink', 'setxattr', 'removexattr') \
                  AND (path2 = $3 OR left(path2, length($3) + 1) = $3 || '/'))) \
         AND ($4::text[] IS NULL OR op = ANY($4)) AND seq <= $5 \
         ORDER BY seq LIMIT $2"
    )
});

/// Is `spec` (a `--store` value) a PostgreSQL URL?
pub fn is_url(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

/// `url` without its password: how the store is named in every message, log line and
/// mount source.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _password)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    // A password given as a query parameter goes too.
    let tail = tail
        .split('&')
        .map(|part| match part.split_once("password=") {
            Some((before, _)) => format!("{before}password=***"),
            None => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// The local cache directory for the project at `url` when none is given: one per
/// database, under the user's cache directory.
pub fn default_cache_dir(url: &str) -> PathBuf {
    let id = blake3::hash(redacted(url).as_bytes()).to_hex();
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lighthouse-fs")
        .join(&id[..16])
}

/// A store on PostgreSQL opened only to read (`log`, `export`): no lock, no schema made.
pub struct PgReader {
    name: String,
    conn: Mutex<Conn>,
}

impl PgReader {
    pub fn open(url: &str) -> anyhow::Result<PgReader> {
        let name = redacted(url);
        let mut conn = Conn::open(&target_of(url, &name)?, &name)?;
        let tables: bool = conn
            .run(|c| c.query_one("SELECT to_regclass('meta') IS NOT NULL", &[]))?
            .get(0);
        if !tables {
            bail!("{name} is not a lighthouse-fs store (no tables)");
        }
        check_format(&mut conn, &name)?;
        Ok(PgReader {
            name,
            conn: Mutex::new(conn),
        })
    }

    pub fn head(&self) -> anyhow::Result<u64> {
        let row = self
            .conn
            .lock()
            .run(|c| c.query_one("SELECT coalesce(max(seq), 0) FROM events", &[]))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    pub fn seq_at_time(&self, time: TimeNs) -> anyhow::Result<u64> {
        seq_at_time(&self.conn, time)
    }

    pub fn events(
        &self,
        after: u64,
        until: Option<u64>,
        mut each: impl FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        read_events(&self.conn, after, until, &mut each)
    }

    /// The tree as it was after event `seq` (all events when `None`).
    pub fn tree_at(&self, seq: Option<u64>) -> anyhow::Result<Tree> {
        let mut tree = Tree::empty(first_time(&self.conn)?.unwrap_or_else(crate::vocab::now_ns));
        read_events(&self.conn, 0, seq, &mut |e| {
            super::fold_event(&mut tree, &e)
        })
        .with_context(|| format!("store {} does not replay", self.name))?;
        Ok(tree)
    }

    /// The object `hash`, open for reading: fetched into an unlinked temporary file.
    pub fn open_object(&self, hash: &Hash) -> io::Result<File> {
        let path = std::env::temp_dir().join(format!(
            "lighthouse-fs-object-{}-{}",
            std::process::id(),
            hash.to_hex()
        ));
        // Private while it has a name: the object may be a file only some may read.
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        fs::remove_file(&path)?;
        match download_into(&self.conn, hash, &mut file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("object {hash} is not in the database"),
                ))
            }
            Err(e) => return Err(io::Error::other(format!("{e:#}"))),
        }
        file.seek(io::SeekFrom::Start(0))?;
        Ok(file)
    }
}

/// A connection, made again when it broke (a database restart, a cut network).
struct Conn {
    config: Target,
    name: String,
    client: Option<Session>,
    /// The follower's session listens for other writers' appends: a new session must
    /// listen again.
    listens: bool,
}

/// A live session, and the statements prepared on it (they go with it): a statement
/// run again costs one round trip, not two (parse, then execute).
struct Session {
    client: Client,
    prepared: HashMap<String, Statement>,
}

impl Session {
    /// `sql`, prepared on this session (the first time only).
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

impl Conn {
    fn open(config: &Target, name: &str) -> anyhow::Result<Conn> {
        let mut conn = Conn {
            config: config.clone(),
            name: name.to_owned(),
            client: None,
            listens: false,
        };
        off_runtime(|| conn.client().map(drop))?;
        Ok(conn)
    }

    /// The live session, connecting first when there is none or it broke.
    fn client(&mut self) -> anyhow::Result<&mut Session> {
        if self.client.as_ref().is_none_or(Session::is_closed) {
            self.client = None;
            let mut client = self
                .config
                .connect()
                .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", self.name))?;
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {STATEMENT_TIMEOUT_MS}; SET client_min_messages = warning"
                ))
                .map_err(|e| anyhow::anyhow!("{}: {}", self.name, clean(&e)))?;
            if self.listens {
                client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .map_err(|e| anyhow::anyhow!("{}: {}", self.name, clean(&e)))?;
            }
            self.client = Some(Session {
                client,
                prepared: HashMap::new(),
            });
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// The session if it is live: none is made (for what a broken session has nothing
    /// left to do).
    fn live(&mut self) -> Option<&mut Session> {
        self.client.as_mut().filter(|s| !s.is_closed())
    }

    /// Run `f` on the session; a broken connection is made again once (the failure then
    /// is the new connection's). Only for what may run twice: a read, or a write whose
    /// first attempt cannot have reached the database.
    fn run<R: Send>(
        &mut self,
        mut f: impl FnMut(&mut Session) -> Result<R, postgres::Error> + Send,
    ) -> anyhow::Result<R> {
        off_runtime(|| self.run_here(&mut f))
    }

    fn run_here<R>(
        &mut self,
        f: &mut impl FnMut(&mut Session) -> Result<R, postgres::Error>,
    ) -> anyhow::Result<R> {
        for attempt in 0..2 {
            let client = self.client()?;
            match f(client) {
                Ok(r) => return Ok(r),
                Err(e) if attempt == 0 && (session_lost(&e) || client.is_closed()) => {
                    self.client = None;
                }
                Err(e) => bail!("{}: {}", self.name, clean(&e)),
            }
        }
        unreachable!("the second attempt returns")
    }
}

/// Runs `f` outside any tokio runtime: the synchronous client blocks on a runtime of its
/// own, which tokio refuses on a thread of another (fuse3's workers and blocking pool).
/// There, `f` runs on a thread of its own for the call.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Did `e` end the session? A closed connection, or the server's last word before it
/// closes one: SQLSTATE class 57 (operator intervention: terminated, shutting down,
/// starting up) or 08 (connection exception), which may come before the client has
/// seen the socket close.
fn session_lost(e: &postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|c| {
            let code = c.code();
            code.starts_with("57P") || code.starts_with("08")
        })
}

/// A database error as one line, without the client's internals.
fn clean(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            if let Some(source) = std::error::Error::source(e) {
                s = format!("{s}: {source}");
            }
            s
        }
    }
}

/// The store on PostgreSQL, opened for writing: it holds the project's writer lock
/// until dropped.
pub struct PgStore {
    name: String,
    host: String,
    cache: PathBuf,
    objects: PgObjects,
    space: Space,
    /// Appends and the writer lock's session.
    writer: Mutex<Conn>,
    /// Reads of the log beside the writer.
    reader: Mutex<Conn>,
    /// Listens for the other hosts' appends.
    listener: Mutex<Conn>,
    head: AtomicU64,
    /// The newest events this host appended or folded (at most [`RECENT`], seqs with no
    /// gap): what the core folds after a turn comes from here, not from the database.
    recent: Mutex<VecDeque<Event>>,
    /// The newest event's time: event times never decrease (`seq_at_time` relies on it).
    last_time: Mutex<TimeNs>,
    failure: Mutex<Option<String>>,
    /// Why the last attempt to reach the database failed, until one succeeds.
    out_of_reach: Mutex<Option<String>>,
    closed: AtomicBool,
    moved: HeadWatch,
    commits: AtomicU64,
    last_commit_ns: Mutex<Option<i64>>,
    /// Who may see each event, the audit trail, past trees' figures.
    beside: Beside,
}

impl PgStore {
    /// Open the project at `url` for writing (creating its tables in an empty database),
    /// with its local object cache in `cache` (at most `cache_bytes`, but for an object
    /// being read that is larger), and fold its log into a tree.
    pub fn open(url: &str, cache: &Path, cache_bytes: u64) -> anyhow::Result<OpenedStore> {
        let name = redacted(url);
        let config = target_of(url, &name)?;
        let mut writer =
            Conn::open(&config, &name).with_context(|| format!("opening store {name}"))?;
        let host = host_name();
        writer
            .run(|c| create_schema(&mut c.client).map(drop))
            .and_then(|()| check_format(&mut writer, &name))
            .with_context(|| format!("opening store {name}"))?;
        let reader = Mutex::new(Conn::open(&config, &name)?);
        let objects_conn = Conn::open(&config, &name)?;
        let mut listener = Conn::open(&config, &name)?;
        listener.listens = true;
        listener.client = None;

        let (tree, replayed, head, last_time) =
            fold_log(&reader).with_context(|| format!("store {name} does not replay"))?;
        let labels = Labels::new(tree.detached_copy(), replayed);
        fs::create_dir_all(cache)
            .with_context(|| format!("creating the cache directory {}", cache.display()))?;
        let cache = cache
            .canonicalize()
            .with_context(|| format!("resolving {}", cache.display()))?;
        let local = Objects::open(&cache)
            .with_context(|| format!("opening the object cache {}", cache.display()))?;
        let space = Space::open(&cache, 0)
            .with_context(|| format!("watching the room of {}", cache.display()))?;
        tracing::info!(store = %name, host, events = head, nodes = tree.len(), cache = %cache.display(), "store opened");
        let store = PgStore {
            objects: PgObjects {
                cached: ObjectCache::scan(&cache.join("objects"), cache_bytes),
                local,
                conn: Mutex::new(objects_conn),
            },
            name,
            host,
            cache,
            space,
            writer: Mutex::new(writer),
            reader,
            listener: Mutex::new(listener),
            head: AtomicU64::new(head),
            recent: Mutex::new(VecDeque::new()),
            last_time: Mutex::new(last_time),
            failure: Mutex::new(None),
            out_of_reach: Mutex::new(None),
            closed: AtomicBool::new(false),
            moved: HeadWatch::default(),
            commits: AtomicU64::new(0),
            last_commit_ns: Mutex::new(None),
            beside: Beside::new(labels),
        };
        Ok(OpenedStore {
            store: Arc::new(store),
            tree,
        })
    }

    /// Notes whether the database answered: a failure makes the store degraded (with
    /// the reason) until an answer comes again.
    fn reached<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        let mut out = self.out_of_reach.lock();
        match &r {
            Ok(_) => *out = None,
            Err(e) => *out = Some(format!("the database does not answer: {e:#}")),
        }
        r
    }

    /// The writer's session, to take the turn or append. While the database is out of
    /// reach and another caller has it (perhaps waiting out the connect and TCP
    /// timeouts), none waits behind it: the same reason, at once.
    fn writer(&self) -> Result<MutexGuard<'_, Conn>, String> {
        match self.degraded() {
            Some(why) => self.writer.try_lock().ok_or(why),
            None => Ok(self.writer.lock()),
        }
    }

    /// Append one event (see [`Store::append`]), folding what other writers appended
    /// first when there is any: one statement under the log's lock (`lighthouse_append`)
    /// that refuses when this host is behind or the tree moved after `base`.
    fn append_locked(
        &self,
        writer: &mut Conn,
        base: Option<u64>,
        time: TimeNs,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, AppendError> {
        let mut lost = false;
        for _ in 0..APPEND_TRIES {
            let tried = self.beside.labels.append(time, change.clone(), |change| {
                self.append_once(writer, base, time, caller, agent.clone(), change)
            });
            match tried {
                Ok(seq) => return Ok(seq),
                // Another writer appended (an event without the turn): fold, try again.
                Err(Attempt::Behind) => self
                    .fold_others(writer)
                    .map_err(|e| AppendError::Refused(format!("{e:#}")))?,
                Err(Attempt::Moved) => return Err(AppendError::Moved { head: self.head() }),
                // The connection went, the event is not in the log: once more, on a new one.
                Err(Attempt::Lost(_)) if !lost => lost = true,
                Err(Attempt::Lost(why) | Attempt::Failed(why)) => {
                    return Err(AppendError::Refused(why))
                }
            }
        }
        Err(AppendError::Refused(format!(
            "{}: other writers appended before each of {APPEND_TRIES} tries",
            self.name
        )))
    }

    /// One try of [`append_locked`](Self::append_locked), under the labels' lock: the
    /// event's seq (it is in the log, folded into the head, the time and `recent`).
    fn append_once(
        &self,
        writer: &mut Conn,
        base: Option<u64>,
        time: TimeNs,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, Attempt> {
        // Under the time's lock: seqs and times are handed out in one order.
        let mut last = self.last_time.lock();
        let e = Event {
            seq: self.head() + 1,
            time: time.max(*last),
            caller: *caller,
            agent,
            change,
        };
        let r = EventRow::of(&e);
        let known = r.seq - 1;
        let base = base.map(|b| b as i64);
        let session = writer
            .client()
            .map_err(|e| Attempt::Failed(format!("{e:#}")))?;
        let params: [&(dyn ToSql + Sync); 24] = [
            &known,
            &base,
            &r.time_ns,
            &r.agent,
            &r.uid,
            &r.gid,
            &r.pid,
            &r.op,
            &r.path,
            &r.path2,
            &r.kind,
            &r.mode,
            &r.owner,
            &r.grp,
            &r.size,
            &r.hash,
            &r.atime_ns,
            &r.mtime_ns,
            &r.flags,
            &r.rdev,
            &r.view,
            &r.body,
            &r.value,
            &self.host,
        ];
        let answer = match session.query_one(&APPEND_SQL, &params) {
            Ok(row) => row.get::<_, i64>(0),
            Err(err) if session_lost(&err) || session.is_closed() => {
                // Whether the database committed the event before the connection went
                // is read back on a new one: never appended twice, never lost.
                writer.client = None;
                let why = format!("{}: {}", self.name, clean(&err));
                // A database restarting answers again within seconds: the change waits
                // for it (bounded) rather than leave the tree ahead of the log.
                let deadline = Instant::now() + MEND_WITHIN;
                let landed = loop {
                    match self.landed(writer, &r) {
                        Err(e) if Instant::now() < deadline => {
                            tracing::debug!(store = %self.name, error = %format!("{e:#}"), "reading back an append whose connection went");
                            std::thread::sleep(MEND_PAUSE);
                        }
                        other => break other,
                    }
                };
                match landed {
                    Ok(Some(true)) => r.seq,
                    Ok(Some(false)) => return Err(Attempt::Behind),
                    Ok(None) => return Err(Attempt::Lost(why)),
                    Err(e) => return Err(Attempt::Failed(format!("{why}; then {e:#}"))),
                }
            }
            Err(err) => return Err(Attempt::Failed(format!("{}: {}", self.name, clean(&err)))),
        };
        match answer {
            BEHIND => return Err(Attempt::Behind),
            MOVED => return Err(Attempt::Moved),
            seq if seq == r.seq => {}
            other => {
                return Err(Attempt::Failed(format!(
                    "{}: the database appended {other}, not {}",
                    self.name, r.seq
                )))
            }
        }
        *last = e.time;
        drop(last);
        let seq = e.seq;
        self.learned(e);
        Ok(seq)
    }

    /// After a connection went during an append: is the event `r` (this host's) in the
    /// log? `None`: nothing has its seq; `Some(false)`: another writer's event has it.
    /// Read under the log's lock, after any append still running on the old session.
    fn landed(&self, writer: &mut Conn, r: &EventRow) -> anyhow::Result<Option<bool>> {
        let sql = format!("SELECT {COLUMNS}, host FROM events WHERE seq = $1");
        let row = writer.run(|s| {
            let mut tx = s.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITER_LOCK])?;
            let row = tx.query_opt(&sql, &[&r.seq])?;
            tx.commit()?;
            Ok(row)
        })?;
        let Some(row) = row else { return Ok(None) };
        let host: String = row.try_get(22)?;
        Ok(Some(event_of(&row)? == *r && host == self.host))
    }

    /// Fold the events other writers appended after this host's head (in order) into
    /// the labels, the head and the time; the live tree folds them from the log itself.
    fn fold_others(&self, conn: &mut Conn) -> anyhow::Result<()> {
        let rows = conn.run(|s| s.query(&AFTER_SQL, &[&(self.head() as i64)]))?;
        self.fold_rows(&rows)
    }

    /// Fold `rows` (events of a `SELECT {COLUMNS}`, in order): see
    /// [`fold_others`](Self::fold_others). Those folded already are passed over.
    fn fold_rows(&self, rows: &[Row]) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // The labels' lock is taken before the time's (as `append` does): never inside it.
        let mut newest = TimeNs::MIN;
        for row in rows {
            let e = event_of(row)?.into_event()?;
            self.beside.labels.fold(&e);
            newest = newest.max(e.time);
            self.learned(e);
        }
        let mut last = self.last_time.lock();
        *last = (*last).max(newest);
        drop(last);
        self.moved.notify();
        Ok(())
    }

    /// Event `e` is in the log and labelled: it joins `recent` (before the head passes
    /// it, so a reader that sees the head finds it there), then the head.
    fn learned(&self, e: Event) {
        let seq = e.seq;
        let mut recent = self.recent.lock();
        match recent.back().map(|b| b.seq) {
            Some(newest) if seq <= newest => {}
            Some(newest) if seq == newest + 1 => recent.push_back(e),
            // A gap (none before, or folded past): `recent` starts again here.
            _ => {
                recent.clear();
                recent.push_back(e);
            }
        }
        if recent.len() > RECENT {
            recent.pop_front();
        }
        drop(recent);
        self.head.fetch_max(seq, Ordering::AcqRel);
    }

    /// The events after `after` up to `until` and at most the head, from `recent`, if it
    /// holds them all (`None`: ask the database).
    fn recent_after(&self, after: u64, until: Option<u64>) -> Option<Vec<Event>> {
        let upto = until.unwrap_or(u64::MAX).min(self.head());
        if after >= upto {
            return Some(Vec::new());
        }
        let recent = self.recent.lock();
        let (first, newest) = (recent.front()?.seq, recent.back()?.seq);
        if first > after + 1 || newest < upto {
            return None;
        }
        let skip = (after + 1 - first) as usize;
        let take = (upto - after) as usize;
        Some(recent.iter().skip(skip).take(take).cloned().collect())
    }
}

/// Why one try of an append did not append.
enum Attempt {
    /// Another writer appended after this host's head.
    Behind,
    /// Another writer changed the tree after the change's base.
    Moved,
    /// The connection went before the event was in the log: the reason.
    Lost(String),
    /// Refused, or not known to be in the log or not: the reason.
    Failed(String),
}

impl Store for PgStore {
    fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn append(
        &self,
        base: Option<u64>,
        time: TimeNs,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> Result<u64, AppendError> {
        if let Some(f) = self.failure() {
            return Err(AppendError::Refused(f));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Refused(format!(
                "store {} is closed",
                self.name
            )));
        }
        let base = base.filter(|_| change.view().is_none());
        let appended = match self.writer() {
            Ok(mut guard) => {
                let writer: &mut Conn = &mut guard;
                off_runtime(|| self.append_locked(writer, base, time, caller, agent, change))
            }
            Err(why) => Err(AppendError::Refused(why)),
        };
        let _ = self.reached(match &appended {
            Err(AppendError::Refused(why)) => Err(anyhow::anyhow!("{why}")),
            _ => Ok(()),
        });
        let seq = match appended {
            Ok(seq) => seq,
            Err(AppendError::Refused(why)) => {
                // The caller changed its tree before appending: a tree the log now lacks
                // a change of. Every later change is refused (the log must replay), until
                // a restart folds the tree from the log again.
                let failure = format!(
                    "the database did not take an event ({why}); changes are refused until \
                     this mount restarts"
                );
                tracing::error!(store = %self.name, "{failure}");
                self.failure.lock().get_or_insert(failure.clone());
                return Err(AppendError::Refused(failure));
            }
            Err(moved) => return Err(moved),
        };
        self.commits.fetch_add(1, Ordering::Relaxed);
        *self.last_commit_ns.lock() = Some(crate::vocab::now_ns());
        self.moved.notify();
        Ok(seq)
    }

    fn read(
        &self,
        after: u64,
        until: Option<u64>,
        each: &mut dyn FnMut(Event) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // What a turn just folded (the core reads it next) is in memory.
        if let Some(events) = self.recent_after(after, until) {
            return events.into_iter().try_for_each(each);
        }
        // Up to the head: events other hosts appended beyond it are not labelled here
        // yet, and a view that read them now would show them later with other labels
        // (a stream rendered twice must render the same).
        let until = Some(until.unwrap_or(u64::MAX).min(self.head()));
        read_events(&self.reader, after, until, each)
    }

    fn read_matching(
        &self,
        after: u64,
        limit: u32,
        prefix: Option<&str>,
        ops: &[String],
    ) -> anyhow::Result<Vec<Event>> {
        let prefix = prefix.map(|p| p.trim_end_matches('/').to_owned());
        let ops: Option<Vec<String>> = (!ops.is_empty()).then(|| ops.to_vec());
        query_events(
            &self.reader,
            &MATCHING_SQL,
            // Up to the head, for the same reason as `read`.
            &[
                &(after as i64),
                &i64::from(limit),
                &prefix,
                &ops,
                &(self.head() as i64),
            ],
        )
    }

    fn seq_at_time(&self, time: TimeNs) -> anyhow::Result<u64> {
        seq_at_time(&self.reader, time)
    }

    fn first_time(&self) -> anyhow::Result<Option<TimeNs>> {
        first_time(&self.reader)
    }

    fn moves(&self) -> u64 {
        self.head() + self.beside.audit.head()
    }

    fn wait_moved(&self, seen: u64, timeout: Duration) -> u64 {
        self.moved.wait_while(|| self.moves() == seen, timeout);
        self.moves()
    }

    fn poke_waiters(&self) {
        self.moved.notify();
    }

    fn durable(&self) -> Durable {
        // Each append commits before it returns.
        Durable {
            seq: self.head(),
            last_commit_ns: *self.last_commit_ns.lock(),
            commits: self.commits.load(Ordering::Relaxed),
        }
    }

    fn wait_durable(&self, _seq: u64) -> Result<(), Refusal> {
        match self.failure() {
            Some(f) => Err(Refusal::Failed(f)),
            None => Ok(()),
        }
    }

    fn objects(&self) -> &dyn ObjectStore {
        &self.objects
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn dir(&self) -> &Path {
        &self.cache
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    fn refusal(&self) -> Option<Refusal> {
        self.failure().map(Refusal::Failed)
    }

    fn admit(&self) -> Result<(), Refusal> {
        match self.refusal() {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    fn space(&self) -> &Space {
        &self.space
    }

    fn shared(&self) -> bool {
        true
    }

    fn degraded(&self) -> Option<String> {
        self.out_of_reach.lock().clone()
    }

    fn begin_change(&self) -> Result<(), Refusal> {
        // Nothing was sent: nothing to undo.
        let mut guard = self.writer().map_err(Refusal::Failed)?;
        // One round trip: the turn, and what the others appended before it.
        let after = self.head() as i64;
        let folded = guard
            .run(|s| s.query(&TURN_SQL, &[&after]))
            .and_then(|rows| self.fold_rows(&rows));
        if folded.is_err() {
            // Whether the turn was had or not, it goes with the session.
            guard.client = None;
        }
        drop(guard);
        // Refused before anything changed: the change fails alone, and the next one
        // tries again.
        self.reached(folded)
            .map_err(|e| Refusal::Failed(format!("{e:#}")))
    }

    fn end_change(&self) {
        let mut writer = self.writer.lock();
        // A session that broke has lost the lock with it: nothing to undo, and no
        // connection to make for it.
        let Some(session) = writer.live() else { return };
        let unlocked = off_runtime(|| session.execute(UNLOCK_SQL, &[&WRITER_LOCK]));
        if let Err(e) = unlocked {
            tracing::debug!(store = %self.name, error = %clean(&e), "ending the write turn");
            // The turn goes with the session.
            writer.client = None;
        }
    }

    fn catch_up(&self) -> anyhow::Result<()> {
        let caught = self.fold_others(&mut self.reader.lock());
        self.reached(caught)
    }

    fn wait_others(&self, timeout: Duration) -> bool {
        use postgres::fallible_iterator::FallibleIterator;
        if self.closed.load(Ordering::Acquire) {
            std::thread::sleep(timeout);
            return false;
        }
        let mut guard = self.listener.lock();
        let listener: &mut Conn = &mut guard;
        // A notification of an event this host has (its own append) is no news: the
        // wait goes on, and the caller's catch-up costs no query for it.
        let news = |note: &postgres::Notification| {
            note.payload()
                .parse::<u64>()
                .map_or(true, |seq| seq > self.head())
        };
        let deadline = Instant::now() + timeout;
        let heard = off_runtime(|| -> anyhow::Result<bool> {
            let client = &mut listener.client()?.client;
            let mut notes = client.notifications();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some(note) = notes.timeout_iter(left).next()? else {
                    return Ok(false);
                };
                let mut heard = news(&note);
                // The rest queued: one catch-up covers them all.
                while let Some(note) = notes.iter().next()? {
                    heard |= news(&note);
                }
                if heard {
                    return Ok(true);
                }
            }
        });
        match heard {
            Ok(heard) => heard,
            Err(e) => {
                tracing::debug!(store = %self.name, error = %e, "listening for other hosts");
                guard.client = None;
                std::thread::sleep(timeout);
                false
            }
        }
    }

    fn beside(&self) -> &Beside {
        &self.beside
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // The writer lock goes with its session.
        self.writer.lock().client = None;
        self.reader.lock().client = None;
        self.listener.lock().client = None;
        self.objects.conn.lock().client = None;
        self.moved.notify();
    }
}

/// File contents in the database (chunks of [`CHUNK`] bytes, by BLAKE3 hash), with a
/// local cache of the objects this host read or wrote.
struct PgObjects {
    local: Objects,
    /// What the local copy holds, within its budget.
    cached: ObjectCache,
    conn: Mutex<Conn>,
}

impl PgObjects {
    /// Upload the object `hash` from `file` unless the database has it; committed when
    /// this returns.
    fn upload(&self, file: &File, hash: &Hash) -> anyhow::Result<()> {
        off_runtime(|| self.upload_here(file, hash))
    }

    fn upload_here(&self, file: &File, hash: &Hash) -> anyhow::Result<()> {
        let hex = hash.to_hex();
        let mut conn = self.conn.lock();
        let there: bool = conn
            .run(|c| c.query_one("SELECT count(*) > 0 FROM objects WHERE hash = $1", &[&hex]))?
            .get(0);
        if there {
            return Ok(());
        }
        // Not through `run`: reading the file goes between the statements. A broken
        // connection fails this upload; the next call connects again.
        let c = conn.client()?;
        let pg = |e: postgres::Error| anyhow::anyhow!("storing object {hex}: {}", clean(&e));
        let insert_chunk = c
            .statement(
                "INSERT INTO chunks (hash, idx, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .map_err(pg)?;
        let insert_object = c
            .statement(
                "INSERT INTO objects (hash, size, chunks) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .map_err(pg)?;
        let mut reader = file;
        reader.seek(io::SeekFrom::Start(0))?;
        let mut tx = c.client.transaction().map_err(pg)?;
        let mut buf = Vec::with_capacity(CHUNK);
        let (mut idx, mut size) = (0i32, 0i64);
        loop {
            buf.clear();
            (&mut reader).take(CHUNK as u64).read_to_end(&mut buf)?;
            if buf.is_empty() {
                break;
            }
            tx.execute(&insert_chunk, &[&hex, &idx, &buf.as_slice()])
                .map_err(pg)?;
            idx += 1;
            size += buf.len() as i64;
        }
        tx.execute(&insert_object, &[&hex, &size, &idx])
            .map_err(pg)?;
        tx.commit().map_err(pg)
    }

    /// Fetch the object `hash` from the database into the local cache.
    fn download(&self, hash: &Hash) -> io::Result<()> {
        let hex = hash.to_hex();
        let (mut file, scratch) = self.local.new_scratch()?;
        let fetched = download_into(&self.conn, hash, &mut file);
        let fail = |e: io::Error| {
            let _ = fs::remove_file(&scratch);
            e
        };
        match fetched {
            Ok(true) => {}
            Ok(false) => {
                return Err(fail(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("object {hex} is not in the database"),
                )))
            }
            Err(e) => return Err(fail(io::Error::other(format!("{e:#}")))),
        }
        let got = Objects::hash_file(&file).map_err(fail)?;
        if got != *hash {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("object {hex} from the database hashes to {got}"),
            )));
        }
        self.local.adopt(&scratch, &file, hash, false)
    }
}

impl PgObjects {
    /// `file` (the object `hash`) was read or added: evict what the budget says to.
    fn used(&self, hash: &Hash, file: &File) {
        let size = file.metadata().map_or(0, |m| m.len());
        for old in self.cached.used(*hash, size) {
            // An evicted object open elsewhere stays readable there (unlinked).
            if let Err(e) = fs::remove_file(self.local.path(&old)) {
                tracing::debug!(object = %old, error = %e, "evicting a cached object");
            }
        }
    }
}

impl ObjectStore for PgObjects {
    fn open_object(&self, hash: &Hash) -> io::Result<File> {
        let file = match self.local.open_object(hash) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.cached.forget(hash);
                self.download(hash)?;
                self.local.open_object(hash)?
            }
            other => other?,
        };
        self.used(hash, &file);
        Ok(file)
    }

    fn new_scratch(&self) -> io::Result<(File, PathBuf)> {
        self.local.new_scratch()
    }

    fn adopt(&self, scratch: &Path, file: &File, hash: &Hash, durable: bool) -> io::Result<()> {
        // In the database first: an event may name it as soon as this returns.
        self.upload(file, hash)
            .map_err(|e| io::Error::other(format!("storing object {hash}: {e:#}")))?;
        // The local copy is a cache: the database has the durable one.
        let _ = durable;
        self.local.adopt(scratch, file, hash, false)?;
        self.used(hash, file);
        Ok(())
    }
}

fn create_schema(c: &mut Client) -> Result<(), postgres::Error> {
    // One creator at a time: two hosts opening an empty database at once.
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    tx.batch_execute(SCHEMA)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('format', $1) ON CONFLICT DO NOTHING",
        &[&FORMAT],
    )?;
    for (signature, body, definition) in FUNCTIONS.iter() {
        let made: Option<String> = tx
            .query_opt(
                "SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)",
                &[signature],
            )?
            .map(|row| row.get(0));
        if made.as_deref() != Some(body.as_str()) {
            tx.batch_execute(definition)?;
        }
    }
    tx.commit()
}

fn check_format(writer: &mut Conn, name: &str) -> anyhow::Result<()> {
    let format: String = writer
        .run(|c| c.query_one("SELECT value FROM meta WHERE key = 'format'", &[]))?
        .get(0);
    if format != FORMAT {
        bail!("store {name} is a database of format {format:?}, not {FORMAT:?}; left as is");
    }
    Ok(())
}

/// The whole log folded into a tree, each event labelled: (tree, labels, head, the last
/// event's time).
#[allow(clippy::type_complexity)]
fn fold_log(conn: &Mutex<Conn>) -> anyhow::Result<(Tree, Vec<(u64, Label)>, u64, TimeNs)> {
    let mut tree = Tree::empty(first_time(conn)?.unwrap_or_else(crate::vocab::now_ns));
    let mut replayed = Vec::new();
    let (mut head, mut last_time) = (0u64, 0i64);
    read_events(conn, 0, None, &mut |e| {
        super::fold_event(&mut tree, &e)?;
        replayed.push((e.seq, labels::label_of(&tree, &e.change)));
        (head, last_time) = (e.seq, e.time);
        Ok(())
    })?;
    Ok((tree, replayed, head, last_time))
}

/// The events of `sql` (a `SELECT {COLUMNS} …`).
fn query_events(
    conn: &Mutex<Conn>,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> anyhow::Result<Vec<Event>> {
    let rows = conn.lock().run(|c| c.query(sql, params))?;
    rows.iter().map(|row| event_of(row)?.into_event()).collect()
}

/// The events after `after` (up to `until`), in order, a page at a time: a long log is
/// never whole in memory.
fn read_events(
    conn: &Mutex<Conn>,
    after: u64,
    until: Option<u64>,
    each: &mut dyn FnMut(Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const PAGE: i64 = 2048;
    let until = until.unwrap_or(i64::MAX as u64).min(i64::MAX as u64) as i64;
    let mut from = after as i64;
    loop {
        let events = query_events(conn, &RANGE_SQL, &[&from, &until, &PAGE])?;
        let full = events.len() as i64 == PAGE;
        for e in events {
            from = e.seq as i64;
            each(e)?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// The newest event at or before `time` (0 when none).
fn seq_at_time(conn: &Mutex<Conn>, time: TimeNs) -> anyhow::Result<u64> {
    let rows = conn.lock().run(|c| {
        c.query(
            "SELECT seq FROM events WHERE time_ns <= $1 ORDER BY time_ns DESC, seq DESC LIMIT 1",
            &[&time],
        )
    })?;
    Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0) as u64))
}

/// The first event's time.
fn first_time(conn: &Mutex<Conn>) -> anyhow::Result<Option<TimeNs>> {
    let row = conn
        .lock()
        .run(|c| c.query_one("SELECT min(time_ns) FROM events", &[]))?;
    Ok(row.get(0))
}

/// Write the object `hash` from the database into `file`, a chunk at a time (a large
/// file is never whole in memory); `false` when the database has no such object.
fn download_into(conn: &Mutex<Conn>, hash: &Hash, file: &mut File) -> anyhow::Result<bool> {
    let hex = hash.to_hex();
    let mut conn = conn.lock();
    let chunks: Option<i32> = conn
        .run(|c| c.query_opt("SELECT chunks FROM objects WHERE hash = $1", &[&hex]))?
        .map(|r| r.get(0));
    let Some(chunks) = chunks else {
        return Ok(false);
    };
    for idx in 0..chunks {
        let row = conn.run(|c| {
            c.query_one(
                "SELECT data FROM chunks WHERE hash = $1 AND idx = $2",
                &[&hex, &idx],
            )
        })?;
        file.write_all(row.get::<_, &[u8]>(0))?;
    }
    Ok(true)
}

/// The columns of a row of `SELECT {COLUMNS}`.
fn event_of(row: &postgres::Row) -> anyhow::Result<EventRow> {
    EventRow::read(row)
}

impl ColumnRow for postgres::Row {
    type Error = postgres::Error;

    fn int(&self, i: usize) -> Result<Option<i64>, postgres::Error> {
        self.try_get(i)
    }

    fn text(&self, i: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(i)
    }

    fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, postgres::Error> {
        self.try_get(i)
    }
}

/// This host's name, as events carry it.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("postgres://bridge:s3cret@db:5432/project"),
            "postgres://bridge:***@db:5432/project"
        );
        assert_eq!(
            redacted("postgresql://bridge@db/project?sslmode=require&password=s3cret"),
            "postgresql://bridge@db/project?sslmode=require&password=***"
        );
        assert_eq!(redacted("postgres://db/project"), "postgres://db/project");
        assert!(is_url("postgres://x") && is_url("postgresql://x") && !is_url("/srv/store"));
    }
}
