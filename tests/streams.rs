//! Live streams through a real mount, on both backends: concurrent readers each get every
//! event in order while a writer works; a blocked reader costs nothing, ends at once on
//! Ctrl-C (SIGINT) and at unmount; `NAME@SEQ` replays from a point; O_NONBLOCK readers
//! get EAGAIN.

#[macro_use]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// One JSON line of a stream, the fields the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    seq: u64,
    op: String,
    path: String,
}

fn parse_line(text: &str) -> Line {
    let v = json::parse(text).unwrap_or_else(|e| panic!("not a JSON line ({e}): {text:?}"));
    Line {
        seq: v.get("seq").and_then(|s| s.as_u64()).expect("seq"),
        op: v.get("op").and_then(|s| s.as_str()).expect("op").to_owned(),
        path: v
            .get("path")
            .and_then(|s| s.as_str())
            .expect("path")
            .to_owned(),
    }
}

/// Reads `n` lines from a stream opened before, on a thread of its own.
fn read_lines(path: PathBuf, n: usize) -> std::thread::JoinHandle<Vec<Line>> {
    let file = File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::thread::spawn(move || {
        let mut lines = Vec::with_capacity(n);
        for line in BufReader::new(file).lines().take(n) {
            lines.push(parse_line(&line.expect("read a stream line")));
        }
        lines
    })
}

/// `cat STREAM` in a child process (killed if the test fails before it ends).
struct Cat(Child);

impl Cat {
    fn spawn(path: &Path) -> Cat {
        let child = Command::new("cat")
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cat");
        Cat(child)
    }

    /// Waits up to `timeout` for cat to end; its exit status.
    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("wait cat") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Cat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Has the stream's reader got as far as blocking in read(2)? (Its wchan is the FUSE
/// request wait.) Gives up after a few seconds and lets the test go on.
fn wait_blocked(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("fuse") || wchan.contains("request_wait") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

both_backends! {
    #[timeout_secs(240)]
    fn two_readers_get_every_event_in_order(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        const FILES: usize = 1000;
        // create + write per file.
        let expected = 2 * FILES;
        let a = read_lines(m.root().join("streams/file_changes"), expected);
        let b = read_lines(m.root().join("streams/file_changes"), expected);
        let others = read_lines(m.root().join("streams/all"), expected);
        for i in 0..FILES {
            fs::write(m.path(&format!("f{i:04}")), b"x").unwrap();
        }
        let (a, b, all) = (a.join().unwrap(), b.join().unwrap(), others.join().unwrap());
        assert_eq!(a.len(), expected, "[{backend}] reader A got them all");
        assert_eq!(a, b, "[{backend}] both readers saw the same events in the same order");
        assert_eq!(a, all, "[{backend}] `all` shows the same events here");
        for (i, pair) in a.chunks(2).enumerate() {
            let path = format!("/f{i:04}");
            assert_eq!((pair[0].op.as_str(), pair[0].path.as_str()), ("create", path.as_str()));
            assert_eq!((pair[1].op.as_str(), pair[1].path.as_str()), ("write", path.as_str()));
        }
        for w in a.windows(2) {
            assert_eq!(w[1].seq, w[0].seq + 1, "[{backend}] no gap, no repeat: {w:?}");
        }
        m.stop();
    }
}

both_backends! {
    fn ctrl_c_ends_a_blocked_read(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let mut cat = Cat::spawn(&m.root().join("streams/file_changes"));
        wait_blocked(cat.0.id());
        assert!(cat.0.try_wait().unwrap().is_none(), "[{backend}] cat waits for events");
        signal(cat.0.id(), libc::SIGINT);
        let status = cat.wait(Duration::from_secs(5));
        let status = status.unwrap_or_else(|| panic!("[{backend}] cat still blocked 5 s after SIGINT"));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGINT), "[{backend}] cat died of its SIGINT");
        // The mount serves on, and a new reader works.
        let later = read_lines(m.root().join("streams/file_changes"), 1);
        fs::write(m.path("after"), b"").unwrap();
        assert_eq!(later.join().unwrap()[0].path, "/after");
        m.stop();
    }
}

both_backends! {
    fn unmount_ends_blocked_readers(backend: Backend) {
        let (_t, store) = fresh_store();
        let mut m = Mount::start(backend, &store);
        let mut cats = [
            Cat::spawn(&m.root().join("streams/file_changes")),
            Cat::spawn(&m.root().join("streams/all")),
        ];
        for c in &cats {
            wait_blocked(c.0.id());
        }
        // What an operator does: SIGTERM to the daemon. It ends the waiting reads (EOF),
        // so the unmount is clean and quick.
        m.signal(libc::SIGTERM);
        let status = m.wait_exit(Duration::from_secs(10));
        assert!(status.is_some(), "[{backend}] the daemon did not exit with readers blocked");
        for c in &mut cats {
            let status = c.wait(Duration::from_secs(5)).expect("cat ends at unmount");
            assert!(status.success(), "[{backend}] cat saw end-of-file: {status:?}");
        }
        assert!(!m.is_mounted(), "[{backend}] unmounted");
    }
}

both_backends! {
    fn a_lazy_umount_from_outside_ends_blocked_readers(backend: Backend) {
        let (_t, store) = fresh_store();
        let mut m = Mount::start(backend, &store);
        let mut cat = Cat::spawn(&m.root().join("streams/annotations"));
        wait_blocked(cat.0.id());
        m.lazy_umount();
        let status = cat.wait(Duration::from_secs(5)).expect("cat ends after umount -l");
        assert!(status.success(), "[{backend}] {status:?}");
        assert!(m.wait_exit(Duration::from_secs(10)).is_some(), "[{backend}] the daemon ends");
    }
}

both_backends! {
    fn a_stream_replays_from_a_seq_and_nonblocking_readers_get_eagain(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::write(m.path("one"), b"1").unwrap();
        fs::create_dir(m.path("two")).unwrap();
        // From event 2 (one's write): write one, mkdir two, then what comes.
        let replay = read_lines(m.root().join("streams/file_changes@2"), 3);
        fs::remove_file(m.path("one")).unwrap();
        let got: Vec<(u64, String)> = replay.join().unwrap().into_iter().map(|l| (l.seq, l.op)).collect();
        assert_eq!(got, [(2, "write".to_owned()), (3, "mkdir".to_owned()), (4, "unlink".to_owned())]);

        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(m.root().join("streams/file_changes"))
            .unwrap();
        let mut buf = [0u8; 4096];
        assert_errno(f.read(&mut buf), libc::EAGAIN, "non-blocking read of a quiet stream");
        fs::write(m.path("three"), b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = loop {
            match f.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("[{backend}] {e}"),
            }
        };
        let line = parse_line(std::str::from_utf8(&buf[..n]).unwrap().lines().next().unwrap());
        assert_eq!((line.op.as_str(), line.path.as_str()), ("create", "/three"));
        assert_errno(fs::write(m.root().join("streams/all"), b"x"), libc::EROFS, "write to a stream");
        m.stop();
    }
}
