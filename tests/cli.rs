//! The command line around the mount: bad input (each refused with one error line, exit
//! code 1 and the store untouched), the store lock, `umount` (also of a busy mount),
//! signals, and cleaning up a stale mount left by a killed server.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;

/// Every file of a directory tree with its bytes (to prove a store was not touched).
fn dir_bytes(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(p);
            } else if e.file_type().unwrap().is_symlink() {
                out.insert(
                    rel,
                    fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else {
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// An initialised store holding one file, made with `import`.
fn seeded_store() -> (tempfile::TempDir, PathBuf) {
    let (t, store) = fresh_store();
    let (_s, src) = temp_dir("lhfs-seed-");
    fs::write(src.join("seed.txt"), b"seed").unwrap();
    import(&src, &store);
    (t, store)
}

#[track_caller]
fn assert_not_mounted(p: &Path) {
    assert!(!is_mounted(p), "{} must not be mounted", p.display());
}

both_backends! {
    fn mount_refuses_bad_mountpoints(backend: Backend) {
        let (_t, store) = seeded_store();
        let before = dir_bytes(&store);
        let (_d, dir) = temp_dir("lhfs-bad-");

        let missing = dir.join("no-such-mountpoint");
        let out = mount_expect_failure(backend, &store, &missing, &[]);
        out.assert_error(&["no-such-mountpoint"]);
        assert!(!missing.exists(), "a missing mountpoint is not created");

        let file = dir.join("a-file");
        fs::write(&file, b"not a dir").unwrap();
        let out = mount_expect_failure(backend, &store, &file, &[]);
        out.assert_error(&["a-file"]);
        assert_not_mounted(&file);
        assert_eq!(fs::read(&file).unwrap(), b"not a dir");

        assert!(dir_bytes(&store) == before, "store untouched by refused mounts");

        // The store still mounts fine afterwards.
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("seed.txt")).unwrap(), b"seed");
        m.stop();
    }
}

both_backends! {
    fn mount_refuses_a_mounted_mountpoint(backend: Backend) {
        let (_t1, store1) = fresh_store();
        let (_t2, store2) = seeded_store();
        let before = dir_bytes(&store2);
        let m = Mount::start(backend, &store1);
        fs::write(m.path("mine"), b"first mount").unwrap();
        let mnt = m.root().to_path_buf();
        let out = mount_expect_failure(backend, &store2, &mnt, &[]);
        out.assert_error(&[mnt.to_str().unwrap()]);
        assert_eq!(mounts_at(&mnt).len(), 1, "still exactly one mount at {}", mnt.display());
        assert!(dir_bytes(&store2) == before, "second store untouched");
        // The first mount is unaffected.
        assert_eq!(fs::read(m.path("mine")).unwrap(), b"first mount");
        fs::write(m.path("more"), b"still serving").unwrap();
        assert_eq!(fs::read(m.path("more")).unwrap(), b"still serving");
        m.stop();
    }
}

both_backends! {
    fn store_lock(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::write(m.path("f"), b"one").unwrap();

        let (_d, dir) = temp_dir("lhfs-second-");
        let mnt2 = dir.join("mnt");
        fs::create_dir(&mnt2).unwrap();
        let out = mount_expect_failure(backend, &store, &mnt2, &[]);
        out.assert_error(&["locked"]);
        assert_not_mounted(&mnt2);

        let (_s, src) = temp_dir("lhfs-src-");
        fs::write(src.join("x"), b"x").unwrap();
        let out = cli([OsString::from("import"), src.clone().into(), "--store".into(), store.clone().into()]);
        out.assert_error(&["locked"]);

        // The serving mount did not notice.
        assert_eq!(fs::read(m.path("f")).unwrap(), b"one");
        fs::write(m.path("g"), b"two").unwrap();
        m.stop();

        // Once the server is gone, the lock is free again and nothing was imported.
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("g")).unwrap(), b"two");
        assert_errno(fs::metadata(m.path("x")), libc::ENOENT, "refused import left no trace");
        m.stop();
    }
}

