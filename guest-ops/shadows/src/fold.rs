//! Which annotations each live path has: the `annotate` events of this view, carried
//! along by renames and dropped by deletions, folded from the log.
//!
//! The log is read with an op filter (`annotate`, `create`, `mknod`, `link`, `rename`,
//! `unlink`, `rmdir`: never the writes, the bulk of a log), a page at a time, and a
//! [`Fold`] remembers how far it got, so a long-lived instance only reads what is new.
//!
//! - `annotate` (appended by this view): a new annotation of its path.
//! - `rename A B`: whatever was annotated at A or below it now is at B or below it (a
//!   file, or a directory and everything in it). What B already had **stays**: a rename
//!   over an annotated file is how atomic saves replace a file's content (`sed -i`, and
//!   editors that write a temporary file and rename it over the original), so its
//!   annotations survive the save, to be re-anchored against the new content. A rename
//!   that leaves A in place is an exchange (`RENAME_EXCHANGE`): the two swap annotations
//!   (unless A and B are one file or equal files: then nothing moves). Telling takes a
//!   `stat-at`, asked only when A or B has annotations.
//! - `unlink`: the file's annotations are set aside. If a file appears at that path
//!   within [`RECREATE_WINDOW_NS`] (`create`, `mknod`, `link` or a rename to it) they
//!   come back: deleting and recreating a file is a save too (`git checkout`, `git
//!   stash`, some editors). Likewise, annotations a rename carried from A to B go back to
//!   A when B is deleted within the window after a new file appeared at A (the backup
//!   dance of vim and others: rename A to A~, write a new A, delete A~). Otherwise they
//!   are gone.
//! - `rmdir`: anything still filed below the directory is dropped.

use std::collections::BTreeMap;
use std::rc::Rc;

use lighthouse_view_sdk::{Event, EventFilter, NodeKind, Store};
use serde::{Deserialize, Serialize};

use crate::anchor::Recorded;

/// The op of this view's events.
pub const OP: &str = "annotate";
/// The ops the fold reads.
const OPS: &[&str] = &[OP, "create", "mknod", "link", "rename", "unlink", "rmdir"];
/// How long deleted or renamed-away annotations wait for their file to come back.
pub const RECREATE_WINDOW_NS: i64 = 60 * 1_000_000_000;

/// The body of an `annotate` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The format of this body (1).
    pub v: u32,
    pub kind: String,
    pub text: String,
    /// `None`: the whole file.
    #[serde(default)]
    pub anchor: Option<Recorded>,
    /// Hex BLAKE3 of the file's content when it was annotated.
    pub hash: String,
}

/// One annotation, as its event recorded it.
#[derive(Debug, PartialEq, Eq)]
pub struct Note {
    pub seq: u64,
    pub time_ns: i64,
    pub agent: Option<String>,
    pub uid: u32,
    /// The path it was written to (before any renames).
    pub path: String,
    pub body: Body,
}

impl Note {
    /// The annotation `event` records, if it is one of `view`'s with a body it can read.
    fn from_event(event: &Event, view: &str) -> Option<Note> {
        if event.op != OP || event.view.as_deref() != Some(view) {
            return None;
        }
        let body = serde_json::from_str(event.body.as_deref()?).ok()?;
        Some(Note {
            seq: event.seq,
            time_ns: event.time_ns,
            agent: event.agent.clone(),
            uid: event.uid,
            path: event.path.clone(),
            body,
        })
    }
}

/// A path's annotations, oldest first.
pub type Notes = Vec<Rc<Note>>;

/// Annotations of a deleted file, waiting for a file to appear at its path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SetAside {
    since_ns: i64,
    notes: Notes,
}

/// Annotations a rename carried away from `from`, which go back if their new path is
/// deleted soon after a file appeared at `from` again.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Carried {
    from: String,
    time_ns: i64,
    from_reappeared: bool,
}

/// The annotations of every path after event `upto`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fold {
    upto: u64,
    live: BTreeMap<String, Notes>,
    set_aside: BTreeMap<String, SetAside>,
    carried: BTreeMap<String, Carried>,
}

impl Fold {
    /// The seq the fold has read the log up to.
    #[cfg(test)]
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// The annotations of `path`.
    pub fn notes(&self, path: &str) -> &[Rc<Note>] {
        self.live.get(path).map_or(&[], Vec::as_slice)
    }

    /// Reads the log after `upto` up to `head`, `page` events per call. A log shorter
    /// than what was read (another store) starts the fold afresh.
    pub fn catch_up<S: Store>(&mut self, store: &S, view: &str, head: u64, page: u32) {
        if head < self.upto {
            *self = Fold::default();
        }
        let filter = EventFilter::all().ops(OPS);
        if self.upto >= head {
            return;
        }
        // Only the events the caller may see come, pages followed by their `through`.
        let events = store
            .events_after(self.upto, &filter)
            .page_size(page)
            .take_while(|e| e.seq <= head);
        for event in events {
            self.apply(store, view, &event);
        }
        self.upto = head;
    }

    fn apply<S: Store>(&mut self, store: &S, view: &str, event: &Event) {
        let now = event.time_ns;
        self.set_aside
            .retain(|_, s| now.saturating_sub(s.since_ns) <= RECREATE_WINDOW_NS);
        self.carried
            .retain(|_, c| now.saturating_sub(c.time_ns) <= RECREATE_WINDOW_NS);
        let path = event.path.as_str();
        match (event.op.as_str(), event.path2.as_deref()) {
            (OP, _) => {
                if let Some(note) = Note::from_event(event, view) {
                    merge(
                        self.live.entry(event.path.clone()).or_default(),
                        vec![Rc::new(note)],
                    );
                }
            }
            ("create" | "mknod", _) => self.appeared(path),
            ("link", Some(to)) => self.appeared(to),
            ("rename", Some(to)) if to != path => self.rename(store, event.seq, path, to, now),
            ("unlink", _) => self.unlink(path, now),
            ("rmdir", _) => drop(take_under(&mut self.live, path)),
            _ => {}
        }
    }

