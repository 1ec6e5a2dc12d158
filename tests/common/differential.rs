//! The randomized differential machinery: random operations on a small tree ([`gen_op`])
//! applied through ordinary syscalls ([`apply`]) to lighthouse-fs and to a reference
//! filesystem (tmpfs), whose answers and trees must agree. Used by the live tree's
//! differential test and by the side-by-side mounts' (where each operation goes through
//! one mount or the other).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{symlink, DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::Rng;

use super::*;

pub fn mkdir_mode(p: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().mode(mode).create(p)
}

pub const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
pub const OPS: usize = 3000;

#[derive(Debug, Clone)]
pub enum Op {
    Create {
        p: String,
        mode: u32,
        excl: bool,
        trunc: bool,
    },
    Write {
        p: String,
        off: u64,
        len: usize,
        seed: u64,
        append: bool,
    },
    Read {
        p: String,
        off: u64,
        len: usize,
    },
    Truncate {
        p: String,
        len: u64,
    },
    Rename {
        from: String,
        to: String,
        flags: u32,
    },
    Unlink {
        p: String,
    },
    Mkdir {
        p: String,
        mode: u32,
    },
    Rmdir {
        p: String,
    },
    Link {
        from: String,
        to: String,
    },
    Symlink {
        target: String,
        p: String,
    },
    Readlink {
        p: String,
    },
    Chmod {
        p: String,
        mode: u32,
    },
    Stat {
        p: String,
        follow: bool,
    },
    Readdir {
        p: String,
    },
    /// An extended attribute call (the l* variants: a symlink's own).
    Xattr {
        p: String,
        call: XattrCall,
    },
    /// A FIFO or a device node (the tests run as root: CAP_MKNOD).
    Mknod {
        p: String,
        mode: u32,
        rdev: u64,
    },
}

#[derive(Debug, Clone)]
pub enum XattrCall {
    Set {
        name: &'static str,
        len: usize,
        seed: u64,
        flags: i32,
    },
    /// With a buffer of `size` bytes (0: ask the size).
    Get {
        name: &'static str,
        size: usize,
    },
    List {
        size: usize,
    },
    Remove {
        name: &'static str,
    },
}

pub const XATTR_NAMES: [&str; 4] = ["user.a", "user.b", "trusted.t", "security.s"];