both_backends! {
    fn mount_refuses_bad_stores(backend: Backend) {
        let (_d, dir) = temp_dir("lhfs-stores-");
        let mnt = dir.join("mnt");
        fs::create_dir(&mnt).unwrap();

        // A corrupt event log.
        let (_t, store) = seeded_store();
        let db = store.join("events.db");
        assert!(db.is_file(), "a store keeps its log in events.db (contract example)");
        let garbage: Vec<u8> = pattern(99, 64 * 1024);
        fs::write(&db, &garbage).unwrap();
        let before = dir_bytes(&store);
        let out = mount_expect_failure(backend, &store, &mnt, &[]);
        out.assert_error(&["corrupt"]);
        assert_not_mounted(&mnt);
        assert!(fs::read(&db).unwrap() == garbage, "corrupt events.db left byte for byte");
        assert!(dir_bytes(&store) == before, "corrupt store untouched");

        // A non-empty directory that is not a store.
        let (_o, other) = temp_dir("lhfs-notastore-");
        fs::write(other.join("unrelated.txt"), b"keep me").unwrap();
        let before = dir_bytes(&other);
        let out = mount_expect_failure(backend, &other, &mnt, &[]);
        out.assert_error(&[]);
        assert_not_mounted(&mnt);
        assert!(dir_bytes(&other) == before, "non-store dir untouched");

        // An unknown backend (clap may exit 2): refused, naming the value.
        let (_t2, store2) = seeded_store();
        let before = dir_bytes(&store2);
        let args: Vec<OsString> = vec![
            "mount".into(), mnt.clone().into(), "--store".into(), store2.clone().into(), "--backend".into(), "nope".into(),
        ];
        let out = mount_args_expect_failure(&mnt, args);
        assert!(!out.status.success(), "--backend nope must fail");
        assert!(out.stderr.contains("nope"), "error names the backend: {}", out.stderr);
        assert_not_mounted(&mnt);
        assert!(dir_bytes(&store2) == before, "store untouched by a bad backend");

        // Bad values of the data-path and view flags: refused, naming the flag.
        for (flag, value) in [("--passthrough", "sometimes"), ("--view-time-limit", "5"), ("--view-time-limit", "soon"), ("--passthrough-min-size", "lots")] {
            let args: Vec<OsString> = vec![
                "mount".into(), mnt.clone().into(), "--store".into(), store2.clone().into(), flag.into(), value.into(),
            ];
            let out = mount_args_expect_failure(&mnt, args);
            assert!(!out.status.success(), "{flag} {value} must fail");
            assert!(out.stderr.contains(flag) && out.stderr.contains(value), "the error names {flag} {value}: {}", out.stderr);
            assert_not_mounted(&mnt);
        }
        assert!(dir_bytes(&store2) == before, "store untouched by bad flags");
        let _ = backend;
    }
}

both_backends! {
    fn store_is_created_if_missing(backend: Backend) {
        let (_t, store) = fresh_store();
        assert!(!store.exists());
        let m = Mount::start(backend, &store);
        assert!(store.is_dir(), "--store DIR is created");
        fs::write(m.path("hello"), b"world").unwrap();
        m.stop();
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("hello")).unwrap(), b"world");
        m.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Ending a mount: umount, busy umount, signals, kill -9 and the stale mount
// ---------------------------------------------------------------------------------------

both_backends! {
    fn umount_command_ends_the_server(backend: Backend) {
        let (_t, store) = fresh_store();
        let mut m = Mount::start(backend, &store);
        fs::write(m.path("kept"), b"yes").unwrap();
        let out = cli([OsString::from("umount"), m.root().into()]);
        out.ok();
        assert!(!is_mounted(m.root()), "umount removed the mount");
        m.assert_clean_exit("after `lighthouse-fs umount`");
        drop(m);
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("kept")).unwrap(), b"yes");
        m.stop();
    }
}

