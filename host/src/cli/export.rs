//! `lighthouse-fs export`: write the tree, now or as it was, into a directory.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use crate::core::{FileKind, Ino, CURRENT_INO};
use crate::store::{Hash, StoreReader};

#[derive(Args)]
pub struct ExportArgs {
    /// Destination directory (created if missing; must be empty).
    dest: PathBuf,
    /// The store: a directory, or a PostgreSQL database (`postgres://…`).
    #[arg(long, env = "LIGHTHOUSE_STORE", default_value_os_t = super::default_store())]
    store: PathBuf,
    /// The point to export: SEQ or @SEQ (after that event), or an RFC 3339 time.
    #[arg(long)]
    at: Option<String>,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let store = StoreReader::open(&args.store)?;
    let seq = match &args.at {
        Some(at) => Some(super::time::resolve_at(&store, at)?),
        None => None,
    };
    let dest = &args.dest;
    if dest.exists() {
        if !dest.is_dir() {
            bail!("export destination {} is not a directory", dest.display());
        }
        if fs::read_dir(dest)?.next().is_some() {
            bail!("export destination {} is not empty", dest.display());
        }
    } else {
        fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    }
    let tree = store.tree_at(seq)?;
    let is_root = nix::unistd::geteuid().is_root();
    let mut exported: HashMap<Ino, PathBuf> = HashMap::new();
    let mut dirs = Vec::new();
    let mut failure = None;
    tree.walk(CURRENT_INO, |rel, node| {
        if failure.is_some() {
            return;
        }
        let target = dest.join(rel.trim_start_matches('/'));
        let result = (|| -> anyhow::Result<()> {
            if let Some(first) = exported.get(&node.attr.ino) {
                fs::hard_link(first, &target)?;
                return Ok(());
            }
            match node.attr.kind {
                FileKind::Dir => {
                    fs::create_dir(&target)?;
                    carry_xattrs(&target, node, rel);
                    dirs.push((target.clone(), node.attr));
                    return Ok(());
                }
                FileKind::Symlink => {
                    symlink(node.target.as_deref().unwrap_or(""), &target)?;
                    carry_xattrs(&target, node, rel);
                    if is_root {
                        std::os::unix::fs::lchown(
                            &target,
                            Some(node.attr.uid),
                            Some(node.attr.gid),
                        )?;
                    }
                    set_times(&target, &node.attr)?;
                    exported.insert(node.attr.ino, target.clone());
                    return Ok(());
                }
                FileKind::File => match node.content.as_ref().and_then(|c| c.committed()) {
                    Some(hash) => copy_object(&store, &hash, &target)?,
                    None => drop(fs::File::create(&target)?),
                },
                FileKind::Fifo => {
                    nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o600))?
                }
                FileKind::Socket => {
                    tracing::warn!(path = rel, "sockets are not exported");
                    return Ok(());
                }
                FileKind::CharDev | FileKind::BlockDev if !is_root => {
                    tracing::warn!(path = rel, "device nodes are exported only as root");
                    return Ok(());
                }
                FileKind::CharDev | FileKind::BlockDev => {
                    let kind = if node.attr.kind == FileKind::CharDev {
                        nix::sys::stat::SFlag::S_IFCHR
                    } else {
                        nix::sys::stat::SFlag::S_IFBLK
                    };
                    // The store keeps the kernel's 32-bit encoding, which is also the low
                    // bits of a userspace dev_t.
                    nix::sys::stat::mknod(
                        &target,
                        kind,
                        nix::sys::stat::Mode::from_bits_truncate(0o600),
                        u64::from(node.attr.rdev),
                    )?
                }
            }
            // Before `finish`: a read-only mode must not stop the owner writing them.
            carry_xattrs(&target, node, rel);
            finish(&target, &node.attr, is_root)?;
            exported.insert(node.attr.ino, target.clone());
            Ok(())
        })();
        if let Err(e) = result {
            failure = Some(e.context(format!("exporting {rel} to {}", target.display())));
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    // Directories last, deepest first: writing their children changed their times.
    for (path, attr) in dirs.iter().rev() {
        finish(path, attr, is_root)
            .with_context(|| format!("setting attributes of {}", path.display()))?;
    }
    Ok(())
}

/// Write a node's extended attributes onto its export. One that cannot be written (a
/// trusted.* one when not root, a destination without extended attributes) is skipped
/// with a warning, as a socket is: the rest of the tree still matters.
fn carry_xattrs(target: &Path, node: &crate::store::Node, rel: &str) {
    for (name, value) in node.xattrs.iter().flat_map(|x| x.iter()) {
        if let Err(e) = super::xattrs::write(target, name, value) {
            tracing::warn!(
                path = rel,
                attribute = &**name,
                "extended attribute not exported: {e}"
            );
        }
    }
}

fn copy_object(store: &StoreReader, hash: &Hash, target: &Path) -> anyhow::Result<()> {
    let mut object = store
        .open_object(hash)
        .with_context(|| format!("opening object {hash}"))?;
    let mut out = fs::File::create(target)?;
    std::io::copy(&mut object, &mut out).with_context(|| format!("copying object {hash}"))?;
    Ok(())
}

/// Mode, owner (as root) and times of an exported node.
fn finish(path: &Path, attr: &crate::core::Attr, is_root: bool) -> anyhow::Result<()> {
    if is_root {
        std::os::unix::fs::chown(path, Some(attr.uid), Some(attr.gid))?;
    }
    if attr.kind != FileKind::Symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(attr.perm))?;
    }
    set_times(path, attr)
}

/// atime and mtime, without following a symlink and without opening (FIFOs would block).
fn set_times(path: &Path, attr: &crate::core::Attr) -> anyhow::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let ts = |ns: i64| TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &ts(attr.atime),
        &ts(attr.mtime),
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}