/// Run one extended attribute call on `path` as the syscall answers it.
pub fn xattr_call(path: &Path, call: &XattrCall) -> io::Result<Out> {
    use std::ffi::CString;
    let c = cpath(path);
    let n = |name: &str| CString::new(name).unwrap();
    match call {
        XattrCall::Set {
            name,
            len,
            seed,
            flags,
        } => {
            let v = pattern(*seed, *len);
            let name = n(name);
            check(unsafe {
                libc::lsetxattr(
                    c.as_ptr(),
                    name.as_ptr(),
                    v.as_ptr().cast(),
                    v.len(),
                    *flags,
                )
            })
            .map(|_| Out::Unit)
        }
        XattrCall::Get { name, size } => {
            let name = n(name);
            let mut buf = vec![0u8; *size];
            let got = unsafe {
                libc::lgetxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), *size)
            };
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            if *size == 0 {
                return Ok(Out::Count(got as usize));
            }
            buf.truncate(got as usize);
            Ok(Out::Bytes(Content(buf)))
        }
        XattrCall::List { size } => {
            let mut buf = vec![0u8; *size];
            let got = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), *size) };
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            if *size == 0 {
                return Ok(Out::Count(got as usize));
            }
            buf.truncate(got as usize);
            // The order of the list is the filesystem's: compare the set of names.
            let mut names: Vec<String> = buf
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            names.sort();
            Ok(Out::Names(names))
        }
        XattrCall::Remove { name } => {
            let name = n(name);
            check(unsafe { libc::lremovexattr(c.as_ptr(), name.as_ptr()) }).map(|_| Out::Unit)
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Out {
    Unit,
    Count(usize),
    Bytes(Content),
    Stat {
        kind: Kind,
        perm: u32,
        size: Option<u64>,
        nlink: Option<u64>,
        rdev: Option<(u32, u32)>,
    },
    Names(Vec<String>),
    Target(PathBuf),
}

pub fn res<T>(r: io::Result<T>, f: impl FnOnce(T) -> Out) -> Result<Out, i32> {
    r.map(f).map_err(|e| errno_of(&e))
}

pub fn apply(root: &Path, op: &Op) -> Result<Out, i32> {
    let j = |s: &str| {
        if s.is_empty() {
            root.to_path_buf()
        } else {
            root.join(s)
        }
    };
    match op {
        Op::Create {
            p,
            mode,
            excl,
            trunc,
        } => {
            let mut o = OpenOptions::new();
            // Non-blocking: an open of a FIFO fails (ENXIO) instead of waiting for a reader.
            o.write(true)
                .mode(*mode)
                .truncate(*trunc)
                .custom_flags(libc::O_NONBLOCK);
            if *excl {
                o.create_new(true);
            } else {
                o.create(true);
            }
            res(o.open(j(p)), |_| Out::Unit)
        }
        Op::Write {
            p,
            off,
            len,
            seed,
            append,
        } => {
            let data = pattern(*seed, *len);
            let r = OpenOptions::new()
                .write(true)
                .append(*append)
                .custom_flags(libc::O_NONBLOCK)
                .open(j(p))
                .and_then(|mut f| {
                    if *append {
                        f.write_all(&data)
                    } else {
                        f.write_all_at(&data, *off)
                    }
                });
            res(r, |_| Out::Count(data.len()))
        }
        Op::Read { p, off, len } => {
            let r = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(j(p))
                .and_then(|f| {
                    let mut buf = vec![0u8; *len];
                    let mut got = 0;
                    while got < *len {
                        let n = f.read_at(&mut buf[got..], off + got as u64)?;
                        if n == 0 {
                            break;
                        }
                        got += n;
                    }
                    buf.truncate(got);
                    Ok(buf)
                });
            res(r, |b| Out::Bytes(Content(b)))
        }
        Op::Truncate { p, len } => res(truncate(&j(p), *len), |_| Out::Unit),
        Op::Rename { from, to, flags } => res(renameat2(&j(from), &j(to), *flags), |_| Out::Unit),
        Op::Unlink { p } => res(fs::remove_file(j(p)), |_| Out::Unit),
        Op::Mkdir { p, mode } => res(mkdir_mode(&j(p), *mode), |_| Out::Unit),
        Op::Rmdir { p } => res(fs::remove_dir(j(p)), |_| Out::Unit),
        Op::Link { from, to } => res(fs::hard_link(j(from), j(to)), |_| Out::Unit),
        Op::Symlink { target, p } => res(symlink(target, j(p)), |_| Out::Unit),
        Op::Readlink { p } => res(fs::read_link(j(p)), Out::Target),
        Op::Chmod { p, mode } => res(chmod(&j(p), *mode), |_| Out::Unit),
        Op::Stat { p, follow } => {
            let md = if *follow {
                fs::metadata(j(p))
            } else {
                fs::symlink_metadata(j(p))
            };
            res(md, |md| {
                let kind = kind_of(md.file_type());
                let dir = kind == Kind::Dir;
                Out::Stat {
                    kind,
                    perm: md.mode() & 0o7777,
                    size: (!dir).then_some(md.size()),
                    nlink: (!dir).then_some(md.nlink()),
                    rdev: matches!(kind, Kind::CharDev | Kind::BlockDev)
                        .then(|| (libc::major(md.rdev()), libc::minor(md.rdev()))),
                }
            })
        }
        Op::Readdir { p } => {
            let r = fs::read_dir(j(p)).and_then(|rd| {
                let mut v = rd
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<io::Result<Vec<_>>>()?;
                v.sort();
                Ok(v)
            });
            res(r, Out::Names)
        }
        Op::Xattr { p, call } => res(xattr_call(&j(p), call), |o| o),
        Op::Mknod { p, mode, rdev } => res(mknod(&j(p), *mode, *rdev), |_| Out::Unit),
    }
}

/// Every entry of the reference tree: (relative path, kind).
pub fn entries(root: &Path) -> Vec<(String, Kind)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut ents: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap()).collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = kind_of(e.file_type().unwrap());
            out.push((r.clone(), kind));
            if kind == Kind::Dir {
                stack.push((e.path(), r));
            }
        }
    }
    out
}

pub fn random_path(rng: &mut SmallRng) -> String {
    let depth = rng.random_range(1..=3);
    (0..depth)
        .map(|_| NAMES[rng.random_range(0..NAMES.len())])
        .collect::<Vec<_>>()
        .join("/")
}

/// Mostly an existing entry (of `kind` when given), sometimes a random path.
pub fn pick(rng: &mut SmallRng, ents: &[(String, Kind)], kind: Option<Kind>) -> String {
    let pool: Vec<&String> = ents
        .iter()
        .filter(|(_, k)| kind.is_none_or(|w| *k == w))
        .map(|(p, _)| p)
        .collect();
    if !pool.is_empty() && rng.random_bool(0.8) {
        pool[rng.random_range(0..pool.len())].clone()
    } else {
        random_path(rng)
    }
}

