//! Harness for the mounted integration tests of lighthouse-fs.
//!
//! - [`Mount`]: a guard around `lighthouse-fs mount MNT --store DIR --backend B` (or, from
//!   [`Mount::start_pair`], one server with both backends side by side). It waits until
//!   the mount is live, and on drop (success, failure or panic) stops the server, kills it
//!   after a timeout and lazily unmounts, so no stale mount is ever left behind.
//! - [`both_backends!`]: one test body `fn name(backend: Backend)` becomes the two tests
//!   `name::fuser` and `name::fuse3`, each run under a timeout by [`run_test`].
//! - [`run_test`]: runs a body in its own thread; on timeout it aborts every mount the body
//!   started (fusectl abort + SIGKILL + lazy umount) so stuck syscalls return, then panics
//!   with the test name.
//! - [`run_as`]: runs a closure in a forked child as another uid/gid (permission tests).
//! - [`Tmpfs`], the mount table, [`temp_dir`]: from `support/` (`lighthouse_fs_support`),
//!   which the benchmarks share.
//! - [`snapshot`] / [`assert_trees_eq`]: a whole tree as comparable data.
//! - [`cli`]: runs the binary with a timeout and captures its output.
//! - [`json`]: `lighthouse-fs log --json` and `MNT/debug/` as `serde_json` values, with
//!   [`JsonAt::at`] for key paths.
#![allow(dead_code)]

pub mod differential;
pub mod metrics;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// The mount table, scratch tmpfs and server lifecycle, shared with the benchmarks.
#[allow(unused_imports)]
pub use lighthouse_fs_support::{
    abort_fuse_connection, check, cpath, detach_all, fuse_mounts, is_mounted, kernel_dev, mounts,
    mounts_at, signal, stat_dev, temp_dir, umount_lazy, DetachOnDrop, MountEntry, NotLive, Tmpfs,
};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_lighthouse-fs");

/// The binary the tests run: `LIGHTHOUSE_FS_BIN` if set (e.g. a release build), else
/// the one cargo built for this test run.
/// The views a mount serves with no flags (guest-ops, but the example and test ones),
/// by name.
pub const BUILT_IN_VIEWS: &[&str] = &["context", "history", "shadows", "streams"];

/// The mount root's listing: the native sections, then `views` and the built-ins by name.
pub fn root_listing(views: &[&str]) -> Vec<String> {
    let mut named: Vec<&str> = BUILT_IN_VIEWS.iter().chain(views).copied().collect();
    named.sort();
    ["current", "debug"]
        .into_iter()
        .chain(named)
        .map(String::from)
        .collect()
}

pub fn bin() -> PathBuf {
    std::env::var_os("LIGHTHOUSE_FS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BIN))
}

/// Timeout of a mounted test unless it asks for another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a mount may take to become live.
pub const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to exit after SIGTERM / umount.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Backends and the per-test runner
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Fuser,
    Fuse3,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Fuser, Backend::Fuse3];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Fuser => "fuser",
            Backend::Fuse3 => "fuse3",
        }
    }

    pub fn other(self) -> Backend {
        match self {
            Backend::Fuser => Backend::Fuse3,
            Backend::Fuse3 => Backend::Fuser,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `both_backends! { fn name(backend: Backend) { ... } }` generates the tests
/// `name::fuser` and `name::fuse3`; `#[timeout_secs(N)]` before `fn` overrides the
/// default timeout. (Without a proc-macro, identifiers cannot be concatenated, so the
/// pair lives in a module named after the test: filter with `name` or `fuse3`.)
#[macro_export]
macro_rules! both_backends {
    ($(#[timeout_secs($t:expr)])? fn $name:ident($b:ident : Backend) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($b: $crate::common::Backend) $body

            #[test]
            fn fuser() {
                $crate::common::run_test(
                    concat!(stringify!($name), "_fuser"),
                    $crate::both_backends!(@timeout $($t)?),
                    || body($crate::common::Backend::Fuser),
                );
            }

            #[test]
            fn fuse3() {
                $crate::common::run_test(
                    concat!(stringify!($name), "_fuse3"),
                    $crate::both_backends!(@timeout $($t)?),
                    || body($crate::common::Backend::Fuse3),
                );
            }
        }
    };
    (@timeout) => {
        $crate::common::DEFAULT_TIMEOUT
    };
    (@timeout $t:expr) => {
        ::std::time::Duration::from_secs($t)
    };
}

/// What a test thread has mounted; aborted by [`run_test`] on timeout.
#[derive(Default)]
struct Registry {
    mounts: Mutex<Vec<Arc<Shared>>>,
}

impl Registry {
    fn abort_all(&self) {
        let mounts: Vec<_> = self.mounts.lock().unwrap().clone();
        for m in mounts {
            m.abort();
        }
    }
}

thread_local! {
    static REGISTRY: RefCell<Option<Arc<Registry>>> = const { RefCell::new(None) };
}

struct SendOnDrop(mpsc::Sender<()>);
impl Drop for SendOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Run `body` in its own thread under `timeout`. A panic in the body fails the test as
/// usual. On timeout every mount the body started is aborted (so its stuck syscalls
/// return and its guards can unwind), then the test panics naming itself.
pub fn run_test<F>(name: &str, timeout: Duration, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let registry = Arc::new(Registry::default());
    let reg = registry.clone();
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            REGISTRY.with(|r| *r.borrow_mut() = Some(reg));
            let _done = SendOnDrop(tx);
            body();
        })
        .expect("spawn test thread");
    match rx.recv_timeout(timeout) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(payload) = handle.join() {
                std::panic::resume_unwind(payload);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            eprintln!("test {name} timed out after {timeout:?}: aborting its mounts");
            registry.abort_all();
            // Let the body unwind and drop its guards (temp dirs, mounts).
            let _ = rx.recv_timeout(Duration::from_secs(30));
            panic!("test {name} timed out after {timeout:?} (its mounts were aborted)");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small syscall helpers
// ---------------------------------------------------------------------------------------

/// The errno of an `io::Error` (panics on a non-OS error).
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error()
        .unwrap_or_else(|| panic!("not an OS error: {e}"))
}

/// Assert that `r` failed with errno `want`.
#[track_caller]
pub fn assert_errno<T: fmt::Debug>(r: io::Result<T>, want: i32, what: &str) {
    match r {
        Ok(v) => panic!(
            "{what}: expected {} but succeeded with {v:?}",
            errno_name(want)
        ),
        Err(e) => assert_eq!(
            errno_of(&e),
            want,
            "{what}: expected {} got {e}",
            errno_name(want)
        ),
    }
}

pub fn errno_name(e: i32) -> String {
    match nix::errno::Errno::from_raw(e) {
        nix::errno::Errno::UnknownErrno => format!("errno {e}"),
        name => format!("{name:?}({e})"),
    }
}

/// `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)`.
pub fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (a, b) = (cpath(from), cpath(to));
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let c = cpath(p);
    check(unsafe { libc::mknod(c.as_ptr(), mode, dev) }).map(|_| ())
}

