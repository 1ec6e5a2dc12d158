//! [`ModelStore`]: an in-memory event log that folds trees on demand — the store a view's
//! native unit tests run against (`cargo test` in guest-ops/, no host, no wasm).
//!
//! It understands the live tree's ops the way the host replays them (`mkdir`, `create`,
//! `write`, `symlink`, `rename` of files and directories, `link`, `unlink`, `rmdir`) and
//! records what a view appends. Every event is one second after the previous one.
//!
//! Owners: a node belongs to the user of the event that made it ([`ModelStore::as_user`];
//! uid and gid 0 unless set), and keeps that owner through writes, renames and links;
//! `stat_at` answers it (the root: `None`, the mount's owner).
//!
//! A caller who may not see everything, as the host's store answers one (contract
//! 0.4.0): [`ModelStore::deny_dir`] marks a directory the caller may not list or search,
//! [`ModelStore::deny_read`] a file it may not read. The marks hold at every seq (the
//! host decides per point in time; tests need no more) and apply by path, not by node.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::store_api::{Store, AUDIT_KEPT};
use crate::{
    attrs, Attrs, AuditPage, AuditRecord, Caching, DirEntry, Event, EventFilter, EventsPage,
    FsError, NodeKind, Owner,
};

const S: i64 = 1_000_000_000;

#[derive(Clone, Debug)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

/// A node of a folded tree: what it is, when it last changed, who owns it.
#[derive(Clone, Debug)]
struct Entry {
    node: Node,
    mtime_ns: i64,
    owner: Option<Owner>,
}

struct Log {
    events: Vec<(Event, Option<Vec<u8>>)>,
    now_ns: i64,
    audit: Vec<AuditRecord>,
    /// Seq of the newest audit record (the host keeps only the last [`AUDIT_KEPT`]).
    audit_head: u64,
    /// Who the events pushed from now on are made by.
    user: Owner,
    /// How many events (or audit records) one page looks at, at most.
    scan: Option<usize>,
}

/// What the caller the model answers for may not see.
#[derive(Default)]
struct Denied {
    /// Directories it may not list or search: listing them and every tree read below
    /// them is `PermissionDenied`, and events naming a path below them are hidden.
    dirs: BTreeSet<String>,
    /// Files it may not read: `read_at` and `hash_at` are `PermissionDenied`, and their
    /// write events carry no hash.
    files: BTreeSet<String>,
}