/// A name in an existing directory (or the root): often free, sometimes taken.
pub fn new_path(rng: &mut SmallRng, ents: &[(String, Kind)]) -> String {
    let dirs: Vec<&String> = ents
        .iter()
        .filter(|(_, k)| *k == Kind::Dir)
        .map(|(p, _)| p)
        .collect();
    let name = NAMES[rng.random_range(0..NAMES.len())];
    if dirs.is_empty() || rng.random_bool(0.3) {
        name.to_string()
    } else {
        format!("{}/{name}", dirs[rng.random_range(0..dirs.len())])
    }
}

pub fn gen_op(rng: &mut SmallRng, ents: &[(String, Kind)]) -> Op {
    let file = Some(Kind::File);
    match rng.random_range(0..100) {
        0..=11 => Op::Create {
            p: new_path(rng, ents),
            mode: rng.random_range(0..=0o777),
            excl: rng.random_bool(0.3),
            trunc: rng.random_bool(0.3),
        },
        12..=27 => Op::Write {
            p: pick(rng, ents, file),
            off: if rng.random_bool(0.7) {
                rng.random_range(0..4096)
            } else {
                rng.random_range(0..20_000)
            },
            len: rng.random_range(1..=5000),
            seed: rng.random(),
            append: rng.random_bool(0.2),
        },
        28..=36 => Op::Read {
            p: pick(rng, ents, file),
            off: rng.random_range(0..8000),
            len: rng.random_range(1..=10_000),
        },
        37..=41 => Op::Truncate {
            p: pick(rng, ents, file),
            len: rng.random_range(0..12_000),
        },
        42..=52 => Op::Rename {
            from: pick(rng, ents, None),
            to: if rng.random_bool(0.5) {
                pick(rng, ents, None)
            } else {
                new_path(rng, ents)
            },
            flags: match rng.random_range(0..10) {
                0 => libc::RENAME_NOREPLACE,
                1 => libc::RENAME_EXCHANGE,
                _ => 0,
            },
        },
        53..=58 => Op::Unlink {
            p: pick(rng, ents, None),
        },
        59..=66 => Op::Mkdir {
            p: new_path(rng, ents),
            mode: rng.random_range(0o700..=0o777),
        },
        67..=70 => Op::Rmdir {
            p: pick(rng, ents, Some(Kind::Dir)),
        },
        71..=75 => Op::Link {
            from: pick(rng, ents, None),
            to: new_path(rng, ents),
        },
        76..=79 => Op::Symlink {
            target: random_path(rng),
            p: new_path(rng, ents),
        },
        80..=81 => Op::Readlink {
            p: pick(rng, ents, Some(Kind::Symlink)),
        },
        82..=86 => Op::Chmod {
            p: pick(rng, ents, None),
            mode: rng.random_range(0..=0o777),
        },
        87..=90 => Op::Stat {
            p: pick(rng, ents, None),
            follow: rng.random_bool(0.5),
        },
        91..=92 => Op::Xattr {
            p: pick(rng, ents, None),
            call: {
                let name = XATTR_NAMES[rng.random_range(0..XATTR_NAMES.len())];
                match rng.random_range(0..10) {
                    0..=3 => XattrCall::Set {
                        name,
                        len: if rng.random_bool(0.9) {
                            rng.random_range(0..200)
                        } else {
                            rng.random_range(0..=65537)
                        },
                        seed: rng.random(),
                        flags: [0, 0, libc::XATTR_CREATE, libc::XATTR_REPLACE]
                            [rng.random_range(0..4)],
                    },
                    4..=6 => XattrCall::Get {
                        name,
                        size: [0, 4, 300][rng.random_range(0..3)],
                    },
                    7..=8 => XattrCall::List {
                        size: [0, 8, 300][rng.random_range(0..3)],
                    },
                    _ => XattrCall::Remove { name },
                }
            },
        },
        93..=94 => Op::Mknod {
            p: new_path(rng, ents),
            mode: [libc::S_IFIFO, libc::S_IFCHR, libc::S_IFBLK][rng.random_range(0..3)]
                | rng.random_range(0..=0o777),
            rdev: libc::makedev(rng.random_range(0..300), rng.random_range(0..70_000)),
        },
        _ => Op::Readdir {
            p: if rng.random_bool(0.3) {
                String::new()
            } else {
                pick(rng, ents, Some(Kind::Dir))
            },
        },
    }
}

pub fn test_seed() -> u64 {
    match std::env::var("LIGHTHOUSE_TEST_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("LIGHTHOUSE_TEST_SEED={s:?} is not a u64")),
        Err(_) => rand::rng().random(),
    }
}
