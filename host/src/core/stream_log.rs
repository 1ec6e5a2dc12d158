//! Streams as append-only log files, for every view.
//!
//! A view says a path is a stream (getattr answers kind `stream`) and how it renders:
//! `open` gives the cursor where the log starts, `next(cursor)` the records after a
//! cursor as whole chunks. The host makes that a regular file: its bytes are the
//! concatenation of the chunks from the start, its size the bytes rendered up to the
//! head of the log when it is stat'ed, its mtime the time of the newest record shown.
//! Every offset below the size reads the same bytes for every reader at any time, so
//! `lseek`, `tail`, `head`, `less +F` and `grep -m1` work; a read at the end waits
//! (the adapters park it, [`super::WOULD_BLOCK`]) until the log grows.
//!
//! One [`StreamLog`] per stream path and caller identity (a view may show each caller
//! its own records): the start cursor, checkpoints (byte offset → cursor) at chunk
//! boundaries, the rendered size, the cursor of the head, and the newest bytes. Reading
//! an older part renders it again from the nearest checkpoint — the contract requires
//! `next` from a cursor it returned to render the same bytes again — and checks the
//! lengths agree with the first rendering (EIO with the reason when they do not: the
//! view is not reproducible, or has dropped the records, like the audit trail past
//! its last 10,000).
//!
//! Memory is bounded whatever the mount's age: [`MAX_LOGS`] logs (least recently used
//! first out; an evicted log is rebuilt by rendering from the start again), each
//! keeping at most [`TAIL_BYTES`] of its newest bytes, [`WINDOW_BYTES`] of the part it
//! last rendered again, and [`MAX_CHECKPOINTS`] checkpoints (thinned as the log grows).

use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::view_section::{Chunk, ViewPath, ViewVersion};
use super::{Caller, FsError, FsResult, TimeNs};
use crate::fs_err;

/// The errno of a read that would block: at the end of a stream (or a view's
/// `would-block`). The adapters park such a read until the store moves, unless the
/// reader opened with O_NONBLOCK, who gets it as is.
pub const WOULD_BLOCK: i32 = libc::EAGAIN;

/// Stream logs kept at once; the least recently used goes first.
pub const MAX_LOGS: usize = 256;
/// Newest bytes kept per log: most readers read at the end (`tail -f`, a follower);
/// a hundred-odd lines, and what `tail`'s first look back reads.
pub const TAIL_BYTES: usize = 32 << 10;
/// Bytes kept of the part of a log last rendered again, so that a reader going through
/// an old part in order renders each chunk once, not once per read (two chunks).
///
/// With [`MAX_LOGS`] and [`MAX_CHECKPOINTS`], the most all stream logs hold together:
/// 256 × (32 KiB + 128 KiB + 16 KiB of checkpoints), about 44 MiB, and only while 256
/// callers each read an old part of a different stream at once.
pub const WINDOW_BYTES: usize = 2 * RENDER_MAX as usize;
/// Checkpoints per log at most: past it every other one goes and the spacing doubles,
/// so a read of an old part renders at most about size / 512 bytes before its offset.
pub const MAX_CHECKPOINTS: usize = 1024;
/// The least distance between two checkpoints of a new log.
pub const CHECKPOINT_SPACING: u64 = 64 << 10;
/// The `max` the host asks of each `next`: a fixed hint, so renderings of the same part
/// ask the same; small enough that a call stays far inside a view's time budget on a
/// busy machine (a log's first rendering is many calls, each under the 200 ms deadline).
pub const RENDER_MAX: u32 = 64 << 10;
/// Calls one catch-up makes at most (a view whose stream never stops growing must not
/// hold a request forever); the rest is rendered by the next one.
const MAX_CATCH_UP_CALLS: usize = 1 << 16;

/// Whose log: a stream path (with the generation of the view that renders it) as one
/// caller sees it. Never shared between callers: views may filter per caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub view: Arc<str>,
    pub generation: u64,
    pub path: Arc<str>,
    pub uid: u32,
    pub gid: u32,
    pub agent: Option<&'static str>,
    /// The caller's [`Sight`](super::Sight) id: its supplementary groups count too.
    pub sight: u64,
}

