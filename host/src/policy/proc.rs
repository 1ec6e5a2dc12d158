//! Which session a calling process belongs to, read from `/proc`, for token bindings.
//!
//! A binding covers a *session* (`setsid`): an agent authenticates once in its shell and
//! every process it starts there acts as that agent. The session is identified by its id
//! plus the start time of its leader, because session ids are pids and pids are reused;
//! and by the caller's uid, so that a binding never serves another user.
//!
//! While any process of a session is alive, Linux does not hand its id to a new process,
//! so a live leader read through `/proc/<sid>` is the real one. If the leader has exited
//! (or the sid is 0), its start time is recorded as 0: the session stays identified by
//! sid and uid alone. That leaves one gap: after such a session ends, a new session of
//! the same uid that gets the same id and whose leader is also gone at the first lookup
//! would inherit a binding still in force.
//!
//! The pids are those of the namespace `/proc` is mounted for, which must be the FUSE
//! daemon's (the kernel reports callers' pids in the daemon's pid namespace).

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::SessionKey;

/// A `/proc/PID/stat` line is a few hundred bytes; comm is at most 64.
const STAT_BUF: usize = 1024;

/// The fields of `/proc/PID/stat` a session key needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub session: u32,
    /// In clock ticks since boot.
    pub starttime: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and `)`, so fields are counted from after the *last* `)`: field 3 is
/// the first there, so session (field 6) is the 4th and starttime (field 22) the 20th.
pub(crate) fn parse_stat(line: &[u8]) -> Option<Stat> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let session = fields.nth(3)?.parse().ok()?;
    let starttime = fields.nth(15)?.parse().ok()?;
    Some(Stat { session, starttime })
}

/// Reads `/proc/<pid>/stat` into a stack buffer: no allocation.
fn read_stat(pid: u32) -> io::Result<Stat> {
    let mut path = [0u8; 32];
    let len = {
        let mut cursor = io::Cursor::new(&mut path[..]);
        io::Write::write_fmt(&mut cursor, format_args!("/proc/{pid}/stat"))?;
        cursor.position() as usize
    };
    let path = Path::new(std::ffi::OsStr::from_bytes(&path[..len]));
    let mut file = std::fs::File::open(path)?;
    let mut buf = [0u8; STAT_BUF];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    parse_stat(&buf[..filled]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse /proc/{pid}/stat"),
        )
    })
}

/// The session of process (or thread) `pid`, for a caller of `uid`. Two reads of `/proc`:
/// the caller's stat and its session leader's.
pub fn session_of(pid: u32, uid: u32) -> io::Result<SessionKey> {
    let own = read_stat(pid)?;
    let leader_start = if own.session == 0 {
        0
    } else if own.session == pid {
        own.starttime
    } else {
        // A vanished leader is not an error: see the module comment.
        read_stat(own.session).map_or(0, |leader| leader.starttime)
    };
    Ok(SessionKey {
        sid: own.session,
        leader_start,
        uid,
    })
}

/// How long [`SessionCache`] trusts an entry.
pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(1);

pub const SESSION_CACHE_CAPACITY: usize = 4096;

/// pid → session, so that a bound caller costs two `/proc` reads per second rather than
/// per request (each is an open, a read and a close: several microseconds).
///
/// The trade-off: an entry is trusted for its TTL without looking at `/proc` again. Two
/// things can change in that time. A process may call `setsid` and keep its old
/// session's binding for up to the TTL. And a pid may be reused by another process; that
/// needs the pid counter to wrap (`pid_max` is 4 Mi on 64-bit systems) within the TTL,
/// and the entry is only used for a caller of the same uid anyway (the uid is part of
/// the key, compared on every hit). Re-validating the start time on each hit would close
/// both gaps but costs one of the two reads the cache exists to avoid.
///
/// Use it for the per-request lookup; answer the control file with [`session_of`], fresh.
pub struct SessionCache {
    /// At most [`SESSION_CACHE_CAPACITY`] pids (the least used go first).
    entries: quick_cache::sync::Cache<u32, Entry>,
    ttl: Duration,
}

#[derive(Clone, Copy)]
struct Entry {
    key: SessionKey,
    loaded: Instant,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> SessionCache {
        SessionCache {
            entries: quick_cache::sync::Cache::new(SESSION_CACHE_CAPACITY),
            ttl,
        }
    }

    /// Pids cached now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// [`session_of`], from the cache while the entry is younger than the TTL and was
    /// made for the same uid.
    pub fn session_of(&self, pid: u32, uid: u32, now: Instant) -> io::Result<SessionKey> {
        self.lookup_with(pid, uid, now, || session_of(pid, uid))
    }

    pub(super) fn lookup_with(
        &self,
        pid: u32,
        uid: u32,
        now: Instant,
        load: impl FnOnce() -> io::Result<SessionKey>,
    ) -> io::Result<SessionKey> {
        if let Some(entry) = self.entries.get(&pid) {
            if entry.key.uid == uid && now.saturating_duration_since(entry.loaded) < self.ttl {
                return Ok(entry.key);
            }
        }
        let key = load()?;
        self.entries.insert(pid, Entry { key, loaded: now });
        Ok(key)
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        SessionCache::new(SESSION_CACHE_TTL)
    }
}
