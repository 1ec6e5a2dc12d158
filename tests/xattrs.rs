//! Extended attributes through a real mount, on both backends: the syscalls' errno
//! matrix against tmpfs, `cp -a`, `rsync -aX` and `tar --xattrs` round trips, replay
//! after a remount, `export` and `import`, the events in `history/.log`, the permission
//! checks for other users, and what views and `debug/` answer.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use common::differential::{self, xattr_call, Out, XattrCall};
use common::*;

/// Every extended attribute under `root` (not following symlinks): path → name → value.
fn dump(root: &Path) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut paths = vec![String::new()];
    paths.extend(differential::entries(root).into_iter().map(|(p, _)| p));
    for rel in paths {
        let p = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let Ok(Out::Names(names)) = xattr_call(&p, &XattrCall::List { size: 65536 }) else {
            panic!("listxattr {}", p.display());
        };
        let mut attrs = BTreeMap::new();
        for name in names {
            let name: &'static str = Box::leak(name.into_boxed_str());
            match xattr_call(&p, &XattrCall::Get { name, size: 65536 }) {
                Ok(Out::Bytes(v)) => {
                    attrs.insert(name.to_string(), v.0);
                }
                other => panic!("getxattr {} {name}: {other:?}", p.display()),
            }
        }
        if !attrs.is_empty() {
            out.insert(rel, attrs);
        }
    }
    out
}

fn get(p: &Path, name: &'static str) -> std::io::Result<Vec<u8>> {
    match xattr_call(p, &XattrCall::Get { name, size: 65536 })? {
        Out::Bytes(v) => Ok(v.0),
        other => panic!("{other:?}"),
    }
}

/// A small tree with attributes of every kind the store keeps, binary values included.
fn populate(root: &Path) {
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/f"), b"content").unwrap();
    fs::write(root.join("g"), b"other").unwrap();
    std::os::unix::fs::symlink("g", root.join("l")).unwrap();
    lsetxattr(&root.join("d"), "user.dir", b"on a directory").unwrap();
    lsetxattr(&root.join("d/f"), "user.text", b"hello").unwrap();
    lsetxattr(&root.join("d/f"), "user.binary", &[0, 255, 1, 0, 7]).unwrap();
    lsetxattr(&root.join("d/f"), "user.empty", b"").unwrap();
    lsetxattr(&root.join("d/f"), "user.large", &pattern(3, 60_000)).unwrap();
    lsetxattr(&root.join("g"), "trusted.root-only", b"t").unwrap();
    lsetxattr(&root.join("g"), "security.label", b"s").unwrap();
    lsetxattr(&root.join("l"), "trusted.on-link", b"link").unwrap();
}

/// One row of the matrix: what a call answered.
fn outcome(r: std::io::Result<Out>) -> Result<Out, String> {
    r.map_err(|e| errno_name(errno_of(&e)))
}

/// The calls of the matrix on a tree made by [`matrix_tree`], in order.
fn matrix(root: &Path) -> Vec<(String, Result<Out, String>)> {
    let mut rows = Vec::new();
    let mut row = |what: &str, p: &str, call: XattrCall| {
        let r = outcome(xattr_call(&root.join(p), &call));
        rows.push((format!("{what} ({p}, {call:?})"), r));
    };
    let s = |name, len, flags| XattrCall::Set {
        name,
        len,
        seed: 9,
        flags,
    };
    row("set", "f", s("user.a", 10, 0));
    row(
        "size probe",
        "f",
        XattrCall::Get {
            name: "user.a",
            size: 0,
        },
    );
    row(
        "buffer too small",
        "f",
        XattrCall::Get {
            name: "user.a",
            size: 4,
        },
    );
    row(
        "get",
        "f",
        XattrCall::Get {
            name: "user.a",
            size: 100,
        },
    );
    row(
        "missing",
        "f",
        XattrCall::Get {
            name: "user.zz",
            size: 100,
        },
    );
    row("create existing", "f", s("user.a", 3, libc::XATTR_CREATE));
    row("replace missing", "f", s("user.b", 3, libc::XATTR_REPLACE));
    row("replace", "f", s("user.a", 3, libc::XATTR_REPLACE));
    row("64 KiB value", "f", s("user.max", 65536, 0));
    row("value over 64 KiB", "f", s("user.big", 65537, 0));
    row("list size", "f", XattrCall::List { size: 0 });
    row("list too small", "f", XattrCall::List { size: 3 });
    row("list", "f", XattrCall::List { size: 1000 });
    row("remove", "f", XattrCall::Remove { name: "user.max" });
    row(
        "remove missing",
        "f",
        XattrCall::Remove { name: "user.max" },
    );
    row("on a directory", "d", s("user.a", 3, 0));
    row("user.* on a symlink", "l", s("user.a", 3, 0));
    row(
        "user.* get on a symlink",
        "l",
        XattrCall::Get {
            name: "user.a",
            size: 10,
        },
    );
    row("trusted.* on a symlink", "l", s("trusted.a", 3, 0));
    row("user.* on a FIFO", "p", s("user.a", 3, 0));
    row("user.* on a device", "c", s("user.a", 3, 0));
    row("security.* on a device", "c", s("security.a", 3, 0));
    row("trusted.*", "f", s("trusted.a", 3, 0));
    row("security.*", "f", s("security.a", 3, 0));
    row("list as root", "f", XattrCall::List { size: 1000 });
    rows
}

