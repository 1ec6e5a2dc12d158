//! The streams view's answers, over any [`Store`] (the host import in the component, a
//! model in the tests).
//!
//! ```text
//! streams/                   README and the five streams (volatile)
//! streams/README             what this file says (immutable)
//! streams/NAME               a stream: the whole log, one JSON line per event (from seq 1)
//! streams/NAME@SEQ           a stream: the same log from event SEQ on (resolves, never listed)
//! streams/NAME@now           a symlink to NAME@SEQ, SEQ the next event (also @-10m, @RFC 3339)
//! ```
//!
//! A stream is an append-only log the host serves as a file (contract 0.4): `getattr`
//! says kind `stream`, `open` the cursor where it starts, and `next` renders the events
//! after a cursor. The host renders parts again from cursors it kept, so `next` from the
//! same cursor renders the same lines again: the log never changes below its head, and
//! a chunk's length depends only on the cursor, the head and `max` (which the host keeps
//! fixed). The view keeps nothing.

use lighthouse_view_sdk::store_api::AUDIT_KEPT;
use lighthouse_view_sdk::{attrs, error, path, slice_read};
use lighthouse_view_sdk::{
    Attrs, Caching, Chunk, DirEntry, EventFilter, FsError, NodeKind, OpenMode, Store,
};

use crate::catalog::Stream;
use crate::render;
use crate::start::Start;

/// The name of the file that explains the streams.
pub const README: &str = "README";
/// Events asked of the store per `next` at most (the host caps a call at 4096); fewer
/// for a smaller chunk (about one per 256 bytes wanted, a full line's length), so that
/// a call does not take much more than it renders.
pub const EVENTS_PER_CALL: u32 = 1024;
/// A chunk stops growing once it holds this much, whatever the host asked for...
pub const MAX_CHUNK: usize = 256 * 1024;
/// ... and grows to at least this much (always by one whole line) when events wait.
pub const MIN_CHUNK: usize = 4 * 1024;
/// Pages of events one `next` looks through at most (more than one when the store
/// hands over events the filter refuses, or pages hold few events the caller may see).
const MAX_PAGES: usize = 16;

/// What a view path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Root,
    Readme,
    /// The log of a stream from event `from` (≥ 1) on.
    Log(Stream, u64),
    /// A name resolved when read: a symlink to `NAME@SEQ`.
    Link(Stream, Start),
}

pub struct Streams<S> {
    pub store: S,
}

impl<S: Store> Streams<S> {
    fn target(&self, view_path: &str) -> Result<Target, FsError> {
        match path::split(view_path)?.as_slice() {
            [] => Ok(Target::Root),
            [name] if *name == README => Ok(Target::Readme),
            [name] => {
                let (stream, start) = match name.split_once('@') {
                    None => (*name, Some(Start::Seq(1))),
                    Some((stream, from)) => (stream, Start::parse(from)),
                };
                match (Stream::by_name(stream), start) {
                    (Some(stream), Some(Start::Seq(seq))) => Ok(Target::Log(stream, seq)),
                    (Some(stream), Some(start)) => Ok(Target::Link(stream, start)),
                    _ => Err(FsError::NotFound),
                }
            }
            _ => Err(FsError::NotFound),
        }
    }

    /// Where a link points now: `NAME@SEQ`, SEQ the first event (or audit record) it
    /// names.
    fn link_target(&self, stream: Stream, start: Start) -> String {
        let cursor = match stream {
            Stream::Audit => start.audit_cursor(&self.store),
            _ => start.cursor(&self.store),
        };
        format!("{}@{}", stream.name(), cursor + 1)
    }

    pub fn getattr(&self, view_path: &str) -> Result<Attrs, FsError> {
        Ok(match self.target(view_path)? {
            Target::Root => attrs::dir(self.head_time(), Caching::Volatile),
            Target::Readme => attrs::file(readme().len() as u64, 0, Caching::Immutable),
            // The host owns the size (what `next` renders up to the head) and shows the
            // newest line's time once there is one.
            Target::Log(..) => attrs::stream(self.head_time()),
            Target::Link(stream, start) => attrs::symlink(
                self.link_target(stream, start).len() as u64,
                self.head_time(),
                Caching::Volatile,
            ),
        })
    }