pub fn truncate(p: &Path, len: u64) -> io::Result<()> {
    let c = cpath(p);
    check(unsafe { libc::truncate(c.as_ptr(), len as libc::off_t) }).map(|_| ())
}

pub fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let c = cpath(p);
    check(unsafe { libc::lchown(c.as_ptr(), uid, gid) }).map(|_| ())
}

pub fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    let c = cpath(p);
    check(unsafe { libc::chmod(c.as_ptr(), mode as libc::mode_t) }).map(|_| ())
}

/// `utimensat(AT_FDCWD, p, [atime, mtime], flags)`; a time is `(sec, nsec)` and nsec
/// may be `libc::UTIME_OMIT` / `libc::UTIME_NOW`.
pub fn utimensat(p: &Path, atime: (i64, i64), mtime: (i64, i64), flags: i32) -> io::Result<()> {
    let c = cpath(p);
    let ts = [
        libc::timespec {
            tv_sec: atime.0 as libc::time_t,
            tv_nsec: atime.1 as _,
        },
        libc::timespec {
            tv_sec: mtime.0 as libc::time_t,
            tv_nsec: mtime.1 as _,
        },
    ];
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), flags) }).map(|_| ())
}

pub fn statfs(p: &Path) -> io::Result<libc::statfs> {
    let c = cpath(p);
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::statfs(c.as_ptr(), &mut st) })?;
    Ok(st)
}

