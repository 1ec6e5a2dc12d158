//! Reads that wait. A read of a stream with nothing new (the core answers EAGAIN) is not
//! answered and not blocked on: the adapter hands its reply here and the FUSE worker goes
//! back to work. One thread, shared by both backends, retries the parked reads whenever
//! the event log moves and answers them when they have data.
//!
//! A parked read ends:
//! - with data, once the log moved and the view has something for it;
//! - with EINTR when the reader is interrupted: fuse3 passes the kernel's INTERRUPT on
//!   ([`Parking::interrupt`]); fuser answers INTERRUPT with ENOSYS itself, so this thread
//!   also looks, every [`SIGNAL_POLL`], for a signal pending on the reading thread
//!   (`/proc/<tid>/status`) — what Ctrl-C on a `cat` leaves there. Both backends end a
//!   blocked read the same way within a few tens of milliseconds;
//! - with end-of-file when the mount stops or is detached ([`Parking::stop`]), so that an
//!   unmount never waits on a reader that would wait forever.
//!
//! A reader that opened with O_NONBLOCK is never parked: it gets EAGAIN, as from a pipe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::core::{Caller, Fs, Ino, Mount, Op, WOULD_BLOCK};

/// How often parked readers are checked for a pending signal.
pub(super) const SIGNAL_POLL: Duration = Duration::from_millis(20);
/// How long an INTERRUPT for a request not (yet) parked is remembered: the read it names
/// may still be on its way here.
const EARLY_INTERRUPT_TTL: Duration = Duration::from_secs(10);

/// Answers a parked read: data, or an errno.
pub(super) type Completion = Box<dyn FnOnce(Result<Vec<u8>, i32>) + Send>;

/// What a read asked, to ask again.
pub(super) struct ReadRequest {
    /// The FUSE request's unique id (what an INTERRUPT names).
    pub unique: u64,
    pub caller: Caller,
    pub ino: Ino,
    pub fh: u64,
    pub offset: u64,
    pub size: u32,
}

/// A read that found nothing and waits: what [`Parking::read`] hands back for parking.
pub(super) struct Waiting {
    req: ReadRequest,
    /// The store's moves (events and audit records) before the read looked.
    seen: u64,
}

struct Parked {
    req: ReadRequest,
    /// The store's moves when the read last found nothing.
    seen: u64,
    done: Completion,
}

#[derive(Default)]
struct State {
    parked: Vec<Parked>,
    /// INTERRUPTs that came before their read was parked.
    early_interrupts: FxHashMap<u64, Instant>,
    /// Interrupted parked reads, to answer EINTR.
    interrupted: Vec<u64>,
    stopping: bool,
    thread_running: bool,
}

/// The parked reads of one mount.
pub(super) struct Parking {
    fs: Arc<Fs>,
    mount: Arc<Mount>,
    state: Mutex<State>,
}

impl Parking {
    pub(super) fn new(fs: Arc<Fs>, mount: Arc<Mount>) -> Arc<Parking> {
        Arc::new(Parking {
            fs,
            mount,
            state: Mutex::new(State::default()),
        })
    }

    /// Runs a read. `Ok` is the answer to give now (counted in the request statistics);
    /// `Err` is a read that waits (the reader did not open with O_NONBLOCK): hand it to
    /// [`park`](Self::park) with a completion. A parked read is not counted: its wait is
    /// the stream's quiet time, not the filesystem's latency. (Two steps, so the reads
    /// answered at once — nearly all — allocate no completion.)
    pub(super) fn read(&self, req: ReadRequest) -> Result<Result<Vec<u8>, i32>, Waiting> {
        let started = Instant::now();
        let seen = self.fs.store().moves();
        match self.try_read(&req) {
            Err(WOULD_BLOCK) if self.fs.read_waits(req.fh) => Err(Waiting { req, seen }),
            other => {
                super::common::record(&self.fs, &self.mount, Op::Read, req.ino, started, &other);
                Ok(other)
            }
        }
    }

    fn try_read(&self, req: &ReadRequest) -> Result<Vec<u8>, i32> {
        super::common::contain(&self.fs, "read", req.ino, || {
            self.fs
                .read(&req.caller, req.ino, req.fh, req.offset, req.size)
        })
    }

