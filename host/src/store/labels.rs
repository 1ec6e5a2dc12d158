//! Who may see each event of the log, by the mode bits of the tree as it was right after
//! the event: a [`Label`] per event.
//!
//! An event names paths of the live tree. A caller may see it if it could have listed the
//! directory of each of those paths at that moment (search permission on every directory
//! above, read permission on the parent), and what it says of the content (a write's
//! hash, an attribute's value, an annotation) if it could also have read the node. The
//! store keeps its own copy of the tree, moved on by every event it appends, so each
//! label is exact for its point of the log, costs a walk up a few directories when the
//! event is made, and never a fold of the log when it is read. Labels are interned: a
//! project has few distinct chains of owners and modes, so a caller's verdicts can be
//! kept per label (see `core::sight`).

use std::sync::Arc;

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::event::Change;
use super::projection::Tree;
use crate::vocab::{FileKind, CURRENT_INO};

/// Read permission, as in the mode bits of one class.
pub const R: u8 = 4;
/// Search (execute) permission.
pub const X: u8 = 1;

/// One mode check: a caller passes if the class of these bits that applies to it (owner,
/// else group, else other) has every bit of `need`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grant {
    pub uid: u32,
    pub gid: u32,
    /// The node's permission bits (0o777 of its mode).
    pub perm: u16,
    /// [`R`], [`X`] or both.
    pub need: u8,
}

impl Grant {
    fn of(attr: &crate::vocab::Attr, need: u8) -> Grant {
        Grant {
            uid: attr.uid,
            gid: attr.gid,
            perm: (attr.perm & 0o777) as u16,
            need,
        }
    }

    /// Passes for every caller (owner, group and other bits all grant `need`).
    pub fn is_public(&self) -> bool {
        let need = u16::from(self.need);
        [6, 3, 0]
            .iter()
            .all(|shift| (self.perm >> shift) & need == need)
    }
}

/// A check that no caller but root passes: for events the index never saw (seqs are dense
/// in a log that replays; if one were missing, hiding is the safe answer).
const NOBODY: Grant = Grant {
    uid: u32::MAX,
    gid: u32::MAX,
    perm: 0,
    need: R,
};

/// What a caller must pass to see one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    /// To see the event at all: list the directory of every path it names.
    pub name: Box<[Grant]>,
    /// To see what it says of the content as well: `name` and read the node.
    pub content: Box<[Grant]>,
    /// What it says of the content comes from a file of the tree (a write's hash, an
    /// attribute, an annotation of a file): under a policy it also needs what reading
    /// the tree needs. (A view's event about a path that is no file, a context manifest,
    /// is the view's own data.)
    pub content_of_file: bool,
}

impl Label {
    fn new(mut name: Vec<Grant>, mut content: Vec<Grant>, content_of_file: bool) -> Label {
        content.extend_from_slice(&name);
        for set in [&mut name, &mut content] {
            set.sort_unstable();
            set.dedup();
        }
        Label {
            name: name.into(),
            content: content.into(),
            content_of_file,
        }
    }
}

/// What a check of one path asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Look it up (`stat`, `readlink`): search on every directory above.
    Reach,
    /// See its name in its directory's listing: also read on the parent.
    Name,
    /// List it (a directory): search above, read on it.
    List,
    /// Read its bytes: search above, read on it.
    Read,
}

/// The checks `need` makes of `path` in `tree`, as a path walk makes them: a path that is
/// not there (or runs into a file) is checked as far as it goes, so that being told it is
/// missing needs the same rights as finding it (no probing of names in a directory one
/// may not search). For [`Need::Name`] the deepest directory there must be listable: an
/// event may name a path that is gone by now; who could list where it was may see it.
pub fn grants_in(tree: &Tree, path: &str, need: Need) -> Vec<Grant> {
    let mut grants = Vec::with_capacity(8);
    let mut at = CURRENT_INO;
    let mut names = path.split('/').filter(|c| !c.is_empty()).peekable();
    while let Ok(node) = tree.node(at) {
        let Some(name) = names.next() else {
            // `at` is the node itself.
            let own = node_need(need, node.attr.kind);
            if own != 0 {
                grants.push(Grant::of(&node.attr, own));
            }
            break;
        };
        if node.attr.kind != FileKind::Dir {
            break;
        }
        let child = tree.child(at, name).ok().flatten();
        let listed = need == Need::Name && (names.peek().is_none() || child.is_none());
        grants.push(Grant::of(&node.attr, if listed { R | X } else { X }));
        match child {
            Some(child) => at = child,
            None => break,
        }
    }
    grants
}

/// What the node itself must grant: read for its bytes or its names (and, for what a
/// view says of a whole directory, search too: its entries' attributes).
fn node_need(need: Need, kind: FileKind) -> u8 {
    match (need, kind) {
        (Need::Reach | Need::Name, _) => 0,
        (Need::List, _) => R,
        (Need::Read, FileKind::Dir) => R | X,
        (Need::Read, _) => R,
    }
}

