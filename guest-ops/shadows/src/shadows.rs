//! The shadows view's answers, over any [`Store`] (the host import in the component, a
//! model in the tests).
//!
//! ```text
//! shadows/<dir>/       the directories of current/ (at the head of the log)
//! shadows/<file>       each regular file's annotations, one JSON document; writing
//!                      JSON objects to it records new annotations
//! ```

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::rc::Rc;

use lighthouse_view_sdk::time::rfc3339_nanos;
use lighthouse_view_sdk::{error, json, path, slice_read};
use lighthouse_view_sdk::{Attrs, Caching, Caller, DirEntry, FsError, NodeKind, OpenMode, Store};
use serde::Serialize;

use crate::anchor::{self, Found, Status, Text};
use crate::fold::{Body, Fold, Note, OP};
use crate::input;

/// Permission bits of a shadow file (written to add annotations): every caller's to
/// write, as far as the mode bits go (the mount has `default_permissions`). The policy's
/// `shadows:write` decides who may, and the host refuses an annotation about a path its
/// writer could not list.
pub const FILE_PERM: u16 = 0o666;
/// Permission bits of a directory.
pub const DIR_PERM: u16 = 0o755;
/// How much of a file anchors are looked for in (whole lines of its beginning).
pub const MAX_CONTENT: u64 = 8 << 20;
/// The largest event body the store takes.
pub const MAX_BODY: usize = 64 << 10;
/// Events asked of the store per call while folding.
pub const EVENTS_PAGE: u32 = 4096;
/// Rendered documents kept (getattr and the reads that follow ask for the same one).
const RENDERED_KEPT: usize = 8;
/// Callers whose caches are kept (each has its own fold of the log).
const CALLERS_KEPT: usize = 4;

/// What a path of the view is.
enum Node {
    /// A directory of current/.
    Dir(Attrs),
    /// A regular file of current/: its live path and attributes.
    File(String, Attrs),
}

/// One shadow file's document as it is after event `head`.
struct Rendered {
    path: String,
    head: u64,
    bytes: Vec<u8>,
    mtime_ns: i64,
}

#[derive(Default)]
struct Cache {
    fold: Fold,
    rendered: VecDeque<Rc<Rendered>>,
}

pub struct Shadows<S> {
    store: S,
    /// The name this view's events carry (its `info` name).
    view: &'static str,
    /// Events asked of the store per call while folding.
    pub page: u32,
    /// One cache per caller, the most recent last: the store shows each caller its own
    /// events and files, so a fold or a document made for one is never another's.
    caches: RefCell<VecDeque<(Option<u64>, Cache)>>,
    /// Who the call being served is for (`None` until [`Shadows::serving`] says).
    caller: RefCell<Option<u64>>,
}

impl<S: Store> Shadows<S> {
    /// A view over `store` whose annotations are the `annotate` events of view `view`,
    /// with an empty cache.
    pub fn new(store: S, view: &'static str) -> Self {
        Shadows {
            store,
            view,
            page: EVENTS_PAGE,
            caches: RefCell::new(VecDeque::new()),
            caller: RefCell::new(None),
        }
    }

    /// The calls that follow are for `caller`.
    pub fn serving(&self, caller: &Caller) {
        *self.caller.borrow_mut() = Some(caller.sight);
    }