/// `lsetxattr(2)`: set extended attribute `name` of `p` (a symlink itself, not followed).
pub fn lsetxattr(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(p);
    let n = CString::new(name).unwrap();
    check(unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
    .map(|_| ())
}

/// `(sec, nsec)` of a metadata's mtime.
pub fn mtime_of(md: &std::fs::Metadata) -> (i64, i64) {
    (md.mtime(), md.mtime_nsec())
}

// ---------------------------------------------------------------------------------------
// The Mount guard
// ---------------------------------------------------------------------------------------

/// What the guard and the test runner share about one server.
struct Shared {
    pid: u32,
    mnt: PathBuf,
    /// Kernel dev of the live mount (fusectl connection name), once live.
    kdev: Mutex<Option<u64>>,
    reaped: AtomicBool,
}

impl Shared {
    /// Hard stop: abort the FUSE connection, SIGKILL the server, lazily unmount ours.
    fn abort(&self) {
        let kdev = *self.kdev.lock().unwrap();
        if let Some(k) = kdev {
            abort_fuse_connection(k);
        }
        if !self.reaped.load(Ordering::SeqCst) {
            signal(self.pid, libc::SIGKILL);
        }
        self.detach_ours();
    }

    /// Lazily unmount the mount(s) at `mnt` that belong to this server. Before the mount
    /// went live (kdev unknown) any FUSE mount at `mnt` is taken as ours.
    fn detach_ours(&self) {
        let kdev = *self.kdev.lock().unwrap();
        for _ in 0..8 {
            let ours = mounts_at(&self.mnt).into_iter().any(|m| match kdev {
                Some(k) => m.kernel_dev() == k,
                None => m.fstype == "fuse" || m.fstype.starts_with("fuse."),
            });
            if !ours || umount_lazy(&self.mnt).is_err() {
                return;
            }
        }
    }

    fn is_mounted(&self) -> bool {
        let kdev = *self.kdev.lock().unwrap();
        match kdev {
            Some(k) => mounts_at(&self.mnt).iter().any(|m| m.kernel_dev() == k),
            None => false,
        }
    }
}

/// Captures a child's pipe into a shared buffer on a background thread.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn spawn<R: Read + Send + 'static>(mut r: R) -> (Captured, thread::JoinHandle<()>) {
        let c = Captured::default();
        let c2 = c.clone();
        let h = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => c2.0.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        (c, h)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A running `lighthouse-fs mount`. See the module docs.
pub struct Mount {
    backend: Backend,
    store: PathBuf,
    mnt: PathBuf,
    child: Child,
    shared: Arc<Shared>,
    /// The other mount of a side-by-side server ([`Mount::start_pair`]), same process.
    second: Option<(Backend, Arc<Shared>)>,
    stderr: Captured,
    stdout: Captured,
    /// Temp dir holding `mnt` when the guard created it (removed after unmounting).
    tmp: Option<tempfile::TempDir>,
}

impl Mount {
    /// Mount `store` on a fresh mountpoint with `backend`.
    pub fn start(backend: Backend, store: &Path) -> Mount {
        Self::start_with(backend, store, &[])
    }

    /// Like [`Mount::start`] with extra command-line arguments.
    pub fn start_with(backend: Backend, store: &Path, extra: &[&str]) -> Mount {
        let tmp = tempfile::Builder::new()
            .prefix("lhfs-mnt-")
            .tempdir()
            .expect("temp dir");
        let base = tmp.path().canonicalize().expect("canonical temp dir");
        let mnt = base.join("mnt");
        std::fs::create_dir(&mnt).expect("create mountpoint");
        Self::spawn(backend, store, mnt, extra, Some(tmp))
    }

    /// Like [`Mount::start_with`], the server a host of its own: in network namespace
    /// `host`, under its host name (the mount itself is in ours).
    pub fn start_on_host(
        backend: Backend,
        store: &Path,
        extra: &[&str],
        host: &lighthouse_fs_support::NetNs,
    ) -> Mount {
        Self::start_fresh(backend, store, extra, &[], Some(host))
    }

    /// Like [`Mount::start_with`], the server run with the variables `env` set.
    pub fn start_with_env(
        backend: Backend,
        store: &Path,
        extra: &[&str],
        env: &[(&str, &OsStr)],
    ) -> Mount {
        Self::start_fresh(backend, store, extra, env, None)
    }

    /// A fresh mountpoint, the server with `env` set, in `host`'s namespace if given.
    fn start_fresh(
        backend: Backend,
        store: &Path,
        extra: &[&str],
        env: &[(&str, &OsStr)],
        host: Option<&lighthouse_fs_support::NetNs>,
    ) -> Mount {
        let tmp = tempfile::Builder::new()
            .prefix("lhfs-mnt-")
            .tempdir()
            .expect("temp dir");
        let mnt = tmp
            .path()
            .canonicalize()
            .expect("canonical temp dir")
            .join("mnt");
        std::fs::create_dir(&mnt).expect("create mountpoint");
        let mut args = vec![
            mnt.display().to_string(),
            "--backend".to_string(),
            backend.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_sites(&[(backend, mnt)], store, &args, Some(tmp), env, host)
    }

    /// Mount at an existing mountpoint owned by the caller (must be absolute and
    /// canonical: it is matched against /proc/self/mountinfo).
    pub fn start_at(backend: Backend, store: &Path, mnt: &Path, extra: &[&str]) -> Mount {
        Self::spawn(backend, store, mnt.to_path_buf(), extra, None)
    }

    /// One server with two mounts of `store`, side by side: `first` at [`Mount::root`]
    /// and the other backend at [`Mount::second_root`] (`--mount A=first --mount B=other`).
    pub fn start_pair(first: Backend, store: &Path, extra: &[&str]) -> Mount {
        let tmp = tempfile::Builder::new()
            .prefix("lhfs-mnt-")
            .tempdir()
            .expect("temp dir");
        let base = tmp.path().canonicalize().expect("canonical temp dir");
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir(&a).expect("create mountpoint a");
        std::fs::create_dir(&b).expect("create mountpoint b");
        let mut args = vec![
            "--mount".to_string(),
            format!("{}={}", a.display(), first),
            "--mount".to_string(),
            format!("{}={}", b.display(), first.other()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_sites(
            &[(first, a), (first.other(), b)],
            store,
            &args,
            Some(tmp),
            &[],
            None,
        )
    }

    fn spawn(
        backend: Backend,
        store: &Path,
        mnt: PathBuf,
        extra: &[&str],
        tmp: Option<tempfile::TempDir>,
    ) -> Mount {
        let mut args = vec![
            mnt.display().to_string(),
            "--backend".to_string(),
            backend.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn_sites(&[(backend, mnt)], store, &args, tmp, &[], None)
    }

    /// Start the server with `args` (which name the mountpoints) and wait until every one
    /// of `sites` is live.
    fn spawn_sites(
        sites: &[(Backend, PathBuf)],
        store: &Path,
        args: &[String],
        tmp: Option<tempfile::TempDir>,
        env: &[(&str, &OsStr)],
        host: Option<&lighthouse_fs_support::NetNs>,
    ) -> Mount {
        let (backend, mnt) = sites[0].clone();
        let parent_devs: Vec<u64> = sites
            .iter()
            .map(|(_, mnt)| {
                stat_dev(mnt.parent().expect("mountpoint has a parent"))
                    .expect("stat parent of mountpoint")
            })
            .collect();
        let mut cmd = Command::new(bin());
        cmd.arg("mount")
            .arg("--store")
            .arg(store)
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(host) = host {
            host.enter(&mut cmd);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin().display()));
        let (stderr, _) = Captured::spawn(child.stderr.take().unwrap());
        let (stdout, _) = Captured::spawn(child.stdout.take().unwrap());
        let pid = child.id();
        let mut shared: Vec<Arc<Shared>> = sites
            .iter()
            .map(|(_, mnt)| {
                let shared = Arc::new(Shared {
                    pid,
                    mnt: mnt.clone(),
                    kdev: Mutex::new(None),
                    reaped: AtomicBool::new(false),
                });
                REGISTRY.with(|r| {
                    if let Some(reg) = &*r.borrow() {
                        reg.mounts.lock().unwrap().push(shared.clone());
                    }
                });
                shared
            })
            .collect();
        let second = sites.get(1).map(|(b, _)| (*b, shared.remove(1)));
        let mut m = Mount {
            backend,
            store: store.to_path_buf(),
            mnt,
            child,
            shared: shared.remove(0),
            second,
            stderr,
            stdout,
            tmp,
        };
        m.wait_live(&m.shared.clone(), backend, parent_devs[0]);
        if let Some((b, second)) = m.second.clone() {
            m.wait_live(&second, b, parent_devs[1]);
        }
        m
    }

    fn wait_live(&mut self, site: &Shared, backend: Backend, parent_dev: u64) {
        match lighthouse_fs_support::wait_live(
            &mut self.child,
            &site.mnt,
            parent_dev,
            MOUNT_TIMEOUT,
        ) {
            Ok(dev) => *site.kdev.lock().unwrap() = Some(kernel_dev(dev)),
            Err(why) => {
                if let NotLive::Exited(_) = why {
                    self.mark_reaped();
                    thread::sleep(Duration::from_millis(50)); // let the stderr reader drain
                }
                panic!(
                    "lighthouse-fs mount {} ({backend}): {why}\nstderr:\n{}",
                    site.mnt.display(),
                    self.stderr.text()
                );
            }
        }
    }

    /// The server's mounts (one, or two side by side).
    fn sites(&self) -> impl Iterator<Item = &Arc<Shared>> {
        std::iter::once(&self.shared).chain(self.second.as_ref().map(|(_, s)| s))
    }

    fn mark_reaped(&self) {
        for site in self.sites() {
            site.reaped.store(true, Ordering::SeqCst);
        }
    }

    /// The second mount's root ([`Mount::start_pair`]).
    pub fn second_root(&self) -> &Path {
        &self.second.as_ref().expect("a side-by-side server").1.mnt
    }

    /// `MNT/current/<rel>` through the second mount.
    pub fn second_path(&self, rel: &str) -> PathBuf {
        self.second_root().join("current").join(rel)
    }

    /// The second mount's backend.
    pub fn second_backend(&self) -> Backend {
        self.second.as_ref().expect("a side-by-side server").0
    }

    /// Is the second mount still in the mount table?
    pub fn second_is_mounted(&self) -> bool {
        self.second.as_ref().is_some_and(|(_, s)| s.is_mounted())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
    pub fn store(&self) -> &Path {
        &self.store
    }
    /// The mountpoint (lists `current`, `debug` and the views).
    pub fn root(&self) -> &Path {
        &self.mnt
    }
    /// `MNT/current`, the live tree.
    pub fn current(&self) -> PathBuf {
        self.mnt.join("current")
    }
    /// `MNT/current/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.current().join(rel)
    }
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }
    /// Is this server's mount still in the mount table?
    pub fn is_mounted(&self) -> bool {
        self.shared.is_mounted()
    }

    /// Wait up to `timeout` for the server to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = lighthouse_fs_support::wait_exit(&mut self.child, timeout);
        if status.is_some() {
            self.mark_reaped();
        }
        status
    }

    /// Send `sig` to the server.
    pub fn signal(&self, sig: i32) {
        if !self.shared.reaped.load(Ordering::SeqCst) {
            signal(self.shared.pid, sig);
        }
    }

    /// Wait for the server to exit on its own (after `sig` or an unmount) and assert it
    /// exited 0 with the mount gone.
    #[track_caller]
    pub fn assert_clean_exit(&mut self, what: &str) {
        match self.wait_exit(EXIT_TIMEOUT) {
            None => {
                self.abort_sites();
                panic!(
                    "{what}: server did not exit within {EXIT_TIMEOUT:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            Some(st) => {
                thread::sleep(Duration::from_millis(20));
                assert_eq!(
                    st.code(),
                    Some(0),
                    "{what}: server exit status {st}\nstderr:\n{}",
                    self.stderr()
                );
            }
        }
        for site in self.sites() {
            assert!(
                !site.is_mounted(),
                "{what}: server exited but {} is still mounted",
                site.mnt.display()
            );
        }
    }

    /// SIGTERM, wait, assert exit status 0 and that the mount is gone. Returns stderr.
    #[track_caller]
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        self.assert_clean_exit("stop (SIGTERM)");
        self.stderr()
    }

    /// SIGKILL the server and reap it. The mount stays behind as a dead entry
    /// (ENOTCONN) until [`Mount::lazy_umount`] or the guard's drop.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            // Stuck in the kernel: abort the connection so it can die.
            self.abort_sites();
            self.wait_exit(Duration::from_secs(10))
                .expect("server did not die after SIGKILL and connection abort");
        }
    }

    /// Lazily unmount this server's mount(s) (if still mounted).
    pub fn lazy_umount(&self) {
        for site in self.sites() {
            site.detach_ours();
        }
    }

    /// Hard abort: fusectl abort + SIGKILL + lazy umount.
    pub fn abort(&mut self) {
        self.abort_sites();
        let _ = self.wait_exit(Duration::from_secs(10));
    }

    fn abort_sites(&self) {
        for site in self.sites() {
            site.abort();
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if !self.shared.reaped.load(Ordering::SeqCst) {
            // Gentle first: the server unmounts itself on SIGTERM.
            self.signal(libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                self.abort_sites();
                if self.wait_exit(Duration::from_secs(10)).is_none() {
                    eprintln!(
                        "warning: lighthouse-fs pid {} survived SIGKILL",
                        self.shared.pid
                    );
                }
            }
        }
        self.lazy_umount();
        let sites: Vec<Arc<Shared>> = self.sites().cloned().collect();
        REGISTRY.with(|r| {
            if let Some(reg) = &*r.borrow() {
                reg.mounts
                    .lock()
                    .unwrap()
                    .retain(|s| !sites.iter().any(|site| Arc::ptr_eq(s, site)));
            }
        });
        if let Some(tmp) = self.tmp.take() {
            if let Some(site) = sites.iter().find(|site| is_mounted(&site.mnt)) {
                // Never recurse into a mount: leak the temp dir instead.
                eprintln!(
                    "warning: {} still mounted; leaking its temp dir",
                    site.mnt.display()
                );
                std::mem::forget(tmp);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Other processes: another uid, the CLI
// ---------------------------------------------------------------------------------------

/// Outcome of [`run_as_pid`].
pub struct AsUser {
    pub pid: u32,
    pub result: Result<(), i32>,
}

/// Run `f` in a forked child as `uid`/`gid` (no supplementary groups). `Ok(())` when `f`
/// returned Ok; `Err(errno)` when it returned an OS error. Panics if the child panicked
/// or failed in a way that carries no errno.
pub fn run_as<F: FnOnce() -> io::Result<()>>(uid: u32, gid: u32, f: F) -> Result<(), i32> {
    run_as_pid(uid, gid, f).result
}

/// Like [`run_as`], also returning the child's pid.
pub fn run_as_pid<F: FnOnce() -> io::Result<()>>(uid: u32, gid: u32, f: F) -> AsUser {
    const PANICKED: i32 = 255;
    const NOT_OS: i32 = 254;
    const SETID: i32 = 253;
    // SAFETY: the child only runs `f` (plain syscalls) and then `_exit`s.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let code = unsafe {
                // A child of a child that already is `uid` (and may not change ids) stays.
                let already = libc::geteuid() == uid && libc::getegid() == gid;
                if !already
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0)
                {
                    SETID
                } else {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                        Ok(Ok(())) => 0,
                        Ok(Err(e)) => match e.raw_os_error() {
                            Some(n) if (1..=200).contains(&n) => n,
                            _ => NOT_OS,
                        },
                        Err(_) => PANICKED,
                    }
                }
            };
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
            let pid = child.as_raw() as u32;
            let result = match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                nix::sys::wait::WaitStatus::Exited(_, PANICKED) => {
                    panic!("child as uid {uid} panicked")
                }
                nix::sys::wait::WaitStatus::Exited(_, NOT_OS) => {
                    panic!("child as uid {uid} failed without an errno")
                }
                nix::sys::wait::WaitStatus::Exited(_, SETID) => {
                    panic!("child could not switch to uid {uid} gid {gid}")
                }
                nix::sys::wait::WaitStatus::Exited(_, n) => Err(n),
                other => panic!("child as uid {uid}: {other:?}"),
            };
            AsUser { pid, result }
        }
    }
}

