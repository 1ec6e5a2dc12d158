//! Mountpoint checks and unmounting, shared by both backends and by the CLI.
//!
//! `prepare` runs before `serve`: it resolves the path, refuses what cannot be mounted
//! on, and cleans a stale FUSE mount left by a daemon that died ("Transport endpoint is
//! not connected"). `unmount` is the `lighthouse-fs unmount` command and the adapters'
//! way out on stop.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use nix::mount::MntFlags;

/// How an unmount went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unmounted {
    /// The mount is gone and its FUSE connection ended.
    Clean,
    /// The mount was busy: it is detached from the tree, and the filesystem lives on for
    /// the processes that still use it.
    Lazy,
}

/// Check that `path` can be mounted on and return it absolute and canonical.
///
/// Errors (one line, naming the path): it does not exist, is not a directory, or a live
/// FUSE filesystem is already mounted there. A stale FUSE mount (its daemon died) is
/// unmounted lazily, logged, and the path checked again.
pub fn prepare(path: &Path) -> anyhow::Result<PathBuf> {
    prepare_once(path, false)
}

fn prepare_once(path: &Path, cleaned: bool) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(path)
        .with_context(|| format!("mountpoint {}: cannot make it absolute", path.display()))?;
    let meta = match std::fs::metadata(&abs) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            clean_stale(&abs)?;
            std::fs::metadata(&abs).map_err(|e| stat_error(&abs, &e))?
        }
        other => other.map_err(|e| stat_error(&abs, &e))?,
    };
    if !meta.is_dir() {
        bail!("mountpoint {} is not a directory", abs.display());
    }
    let real = abs
        .canonicalize()
        .with_context(|| format!("mountpoint {}: cannot resolve it", abs.display()))?;
    if let Some(mount) = top_mount(&real)? {
        if mount.is_fuse() {
            // A dead daemon's mount can still answer stat from the kernel's attribute
            // cache; listing it must reach the daemon, so it tells live from stale.
            if let Err(e) = std::fs::read_dir(&real) {
                if e.raw_os_error() == Some(libc::ENOTCONN) && !cleaned {
                    clean_stale(&real)?;
                    return prepare_once(path, true);
                }
            }
            bail!(
                "mountpoint {} is already mounted ({} from {}); unmount it first",
                real.display(),
                mount.fstype,
                mount.source
            );
        }
    }
    Ok(real)
}

/// Unmount the FUSE filesystem at `path`. A busy mount is detached lazily (and the log
/// says so); without root, `fusermount3 -u` (then `-uz`) does the work.
pub fn unmount(path: &Path) -> anyhow::Result<()> {
    unmount_with_outcome(path).map(|_| ())
}

/// Whether the topmost mount at `path` is a FUSE filesystem (live or stale).
pub fn is_fuse_mount(path: &Path) -> bool {
    let Ok(path) = resolve_without_stat(path) else {
        return false;
    };
    matches!(top_mount(&path), Ok(Some(m)) if m.is_fuse())
}

/// [`unmount`], telling whether the unmount was clean or lazy.
pub(super) fn unmount_with_outcome(path: &Path) -> anyhow::Result<Unmounted> {
    let path = resolve_without_stat(path)
        .with_context(|| format!("unmounting {}: cannot resolve the path", path.display()))?;
    match top_mount(&path)? {
        Some(m) if m.is_fuse() => {}
        Some(m) => bail!(
            "unmounting {}: not a FUSE mount ({}), refusing to touch it",
            path.display(),
            m.fstype
        ),
        None => bail!("unmounting {}: not mounted", path.display()),
    }
    if nix::unistd::geteuid().is_root() {
        match nix::mount::umount2(&path, MntFlags::empty()) {
            Ok(()) => Ok(Unmounted::Clean),
            Err(nix::errno::Errno::EBUSY) => {
                nix::mount::umount2(&path, MntFlags::MNT_DETACH).with_context(|| {
                    format!("unmounting {} lazily (it is busy)", path.display())
                })?;
                tracing::warn!(
                    mountpoint = %path.display(),
                    "mount is busy: detached it lazily; it goes away when the last user leaves"
                );
                Ok(Unmounted::Lazy)
            }
            Err(nix::errno::Errno::EINVAL) => bail!("unmounting {}: not mounted", path.display()),
            Err(e) => Err(e).with_context(|| format!("unmounting {}", path.display())),
        }
    } else {
        if fusermount(&path, &["-u"]).is_ok() {
            return Ok(Unmounted::Clean);
        }
        fusermount(&path, &["-u", "-z"])
            .with_context(|| format!("unmounting {}", path.display()))?;
        tracing::warn!(
            mountpoint = %path.display(),
            "mount is busy: detached it lazily; it goes away when the last user leaves"
        );
        Ok(Unmounted::Lazy)
    }
}

