//! The history view's answers, over any [`Store`] (the host import in the component, a
//! model in the tests).
//!
//! ```text
//! history/                 @SEQ and RFC 3339 names of the last RECENT events, and .log
//! history/<when>/...       the live tree as it was at <when>, any depth, read-only
//! history/.log/<dir>/      the current tree's directories and files
//! history/.log/<file>      that path's events, one JSON line each
//! ```

use lighthouse_view_sdk::time::rfc3339_nanos;
use lighthouse_view_sdk::{attrs, error, path, slice_read};
use lighthouse_view_sdk::{Attrs, Caching, DirEntry, EventFilter, FsError, NodeKind, Owner, Store};

use crate::log;
use crate::when::When;

/// How many of the newest events the root lists (each under both names).
pub const RECENT: u64 = 20;
/// The directory of per-path logs.
pub const LOG_DIR: &str = ".log";
/// Events asked of the store per call while collecting a `.log` file.
const EVENTS_PAGE: u32 = 1024;

/// A resolved point: the tree after event `seq`, and how long answers about it hold.
struct Point {
    seq: u64,
    caching: Caching,
}

/// What a view path names.
enum Target {
    Root,
    /// `.log` or below it; the path of current/ it stands for.
    Log(String),
    /// `<when>` or below it; `rest` is the path of the tree at that point.
    At(Point, String),
}

pub struct History<S> {
    pub store: S,
}

impl<S: Store> History<S> {
    fn target(&self, view_path: &str) -> Result<Target, FsError> {
        let parts = path::split(view_path)?;
        let Some((first, rest)) = parts.split_first() else {
            return Ok(Target::Root);
        };
        let rest = path::join(rest);
        if *first == LOG_DIR {
            return Ok(Target::Log(rest));
        }
        let point = When::parse(first)
            .and_then(|when| self.resolve(when))
            .ok_or(FsError::NotFound)?;
        Ok(Target::At(point, rest))
    }

    /// The sequence number a name stands for, with the caching its answers get:
    /// `@SEQ` never changes; an RFC 3339 time is fixed once a later event exists
    /// (events are appended in time order, so none can land before it any more); a
    /// relative time moves with the clock.
    fn resolve(&self, when: When) -> Option<Point> {
        let head = self.store.head();
        match when {
            When::Seq(seq) => (seq <= head).then_some(Point {
                seq,
                caching: Caching::Immutable,
            }),
            When::Time(ns) => {
                let seq = self.store.seq_at_time(ns);
                let caching = if seq < head {
                    Caching::Immutable
                } else {
                    Caching::Volatile
                };
                Some(Point { seq, caching })
            }
            When::Ago(span) => Some(Point {
                seq: self
                    .store
                    .seq_at_time(self.store.now_ns().saturating_sub(span)),
                caching: Caching::Volatile,
            }),
        }
    }

    /// The time of event `seq` (0 for seq 0, the empty tree before the log).
    fn event_time(&self, seq: u64) -> i64 {
        if seq == 0 {
            return 0;
        }
        // 0 too when the caller may not see that event (the store leaves it out).
        match self
            .store
            .events(seq - 1, 1, &EventFilter::all())
            .events
            .first()
        {
            Some(event) if event.seq == seq => event.time_ns,
            _ => 0,
        }
    }

    pub fn getattr(&self, view_path: &str) -> Result<Attrs, FsError> {
        match self.target(view_path)? {
            Target::Root => Ok(attrs::dir(self.head_time(), Caching::Volatile)),
            Target::Log(path) => self.log_attrs(&path),
            Target::At(point, path) if path == "/" => Ok(attrs::with_owner(
                attrs::dir(self.event_time(point.seq), point.caching),
                self.owner_at("/", point.seq)?,
            )),
            // The node as it was, with the owner it had (the kernel checks `perm`
            // against it); errors pass on as they are, `permission-denied` included.
            Target::At(point, path) => Ok(Attrs {
                caching: point.caching,
                ..attrs::read_only(self.store.stat_at(&path, point.seq)?)
            }),
        }
    }

    pub fn readdir(&self, view_path: &str) -> Result<Vec<DirEntry>, FsError> {
        match self.target(view_path)? {
            Target::Root => Ok(self.recent_points()),
            Target::Log(path) => Ok(self
                .store
                .list_at(&path, self.store.head())?
                .into_iter()
                .map(|entry| match entry.kind {
                    NodeKind::Directory => entry,
                    // Every other node's `.log` entry is its log file.
                    _ => attrs::entry(entry.name, NodeKind::File),
                })
                .collect()),
            Target::At(point, path) => self.store.list_at(&path, point.seq),
        }
    }