/// Captured output of one CLI run.
#[derive(Debug)]
pub struct CliOutput {
    pub args: Vec<OsString>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Assert exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "lighthouse-fs {:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Assert the contract's error shape: exit code 1, exactly one line on stderr,
    /// starting with `lighthouse-fs: error:` and containing every needle
    /// (case-insensitive).
    #[track_caller]
    pub fn assert_error(&self, needles: &[&str]) {
        let ctx = format!(
            "lighthouse-fs {:?}: status {}\nstderr:\n{}",
            self.args, self.status, self.stderr
        );
        assert_eq!(self.code(), Some(1), "exit code must be 1: {ctx}");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "exactly one stderr line expected: {ctx}");
        assert!(
            lines[0].starts_with("lighthouse-fs: error:"),
            "stderr must start with `lighthouse-fs: error:`: {ctx}"
        );
        let lower = lines[0].to_lowercase();
        for n in needles {
            assert!(
                lower.contains(&n.to_lowercase()),
                "error line must mention {n:?}: {ctx}"
            );
        }
    }
}

/// Run `lighthouse-fs ARGS` to completion (panics after 300 s).
pub fn cli<I, S>(args: I) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    cli_timeout(&args, Duration::from_secs(300))
        .unwrap_or_else(|| panic!("lighthouse-fs {args:?} did not finish within 300 s"))
}