    pub fn readdir(&self, view_path: &str) -> Result<Vec<DirEntry>, FsError> {
        match self.target(view_path)? {
            Target::Root => Ok(std::iter::once(attrs::entry(README, NodeKind::File))
                .chain(
                    Stream::ALL
                        .iter()
                        .map(|s| attrs::entry(s.name(), NodeKind::Stream)),
                )
                .collect()),
            _ => Err(FsError::NotADirectory),
        }
    }

    pub fn read(&self, view_path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.target(view_path)? {
            Target::Root => Err(FsError::IsADirectory),
            Target::Readme => Ok(slice_read(readme().as_bytes(), offset, len)),
            Target::Log(stream, _) => Err(FsError::Invalid(format!(
                "{} is a stream: the host reads it through open/next, never by offset",
                stream.name()
            ))),
            Target::Link(..) => Err(error::invalid(format!("{view_path} is a symlink"))),
        }
    }

    pub fn readlink(&self, view_path: &str) -> Result<String, FsError> {
        match self.target(view_path)? {
            Target::Link(stream, start) => Ok(self.link_target(stream, start)),
            _ => Err(error::not_a_symlink(view_path)),
        }
    }

    pub fn open(&self, view_path: &str, write: bool) -> Result<OpenMode, FsError> {
        match self.target(view_path)? {
            Target::Root => Err(FsError::IsADirectory),
            _ if write => Err(FsError::ReadOnly),
            Target::Readme => Ok(OpenMode::Plain),
            Target::Log(_, from) => Ok(OpenMode::Stream(from - 1)),
            Target::Link(..) => Err(error::invalid(format!(
                "{view_path} is a symlink: the kernel opens its target"
            ))),
        }
    }

    /// The events after `cursor` that the stream shows, as whole JSON lines.
    ///
    /// The store shows the caller only the events it may see (contract 0.4.0) and says
    /// in each page how far it looked (`through`); the cursor returned follows it: with
    /// data, the last event rendered (or, when its page was used up, that page's
    /// `through`, past the hidden events after it); without, how far the store looked,
    /// so hidden or filtered events are never asked for again and a reader parked at
    /// the end does not make the host ask about them over and over. Every event is
    /// thus rendered once, in order; from the same cursor the same lines come again
    /// (the log's past never changes), which is what lets the host serve the stream as
    /// a file with offsets.
    pub fn next(&self, view_path: &str, cursor: u64, max: u32) -> Result<Chunk, FsError> {
        let stream = match self.target(view_path)? {
            Target::Root => return Err(FsError::IsADirectory),
            Target::Readme => {
                return Err(FsError::Invalid(format!(
                    "{README} is not a stream: read it by offset"
                )))
            }
            Target::Log(stream, _) => stream,
            Target::Link(..) => {
                return Err(error::invalid(format!(
                    "{view_path} is a symlink, not a stream"
                )))
            }
        };
        if stream == Stream::Audit {
            return self.next_audit(cursor, max);
        }
        let (filter, style) = (stream.filter(), stream.style());
        let budget = (max as usize).clamp(MIN_CHUNK, MAX_CHUNK);
        let page_size = (budget / 256).clamp(64, EVENTS_PER_CALL as usize) as u32;
        let mut events = self
            .store
            .events_after(cursor, &filter)
            .page_size(page_size)
            .max_pages(MAX_PAGES);
        let mut data = String::new();
        let mut time_ns = 0;
        while data.len() < budget {
            let Some(event) = events.next() else { break };
            // The host filters; filtering again costs little and keeps a chunk honest.
            if filter.matches(&event) {
                data.push_str(&render::line(&event, style)?);
                time_ns = event.time_ns;
            }
        }
        Ok(Chunk {
            data: data.into_bytes(),
            cursor: events.cursor().max(cursor),
            time_ns,
            end: false,
        })
    }