fn matrix_tree(root: &Path) {
    fs::write(root.join("f"), b"x").unwrap();
    fs::create_dir(root.join("d")).unwrap();
    std::os::unix::fs::symlink("f", root.join("l")).unwrap();
    mknod(&root.join("p"), libc::S_IFIFO | 0o644, 0).unwrap();
    mknod(&root.join("c"), libc::S_IFCHR | 0o644, libc::makedev(1, 3)).unwrap();
    // For another user: a 0644 file of root's with an attribute, and one of theirs.
    fs::write(root.join("ro"), b"x").unwrap();
    chmod(&root.join("ro"), 0o644).unwrap();
    lsetxattr(&root.join("ro"), "user.a", b"v").unwrap();
    lsetxattr(&root.join("ro"), "trusted.t", b"v").unwrap();
    fs::write(root.join("private"), b"x").unwrap();
    chmod(&root.join("private"), 0o600).unwrap();
    fs::write(root.join("mine"), b"x").unwrap();
    lchown(&root.join("mine"), 1000, 1000).unwrap();
}

/// What uid 1000 gets: (what, errno or 0).
fn as_other(root: &Path) -> Vec<(&'static str, i32)> {
    let q = |p: &str| root.join(p);
    let (ro, private, mine) = (q("ro"), q("private"), q("mine"));
    let call = |p: &Path, c: XattrCall| {
        let p = p.to_path_buf();
        run_as(1000, 1000, move || xattr_call(&p, &c).map(drop))
            .err()
            .unwrap_or(0)
    };
    let set = |name| XattrCall::Set {
        name,
        len: 1,
        seed: 1,
        flags: 0,
    };
    let listed = {
        let ro = ro.clone();
        run_as(1000, 1000, move || {
            match xattr_call(&ro, &XattrCall::List { size: 100 })? {
                Out::Names(n) if n == ["user.a"] => Ok(()),
                _ => Err(std::io::Error::from_raw_os_error(libc::EILSEQ)),
            }
        })
        .err()
        .unwrap_or(0)
    };
    vec![
        (
            "set user.* without write permission",
            call(&ro, set("user.b")),
        ),
        (
            "remove user.* without write permission",
            call(&ro, XattrCall::Remove { name: "user.a" }),
        ),
        (
            "get user.* with read permission",
            call(
                &ro,
                XattrCall::Get {
                    name: "user.a",
                    size: 10,
                },
            ),
        ),
        (
            "get user.* without read permission",
            call(
                &private,
                XattrCall::Get {
                    name: "user.a",
                    size: 10,
                },
            ),
        ),
        (
            "get trusted.*",
            call(
                &ro,
                XattrCall::Get {
                    name: "trusted.t",
                    size: 10,
                },
            ),
        ),
        ("set trusted.*", call(&mine, set("trusted.b"))),
        ("set security.*", call(&mine, set("security.b"))),
        ("set user.* on one's own file", call(&mine, set("user.b"))),
        ("list hides trusted.*", listed),
    ]
}

/// The names left on a file with a file capability after a write to it (the kernel drops
/// `security.capability` on a write, as it drops set-ID bits).
fn capability_after_write(dir: &Path) -> Vec<String> {
    let f = dir.join("capfile");
    fs::write(&f, b"data").unwrap();
    // struct vfs_cap_data, revision 2, effective: CAP_NET_BIND_SERVICE permitted.
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    lsetxattr(&f, "security.capability", &cap).unwrap();
    lsetxattr(&f, "user.keep", b"k").unwrap();
    assert_eq!(get(&f, "security.capability").unwrap(), cap);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .write_all(b"X")
        .unwrap();
    match xattr_call(&f, &XattrCall::List { size: 1000 }).unwrap() {
        Out::Names(n) => n,
        other => panic!("{other:?}"),
    }
}

