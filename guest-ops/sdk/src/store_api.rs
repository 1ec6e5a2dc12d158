//! [`Store`]: what a view may ask of the host's event store, as a trait, so a view's
//! logic can run against [`HostStore`] (the WIT import) in the component and against
//! [`crate::model::ModelStore`] in native unit tests.
//!
//! The store sees with the eyes of the caller of the call being served (contract
//! 0.4.0): a tree read of what that caller could not read answers
//! [`FsError::PermissionDenied`], and `events`/`audit` leave out what it may not see.
//! A view never checks permissions itself: it passes `PermissionDenied` on (never as
//! not-found), and pages through the log with [`Store::events_after`] /
//! [`Store::audit_after`], which follow each page's `through` past hidden events.

use std::collections::VecDeque;

use crate::{
    store, Attrs, AuditPage, AuditRecord, DirEntry, Event, EventFilter, EventsPage, FsError,
};

/// Events or audit records asked of the store per page by the iterators.
pub const PAGE: u32 = 1024;
/// How many of the newest audit records the host keeps: those before are forgotten.
pub const AUDIT_KEPT: u64 = 10_000;

/// The `store` interface of the WIT. Paths are relative to `current/`, with a leading "/".
pub trait Store {
    /// Seq of the newest event (0: empty log).
    fn head(&self) -> u64;
    /// The host's clock, ns since the Unix epoch.
    fn now_ns(&self) -> i64;
    /// Up to `limit` events after `after` that pass `filter` and the caller may see, in
    /// order; continue after the page's `through` (`through == after`: nothing more yet).
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> EventsPage;
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
    /// Up to `limit` audit records after `after` that the caller may see, in order;
    /// continue after `through`, as with [`Store::events`].
    fn audit(&self, after: u64, _limit: u32) -> AuditPage {
        AuditPage {
            records: Vec::new(),
            through: after,
        }
    }

    /// Every event after `after` that passes `filter` and the caller may see, fetched
    /// page by page from `through` to `through` until the store has nothing more (see
    /// [`EventsAfter`], which also says where to continue later).
    fn events_after(&self, after: u64, filter: &EventFilter) -> EventsAfter<'_, Self> {
        After {
            pages: Pages::new(after),
            store: self,
            filter: filter.clone(),
        }
    }

    /// Every audit record after `after` the caller may see, as [`Store::events_after`].
    fn audit_after(&self, after: u64) -> AuditAfter<'_, Self> {
        After {
            pages: Pages::new(after),
            store: self,
            filter: EventFilter {
                prefix: None,
                ops: Vec::new(),
            },
        }
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

/// The paging both iterators share: items of one page waiting to be handed out, and
/// where the log was looked at up to.
struct Pages<T> {
    pending: VecDeque<T>,
    /// The last page's `through`: every seq up to it was looked at.
    through: u64,
    /// Where to continue so that nothing handed out comes again and nothing not yet
    /// handed out is skipped.
    cursor: u64,
    page_size: u32,
    pages_left: Option<usize>,
    done: bool,
}

impl<T> Pages<T> {
    fn new(after: u64) -> Self {
        Pages {
            pending: VecDeque::new(),
            through: after,
            cursor: after,
            page_size: PAGE,
            pages_left: None,
            done: false,
        }
    }

    fn next(
        &mut self,
        seq: fn(&T) -> u64,
        mut fetch: impl FnMut(u64, u32) -> (Vec<T>, u64),
    ) -> Option<T> {
        while self.pending.is_empty() {
            if self.done || self.pages_left == Some(0) {
                return None;
            }
            if let Some(n) = self.pages_left.as_mut() {
                *n -= 1;
            }
            let after = self.through;
            let (items, through) = fetch(after, self.page_size);
            // Only what was asked for, and a `through` that neither goes back nor falls
            // short of what the page handed over (a store answering otherwise would
            // make a view loop or show an event twice).
            self.pending = items.into_iter().filter(|i| seq(i) > after).collect();
            let last = self.pending.back().map_or(after, seq);
            self.through = through.max(last);
            // `through == after`: nothing more yet.
            self.done = self.through == after;
            if self.pending.is_empty() {
                // A page of hidden events only: never look there again.
                self.cursor = self.through;
            }
        }
        let item = self.pending.pop_front()?;
        self.cursor = if self.pending.is_empty() {
            self.through
        } else {
            seq(&item)
        };
        Some(item)
    }
}

/// The iterator [`Store::events_after`] returns: every visible event after a cursor, in
/// order, asking the store again from each page's `through` (not from the last event's
/// seq: hidden events may follow it) until a page says nothing more.
///
/// [`cursor`](After::cursor) is where to continue after what was handed out, so a view
/// that stops early (a full chunk) or runs to the end (where it parks) keeps no hidden
/// events to look at again.
pub type EventsAfter<'s, S> = After<'s, S, Event>;

/// [`EventsAfter`] for the audit trail ([`Store::audit_after`]).
pub type AuditAfter<'s, S> = After<'s, S, AuditRecord>;

/// Items of the log (events, audit records) after a cursor, page by page.
pub struct After<'s, S: Store + ?Sized, T> {
    pages: Pages<T>,
    store: &'s S,
    /// Which events (unused for audit records).
    filter: EventFilter,
}

impl<S: Store + ?Sized, T> After<'_, S, T> {
    /// Items asked per page (default [`PAGE`]; the host caps it at 4096).
    pub fn page_size(mut self, items: u32) -> Self {
        self.pages.page_size = items.max(1);
        self
    }

    /// Ask the store at most `pages` times (bounding one call's work); the iterator
    /// ends there and [`cursor`](Self::cursor) says where to go on.
    pub fn max_pages(mut self, pages: usize) -> Self {
        self.pages.pages_left = Some(pages);
        self
    }

    /// Where the next look at the log continues: after the last item handed out, or
    /// past the hidden ones that followed it once its page is used up.
    pub fn cursor(&self) -> u64 {
        self.pages.cursor
    }
}

impl<S: Store + ?Sized> Iterator for After<'_, S, Event> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let (store, filter) = (self.store, &self.filter);
        self.pages.next(
            |e| e.seq,
            |after, limit| {
                let page = store.events(after, limit, filter);
                (page.events, page.through)
            },
        )
    }
}

impl<S: Store + ?Sized> Iterator for After<'_, S, AuditRecord> {
    type Item = AuditRecord;

    fn next(&mut self) -> Option<AuditRecord> {
        let store = self.store;
        self.pages.next(
            |r| r.seq,
            |after, limit| {
                let page = store.audit(after, limit);
                (page.records, page.through)
            },
        )
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
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> EventsPage {
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
    fn audit(&self, after: u64, limit: u32) -> AuditPage {
        store::audit(after, limit)
    }
}