/// Run `lighthouse-fs ARGS` with the variables `env` set, to completion (panics after
/// 300 s).
pub fn cli_env(args: &[OsString], env: &[(&str, &OsStr)]) -> CliOutput {
    cli_timeout_env(args, Duration::from_secs(300), env)
        .unwrap_or_else(|| panic!("lighthouse-fs {args:?} did not finish within 300 s"))
}

/// Run `lighthouse-fs ARGS`; `None` (after SIGKILL) when it runs longer than `timeout`.
pub fn cli_timeout(args: &[OsString], timeout: Duration) -> Option<CliOutput> {
    cli_timeout_env(args, timeout, &[])
}

fn cli_timeout_env(
    args: &[OsString],
    timeout: Duration,
    env: &[(&str, &OsStr)],
) -> Option<CliOutput> {
    let mut child = Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin().display()));
    let (out, hout) = Captured::spawn(child.stdout.take().unwrap());
    let (err, herr) = Captured::spawn(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = hout.join();
    let _ = herr.join();
    Some(CliOutput {
        args: args.to_vec(),
        status,
        stdout: out.text(),
        stderr: err.text(),
    })
}

/// Run a `mount` that is expected to fail. If it keeps running (i.e. it mounted), kill
/// it, lazily unmount `mnt` and panic.
#[track_caller]
pub fn mount_expect_failure(
    backend: Backend,
    store: &Path,
    mnt: &Path,
    extra: &[&str],
) -> CliOutput {
    let mut args: Vec<OsString> = vec![
        "mount".into(),
        mnt.into(),
        "--store".into(),
        store.into(),
        "--backend".into(),
        backend.as_str().into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    mount_args_expect_failure(mnt, args)
}

/// Run `lighthouse-fs ARGS` (a `mount` of `mnt` expected to fail); if it keeps running,
/// kill it, lazily unmount what it mounted at `mnt` and panic.
#[track_caller]
pub fn mount_args_expect_failure(mnt: &Path, args: Vec<OsString>) -> CliOutput {
    mount_args_expect_failure_env(mnt, args, &[])
}

/// [`mount_args_expect_failure`] with the variables `env` set.
#[track_caller]
pub fn mount_args_expect_failure_env(
    mnt: &Path,
    args: Vec<OsString>,
    env: &[(&str, &OsStr)],
) -> CliOutput {
    let before: Vec<u64> = mounts_at(mnt).iter().map(|m| m.kernel_dev()).collect();
    match cli_timeout_env(&args, Duration::from_secs(20), env) {
        Some(out) => out,
        None => {
            for m in mounts_at(mnt) {
                if !before.contains(&m.kernel_dev()) {
                    abort_fuse_connection(m.kernel_dev());
                    let _ = umount_lazy(mnt);
                }
            }
            panic!("lighthouse-fs {args:?} was expected to fail but kept running");
        }
    }
}

/// `lighthouse-fs import SRC --store STORE`, asserting success.
#[track_caller]
pub fn import(src: &Path, store: &Path) {
    cli([
        OsStr::new("import"),
        src.as_os_str(),
        OsStr::new("--store"),
        store.as_os_str(),
    ])
    .ok();
}

/// `lighthouse-fs export DEST --store STORE [--at AT]`, asserting success.
#[track_caller]
pub fn export(dest: &Path, store: &Path, at: Option<&str>) {
    let mut args: Vec<OsString> =
        vec!["export".into(), dest.into(), "--store".into(), store.into()];
    if let Some(at) = at {
        args.push("--at".into());
        args.push(at.into());
    }
    cli(args).ok();
}

/// `lighthouse-fs log --store STORE [PATH] --json`, parsed, one object per line.
#[track_caller]
pub fn log_json(store: &Path, path: Option<&str>) -> Vec<json::Value> {
    let mut args: Vec<OsString> = vec!["log".into(), "--store".into(), store.into()];
    if let Some(p) = path {
        args.push(p.into());
    }
    args.push("--json".into());
    let out = cli(args);
    out.ok()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| json::parse(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}")))
        .collect()
}

/// A fresh store location (not yet created) inside its own temp dir.
pub fn fresh_store() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix("lhfs-store-")
        .tempdir()
        .expect("temp dir");
    let p = t.path().canonicalize().unwrap().join("store");
    (t, p)
}

