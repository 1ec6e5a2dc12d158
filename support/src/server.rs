//! A FUSE server process's life as its tests and benchmarks see it: started by the
//! caller (which knows the binary and its arguments), live once its mount answers,
//! stopped by a signal.

use std::fmt;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys::{signal, stat_dev};

/// Why a server's mount did not go live.
#[derive(Debug)]
pub enum NotLive {
    /// The server exited first (it has been reaped).
    Exited(ExitStatus),
    /// Still not live when the time was up (the server is still running).
    TimedOut(Duration),
}

impl fmt::Display for NotLive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotLive::Exited(status) => write!(f, "exited before the mount was live: {status}"),
            NotLive::TimedOut(after) => write!(f, "not live after {after:?}"),
        }
    }
}

/// Waits until `mnt` is a live mount of the server `child`: its st_dev is not its
/// parent's (`parent_dev`, taken before the server started) and a listing gets an
/// answer. Returns the mount's st_dev.
///
/// A stale mount of a dead server at the same place also has its own st_dev (stat may
/// even be answered from the kernel's cache): a listing must reach a live server before
/// the mount counts as this one's.
pub fn wait_live(
    child: &mut Child,
    mnt: &Path,
    parent_dev: u64,
    timeout: Duration,
) -> Result<u64, NotLive> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Err(NotLive::Exited(status));
        }
        if let Ok(dev) = stat_dev(mnt) {
            if dev != parent_dev && std::fs::read_dir(mnt).is_ok() {
                return Ok(dev);
            }
        }
        if Instant::now() > deadline {
            return Err(NotLive::TimedOut(timeout));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM (a server unmounts itself and exits), then up to `timeout` for it to exit;
/// `None` if it is still running (what next is the caller's choice).
pub fn terminate(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    signal(child.id(), libc::SIGTERM);
    wait_exit(child, timeout)
}
