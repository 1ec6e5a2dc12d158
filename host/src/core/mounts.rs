//! The kernel mounts an [`Fs`] is served at: usually one, two when an operator compares
//! the backends side by side (`mount --mount A=fuser --mount B=fuse3`). Each has its own
//! request statistics and its own kernel caches; a change made through one mount is told
//! to the kernels of the others ([`Stale`]), since only the originating kernel saw it.
//!
//! The originating request waits until the other kernels have dropped what they cached,
//! so a write through one mount is visible through the other as soon as it returns. The
//! notifications go through one thread per mount and the wait is bounded: a kernel that
//! invalidates a page waits for a READ of that page in flight on its own mount, and if
//! both mounts' workers were all waiting on each other that way, an unbounded wait would
//! deadlock the two.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::{Fs, Ino, KernelCache, MountInfo, OpStats};

pub use crate::vocab::MountId;

/// How long a request waits for the other mounts' kernels to drop what it changed. Far
/// above a notification's cost (microseconds); reached only if the kernels wait on each
/// other, when visibility is delayed instead of the two mounts deadlocking.
const NOTIFY_WAIT: Duration = Duration::from_secs(1);

/// Batches a mount's notifier thread may have waiting. Each request waits for its own
/// batch (up to [`NOTIFY_WAIT`]), so the queue is this long only while that kernel does
/// not answer; beyond it a batch is not queued (counted as timed out) rather than the
/// queue growing for as long as the kernel is stuck.
const NOTIFY_QUEUE: usize = 1024;

/// What another mount's kernel may hold that a change made stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The name `name` in directory `parent` (created, removed or renamed).
    Entry { parent: Ino, name: Box<str> },
    /// An inode's attributes, and its cached pages from `offset` for `len` bytes (`len`
    /// 0: to the end; `offset` -1: attributes only). A directory's pages are its cached
    /// listing.
    Inode { ino: Ino, offset: i64, len: i64 },
}

impl Stale {
    /// The attributes of `ino` (size, times, link count) and all of its cached pages.
    pub fn inode(ino: Ino) -> Stale {
        Stale::Inode {
            ino,
            offset: 0,
            len: 0,
        }
    }

    /// The attributes of `ino` alone (a chmod, a new link, a rename of it).
    pub fn attrs(ino: Ino) -> Stale {
        Stale::Inode {
            ino,
            offset: -1,
            len: 0,
        }
    }

    /// A name in a directory, and the directory's attributes and cached listing.
    pub fn name(parent: Ino, name: &str) -> [Stale; 2] {
        [
            Stale::Entry {
                parent,
                name: name.into(),
            },
            Stale::inode(parent),
        ]
    }

    fn tell(&self, kernel: &dyn KernelCache) -> std::io::Result<()> {
        match self {
            Stale::Entry { parent, name } => kernel.forget_entry(*parent, name),
            Stale::Inode { ino, offset, len } => kernel.forget_inode(*ino, *offset, *len),
        }
    }
}

/// One batch for a mount's notifier thread, and where to say it is done.
struct Job {
    stale: Vec<Stale>,
    done: mpsc::SyncSender<()>,
}

/// One kernel mount: where, which backend, its statistics and its kernel's caches.
pub struct Mount {
    pub id: MountId,
    pub info: MountInfo,
    /// Requests served through this mount, per section and operation.
    pub stats: OpStats,
    /// The adapter's way to make this kernel forget (while mounted).
    kernel: RwLock<Option<Arc<dyn KernelCache>>>,
    /// The notifier thread's queue, started with the first change of another mount;
    /// bounded by [`NOTIFY_QUEUE`].
    queue: Mutex<Option<mpsc::SyncSender<Job>>>,
    /// Notifications this kernel refused, and waits that ran out (see [`NOTIFY_WAIT`]).
    notify_failures: AtomicU64,
    notify_timeouts: AtomicU64,
    /// Notifications sent to this kernel for changes made through other mounts.
    notified: AtomicU64,
}

impl Mount {
    /// Serve notifications through `cache` (the adapter, once its mount is live).
    pub fn set_kernel_cache(&self, cache: Arc<dyn KernelCache>) {
        *self.kernel.write() = Some(cache);
    }

    /// The mount is going away: no more notifications.
    pub fn clear_kernel_cache(&self) {
        *self.kernel.write() = None;
    }

    pub(super) fn kernel(&self) -> Option<Arc<dyn KernelCache>> {
        self.kernel.read().clone()
    }

    /// Notifications sent to this kernel for changes made elsewhere, refused by it, and
    /// waits for it that ran out.
    pub fn notify_counts(&self) -> NotifyCounts {
        NotifyCounts {
            sent: self.notified.load(Ordering::Relaxed),
            failed: self.notify_failures.load(Ordering::Relaxed),
            timed_out: self.notify_timeouts.load(Ordering::Relaxed),
        }
    }