both_backends! {
    fn umount_of_a_busy_mount_is_lazy(backend: Backend) {
        let (_t, store) = fresh_store();
        let mut m = Mount::start(backend, &store);
        fs::write(m.path("held"), b"held open").unwrap();
        let mut held = File::open(m.path("held")).unwrap();
        let out = cli([OsString::from("umount"), m.root().into()]);
        out.ok();
        assert!(!is_mounted(m.root()), "busy mount detached from the namespace");
        // The open file still reads through the detached mount.
        let mut s = String::new();
        held.read_to_string(&mut s).unwrap();
        assert_eq!(s, "held open");
        drop(held);
        // With the last reference gone the server ends, exit 0.
        m.assert_clean_exit("after lazy umount and closing the last fd");
    }
}

both_backends! {
    fn sigint_and_sigterm_unmount_cleanly(backend: Backend) {
        let (_t, store) = fresh_store();
        let mut m = Mount::start(backend, &store);
        fs::write(m.path("a"), b"before SIGINT").unwrap();
        m.signal(libc::SIGINT);
        m.assert_clean_exit("after SIGINT");
        drop(m);
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("a")).unwrap(), b"before SIGINT");
        fs::write(m.path("b"), b"before SIGTERM").unwrap();
        m.stop(); // SIGTERM, exit 0, unmounted
        let m = Mount::start(backend, &store);
        assert_eq!(fs::read(m.path("b")).unwrap(), b"before SIGTERM");
        m.stop();
    }
}

both_backends! {
    fn stale_mount_is_cleaned_up(backend: Backend) {
        let (_d, dir) = temp_dir("lhfs-stale-");
        let mnt = dir.join("mnt");
        fs::create_dir(&mnt).unwrap();
        let _cleanup = DetachOnDrop(mnt.clone());
        let (_t, store) = fresh_store();

        let mut m = Mount::start_at(backend, &store, &mnt, &[]);
        let f = File::create(m.path("synced")).unwrap();
        std::io::Write::write_all(&mut &f, b"fsync'd before the kill").unwrap();
        f.sync_all().unwrap();
        drop(f);
        m.kill9();
        assert_errno(fs::read_dir(&mnt), libc::ENOTCONN, "stale mount after kill -9");
        assert!(is_mounted(&mnt), "the dead mount is still in the table");

        // The next mount at the same place cleans it up and serves.
        let m2 = Mount::start_at(backend, &store, &mnt, &[]);
        assert_eq!(mounts_at(&mnt).len(), 1, "exactly one mount at {} (stale one removed)", mnt.display());
        assert_eq!(fs::read(m2.path("synced")).unwrap(), b"fsync'd before the kill");
        m2.stop();
        assert_not_mounted(&mnt);
        drop(m);
    }
}

// ---------------------------------------------------------------------------------------
// Offline commands: bad input
// ---------------------------------------------------------------------------------------

#[test]
fn export_refuses_a_non_empty_dest() {
    run_test("export_refuses_a_non_empty_dest", DEFAULT_TIMEOUT, || {
        let (_t, store) = seeded_store();
        let before = dir_bytes(&store);
        let (_d, dest) = temp_dir("lhfs-dest-");
        fs::write(dest.join("precious"), b"do not overwrite").unwrap();
        let out = cli([
            OsString::from("export"),
            dest.clone().into(),
            "--store".into(),
            store.clone().into(),
        ]);
        out.assert_error(&[]);
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 1, "DEST unchanged");
        assert_eq!(
            fs::read(dest.join("precious")).unwrap(),
            b"do not overwrite"
        );
        assert!(dir_bytes(&store) == before, "store untouched");

        // A missing DEST is created.
        let fresh = dest.join("sub");
        let out = cli([
            OsString::from("export"),
            fresh.clone().into(),
            "--store".into(),
            store.clone().into(),
        ]);
        out.ok();
        assert_eq!(fs::read(fresh.join("seed.txt")).unwrap(), b"seed");
    });
}

#[test]
fn import_refuses_a_missing_source() {
    run_test("import_refuses_a_missing_source", DEFAULT_TIMEOUT, || {
        let (_t, store) = seeded_store();
        let before = dir_bytes(&store);
        let (_d, dir) = temp_dir("lhfs-src-");
        let out = cli([
            OsString::from("import"),
            dir.join("absent").into(),
            "--store".into(),
            store.clone().into(),
        ]);
        out.assert_error(&["absent"]);
        assert!(dir_bytes(&store) == before, "store untouched");
    });
}