    /// A file appeared at `path` (created, linked or renamed there).
    fn appeared(&mut self, path: &str) {
        if let Some(s) = self.set_aside.remove(path) {
            merge(self.live.entry(path.to_string()).or_default(), s.notes);
        }
        for c in self.carried.values_mut().filter(|c| c.from == path) {
            c.from_reappeared = true;
        }
    }

    fn rename<S: Store>(&mut self, store: &S, seq: u64, from: &str, to: &str, now: i64) {
        let involved = has_under(&self.live, from) || has_under(&self.live, to);
        let kind = if involved {
            kind_of_rename(store, from, to, seq)
        } else {
            Rename::Move
        };
        match kind {
            Rename::Nothing => return,
            Rename::Exchange => {
                let a = take_under(&mut self.live, from);
                let b = take_under(&mut self.live, to);
                put_under(&mut self.live, to, a);
                put_under(&mut self.live, from, b);
                return;
            }
            Rename::Move => {}
        }
        let a_file = self.live.contains_key(from);
        let moved = take_under(&mut self.live, from);
        put_under(&mut self.live, to, moved);
        self.carried.remove(from);
        if a_file {
            self.carried.insert(
                to.to_string(),
                Carried {
                    from: from.to_string(),
                    time_ns: now,
                    from_reappeared: false,
                },
            );
        } else {
            self.carried.remove(to);
        }
        self.appeared(to);
    }

    fn unlink(&mut self, path: &str, now: i64) {
        for c in self.carried.values_mut().filter(|c| c.from == path) {
            c.from_reappeared = false;
        }
        let carried = self.carried.remove(path);
        let Some(notes) = self.live.remove(path) else {
            return;
        };
        match carried {
            Some(c) if c.from_reappeared => {
                merge(self.live.entry(c.from).or_default(), notes);
            }
            _ => {
                let s = self.set_aside.entry(path.to_string()).or_insert(SetAside {
                    since_ns: now,
                    notes: Vec::new(),
                });
                s.since_ns = now;
                merge(&mut s.notes, notes);
            }
        }
    }
}

/// What a rename did to the names.
enum Rename {
    /// `from` is now `to` (replacing what was there).
    Move,
    /// `from` and `to` swapped (`RENAME_EXCHANGE`).
    Exchange,
    /// Nothing that matters: the two were one file (hard links) or equal files.
    Nothing,
}

/// The store's events do not carry rename flags: a rename of `from` to `to` (event
/// `seq`) that left `from` in place exchanged the two, or changed nothing.
fn kind_of_rename<S: Store>(store: &S, from: &str, to: &str, seq: u64) -> Rename {
    let Ok(after) = store.stat_at(from, seq) else {
        return Rename::Move;
    };
    if after.kind == NodeKind::File {
        if let (Ok(a), Ok(b)) = (store.hash_at(from, seq), store.hash_at(to, seq)) {
            if a == b {
                return Rename::Nothing;
            }
        }
    }
    Rename::Exchange
}

/// `notes` (in seq order) added to `into`, which stays in seq order without duplicates.
fn merge(into: &mut Notes, notes: Notes) {
    let in_order = match (into.last(), notes.first()) {
        (Some(last), Some(first)) => last.seq < first.seq,
        _ => true,
    };
    into.extend(notes);
    if !in_order {
        into.sort_by_key(|n| n.seq);
        into.dedup_by_key(|n| n.seq);
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn has_under(map: &BTreeMap<String, Notes>, dir: &str) -> bool {
    map.range(dir.to_string()..)
        .take_while(|(k, _)| k.starts_with(dir))
        .any(|(k, _)| is_under(k, dir))
}

/// Removes the entries at `dir` and below it; returns them with their paths relative to
/// `dir` (`""` for `dir` itself). The root is never renamed or removed: nothing.
fn take_under(map: &mut BTreeMap<String, Notes>, dir: &str) -> Vec<(String, Notes)> {
    if dir == "/" {
        return Vec::new();
    }
    let keys: Vec<String> = map
        .range(dir.to_string()..)
        .take_while(|(k, _)| k.starts_with(dir))
        .filter(|(k, _)| is_under(k, dir))
        .map(|(k, _)| k.clone())
        .collect();
    keys.into_iter()
        .filter_map(|k| {
            let notes = map.remove(&k)?;
            Some((k[dir.len()..].to_string(), notes))
        })
        .collect()
}

fn put_under(map: &mut BTreeMap<String, Notes>, dir: &str, entries: Vec<(String, Notes)>) {
    for (rest, notes) in entries {
        merge(map.entry(format!("{dir}{rest}")).or_default(), notes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtrees_are_taken_by_whole_components() {
        let mut map: BTreeMap<String, Notes> = BTreeMap::new();
        for p in ["/a", "/a b", "/a-x/y", "/a/x", "/a/x/y", "/a0", "/b"] {
            map.insert(p.into(), Vec::new());
        }
        assert!(has_under(&map, "/a/x") && !has_under(&map, "/a/z"));
        let taken: Vec<String> = take_under(&mut map, "/a")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(taken, ["", "/x", "/x/y"]);
        let left: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(left, ["/a b", "/a-x/y", "/a0", "/b"]);
        assert!(take_under(&mut map, "/").is_empty());
    }
}
