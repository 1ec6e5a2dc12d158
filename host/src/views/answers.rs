//! The host's cache of answers a view declared immutable.
//!
//! A view marks an answer `caching: immutable` when it cannot change while this generation
//! of the component is loaded (history at a fixed point). The host then keeps it and
//! answers later calls without entering wasm: `getattr` answers with immutable caching are
//! kept, and so are `readdir`, `read` and `readlink` answers for a path whose kept
//! `getattr` says immutable. Keys carry the generation, so a hot swap can never serve the
//! old version's answers; the old entries age out. Errors are never kept.
//!
//! An answer is kept for every caller when nothing the store showed the view for it
//! depended on who asked (`who` 0), else for its caller alone (`who` = the caller's
//! [`Sight`](crate::core::Sight) id): a view cannot hand one caller's answer to another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{Equivalent, Weighter};

use crate::contract::{Caching, ViewAttrs, ViewDirEntry};
use crate::core::view_section::AnswerCacheFigures;

/// Which answer of a path a key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Getattr,
    Readdir,
    Readlink,
    /// A read at (offset, len): the kernel reads aligned chunks, so keys repeat.
    Read {
        offset: u64,
        len: u32,
    },
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    generation: u64,
    who: u64,
    op: Op,
    path: Box<str>,
}

/// A borrowed key, so lookups do not allocate. Hashes exactly like [`Key`] (same fields
/// in the same order; `&str` and `Box<str>` hash alike).
#[derive(Hash)]
struct KeyRef<'a> {
    generation: u64,
    who: u64,
    op: Op,
    path: &'a str,
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.generation == key.generation
            && self.who == key.who
            && self.op == key.op
            && self.path == &*key.path
    }
}

/// One kept answer.
#[derive(Clone)]
pub(crate) enum Answer {
    Attrs(ViewAttrs),
    Entries(Arc<[ViewDirEntry]>),
    Target(Arc<str>),
    Data(Arc<[u8]>),
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<Key, Answer> for ByBytes {
    fn weight(&self, key: &Key, answer: &Answer) -> u64 {
        // Roughly what the entry costs in memory (the key, the value, the map slot).
        let body = match answer {
            Answer::Attrs(_) => 0,
            Answer::Entries(entries) => entries.iter().map(|e| e.name.len() + 40).sum(),
            Answer::Target(t) => t.len(),
            Answer::Data(d) => d.len(),
        };
        (96 + key.path.len() + body) as u64
    }
}

/// Immutable answers of every view, bounded by bytes.
pub(crate) struct AnswerCache {
    cache: Option<Cache<Key, Answer, ByBytes>>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
}

impl AnswerCache {
    /// A cache of at most `capacity` bytes (0 turns it off).
    pub(crate) fn new(capacity: u64) -> Self {
        let cache = (capacity > 0)
            .then(|| Cache::with_weighter((capacity / 512).max(64) as usize, capacity, ByBytes));
        AnswerCache {
            cache,
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
        }
    }

    /// The answer kept for every caller or for caller `who`, if any, and whether it was
    /// for `who` alone.
    pub(crate) fn get(
        &self,
        generation: u64,
        who: u64,
        op: Op,
        path: &str,
    ) -> Option<(Answer, bool)> {
        let cache = self.cache.as_ref()?;
        let key = |who| KeyRef {
            generation,
            who,
            op,
            path,
        };
        let found = match cache.get(&key(0)) {
            Some(answer) => Some((answer, false)),
            None => cache.get(&key(who)).map(|answer| (answer, true)),
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// `true` when the `getattr` of `path` kept for every caller or for `who` says
    /// immutable: the path's other answers may be kept too.
    pub(crate) fn is_immutable(&self, generation: u64, who: u64, path: &str) -> bool {
        let Some(cache) = self.cache.as_ref() else {
            return false;
        };
        [0, who].into_iter().any(|who| {
            let key = KeyRef {
                generation,
                who,
                op: Op::Getattr,
                path,
            };
            matches!(cache.peek(&key), Some(Answer::Attrs(a)) if a.caching == Caching::Immutable)
        })
    }

    /// Keeps `answer` for caller `who` (0: for every caller).
    pub(crate) fn insert(&self, generation: u64, who: u64, op: Op, path: &str, answer: Answer) {
        if let Some(cache) = self.cache.as_ref() {
            let key = Key {
                generation,
                who,
                op,
                path: path.into(),
            };
            cache.insert(key, answer);
            self.inserts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counters for `debug/cache_stats.json` and tests (relaxed: statistics only).
    pub(crate) fn stats(&self) -> AnswerCacheFigures {
        let (entries, bytes) = self
            .cache
            .as_ref()
            .map_or((0, 0), |c| (c.len() as u64, c.weight()));
        AnswerCacheFigures {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            inserts: self.inserts.load(Ordering::Relaxed),
            entries,
            bytes,
            capacity_bytes: self.capacity,
        }
    }
}
