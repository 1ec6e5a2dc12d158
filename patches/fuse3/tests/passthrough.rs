//! Opt-in Linux kernel test of FUSE passthrough (6.9+, as root): a file opened in
//! passthrough to a tmpfs file reads and writes that file without READ or WRITE requests.
//! Mounted with reader threads, so their path is exercised too.
#![cfg(all(
    target_os = "linux",
    feature = "tokio-runtime",
    not(feature = "async-io-runtime")
))]
use fuse3::raw::{BackingId, Passthrough};
use fuse3::{FileType, MountOptions, Result, raw::prelude::*};
use std::{
    ffi::OsStr,
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    num::NonZeroU32,
    os::unix::fs::FileExt,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};

const CONTENT: &[u8] = b"through-backing!";

struct State {
    backing: File,
    passthrough: OnceLock<Option<Passthrough>>,
    backing_id: Mutex<Option<BackingId>>,
    requests: AtomicUsize,
    ready: tokio::sync::Notify,
}

struct Probe(Arc<State>);

fn attr(ino: u64) -> FileAttr {
    FileAttr {
        ino,
        size: if ino == 2 { CONTENT.len() as u64 } else { 0 },
        blocks: 1,
        atime: UNIX_EPOCH.into(),
        mtime: UNIX_EPOCH.into(),
        ctime: UNIX_EPOCH.into(),
        kind: if ino == 1 {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if ino == 1 { 0o755 } else { 0o644 },
        nlink: if ino == 1 { 2 } else { 1 },
        uid: unsafe { libc::geteuid() },
        gid: unsafe { libc::getegid() },
        rdev: 0,
        blksize: 4096,
    }
}

impl Filesystem for Probe {
    async fn init(&self, _: Request) -> Result<ReplyInit> {
        let mut reply = ReplyInit::new(NonZeroU32::new(65536).unwrap());
        reply.max_stack_depth = 1;
        Ok(reply)
    }
    async fn ready(&self, notify: Notify) {
        let _ = self.0.passthrough.set(notify.passthrough());
        self.0.ready.notify_one();
    }
    async fn destroy(&self, _: Request) {}
    #[cfg(feature = "file-lock")]
    async fn getlk(
        &self,
        _: Request,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u32,
        _: u32,
    ) -> Result<ReplyLock> {
        Err(libc::ENOSYS.into())
    }
    #[cfg(feature = "file-lock")]
    async fn setlk(
        &self,
        _: Request,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u64,
        _: u32,
        _: u32,
        _: bool,
    ) -> Result<()> {
        Err(libc::ENOSYS.into())
    }
    async fn lookup(&self, _: Request, parent: u64, name: &OsStr) -> Result<ReplyEntry> {
        if parent != 1 || name != "file" {
            return Err(libc::ENOENT.into());
        }
        Ok(ReplyEntry {
            ttl: Duration::from_secs(60),
            attr: attr(2),
            generation: 0,
        })
    }
    async fn getattr(&self, _: Request, ino: u64, _: Option<u64>, _: u32) -> Result<ReplyAttr> {
        if ino != 1 && ino != 2 {
            return Err(libc::ENOENT.into());
        }
        Ok(ReplyAttr {
            ttl: Duration::from_secs(60),
            attr: attr(ino),
        })
    }
    async fn open(&self, _: Request, _: u64, _: u32) -> Result<ReplyOpen> {
        let Some(Some(passthrough)) = self.0.passthrough.get() else {
            return Err(libc::EOPNOTSUPP.into());
        };
        // One backing id for the inode, kept while it may be open.
        let mut id = self.0.backing_id.lock().unwrap();
        if id.is_none() {
            *id = Some(passthrough.open_backing(&self.0.backing)?);
        }
        Ok(ReplyOpen::passthrough(1, 0, id.as_ref().unwrap()))
    }
    async fn read(&self, _: Request, _: u64, _: u64, _: u64, _: u32) -> Result<ReplyData> {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        Ok(ReplyData {
            data: b"through-fuse".to_vec().into(),
        })
    }
    async fn write(
        &self,
        _: Request,
        _: u64,
        _: u64,
        _: u64,
        data: &[u8],
        _: u32,
        _: u32,
    ) -> Result<ReplyWrite> {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        Ok(ReplyWrite {
            written: data.len() as u32,
        })
    }
    async fn flush(&self, _: Request, _: u64, _: u64, _: u64) -> Result<()> {
        Ok(())
    }
    async fn release(&self, _: Request, _: u64, _: u64, _: u32, _: u64, _: bool) -> Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "requires Linux 6.9+ with FUSE passthrough, /dev/fuse and root; run explicitly with --ignored"]
async fn passthrough_reads_and_writes_the_backing_file() {
    // The backing file on a tmpfs (stacking depth 0, under the depth of 1 asked for).
    let scratch = tempfile::tempdir_in("/dev/shm").unwrap();
    let backing_path = scratch.path().join("backing");
    std::fs::write(&backing_path, CONTENT).unwrap();
    let state = Arc::new(State {
        backing: OpenOptions::new()
            .read(true)
            .write(true)
            .open(&backing_path)
            .unwrap(),
        passthrough: OnceLock::new(),
        backing_id: Mutex::new(None),
        requests: AtomicUsize::new(0),
        ready: tokio::sync::Notify::new(),
    });

    let directory = tempfile::tempdir().unwrap();
    let mut options = MountOptions::default();
    options.fs_name("fuse3-passthrough-test").reader_threads(2);
    let mount = Session::new(options)
        .mount(Probe(state.clone()), directory.path())
        .await
        .expect("explicitly requested kernel test requires working FUSE as root");
    let initialized = tokio::time::timeout(Duration::from_secs(10), state.ready.notified()).await;

    let result = if initialized.is_ok() {
        let root = directory.path().to_path_buf();
        let state = state.clone();
        Some(
            tokio::task::spawn_blocking(move || {
                assert!(
                    matches!(state.passthrough.get(), Some(Some(_))),
                    "the kernel did not grant FUSE_PASSTHROUGH"
                );
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(root.join("file"))
                    .unwrap();
                let mut bytes = [0; CONTENT.len()];
                file.read_exact(&mut bytes).unwrap();
                assert_eq!(&bytes, CONTENT, "read through the backing file");
                file.seek(SeekFrom::Start(0)).unwrap();
                file.write_all(b"XY").unwrap();
                file.sync_all().unwrap();
                let mut written = [0; 2];
                state.backing.read_exact_at(&mut written, 0).unwrap();
                assert_eq!(&written, b"XY", "written through to the backing file");
                assert_eq!(state.requests.load(Ordering::SeqCst), 0, "no READ or WRITE");
                drop(file);
                // Closing the id leaves what the kernel opened alone.
                let id = state.backing_id.lock().unwrap().take().unwrap();
                assert!(id.id() > 0);
                drop(id);
            })
            .await,
        )
    } else {
        None
    };

    let unmounted = tokio::time::timeout(Duration::from_secs(10), mount.unmount()).await;
    assert!(initialized.is_ok(), "the session did not become ready");
    result.expect("initialized mount").unwrap();
    unmounted.unwrap().unwrap();
}