    pub fn read(&self, view_path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.target(view_path)? {
            Target::Root => Err(FsError::IsADirectory),
            Target::Log(path) => {
                let (content, _) = self.log_file(&path)?;
                Ok(slice_read(&content, offset, len))
            }
            Target::At(_, path) if path == "/" => Err(FsError::IsADirectory),
            Target::At(point, path) => self.store.read_at(&path, point.seq, offset, len),
        }
    }

    pub fn readlink(&self, view_path: &str) -> Result<String, FsError> {
        match self.target(view_path)? {
            Target::At(point, path) if path != "/" => self.store.readlink_at(&path, point.seq),
            _ => {
                self.getattr(view_path)?;
                Err(error::not_a_symlink(view_path))
            }
        }
    }

    /// The owner of `path` after `seq`, as the store says; `None` (the mount's owner)
    /// when it cannot say, unless the caller may not see it.
    fn owner_at(&self, path: &str, seq: u64) -> Result<Option<Owner>, FsError> {
        match self.store.stat_at(path, seq) {
            Ok(node) => Ok(node.owner),
            Err(FsError::PermissionDenied) => Err(FsError::PermissionDenied),
            Err(_) => Ok(None),
        }
    }

    fn head_time(&self) -> i64 {
        self.event_time(self.store.head())
    }

    /// The root's listing: `.log`, then for each of the last RECENT events `@SEQ` and its
    /// time, the latter only when it resolves back to that very event (a later event with
    /// the same timestamp would take the name).
    fn recent_points(&self) -> Vec<DirEntry> {
        let head = self.store.head();
        // Of the last RECENT events, those the caller may see.
        let events = self
            .store
            .events(
                head.saturating_sub(RECENT),
                RECENT as u32,
                &EventFilter::all(),
            )
            .events;
        let mut entries = Vec::with_capacity(1 + 2 * events.len());
        entries.push(attrs::entry(LOG_DIR, NodeKind::Directory));
        for event in events {
            entries.push(attrs::entry(format!("@{}", event.seq), NodeKind::Directory));
            if self.store.seq_at_time(event.time_ns) == event.seq {
                entries.push(attrs::entry(
                    rfc3339_nanos(event.time_ns),
                    NodeKind::Directory,
                ));
            }
        }
        entries
    }

    /// `.log/<path>`: a directory where current/ has one, otherwise that path's log file
    /// (also for paths that no longer exist, as long as the log knows them).
    fn log_attrs(&self, path: &str) -> Result<Attrs, FsError> {
        if path == "/" {
            return Ok(attrs::dir(self.head_time(), Caching::Volatile));
        }
        match self.store.stat_at(path, self.store.head()) {
            Ok(node) if node.kind == NodeKind::Directory => Ok(attrs::with_owner(
                attrs::dir(node.mtime_ns, Caching::Volatile),
                node.owner,
            )),
            _ => {
                let (content, mtime_ns) = self.log_file(path)?;
                Ok(attrs::file(
                    content.len() as u64,
                    mtime_ns,
                    Caching::Volatile,
                ))
            }
        }
    }

    /// The JSON lines of every event touching `path`, and the time of the newest one.
    fn log_file(&self, path: &str) -> Result<(Vec<u8>, i64), FsError> {
        let head = self.store.head();
        let exists = match self.store.stat_at(path, head) {
            Ok(node) if node.kind == NodeKind::Directory => return Err(FsError::IsADirectory),
            Ok(_) => true,
            Err(FsError::NotFound | FsError::NotADirectory) => false,
            Err(other) => return Err(other),
        };
        let mut content = String::new();
        let mut mtime_ns = 0;
        // Up to the head as it was asked first: the file is what the log held then.
        let events = self
            .store
            .events_after(0, &EventFilter::under(path))
            .page_size(EVENTS_PAGE)
            .take_while(|e| e.seq <= head);
        for event in events.filter(|e| log::touches(e, path)) {
            content.push_str(&log::line(&event)?);
            mtime_ns = event.time_ns;
        }
        if content.is_empty() && !exists {
            return Err(FsError::NotFound);
        }
        Ok((content.into_bytes(), mtime_ns))
    }
}