/// The label of `change`, in `tree` as it is right after it.
pub fn label_of(tree: &Tree, change: &Change) -> Label {
    let mut name = grants_in(tree, change.path(), Need::Name);
    let mut content = Vec::new();
    let is_file = |path: &str| {
        tree.resolve(path)
            .and_then(|ino| tree.node(ino))
            .is_ok_and(|n| n.attr.kind == FileKind::File)
    };
    let mut content_of_file = false;
    match change {
        Change::Rename { to, .. } | Change::Link { to, .. } => {
            name.extend(grants_in(tree, to, Need::Name))
        }
        // What the event says of the node (a hash, an attribute, an annotation) needs it
        // readable too.
        Change::Write { path, .. }
        | Change::SetXattr { path, .. }
        | Change::RemoveXattr { path, .. }
        | Change::View { path, .. } => {
            content = grants_in(tree, path, Need::Read);
            content_of_file = !matches!(change, Change::View { .. }) || is_file(path);
        }
        _ => {}
    }
    Label::new(name, content, content_of_file)
}

/// Label ids by seq, with the tree they are computed in.
pub struct Labels {
    inner: RwLock<Inner>,
}

struct Inner {
    /// The tree after the newest labelled event.
    tree: Tree,
    /// Label ids of events `first`, `first + 1`, …
    first: u64,
    by_seq: Vec<u32>,
    ids: FxHashMap<Arc<Label>, u32>,
    labels: Vec<Arc<Label>>,
}

impl Inner {
    fn intern(&mut self, label: Label) -> u32 {
        if let Some(&id) = self.ids.get(&label) {
            return id;
        }
        let id = self.labels.len() as u32;
        let label = Arc::new(label);
        self.labels.push(label.clone());
        self.ids.insert(label, id);
        id
    }

    fn push(&mut self, seq: u64, id: u32) {
        let next = self.first + self.by_seq.len() as u64;
        if seq < next {
            return;
        }
        // Seqs are dense; a gap would be events this index never saw: nobody sees them.
        if seq > next {
            let hidden = self.intern(Label::new(vec![NOBODY], Vec::new(), false));
            self.by_seq.resize((seq - self.first) as usize, hidden);
        }
        self.by_seq.push(id);
    }
}

impl Labels {
    /// An index that continues after `head`, in `tree` (the tree after `head`), with the
    /// labels of events `1..=head` computed during the replay that built it.
    pub fn new(tree: Tree, replayed: Vec<(u64, Label)>) -> Labels {
        let mut inner = Inner {
            tree,
            first: 1,
            by_seq: Vec::with_capacity(replayed.len()),
            ids: FxHashMap::default(),
            labels: Vec::new(),
        };
        for (seq, label) in replayed {
            let id = inner.intern(label);
            inner.push(seq, id);
        }
        Labels {
            inner: RwLock::new(inner),
        }
    }

    /// Appends `change` to the log with `append` (which returns its seq), then moves the
    /// tree on and labels it, all under this index's lock: labels follow the log's order
    /// even when views append beside the live tree's changes.
    pub fn append<E>(
        &self,
        time: crate::vocab::TimeNs,
        change: Change,
        append: impl FnOnce(Change) -> Result<u64, E>,
    ) -> Result<u64, E> {
        let mut inner = self.inner.write();
        let seq = append(change.clone())?;
        if let Err(e) = inner.tree.apply(&change, time) {
            // The live tree took this change; a copy that does not is a bug, and hiding
            // what it would label is the safe answer.
            tracing::error!(seq, error = %e, "the labels' tree does not take an event");
        }
        let label = label_of(&inner.tree, &change);
        let id = inner.intern(label);
        inner.push(seq, id);
        Ok(seq)
    }

    /// Another writer's event `e`, read back from a shared log: moves the tree on and
    /// labels it, unless it is labelled already (events come in the log's order).
    pub fn fold(&self, e: &super::Event) {
        let mut inner = self.inner.write();
        if e.seq < inner.first + inner.by_seq.len() as u64 {
            return;
        }
        if let Err(err) = inner.tree.apply(&e.change, e.time) {
            tracing::error!(seq = e.seq, error = %err, "the labels' tree does not take an event");
        }
        let label = label_of(&inner.tree, &e.change);
        let id = inner.intern(label);
        inner.push(e.seq, id);
    }

    /// The newest labelled seq (0: none).
    pub fn head(&self) -> u64 {
        let inner = self.inner.read();
        inner.first + inner.by_seq.len() as u64 - 1
    }

    /// The label id of each seq (`None` past the newest).
    pub fn ids(&self, seqs: impl IntoIterator<Item = u64>) -> Vec<Option<u32>> {
        let inner = self.inner.read();
        seqs.into_iter()
            .map(|seq| {
                seq.checked_sub(inner.first)
                    .and_then(|i| inner.by_seq.get(i as usize).copied())
            })
            .collect()
    }

    /// The label of id `id`.
    pub fn label(&self, id: u32) -> Option<Arc<Label>> {
        self.inner.read().labels.get(id as usize).cloned()
    }

    /// How many distinct labels there are (a caller's verdicts are kept per label).
    pub fn distinct(&self) -> usize {
        self.inner.read().labels.len()
    }

