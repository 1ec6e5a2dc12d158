//! The streams view's answers, over any [`Store`] (the host import in the component, a
//! model in the tests).
//!
//! ```text
//! streams/                   README and the five streams (volatile)
//! streams/README             what this file says (immutable)
//! streams/NAME               a live feed of JSON lines, from the open on
//! streams/NAME@FROM          the same, from an earlier point (resolves, never listed)
//! ```

use lighthouse_view_sdk::{attrs, error, path, slice_read};
use lighthouse_view_sdk::{
    Attrs, Caching, Chunk, DirEntry, EventFilter, FsError, NodeKind, OpenMode, Store,
};

use crate::catalog::Stream;
use crate::render;
use crate::start::Start;

/// The name of the file that explains the streams.
pub const README: &str = "README";
/// Events asked of the store per `next` (the host caps a call at 4096).
pub const EVENTS_PER_CALL: u32 = 1024;
/// A chunk stops growing once it holds this much, whatever the reader asked for...
pub const MAX_CHUNK: usize = 256 * 1024;
/// ... and grows to at least this much (always by one whole line) when events wait.
pub const MIN_CHUNK: usize = 4 * 1024;
/// Pages of events one `next` looks through for something to show (more than one only
/// when the store hands over events the filter refuses).
const MAX_PAGES: usize = 16;

/// What a view path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Root,
    Readme,
    Stream(Stream, Start),
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
                    None => (*name, Some(Start::Now)),
                    Some((stream, from)) => (stream, Start::parse(from)),
                };
                match (Stream::by_name(stream), start) {
                    (Some(stream), Some(start)) => Ok(Target::Stream(stream, start)),
                    _ => Err(FsError::NotFound),
                }
            }
            _ => Err(FsError::NotFound),
        }
    }

    pub fn getattr(&self, view_path: &str) -> Result<Attrs, FsError> {
        Ok(match self.target(view_path)? {
            Target::Root => attrs::dir(self.head_time(), Caching::Volatile),
            Target::Readme => attrs::file(readme().len() as u64, 0, Caching::Immutable),
            // No size: readers get what `next` hands the host (direct I/O).
            Target::Stream(..) => attrs::file(0, self.head_time(), Caching::Volatile),
        })
    }

    pub fn readdir(&self, view_path: &str) -> Result<Vec<DirEntry>, FsError> {
        match self.target(view_path)? {
            Target::Root => Ok(std::iter::once(README)
                .chain(Stream::ALL.iter().map(|s| s.name()))
                .map(|name| attrs::entry(name, NodeKind::File))
                .collect()),
            _ => Err(FsError::NotADirectory),
        }
    }

    pub fn read(&self, view_path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.target(view_path)? {
            Target::Root => Err(FsError::IsADirectory),
            Target::Readme => Ok(slice_read(readme().as_bytes(), offset, len)),
            Target::Stream(stream, _) => Err(FsError::Invalid(format!(
                "{} is a stream: it is read through open/next, never by offset",
                stream.name()
            ))),
        }
    }

    pub fn readlink(&self, view_path: &str) -> Result<String, FsError> {
        self.target(view_path)?;
        Err(error::not_a_symlink(view_path))
    }

    pub fn open(&self, view_path: &str, write: bool) -> Result<OpenMode, FsError> {
        match self.target(view_path)? {
            Target::Root => Err(FsError::IsADirectory),
            _ if write => Err(FsError::ReadOnly),
            Target::Readme => Ok(OpenMode::Plain),
            Target::Stream(Stream::Audit, start) => {
                Ok(OpenMode::Stream(start.audit_cursor(&self.store)))
            }
            Target::Stream(_, start) => Ok(OpenMode::Stream(start.cursor(&self.store))),
        }
    }

    /// The events after `cursor` that the stream shows, as whole JSON lines.
    ///
    /// The cursor returned is the seq of the last event scanned: with data, the last event
    /// rendered (a chunk that filled up stops before the next one, which the next call
    /// starts with); without, the head as it was *before* the store was asked (at least
    /// the cursor it was given), so the events the filter skipped are not scanned again,
    /// and none that lands while this call runs is passed over. Every event is thus
    /// delivered once, in order, and an empty chunk's cursor is exactly what the host
    /// can park on: wake the reader when head > cursor.
    pub fn next(&self, view_path: &str, cursor: u64, max: u32) -> Result<Chunk, FsError> {
        let stream = match self.target(view_path)? {
            Target::Root => return Err(FsError::IsADirectory),
            Target::Readme => {
                return Err(FsError::Invalid(format!(
                    "{README} is not a stream: read it by offset"
                )))
            }
            Target::Stream(stream, _) => stream,
        };
        if stream == Stream::Audit {
            return self.next_audit(cursor, max);
        }
        let (filter, style) = (stream.filter(), stream.style());
        let budget = (max as usize).clamp(MIN_CHUNK, MAX_CHUNK);
        let head = self.store.head();
        let mut data = String::new();
        let mut at = cursor;
        for _ in 0..MAX_PAGES {
            let page = self.store.events(at, EVENTS_PER_CALL, &filter);
            if page.is_empty() {
                // Nothing that passes the filter up to `head` (the store had all of
                // them when it was asked): the next call need not look there again.
                at = at.max(head);
                break;
            }
            for event in page {
                if event.seq <= at {
                    continue; // not asked for
                }
                if data.len() >= budget {
                    break;
                }
                // The host filters; filtering again costs little and keeps a chunk honest.
                if filter.matches(&event) {
                    data.push_str(&render::line(&event, style)?);
                }
                at = event.seq;
            }
            if !data.is_empty() {
                break;
            }
        }
        Ok(Chunk {
            data: data.into_bytes(),
            cursor: at,
            end: false,
        })
    }

    /// The audit records after `cursor`, as whole JSON lines; the cursor returned is the
    /// last record rendered, or the audit head as it was before the store was asked.
    fn next_audit(&self, cursor: u64, max: u32) -> Result<Chunk, FsError> {
        let budget = (max as usize).clamp(MIN_CHUNK, MAX_CHUNK);
        let head = self.store.audit_head();
        let mut data = String::new();
        let mut at = cursor;
        for record in self.store.audit(cursor, EVENTS_PER_CALL) {
            if record.seq <= at {
                continue;
            }
            if data.len() >= budget {
                break;
            }
            data.push_str(&render::audit_line(&record)?);
            at = record.seq;
        }
        if data.is_empty() {
            at = at.max(head);
        }
        Ok(Chunk {
            data: data.into_bytes(),
            cursor: at,
            end: false,
        })
    }

    /// The time of the newest event (0: empty log).
    fn head_time(&self) -> i64 {
        let head = self.store.head();
        if head == 0 {
            return 0;
        }
        match self.store.events(head - 1, 1, &EventFilter::all()).first() {
            Some(event) if event.seq == head => event.time_ns,
            _ => 0,
        }
    }
}

