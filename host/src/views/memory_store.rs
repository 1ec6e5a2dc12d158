//! [`MemoryStore`]: a small in-memory [`StoreAccess`] — the test double of the views'
//! unit tests, and the empty store `views check` runs a component against.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use super::store_import::StoreAccess;
use crate::contract::{
    Caching, EventFilter, EventInfo, EventsPage, NodeKind, ViewAttrs, ViewDirEntry, ViewError,
};
use crate::core::Caller;
use crate::core::{Sights, Viewer};

#[derive(Clone, Debug)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

/// An event log kept in memory; trees are folded from it on demand (fine for tests).
/// Understands `mkdir`, `write` (content replaced), `symlink`, `unlink`, `rmdir`, `rename`.
/// Every caller sees all of it (it has no modes to check): the checks are the core's
/// store's, tested there.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    sights: Sights,
}

#[derive(Default)]
struct Inner {
    events: Vec<(EventInfo, Option<Vec<u8>>)>,
    now_ns: i64,
}

impl MemoryStore {
    /// An empty log (head 0) with the clock at `now_ns`.
    pub fn new(now_ns: i64) -> Self {
        MemoryStore {
            inner: RwLock::new(Inner {
                events: Vec::new(),
                now_ns,
            }),
            sights: Sights::default(),
        }
    }

    /// Appends an event at `time_ns` (which also becomes the clock); returns its seq.
    pub fn push(
        &self,
        time_ns: i64,
        op: &str,
        path: &str,
        path2: Option<&str>,
        data: Option<&[u8]>,
    ) -> u64 {
        let mut inner = self.inner.write();
        let seq = inner.events.len() as u64 + 1;
        inner.now_ns = inner.now_ns.max(time_ns);
        inner.events.push((
            EventInfo {
                seq,
                time_ns,
                agent: Some("test".into()),
                uid: 0,
                gid: 0,
                pid: 1,
                op: op.into(),
                path: path.into(),
                path2: path2.map(Into::into),
                size: data.map(|d| d.len() as u64),
                hash: None,
                view: None,
                body: None,
            },
            data.map(<[u8]>::to_vec),
        ));
        seq
    }

    fn tree(&self, seq: u64) -> BTreeMap<String, (Node, i64)> {
        let inner = self.inner.read();
        let mut tree = BTreeMap::new();
        tree.insert("/".to_owned(), (Node::Dir, 0));
        for (e, data) in inner.events.iter().take(seq as usize) {
            let t = e.time_ns;
            match e.op.as_str() {
                "mkdir" => drop(tree.insert(e.path.clone(), (Node::Dir, t))),
                "write" => {
                    let content = data.clone().unwrap_or_default();
                    drop(tree.insert(e.path.clone(), (Node::File(content), t)))
                }
                "symlink" => {
                    let target = e.path2.clone().unwrap_or_default();
                    drop(tree.insert(e.path.clone(), (Node::Symlink(target), t)))
                }
                "unlink" | "rmdir" => drop(tree.remove(&e.path)),
                "rename" => {
                    // A directory moves with everything below it.
                    let Some(to) = &e.path2 else { continue };
                    let below = format!("{}/", e.path);
                    let moved: Vec<String> = tree
                        .keys()
                        .filter(|p| **p == e.path || p.starts_with(&below))
                        .cloned()
                        .collect();
                    for p in moved {
                        let node = tree.remove(&p).expect("listed");
                        tree.insert(format!("{to}{}", &p[e.path.len()..]), node);
                    }
                }
                _ => {}
            }
        }
        tree
    }

    fn node(&self, path: &str, seq: u64) -> Result<(Node, i64), ViewError> {
        self.tree(seq).remove(path).ok_or(ViewError::NotFound)
    }
}

fn kind(node: &Node) -> NodeKind {
    match node {
        Node::File(_) => NodeKind::File,
        Node::Dir => NodeKind::Directory,
        Node::Symlink(_) => NodeKind::Symlink,
    }
}

impl StoreAccess for MemoryStore {
    fn head(&self) -> u64 {
        self.inner.read().events.len() as u64
    }

    fn now_ns(&self) -> i64 {
        self.inner.read().now_ns
    }

    fn viewer(&self, caller: &Caller) -> Viewer {
        Viewer::new(self.sights.of(None, 0, caller.gid, caller.pid))
    }

    fn events(&self, _: &Viewer, after: u64, limit: u32, filter: &EventFilter) -> EventsPage {
        let events: Vec<EventInfo> = self
            .inner
            .read()
            .events
            .iter()
            // Event `seq` is at index seq - 1: start after `after` without a scan.
            .skip(usize::try_from(after).unwrap_or(usize::MAX))
            .map(|(e, _)| e)
            .filter(|e| e.seq > after && filter.matches(e))
            .take(limit as usize)
            .cloned()
            .collect();
        let through = match events.last() {
            Some(e) if events.len() == limit as usize => e.seq,
            // Looked at everything there is.
            _ => self.head().max(after),
        };
        EventsPage { events, through }
    }

