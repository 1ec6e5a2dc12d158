//! `context.json`: what is known about the selected files at one seq.
//!
//! ```json
//! {
//!   "package": "login",
//!   "purpose": "fix the login redirect",
//!   "seq": 120,
//!   "files": ["/src/auth.rs"],
//!   "missing": [],
//!   "denied": ["/private/"],
//!   "annotations": {
//!     "/src/auth.rs": [
//!       {"seq": 97, "time": "2026-11-23T21:40:00.123456789Z", "agent": "claude",
//!        "body": {"kind": "todo", "text": "…", "anchor": {"start_line": 3, "end_line": 5, "lines": 3, "fingerprint": "…"}, "hash": "…"}}
//!     ]
//!   },
//!   "recent_events": [ {"seq": 118, "time": "…", "op": "write", "path": "/src/auth.rs", …} ],
//!   "cut": []
//! }
//! ```
//!
//! - `files`, `missing` and `denied` are those of `files.json` (see [`crate::files_json`]):
//!   what the reader may not read is named in `denied`, and nothing else is said of it.
//! - `annotations`: the `annotate` events (what `shadows/` appends: its `path` is the
//!   annotated file, its body the annotation) of each selected file that has any, oldest
//!   first. They follow renames: a rename of a file (or of a directory above it) carries
//!   the annotations of the old path to the new one, added to any the new path already
//!   had (so an editor saving through `rename(tmp, file)` keeps the file's). Deleting a
//!   file does not drop them: a file created again at that path has them (each carries
//!   the `hash` it was made against, to tell whether the text moved on).
//! - `recent_events`: the last `recent_events` changes to the live tree (the ops of
//!   `streams/file_changes`) touching a selected file, oldest first, found by walking
//!   the log backwards from `seq` and following renames back to older names (the writes
//!   to `tmp` before `rename(tmp, file)` are the file's). Events of views (annotations,
//!   manifests) are not among them.
//! - `cut` says where a bound stopped a fold ([`MAX_ANNOTATION_SCAN`] annotate/rename
//!   events forward, [`MAX_RECENT_SCAN`] events backward); empty when none did.

use std::collections::{BTreeMap, BTreeSet};

use lighthouse_view_sdk::{json, Event, EventFilter, FsError, Store};
use serde::Serialize;

use crate::event_json::{EventJson, Note};
use crate::packages::{events_upto, Package};
use crate::select::Selection;

/// The ops of changes to the live tree.
pub use lighthouse_view_sdk::LIVE_OPS;
/// The op of an annotation.
pub const ANNOTATE_OP: &str = "annotate";
/// annotate and rename events the annotation fold reads, at most.
pub const MAX_ANNOTATION_SCAN: usize = 200_000;
/// Events the backward walk for recent events looks through, at most.
pub const MAX_RECENT_SCAN: u64 = 100_000;
/// The backward walk's step (the most events the store hands over in one call).
const WINDOW: u64 = 4096;

#[derive(Serialize)]
struct ContextJson<'a> {
    package: &'a str,
    purpose: &'a str,
    seq: u64,
    files: &'a BTreeSet<String>,
    missing: &'a [String],
    denied: &'a BTreeSet<String>,
    annotations: BTreeMap<String, Vec<Note>>,
    recent_events: Vec<EventJson>,
    cut: Vec<String>,
}

pub fn render<S: Store>(
    store: &S,
    name: &str,
    package: &Package,
    selection: &Selection,
    seq: u64,
) -> Result<Vec<u8>, FsError> {
    let mut cut: Vec<String> = selection.cut.iter().cloned().collect();
    let mut annotations = annotations(store, seq, &mut cut);
    annotations.retain(|path, notes| selection.files.contains(path) && !notes.is_empty());
    let recent = recent_events(
        store,
        seq,
        &selection.files,
        package.manifest.recent_events as usize,
        &mut cut,
    );
    json::document(&ContextJson {
        package: name,
        purpose: &package.manifest.purpose,
        seq,
        files: &selection.files,
        missing: &selection.missing,
        denied: &selection.denied,
        annotations,
        recent_events: recent.iter().map(EventJson::from).collect(),
        cut,
    })
}