// ---------------------------------------------------------------------------------------
// Trees as data
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
    Other,
}

pub fn kind_of(ft: std::fs::FileType) -> Kind {
    if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        Kind::CharDev
    } else if ft.is_block_device() {
        Kind::BlockDev
    } else {
        Kind::Other
    }
}

/// File content with a short Debug form.
#[derive(Clone, PartialEq, Eq)]
pub struct Content(pub Vec<u8>);

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = &self.0[..self.0.len().min(24)];
        write!(
            f,
            "Content(len {}, fnv {:016x}, head {:?})",
            self.0.len(),
            fnv(&self.0),
            String::from_utf8_lossy(head)
        )
    }
}

pub fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// One entry of a tree, as far as the tests compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits (mode & 0o7777).
    pub perm: u32,
    /// Size of non-directories.
    pub size: Option<u64>,
    /// Link count of non-directories.
    pub nlink: Option<u64>,
    pub owner: Option<(u32, u32)>,
    pub mtime: Option<(i64, i64)>,
    pub content: Option<Content>,
    pub target: Option<PathBuf>,
    /// For files with nlink > 1: every path of the tree sharing the inode (sorted).
    pub link_group: Option<Vec<String>>,
    /// Device number (major, minor) of a device node.
    pub rdev: Option<(u32, u32)>,
}