both_backends! {
    fn errno_matrix_as_tmpfs(backend: Backend) {
        let reference = Tmpfs::new();
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let cur = m.current();
        matrix_tree(reference.path());
        matrix_tree(&cur);
        let (want, got) = (matrix(reference.path()), matrix(&cur));
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(g, w, "[{backend}] as tmpfs: {}", w.0);
        }
        // Spelled out, the values that matter most.
        let by: BTreeMap<&str, &Result<Out, String>> = got.iter().map(|(k, v)| (k.split(" (").next().unwrap(), v)).collect();
        assert_eq!(by["size probe"], &Ok(Out::Count(10)));
        assert_eq!(by["buffer too small"], &Err(errno_name(libc::ERANGE)));
        assert_eq!(by["missing"], &Err(errno_name(libc::ENODATA)));
        assert_eq!(by["create existing"], &Err(errno_name(libc::EEXIST)));
        assert_eq!(by["replace missing"], &Err(errno_name(libc::ENODATA)));
        assert_eq!(by["value over 64 KiB"], &Err(errno_name(libc::E2BIG)));
        assert_eq!(by["user.* on a symlink"], &Err(errno_name(libc::EPERM)));
        assert_eq!(by["user.* on a device"], &Err(errno_name(libc::EPERM)));
        // A name over 255 bytes: the kernel answers ERANGE before any filesystem.
        let long: &'static str = Box::leak(format!("user.{}", "n".repeat(251)).into_boxed_str());
        let s = XattrCall::Set { name: long, len: 1, seed: 1, flags: 0 };
        assert_eq!(outcome(xattr_call(&cur.join("f"), &s)), Err(errno_name(libc::ERANGE)));

        // Another user, as on tmpfs: mode bits for user.*, trusted.* and security.* root's.
        let (want, got) = (as_other(reference.path()), as_other(&cur));
        assert_eq!(got, want, "[{backend}] another user's errnos as on tmpfs");
        assert_eq!(got[0].1, libc::EACCES, "no write permission: EACCES");
        assert_eq!(got[5].1, libc::EPERM, "trusted.* as a user: EPERM");

        // POSIX ACLs (system.*) are not supported: no ACL to read, none can be set.
        let acl = [2u8, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff];
        assert_errno(get(&cur.join("f"), "system.posix_acl_access"), libc::EOPNOTSUPP, "get an ACL");
        assert_errno(lsetxattr(&cur.join("f"), "system.posix_acl_access", &acl), libc::EOPNOTSUPP, "set an ACL");

        // A write drops a file capability, as on tmpfs (on fuser too, under
        // FUSE_HANDLE_KILLPRIV_V2: the kernel still asks and removes it).
        let want = capability_after_write(reference.path());
        assert_eq!(want, ["user.keep"]);
        assert_eq!(capability_after_write(&cur), want, "[{backend}] security.capability after a write");

        // Replayed at remount: every attribute, byte for byte.
        let before = dump(&cur);
        assert!(before.contains_key("f") && before.contains_key("l"), "{before:?}");
        m.stop();
        let m = Mount::start(backend, &store);
        assert_eq!(dump(&m.current()), before, "[{backend}] attributes after remount");
        m.stop();
    }
}

/// Run a shell command line; panics with its output when it fails.
fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

both_backends! {
    #[timeout_secs(180)]
    fn cp_rsync_tar_round_trips(backend: Backend) {
        let src = Tmpfs::new();
        populate(src.path());
        let want = dump(src.path());
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let cur = m.current();
        let s = src.path().display();
        let c = cur.display();
        let back = Tmpfs::new();
        let b = back.path().display();
        // Into the mount and back out, each tool with its own option for attributes.
        sh(&format!("cp -a {s}/. {c}/cp && cp -a {c}/cp/. {b}/cp"));
        sh(&format!("rsync -aX {s}/ {c}/rsync/ && rsync -aX {c}/rsync/ {b}/rsync/"));
        sh(&format!(
            "mkdir {c}/tar {b}/tar && tar --xattrs --xattrs-include='*' -C {s} -cf - . | tar --xattrs --xattrs-include='*' -C {c}/tar -xf - \
             && tar --xattrs --xattrs-include='*' -C {c}/tar -cf - . | tar --xattrs --xattrs-include='*' -C {b}/tar -xf -"
        ));
        for tool in ["cp", "rsync", "tar"] {
            let inside = dump(&cur.join(tool));
            // tar and rsync carry what they were asked to; each must carry user.* whole.
            let user = |d: &BTreeMap<String, BTreeMap<String, Vec<u8>>>| -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
                d.iter()
                    .map(|(p, a)| (p.clone(), a.iter().filter(|(n, _)| n.starts_with("user.")).map(|(n, v)| (n.clone(), v.clone())).collect::<BTreeMap<_, _>>()))
                    .filter(|(_, a)| !a.is_empty())
                    .collect()
            };
            assert_eq!(user(&inside), user(&want), "[{backend}] {tool} into the mount");
            // What the tool carries from tmpfs to tmpfs, it carries through the mount.
            let direct = Tmpfs::new();
            let d = direct.path().display();
            match tool {
                "cp" => sh(&format!("cp -a {s}/. {d}/")),
                "rsync" => sh(&format!("rsync -aX {s}/ {d}/")),
                _ => sh(&format!("tar --xattrs --xattrs-include='*' -C {s} -cf - . | tar --xattrs --xattrs-include='*' -C {d} -xf -")),
            }
            assert_eq!(inside, dump(direct.path()), "[{backend}] {tool}: the mount keeps what tmpfs keeps");
            assert_eq!(dump(&back.path().join(tool)), inside, "[{backend}] {tool} out of the mount");
        }
        m.stop();
    }
}

