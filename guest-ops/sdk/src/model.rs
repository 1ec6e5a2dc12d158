//! [`ModelStore`]: an in-memory event log that folds trees on demand — the store a view's
//! native unit tests run against (`cargo test` in guest-ops/, no host, no wasm).
//!
//! It understands the live tree's ops the way the host replays them (`mkdir`, `create`,
//! `write`, `symlink`, `rename` of files and directories, `link`, `unlink`, `rmdir`) and
//! records what a view appends. Every event is one second after the previous one.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::store_api::Store;
use crate::{attrs, Attrs, AuditRecord, Caching, DirEntry, Event, EventFilter, FsError, NodeKind};

const S: i64 = 1_000_000_000;

#[derive(Clone, Debug)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

#[derive(Default)]
struct Log {
    events: Vec<(Event, Option<Vec<u8>>)>,
    now_ns: i64,
    audit: Vec<AuditRecord>,
    /// Seq of the newest audit record (those before the kept ones may be forgotten).
    audit_head: u64,
}

/// The model store. Build a history with [`push`](Self::push) and its shorthands, then
/// hand `&model` to the view's logic (it implements [`Store`]).
pub struct ModelStore {
    log: RefCell<Log>,
    /// Who the events pushed or appended are attributed to.
    pub agent: Option<String>,
}

impl ModelStore {
    /// An empty log whose clock starts at `t0_ns`.
    pub fn new(t0_ns: i64) -> Self {
        ModelStore {
            log: RefCell::new(Log {
                events: Vec::new(),
                now_ns: t0_ns,
                audit: Vec::new(),
                audit_head: 0,
            }),
            agent: Some("model".into()),
        }
    }

    /// Appends an event one second after the clock (which moves to it); returns its seq.
    pub fn push(&self, op: &str, path: &str, path2: Option<&str>, data: Option<&[u8]>) -> u64 {
        let time_ns = self.log.borrow().now_ns + S;
        self.push_at(time_ns, op, path, path2, data)
    }

    /// Appends an event at `time_ns` (the clock moves to it if it is later); its seq.
    pub fn push_at(
        &self,
        time_ns: i64,
        op: &str,
        path: &str,
        path2: Option<&str>,
        data: Option<&[u8]>,
    ) -> u64 {
        let mut log = self.log.borrow_mut();
        log.now_ns = log.now_ns.max(time_ns);
        let seq = log.events.len() as u64 + 1;
        let event = Event {
            seq,
            time_ns,
            agent: self.agent.clone(),
            uid: 0,
            gid: 0,
            pid: 1,
            op: op.into(),
            path: path.into(),
            path2: path2.map(Into::into),
            size: data.map(|d| d.len() as u64),
            hash: data.filter(|d| !d.is_empty()).map(hash_hex),
            view: None,
            body: None,
        };
        log.events.push((event, data.map(<[u8]>::to_vec)));
        seq
    }

    /// Sets the host's clock (what `now_ns` answers).
    pub fn set_now(&self, now_ns: i64) {
        self.log.borrow_mut().now_ns = now_ns;
    }

    pub fn mkdir(&self, path: &str) -> u64 {
        self.push("mkdir", path, None, None)
    }
    /// New content of a file (created if missing).
    pub fn write(&self, path: &str, data: &[u8]) -> u64 {
        self.push("write", path, None, Some(data))
    }
    pub fn rename(&self, from: &str, to: &str) -> u64 {
        self.push("rename", from, Some(to), None)
    }
    pub fn unlink(&self, path: &str) -> u64 {
        self.push("unlink", path, None, None)
    }

    /// Moves the clock forward without an event.
    pub fn advance(&self, ns: i64) {
        self.log.borrow_mut().now_ns += ns;
    }

    /// Every event, in order (what views appended included).
    pub fn all_events(&self) -> Vec<Event> {
        self.log
            .borrow()
            .events
            .iter()
            .map(|(e, _)| e.clone())
            .collect()
    }

    fn tree(&self, seq: u64) -> BTreeMap<String, (Node, i64)> {
        let log = self.log.borrow();
        let mut tree = BTreeMap::new();
        tree.insert("/".to_string(), (Node::Dir, 0));
        for (e, data) in log.events.iter().take(seq as usize) {
            let t = e.time_ns;
            let path2 = || e.path2.clone().unwrap_or_default();
            match e.op.as_str() {
                "mkdir" => drop(tree.insert(e.path.clone(), (Node::Dir, t))),
                "create" | "mknod" => drop(tree.insert(e.path.clone(), (Node::File(vec![]), t))),
                "write" => {
                    let data = data.clone().unwrap_or_default();
                    tree.insert(e.path.clone(), (Node::File(data), t));
                }
                "symlink" => drop(tree.insert(e.path.clone(), (Node::Symlink(path2()), t))),
                "link" => {
                    if let Some(node) = tree.get(&e.path).cloned() {
                        tree.insert(path2(), node);
                    }
                }
                "unlink" | "rmdir" => drop(tree.remove(&e.path)),
                "rename" => {
                    let (from, to) = (e.path.clone(), path2());
                    let below = format!("{from}/");
                    let moved: Vec<String> = tree
                        .keys()
                        .filter(|p| **p == from || p.starts_with(&below))
                        .cloned()
                        .collect();
                    for p in moved {
                        let node = tree.remove(&p).expect("listed");
                        tree.insert(format!("{to}{}", &p[from.len()..]), node);
                    }
                }
                _ => {} // setattr and view events leave the tree as it is
            }
        }
        tree
    }