/// Is `path` `dir` or below it?
fn at_or_below(path: &str, dir: &str) -> bool {
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Every path's annotations after event `seq`, carried along by renames.
pub fn annotations<S: Store>(
    store: &S,
    seq: u64,
    cut: &mut Vec<String>,
) -> BTreeMap<String, Vec<Note>> {
    let mut notes: BTreeMap<String, Vec<Note>> = BTreeMap::new();
    let mut scanned = 0;
    let filter = EventFilter::all().ops(&[ANNOTATE_OP, "rename"]);
    events_upto(store, 0, seq, &filter, |event| {
        scanned += 1;
        if scanned > MAX_ANNOTATION_SCAN {
            if scanned == MAX_ANNOTATION_SCAN + 1 {
                cut.push(format!(
                    "annotations: only the first {MAX_ANNOTATION_SCAN} annotate and rename events were read"
                ));
            }
            return;
        }
        match event.op.as_str() {
            ANNOTATE_OP => notes
                .entry(event.path.clone())
                .or_default()
                .push(event.into()),
            "rename" => {
                let (from, Some(to)) = (event.path.as_str(), event.path2.as_deref()) else {
                    return;
                };
                let moved: Vec<String> = notes
                    .keys()
                    .filter(|p| at_or_below(p, from))
                    .cloned()
                    .collect();
                for old in moved {
                    let carried = notes.remove(&old).unwrap_or_default();
                    let new = format!("{to}{}", &old[from.len()..]);
                    let list = notes.entry(new).or_default();
                    list.extend(carried);
                    list.sort_by_key(|n| n.seq);
                }
            }
            _ => {}
        }
    });
    notes
}

/// Does `event` change one of `paths` (as the path, a link's or rename's destination,
/// or a directory renamed above it)?
fn touches(event: &Event, paths: &BTreeSet<String>) -> bool {
    if paths.contains(&event.path) {
        return true;
    }
    match (event.op.as_str(), event.path2.as_deref()) {
        (_, None) => false,
        (op, _) if !lighthouse_view_sdk::path2_is_a_path(op) => false,
        ("rename", Some(to)) => paths.iter().any(|p| at_or_below(p, to)),
        (_, Some(to)) => paths.contains(to),
    }
}

/// The last `n` changes to the live tree up to `seq` touching `files` (or the names they
/// had before a rename), oldest first.
pub fn recent_events<S: Store>(
    store: &S,
    seq: u64,
    files: &BTreeSet<String>,
    n: usize,
    cut: &mut Vec<String>,
) -> Vec<Event> {
    let filter = EventFilter::all().ops(LIVE_OPS);
    let mut tracked = files.clone();
    let mut found = Vec::new();
    let mut hi = seq;
    while hi > 0 && found.len() < n && !tracked.is_empty() {
        if seq - hi >= MAX_RECENT_SCAN {
            cut.push(format!(
                "recent_events: only the last {MAX_RECENT_SCAN} events were looked at"
            ));
            break;
        }
        let lo = hi.saturating_sub(WINDOW);
        let mut window = Vec::new();
        events_upto(store, lo, hi, &filter, |e| window.push(e.clone()));
        for event in window.into_iter().rev() {
            if !touches(&event, &tracked) {
                continue;
            }
            if let ("rename", Some(to)) = (event.op.as_str(), event.path2.as_deref()) {
                // Before the rename, these files had the old names.
                let older: Vec<String> = tracked
                    .iter()
                    .filter(|p| at_or_below(p, to))
                    .map(|p| format!("{}{}", event.path, &p[to.len()..]))
                    .collect();
                tracked.extend(older);
            }
            found.push(event);
            if found.len() == n {
                break;
            }
        }
        hi = lo;
    }
    found.reverse();
    found
}