    /// The cache of the caller being served (made, the least recent dropped, if need be).
    fn cache(&self) -> RefMut<'_, Cache> {
        let caller = *self.caller.borrow();
        let mut caches = self.caches.borrow_mut();
        match caches.iter().position(|(c, _)| *c == caller) {
            Some(i) => {
                let mine = caches.remove(i).expect("found");
                caches.push_back(mine);
            }
            None => {
                if caches.len() == CALLERS_KEPT {
                    caches.pop_front();
                }
                caches.push_back((caller, Cache::default()));
            }
        }
        RefMut::map(caches, |c| &mut c.back_mut().expect("just pushed").1)
    }

    /// The annotations folded so far (for tests comparing caches).
    #[cfg(test)]
    pub fn fold(&self) -> Fold {
        self.cache().fold.clone()
    }

    fn node(&self, view_path: &str, head: u64) -> Result<Node, FsError> {
        let live = path::join(&path::split(view_path)?);
        let attrs = self.store.stat_at(&live, head)?;
        match attrs.kind {
            NodeKind::Directory => Ok(Node::Dir(attrs)),
            NodeKind::File => Ok(Node::File(live, attrs)),
            // Symlinks point at files that have their own shadows: not shown.
            NodeKind::Symlink => Err(FsError::NotFound),
            // The live tree has no streams.
            NodeKind::Stream => Err(FsError::NotFound),
        }
    }

    pub fn getattr(&self, view_path: &str) -> Result<Attrs, FsError> {
        let head = self.store.head();
        match self.node(view_path, head)? {
            Node::Dir(attrs) => Ok(dir_attrs(&attrs)),
            Node::File(live, attrs) => {
                let doc = self.render(&live, head, &attrs)?;
                Ok(file_attrs(&doc))
            }
        }
    }

    pub fn readdir(&self, view_path: &str) -> Result<Vec<DirEntry>, FsError> {
        let head = self.store.head();
        match self.node(view_path, head)? {
            Node::Dir(_) => {
                let live = path::join(&path::split(view_path)?);
                let mut entries = self.store.list_at(&live, head)?;
                entries.retain(|e| e.kind != NodeKind::Symlink);
                Ok(entries)
            }
            Node::File(..) => Err(FsError::NotADirectory),
        }
    }

    pub fn read(&self, view_path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        let head = self.store.head();
        match self.node(view_path, head)? {
            Node::Dir(_) => Err(FsError::IsADirectory),
            Node::File(live, attrs) => {
                let doc = self.render(&live, head, &attrs)?;
                Ok(slice_read(&doc.bytes, offset, len))
            }
        }
    }

    pub fn readlink(&self, view_path: &str) -> Result<String, FsError> {
        self.node(view_path, self.store.head())?;
        Err(error::not_a_symlink(view_path))
    }

    /// Shadow files open for reading and for writing (which adds annotations).
    pub fn open(&self, view_path: &str, write: bool) -> Result<OpenMode, FsError> {
        match self.node(view_path, self.store.head())? {
            Node::Dir(_) if write => Err(FsError::IsADirectory),
            _ => Ok(OpenMode::Plain),
        }
    }

    /// The view never creates anything: a file is annotatable once it exists in
    /// current/ (then `create`, which the kernel may send for `echo > file`, answers its
    /// attributes), and directories mirror current/'s.
    pub fn create(&self, view_path: &str, kind: NodeKind) -> Result<Attrs, FsError> {
        if kind != NodeKind::File {
            return Err(FsError::PermissionDenied);
        }
        let head = self.store.head();
        match self.node(view_path, head)? {
            Node::Dir(_) => Err(FsError::IsADirectory),
            Node::File(live, attrs) => Ok(file_attrs(&*self.render(&live, head, &attrs)?)),
        }
    }

    /// One write(2): every annotation it carries, checked before any is recorded (the
    /// offset does not matter; writing never replaces what is there).
    pub fn write(&self, view_path: &str, data: &[u8]) -> Result<u32, FsError> {
        let head = self.store.head();
        let (live, attrs) = match self.node(view_path, head)? {
            Node::Dir(_) => return Err(FsError::IsADirectory),
            Node::File(live, attrs) => (live, attrs),
        };
        let notes = input::parse(data)?;
        let content = if notes.iter().any(|n| n.range.is_some()) {
            self.content(&live, head, &attrs)?
        } else {
            Vec::new()
        };
        let text = Text::new(&content);
        let hash = self.store.hash_at(&live, head)?;
        let mut bodies = Vec::with_capacity(notes.len());
        for (k, note) in notes.into_iter().enumerate() {
            let which = k + 1;
            let anchor = match note.range {
                None => None,
                Some((start, end)) => {
                    let lines = text.line_count();
                    if end > lines {
                        let capped = if attrs.size > MAX_CONTENT {
                            format!(" (anchors can be in its first {MAX_CONTENT} bytes)")
                        } else {
                            String::new()
                        };
                        return Err(error::invalid(format!(
                            "annotation {which}: anchor ends at line {end}, {live} has {lines} lines{capped}"
                        )));
                    }
                    Some(anchor::capture(&text, start, end))
                }
            };
            let body = serde_json::to_string(&Body {
                v: 1,
                kind: note.kind,
                text: note.text,
                anchor,
                hash: hash.clone(),
            })
            .map_err(error::internal)?;
            if body.len() > MAX_BODY {
                return Err(error::invalid(format!(
                    "annotation {which} is {} bytes as JSON, the limit is {MAX_BODY}",
                    body.len()
                )));
            }
            bodies.push(body);
        }
        for body in bodies {
            self.store.append(OP, &live, &body)?;
        }
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    /// The beginning of file `live` anchors are looked for in: all of it, or the whole
    /// lines of its first [`MAX_CONTENT`] bytes.
    fn content(&self, live: &str, head: u64, attrs: &Attrs) -> Result<Vec<u8>, FsError> {
        let mut content = self.store.read_all_at(live, head, MAX_CONTENT)?;
        if attrs.size > MAX_CONTENT {
            let whole = content
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            content.truncate(whole);
        }
        Ok(content)
    }

    /// Folds the log up to `head` and returns the annotations of `live`.
    fn notes(&self, live: &str, head: u64) -> Vec<Rc<Note>> {
        let mut cache = self.cache();
        cache.fold.catch_up(&self.store, self.view, head, self.page);
        cache.fold.notes(live).to_vec()
    }

    /// The document of file `live` after event `head`.
    fn render(&self, live: &str, head: u64, attrs: &Attrs) -> Result<Rc<Rendered>, FsError> {
        if let Some(doc) = self
            .cache()
            .rendered
            .iter()
            .find(|r| r.head == head && r.path == live)
        {
            return Ok(doc.clone());
        }
        let notes = self.notes(live, head);
        let hash = self.store.hash_at(live, head)?;
        let content = if notes.iter().any(|n| n.body.anchor.is_some()) {
            self.content(live, head, attrs)?
        } else {
            Vec::new()
        };
        let text = Text::new(&content);
        let annotations = notes.iter().map(|n| annotation(n, &text)).collect();
        let bytes = json::document(&Document {
            path: live,
            hash: &hash,
            size: attrs.size,
            annotations,
        })?;
        let newest = notes.iter().map(|n| n.time_ns).max().unwrap_or(i64::MIN);
        let doc = Rc::new(Rendered {
            path: live.to_string(),
            head,
            bytes,
            mtime_ns: attrs.mtime_ns.max(newest),
        });
        let mut cache = self.cache();
        if cache.rendered.len() == RENDERED_KEPT {
            cache.rendered.pop_front();
        }
        cache.rendered.push_back(doc.clone());
        Ok(doc)
    }
}

