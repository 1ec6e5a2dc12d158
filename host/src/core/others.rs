//! Other writers of a shared store (several hosts on one PostgreSQL database): every
//! change of the live tree is made under the log's write turn, on a tree that has folded
//! every event before it ([`Fs::change_tree`]); between changes a follower thread folds
//! what the others append ([`Fs::follow_others`]), and an open of a live file folds it
//! first (close-to-open). Each event folded tells this host's kernels what it changed,
//! as a change through another mount does ([`super::mounts`]).
//!
//! With a store of one writer (the embedded store) none of this runs.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLockWriteGuard;

use super::{Fs, Ino, Stale};
use crate::store::{Change, Content, Event, Refusal, Tree};
use crate::vocab::{FsError, FsResult};

/// How long the follower waits for a notification before it looks anyway (a missed
/// notification, a listener that reconnected).
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// The live tree, write-locked for a change, with the store's write turn held and every
/// event before it folded in. On drop: the tree unlocked, the turn ended, the kernels
/// told what the folded events changed.
pub(super) struct TreeChange<'a> {
    fs: &'a Fs,
    tree: Option<RwLockWriteGuard<'a, Tree>>,
    turn: bool,
    stale: Vec<Stale>,
}

impl Deref for TreeChange<'_> {
    type Target = Tree;

    fn deref(&self) -> &Tree {
        self.tree.as_ref().expect("held until drop")
    }
}

impl DerefMut for TreeChange<'_> {
    fn deref_mut(&mut self) -> &mut Tree {
        self.tree.as_mut().expect("held until drop")
    }
}

impl Drop for TreeChange<'_> {
    fn drop(&mut self) {
        // The kernels are told with no lock held: one may wait on a request of its own.
        let folded = self.tree.as_ref().map(|t| t.folded());
        drop(self.tree.take());
        if self.turn {
            self.fs.store.end_change();
        }
        let stale = std::mem::take(&mut self.stale);
        self.fs.tell_others(0, stale);
        if let Some(folded) = folded {
            self.fs.told.fetch_max(folded, Ordering::AcqRel);
        }
    }
}

impl Fs {
    /// The live tree, to change: see [`TreeChange`].
    pub(super) fn change_tree(&self) -> FsResult<TreeChange<'_>> {
        if !self.store.shared() {
            return Ok(TreeChange {
                fs: self,
                tree: Some(self.tree.write()),
                turn: false,
                stale: Vec::new(),
            });
        }
        // The turn before the tree's lock: a database slow to answer (or a link cut)
        // holds up this change and the changes after it, never the lookups and reads
        // of what this host has.
        self.store.begin_change().map_err(|r| refused(&r))?;
        let mut change = TreeChange {
            fs: self,
            tree: None,
            turn: true,
            stale: Vec::new(),
        };
        let mut t = self.tree.write();
        change.stale = self.fold_others(&mut t)?;
        change.tree = Some(t);
        Ok(change)
    }

    /// Fold what other writers appended, now: the store learns of it, the tree folds
    /// it, the kernels are told. For a store of one writer, nothing.
    pub(super) fn catch_up_others(&self) -> FsResult<()> {
        if !self.store.shared() {
            return Ok(());
        }
        self.store
            .catch_up()
            .map_err(|e| FsError::with(libc::EIO, format!("reading the log: {e:#}")))?;
        self.fold_caught_up()
    }

    /// Fold into the tree what the store has learnt of and the tree lacks; tell the
    /// kernels.
    fn fold_caught_up(&self) -> FsResult<()> {
        let stale;
        let folded;
        {
            if self.store.head() <= self.tree.read().folded() {
                return Ok(());
            }
            let mut t = self.tree.write();
            stale = self.fold_others(&mut t)?;
            folded = t.folded();
        }
        self.tell_others(0, stale);
        self.told.fetch_max(folded, Ordering::AcqRel);
        Ok(())
    }

    /// Before an open (close-to-open): catch up with the other hosts, unless the
    /// database is known to be out of reach. Then what this host has is opened at
    /// once (the follower finds out when the database is back), not after a timeout.
    pub(super) fn catch_up_before_open(&self, ino: Ino) {
        if !self.store.shared() {
            return;
        }
        if let Some(why) = self.store.degraded() {
            tracing::debug!(reason = %why, "an open without catching up: the database is out of reach");
            return;
        }
        if let Err(e) = self.catch_up_others() {
            tracing::debug!(error = %e, "catching up with the other hosts before an open");
        }
        // A kernel that learnt of this file by a lookup answered just before the
        // follower folded a change to it missed the follower's word (it did not know
        // the inode yet) and would keep the old size for its attribute TTL: the size
        // is asked again after this open.
        if ino != super::ROOT_INO {
            self.tell_others(0, vec![Stale::attrs(ino)]);
        }
    }

    /// The newest event this host's live tree shows, its kernels told what it changed.
    pub fn shown_seq(&self) -> u64 {
        if self.store.shared() {
            self.told.load(Ordering::Acquire)
        } else {
            self.tree.read().folded()
        }
    }

    /// Start the thread that folds other writers' events as they come (a store of one
    /// writer needs none). It ends with the filesystem.
    pub fn follow_others(self: &Arc<Self>) {
        if !self.store.shared() {
            return;
        }
        let fs: Weak<Fs> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("follow-others".into())
            .spawn(move || loop {
                let Some(store) = fs.upgrade().map(|fs| fs.store.clone()) else {
                    return;
                };
                store.wait_others(FOLLOW_POLL);
                let Some(fs) = fs.upgrade() else { return };
                match fs.catch_up_others() {
                    // The database answers: what closed while it did not is committed.
                    Ok(()) if !fs.uncommitted.lock().is_empty() => {
                        let left = fs.commit_uncommitted();
                        tracing::info!(
                            left,
                            "committed files kept while the database was out of reach"
                        );
                    }
                    Ok(()) => {}
                    Err(e) => tracing::debug!(error = %e, "following the other hosts"),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "no follower thread ({e}): other hosts' changes show at this host's next change"
            );
        }
    }

    /// Fold the events after the tree's `folded` into it; what they made stale in the
    /// kernels.
    fn fold_others(&self, t: &mut Tree) -> FsResult<Vec<Stale>> {
        let mut stale = Vec::new();
        let from = t.folded();
        // Nothing new (the common case): no read at all.
        if self.store.head() <= from {
            return Ok(stale);
        }
        self.store
            .read(from, None, &mut |e| {
                stale.extend(fold_one(t, &e)?);
                Ok(())
            })
            .map_err(|e| FsError::with(libc::EIO, format!("folding the log: {e:#}")))?;
        Ok(stale)
    }
}

