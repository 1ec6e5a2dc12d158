//! The live tree `MNT/current` through a real mount, on both backends: every operation
//! with its errors, permissions as another uid, large directories and files, concurrent
//! writers, and a randomized differential test against tmpfs.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{symlink, FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::differential::*;
use common::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// The process umask (read without changing it).
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap_or(0o022)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What `names(MNT)` lists: the native sections and the built-in views, sorted.
fn root_names() -> Vec<String> {
    let mut v = root_listing(&[]);
    v.sort();
    v
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

// ---------------------------------------------------------------------------------------
// Layout of the mount root
// ---------------------------------------------------------------------------------------

both_backends! {
    fn root_layout(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        // The native sections (current, debug) and the built-in views, nothing else.
        assert_eq!(names(m.root()), root_names(), "MNT/ lists current, debug and the views");
        assert!(fs::metadata(m.current()).unwrap().is_dir(), "current is a directory");
        assert!(names(&m.current()).is_empty(), "fresh store: current/ is empty");

        // The root is read-only to everyone, root included.
        assert_errno(fs::create_dir(m.root().join("x")), libc::EACCES, "mkdir in MNT/");
        assert_errno(File::create(m.root().join("f")), libc::EACCES, "create in MNT/");
        assert_errno(symlink("current", m.root().join("s")), libc::EACCES, "symlink in MNT/");
        let root = m.root().to_path_buf();
        assert_eq!(
            run_as(1000, 1000, || fs::create_dir(root.join("y"))),
            Err(libc::EACCES),
            "mkdir in MNT/ as uid 1000"
        );

        // Between current/ and the root: EXDEV.
        fs::write(m.path("a"), b"x").unwrap();
        assert_errno(fs::rename(m.path("a"), m.root().join("a")), libc::EXDEV, "rename current/a -> MNT/a");
        assert_errno(fs::hard_link(m.path("a"), m.root().join("b")), libc::EXDEV, "link current/a -> MNT/b");
        assert_eq!(fs::read(m.path("a")).unwrap(), b"x", "failed rename left the file alone");
        assert_eq!(names(m.root()), root_names());
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Files: create, read, write, errors
// ---------------------------------------------------------------------------------------

both_backends! {
    fn files_read_write(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();

        fs::write(c.join("a.txt"), b"hello").unwrap();
        assert_eq!(fs::read(c.join("a.txt")).unwrap(), b"hello");
        assert_eq!(fs::metadata(c.join("a.txt")).unwrap().len(), 5);
        assert_eq!(names(&c), vec!["a.txt"]);

        // Errors of open/create.
        assert_errno(
            OpenOptions::new().write(true).create_new(true).open(c.join("a.txt")),
            libc::EEXIST,
            "O_CREAT|O_EXCL on an existing file",
        );
        assert_errno(File::open(c.join("missing")), libc::ENOENT, "open missing");
        assert_errno(File::create(c.join("missing/x")), libc::ENOENT, "create under missing dir");
        assert_errno(File::open(c.join("a.txt/x")), libc::ENOTDIR, "open under a file");
        assert_errno(File::create(c.join("a.txt/x")), libc::ENOTDIR, "create under a file");
        fs::create_dir(c.join("d")).unwrap();
        assert_errno(OpenOptions::new().write(true).open(c.join("d")), libc::EISDIR, "open dir for writing");
        let mut dirf = File::open(c.join("d")).unwrap();
        let mut buf = [0u8; 8];
        assert_errno(dirf.read(&mut buf), libc::EISDIR, "read(2) on a directory");
        drop(dirf);

        // Name limits and encoding.
        let long = "x".repeat(256);
        assert_errno(File::create(c.join(&long)), libc::ENAMETOOLONG, "256-byte name");
        assert_errno(fs::create_dir(c.join(&long)), libc::ENAMETOOLONG, "256-byte dir name");
        let max = "y".repeat(255);
        fs::write(c.join(&max), b"255").unwrap();
        assert_eq!(fs::read(c.join(&max)).unwrap(), b"255");
        assert!(names(&c).contains(&max), "255-byte name listed");
        assert_errno(File::create(join_bytes(&c, b"bad\xffname")), libc::EINVAL, "non-UTF-8 file name");
        assert_errno(fs::create_dir(join_bytes(&c, b"bad\xfedir")), libc::EINVAL, "non-UTF-8 dir name");
        let e = fs::metadata(join_bytes(&c, b"bad\xffname")).expect_err("non-UTF-8 name was not created");
        assert!([libc::ENOENT, libc::EINVAL].contains(&errno_of(&e)), "lookup of a non-UTF-8 name: {e}");
        // Multi-byte UTF-8 is fine.
        fs::write(c.join("ünïcødé-名前"), b"u").unwrap();
        assert!(names(&c).contains(&"ünïcødé-名前".to_string()));

        // pwrite in the middle and past the end (hole reads as zeros).
        let f = OpenOptions::new().read(true).write(true).open(c.join("a.txt")).unwrap();
        f.write_all_at(b"XY", 1).unwrap();
        f.write_all_at(b"Z", 10).unwrap();
        let mut got = vec![0u8; 32];
        let n = f.read_at(&mut got, 0).unwrap();
        assert_eq!(&got[..n], b"hXYlo\0\0\0\0\0Z", "pwrite middle + past end, same fd");
        assert_eq!(f.read_at(&mut got, 11).unwrap(), 0, "read at EOF returns 0");
        drop(f);
        assert_eq!(fs::read(c.join("a.txt")).unwrap(), b"hXYlo\0\0\0\0\0Z", "after close");
        assert_eq!(fs::metadata(c.join("a.txt")).unwrap().len(), 11);

        // O_APPEND appends, whatever the file offset.
        let mut ap = OpenOptions::new().append(true).open(c.join("a.txt")).unwrap();
        ap.write_all(b"12").unwrap();
        ap.write_all(b"34").unwrap();
        drop(ap);
        assert_eq!(fs::read(c.join("a.txt")).unwrap(), b"hXYlo\0\0\0\0\0Z1234");

        // A larger file written in chunks, read back in other chunks.
        let big = pattern(7, 3 * 1024 * 1024 + 123);
        {
            let mut f = File::create(c.join("big")).unwrap();
            for chunk in big.chunks(4096 + 17) {
                f.write_all(chunk).unwrap();
            }
            f.sync_all().unwrap();
        }
        let mut back = Vec::new();
        File::open(c.join("big")).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == big, "3 MiB file round-trip");
        let f = File::open(c.join("big")).unwrap();
        let mut mid = vec![0u8; 10000];
        f.read_exact_at(&mut mid, 1_000_003).unwrap();
        assert_eq!(&mid[..], &big[1_000_003..1_010_003], "random-offset read");
        drop(f);

        // Overwrite in place through one fd, read through another open fd.
        let w = OpenOptions::new().write(true).open(c.join("big")).unwrap();
        let r = File::open(c.join("big")).unwrap();
        w.write_all_at(b"OVERWRITE", 2_000_000).unwrap();
        let mut ov = [0u8; 9];
        r.read_exact_at(&mut ov, 2_000_000).unwrap();
        assert_eq!(&ov, b"OVERWRITE", "a write is visible to another open fd");
        drop((w, r));

        // unlink
        fs::remove_file(c.join("big")).unwrap();
        assert_errno(fs::metadata(c.join("big")), libc::ENOENT, "stat after unlink");
        assert_errno(fs::remove_file(c.join("big")), libc::ENOENT, "unlink missing");
        assert_errno(fs::remove_file(c.join("d")), libc::EISDIR, "unlink a directory");

        // An open file survives unlink until closed.
        fs::write(c.join("ghost"), b"boo").unwrap();
        let mut g = File::open(c.join("ghost")).unwrap();
        fs::remove_file(c.join("ghost")).unwrap();
        let mut s = String::new();
        g.read_to_string(&mut s).unwrap();
        assert_eq!(s, "boo", "read from an unlinked open file");
        drop(g);
        assert!(!names(&c).contains(&"ghost".to_string()));
        m.stop();
    }
}

both_backends! {
    fn truncate_ops(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = m.path("t");
        fs::write(&p, b"0123456789").unwrap();

        truncate(&p, 4).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"0123");
        truncate(&p, 8).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"0123\0\0\0\0", "extending truncate reads zeros");

        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        f.set_len(2).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 2, "ftruncate: fstat size");
        f.write_all_at(b"X", 5).unwrap();
        let mut b = Vec::new();
        (&f).read_to_end(&mut b).unwrap();
        assert_eq!(b, b"01\0\0\0X", "after ftruncate + pwrite past end");
        f.set_len(0).unwrap();
        drop(f);
        assert_eq!(fs::metadata(&p).unwrap().len(), 0);

        fs::write(&p, b"abcdef").unwrap();
        drop(OpenOptions::new().write(true).truncate(true).open(&p).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"", "O_TRUNC empties");

        fs::create_dir(m.path("dir")).unwrap();
        assert_errno(truncate(&m.path("dir"), 0), libc::EISDIR, "truncate a directory");
        assert_errno(truncate(&m.path("nope"), 0), libc::ENOENT, "truncate missing");
        assert_errno(truncate(&m.path("t/x"), 0), libc::ENOTDIR, "truncate under a file");
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------------

both_backends! {
    fn directories(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        let um = umask();

        mkdir_mode(&c.join("d"), 0o750).unwrap();
        assert!(fs::metadata(c.join("d")).unwrap().is_dir());
        assert_eq!(mode_of(&c.join("d")), 0o750 & !um, "mkdir mode (minus umask)");
        assert_errno(fs::create_dir(c.join("d")), libc::EEXIST, "mkdir existing dir");
        fs::write(c.join("f"), b"").unwrap();
        assert_errno(fs::create_dir(c.join("f")), libc::EEXIST, "mkdir over a file");
        assert_errno(fs::create_dir(c.join("missing/d")), libc::ENOENT, "mkdir under missing");
        assert_errno(fs::create_dir(c.join("f/d")), libc::ENOTDIR, "mkdir under a file");

        for n in ["x", "y", "z"] {
            fs::write(c.join("d").join(n), n).unwrap();
        }
        fs::create_dir(c.join("d/sub")).unwrap();
        assert_eq!(names(&c.join("d")), vec!["sub", "x", "y", "z"]);
        assert_errno(fs::remove_dir(c.join("d")), libc::ENOTEMPTY, "rmdir non-empty");
        assert_errno(fs::remove_dir(c.join("f")), libc::ENOTDIR, "rmdir a file");
        assert_errno(fs::remove_dir(c.join("nope")), libc::ENOENT, "rmdir missing");
        assert_errno(fs::remove_dir(c.join("d/.")), libc::EINVAL, "rmdir dir/.");
        fs::remove_dir(c.join("d/sub")).unwrap();
        assert_errno(fs::metadata(c.join("d/sub")), libc::ENOENT, "stat after rmdir");

        // Deep nesting.
        let mut deep = c.clone();
        for i in 0..24 {
            deep = deep.join(format!("level{i}"));
            fs::create_dir(&deep).unwrap();
        }
        fs::write(deep.join("leaf"), b"deep").unwrap();
        assert_eq!(fs::read(deep.join("leaf")).unwrap(), b"deep");
        fs::remove_dir_all(c.join("level0")).unwrap();
        assert_errno(fs::metadata(c.join("level0")), libc::ENOENT, "remove_dir_all");

        // readdir after a mix of creates and deletes lists exactly what exists.
        let dir = c.join("mix");
        fs::create_dir(&dir).unwrap();
        let mut want = BTreeSet::new();
        for i in 0..300 {
            let n = format!("n{i:03}");
            if i % 3 == 0 {
                fs::create_dir(dir.join(&n)).unwrap();
            } else {
                fs::write(dir.join(&n), n.as_bytes()).unwrap();
            }
            want.insert(n);
        }
        for i in (0..300).step_by(7) {
            let n = format!("n{i:03}");
            if i % 3 == 0 {
                fs::remove_dir(dir.join(&n)).unwrap();
            } else {
                fs::remove_file(dir.join(&n)).unwrap();
            }
            want.remove(&n);
        }
        assert_eq!(names(&dir), want.into_iter().collect::<Vec<_>>());
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Rename, including renameat2 flags
// ---------------------------------------------------------------------------------------

both_backends! {
    fn rename_ops(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        let p = |s: &str| c.join(s);

        // Plain rename keeps content and inode.
        fs::write(p("a"), b"A").unwrap();
        let ino = fs::metadata(p("a")).unwrap().ino();
        fs::rename(p("a"), p("b")).unwrap();
        assert_errno(fs::metadata(p("a")), libc::ENOENT, "old name gone");
        assert_eq!(fs::read(p("b")).unwrap(), b"A");
        assert_eq!(fs::metadata(p("b")).unwrap().ino(), ino, "rename keeps the inode");

        // Replace an existing file.
        fs::write(p("c"), b"C").unwrap();
        fs::rename(p("b"), p("c")).unwrap();
        assert_eq!(fs::read(p("c")).unwrap(), b"A", "replacing rename");
        assert_eq!(names(&c), vec!["c"]);

        // Rename to itself is a no-op.
        fs::rename(p("c"), p("c")).unwrap();
        assert_eq!(fs::read(p("c")).unwrap(), b"A");

        // Directories, with contents, across directories.
        fs::create_dir_all(p("d1/inner")).unwrap();
        fs::write(p("d1/inner/f"), b"F").unwrap();
        fs::create_dir(p("d2")).unwrap();
        fs::rename(p("d1"), p("d2/moved")).unwrap();
        assert_eq!(fs::read(p("d2/moved/inner/f")).unwrap(), b"F");
        assert_errno(fs::metadata(p("d1")), libc::ENOENT, "moved dir's old name");

        // Replace an empty directory with a directory.
        fs::create_dir(p("empty")).unwrap();
        fs::rename(p("d2/moved"), p("empty")).unwrap();
        assert_eq!(fs::read(p("empty/inner/f")).unwrap(), b"F", "dir replaced empty dir");

        // Errors.
        fs::create_dir(p("full")).unwrap();
        fs::write(p("full/x"), b"").unwrap();
        fs::create_dir(p("dd")).unwrap();
        assert_errno(fs::rename(p("dd"), p("full")), libc::ENOTEMPTY, "dir over non-empty dir");
        assert_errno(fs::rename(p("c"), p("dd")), libc::EISDIR, "file over dir");
        assert_errno(fs::rename(p("dd"), p("c")), libc::ENOTDIR, "dir over file");
        assert_errno(fs::rename(p("empty"), p("empty/inner/sub")), libc::EINVAL, "dir into its own subdir");
        assert_errno(fs::rename(p("nope"), p("x")), libc::ENOENT, "rename missing");
        assert_errno(fs::rename(p("c"), p("nodir/x")), libc::ENOENT, "rename into missing dir");
        assert_errno(fs::rename(p("c"), p("c/x")), libc::ENOTDIR, "rename under a file");
        assert_eq!(fs::read(p("c")).unwrap(), b"A", "failed renames left c alone");

        // RENAME_NOREPLACE
        fs::write(p("n1"), b"1").unwrap();
        fs::write(p("n2"), b"2").unwrap();
        assert_errno(renameat2(&p("n1"), &p("n2"), libc::RENAME_NOREPLACE), libc::EEXIST, "NOREPLACE onto existing");
        assert_eq!(fs::read(p("n2")).unwrap(), b"2");
        renameat2(&p("n1"), &p("n3"), libc::RENAME_NOREPLACE).unwrap();
        assert_eq!(fs::read(p("n3")).unwrap(), b"1");
        assert_errno(fs::metadata(p("n1")), libc::ENOENT, "NOREPLACE moved");

        // RENAME_EXCHANGE: two files, then a file and a directory.
        renameat2(&p("n2"), &p("n3"), libc::RENAME_EXCHANGE).unwrap();
        assert_eq!(fs::read(p("n2")).unwrap(), b"1");
        assert_eq!(fs::read(p("n3")).unwrap(), b"2");
        renameat2(&p("n2"), &p("full"), libc::RENAME_EXCHANGE).unwrap();
        assert!(fs::metadata(p("n2")).unwrap().is_dir(), "exchanged: n2 is now the dir");
        assert_eq!(fs::read(p("n2/x")).unwrap(), b"");
        assert_eq!(fs::read(p("full")).unwrap(), b"1", "exchanged: full is now the file");
        assert_errno(renameat2(&p("n3"), &p("absent"), libc::RENAME_EXCHANGE), libc::ENOENT, "EXCHANGE with missing");
        assert_errno(
            renameat2(&p("n3"), &p("n2"), libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE),
            libc::EINVAL,
            "EXCHANGE|NOREPLACE",
        );

        // Rename one hard link onto another of the same inode: no-op, both remain.
        fs::write(p("h1"), b"H").unwrap();
        fs::hard_link(p("h1"), p("h2")).unwrap();
        fs::rename(p("h1"), p("h2")).unwrap();
        assert_eq!(fs::read(p("h1")).unwrap(), b"H");
        assert_eq!(fs::metadata(p("h2")).unwrap().nlink(), 2);

        // Replacing a file that is still open keeps the open file's content readable.
        fs::write(p("old"), b"old content").unwrap();
        fs::write(p("new"), b"new").unwrap();
        let mut held = File::open(p("old")).unwrap();
        fs::rename(p("new"), p("old")).unwrap();
        let mut s = String::new();
        held.read_to_string(&mut s).unwrap();
        assert_eq!(s, "old content");
        assert_eq!(fs::read(p("old")).unwrap(), b"new");
        drop(held);
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Hard links and symlinks
// ---------------------------------------------------------------------------------------

both_backends! {
    fn hard_links(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        let p = |s: &str| c.join(s);

        fs::write(p("a"), b"shared").unwrap();
        fs::create_dir(p("d")).unwrap();
        fs::hard_link(p("a"), p("d/b")).unwrap();
        let (ma, mb) = (fs::metadata(p("a")).unwrap(), fs::metadata(p("d/b")).unwrap());
        assert_eq!(ma.ino(), mb.ino(), "links share the inode");
        assert_eq!((ma.nlink(), mb.nlink()), (2, 2));
        fs::hard_link(p("a"), p("c")).unwrap();
        assert_eq!(fs::metadata(p("a")).unwrap().nlink(), 3);

        // A write through one name is seen through the others.
        OpenOptions::new().write(true).open(p("d/b")).unwrap().write_all_at(b"SH", 0).unwrap();
        assert_eq!(fs::read(p("a")).unwrap(), b"SHared");
        assert_eq!(fs::read(p("c")).unwrap(), b"SHared");
        // chmod through one name shows through the others.
        chmod(&p("c"), 0o600).unwrap();
        assert_eq!(mode_of(&p("a")), 0o600);

        fs::remove_file(p("a")).unwrap();
        assert_eq!(fs::metadata(p("d/b")).unwrap().nlink(), 2);
        assert_eq!(fs::read(p("d/b")).unwrap(), b"SHared");
        fs::remove_file(p("c")).unwrap();
        assert_eq!(fs::metadata(p("d/b")).unwrap().nlink(), 1);

        assert_errno(fs::hard_link(p("d/b"), p("d/b")), libc::EEXIST, "link onto existing");
        assert_errno(fs::hard_link(p("d"), p("d2")), libc::EPERM, "link a directory");
        assert_errno(fs::hard_link(p("nope"), p("x")), libc::ENOENT, "link missing source");
        assert_errno(fs::hard_link(p("d/b"), p("nodir/x")), libc::ENOENT, "link into missing dir");

        // A hard link to a symlink links the symlink itself.
        symlink("d/b", p("s")).unwrap();
        fs::hard_link(p("s"), p("s2")).unwrap();
        assert!(fs::symlink_metadata(p("s2")).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_link(p("s2")).unwrap(), PathBuf::from("d/b"));
        m.stop();
    }
}

both_backends! {
    fn symlinks(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        let p = |s: &str| c.join(s);

        fs::create_dir(p("dir")).unwrap();
        fs::write(p("dir/file"), b"through").unwrap();
        symlink("dir/file", p("rel")).unwrap();
        symlink("../dir", p("dir/up")).unwrap();
        symlink("/etc/some/absolute", p("abs")).unwrap();
        symlink("nowhere", p("dangling")).unwrap();

        assert_eq!(fs::read_link(p("rel")).unwrap(), PathBuf::from("dir/file"));
        assert_eq!(fs::read_link(p("abs")).unwrap(), PathBuf::from("/etc/some/absolute"));
        let l = fs::symlink_metadata(p("rel")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(l.len(), "dir/file".len() as u64, "symlink size is its target length");
        assert_eq!(fs::read(p("rel")).unwrap(), b"through", "open follows the symlink");
        assert_eq!(fs::read(p("dir/up/file")).unwrap(), b"through", "directory symlink with ..");
        assert!(fs::metadata(p("rel")).unwrap().is_file(), "stat follows");
        assert_errno(fs::metadata(p("dangling")), libc::ENOENT, "stat dangling symlink");
        assert!(fs::symlink_metadata(p("dangling")).is_ok());
        assert_errno(fs::read_link(p("dir/file")), libc::EINVAL, "readlink of a file");
        assert_errno(fs::read_link(p("missing")), libc::ENOENT, "readlink missing");
        assert_errno(symlink("x", p("rel")), libc::EEXIST, "symlink onto existing");

        // Creating through a dangling symlink creates its target.
        fs::write(p("dangling"), b"made").unwrap();
        assert_eq!(fs::read(p("nowhere")).unwrap(), b"made");

        // Loops.
        symlink("loop2", p("loop1")).unwrap();
        symlink("loop1", p("loop2")).unwrap();
        assert_errno(File::open(p("loop1")), libc::ELOOP, "symlink loop");

        // Long targets survive byte for byte.
        let long_target: String = (0..40).map(|i| format!("segment{i:02}/")).collect::<String>() + "end";
        symlink(&long_target, p("long")).unwrap();
        assert_eq!(fs::read_link(p("long")).unwrap(), PathBuf::from(&long_target));

        // Unlinking a symlink leaves its target.
        fs::remove_file(p("rel")).unwrap();
        assert_eq!(fs::read(p("dir/file")).unwrap(), b"through");
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Attributes: chmod, chown, utimensat; mknod; xattrs; statfs; sparse and >1 GiB files
// ---------------------------------------------------------------------------------------

both_backends! {
    fn attributes(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = |s: &str| m.path(s);

        fs::write(p("f"), b"data").unwrap();
        fs::create_dir(p("d")).unwrap();
        for mode in [0o600, 0o644, 0o755, 0o000, 0o777, 0o640] {
            chmod(&p("f"), mode).unwrap();
            assert_eq!(mode_of(&p("f")), mode, "chmod file {mode:o}");
        }
        chmod(&p("d"), 0o711).unwrap();
        assert_eq!(mode_of(&p("d")), 0o711, "chmod dir");
        assert!(fs::metadata(p("d")).unwrap().is_dir(), "chmod keeps the file type");
        fs::set_permissions(p("d"), fs::Permissions::from_mode(0o755)).unwrap();

        // chown as root.
        lchown(&p("f"), 1234, 5678).unwrap();
        let md = fs::metadata(p("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1234, 5678), "chown");
        lchown(&p("f"), u32::MAX, 42).unwrap(); // -1: keep the uid
        let md = fs::metadata(p("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1234, 42), "chown with uid -1");
        symlink("f", p("s")).unwrap();
        lchown(&p("s"), 7, 8).unwrap();
        let ls = fs::symlink_metadata(p("s")).unwrap();
        assert_eq!((ls.uid(), ls.gid()), (7, 8), "lchown on a symlink");
        assert_eq!(fs::metadata(p("f")).unwrap().uid(), 1234, "lchown did not follow");

        // utimensat with nanoseconds.
        utimensat(&p("f"), (1_600_000_000, 123_456_789), (1_500_000_000, 987_654_321), 0).unwrap();
        let md = fs::metadata(p("f")).unwrap();
        assert_eq!((md.atime(), md.atime_nsec()), (1_600_000_000, 123_456_789), "atime");
        assert_eq!(mtime_of(&md), (1_500_000_000, 987_654_321), "mtime");
        utimensat(&p("f"), (0, libc::UTIME_OMIT), (1_400_000_000, 5), 0).unwrap();
        let md = fs::metadata(p("f")).unwrap();
        assert_eq!((md.atime(), md.atime_nsec()), (1_600_000_000, 123_456_789), "UTIME_OMIT keeps atime");
        assert_eq!(mtime_of(&md), (1_400_000_000, 5));
        utimensat(&p("d"), (1, 0), (2, 0), 0).unwrap();
        assert_eq!(mtime_of(&fs::metadata(p("d")).unwrap()), (2, 0), "dir mtime");

        // A write moves the mtime forward; UTIME_NOW does too.
        let before = mtime_of(&fs::metadata(p("f")).unwrap());
        OpenOptions::new().write(true).open(p("f")).unwrap().write_all(b"more").unwrap();
        let after = mtime_of(&fs::metadata(p("f")).unwrap());
        assert!(after > before, "write updates mtime: {before:?} -> {after:?}");
        utimensat(&p("f"), (0, libc::UTIME_OMIT), (1, 0), 0).unwrap();
        utimensat(&p("f"), (0, libc::UTIME_OMIT), (0, libc::UTIME_NOW), 0).unwrap();
        assert!(mtime_of(&fs::metadata(p("f")).unwrap()) > (1, 0), "UTIME_NOW");
        // Creating an entry updates the directory's mtime.
        utimensat(&p("d"), (1, 0), (2, 0), 0).unwrap();
        fs::write(p("d/new"), b"").unwrap();
        assert!(mtime_of(&fs::metadata(p("d")).unwrap()) > (2, 0), "create updates dir mtime");

        // Non-owners may not chmod/chown; non-root may not give files away.
        chmod(&p("f"), 0o644).unwrap();
        lchown(&p("f"), 0, 0).unwrap();
        let f = p("f");
        assert_eq!(run_as(1000, 1000, || chmod(&f, 0o777)), Err(libc::EPERM), "chmod by non-owner");
        assert_eq!(run_as(1000, 1000, || lchown(&f, 1000, 1000)), Err(libc::EPERM), "chown by non-root");
        assert_eq!(mode_of(&f), 0o644);
        m.stop();
    }
}

/// (major, minor) and kind bits of a path's st_rdev / st_mode, without following it.
fn dev_of(p: &Path) -> (u32, u32, u32) {
    let md = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    (
        md.mode() & libc::S_IFMT,
        libc::major(md.rdev()),
        libc::minor(md.rdev()),
    )
}

fn open_flags(p: &Path, flags: i32) -> io::Result<()> {
    let c = cpath(p);
    let fd = check(unsafe { libc::open(c.as_ptr(), flags) })?;
    unsafe { libc::close(fd) };
    Ok(())
}

both_backends! {
    fn device_nodes(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = |s: &str| m.path(s);
        let mount_opts = fs::read_to_string("/proc/self/mounts").unwrap();
        let line = mount_opts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(m.root().to_str().unwrap()))
            .expect("the mount is in /proc/self/mounts");
        assert!(line.split(' ').nth(3).unwrap().split(',').any(|o| o == "nodev"), "[{backend}] mounted nodev: {line}");

        // root (CAP_MKNOD) creates both kinds; mode, kind and rdev are kept.
        mknod(&p("null"), libc::S_IFCHR | 0o666, libc::makedev(1, 3)).unwrap();
        mknod(&p("loop"), libc::S_IFBLK | 0o640, libc::makedev(7, 0)).unwrap();
        mknod(&p("big"), libc::S_IFCHR | 0o600, libc::makedev(259, 70000)).unwrap();
        assert_eq!(dev_of(&p("null")), (libc::S_IFCHR, 1, 3));
        assert_eq!(dev_of(&p("loop")), (libc::S_IFBLK, 7, 0));
        assert_eq!(dev_of(&p("big")), (libc::S_IFCHR, 259, 70000), "a major above 255, a minor above 65535");
        assert_eq!(mode_of(&p("null")), 0o666 & !umask());
        assert_errno(mknod(&p("null"), libc::S_IFCHR | 0o600, libc::makedev(1, 3)), libc::EEXIST, "mknod over a name");

        // nodev: opening one never reaches a device. The kernel refuses before any FUSE
        // request (may_open_dev): EACCES, for reading, writing and non-blocking alike.
        for flags in [libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR | libc::O_NONBLOCK] {
            assert_errno(open_flags(&p("null"), flags), libc::EACCES, "open a char device on a nodev mount");
            assert_errno(open_flags(&p("loop"), flags), libc::EACCES, "open a block device on a nodev mount");
        }
        open_flags(&p("null"), libc::O_PATH).unwrap();

        // Only root may create devices: the kernel checks CAP_MKNOD before FUSE sees it
        // (no MKNOD request reaches the daemon).
        fs::create_dir(p("open")).unwrap();
        chmod(&p("open"), 0o777).unwrap();
        let (dev, fifo) = (p("open/dev"), p("open/fifo"));
        let mknods = || {
            let perf = json::parse(&fs::read_to_string(m.root().join("debug/performance.json")).unwrap()).unwrap();
            perf.at(&["ops", "mknod", "count"]).and_then(|c| c.as_u64()).unwrap_or(0)
        };
        let before = mknods();
        assert_eq!(run_as(1000, 1000, || mknod(&dev, libc::S_IFCHR | 0o644, libc::makedev(1, 3))), Err(libc::EPERM), "mknod c as uid 1000");
        assert_eq!(run_as(1000, 1000, || mknod(&dev, libc::S_IFBLK | 0o644, libc::makedev(7, 0))), Err(libc::EPERM), "mknod b as uid 1000");
        assert_eq!(mknods(), before, "[{backend}] the kernel refused before any MKNOD request");
        assert_errno(fs::symlink_metadata(&dev), libc::ENOENT, "no device node left behind");
        assert_eq!(run_as(1000, 1000, || mknod(&fifo, libc::S_IFIFO | 0o644, 0)), Ok(()), "a FIFO needs no privilege");
        mknod(&p("reg"), libc::S_IFREG | 0o640, 0).unwrap();
        assert!(fs::symlink_metadata(p("reg")).unwrap().is_file(), "mknod S_IFREG makes a regular file");

        // The usual fixtures: link, rename, chmod, chown, utimens, unlink.
        fs::hard_link(p("null"), p("null2")).unwrap();
        assert_eq!(fs::symlink_metadata(p("null")).unwrap().nlink(), 2);
        fs::rename(p("null2"), p("open/null3")).unwrap();
        chmod(&p("open/null3"), 0o604).unwrap();
        lchown(&p("open/null3"), 5, 7).unwrap();
        utimensat(&p("open/null3"), (1000, 5), (2000, 6), libc::AT_SYMLINK_NOFOLLOW).unwrap();
        let md = fs::symlink_metadata(p("null")).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid(), md.mtime(), md.mtime_nsec(), md.atime()), (0o604, 5, 7, 2000, 6, 1000), "the other name sees the inode's changes");
        assert_eq!(dev_of(&p("open/null3")), (libc::S_IFCHR, 1, 3));
        assert_errno(fs::create_dir(p("loop/x")), libc::ENOTDIR, "a device is not a directory");
        fs::rename(p("reg"), p("loop")).unwrap();
        assert!(fs::symlink_metadata(p("loop")).unwrap().is_file(), "rename over a device node");
        mknod(&p("loop"), libc::S_IFBLK | 0o640, libc::makedev(7, 0)).unwrap_err();
        fs::remove_file(p("loop")).unwrap();
        mknod(&p("loop"), libc::S_IFBLK | 0o640, libc::makedev(7, 1)).unwrap();
        fs::remove_file(p("open/null3")).unwrap();
        assert_eq!(fs::symlink_metadata(p("null")).unwrap().nlink(), 1);

        // Replayed at remount exactly.
        let want = snapshot(&m.current(), SnapOpts::FULL);
        assert_eq!(want["big"].rdev, Some((259, 70000)));
        m.stop();
        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::FULL), &want, &format!("[{backend}] devices after remount"));

        // history/: as FIFOs, empty files of the contract's kinds, with no bytes to read.
        fs::File::open(m.current()).unwrap().sync_all().unwrap();
        let h = m.root().join("history/-0s");
        for name in ["null", "loop", "open/fifo"] {
            let md = fs::symlink_metadata(h.join(name)).unwrap();
            assert!(md.is_file() && md.len() == 0, "[{backend}] {name} in history is an empty file");
            assert_errno(fs::read(h.join(name)), libc::EINVAL, &format!("[{backend}] read {name} in history"));
        }
        m.stop();

        // export writes them with mknod (as root): kind, rdev, mode, owner, times.
        let (_d, dest) = temp_dir("lhfs-export-");
        export(&dest, &store, None);
        assert_trees_eq(&snapshot(&dest, SnapOpts::FULL), &want, &format!("[{backend}] export of devices"));

        // import reads them back (and FIFOs).
        let (_s2, store2) = fresh_store();
        import(&dest, &store2);
        let m = Mount::start(backend, &store2);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::SHAPE), &snapshot(&dest, SnapOpts::SHAPE), &format!("[{backend}] import of devices"));
        m.stop();
    }
}

both_backends! {
    fn statfs_and_fsync(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = |s: &str| m.path(s);
        fs::write(p("x"), b"x").unwrap();

        // statfs answers on the root and inside current/.
        let st = statfs(m.root()).unwrap();
        assert!(st.f_bsize > 0, "statfs f_bsize");
        let st2 = statfs(&m.current()).unwrap();
        assert!(st2.f_namelen >= 255 || st2.f_namelen == 0, "statfs f_namelen {}", st2.f_namelen);

        // fsync and fdatasync succeed on files and directories.
        let f = OpenOptions::new().write(true).open(p("x")).unwrap();
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        drop(f);
        File::open(m.current()).unwrap().sync_all().unwrap();
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn sparse_and_large_files(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let p = m.path("sparse");
        let off: u64 = 3 << 29; // 1.5 GiB
        {
            let f = File::create(&p).unwrap();
            f.write_all_at(b"!", off).unwrap();
            assert_eq!(f.metadata().unwrap().len(), off + 1, "fstat size while open");
        }
        let md = fs::metadata(&p).unwrap();
        assert_eq!(md.len(), off + 1, "size after close");
        let f = File::open(&p).unwrap();
        let mut buf = vec![0xAAu8; 65536];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "hole at the start reads zeros");
        f.read_exact_at(&mut buf, 1 << 30).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "hole at 1 GiB reads zeros");
        let mut tail = vec![0xAAu8; 4097];
        f.read_exact_at(&mut tail, off - 4096).unwrap();
        assert!(tail[..4096].iter().all(|&b| b == 0));
        assert_eq!(tail[4096], b'!', "the byte at 1.5 GiB");
        let mut one = [0u8; 16];
        assert_eq!(f.read_at(&mut one, off + 1).unwrap(), 0, "EOF after the last byte");
        drop(f);

        // Write in the middle of the hole, then shrink below 4 GiB boundaries.
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"mid", (1 << 30) + 5).unwrap();
        drop(f);
        let f = File::open(&p).unwrap();
        let mut mid = [0u8; 5];
        f.read_exact_at(&mut mid, (1 << 30) + 4).unwrap();
        assert_eq!(&mid, b"\0mid\0");
        drop(f);
        truncate(&p, 10).unwrap();
        assert_eq!(fs::read(&p).unwrap(), vec![0u8; 10]);
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Permissions as another uid (default_permissions: the kernel checks mode bits)
// ---------------------------------------------------------------------------------------

/// A child-side assertion failure, carried as an errno nobody else returns here.
fn mismatch() -> io::Error {
    io::Error::from_raw_os_error(libc::EILSEQ)
}

both_backends! {
    fn permissions(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        mkdir_mode(&c.join("priv"), 0o700).unwrap();
        chmod(&c.join("priv"), 0o700).unwrap();
        fs::write(c.join("priv/secret"), b"s").unwrap();
        fs::create_dir(c.join("pub")).unwrap();
        chmod(&c.join("pub"), 0o755).unwrap();
        fs::write(c.join("pub/ro"), b"readable").unwrap();
        chmod(&c.join("pub/ro"), 0o644).unwrap();
        fs::write(c.join("pub/private"), b"p").unwrap();
        chmod(&c.join("pub/private"), 0o600).unwrap();
        fs::write(c.join("pub/group"), b"g").unwrap();
        chmod(&c.join("pub/group"), 0o640).unwrap();
        lchown(&c.join("pub/group"), 0, 1000).unwrap();
        fs::create_dir(c.join("open")).unwrap();
        chmod(&c.join("open"), 0o777).unwrap();
        fs::create_dir(c.join("xonly")).unwrap();
        fs::write(c.join("xonly/known"), b"k").unwrap();
        chmod(&c.join("xonly"), 0o711).unwrap();

        let q = |s: &str| c.join(s);
        let (ro, private, group, secret, privd) = (q("pub/ro"), q("pub/private"), q("pub/group"), q("priv/secret"), q("priv"));
        let (pubnew, mine, xonly, known) = (q("pub/new"), q("open/mine"), q("xonly"), q("xonly/known"));

        let ro2 = ro.clone();
        assert_eq!(
            run_as(1000, 1000, move || if fs::read(&ro2)? == b"readable" { Ok(()) } else { Err(mismatch()) }),
            Ok(()),
            "uid 1000 reads a 0644 file"
        );
        let r = ro.clone();
        assert_eq!(run_as(1000, 1000, || OpenOptions::new().write(true).open(&r).map(drop)), Err(libc::EACCES), "write 0644 as other");
        assert_eq!(run_as(1000, 1000, || fs::read(&private).map(drop)), Err(libc::EACCES), "read 0600 as other");
        assert_eq!(run_as(1000, 1000, || fs::read(&group).map(drop)), Ok(()), "read 0640 as group member");
        assert_eq!(run_as(1000, 1000, || OpenOptions::new().write(true).open(&group).map(drop)), Err(libc::EACCES), "write 0640 as group member");
        assert_eq!(run_as(1001, 1001, || fs::read(&group).map(drop)), Err(libc::EACCES), "read 0640 as non-member");
        assert_eq!(run_as(1000, 1000, || fs::metadata(&secret).map(drop)), Err(libc::EACCES), "stat inside a 0700 dir");
        assert_eq!(run_as(1000, 1000, || fs::read_dir(&privd).map(drop)), Err(libc::EACCES), "list a 0700 dir");
        assert_eq!(run_as(1000, 1000, || fs::write(&pubnew, b"x")), Err(libc::EACCES), "create in a 0755 root-owned dir");
        let r = ro.clone();
        assert_eq!(run_as(1000, 1000, || fs::remove_file(&r)), Err(libc::EACCES), "unlink in a 0755 root-owned dir");
        assert_eq!(run_as(1000, 1000, || fs::read_dir(&xonly).map(drop)), Err(libc::EACCES), "list a 0711 dir");
        assert_eq!(run_as(1000, 1000, || fs::read(&known).map(drop)), Ok(()), "open a known name in a 0711 dir");

        // Creating in a 0777 dir works and the new file belongs to the creator.
        let mn = mine.clone();
        assert_eq!(run_as(1000, 1000, || fs::write(&mn, b"mine")), Ok(()), "create in a 0777 dir");
        let md = fs::metadata(&mine).unwrap();
        assert_eq!((md.uid(), md.gid()), (1000, 1000), "owner of a file created by uid 1000");
        assert_eq!(fs::read(&mine).unwrap(), b"mine");
        let mn = mine.clone();
        assert_eq!(run_as(1000, 1000, || chmod(&mn, 0o600)), Ok(()), "owner may chmod");
        assert_eq!(mode_of(&mine), 0o600);
        let mn = mine.clone();
        assert_eq!(run_as(1001, 1001, || fs::read(&mn).map(drop)), Err(libc::EACCES), "other user reads 0600");
        // Root still can (DAC override).
        assert_eq!(fs::read(&mine).unwrap(), b"mine");
        // The permission checks left everything unchanged.
        assert_eq!(fs::read(&ro).unwrap(), b"readable");
        assert_errno(fs::metadata(&pubnew), libc::ENOENT, "denied create left nothing");
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Large directories
// ---------------------------------------------------------------------------------------

both_backends! {
    #[timeout_secs(600)]
    fn large_directory_100k(backend: Backend) {
        const N: usize = 100_000;
        // Seed the store through `import` of a tmpfs tree (fast), then list and stat
        // every entry through the mount.
        let src = Tmpfs::new();
        fs::create_dir(src.path().join("big")).unwrap();
        for i in 0..N {
            File::create(src.path().join("big").join(format!("e{i:06}"))).unwrap();
        }
        fs::write(src.path().join("big/e000007"), b"seven").unwrap();
        let (_t, store) = fresh_store();
        import(src.path(), &store);
        drop(src);

        let m = Mount::start(backend, &store);
        let big = m.path("big");
        let mut want: BTreeSet<String> = (0..N).map(|i| format!("e{i:06}")).collect();
        let got = names(&big);
        assert_eq!(got.len(), N, "readdir of {N} entries returns them all");
        assert!(got.iter().cloned().collect::<BTreeSet<_>>() == want, "readdir names");
        for n in &got {
            let md = fs::symlink_metadata(big.join(n)).unwrap_or_else(|e| panic!("stat {n}: {e}"));
            assert!(md.is_file(), "{n} is a file");
            let want_len = if n == "e000007" { 5 } else { 0 };
            assert_eq!(md.len(), want_len, "{n} size");
        }
        assert_eq!(fs::read(big.join("e000007")).unwrap(), b"seven");

        // Change it through the mount and list again.
        for i in 0..200 {
            let n = format!("new{i:03}");
            fs::write(big.join(&n), b"").unwrap();
            want.insert(n);
            let old = format!("e{:06}", i * 499);
            fs::remove_file(big.join(&old)).unwrap();
            want.remove(&old);
        }
        let got = names(&big);
        assert_eq!(got.len(), want.len());
        assert!(got.into_iter().collect::<BTreeSet<_>>() == want, "readdir after changes");
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent writers
// ---------------------------------------------------------------------------------------

const RECORD: usize = 64;

fn record(t: usize, i: usize) -> Vec<u8> {
    let mut r = format!("{t:02}:{i:05}:").into_bytes();
    r.resize(RECORD - 1, b'.');
    r.push(b'\n');
    r
}

both_backends! {
    #[timeout_secs(300)]
    fn concurrent_writers(backend: Backend) {
        const THREADS: usize = 4;
        const FILES: usize = 100;
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let c = m.current();
        fs::create_dir(c.join("shared")).unwrap();
        File::create(c.join("append.log")).unwrap();
        let stop_reader = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader_errors = Arc::new(Mutex::new(Vec::<String>::new()));

        let reader = {
            let (c, stop, errs) = (c.clone(), stop_reader.clone(), reader_errors.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match fs::read_dir(c.join("shared")) {
                        Ok(rd) => {
                            for e in rd {
                                if let Err(e) = e {
                                    errs.lock().unwrap().push(format!("readdir entry: {e}"));
                                }
                            }
                        }
                        Err(e) => errs.lock().unwrap().push(format!("readdir: {e}")),
                    }
                }
            })
        };

        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || -> io::Result<()> {
                    let own = c.join(format!("t{t}"));
                    fs::create_dir(&own)?;
                    let mut log = OpenOptions::new().append(true).open(c.join("append.log"))?;
                    for i in 0..FILES {
                        let data = pattern((t * 1000 + i) as u64, 100 + (i * 613) % 65536);
                        fs::write(own.join(format!("f{i}")), &data)?;
                        let tmp = c.join(format!("shared/.tmp.{t}.{i}"));
                        fs::write(&tmp, &data)?;
                        fs::rename(&tmp, c.join(format!("shared/k{t}_{i}")))?;
                        let rec = record(t, i);
                        let n = log.write(&rec)?;
                        assert_eq!(n, RECORD, "one O_APPEND write");
                    }
                    Ok(())
                })
            })
            .collect();
        for (t, w) in writers.into_iter().enumerate() {
            w.join().unwrap_or_else(|_| panic!("writer {t} panicked"))
                .unwrap_or_else(|e| panic!("writer {t}: {e}"));
        }
        stop_reader.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
        assert!(reader_errors.lock().unwrap().is_empty(), "readdir during writes: {:?}", reader_errors.lock().unwrap());

        let mut want_shared = Vec::new();
        for t in 0..THREADS {
            for i in 0..FILES {
                let data = pattern((t * 1000 + i) as u64, 100 + (i * 613) % 65536);
                assert!(fs::read(c.join(format!("t{t}/f{i}"))).unwrap() == data, "t{t}/f{i} content");
                assert!(fs::read(c.join(format!("shared/k{t}_{i}"))).unwrap() == data, "shared/k{t}_{i} content");
                want_shared.push(format!("k{t}_{i}"));
            }
            assert_eq!(names(&c.join(format!("t{t}"))).len(), FILES);
        }
        want_shared.sort();
        assert_eq!(names(&c.join("shared")), want_shared, "shared dir lists exactly the renamed files");

        // O_APPEND from several threads: every record intact, each exactly once, each
        // thread's records in its own order.
        let log = fs::read(c.join("append.log")).unwrap();
        assert_eq!(log.len(), THREADS * FILES * RECORD, "append.log size");
        let mut next = [0usize; THREADS];
        for rec in log.chunks(RECORD) {
            let t: usize = std::str::from_utf8(&rec[0..2]).unwrap().parse().unwrap();
            let i: usize = std::str::from_utf8(&rec[3..8]).unwrap().parse().unwrap();
            assert_eq!(rec, &record(t, i)[..], "torn record");
            assert_eq!(i, next[t], "thread {t}'s records in order");
            next[t] += 1;
        }
        assert_eq!(next, [FILES; THREADS]);
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Randomized differential test against tmpfs
// ---------------------------------------------------------------------------------------

both_backends! {
    #[timeout_secs(600)]
    fn differential_vs_tmpfs(backend: Backend) {
        let seed = test_seed();
        let ctx = format!("[{backend}] seed {seed} (rerun with LIGHTHOUSE_TEST_SEED={seed})");
        eprintln!("differential_vs_tmpfs: {ctx}");
        let reference = Tmpfs::new();
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let cur = m.current();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut recent: Vec<String> = Vec::new();

        for i in 0..OPS {
            let ents = entries(reference.path());
            let op = gen_op(&mut rng, &ents);
            let want = apply(reference.path(), &op);
            let got = apply(&cur, &op);
            recent.push(format!("#{i}: {op:?} -> {}", match &want {
                Ok(o) => format!("{o:?}"),
                Err(e) => errno_name(*e),
            }));
            if recent.len() > 12 {
                recent.remove(0);
            }
            if got != want {
                let show = |r: &Result<Out, i32>| match r {
                    Ok(o) => format!("Ok({o:?})"),
                    Err(e) => format!("Err({})", errno_name(*e)),
                };
                panic!(
                    "{ctx}: op #{i} {op:?}\n  lighthouse-fs: {}\n  tmpfs:         {}\nrecent ops:\n  {}",
                    show(&got),
                    show(&want),
                    recent.join("\n  ")
                );
            }
            if i % 500 == 499 {
                assert_trees_eq(
                    &snapshot(&cur, SnapOpts::SHAPE),
                    &snapshot(reference.path(), SnapOpts::SHAPE),
                    &format!("{ctx}: tree after op #{i}"),
                );
            }
        }
        let want = snapshot(reference.path(), SnapOpts::SHAPE);
        assert!(want.len() > 3, "{ctx}: the workload left a non-trivial tree");
        assert_trees_eq(&snapshot(&cur, SnapOpts::SHAPE), &want, &format!("{ctx}: final tree"));
        m.stop();

        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::SHAPE), &want, &format!("{ctx}: tree after remount"));
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Self-checks of the harness that need no lighthouse-fs binary
// ---------------------------------------------------------------------------------------

/// The differential machinery itself is deterministic: two tmpfs instances driven by the
/// same seed agree op for op and tree for tree (so a mismatch against lighthouse-fs is
/// the filesystem's, not the generator's).
#[test]
fn harness_differential_tmpfs_vs_tmpfs() {
    run_test(
        "harness_differential_tmpfs_vs_tmpfs",
        DEFAULT_TIMEOUT,
        || {
            let seed = test_seed();
            let (a, b) = (Tmpfs::new(), Tmpfs::new());
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut errors = 0;
            for i in 0..OPS {
                let op = gen_op(&mut rng, &entries(a.path()));
                let (x, y) = (apply(a.path(), &op), apply(b.path(), &op));
                assert_eq!(x, y, "seed {seed} op #{i} {op:?}");
                errors += x.is_err() as usize;
            }
            assert!(
                errors > OPS / 20 && errors < OPS * 3 / 4,
                "a useful mix of errors: {errors}/{OPS}"
            );
            let tree = snapshot(a.path(), SnapOpts::SHAPE);
            assert!(tree.len() > 3);
            assert_trees_eq(
                &snapshot(b.path(), SnapOpts::SHAPE),
                &tree,
                "tmpfs vs tmpfs",
            );
        },
    );
}

/// `run_as` really switches uid and carries the errno back.
#[test]
fn harness_run_as() {
    let t = Tmpfs::new();
    let f = t.path().join("rootonly");
    fs::write(&f, b"x").unwrap();
    chmod(&f, 0o600).unwrap();
    assert_eq!(
        run_as(1000, 1000, || fs::read(&f).map(drop)),
        Err(libc::EACCES)
    );
    let r = run_as_pid(1000, 1001, || {
        let (u, g) = unsafe { (libc::getuid(), libc::getgid()) };
        if (u, g) == (1000, 1001) {
            Ok(())
        } else {
            Err(mismatch())
        }
    });
    assert_eq!(r.result, Ok(()));
    assert!(r.pid > 0 && r.pid != std::process::id());
}

/// The modes after each way of dropping set-ID bits, in `dir`.
fn set_id_cases(dir: &Path) -> Vec<(&'static str, u32)> {
    let cases: [(&str, u32); 6] = [
        ("write", 0o6775),
        ("write-sgid-no-gx", 0o2764),
        ("truncate", 0o6775),
        ("open-trunc", 0o6775),
        ("chown", 0o6775),
        ("root-write", 0o6775),
    ];
    for (name, mode) in cases {
        let p = dir.join(name);
        fs::write(&p, b"data").unwrap();
        lchown(&p, 1000, 1000).unwrap();
        chmod(&p, mode).unwrap();
    }
    let q = |n: &str| dir.join(n);
    let w = |p: PathBuf| {
        move || {
            OpenOptions::new()
                .write(true)
                .open(&p)?
                .write_all_at(b"x", 1)
        }
    };
    assert_eq!(run_as(1000, 1000, w(q("write"))), Ok(()));
    assert_eq!(run_as(1000, 1000, w(q("write-sgid-no-gx"))), Ok(()));
    let t = q("truncate");
    assert_eq!(run_as(1000, 1000, move || truncate(&t, 1)), Ok(()));
    let o = q("open-trunc");
    assert_eq!(
        run_as(1000, 1000, move || OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&o)
            .map(drop)),
        Ok(())
    );
    lchown(&q("chown"), 1001, 1001).unwrap();
    OpenOptions::new()
        .write(true)
        .open(q("root-write"))
        .unwrap()
        .write_all_at(b"x", 1)
        .unwrap();
    cases.iter().map(|(n, _)| (*n, mode_of(&q(n)))).collect()
}

both_backends! {
    fn set_id_bits_are_dropped_as_on_tmpfs(backend: Backend) {
        let reference = Tmpfs::new();
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let want = set_id_cases(reference.path());
        // Spelled out: a write, truncate or O_TRUNC open by the owner, and any chown, drop
        // set-user-ID and (with group execute) set-group-ID; root's write keeps them.
        assert_eq!(
            want,
            [("write", 0o775), ("write-sgid-no-gx", 0o2764), ("truncate", 0o775), ("open-trunc", 0o775), ("chown", 0o775), ("root-write", 0o6775)]
        );
        assert_eq!(set_id_cases(&m.current()), want, "[{backend}] as tmpfs");
        let live = snapshot(&m.current(), SnapOpts::FULL);
        m.stop();
        let m = Mount::start(backend, &store);
        assert_trees_eq(&snapshot(&m.current(), SnapOpts::FULL), &live, &format!("[{backend}] after remount"));
        m.stop();
    }
}

both_backends! {
    fn device_nodes_through_the_programs_people_use(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let (_d, outside) = temp_dir("lhfs-tar-");
        let tarball = outside.join("devs.tar");
        let tarball = tarball.to_str().unwrap();
        let cur = m.current();
        let run = |args: &[&str]| {
            let out = std::process::Command::new(args[0]).args(&args[1..]).current_dir(&cur).output().unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let ok = |args: &[&str]| {
            let (success, stdout, stderr) = run(args);
            assert!(success, "[{backend}] {args:?}: {stderr}");
            stdout
        };
        ok(&["mknod", "-m", "0620", "tty9", "c", "4", "9"]);
        ok(&["mkdir", "devs"]);
        ok(&["mknod", "devs/loop7", "b", "7", "7"]);
        ok(&["mkfifo", "devs/pipe"]);
        let listing = ok(&["ls", "-l", "tty9", "devs"]);
        assert!(listing.lines().any(|l| l.starts_with("crw--w----") && l.contains("4, 9") && l.ends_with("tty9")), "[{backend}] ls -l: {listing}");
        assert!(listing.lines().any(|l| l.starts_with("brw-") && l.contains("7, 7") && l.ends_with("loop7")), "[{backend}] ls -l: {listing}");
        // cp -a and tar copy device nodes as root; mv, chmod and chown act on them.
        ok(&["cp", "-a", "devs", "copy"]);
        assert_eq!(dev_of(&m.path("copy/loop7")), (libc::S_IFBLK, 7, 7), "[{backend}] cp -a");
        ok(&["tar", "-cf", tarball, "devs"]);
        ok(&["mkdir", "untar"]);
        ok(&["tar", "-xf", tarball, "-C", "untar"]);
        assert_eq!(dev_of(&m.path("untar/devs/loop7")), (libc::S_IFBLK, 7, 7), "[{backend}] tar");
        ok(&["mv", "tty9", "devs/tty9"]);
        ok(&["chmod", "0600", "devs/tty9"]);
        ok(&["chown", "1000:1000", "devs/tty9"]);
        let md = fs::symlink_metadata(m.path("devs/tty9")).unwrap();
        assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o600, 1000, 1000), "[{backend}]");
        // nodev: reading one never reaches the device.
        let (success, _, stderr) = run(&["cat", "devs/tty9"]);
        assert!(!success && stderr.contains("Permission denied"), "[{backend}] cat of a device: {stderr}");
        ok(&["rm", "copy/loop7"]);
        assert_errno(fs::symlink_metadata(m.path("copy/loop7")), libc::ENOENT, "rm of a device");
        // All of it is in the log: a remount shows the same nodes.
        m.stop();
        let m = Mount::start(backend, &store);
        assert_eq!(dev_of(&m.path("devs/tty9")), (libc::S_IFCHR, 4, 9), "[{backend}] after a remount");
        assert_eq!(dev_of(&m.path("untar/devs/loop7")), (libc::S_IFBLK, 7, 7), "[{backend}] after a remount");
        assert!(fs::symlink_metadata(m.path("devs/pipe")).unwrap().file_type().is_fifo(), "[{backend}] the FIFO");
        m.stop();
    }
}