fn dir_attrs(live: &Attrs) -> Attrs {
    Attrs {
        kind: NodeKind::Directory,
        size: 0,
        mtime_ns: live.mtime_ns,
        perm: DIR_PERM,
        writable: false,
        caching: Caching::Volatile,
        // The mount's: the view's own files (as before owners were said).
        owner: None,
    }
}

fn file_attrs(doc: &Rendered) -> Attrs {
    Attrs {
        kind: NodeKind::File,
        size: doc.bytes.len() as u64,
        mtime_ns: doc.mtime_ns,
        perm: FILE_PERM,
        writable: true,
        caching: Caching::Volatile,
        // The mount's: the view's own files (as before owners were said).
        owner: None,
    }
}

/// `shadows/<path>`.
#[derive(Serialize)]
struct Document<'a> {
    /// The live path (relative to current/).
    path: &'a str,
    /// Hex BLAKE3 of its content.
    hash: &'a str,
    size: u64,
    annotations: Vec<Annotation<'a>>,
}

#[derive(Serialize)]
struct Annotation<'a> {
    /// `@SEQ`: also the name of the point in history/ right after it was written.
    id: String,
    seq: u64,
    agent: Option<&'a str>,
    uid: u32,
    /// RFC 3339, UTC, nanoseconds.
    time: String,
    kind: &'a str,
    text: &'a str,
    /// `None`: the whole file.
    anchor: Option<AnchorOut<'a>>,
    status: &'static str,
    /// Where and on what content it was written.
    annotated_path: &'a str,
    annotated_hash: &'a str,
}

#[derive(Serialize)]
struct AnchorOut<'a> {
    start_line: u64,
    end_line: u64,
    original_start_line: u64,
    original_end_line: u64,
    /// How the text was found: "exact", "whitespace" or "none".
    #[serde(rename = "match")]
    found: &'static str,
    /// The anchored text as it was written.
    lines: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

fn annotation<'a>(note: &'a Note, text: &Text) -> Annotation<'a> {
    let (anchor, status) = match &note.body.anchor {
        None => (None, Status::Fresh),
        Some(rec) => {
            let at = anchor::locate(rec, text);
            let out = AnchorOut {
                start_line: at.start_line,
                end_line: at.end_line,
                original_start_line: rec.start_line,
                original_end_line: rec.end_line,
                found: at.found.as_str(),
                lines: &rec.lines,
                truncated: rec.truncated,
            };
            debug_assert!(at.status != Status::Stale || at.found == Found::Nowhere);
            (Some(out), at.status)
        }
    };
    Annotation {
        id: format!("@{}", note.seq),
        seq: note.seq,
        agent: note.agent.as_deref(),
        uid: note.uid,
        time: rfc3339_nanos(note.time_ns),
        kind: &note.body.kind,
        text: &note.body.text,
        anchor,
        status: status.as_str(),
        annotated_path: &note.path,
        annotated_hash: &note.body.hash,
    }
}