/// `streams/README`.
pub fn readme() -> String {
    let mut text =
        String::from("Live feeds of the event log, one JSON line per event, like `tail -f`:\n\n");
    for stream in Stream::ALL {
        text.push_str(&format!("  {:<16}{}\n", stream.name(), stream.summary()));
    }
    text.push_str(concat!(
        "\n",
        "`cat streams/NAME` starts now: it prints each event after the open as it happens\n",
        "and keeps waiting. To start earlier, open NAME@FROM (not listed, but it resolves):\n",
        "  NAME@120                    with event 120 (@1: the whole log)\n",
        "  NAME@-10m                   with the first event of the last 10 minutes (s m h d, -1h30m)\n",
        "  NAME@2026-11-23T21:40:00Z   with the first event at or after that time (RFC 3339)\n",
        "\n",
        "Full lines: {\"seq\",\"time\" (RFC 3339 UTC, ns),\"time_ns\",\"agent\",\"uid\",\"gid\",\"pid\",\n",
        "\"op\",\"path\",\"path2\",\"size\",\"hash\",\"view\",\"body\" (the JSON a view appended)}; absent\n",
        "values are null. agent_activity lines have seq, time, agent, uid, pid, op, path and\n",
        "path2 (only when set). Every reader gets every event it shows, once, in log order.\n",
        "\n",
        "audit is not the event log but the mount policy's audit trail (--policy): denials,\n",
        "rate refusals and .auth answers, one line each: {\"seq\",\"time\",\"agent\",\"uid\",\n",
        "\"gid\",\"pid\",\"op\",\"path\",\"outcome\"}. audit@SEQ counts its own records; the\n",
        "host keeps the last 10,000. Without a policy it stays empty.\n",
    ));
    text
}
