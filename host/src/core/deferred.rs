//! Commits deferred from a close to the release that follows it.
//!
//! A writer alone on an empty file writes it by passthrough (`store/content.rs`): the
//! kernel puts the bytes straight into the scratch copy, and this process sees none of
//! them. Committing at the close (FLUSH) would mean copying the file into a new object:
//! after a close the kernel may still write that same file through a duplicated
//! descriptor or a mapping, and an object never changes. So the close only marks the
//! commit due, and the release (the kernel's last reference gone: nothing can write the
//! file any more) commits the scratch copy in place, a hash and a rename.
//!
//! The durability contract still holds for the close, because whatever could tell the
//! difference settles the due commits first ([`Fs::settle_closes`]): a change recorded
//! later (its event then comes after the write's, in order), a request to a view
//! (`history/` sees the write at once), a `debug/` document, an fsync of anything, an
//! open for writing, and the shutdown. A release normally follows its close within microseconds; one that does
//! not come within [`WAIT`] (the descriptor lives on in another process, or a mapping
//! does) is committed by copy instead, as a close with readers on the backing always is;
//! a thread of its own sees to that when no request does
//! ([`Fs::settle_in_background`]), so a close's event never waits longer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::*;
use crate::store::Content;

/// How long a settle waits for due releases before it commits by copy.
const WAIT: Duration = Duration::from_millis(50);

#[derive(Default)]
pub(super) struct DeferredCommits {
    due: Mutex<Vec<Due>>,
    /// `due.len()`, read without the lock: almost every request finds it 0.
    count: AtomicUsize,
    /// A due commit was done (or taken over by a settle).
    done: Condvar,
    /// A commit became due.
    added: Condvar,
}

/// See [`DeferredCommits::committing`].
pub(super) struct Committing<'a> {
    deferred: &'a DeferredCommits,
    content: &'a Arc<Content>,
}

impl Drop for Committing<'_> {
    fn drop(&mut self) {
        self.deferred.committed(self.content);
    }
}

struct Due {
    ino: Ino,
    content: Arc<Content>,
    caller: Caller,
}

impl DeferredCommits {
    /// The close of a handle writing `content` unseen: its commit is due.
    pub(super) fn add(&self, ino: Ino, content: &Arc<Content>, caller: &Caller) {
        let mut due = self.due.lock();
        match due.iter_mut().find(|d| Arc::ptr_eq(&d.content, content)) {
            Some(d) => d.caller = *caller,
            None => {
                due.push(Due {
                    ino,
                    content: content.clone(),
                    caller: *caller,
                });
                self.count.store(due.len(), Ordering::Release);
                self.added.notify_one();
            }
        }
    }

    /// `content` is being committed: what its closes left due is part of that commit,
    /// done when the returned guard goes (a settle waits until the event is recorded).
    pub(super) fn committing<'a>(&'a self, content: &'a Arc<Content>) -> Committing<'a> {
        Committing {
            deferred: self,
            content,
        }
    }

    fn committed(&self, content: &Arc<Content>) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut due = self.due.lock();
        let before = due.len();
        due.retain(|d| !Arc::ptr_eq(&d.content, content));
        if due.len() != before {
            self.count.store(due.len(), Ordering::Release);
            self.done.notify_all();
        }
    }

    /// Who closed `content` last with its commit left due: the commit is theirs (a
    /// release comes from no process).
    pub(super) fn closed_by(&self, content: &Arc<Content>) -> Option<Caller> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let due = self.due.lock();
        due.iter()
            .find(|d| Arc::ptr_eq(&d.content, content))
            .map(|d| d.caller)
    }

    /// Closes whose commit is due now.
    pub(super) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// The due commits (but `own`'s), left in the list: each goes when committed
    /// ([`committing`](Self::committing)), so whoever waits for it waits until then.
    fn due_but(&self, own: Option<&Arc<Content>>) -> Vec<Due> {
        self.due
            .lock()
            .iter()
            .filter(|x| own.is_none_or(|own| !Arc::ptr_eq(&x.content, own)))
            .map(|x| Due {
                ino: x.ino,
                content: x.content.clone(),
                caller: x.caller,
            })
            .collect()
    }

    /// Is a commit of `content` still due?
    fn is_due(&self, content: &Arc<Content>) -> bool {
        self.due
            .lock()
            .iter()
            .any(|x| Arc::ptr_eq(&x.content, content))
    }
}

impl Fs {
    /// Commit what closes left due (see the module docs), waiting a little for their
    /// releases to do it in place. Call with no lock held: the commits take the files'
    /// and the tree's.
    pub(super) fn settle_closes(&self) {
        self.settle_closes_but(None);
    }

    /// [`settle_closes`](Self::settle_closes) of every file but `own`, whose commit the
    /// caller is about to make itself.
    pub(super) fn settle_closes_but(&self, own: Option<&Arc<Content>>) {
        let d = &self.deferred;
        if d.len() == 0 {
            return;
        }
        let others = |due: &Vec<Due>| {
            due.iter()
                .any(|x| own.is_none_or(|own| !Arc::ptr_eq(&x.content, own)))
        };
        let deadline = Instant::now() + WAIT;
        {
            let mut due = d.due.lock();
            while others(&due) {
                if d.done.wait_until(&mut due, deadline).timed_out() {
                    break;
                }
            }
        }
        self.commit_due(d.due_but(own));
    }

    /// Settle due closes whose release does not come, for as long as the filesystem
    /// lives: a close's event is in the log within about 2 × [`WAIT`] even when nothing
    /// else asks for it (a stream of events waits for it).
    pub fn settle_in_background(self: &Arc<Self>) {
        let deferred = self.deferred.clone();
        let fs = Arc::downgrade(self);
        let settler = move || loop {
            {
                let mut due = deferred.due.lock();
                if due.is_empty() {
                    // Now and then, to end with the filesystem.
                    deferred.added.wait_for(&mut due, Duration::from_secs(1));
                }
                if due.is_empty() {
                    if fs.strong_count() == 0 {
                        return;
                    }
                    continue;
                }
            }
            // Give the releases their time first: most come within microseconds.
            std::thread::sleep(WAIT);
            match fs.upgrade() {
                Some(fs) => fs.settle_closes(),
                None => return,
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("lhfs-settle".into())
            .spawn(settler)
        {
            tracing::warn!(
                "no thread to settle closes in the background ({e}): they settle with \
                 the next request"
            );
        }
    }

    /// Commit every due close now, not waiting for releases (the shutdown).
    pub(super) fn settle_closes_now(&self) {
        self.commit_due(self.deferred.due_but(None));
    }

    fn commit_due(&self, due: Vec<Due>) {
        for d in due {
            let _span = tracing::debug_span!("settle", ino = d.ino).entered();
            let mut c = d.content.lock();
            // Its release (or another settle) may have committed it meanwhile; then a
            // writer that opened since may be at work in it, which is not this close's.
            if !self.deferred.is_due(&d.content) {
                continue;
            }
            if let Err(e) = self.commit_closed(&d.caller, d.ino, &d.content, &mut c) {
                tracing::warn!(
                    path = self.describe(d.ino),
                    errno = e.name(),
                    "committing a closed file's content failed: {}",
                    e.message
                );
            }
        }
    }
}
