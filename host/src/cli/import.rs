//! `lighthouse-fs import`: seed a store from a directory tree.

use std::collections::HashMap;
use std::fs::File;
use std::io::IsTerminal;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::core::{now_ns, FileKind, Fs, FsConfig};
use crate::store::Change;

#[derive(Args)]
pub struct ImportArgs {
    /// The directory whose tree becomes the store's live tree (merged into what is there).
    source: PathBuf,
    /// The store: a directory, or a PostgreSQL database (`postgres://…`).
    #[arg(long, env = "LIGHTHOUSE_STORE", default_value_os_t = super::default_store())]
    store: PathBuf,
    #[command(flatten)]
    cache: super::CacheArgs,
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let source = &args.source;
    if !source.is_dir() {
        bail!("import source {} is not a directory", source.display());
    }
    let entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(source)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", source.display()))?;
    let fs = Fs::new(
        super::open_store(&args.store, &args.cache)?,
        FsConfig::default(),
    );
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(entries.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut seen: HashMap<(u64, u64), Arc<str>> = HashMap::new();
    let mut dirs = Vec::new();
    let objects = fs.store().objects();
    for entry in &entries {
        let rel = entry.path().strip_prefix(source).expect("below the source");
        let path: Arc<str> = format!(
            "/{}",
            rel.to_str()
                .with_context(|| format!("{} is not UTF-8", rel.display()))?
        )
        .into();
        bar.set_message(path.to_string());
        let meta = entry
            .metadata()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let (uid, gid, perm) = (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777);
        let time = now_ns();
        let apply = |change: Change| {
            fs.apply_host_change(change, time)
                .map_err(|e| anyhow::anyhow!("{path}: {e}"))
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            apply(Change::Create {
                path: path.clone(),
                kind: FileKind::Dir,
                perm,
                uid,
                gid,
                rdev: 0,
            })?;
            dirs.push((
                path.clone(),
                meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ));
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            let target = target
                .to_str()
                .with_context(|| format!("symlink target of {path} is not UTF-8"))?;
            apply(Change::Symlink {
                path: path.clone(),
                target: target.into(),
                uid,
                gid,
            })?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = seen.get(&(meta.dev(), meta.ino())) {
                    apply(Change::Link {
                        from: first.clone(),
                        to: path.clone(),
                    })?;
                    bar.inc(1);
                    continue;
                }
                seen.insert((meta.dev(), meta.ino()), path.clone());
            }
            let (hash, size) = objects
                .put_reader(
                    &mut File::open(entry.path())
                        .with_context(|| format!("opening {}", entry.path().display()))?,
                )
                .with_context(|| format!("storing {}", entry.path().display()))?;
            apply(Change::Create {
                path: path.clone(),
                kind: FileKind::File,
                perm,
                uid,
                gid,
                rdev: 0,
            })?;
            let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
            apply(Change::Write {
                path: path.clone(),
                hash,
                size,
                mtime,
            })?;
        } else if let Some(kind) = special_kind(&ft) {
            // The kernel's 32-bit device encoding, as the mount records it.
            let rdev = meta.rdev();
            let rdev = libc::makedev(libc::major(rdev), libc::minor(rdev)) as u32;
            apply(Change::Create {
                path: path.clone(),
                kind,
                perm,
                uid,
                gid,
                rdev: if kind == FileKind::Fifo { 0 } else { rdev },
            })?;
        } else {
            tracing::warn!(path = %entry.path().display(), "skipped: a socket");
            bar.inc(1);
            continue;
        }
        for (name, value) in super::xattrs::read(entry.path())
            .with_context(|| format!("reading extended attributes of {}", entry.path().display()))?
        {
            apply(Change::SetXattr {
                path: path.clone(),
                name: name.into(),
                value: value.into(),
            })?;
        }
        bar.inc(1);
    }
    // Directory times last: creating children moved them.
    for (path, mtime) in dirs.into_iter().rev() {
        let change = Change::SetAttr {
            path,
            perm: None,
            uid: None,
            gid: None,
            atime: None,
            mtime: Some(mtime),
        };
        fs.apply_host_change(change, now_ns())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    bar.finish_and_clear();
    fs.shutdown();
    if let Some(f) = fs.store().failure() {
        bail!("{f}");
    }
    eprintln!(
        "imported {} entries from {} into {}",
        entries.len(),
        source.display(),
        fs.store().name()
    );
    Ok(())
}

/// The kind of a FIFO or device node (sockets are not imported: they mean nothing without
/// the process that listens on them).
fn special_kind(ft: &std::fs::FileType) -> Option<FileKind> {
    if ft.is_fifo() {
        Some(FileKind::Fifo)
    } else if ft.is_char_device() {
        Some(FileKind::CharDev)
    } else if ft.is_block_device() {
        Some(FileKind::BlockDev)
    } else {
        None
    }
}