impl StreamKey {
    pub fn new(vp: &ViewPath, caller: &Caller, sight: u64) -> StreamKey {
        StreamKey {
            view: vp.view.clone(),
            generation: vp.generation,
            path: vp.path.clone(),
            uid: caller.uid,
            gid: caller.gid,
            agent: caller.agent_name,
            sight,
        }
    }
}

/// One stream path's log, for one caller.
pub struct StreamLog {
    /// `view/path`, for messages.
    name: String,
    version: Arc<dyn ViewVersion>,
    /// The caller it renders for (the first one's pid: renderings must not depend on it).
    caller: Caller,
    path: Arc<str>,
    /// (byte offset, cursor) at chunk boundaries, in order; the first is (0, start).
    checkpoints: Vec<(u64, u64)>,
    /// The least distance between two checkpoints now.
    spacing: u64,
    /// Bytes rendered so far.
    size: u64,
    /// Where the next chunk after the rendered bytes starts.
    tail_cursor: u64,
    /// The view said the stream ended.
    ended: bool,
    /// The newest record's time; before the first, the view's mtime at creation.
    mtime: TimeNs,
    /// The newest rendered bytes: `size - tail.len()..size`.
    tail: Vec<u8>,
    /// The part last rendered again: `window_start..window_start + window.len()`.
    window_start: u64,
    window: Vec<u8>,
}

impl StreamLog {
    pub fn new(
        name: String,
        version: Arc<dyn ViewVersion>,
        caller: Caller,
        path: Arc<str>,
        start: u64,
        mtime: TimeNs,
    ) -> StreamLog {
        StreamLog {
            name,
            version,
            caller,
            path,
            checkpoints: vec![(0, start)],
            spacing: CHECKPOINT_SPACING,
            size: 0,
            tail_cursor: start,
            ended: false,
            mtime,
            tail: Vec::new(),
            window_start: 0,
            window: Vec::new(),
        }
    }

