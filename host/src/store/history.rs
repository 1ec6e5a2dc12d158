//! The store as it was: trees at past points of the log, for views (history) and export.
//!
//! A tree at seq N is folded from the log once and kept (a few of them, least recently
//! used first out); a later point is built from the nearest earlier kept tree by
//! replaying only the events between, so walking forward through history is cheap.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Change, Event, Hash, Store, Tree};
use crate::fs_err;
use crate::vocab::{Attr, Caller, FsError, FsResult, TimeNs};

/// How many past trees stay in memory.
const KEPT_TREES: usize = 8;

pub struct History {
    store: Arc<dyn Store>,
    /// (seq, tree), most recently used last.
    kept: Mutex<Vec<(u64, Arc<Tree>)>>,
}

/// Counters of the kept trees, shared by every [`History`] of a store (relaxed atomics).
#[derive(Default)]
pub struct HistoryStats {
    hits: AtomicU64,
    misses: AtomicU64,
    /// Misses built from a kept earlier tree (the others fold the log from the start).
    from_kept: AtomicU64,
    kept: AtomicU64,
    /// Nodes of the kept trees together (what they cost in memory).
    kept_nodes: AtomicU64,
}

/// [`HistoryStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCacheStats {
    /// Trees a `History` keeps at most.
    pub capacity: usize,
    pub kept: u64,
    pub kept_nodes: u64,
    pub hits: u64,
    pub misses: u64,
    pub from_kept: u64,
}

impl HistoryStats {
    pub fn snapshot(&self) -> HistoryCacheStats {
        HistoryCacheStats {
            capacity: KEPT_TREES,
            kept: self.kept.load(Relaxed),
            kept_nodes: self.kept_nodes.load(Relaxed),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            from_kept: self.from_kept.load(Relaxed),
        }
    }

    fn keep(&self, tree: &Tree) {
        self.kept.fetch_add(1, Relaxed);
        self.kept_nodes.fetch_add(tree.len() as u64, Relaxed);
    }

    fn drop_kept(&self, tree: &Tree) {
        self.kept.fetch_sub(1, Relaxed);
        self.kept_nodes.fetch_sub(tree.len() as u64, Relaxed);
    }
}

impl Drop for History {
    fn drop(&mut self) {
        for (_, tree) in self.kept.get_mut().drain(..) {
            self.store.history_stats().drop_kept(&tree);
        }
    }
}

/// One node of a past tree, as a view sees it.
#[derive(Debug, Clone)]
pub struct PastNode {
    pub attr: Attr,
    pub hash: Option<Hash>,
    pub target: Option<Arc<str>>,
}