fn refused(r: &Refusal) -> FsError {
    FsError::with(r.errno(), r.to_string())
}

/// Fold event `e` into the tree; what it made stale in a kernel that cached the tree
/// before it.
fn fold_one(t: &mut Tree, e: &Event) -> anyhow::Result<Vec<Stale>> {
    let entry = |t: &Tree, path: &str| -> Option<(Ino, String)> {
        let (parent, name) = t.resolve_parent(path).ok()?;
        Some((parent, name.to_owned()))
    };
    let node = |t: &Tree, path: &str| t.resolve(path).ok();
    let mut stale = Vec::new();
    let names = |stale: &mut Vec<Stale>, at: Option<(Ino, String)>| {
        if let Some((parent, name)) = at {
            stale.extend(Stale::name(parent, &name));
        }
    };
    // What the event names, before it applies (a name it removes is gone after).
    match &e.change {
        Change::Unlink { path } | Change::Rmdir { path } => {
            stale.extend(node(t, path).map(Stale::attrs));
            names(&mut stale, entry(t, path));
        }
        Change::Rename { from, to, .. } => {
            stale.extend(node(t, from).map(Stale::attrs));
            stale.extend(node(t, to).map(Stale::attrs));
            names(&mut stale, entry(t, from));
            names(&mut stale, entry(t, to));
        }
        Change::Link { from, to } => {
            stale.extend(node(t, from).map(Stale::attrs));
            names(&mut stale, entry(t, to));
        }
        Change::Write { path, .. } => {
            if let Some(ino) = node(t, path) {
                stale.push(Stale::inode(ino));
                keep_open_version(t, ino);
            }
        }
        Change::SetAttr { path, .. }
        | Change::SetXattr { path, .. }
        | Change::RemoveXattr { path, .. } => stale.extend(node(t, path).map(Stale::attrs)),
        Change::Create { .. } | Change::Symlink { .. } | Change::View { .. } => {}
    }
    t.fold(e).map_err(|err| {
        anyhow::anyhow!(
            "event {} ({} {}) of another host does not apply: {err}",
            e.seq,
            e.change.op(),
            e.change.path()
        )
    })?;
    // A name it made exists only after.
    if let Change::Create { path, .. } | Change::Symlink { path, .. } = &e.change {
        names(&mut stale, entry(t, path));
    }
    Ok(stale)
}

/// Another host's version of file `ino` is about to replace this host's: the node takes
/// a content of its own, which the event then sets. Handles open on the old one here
/// keep reading (and writing) the version they opened, which a close of theirs would
/// commit whole, later in the log. The old content's lock is never taken here (under
/// the tree's lock): a local writer holds it while it waits for the tree.
fn keep_open_version(t: &mut Tree, ino: Ino) {
    let Ok(n) = t.node_mut(ino) else { return };
    if n.content.is_none() {
        return;
    }
    n.content = Some(if n.open.load(Ordering::Acquire) > 0 {
        Content::newer(None)
    } else {
        Content::new(None)
    });
}