    /// Bytes rendered so far (up to the head as of the last catch-up).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn mtime(&self) -> TimeNs {
        self.mtime
    }

    /// Bytes this log keeps in memory (its caches and checkpoints).
    pub fn held_bytes(&self) -> usize {
        self.tail.capacity() + self.window.capacity() + self.checkpoints.capacity() * 16
    }

    fn next(&self, cursor: u64) -> FsResult<Chunk> {
        self.version
            .next(&self.caller, &self.path, cursor, RENDER_MAX)
            .map_err(|e| {
                FsError::with(
                    e.errno,
                    format!(
                        "{}: rendering from cursor {cursor}: {}",
                        self.name, e.message
                    ),
                )
            })
    }

    /// Renders what the log holds beyond the bytes rendered so far, up to its head.
    pub fn catch_up(&mut self) -> FsResult<()> {
        for _ in 0..MAX_CATCH_UP_CALLS {
            if self.ended {
                return Ok(());
            }
            let chunk = self.next(self.tail_cursor)?;
            self.ended = chunk.end;
            if chunk.data.is_empty() {
                // Records the stream does not show were passed over: go on from there,
                // until the cursor stands (the head).
                if chunk.cursor <= self.tail_cursor {
                    return Ok(());
                }
                self.tail_cursor = chunk.cursor;
                continue;
            }
            if chunk.cursor <= self.tail_cursor {
                return Err(fs_err!(
                    EIO,
                    "{}: next from cursor {} returned data without moving its cursor",
                    self.name,
                    self.tail_cursor
                ));
            }
            self.append(chunk);
        }
        Ok(())
    }

    fn append(&mut self, chunk: Chunk) {
        let last = self.checkpoints.last().map_or(0, |&(offset, _)| offset);
        self.size += chunk.data.len() as u64;
        self.tail_cursor = chunk.cursor;
        self.mtime = chunk.time_ns;
        if self.size - last >= self.spacing {
            self.checkpoints.push((self.size, chunk.cursor));
            if self.checkpoints.len() > MAX_CHECKPOINTS {
                // Keep the first (the start) and every other one after it.
                let mut i = 0;
                self.checkpoints.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.spacing *= 2;
            }
        }
        let data = chunk.data;
        if data.len() >= TAIL_BYTES {
            self.tail.clear();
            self.tail
                .extend_from_slice(&data[data.len() - TAIL_BYTES..]);
        } else {
            let over = (self.tail.len() + data.len()).saturating_sub(TAIL_BYTES);
            self.tail.drain(..over);
            self.tail.extend_from_slice(&data);
        }
    }

    /// Up to `len` bytes at `offset`: what is rendered there (fewer only at the size);
    /// at or past the size, what the log grew by since, else [`WOULD_BLOCK`] (or
    /// end-of-file once the stream ended).
    pub fn read(&mut self, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        if offset >= self.size {
            self.catch_up()?;
            if offset >= self.size {
                if self.ended {
                    return Ok(Vec::new());
                }
                return Err(FsError::new(WOULD_BLOCK, "nothing new in the stream yet"));
            }
        }
        let end = offset.saturating_add(len.into()).min(self.size);
        let tail_start = self.size - self.tail.len() as u64;
        if offset >= tail_start {
            return Ok(
                self.tail[(offset - tail_start) as usize..(end - tail_start) as usize].to_vec(),
            );
        }
        let window_end = self.window_start + self.window.len() as u64;
        if !(offset >= self.window_start && end <= window_end) {
            self.render_again(offset, end)?;
        }
        let from = (offset - self.window_start) as usize;
        Ok(self.window[from..from + (end - offset) as usize].to_vec())
    }

    /// Renders `offset..end` (below the size) again from the nearest checkpoint before
    /// it into the window, checking it against what the first rendering said.
    fn render_again(&mut self, offset: u64, end: u64) -> FsResult<()> {
        let i = self.checkpoints.partition_point(|&(o, _)| o <= offset) - 1;
        let (start, mut cursor) = self.checkpoints[i];
        let mut pos = start;
        let mut buf = Vec::new();
        while pos < end {
            let chunk = self.next(cursor)?;
            if chunk.data.is_empty() {
                if chunk.cursor <= cursor {
                    return Err(fs_err!(
                        EIO,
                        "{}: rendered again from cursor {}, the log ends at byte {pos}, \
                         but it had {} bytes: the view is not reproducible (next from a \
                         cursor must render the same bytes again) or dropped records",
                        self.name,
                        self.checkpoints[i].1,
                        self.size
                    ));
                }
                cursor = chunk.cursor;
                continue;
            }
            if chunk.cursor <= cursor {
                return Err(fs_err!(
                    EIO,
                    "{}: next from cursor {cursor} returned data without moving its cursor",
                    self.name
                ));
            }
            pos += chunk.data.len() as u64;
            cursor = chunk.cursor;
            self.check(pos, cursor)?;
            buf.extend_from_slice(&chunk.data);
        }
        // Keep from `offset` on, as much as the window holds (a reader in order reads on).
        let from = (offset - start) as usize;
        let upto = buf
            .len()
            .min(from + WINDOW_BYTES.max((end - offset) as usize))
            .min((self.size - start) as usize);
        buf.truncate(upto);
        buf.drain(..from);
        self.window = buf;
        self.window_start = offset;
        Ok(())
    }

    /// A rendering again reached byte `pos` at `cursor`: the first rendering must agree
    /// (records up to a cursor take the same bytes, as the checkpoints and the size say).
    fn check(&self, pos: u64, cursor: u64) -> FsResult<()> {
        // Checkpoints before `j` are of fewer records than `cursor`, from `j` on of as
        // many or more; the size is that of the records up to the tail cursor.
        let j = self.checkpoints.partition_point(|&(_, k)| k < cursor);
        let mut marks = self.checkpoints[j.saturating_sub(1)..]
            .iter()
            .take(2)
            .copied()
            .chain(std::iter::once((self.size, self.tail_cursor)));
        let wrong = marks.find(|&(o, k)| {
            (k == cursor && o != pos) || (k > cursor && o < pos) || (k < cursor && o > pos)
        });
        match wrong {
            Some((o, k)) => Err(fs_err!(
                EIO,
                "{}: rendered again, the records up to cursor {cursor} take {pos} bytes, \
                 but those up to cursor {k} took {o} bytes at first: the view is not \
                 reproducible (next from a cursor must render the same bytes again)",
                self.name
            )),
            None => Ok(()),
        }
    }
}