impl History {
    pub fn new(store: Arc<dyn Store>) -> History {
        History {
            store,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// The store it reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The newest event (queued or committed).
    pub fn head(&self) -> u64 {
        self.store.head()
    }

    /// The tree after event `seq` (`seq` beyond the head: ENOENT).
    pub fn tree_at(&self, seq: u64) -> FsResult<Arc<Tree>> {
        if seq > self.store.head() {
            return Err(fs_err!(ENOENT, "that point is in the future of the log"));
        }
        let base = {
            let mut kept = self.kept.lock();
            if let Some(i) = kept.iter().position(|(s, _)| *s == seq) {
                let hit = kept.remove(i);
                let tree = hit.1.clone();
                kept.push(hit);
                self.stats().hits.fetch_add(1, Relaxed);
                return Ok(tree);
            }
            kept.iter()
                .filter(|(s, _)| *s < seq)
                .max_by_key(|(s, _)| *s)
                .cloned()
        };
        self.stats().misses.fetch_add(1, Relaxed);
        if base.is_some() {
            self.stats().from_kept.fetch_add(1, Relaxed);
        }
        let (mut tree, from) = match &base {
            Some((s, t)) => (t.detached_copy(), *s),
            None => (self.empty_tree()?, 0),
        };
        self.store
            .read(from, Some(seq), &mut |e| {
                tree.fold(&e)
                    .map_err(|err| anyhow::anyhow!("event {} does not apply: {err}", e.seq))
            })
            .map_err(|e| FsError::with(libc::EIO, format!("folding the log up to {seq}: {e:#}")))?;
        let tree = Arc::new(tree);
        let mut kept = self.kept.lock();
        if kept.len() >= KEPT_TREES {
            let (_, old) = kept.remove(0);
            self.stats().drop_kept(&old);
        }
        self.stats().keep(&tree);
        kept.push((seq, tree.clone()));
        Ok(tree)
    }

    /// Records an event of a view (see [`Change::View`]); returns its seq.
    pub fn append_view_event(
        &self,
        caller: &Caller,
        agent: Option<Arc<str>>,
        change: Change,
    ) -> FsResult<u64> {
        debug_assert!(matches!(change, Change::View { .. }));
        self.store
            .append(None, crate::vocab::now_ns(), caller, agent, change)
            .map_err(|e| FsError::with(libc::EIO, e.to_string()))
    }

    fn stats(&self) -> &HistoryStats {
        self.store.history_stats()
    }

    /// A node of the tree after `seq`, by path relative to `current/`.
    pub fn node_at(&self, path: &str, seq: u64) -> FsResult<PastNode> {
        let tree = self.tree_at(seq)?;
        let n = tree.node(tree.resolve(path)?)?;
        Ok(PastNode {
            attr: n.attr,
            hash: n.content.as_ref().and_then(|c| c.committed()),
            target: n.target.clone(),
        })
    }

    /// Names and kinds in a directory of the tree after `seq`.
    pub fn list_at(
        &self,
        path: &str,
        seq: u64,
    ) -> FsResult<Vec<(Arc<str>, crate::vocab::FileKind)>> {
        let tree = self.tree_at(seq)?;
        let children = tree.children(tree.resolve(path)?)?;
        Ok(children
            .iter()
            .filter_map(|(name, &ino)| tree.node(ino).ok().map(|n| (name.clone(), n.attr.kind)))
            .collect())
    }

    /// Bytes of a file of the tree after `seq`.
    pub fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        let node = self.node_at(path, seq)?;
        match node.attr.kind {
            crate::vocab::FileKind::File => {}
            crate::vocab::FileKind::Dir => return Err(fs_err!(EISDIR, "is a directory")),
            _ => return Err(fs_err!(EINVAL, "not a regular file")),
        }
        let Some(hash) = node.hash else {
            return Ok(Vec::new());
        };
        super::objects::read_object(self.store.objects(), &hash, offset, len as usize)
            .map_err(|e| FsError::io(&format!("reading object {hash}"), &e))
    }

    /// Up to `limit` events after `after`: only those touching `prefix` when given, only
    /// those with one of `ops` when it is not empty.
    pub fn events(
        &self,
        after: u64,
        limit: u32,
        prefix: Option<&str>,
        ops: &[String],
    ) -> FsResult<Vec<Event>> {
        self.store
            .read_matching(after, limit, prefix, ops)
            .map_err(|e| FsError::with(libc::EIO, format!("reading the log: {e:#}")))
    }

    /// The newest event at or before `time` (0 when none).
    pub fn seq_at_time(&self, time: TimeNs) -> FsResult<u64> {
        self.store
            .seq_at_time(time)
            .map_err(|e| FsError::with(libc::EIO, format!("reading the log: {e:#}")))
    }

    /// The tree before the first event: an empty root as old as the store.
    fn empty_tree(&self) -> FsResult<Tree> {
        let first = self
            .store
            .first_time()
            .map_err(|e| FsError::with(libc::EIO, format!("reading the log: {e:#}")))?;
        Ok(Tree::empty(first.unwrap_or_else(crate::vocab::now_ns)))
    }
}