    /// The checks `need` makes of `path` in the tree as it is now (audit records name
    /// paths of the live tree, and have no point of the log of their own).
    pub fn grants_now(&self, path: &str, need: Need) -> Vec<Grant> {
        grants_in(&self.inner.read().tree, path, need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sight::Creds;
    use crate::vocab::{FileKind, RenameFlags};

    fn create(path: &str, kind: FileKind, perm: u32, uid: u32) -> Change {
        Change::Create {
            path: path.into(),
            kind,
            perm,
            uid,
            gid: uid,
            rdev: 0,
        }
    }

    fn creds(uid: u32) -> Creds {
        Creds {
            uid,
            gid: uid,
            groups: Arc::from([]),
        }
    }

    /// What `uid` may see of the event `change` once applied to `tree`.
    fn seen(tree: &mut Tree, change: Change, uid: u32) -> (bool, bool) {
        tree.apply(&change, 1).unwrap();
        let label = label_of(tree, &change);
        let c = creds(uid);
        let name = label.name.iter().all(|g| c.passes(g));
        (name, name && label.content.iter().all(|g| c.passes(g)))
    }

    #[test]
    fn an_event_is_seen_by_who_could_list_its_directory_then() {
        let mut tree = Tree::new(0, 0, 0);
        let owner = 1000;
        let other = 1001;
        let mut at = |change, uid| seen(&mut tree, change, uid);
        // A private directory: its events are its owner's (and root's).
        assert_eq!(
            at(create("/priv", FileKind::Dir, 0o700, owner), other),
            (true, true)
        );
        let write = |path: &str| Change::Write {
            path: path.into(),
            hash: None,
            size: 3,
            mtime: 1,
        };
        assert_eq!(
            at(create("/priv/s", FileKind::File, 0o644, owner), other),
            (false, false)
        );
        assert_eq!(at(write("/priv/s"), owner), (true, true));
        assert_eq!(at(write("/priv/s"), other), (false, false));
        assert_eq!(at(write("/priv/s"), 0), (true, true));
        // A public directory with a private file: the event, not its hash.
        at(create("/pub", FileKind::Dir, 0o755, owner), owner);
        at(create("/pub/locked", FileKind::File, 0o600, owner), owner);
        assert_eq!(at(write("/pub/locked"), other), (true, false));
        // Moved out of sight: a rename names both places.
        assert_eq!(
            at(
                Change::Rename {
                    from: "/pub/locked".into(),
                    to: "/priv/locked".into(),
                    flags: RenameFlags::from_raw(0).unwrap(),
                },
                other
            ),
            (false, false)
        );
        // Gone: who could list where it was sees the unlink.
        assert_eq!(
            at(
                Change::Unlink {
                    path: "/priv/locked".into()
                },
                other
            ),
            (false, false)
        );
        assert_eq!(
            at(
                Change::Unlink {
                    path: "/priv/s".into()
                },
                owner
            ),
            (true, true)
        );
        // The directory opened up: what happens in it from now on is seen.
        at(
            Change::SetAttr {
                path: "/priv".into(),
                perm: Some(0o755),
                uid: None,
                gid: None,
                atime: None,
                mtime: None,
            },
            owner,
        );
        assert_eq!(
            at(create("/priv/new", FileKind::File, 0o644, owner), other),
            (true, true)
        );
    }

    #[test]
    fn a_missing_path_is_checked_as_far_as_it_goes() {
        let mut tree = Tree::new(0, 0, 0);
        tree.apply(&create("/priv", FileKind::Dir, 0o711, 1000), 1)
            .unwrap();
        // Search only: a name below may be reached, not listed.
        let reach = grants_in(&tree, "/priv/nothing/deeper", Need::Reach);
        let name = grants_in(&tree, "/priv/nothing", Need::Name);
        let other = creds(1001);
        assert!(reach.iter().all(|g| other.passes(g)));
        assert!(!name.iter().all(|g| other.passes(g)));
        // Through a file: as far as the file.
        tree.apply(&create("/f", FileKind::File, 0o600, 1000), 1)
            .unwrap();
        let through = grants_in(&tree, "/f/x", Need::Read);
        assert!(through.iter().all(|g| other.passes(g)), "{through:?}");
        assert!(!grants_in(&tree, "/f", Need::Read)
            .iter()
            .all(|g| other.passes(g)));
    }

    #[test]
    fn labels_follow_the_log_and_are_shared() {
        let labels = Labels::new(Tree::new(0, 0, 0), Vec::new());
        let mut seq = 0;
        let mut append = |change: Change| {
            labels
                .append(1, change, |_| {
                    seq += 1;
                    Ok::<_, ()>(seq)
                })
                .unwrap()
        };
        append(create("/a", FileKind::Dir, 0o755, 0));
        for i in 0..50 {
            append(create(&format!("/a/{i}"), FileKind::File, 0o644, 0));
        }
        let ids = labels.ids([1, 2, 51, 52]);
        assert_eq!(ids[1], ids[2], "one label for the same chain of modes");
        assert_eq!(ids[3], None, "no event 52 yet");
        assert!(labels.distinct() <= 3, "{}", labels.distinct());
    }
}