#[derive(Clone, Copy, Debug)]
pub struct SnapOpts {
    pub mtimes: bool,
    /// Compare directory mtimes too (only when `mtimes`).
    pub dir_mtimes: bool,
    pub owners: bool,
    pub content: bool,
    /// Which permission bits to compare (read-only views clear the write bits).
    pub perm_mask: u32,
}

impl SnapOpts {
    /// Everything the contract keeps across remount.
    pub const FULL: SnapOpts = SnapOpts {
        mtimes: true,
        dir_mtimes: true,
        owners: true,
        content: true,
        perm_mask: 0o7777,
    };
    /// Shape, sizes, modes, content, targets, links: no times, no owners.
    pub const SHAPE: SnapOpts = SnapOpts {
        mtimes: false,
        dir_mtimes: false,
        owners: false,
        content: true,
        perm_mask: 0o7777,
    };
}

pub type Tree = BTreeMap<String, Node>;

/// The whole tree under `root` (excluding `root` itself), keyed by relative path.
pub fn snapshot(root: &Path, opts: SnapOpts) -> Tree {
    let mut out = Tree::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let rd =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
        for ent in rd {
            let ent = ent.unwrap_or_else(|e| panic!("read_dir entry in {}: {e}", dir.display()));
            let name = ent.file_name().to_string_lossy().into_owned();
            let path = ent.path();
            let relp = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let md = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
            let kind = kind_of(md.file_type());
            let is_dir = kind == Kind::Dir;
            let content = if kind == Kind::File && opts.content {
                Some(Content(
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
                ))
            } else {
                None
            };
            let target = if kind == Kind::Symlink {
                Some(
                    std::fs::read_link(&path)
                        .unwrap_or_else(|e| panic!("readlink {}: {e}", path.display())),
                )
            } else {
                None
            };
            if !is_dir && md.nlink() > 1 {
                inodes.entry(md.ino()).or_default().push(relp.clone());
            }
            out.insert(
                relp.clone(),
                Node {
                    kind,
                    perm: md.mode() & opts.perm_mask,
                    size: (!is_dir).then_some(md.size()),
                    nlink: (!is_dir).then_some(md.nlink()),
                    owner: opts.owners.then_some((md.uid(), md.gid())),
                    mtime: (opts.mtimes && kind != Kind::Symlink && (!is_dir || opts.dir_mtimes))
                        .then_some(mtime_of(&md)),
                    content,
                    target,
                    link_group: None,
                    rdev: matches!(kind, Kind::CharDev | Kind::BlockDev)
                        .then(|| (libc::major(md.rdev()), libc::minor(md.rdev()))),
                },
            );
            if is_dir {
                stack.push((path, relp));
            }
        }
    }
    for (_, mut names) in inodes {
        names.sort();
        for n in &names {
            out.get_mut(n).unwrap().link_group = Some(names.clone());
        }
    }
    out
}

