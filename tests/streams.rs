//! Streams through a real mount, on both backends. A stream is an append-only log file:
//! the programs people read logs with work on it as they are — `tail -f`, `tail -n 5 -f`,
//! `tail -F`, `head -n N`, `grep -m1`, `less +F`, `cat | jq`, Python's `for line in f` —
//! offsets are fixed (`lseek` anywhere reads what a whole read reads), concurrent readers
//! each get every event in order while a writer works, a read at the end waits without
//! costing a worker and ends at once on Ctrl-C (SIGINT) and at unmount, `NAME@SEQ`
//! starts at an event and `NAME@now` links to what comes, O_NONBLOCK readers get
//! EAGAIN.

#[macro_use]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
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

/// How long a child may take to show what a test waits for (generous: the machine is
/// shared; tail polls once a second). Tests assert what is shown, never how fast.
const SHOW_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process in a process group of its own, its stdout (and stderr) collected by
/// threads; the whole group is killed when it is dropped, so a test that fails leaves no
/// reader behind (a pipeline's members included).
struct Proc {
    child: Child,
    what: String,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    stdin: Option<ChildStdin>,
    /// Its stdout when another process reads it (a pipeline), not the collector.
    stdout: Option<std::process::ChildStdout>,
    /// The collector threads (they end when the output does).
    collectors: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        Proc::spawn_with(cmd, Stdio::null())
    }

    fn spawn_with(cmd: &mut Command, stdin: impl Into<Stdio>) -> Proc {
        Proc::spawn_io(cmd, stdin, true)
    }

    /// `collect`: gather its stdout; else leave it in `stdout` for the next in a pipe.
    fn spawn_io(cmd: &mut Command, stdin: impl Into<Stdio>, collect_out: bool) -> Proc {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let mut collectors = Vec::new();
        let mut collect = |mut from: Box<dyn Read + Send>| {
            let into = Arc::new(Mutex::new(Vec::new()));
            let to = into.clone();
            collectors.push(std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    to.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }));
            into
        };
        let (out, stdout) = if collect_out {
            (collect(Box::new(child.stdout.take().unwrap())), None)
        } else {
            (Arc::default(), child.stdout.take())
        };
        let err = collect(Box::new(child.stderr.take().unwrap()));
        let stdin = child.stdin.take();
        Proc {
            child,
            what,
            out,
            err,
            stdin,
            stdout,
            collectors,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    /// The whole lines it printed so far.
    fn lines(&self) -> Vec<String> {
        let text = self.text();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .map(String::from)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Waits until it printed `n` lines; they (exactly `n`, or the test fails).
    fn wait_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + SHOW_TIMEOUT;
        loop {
            let lines = self.lines();
            if lines.len() >= n || Instant::now() >= deadline {
                assert_eq!(
                    lines.len(),
                    n,
                    "{}: lines {lines:#?}\nstderr: {}",
                    self.what,
                    self.stderr()
                );
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until its output holds `needle`.
    fn wait_text(&self, needle: &str) {
        let deadline = Instant::now() + SHOW_TIMEOUT;
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{}: never showed {needle:?}; it showed {:?}\nstderr: {}",
                self.what,
                self.text(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for it to end; its exit status.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait a child") {
                // What it wrote before it ended is all collected (unless a child of its
                // own still holds the output).
                while !self.collectors.iter().all(|c| c.is_finished()) && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits for it to end on its own with status 0.
    fn assert_success(&mut self) {
        let status = self.wait(SHOW_TIMEOUT);
        let status =
            status.unwrap_or_else(|| panic!("{} did not end: {:?}", self.what, self.text()));
        assert!(
            status.success(),
            "{}: {status:?}\nstdout: {}\nstderr: {}",
            self.what,
            self.text(),
            self.stderr()
        );
    }

    /// Sends SIGINT (Ctrl-C) and asserts it died of it at once.
    fn ctrl_c(&mut self) {
        signal(self.pid(), libc::SIGINT);
        let status = self.wait(Duration::from_secs(5));
        let status =
            status.unwrap_or_else(|| panic!("{}: still running 5 s after SIGINT", self.what));
        assert_eq!(
            status.signal(),
            Some(libc::SIGINT),
            "{}: {status:?}",
            self.what
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The group: a pipeline's other members and a shell's children too.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cmd(program: &str, args: &[&str], file: &Path) -> Command {
    let mut c = Command::new(program);
    c.args(args).arg(file);
    c
}

fn seqs_of(lines: &[String]) -> Vec<u64> {
    lines.iter().map(|l| parse_line(l).seq).collect()
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
        let stream = m.root().join("streams/file_changes");
        let mut cat = Proc::spawn(&mut cmd("cat", &[], &stream));
        wait_blocked(cat.pid());
        assert!(cat.wait(Duration::ZERO).is_none(), "[{backend}] cat waits for events");
        cat.ctrl_c();
        // tail -f waits between polls (and in a read at the end): Ctrl-C ends it too.
        touch(&m, "before");
        let mut tail = Proc::spawn(&mut cmd("tail", &["-f"], &stream));
        tail.wait_lines(2);
        cat = Proc::spawn(&mut cmd("cat", &[], &stream));
        cat.wait_lines(2);
        wait_blocked(cat.pid());
        tail.ctrl_c();
        cat.ctrl_c();
        // The mount serves on, and a new reader works.
        let later = read_lines(m.root().join("streams/file_changes@now"), 1);
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
            Proc::spawn(&mut cmd("cat", &[], &m.root().join("streams/file_changes"))),
            Proc::spawn(&mut cmd("cat", &[], &m.root().join("streams/all"))),
        ];
        for c in &cats {
            wait_blocked(c.pid());
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
        let mut cat = Proc::spawn(&mut cmd("cat", &[], &m.root().join("streams/annotations")));
        wait_blocked(cat.pid());
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

        // @now links to the log from the next event: nothing there yet.
        let link = fs::read_link(m.root().join("streams/file_changes@now")).unwrap();
        assert_eq!(link, Path::new("file_changes@5"), "[{backend}]");
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(m.root().join("streams/file_changes@now"))
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

/// Waits until process `pid` has a stream of streams/ open (a `@now` link is resolved
/// at the open: events written after it are the reader's).
fn wait_open(pid: u32) {
    wait_stream_offset(pid, "opened its stream", |pos| pos.is_some());
}

/// Waits until process `pid` has read its stream (the open file of streams/) up to
/// `size` bytes (its file offset, /proc/PID/fdinfo).
fn wait_read_to(pid: u32, size: u64) {
    wait_stream_offset(pid, &format!("read its stream to {size}"), |pos| {
        pos == Some(size)
    });
}

/// Waits until `done` holds of the file offset of process `pid`'s open file of streams/
/// (`None`: it has none open).
fn wait_stream_offset(pid: u32, what: &str, done: impl Fn(Option<u64>) -> bool) {
    let deadline = Instant::now() + SHOW_TIMEOUT;
    loop {
        let pos = fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|fd| {
                fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().contains("/streams/"))
            })
            .filter_map(|fd| {
                let info = fs::read_to_string(format!(
                    "/proc/{pid}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .ok()?;
                info.lines()
                    .find_map(|l| l.strip_prefix("pos:"))
                    .and_then(|p| p.trim().parse::<u64>().ok())
            })
            .last();
        if done(pos) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} never {what} (its stream's offset: {pos:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `name` in current/: two events (create, write).
fn touch(m: &Mount, name: &str) {
    fs::write(m.path(name), name.as_bytes()).unwrap();
}

both_backends! {
    #[timeout_secs(240)]
    fn tail_prints_the_last_lines_then_follows(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        for i in 0..12 {
            touch(&m, &format!("f{i:02}"));
        }
        let mut head = 24;
        let stream = m.root().join("streams/file_changes");
        for (args, last) in [(&["-f"][..], 10u64), (&["-n", "5", "-f"][..], 5), (&["-F"][..], 10)] {
            let tail = Proc::spawn(&mut cmd("tail", args, &stream));
            let shown = seqs_of(&tail.wait_lines(last as usize));
            assert_eq!(shown, (head - last + 1..=head).collect::<Vec<_>>(), "[{backend}] tail {args:?}");
            // What a writer does next is printed as it happens, each event once.
            for k in 0..2 {
                touch(&m, &format!("new{head}"));
                let lines = tail.wait_lines(last as usize + 2 * (k + 1));
                let new: Vec<Line> = lines[lines.len() - 2..].iter().map(|l| parse_line(l)).collect();
                let path = format!("/new{head}");
                assert_eq!(
                    new.iter().map(|l| (l.seq, l.op.as_str(), l.path.as_str())).collect::<Vec<_>>(),
                    [(head + 1, "create", path.as_str()), (head + 2, "write", path.as_str())],
                    "[{backend}] tail {args:?}"
                );
                head += 2;
            }
            assert_eq!(seqs_of(&tail.lines()), (head - last - 3..=head).collect::<Vec<_>>(), "[{backend}] tail {args:?}: nothing twice");
        }
        m.stop();
    }
}

both_backends! {
    fn head_grep_and_python_end_with_the_right_lines(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        touch(&m, "a");
        touch(&m, "b");
        let stream = m.root().join("streams/file_changes");
        // head -n 3 reads a block, prints three lines and seeks back: exit 0.
        let mut head = Proc::spawn(&mut cmd("head", &["-n", "3"], &stream));
        head.assert_success();
        assert_eq!(seqs_of(&head.lines()), [1, 2, 3], "[{backend}] {}", head.stderr());
        assert_eq!(head.stderr(), "", "[{backend}]");
        // From event 3 there are two lines: head waits for the third.
        let mut head = Proc::spawn(&mut cmd("head", &["-n", "3"], &m.root().join("streams/file_changes@3")));
        wait_blocked(head.pid());
        touch(&m, "c");
        head.assert_success();
        assert_eq!(seqs_of(&head.lines()), [3, 4, 5], "[{backend}]");

        // grep -m1: the first match, there already or still to come.
        let mut grep = Proc::spawn(&mut cmd("grep", &["-m1", "\"path\":\"/b\""], &stream));
        grep.assert_success();
        assert_eq!(seqs_of(&grep.lines()), [3], "[{backend}]");
        let mut grep = Proc::spawn(&mut cmd("grep", &["-m1", "\"path\":\"/needle\""], &stream));
        wait_blocked(grep.pid());
        touch(&m, "hay");
        touch(&m, "needle");
        grep.assert_success();
        let found = parse_line(&grep.wait_lines(1)[0]);
        assert_eq!((found.seq, found.op.as_str(), found.path.as_str()), (9, "create", "/needle"), "[{backend}]");

        // Python reads lines as they come, from now on.
        let script = "import json, sys\nn = int(sys.argv[2])\nfor line in open(sys.argv[1]):\n    print(json.loads(line)['seq'], flush=True)\n    n -= 1\n    if n == 0:\n        break\n";
        let mut py = Proc::spawn(Command::new("python3").args(["-c", script]).arg(m.root().join("streams/file_changes@now")).arg("4"));
        wait_open(py.pid());
        wait_blocked(py.pid());
        touch(&m, "p1");
        touch(&m, "p2");
        py.assert_success();
        assert_eq!(py.lines(), ["11", "12", "13", "14"], "[{backend}] {}", py.stderr());
        m.stop();
    }
}

both_backends! {
    fn cat_from_now_into_jq(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        touch(&m, "old");
        let now = m.root().join("streams/file_changes@now");
        // The link resolves at each open: both cats read file_changes@3.
        let target = m.root().join("streams").join(fs::read_link(&now).unwrap());
        assert_eq!(target, m.root().join("streams/file_changes@3"), "[{backend}]");
        let pipe = |jq_args: &[&str]| {
            let mut cat = Proc::spawn_io(&mut cmd("cat", &[], &now), Stdio::null(), false);
            let into_jq = Stdio::from(cat.stdout.take().unwrap());
            let jq = Proc::spawn_with(Command::new("jq").args(jq_args), into_jq);
            (cat, jq)
        };
        // (jq --seq is no reader of JSON lines: it takes RS-separated input, and ignores
        // newline-separated texts from a stream or a file alike.)
        let (mut cat_c, mut jq_c) = pipe(&["-c", "."]);
        let (mut cat_live, jq_live) = pipe(&["--unbuffered", "-c", "{seq, path}"]);
        wait_open(cat_c.pid());
        wait_open(cat_live.pid());
        wait_blocked(cat_c.pid());
        wait_blocked(cat_live.pid());
        touch(&m, "x");
        // A line-by-line consumer sees each event as it comes.
        assert_eq!(jq_live.wait_lines(2), [r#"{"seq":3,"path":"/x"}"#, r#"{"seq":4,"path":"/x"}"#], "[{backend}]");
        touch(&m, "y");
        // jq writes when its input ends (a pipe's output is buffered): Ctrl-C on cat.
        let size = fs::metadata(&target).unwrap().len();
        assert!(size > 0, "[{backend}]");
        // Each cat has read it all, written it on, and waits again.
        wait_read_to(cat_c.pid(), size);
        wait_blocked(cat_c.pid());
        cat_c.ctrl_c();
        jq_c.assert_success();
        let lines = jq_c.lines();
        assert_eq!(seqs_of(&lines), [3, 4, 5, 6], "[{backend}] {}", jq_c.stderr());
        assert!(lines.iter().all(|l| l.starts_with("{\"seq\":")), "[{backend}] {lines:?}");
        assert_eq!(jq_live.wait_lines(4)[2..], [r#"{"seq":5,"path":"/y"}"#, r#"{"seq":6,"path":"/y"}"#], "[{backend}]");
        cat_live.ctrl_c();
        m.stop();
    }
}
both_backends! {
    fn less_follows_the_log(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        touch(&m, "lessmark1");
        // less wants a terminal: script gives it one (a wide one, so lines do not wrap).
        let stream = m.root().join("streams/file_changes");
        let mut less = Proc::spawn_with(
            Command::new("script")
                .args(["-qfc", &format!("stty rows 50 cols 500; less +F {}", stream.display()), "/dev/null"])
                .env("TERM", "xterm")
                .env_remove("LESS")
                .env_remove("LESSOPEN"),
            Stdio::piped(),
        );
        less.wait_text("\"/lessmark1\"");
        touch(&m, "lessmark2");
        less.wait_text("\"/lessmark2\"");
        // Ctrl-C stops following (the waiting read ends), q quits. Keys that come
        // before less looks for them (a loaded machine) may go unheeded: Ctrl-C and q
        // again until it ends (at its prompt a Ctrl-C does nothing).
        let started = Instant::now();
        while started.elapsed() < SHOW_TIMEOUT {
            let stdin = less.stdin.as_mut().unwrap();
            let sent = stdin.write_all(b"\x03").and_then(|()| stdin.flush());
            std::thread::sleep(Duration::from_millis(300));
            let stdin = less.stdin.as_mut().unwrap();
            let sent = sent.and_then(|()| stdin.write_all(b"q")).and_then(|()| stdin.flush());
            // A write that fails: less has ended, and its terminal with it.
            if sent.is_err() || less.wait(Duration::from_millis(500)).is_some() {
                break;
            }
        }
        less.assert_success();
        m.stop();
    }
}

both_backends! {
    fn offsets_are_fixed_and_lseek_reads_what_a_whole_read_reads(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        for i in 0..150 {
            touch(&m, &format!("f{i:03}"));
        }
        let path = m.root().join("streams/all");
        let size = fs::metadata(&path).unwrap().len();
        let mut whole = vec![0u8; size as usize];
        File::open(&path).unwrap().read_exact(&mut whole).unwrap();
        let text = String::from_utf8(whole.clone()).unwrap();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        assert_eq!(seqs_of(&lines), (1..=300).collect::<Vec<_>>(), "[{backend}]");
        // The mtime is the newest line's time.
        let newest = json::parse(lines.last().unwrap()).unwrap();
        let newest_ns = newest.get("time_ns").and_then(|t| t.as_u64()).unwrap() as i64;
        let md = fs::metadata(&path).unwrap();
        assert_eq!(mtime_of(&md), (newest_ns / 1_000_000_000, newest_ns % 1_000_000_000), "[{backend}]");

        // Anywhere, in any order, through another handle: the same bytes.
        let mut f = File::open(&path).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (state >> 11) % size;
            let len = ((state >> 40) % 5000 + 1).min(size - at);
            assert_eq!(f.seek(SeekFrom::Start(at)).unwrap(), at);
            let mut buf = vec![0u8; len as usize];
            f.read_exact(&mut buf).unwrap();
            assert_eq!(buf, whole[at as usize..(at + len) as usize], "[{backend}] at {at}");
        }
        assert_eq!(f.seek(SeekFrom::End(-100)).unwrap(), size - 100, "[{backend}] SEEK_END");
        let mut tail = vec![0u8; 100];
        f.read_exact(&mut tail).unwrap();
        assert_eq!(tail, whole[whole.len() - 100..], "[{backend}]");
        assert_eq!(f.seek(SeekFrom::Current(-250)).unwrap(), size - 250, "[{backend}] SEEK_CUR");
        let mut back = vec![0u8; 250];
        f.read_exact(&mut back).unwrap();
        assert_eq!(back, whole[whole.len() - 250..], "[{backend}]");
        // NAME@SEQ is the same log from that event on.
        let at_100 = text.find("{\"seq\":100,").unwrap();
        let mut g = File::open(m.root().join("streams/all@100")).unwrap();
        let mut part = vec![0u8; whole.len() - at_100];
        g.read_exact(&mut part).unwrap();
        assert_eq!(part, whole[at_100..], "[{backend}]");

        // At the end: O_NONBLOCK says EAGAIN; the log grows by the next event only, and
        // what was there reads as it did.
        let mut nb = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
        assert_eq!(nb.seek(SeekFrom::End(0)).unwrap(), size);
        let mut buf = [0u8; 4096];
        assert_errno(nb.read(&mut buf), libc::EAGAIN, "non-blocking read at the end");
        touch(&m, "more");
        let grown = fs::metadata(&path).unwrap().len();
        assert!(grown > size, "[{backend}] {grown} > {size}");
        let mut added = vec![0u8; (grown - size) as usize];
        nb.read_exact(&mut added).unwrap();
        let added = String::from_utf8(added).unwrap();
        let added: Vec<String> = added.lines().map(String::from).collect();
        assert_eq!(seqs_of(&added), [301, 302], "[{backend}]");
        let mut again = vec![0u8; size as usize];
        nb.seek(SeekFrom::Start(0)).unwrap();
        nb.read_exact(&mut again).unwrap();
        assert!(again == whole, "[{backend}] the past never changes");
        m.stop();
    }
}