fn stat_error(path: &Path, err: &io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::NotFound {
        anyhow::anyhow!("mountpoint {} does not exist", path.display())
    } else {
        anyhow::anyhow!("mountpoint {}: {err}", path.display())
    }
}

/// Detach the dead FUSE mount at `path` (its daemon is gone; the kernel answers ENOTCONN).
fn clean_stale(path: &Path) -> anyhow::Result<()> {
    let result = if nix::unistd::geteuid().is_root() {
        nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(anyhow::Error::from)
    } else {
        fusermount(path, &["-u", "-z"])
    };
    result.with_context(|| {
        format!(
            "mountpoint {} is a stale FUSE mount (transport endpoint is not connected) \
             and cleaning it failed",
            path.display()
        )
    })?;
    tracing::info!(mountpoint = %path.display(), "cleaned a stale FUSE mount left by a dead daemon");
    Ok(())
}

fn fusermount(path: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("fusermount3")
        .args(args)
        .arg("--")
        .arg(path)
        .output()
        .context("running fusermount3 (install the fuse3 package)")?;
    if !output.status.success() {
        bail!(
            "fusermount3 {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Absolute path with symlinks resolved where possible, without stat-ing the path itself
/// when that fails (a stale FUSE mount answers every stat with ENOTCONN): then the parent
/// is resolved and the last component appended.
fn resolve_without_stat(path: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    match abs.canonicalize() {
        Ok(real) => Ok(real),
        Err(e) => match (abs.parent(), abs.file_name()) {
            (Some(parent), Some(name)) => Ok(parent.canonicalize()?.join(name)),
            _ => Err(e),
        },
    }
}

/// Is our FUSE mount still attached at `path`? `false` once it was detached (a lazy
/// `umount -l` from outside); `true` when mountinfo cannot be read (assume nothing).
pub fn still_attached(path: &Path) -> bool {
    let ours = format!("fuse.{}", super::common::SUBTYPE);
    match top_mount(path) {
        Ok(top) => top.is_some_and(|m| m.fstype == ours),
        Err(_) => true,
    }
}

/// The device `(major, minor)` of our FUSE mount at `path` (which names its kernel
/// connection: see `dev_notify`), if it is mounted there.
pub fn device_of(path: &Path) -> anyhow::Result<Option<(u32, u32)>> {
    let ours = format!("fuse.{}", super::common::SUBTYPE);
    Ok(top_mount(path)?
        .filter(|m| m.fstype == ours)
        .map(|m| m.device))
}

/// The store directory of the lighthouse-fs mount at `path` (the mount's source,
/// `lighthouse-fs:STORE`).
pub fn store_of(path: &Path) -> anyhow::Result<PathBuf> {
    let real =
        resolve_without_stat(path).with_context(|| format!("resolving {}", path.display()))?;
    let ours = format!("fuse.{}", super::common::SUBTYPE);
    let Some(top) = top_mount(&real)? else {
        anyhow::bail!("{} is not a mount point", path.display());
    };
    match top.source.strip_prefix(FSNAME_PREFIX) {
        Some(store) if top.fstype == ours => Ok(PathBuf::from(store)),
        _ => anyhow::bail!(
            "{} is not a lighthouse-fs mount (it is {} from {})",
            path.display(),
            top.fstype,
            top.source
        ),
    }
}

/// The mount's source is this, then the store directory.
pub const FSNAME_PREFIX: &str = "lighthouse-fs:";

/// One line of /proc/self/mountinfo, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountEntry {
    /// The filesystem's device, `(major, minor)` (a FUSE mount's is its connection's).
    device: (u32, u32),
    mount_point: PathBuf,
    fstype: String,
    source: String,
}

impl MountEntry {
    fn is_fuse(&self) -> bool {
        self.fstype == "fuse" || self.fstype == "fuseblk" || self.fstype.starts_with("fuse.")
    }
}

/// The topmost mount whose mount point is exactly `path` (later lines of mountinfo are
/// mounted on top of earlier ones).
fn top_mount(path: &Path) -> anyhow::Result<Option<MountEntry>> {
    let text = std::fs::read("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(text
        .split(|&b| b == b'\n')
        .filter_map(parse_mountinfo_line)
        .rfind(|m| m.mount_point == path))
}

/// `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw` → mount point (5th
/// field), filesystem type and source (first two fields after the `-` separator).
fn parse_mountinfo_line(line: &[u8]) -> Option<MountEntry> {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let device = fields.nth(2)?;
    let (major, minor) = std::str::from_utf8(device).ok()?.split_once(':')?;
    let mount_point = fields.nth(1)?;
    let mut after_separator = fields.skip_while(|f| *f != b"-").skip(1);
    let fstype = after_separator.next()?;
    let source = after_separator.next().unwrap_or(b"none");
    Some(MountEntry {
        device: (major.parse().ok()?, minor.parse().ok()?),
        mount_point: PathBuf::from(OsString::from_vec(unescape(mount_point))),
        fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` (octal).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_rejects_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = prepare(&missing).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn prepare_rejects_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = prepare(&file).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }

    #[test]
    fn prepare_returns_the_canonical_path_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("mnt");
        std::fs::create_dir(&sub).unwrap();
        let via_dotdot = sub.join("..").join("mnt");
        assert_eq!(prepare(&via_dotdot).unwrap(), sub.canonicalize().unwrap());
    }

    #[test]
    fn unmount_of_a_plain_directory_says_not_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let err = unmount(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not mounted"), "{err}");
        assert!(!is_fuse_mount(dir.path()));
    }

    #[test]
    fn unmount_refuses_a_non_fuse_mount() {
        // `/` is always a mount point and never FUSE here.
        let err = unmount(Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("not a FUSE mount"), "{err}");
        assert!(!is_fuse_mount(Path::new("/")));
    }

    #[test]
    fn mountinfo_lines_parse() {
        let line = b"36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - fuse.lighthouse lighthouse rw,user_id=0";
        let m = parse_mountinfo_line(line).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m.device, (98, 0));
        assert_eq!(m.fstype, "fuse.lighthouse");
        assert_eq!(m.source, "lighthouse");
        assert!(m.is_fuse());
        let line = b"22 1 0:21 / /proc rw,nosuid - proc proc rw";
        let m = parse_mountinfo_line(line).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/proc"));
        assert_eq!(m.device, (0, 21));
        assert!(!m.is_fuse());
        assert_eq!(parse_mountinfo_line(b""), None);
    }

    #[test]
    fn unescape_handles_octal_and_plain_backslashes() {
        assert_eq!(unescape(b"a\\134b"), b"a\\b");
        assert_eq!(unescape(b"a\\011b\\012"), b"a\tb\n");
        assert_eq!(unescape(b"trailing\\"), b"trailing\\");
        assert_eq!(unescape(b"\\9xx"), b"\\9xx");
    }
}