both_backends! {
    fn export_import_and_history_log(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let cur = m.current();
        populate(&cur);
        fs::remove_file(cur.join("g")).ok();
        fs::write(cur.join("g"), b"other").unwrap();
        lsetxattr(&cur.join("g"), "trusted.root-only", b"t").unwrap();
        lsetxattr(&cur.join("g"), "user.gone", b"soon").unwrap();
        let c = std::ffi::CString::new("user.gone").unwrap();
        let gp = cpath(&cur.join("g"));
        check(unsafe { libc::lremovexattr(gp.as_ptr(), c.as_ptr()) }).unwrap();
        // A rename and a hard link carry them: they belong to the inode.
        fs::rename(cur.join("d/f"), cur.join("d/moved")).unwrap();
        fs::hard_link(cur.join("d/moved"), cur.join("linked")).unwrap();
        assert_eq!(get(&cur.join("linked"), "user.text").unwrap(), b"hello");
        let want = dump(&cur);

        // history/.log/<path>: each change is an event, the name in path2.
        fs::File::open(&cur).unwrap().sync_all().unwrap();
        let mut text = String::new();
        fs::File::open(m.root().join("history/.log/g")).unwrap().read_to_string(&mut text).unwrap();
        let events: Vec<(String, Option<String>, Option<u64>)> = text
            .lines()
            .map(|l| json::parse(l).unwrap())
            .map(|e| (e.get("op").unwrap().as_str().unwrap().to_string(), e.get("path2").and_then(|p| p.as_str()).map(String::from), e.get("size").and_then(|s| s.as_u64())))
            .filter(|e| e.0.ends_with("xattr"))
            .collect();
        assert_eq!(
            events[events.len() - 3..],
            [
                // A trusted.* name and size are root's to list: views show the namespace.
                ("setxattr".to_string(), Some("trusted.*".to_string()), None),
                ("setxattr".to_string(), Some("user.gone".to_string()), Some(4)),
                ("removexattr".to_string(), Some("user.gone".to_string()), None),
            ],
            "[{backend}] history/.log/g"
        );
        // The whole log so far: a non-blocking reader gets EAGAIN at its end.
        let mut all = Vec::new();
        let mut stream = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(m.root().join("streams/all")).unwrap();
        let end = stream.read_to_end(&mut all).unwrap_err();
        assert_eq!(end.raw_os_error(), Some(libc::EAGAIN), "[{backend}] the end of streams/all");
        let all = String::from_utf8(all).unwrap();
        assert!(all.contains("user.gone"), "[{backend}] streams/all shows the events: {all}");
        for (name, shown) in [("history/.log/g", &text), ("streams/all", &all)] {
            assert!(!shown.contains("root-only"), "[{backend}] {name} shows no trusted.* name: {shown}");
        }
        // The views have none; setting one there is not supported; debug/ neither.
        let hist = m.root().join("history/-0s/d/moved");
        assert!(hist.is_file());
        assert_eq!(xattr_call(&hist, &XattrCall::List { size: 100 }).unwrap(), Out::Names(vec![]));
        assert_errno(get(&hist, "user.text"), libc::ENODATA, "history has no attributes");
        assert_errno(lsetxattr(&hist, "user.x", b"v"), libc::EOPNOTSUPP, "set in a view");
        assert_errno(lsetxattr(&m.root().join("debug/health.json"), "user.x", b"v"), libc::EOPNOTSUPP, "set in debug/");
        m.stop();

        // export writes them (as root: trusted.* too), and import reads them back. Onto
        // tmpfs: a disk filesystem may hold less (ext4 keeps a value within a block).
        let dest_fs = Tmpfs::new();
        let dest = dest_fs.path().to_path_buf();
        export(&dest, &store, None);
        assert_eq!(dump(&dest), want, "[{backend}] export carries the attributes");
        let (_s2, store2) = fresh_store();
        import(&dest, &store2);
        let m = Mount::start(backend, &store2);
        assert_eq!(dump(&m.current()), want, "[{backend}] import carries the attributes");
        m.stop();
    }
}