    /// Tell this mount's kernel, on its notifier thread, and wait (bounded) until it has.
    fn tell(self: &Arc<Self>, stale: Vec<Stale>) {
        let (done, finished) = mpsc::sync_channel(1);
        let job = Job { stale, done };
        let sent = {
            let mut queue = self.queue.lock();
            let sender = queue.get_or_insert_with(|| self.start_notifier());
            sender.try_send(job)
        };
        match sent {
            Ok(()) => {
                if finished.recv_timeout(NOTIFY_WAIT).is_err() {
                    self.notify_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        mountpoint = %self.info.mountpoint.display(),
                        "the kernel took over {NOTIFY_WAIT:?} to drop a changed entry; went on without it"
                    );
                }
            }
            // The kernel is stuck on the batches before: the waits that ran out said so.
            Err(mpsc::TrySendError::Full(_)) => {
                self.notify_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    mountpoint = %self.info.mountpoint.display(),
                    "the notifier's queue is full; a changed entry is not told"
                );
            }
            // The thread could not start: logged when it did not.
            Err(mpsc::TrySendError::Disconnected(_)) => {}
        }
    }

    fn start_notifier(self: &Arc<Self>) -> mpsc::SyncSender<Job> {
        let (sender, jobs) = mpsc::sync_channel::<Job>(NOTIFY_QUEUE);
        // Weak: the thread must not keep a removed mount alive; it ends with the queue.
        let mount = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name(format!("notify-{}", self.info.backend))
            .spawn(move || {
                for job in jobs {
                    let Some(mount) = mount.upgrade() else { return };
                    if let Some(kernel) = mount.kernel() {
                        for stale in &job.stale {
                            mount.notified.fetch_add(1, Ordering::Relaxed);
                            if let Err(e) = stale.tell(&*kernel) {
                                mount.notify_failures.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(?stale, error = %e, "the kernel kept a changed entry");
                            }
                        }
                    }
                    let _ = job.done.send(());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no notifier thread ({e}); the other mount's kernel may serve stale entries until their TTL");
        }
        sender
    }
}

/// See [`Mount::notify_counts`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NotifyCounts {
    pub sent: u64,
    pub failed: u64,
    pub timed_out: u64,
}

/// The mounts being served now.
#[derive(Default)]
pub(super) struct Mounts {
    list: RwLock<Vec<Arc<Mount>>>,
    /// `list.len()`, read without a lock on every change.
    count: AtomicUsize,
    next_id: AtomicU32,
}

impl Fs {
    /// A new mount starts being served (the adapter layer, as it mounts).
    pub fn add_mount(&self, info: MountInfo) -> Arc<Mount> {
        let m = &self.mounts;
        let mount = Arc::new(Mount {
            id: m.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            info,
            stats: OpStats::default(),
            kernel: RwLock::new(None),
            queue: Mutex::new(None),
            notify_failures: 0.into(),
            notify_timeouts: 0.into(),
            notified: 0.into(),
        });
        let mut list = m.list.write();
        list.push(mount.clone());
        m.count.store(list.len(), Ordering::Release);
        mount
    }

    /// The mount `id` has ended: no more notifications to it; its statistics go with it.
    pub fn remove_mount(&self, id: MountId) {
        let m = &self.mounts;
        let mut list = m.list.write();
        list.retain(|mount| mount.id != id);
        m.count.store(list.len(), Ordering::Release);
    }

    /// The mounts served now, in the order they started.
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mounts.list.read().clone()
    }

    /// The first mount served (the only one, but in a side-by-side comparison).
    pub fn first_mount(&self) -> Option<Arc<Mount>> {
        self.mounts.list.read().first().cloned()
    }

    /// Does a change made through `origin` need telling to another mount? Cheap: asked
    /// by every change before it gathers what went stale.
    #[inline]
    pub(super) fn others_cache(&self, origin: MountId) -> bool {
        match self.mounts.count.load(Ordering::Acquire) {
            0 => false,
            1 => origin == 0,
            _ => true,
        }
    }

    /// A change made through mount `origin` (0: by the host) made `stale` out of date:
    /// tell every other mount's kernel and wait until they have (see the module docs).
    /// Call with no lock of the core held: a kernel may wait on its own mount's requests.
    pub(super) fn tell_others(&self, origin: MountId, stale: Vec<Stale>) {
        if stale.is_empty() || !self.others_cache(origin) {
            return;
        }
        let others: Vec<Arc<Mount>> = self
            .mounts
            .list
            .read()
            .iter()
            .filter(|m| m.id != origin)
            .cloned()
            .collect();
        for mount in others {
            mount.tell(stale.clone());
        }
    }
}