/// The stream logs of a mount, least recently used out first.
#[derive(Default)]
pub struct StreamLogs {
    map: Mutex<LogMap>,
}

#[derive(Default)]
struct LogMap {
    logs: FxHashMap<StreamKey, (Arc<Mutex<StreamLog>>, u64)>,
    tick: u64,
}

impl StreamLogs {
    /// The log of `key`, if kept (now the most recently used).
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Mutex<StreamLog>>> {
        let mut m = self.map.lock();
        m.tick += 1;
        let tick = m.tick;
        m.logs.get_mut(key).map(|(log, used)| {
            *used = tick;
            log.clone()
        })
    }

    /// Keeps `log` for `key` (or the one another request kept meanwhile), evicting the
    /// least recently used past [`MAX_LOGS`].
    pub fn insert(&self, key: StreamKey, log: StreamLog) -> Arc<Mutex<StreamLog>> {
        let mut m = self.map.lock();
        m.tick += 1;
        let tick = m.tick;
        let log = m
            .logs
            .entry(key)
            .or_insert_with(|| (Arc::new(Mutex::new(log)), tick))
            .0
            .clone();
        while m.logs.len() > MAX_LOGS {
            let oldest = m
                .logs
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => drop(m.logs.remove(&k)),
                None => break,
            }
        }
        log
    }

    /// Forgets the logs of `view` rendered by a generation other than `current` that
    /// no open file reads (those keep theirs), so a replaced view is not held.
    pub fn drop_old(&self, view: &str, current: Option<u64>) {
        self.map.lock().logs.retain(|k, (log, _)| {
            &*k.view != view || Some(k.generation) == current || Arc::strong_count(log) > 1
        });
    }

    /// Logs kept, and the bytes they hold.
    pub fn figures(&self) -> (usize, usize) {
        let m = self.map.lock();
        let bytes = m
            .logs
            .values()
            .map(|(log, _)| log.try_lock().map_or(0, |l| l.held_bytes()))
            .sum();
        (m.logs.len(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    use super::*;

    const RECORD: usize = 4096;

    /// Record `n` (1, 2, …): 4 KiB, its number first.
    fn record(n: u64) -> Vec<u8> {
        let mut r = format!("{n:>10} ").into_bytes();
        r.resize(RECORD - 1, b'x');
        r.push(b'\n');
        r
    }

    /// A view with records 1..=head, `per_chunk` a call; `stuck`: data without moving.
    struct Numbers {
        head: AtomicU64,
        per_chunk: u64,
        stuck: bool,
    }

    impl ViewVersion for Numbers {
        fn read(&self, _: &Caller, _: &str, _: u64, _: u32) -> FsResult<Vec<u8>> {
            unreachable!("streams are read through next")
        }
        fn write(&self, _: &Caller, _: &str, _: u64, _: &[u8]) -> FsResult<u32> {
            unreachable!("read-only")
        }
        fn next(&self, _: &Caller, _: &str, cursor: u64, _: u32) -> FsResult<Chunk> {
            let upto = self.head.load(SeqCst).min(cursor + self.per_chunk);
            Ok(Chunk {
                data: (cursor + 1..=upto).flat_map(record).collect(),
                cursor: if self.stuck { cursor } else { upto.max(cursor) },
                time_ns: upto as i64,
                end: false,
            })
        }
    }

    fn log_of(view: Arc<Numbers>) -> StreamLog {
        StreamLog::new(
            "test/numbers".into(),
            view,
            Caller::HOST,
            "/numbers".into(),
            0,
            7,
        )
    }

    /// A log that grows a record at a time to 100 MiB keeps at most MAX_CHECKPOINTS
    /// checkpoints and bounded caches, and any part of it reads right.
    #[test]
    fn a_long_log_stays_bounded_and_reads_right_anywhere() {
        let view = Arc::new(Numbers {
            head: 0.into(),
            per_chunk: 1,
            stuck: false,
        });
        let mut log = log_of(view.clone());
        log.catch_up().unwrap();
        assert_eq!((log.size(), log.mtime()), (0, 7), "empty: the view's mtime");
        const RECORDS: u64 = 25_600;
        for n in 1..=RECORDS {
            view.head.store(n, SeqCst);
            log.catch_up().unwrap();
        }
        assert_eq!(log.size(), RECORDS * RECORD as u64);
        assert_eq!(log.mtime(), RECORDS as i64);
        assert!(
            log.checkpoints.len() <= MAX_CHECKPOINTS,
            "{}",
            log.checkpoints.len()
        );
        assert!(log.spacing > CHECKPOINT_SPACING, "thinned as it grew");
        let mut state = 7u64;
        for _ in 0..50 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let at = (state >> 11) % log.size();
            let got = log.read(at, 10_000).unwrap();
            let first = at / RECORD as u64 + 1;
            let want: Vec<u8> = (first..first + 4).flat_map(record).collect();
            let skip = (at % RECORD as u64) as usize;
            let len = got.len();
            assert_eq!(got, want[skip..skip + len], "at {at}");
            assert_eq!(len as u64, 10_000.min(log.size() - at));
        }
        let held = log.held_bytes();
        assert!(
            held < TAIL_BYTES + 2 * WINDOW_BYTES + 64 * 1024,
            "{held} bytes"
        );
        // At the end: wait; then what comes.
        assert_eq!(log.read(log.size(), 10).unwrap_err().errno, WOULD_BLOCK);
        view.head.store(RECORDS + 1, SeqCst);
        assert_eq!(
            log.read(log.size(), RECORD as u32).unwrap(),
            record(RECORDS + 1)
        );
    }

    #[test]
    fn a_chunk_that_does_not_move_its_cursor_is_an_error() {
        let view = Arc::new(Numbers {
            head: 3.into(),
            per_chunk: 1,
            stuck: true,
        });
        let err = log_of(view).catch_up().unwrap_err();
        assert_eq!(err.errno, libc::EIO);
        assert!(err.message.contains("without moving its cursor"), "{err}");
    }

    #[test]
    fn the_mount_keeps_at_most_max_logs_least_recently_used_out() {
        let logs = StreamLogs::default();
        let view = Arc::new(Numbers {
            head: 0.into(),
            per_chunk: 1,
            stuck: false,
        });
        let key = |uid: u32, generation: u64| StreamKey {
            view: "v".into(),
            generation,
            path: "/numbers".into(),
            uid,
            gid: 0,
            agent: None,
            sight: uid.into(),
        };
        let first = logs.insert(key(0, 1), log_of(view.clone()));
        for uid in 1..MAX_LOGS as u32 + 10 {
            // The first is used all along: it stays.
            assert!(logs.get(&key(0, 1)).is_some());
            logs.insert(key(uid, 1), log_of(view.clone()));
        }
        assert_eq!(logs.figures().0, MAX_LOGS);
        assert!(Arc::ptr_eq(&logs.get(&key(0, 1)).unwrap(), &first));
        assert!(
            logs.get(&key(1, 1)).is_none(),
            "the least recently used went"
        );
        // Each caller its own log; inserting again keeps the one there.
        let again = logs.insert(key(0, 1), log_of(view.clone()));
        assert!(Arc::ptr_eq(&again, &first));
        // After a swap to generation 2, logs of 1 go unless an open file holds them.
        drop(again);
        logs.insert(key(0, 2), log_of(view));
        logs.drop_old("v", Some(2));
        assert_eq!(logs.figures().0, 2, "generation 2's, and the one held");
        drop(first);
        logs.drop_old("v", Some(2));
        assert_eq!(logs.figures().0, 1);
    }
}
