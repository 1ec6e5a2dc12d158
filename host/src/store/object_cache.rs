//! Which objects a host's local cache holds, and which go when it is over its budget:
//! least recently used first. Only for a store whose objects live elsewhere (PostgreSQL):
//! a copy evicted here is fetched again when it is read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use parking_lot::Mutex;

use super::Hash;

/// The objects held, by last use, within a budget of bytes.
pub struct ObjectCache {
    budget: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bytes: u64,
    tick: u64,
    /// hash → (size, last use)
    held: HashMap<Hash, (u64, u64)>,
    /// last use → hash
    by_use: BTreeMap<u64, Hash>,
}

impl State {
    fn touch(&mut self, hash: Hash, size: u64) {
        self.tick += 1;
        let tick = self.tick;
        match self.held.insert(hash, (size, tick)) {
            Some((old_size, old_tick)) => {
                self.by_use.remove(&old_tick);
                self.bytes = self.bytes - old_size + size;
            }
            None => self.bytes += size,
        }
        self.by_use.insert(tick, hash);
    }
}

impl ObjectCache {
    /// A cache of at most `budget` bytes, holding the objects already in `objects_dir`
    /// (`ab/cdef…`, oldest modification first).
    pub fn scan(objects_dir: &Path, budget: u64) -> ObjectCache {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(objects_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let prefix = dir.file_name().to_string_lossy().into_owned();
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = format!("{prefix}{}", file.file_name().to_string_lossy());
                if let (Some(hash), Ok(meta)) = (Hash::from_hex(&name), file.metadata()) {
                    found.push((meta.modified().ok(), hash, meta.len()));
                }
            }
        }
        found.sort_by_key(|(modified, _, _)| *modified);
        let mut state = State::default();
        for (_, hash, size) in found {
            state.touch(hash, size);
        }
        ObjectCache {
            budget,
            state: Mutex::new(state),
        }
    }

    /// `hash` (of `size` bytes) was just used or added; returns the objects to evict to
    /// stay within the budget (never `hash` itself).
    pub fn used(&self, hash: Hash, size: u64) -> Vec<Hash> {
        let mut st = self.state.lock();
        st.touch(hash, size);
        let mut out = Vec::new();
        while st.bytes > self.budget {
            let Some((&tick, &oldest)) = st.by_use.iter().next() else {
                break;
            };
            if oldest == hash {
                break;
            }
            st.by_use.remove(&tick);
            if let Some((size, _)) = st.held.remove(&oldest) {
                st.bytes -= size;
            }
            out.push(oldest);
        }
        out
    }

    /// An object the cache no longer has (removed from outside, say).
    pub fn forget(&self, hash: &Hash) {
        let mut st = self.state.lock();
        if let Some((size, tick)) = st.held.remove(hash) {
            st.by_use.remove(&tick);
            st.bytes -= size;
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_newest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ObjectCache::scan(dir.path(), 100);
        assert!(cache.used(h(1), 40).is_empty());
        assert!(cache.used(h(2), 40).is_empty());
        // 1 is used again: 2 is now the oldest.
        assert!(cache.used(h(1), 40).is_empty());
        assert_eq!(cache.used(h(3), 40), [h(2)]);
        assert_eq!(cache.bytes(), 80);
        // One larger than the budget stays alone (it is being read).
        assert_eq!(cache.used(h(4), 150), [h(1), h(3)]);
        assert_eq!(cache.bytes(), 150);
        cache.forget(&h(4));
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_scan_finds_what_an_earlier_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let hex = h(7).to_hex();
        std::fs::create_dir(dir.path().join(&hex[..2])).unwrap();
        std::fs::write(dir.path().join(&hex[..2]).join(&hex[2..]), [0u8; 30]).unwrap();
        let cache = ObjectCache::scan(dir.path(), 50);
        assert_eq!(cache.bytes(), 30);
        assert_eq!(cache.used(h(8), 30), [h(7)]);
    }
}