/// The model store. Build a history with [`push`](Self::push) and its shorthands, then
/// hand `&model` to the view's logic (it implements [`Store`]).
pub struct ModelStore {
    log: RefCell<Log>,
    denied: RefCell<Denied>,
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
                user: Owner { uid: 0, gid: 0 },
                scan: None,
            }),
            denied: RefCell::new(Denied::default()),
            agent: Some("model".into()),
        }
    }

    /// The events pushed from now on are made by `uid`/`gid` (what they create is theirs).
    pub fn as_user(&self, uid: u32, gid: u32) {
        self.log.borrow_mut().user = Owner { uid, gid };
    }

    /// Each page of `events` and `audit` looks at no more than `n` entries of the log
    /// (as a host bounding one call's work may): a page of hidden or filtered entries
    /// then comes back empty with `through` short of the head, which a view must
    /// follow rather than take for the end.
    pub fn scan_at_most(&self, n: usize) {
        self.log.borrow_mut().scan = Some(n.max(1));
    }

    /// The caller may not list or search directory `dir` (say, mode 0o700 of another
    /// user): `list_at(dir)` and every tree read of a path below it answer
    /// `PermissionDenied` (`stat_at(dir)` itself still answers, as its parent is
    /// listable), and events naming a path below it (as `path`, or as a rename or link
    /// destination) are left out of pages, `through` passing over them.
    pub fn deny_dir(&self, dir: &str) {
        self.denied.borrow_mut().dirs.insert(dir.to_string());
    }

    /// The caller may not read file `path` (say, mode 0o600 of another user): `read_at`
    /// and `hash_at` answer `PermissionDenied`, its write events carry no hash; its name,
    /// size and events are still seen.
    pub fn deny_read(&self, path: &str) {
        self.denied.borrow_mut().files.insert(path.to_string());
    }

    /// Whether `path` is below a directory the caller may not search.
    fn below_denied(&self, path: &str) -> bool {
        self.denied
            .borrow()
            .dirs
            .iter()
            .any(|d| path.starts_with(d.as_str()) && is_below(path, d))
    }

    /// `PermissionDenied` for a tree read of `path` below a denied directory.
    fn reach(&self, path: &str) -> Result<(), FsError> {
        if self.below_denied(path) {
            Err(FsError::PermissionDenied)
        } else {
            Ok(())
        }
    }

    /// Whether the caller may read file `path`'s content.
    fn may_read(&self, path: &str) -> bool {
        !self.below_denied(path) && !self.denied.borrow().files.contains(path)
    }

    /// Whether the caller sees `event`: every path it names is in a directory it may list.
    fn sees(&self, event: &Event) -> bool {
        let path2_hidden = crate::path2_is_a_path(&event.op)
            && event.path2.as_deref().is_some_and(|p| self.below_denied(p));
        !self.below_denied(&event.path) && !path2_hidden
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
            uid: log.user.uid,
            gid: log.user.gid,
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

    fn tree(&self, seq: u64) -> BTreeMap<String, Entry> {
        let log = self.log.borrow();
        let mut tree = BTreeMap::new();
        let root = Entry {
            node: Node::Dir,
            mtime_ns: 0,
            owner: None,
        };
        tree.insert("/".to_string(), root);
        for (e, data) in log.events.iter().take(seq as usize) {
            let owner = Some(Owner {
                uid: e.uid,
                gid: e.gid,
            });
            let new = |node| Entry {
                node,
                mtime_ns: e.time_ns,
                owner,
            };
            let path2 = || e.path2.clone().unwrap_or_default();
            match e.op.as_str() {
                "mkdir" => drop(tree.insert(e.path.clone(), new(Node::Dir))),
                "create" | "mknod" => drop(tree.insert(e.path.clone(), new(Node::File(vec![])))),
                "write" => {
                    let data = Node::File(data.clone().unwrap_or_default());
                    // A write to an existing file keeps its owner.
                    let owner = tree.get(&e.path).map_or(owner, |old: &Entry| old.owner);
                    tree.insert(e.path.clone(), Entry { owner, ..new(data) });
                }
                "symlink" => drop(tree.insert(e.path.clone(), new(Node::Symlink(path2())))),
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
    /// Only the last [`AUDIT_KEPT`] are kept, as the host keeps them.
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
        let kept_from = seq.saturating_sub(AUDIT_KEPT);
        log.audit.retain(|a| a.seq > kept_from);
        seq
    }

    /// The node at `path` after `seq`, once the caller may reach it.
    fn node(&self, path: &str, seq: u64) -> Result<Entry, FsError> {
        self.reach(path)?;
        self.tree(seq).get(path).cloned().ok_or(FsError::NotFound)
    }

    /// `PermissionDenied` for the content of a file the caller may not read.
    fn content(&self, path: &str, seq: u64) -> Result<Node, FsError> {
        let node = self.node(path, seq)?.node;
        match node {
            Node::File(_) if !self.may_read(path) => Err(FsError::PermissionDenied),
            node => Ok(node),
        }
    }
}

/// Whether `path` is strictly below directory `dir`.
fn is_below(path: &str, dir: &str) -> bool {
    if dir == "/" {
        return path != "/";
    }
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// One page as the host answers it: up to `limit` (capped at 4096) of `items` (those
/// after `after`, in order) that `shown` lets through, and how far it looked: the last
/// one returned when the page filled up, the last one looked at when it may look at no
/// more than `scan`, else `end` (everything there is).
fn page<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    seq: impl Fn(&T) -> u64,
    shown: impl Fn(&T) -> bool,
    limit: u32,
    scan: Option<usize>,
    end: u64,
) -> (Vec<&'a T>, u64) {
    let limit = limit.clamp(1, 4096) as usize;
    let mut out = Vec::new();
    for (looked, item) in items.enumerate() {
        if scan == Some(looked) {
            return (out, seq(item) - 1);
        }
        if shown(item) {
            out.push(item);
            if out.len() == limit {
                return (out, seq(item));
            }
        }
    }
    (out, end)
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
    fn audit(&self, after: u64, limit: u32) -> AuditPage {
        let log = self.log.borrow();
        // A record names a path of the mount (/current/a/b): hidden below a denied dir.
        let sees = |a: &AuditRecord| {
            let live = a.path.strip_prefix("/current").unwrap_or(&a.path);
            live.is_empty() || !self.below_denied(live)
        };
        let (records, through) = page(
            log.audit.iter().filter(|a| a.seq > after),
            |a| a.seq,
            sees,
            limit,
            log.scan,
            after.max(log.audit_head),
        );
        AuditPage {
            records: records.into_iter().cloned().collect(),
            through,
        }
    }
    fn now_ns(&self) -> i64 {
        self.log.borrow().now_ns
    }
    fn events(&self, after: u64, limit: u32, filter: &EventFilter) -> EventsPage {
        let log = self.log.borrow();
        let (events, through) = page(
            log.events.iter().map(|(e, _)| e).filter(|e| e.seq > after),
            |e| e.seq,
            |e| filter.matches(e) && self.sees(e),
            limit,
            log.scan,
            after.max(log.events.len() as u64),
        );
        let events = events
            .into_iter()
            .map(|e| {
                let mut e = e.clone();
                if e.op == "write" && !self.may_read(&e.path) {
                    e.hash = None;
                }
                e
            })
            .collect();
        EventsPage { events, through }
    }
    fn seq_at_time(&self, time_ns: i64) -> u64 {
        let log = self.log.borrow();
        log.events
            .iter()
            .rfind(|(e, _)| e.time_ns <= time_ns)
            .map_or(0, |(e, _)| e.seq)
    }
    fn stat_at(&self, path: &str, seq: u64) -> Result<Attrs, FsError> {
        let Entry {
            node,
            mtime_ns: t,
            owner,
        } = self.node(path, seq)?;
        let attrs = match node {
            Node::File(data) => Attrs {
                perm: 0o644,
                ..attrs::file(data.len() as u64, t, Caching::Volatile)
            },
            Node::Dir => Attrs {
                perm: 0o755,
                ..attrs::dir(t, Caching::Volatile)
            },
            Node::Symlink(target) => attrs::symlink(target.len() as u64, t, Caching::Volatile),
        };
        Ok(attrs::with_owner(attrs, owner))
    }
    fn list_at(&self, path: &str, seq: u64) -> Result<Vec<DirEntry>, FsError> {
        self.reach(path)?;
        let tree = self.tree(seq);
        match tree.get(path).ok_or(FsError::NotFound)?.node {
            Node::Dir => {}
            _ => return Err(FsError::NotADirectory),
        }
        if self.denied.borrow().dirs.contains(path) {
            return Err(FsError::PermissionDenied);
        }
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        Ok(tree
            .iter()
            .filter_map(|(p, entry)| {
                let name = p.strip_prefix(&prefix)?;
                (!name.is_empty() && !name.contains('/')).then(|| {
                    let kind = match entry.node {
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
        match self.content(path, seq)? {
            Node::File(data) => Ok(crate::slice_read(&data, offset, len)),
            Node::Dir => Err(FsError::IsADirectory),
            Node::Symlink(_) => Err(FsError::Invalid("a symlink".into())),
        }
    }
    fn readlink_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        match self.node(path, seq)?.node {
            Node::Symlink(target) => Ok(target),
            _ => Err(FsError::Invalid("not a symlink".into())),
        }
    }
    fn hash_at(&self, path: &str, seq: u64) -> Result<String, FsError> {
        match self.content(path, seq)? {
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
        let notes = s
            .events(0, 10, &EventFilter::under("/lib").ops(&["annotate"]))
            .events;
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].body.as_deref(), Some("{\"text\":\"hi\"}"));
        // The rename is about /src and /lib; the write only about /src.
        let under_lib: Vec<u64> = s
            .events(0, 10, &EventFilter::under("/lib"))
            .events
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(under_lib, [3, 4]);
        assert_eq!(s.seq_at_time(2_500_000_000), 2);
    }

    fn seqs(events: &[Event]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn nodes_keep_the_owner_that_made_them() {
        let m = ModelStore::new(0);
        m.as_user(1000, 100);
        m.mkdir("/home");
        m.write("/home/a", b"1");
        m.as_user(2000, 200);
        m.write("/home/a", b"2"); // a write keeps the owner
        m.write("/home/b", b"3");
        let head = m.rename("/home/a", "/home/c");
        let s = &m;
        let owner = |p: &str| s.stat_at(p, head).unwrap().owner;
        assert_eq!(owner("/"), None);
        assert_eq!(
            owner("/home"),
            Some(Owner {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(
            owner("/home/c"),
            Some(Owner {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(
            owner("/home/b"),
            Some(Owner {
                uid: 2000,
                gid: 200
            })
        );
        assert_eq!(s.all_events()[3].uid, 2000);
    }

    #[test]
    fn a_denied_directory_hides_what_is_below_it() {
        let m = ModelStore::new(0);
        m.mkdir("/pub");
        m.mkdir("/private");
        m.write("/private/key", b"k");
        m.write("/pub/a", b"a");
        m.rename("/private/key", "/pub/key"); // names a hidden path: hidden
        let head = m.write("/pub/b", b"b");
        m.deny_dir("/private");
        let s = &m;
        assert!(s.stat_at("/private", head).is_ok());
        assert_eq!(s.list_at("/private", head), Err(FsError::PermissionDenied));
        assert_eq!(s.stat_at("/private/key", 3), Err(FsError::PermissionDenied));
        assert_eq!(
            s.read_at("/private/key", 3, 0, 9),
            Err(FsError::PermissionDenied)
        );
        assert_eq!(
            s.stat_at("/private/nothing", 3),
            Err(FsError::PermissionDenied)
        );
        // Pages leave the hidden events out and say how far they looked.
        let page = s.events(0, 10, &EventFilter::all());
        assert_eq!(seqs(&page.events), [1, 2, 4, 6]);
        assert_eq!(page.through, 6);
        let page = s.events(2, 1, &EventFilter::all());
        assert_eq!((seqs(&page.events), page.through), (vec![4], 4));
        let page = s.events(4, 1, &EventFilter::under("/private"));
        assert_eq!((seqs(&page.events), page.through), (vec![], 6));
        let page = s.events(6, 10, &EventFilter::all());
        assert_eq!((page.events.len(), page.through), (0, 6));
    }

    #[test]
    fn an_unreadable_file_is_seen_without_its_content() {
        let m = ModelStore::new(0);
        let seq = m.write("/secret", b"s");
        m.deny_read("/secret");
        let s = &m;
        assert_eq!(s.stat_at("/secret", seq).unwrap().size, 1);
        assert_eq!(
            s.read_at("/secret", seq, 0, 1),
            Err(FsError::PermissionDenied)
        );
        assert_eq!(s.hash_at("/secret", seq), Err(FsError::PermissionDenied));
        let page = s.events(0, 10, &EventFilter::all());
        assert_eq!(page.events[0].hash, None);
        assert_eq!(page.events[0].size, Some(1));
        assert!(m.all_events()[0].hash.is_some());
    }

    #[test]
    fn events_after_follows_through_past_hidden_events() {
        let m = ModelStore::new(0);
        m.mkdir("/private");
        for i in 0..10 {
            m.write(&format!("/private/{i}"), b"x");
        }
        let last = m.write("/seen", b"y");
        m.deny_dir("/private");
        let s = &m;
        // Pages of 3: the first holds seq 1, then only hidden events until seq 12.
        let mut it = s.events_after(0, &EventFilter::all()).page_size(3);
        assert_eq!(it.next().map(|e| e.seq), Some(1));
        assert_eq!(it.next().map(|e| e.seq), Some(last));
        assert_eq!(it.next(), None);
        assert_eq!(it.cursor(), last);
        // Bounded work: two pages look as far as the second page's through.
        let mut it = s
            .events_after(1, &EventFilter::all())
            .page_size(1)
            .max_pages(2);
        assert_eq!(it.next().map(|e| e.seq), Some(last));
        assert_eq!(it.cursor(), last);
        let mut it = s
            .events_after(0, &EventFilter::under("/private"))
            .page_size(4)
            .max_pages(1);
        assert_eq!(it.next().map(|e| e.seq), Some(1));
        assert_eq!(it.next(), None);
        assert_eq!(
            it.cursor(),
            last,
            "the hidden events are not asked for again"
        );
    }

    #[test]
    fn audit_pages_hide_and_forget_as_the_host_does() {
        let m = ModelStore::new(0);
        m.deny_dir("/private");
        m.push_audit("a", "open", "/current/private/x", "denied: no");
        m.push_audit("a", "open", "/current/pub/x", "denied: no");
        m.push_audit("a", "open", "/.auth", "bound: a");
        let s = &m;
        let page = s.audit(0, 10);
        let seqs: Vec<u64> = page.records.iter().map(|r| r.seq).collect();
        assert_eq!((seqs, page.through), (vec![2, 3], 3));
        let all: Vec<u64> = s.audit_after(0).map(|r| r.seq).collect();
        assert_eq!(all, [2, 3]);
        for _ in 0..AUDIT_KEPT {
            m.push_audit("a", "open", "/.auth", "bound: a");
        }
        assert_eq!(s.audit(0, 1).records[0].seq, 4);
    }
}