    /// The audit records after `cursor` the caller may see, as whole JSON lines; the
    /// cursor follows the store's `through` as in [`Streams::next`]. Records the host no
    /// longer keeps (it keeps the last [`AUDIT_KEPT`]) cannot be rendered again: asking
    /// for them is an error naming them, never other lines in their place. (A gap in
    /// the records is no sign of that any more: records the caller may not see leave
    /// gaps too.)
    fn next_audit(&self, cursor: u64, max: u32) -> Result<Chunk, FsError> {
        let budget = (max as usize).clamp(MIN_CHUNK, MAX_CHUNK);
        let mut records = self
            .store
            .audit_after(cursor)
            .page_size(EVENTS_PER_CALL)
            .max_pages(MAX_PAGES);
        let mut data = String::new();
        let mut time_ns = 0;
        let mut first = None;
        while data.len() < budget {
            let Some(record) = records.next() else { break };
            first.get_or_insert(record.seq);
            data.push_str(&render::audit_line(&record)?);
            time_ns = record.time_ns;
        }
        // The head after the records were fetched: anything forgotten by then that the
        // chunk should have started with is gone for good.
        let oldest_kept = self.store.audit_head().saturating_sub(AUDIT_KEPT) + 1;
        if cursor + 1 < oldest_kept && first != Some(cursor + 1) {
            return Err(error::internal(format!(
                "audit@{}: records {} to {} are no longer kept (the host keeps the last \
                 10,000 audit records); audit@{} and later are",
                cursor + 1,
                cursor + 1,
                oldest_kept - 1,
                oldest_kept
            )));
        }
        Ok(Chunk {
            data: data.into_bytes(),
            cursor: records.cursor().max(cursor),
            time_ns,
            end: false,
        })
    }

    /// The time of the newest event (0: empty log).
    fn head_time(&self) -> i64 {
        let head = self.store.head();
        if head == 0 {
            return 0;
        }
        // The newest event the caller may see is not looked for: 0 when it may not see
        // the head's.
        match self
            .store
            .events(head - 1, 1, &EventFilter::all())
            .events
            .first()
        {
            Some(event) if event.seq == head => event.time_ns,
            _ => 0,
        }
    }
}

/// `streams/README`.
pub fn readme() -> String {
    let mut text = String::from(
        "Append-only logs of the event log, one JSON line per event, that grow as events come:\n\n",
    );
    for stream in Stream::ALL {
        text.push_str(&format!("  {:<16}{}\n", stream.name(), stream.summary()));
    }
    text.push_str(concat!(
        "\n",
        "streams/NAME is a file holding the whole log, from event 1; its size is what is\n",
        "written so far, and it grows. Read it like a log file: tail -f (the last lines,\n",
        "then what comes), tail -n 5 -f, tail -F, head -n 3, grep -m1 PATTERN, less +F,\n",
        "cat. Offsets are fixed: any offset below the size reads the same bytes for every\n",
        "reader, at any time, and lseek works. A read at the end waits until the log grows\n",
        "(Ctrl-C ends the wait; O_NONBLOCK readers get EAGAIN instead), so cat never ends.\n",
        "\n",
        "  NAME@120                    the same log from event 120 on (@1: all of it)\n",
        "  NAME@now                    a symlink to NAME@SEQ, SEQ the next event: cat it to\n",
        "                              follow what comes from now on\n",
        "  NAME@-10m                   a symlink to the log from the first event of the last\n",
        "                              10 minutes (s m h d, -1h30m)\n",
        "  NAME@2026-11-23T21:40:00Z   a symlink to the log from the first event at or after\n",
        "                              that time (RFC 3339)\n",
        "\n",
        "These names are not listed, but they resolve; the links are resolved when read.\n",
        "inotify does not see the logs grow (the mount's daemon makes the changes): watch\n",
        "them by polling, as tail -f does.\n",
        "\n",
        "Full lines: {\"seq\",\"time\" (RFC 3339 UTC, ns),\"time_ns\",\"agent\",\"uid\",\"gid\",\"pid\",\n",
        "\"op\",\"path\",\"path2\",\"size\",\"hash\",\"view\",\"body\" (the JSON a view appended)}; absent\n",
        "values are null. agent_activity lines have seq, time, agent, uid, pid, op, path and\n",
        "path2 (only when set). Every reader gets every event it shows, once, in log order:\n",
        "those it may see (events about what it may not list are left out, and a write's\n",
        "hash of a file it may not read is null).\n",
        "\n",
        "audit is not the event log but the mount policy's audit trail (--policy): denials,\n",
        "rate refusals and .auth answers, one line each: {\"seq\",\"time\",\"agent\",\"uid\",\n",
        "\"gid\",\"pid\",\"op\",\"path\",\"outcome\"}. audit@SEQ counts its own records; the\n",
        "host keeps the last 10,000: reading a part of the log whose records are gone is an\n",
        "error (EIO, the mount's log names audit@SEQ), so follow it with audit@now or\n",
        "audit@-1h. Without a policy it stays empty.\n",
    ));
    text
}