    /// Answers `waiting` through `done` once it has data, is interrupted, or the mount
    /// stops.
    pub(super) fn park(self: &Arc<Self>, waiting: Waiting, done: Completion) {
        let Waiting { req, seen } = waiting;
        let mut st = self.state.lock();
        if st.stopping {
            drop(st);
            return done(Ok(Vec::new()));
        }
        if st.early_interrupts.remove(&req.unique).is_some() {
            drop(st);
            return done(Err(libc::EINTR));
        }
        tracing::trace!(unique = req.unique, fh = req.fh, "read parked");
        // Counted until answered, however it ends.
        let fs = self.fs.clone();
        fs.note_blocked_reader(1);
        let done: Completion = Box::new(move |answer| {
            fs.note_blocked_reader(-1);
            done(answer)
        });
        st.parked.push(Parked { req, seen, done });
        if !st.thread_running {
            st.thread_running = true;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("parked-reads".into())
                .spawn(move || me.run());
            if let Err(e) = spawned {
                st.thread_running = false;
                tracing::error!("cannot start the parked-reads thread: {e}");
                for p in st.parked.drain(..) {
                    (p.done)(Err(libc::EIO));
                }
            }
        }
        drop(st);
        self.fs.store().poke_waiters();
    }

    /// The kernel interrupted request `unique` (fuse3's INTERRUPT).
    pub(super) fn interrupt(&self, unique: u64) {
        let mut st = self.state.lock();
        if st.parked.iter().any(|p| p.req.unique == unique) {
            st.interrupted.push(unique);
            drop(st);
            self.fs.store().poke_waiters();
        } else {
            let now = Instant::now();
            st.early_interrupts
                .retain(|_, at| now.duration_since(*at) < EARLY_INTERRUPT_TTL);
            st.early_interrupts.insert(unique, now);
        }
    }

    /// The mount is going away: every parked read, and every read that would park from
    /// now on, gets end-of-file.
    pub(super) fn stop(&self) {
        let parked = {
            let mut st = self.state.lock();
            st.stopping = true;
            std::mem::take(&mut st.parked)
        };
        if !parked.is_empty() {
            tracing::info!(readers = parked.len(), "ending parked stream reads");
        }
        for p in parked {
            (p.done)(Ok(Vec::new()));
        }
        self.fs.store().poke_waiters();
    }

    /// The thread: wait for the log to move (or a poke, or the signal poll), then answer
    /// what can be answered. Ends when nothing is parked (a later park starts it again).
    fn run(self: Arc<Self>) {
        let mut last_signal_check = Instant::now();
        loop {
            let seen = {
                let mut st = self.state.lock();
                if st.parked.is_empty() {
                    st.thread_running = false;
                    return;
                }
                st.parked.iter().map(|p| p.seen).min().unwrap_or(0)
            };
            let head = self.fs.store().wait_moved(seen, SIGNAL_POLL);
            let check_signals = last_signal_check.elapsed() >= SIGNAL_POLL;
            if check_signals {
                last_signal_check = Instant::now();
            }
            self.answer(head, check_signals);
        }
    }

    fn answer(&self, head: u64, check_signals: bool) {
        // Take the parked reads out, so that answering (which runs views) never holds
        // the lock against new parks and interrupts.
        let (parked, interrupted) = {
            let mut st = self.state.lock();
            (
                std::mem::take(&mut st.parked),
                std::mem::take(&mut st.interrupted),
            )
        };
        let mut keep = Vec::with_capacity(parked.len());
        for mut p in parked {
            if interrupted.contains(&p.req.unique)
                || (check_signals && signal_pending(p.req.caller.pid))
            {
                tracing::debug!(unique = p.req.unique, "parked read interrupted");
                (p.done)(Err(libc::EINTR));
                continue;
            }
            if head == p.seen {
                keep.push(p);
                continue;
            }
            match self.try_read(&p.req) {
                Err(WOULD_BLOCK) => {
                    p.seen = head;
                    keep.push(p);
                }
                other => (p.done)(other),
            }
        }
        let mut st = self.state.lock();
        if st.stopping {
            drop(st);
            for p in keep {
                (p.done)(Ok(Vec::new()));
            }
            return;
        }
        // Interrupts that came while these reads were out of the list count too.
        let (gone, mut still): (Vec<Parked>, Vec<Parked>) = keep
            .into_iter()
            .partition(|p| st.early_interrupts.remove(&p.req.unique).is_some());
        still.append(&mut st.parked);
        st.parked = still;
        drop(st);
        for p in gone {
            (p.done)(Err(libc::EINTR));
        }
    }
}

/// Does thread `tid` have a signal pending that it neither blocks nor ignores (what
/// makes the kernel abandon a request it waits for)? A thread that is gone counts as
/// interrupted: nobody waits for the answer.
fn signal_pending(tid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return true;
    };
    let mask = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    pending & !mask("SigBlk:") & !mask("SigIgn:") != 0
}

#[cfg(test)]
mod tests {
    use super::signal_pending;

    #[test]
    fn a_quiet_thread_has_no_signal_pending_and_a_gone_one_counts_as_interrupted() {
        assert!(!signal_pending(std::process::id()));
        assert!(signal_pending(u32::MAX - 1));
    }
}