    /// Record an audited decision (as the host's policy would), numbered next, at the
    /// clock's time; returns its seq.
    pub fn push_audit(&self, agent: &str, op: &str, path: &str, outcome: &str) -> u64 {
        let mut log = self.log.borrow_mut();
        log.audit_head += 1;
        let seq = log.audit_head;
        let time_ns = log.now_ns;
        log.audit.push(AuditRecord {
            seq,
            time_ns,
            agent: agent.into(),
            uid: 1000,
            gid: 1000,
            pid: 4242,
            op: op.into(),
            path: path.into(),
            outcome: outcome.into(),
        });
        seq
    }

    /// Forget the audit records before `seq`, as the host does past its last 10,000.
    pub fn forget_audit_before(&self, seq: u64) {
        self.log.borrow_mut().audit.retain(|a| a.seq >= seq);
    }

    fn node(&self, path: &str, seq: u64) -> Result<(Node, i64), FsError> {
        self.tree(seq).get(path).cloned().ok_or(FsError::NotFound)
    }
}

/// Hex BLAKE3, as the host writes it.
pub fn hash_hex(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

impl Store for &ModelStore {
    fn head(&self) -> u64 {
        self.log.borrow().events.len() as u64
    }
    fn audit_head(&self) -> u64 {
        self.log.borrow().audit_head
    }
    fn audit(&self, after: u64, limit: u32) -> Vec<AuditRecord> {
        self.log
            .borrow()
            .audit
            .iter()
            .filter(|a| a.seq > after)
            .take(limit.min(4096) as usize)
            .cloned()
            .collect()
    }
    fn now_ns(&self) -> i64 {
        self.log.borrow().now_ns
    }
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> Vec<Event> {
        self.log
            .borrow()
            .events
            .iter()
            .map(|(e, _)| e)
            .filter(|e| e.seq > after && filter.matches(e))
            .take(limit.min(4096) as usize)
            .cloned()
            .collect()
    }
    fn seq_at_time(&self, time_ns: i64) -> u64 {
        let log = self.log.borrow();
        log.events
            .iter()
            .rfind(|(e, _)| e.time_ns <= time_ns)
            .map_or(0, |(e, _)| e.seq)
    }
    fn stat_at(&self, path: &str, seq: u64) -> Result<Attrs, FsError> {
        let (node, t) = self.node(path, seq)?;
        Ok(match node {
            Node::File(data) => Attrs {
                perm: 0o644,
                ..attrs::file(data.len() as u64, t, Caching::Volatile)
            },
            Node::Dir => Attrs {
                perm: 0o755,
                ..attrs::dir(t, Caching::Volatile)
            },
            Node::Symlink(target) => attrs::symlink(target.len() as u64, t, Caching::Volatile),
        })
    }
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<DirEntry>, FsError> {
        let tree = self.tree(seq);
        match tree.get(path).ok_or(FsError::NotFound)? {
            (Node::Dir, _) => {}
            _ => return Err(FsError::NotADirectory),
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(tree
            .iter()
            .filter_map(|(p, (node, _))| {
                let name = p.strip_prefix(&prefix)?;
                (!name.is_empty() && !name.contains('/')).then(|| {
                    let kind = match node {
                        Node::File(_) => NodeKind::File,
                        Node::Dir => NodeKind::Directory,
                        Node::Symlink(_) => NodeKind::Symlink,
                    };
                    attrs::entry(name, kind)
                })
            })
            .collect())
    }
    fn read_at(&self, path: &str, seq: u64, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match self.node(path, seq)?.0 {
            Node::File(data) => Ok(crate::slice_read(&data, offset, len)),
            Node::Dir => Err(FsError::IsADirectory),
            Node::Symlink(_) => Err(FsError::Invalid("a symlink".into())),
        }
    }
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        match self.node(path, seq)?.0 {
            Node::Symlink(target) => Ok(target),
            _ => Err(FsError::Invalid("not a symlink".into())),
        }
    }
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        match self.node(path, seq)?.0 {
            Node::File(data) => Ok(hash_hex(&data)),
            Node::Dir => Err(FsError::IsADirectory),
            Node::Symlink(_) => Err(FsError::Invalid("a symlink".into())),
        }
    }
    fn append(&self, op: &str, path: &str, body: &str) -> Result<u64, FsError> {
        let seq = self.push(op, path, None, None);
        let mut log = self.log.borrow_mut();
        let event = &mut log.events[seq as usize - 1].0;
        event.view = Some("model".into());
        event.body = Some(body.into());
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_renames_of_directories_and_records_appends() {
        let m = ModelStore::new(0);
        m.mkdir("/src");
        m.write("/src/a.rs", b"fn a() {}\n");
        let before = m.rename("/src", "/lib");
        let s = &m;
        assert_eq!(
            s.read_at("/lib/a.rs", before, 0, 100).unwrap(),
            b"fn a() {}\n"
        );
        assert_eq!(s.stat_at("/src/a.rs", before), Err(FsError::NotFound));
        assert_eq!(s.stat_at("/src/a.rs", before - 1).unwrap().size, 10);
        assert_eq!(
            s.hash_at("/lib/a.rs", before).unwrap(),
            hash_hex(b"fn a() {}\n")
        );

        let seq = s
            .append("annotate", "/lib/a.rs", "{\"text\":\"hi\"}")
            .unwrap();
        assert_eq!(seq, 4);
        let notes = s.events(0, 10, &EventFilter::under("/lib").ops(&["annotate"]));
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].body.as_deref(), Some("{\"text\":\"hi\"}"));
        // The rename is about /src and /lib; the write only about /src.
        let under_lib: Vec<u64> = s
            .events(0, 10, &EventFilter::under("/lib"))
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(under_lib, [3, 4]);
        assert_eq!(s.seq_at_time(2_500_000_000), 2);
    }
}