/// Compare two trees; on difference, panic listing (up to 20) differing paths.
#[track_caller]
pub fn assert_trees_eq(got: &Tree, want: &Tree, context: &str) {
    if got == want {
        return;
    }
    let mut diffs = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            None => diffs.push(format!("  missing {k}: want {w:?}")),
            Some(g) if g != w => {
                diffs.push(format!("  differs {k}:\n    got  {g:?}\n    want {w:?}"))
            }
            _ => {}
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) {
            diffs.push(format!("  unexpected {k}: {g:?}"));
        }
    }
    let n = diffs.len();
    diffs.truncate(20);
    panic!(
        "{context}: trees differ ({n} paths; got {} entries, want {}):\n{}",
        got.len(),
        want.len(),
        diffs.join("\n")
    );
}

/// Deterministic pseudo-random bytes (xorshift) for file contents.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// JSON (for `log --json` and `debug/`): serde_json, with key paths
// ---------------------------------------------------------------------------------------

pub mod json {
    pub use serde_json::Value;

    /// One JSON document (the error as text, as the call sites print it).
    pub fn parse(s: &str) -> Result<Value, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    /// The value at a path of object keys: `v.at(&["store", "head_seq"])`.
    pub trait JsonAt {
        fn at(&self, path: &[&str]) -> Option<&Value>;
    }

    impl JsonAt for Value {
        fn at(&self, path: &[&str]) -> Option<&Value> {
            path.iter().try_fold(self, |v, k| v.get(k))
        }
    }
}

// Not every test binary walks key paths.
#[allow(unused_imports)]
pub use json::JsonAt;

// ---------------------------------------------------------------------------------------
// The guest workspace
// ---------------------------------------------------------------------------------------

/// How long cargo may take on guest-ops natively (from scratch: a minute or two here).
pub const GUEST_CARGO_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs `cargo ARGS` (`test ...`) on the guest-ops workspace natively, with `env` set,
/// and returns its output; killed (and the test failed) after [`GUEST_CARGO_TIMEOUT`].
/// guest-ops is a workspace of its own that `cargo test --workspace` does not reach.
pub fn guest_cargo(args: &[&str], env: &[(&str, &OsStr)]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (command, rest) = args.split_first().expect("a cargo command");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg(command)
        .args(["--locked", "--manifest-path"])
        .arg(root.join("guest-ops/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/guest-ops-native"))
        .args(rest)
        .current_dir(root.join("guest-ops"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The outer test run's build settings are not the guest workspace's.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" {
            cmd.env_remove(&key);
        }
    }
    cmd.envs(env.iter().copied());
    let child = cmd.spawn().expect("run cargo on guest-ops");
    let pid = child.id();
    // Read the output on another thread (a full pipe would stall cargo), wait here.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(GUEST_CARGO_TIMEOUT) {
        Ok(output) => output.expect("cargo output"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("cargo {args:?} on guest-ops did not finish within {GUEST_CARGO_TIMEOUT:?}");
        }
    }
}

/// Paths of `MNT/current/<rel>` etc. from a root, as OsStr (for non-UTF-8 names).
pub fn join_bytes(root: &Path, name: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(name))
}

/// `sh -c script` in `dir` (git's author and committer set); its stdout, asserting
/// success.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@e")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@e")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `tail -n +1 -f PATH`, its lines gathered as they come; killed when dropped, so a
/// failing test leaves no follower holding the mount.
pub struct Tail {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Tail {
    pub fn start(path: &Path) -> Tail {
        use std::io::BufRead;
        let mut child = Command::new("tail")
            .args(["-n", "+1", "-f"])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        thread::spawn(move || {
            for line in io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        Tail { child, lines }
    }

    /// Has it printed a line for which `pred` holds?
    pub fn has(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.lines.lock().unwrap().iter().any(|l| pred(l))
    }

    /// The lines it printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