    fn seq_at_time(&self, time_ns: i64) -> u64 {
        self.inner
            .read()
            .events
            .iter()
            .take_while(|(e, _)| e.time_ns <= time_ns)
            .last()
            .map_or(0, |(e, _)| e.seq)
    }

    fn stat_at(&self, _: &Viewer, path: &str, seq: u64) -> Result<ViewAttrs, ViewError> {
        let (node, mtime_ns) = self.node(path, seq)?;
        let size = match &node {
            Node::File(data) => data.len() as u64,
            Node::Dir => 0,
            Node::Symlink(target) => target.len() as u64,
        };
        Ok(ViewAttrs {
            kind: kind(&node),
            size,
            mtime_ns,
            perm: if matches!(node, Node::Dir) {
                0o755
            } else {
                0o644
            },
            writable: true,
            caching: Caching::Volatile,
            owner: None,
        })
    }

    fn list_at(&self, _: &Viewer, path: &str, seq: u64) -> Result<Vec<ViewDirEntry>, ViewError> {
        let tree = self.tree(seq);
        match tree.get(path) {
            None => return Err(ViewError::NotFound),
            Some((Node::Dir, _)) => {}
            Some(_) => return Err(ViewError::NotADirectory),
        }
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        Ok(tree
            .iter()
            .filter_map(|(p, (node, _))| {
                let rest = p.strip_prefix(&prefix)?;
                (!rest.is_empty() && !rest.contains('/')).then(|| ViewDirEntry {
                    name: rest.to_owned(),
                    kind: kind(node),
                })
            })
            .collect())
    }

    fn read_at(
        &self,
        _: &Viewer,
        path: &str,
        seq: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ViewError> {
        match self.node(path, seq)?.0 {
            Node::File(data) => {
                let start = (offset as usize).min(data.len());
                let end = start.saturating_add(len as usize).min(data.len());
                Ok(data[start..end].to_vec())
            }
            Node::Dir => Err(ViewError::IsADirectory),
            Node::Symlink(_) => Err(ViewError::Invalid("a symlink".into())),
        }
    }

    fn readlink_at(&self, _: &Viewer, path: &str, seq: u64) -> Result<String, ViewError> {
        match self.node(path, seq)?.0 {
            Node::Symlink(target) => Ok(target),
            _ => Err(ViewError::Invalid("not a symlink".into())),
        }
    }

    fn hash_at(&self, _: &Viewer, path: &str, seq: u64) -> Result<String, ViewError> {
        match self.node(path, seq)?.0 {
            Node::File(data) => Ok(blake3::hash(&data).to_hex().to_string()),
            Node::Dir => Err(ViewError::IsADirectory),
            Node::Symlink(_) => Err(ViewError::Invalid("a symlink".into())),
        }
    }

    fn append(
        &self,
        view: &str,
        caller: &Caller,
        _: &Viewer,
        op: &str,
        path: &str,
        body: &str,
    ) -> Result<u64, ViewError> {
        let mut inner = self.inner.write();
        let seq = inner.events.len() as u64 + 1;
        let event = EventInfo {
            seq,
            time_ns: inner.now_ns,
            agent: caller.agent_name.map(String::from),
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            op: op.into(),
            path: path.into(),
            path2: None,
            size: None,
            hash: None,
            view: Some(view.into()),
            body: Some(body.into()),
        };
        inner.events.push((event, None));
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_directory_takes_what_is_in_it() {
        let store = MemoryStore::new(0);
        store.push(1, "mkdir", "/src", None, None);
        store.push(2, "mkdir", "/src/sub", None, None);
        store.push(3, "write", "/src/sub/a.rs", None, Some(b"fn a() {}"));
        let head = store.push(4, "rename", "/src", Some("/lib"), None);
        let viewer = store.viewer(&Caller::HOST);
        let names = |dir: &str| -> Vec<String> {
            let entries = store.list_at(&viewer, dir, head).unwrap();
            entries.into_iter().map(|e| e.name).collect()
        };
        assert_eq!(names("/"), ["lib"]);
        assert_eq!(names("/lib"), ["sub"]);
        assert_eq!(
            store
                .read_at(&viewer, "/lib/sub/a.rs", head, 0, 100)
                .unwrap(),
            b"fn a() {}"
        );
        // Nothing is left under the old name, to come back with a new /src.
        let again = store.push(5, "mkdir", "/src", None, None);
        assert!(store.list_at(&viewer, "/src", again).unwrap().is_empty());
    }
}
