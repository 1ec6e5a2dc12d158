//! Extended attributes of the live tree, as tmpfs keeps them: `user.*` for everyone (the
//! kernel checks mode bits and allows them on files and directories only), `trusted.*`
//! for root, `security.*` as the kernel allows (it asks CAP_SYS_ADMIN before a request
//! gets here), `system.*` (POSIX ACLs) refused as by a filesystem without ACLs. They
//! belong to the inode, so renames and hard links carry them; each change is an event, so
//! a remount replays them. Views, `debug/`, `.auth` and the mount root have none.
//!
//! The kernel asks for them on hot paths (`security.capability` before a write, ACL
//! probes of `ls -l`): for a node without attributes an answer takes the tree's read lock
//! and allocates nothing.

use std::ffi::OsStr;

use super::*;
use crate::store::XattrSet;

/// Longest attribute name and value, and the longest list of names, as Linux's
/// XATTR_NAME_MAX, XATTR_SIZE_MAX and XATTR_LIST_MAX.
const NAME_MAX: usize = 255;
const SIZE_MAX: usize = 65536;
const LIST_MAX: usize = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    User,
    Trusted,
    Security,
}

/// An attribute name from the kernel, checked, and its namespace.
#[derive(Debug, Clone, Copy)]
pub(in crate::core) struct XattrName<'a> {
    name: &'a str,
    ns: Namespace,
}

impl XattrName<'_> {
    /// `system.*` and names of no namespace are not supported (as on tmpfs without ACLs).
    pub(in crate::core) fn parse(name: &OsStr) -> FsResult<XattrName<'_>> {
        let (name, ns) = parse(name)?;
        Ok(XattrName { name, ns })
    }
}

/// How a `setxattr(2)`'s `flags` (XATTR_CREATE / XATTR_REPLACE) say to set.
pub(in crate::core) fn set_how(flags: i32) -> FsResult<XattrSet> {
    match flags {
        0 => Ok(XattrSet::Any),
        libc::XATTR_CREATE => Ok(XattrSet::Create),
        libc::XATTR_REPLACE => Ok(XattrSet::Replace),
        _ => Err(fs_err!(EINVAL, "unknown setxattr flags")),
    }
}

fn parse(name: &OsStr) -> FsResult<(&str, Namespace)> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(fs_err!(
            ERANGE,
            "attribute name empty or longer than 255 bytes"
        ));
    }
    let name = name
        .to_str()
        .ok_or(fs_err!(EINVAL, "attribute names must be UTF-8"))?;
    let (ns, rest) = if let Some(rest) = name.strip_prefix("user.") {
        (Namespace::User, rest)
    } else if let Some(rest) = name.strip_prefix("trusted.") {
        (Namespace::Trusted, rest)
    } else if let Some(rest) = name.strip_prefix("security.") {
        (Namespace::Security, rest)
    } else {
        return Err(fs_err!(EOPNOTSUPP, "attribute namespace not supported"));
    };
    if rest.is_empty() {
        return Err(fs_err!(EINVAL, "attribute name without a name"));
    }
    Ok((name, ns))
}

/// `trusted.*` is root's (CAP_SYS_ADMIN): others neither see nor set it.
fn visible(ns: Namespace, caller: &Caller) -> bool {
    ns != Namespace::Trusted || caller.uid == 0
}

/// `user.*` only on regular files and directories (the kernel's rule; the core keeps it
/// too, so no store can hold what a kernel would refuse).
fn allowed_on(ns: Namespace, kind: FileKind) -> bool {
    ns != Namespace::User || matches!(kind, FileKind::File | FileKind::Dir)
}

fn namespace_of(name: &str) -> Namespace {
    if name.starts_with("trusted.") {
        Namespace::Trusted
    } else if name.starts_with("security.") {
        Namespace::Security
    } else {
        Namespace::User
    }
}

/// The answer to a caller's buffer of `size` bytes (0: asking for the size).
pub(in crate::core) fn sized(
    size: u32,
    len: usize,
    data: impl FnOnce() -> Vec<u8>,
) -> FsResult<XattrReply> {
    if size == 0 {
        return Ok(XattrReply::Size(len as u32));
    }
    if len > size as usize {
        return Err(fs_err!(ERANGE, "the caller's buffer is too small"));
    }
    Ok(XattrReply::Data(data()))
}

impl Fs {
    /// [`Fs::getxattr`] of a live node.
    pub(in crate::core) fn live_getxattr(
        &self,
        caller: &Caller,
        ino: Ino,
        name: XattrName<'_>,
        size: u32,
    ) -> FsResult<XattrReply> {
        let XattrName { name, ns } = name;
        if !visible(ns, caller) {
            return Err(fs_err!(ENODATA, "no such attribute"));
        }
        let t = self.tree.read();
        let n = t.node(ino)?;
        let value = n
            .xattrs
            .as_ref()
            .and_then(|x| x.get(name))
            .filter(|_| allowed_on(ns, n.attr.kind))
            .ok_or(fs_err!(ENODATA, "no such attribute"))?;
        sized(size, value.len(), || value.to_vec())
    }

    /// [`Fs::listxattr`] of a live node: the names the caller may see.
    pub(in crate::core) fn live_listxattr(
        &self,
        caller: &Caller,
        ino: Ino,
        size: u32,
    ) -> FsResult<XattrReply> {
        let t = self.tree.read();
        let Some(xattrs) = t.node(ino)?.xattrs.as_ref() else {
            return sized(size, 0, Vec::new);
        };
        let names = || {
            xattrs
                .keys()
                .filter(move |k| visible(namespace_of(k), caller))
        };
        let len = names().map(|k| k.len() + 1).sum();
        sized(size, len, || {
            let mut list = Vec::with_capacity(len);
            for k in names() {
                list.extend_from_slice(k.as_bytes());
                list.push(0);
            }
            list
        })
    }

    /// [`Fs::setxattr`] of a live node.
    pub(in crate::core) fn live_setxattr(
        &self,
        caller: &Caller,
        ino: Ino,
        name: XattrName<'_>,
        value: &[u8],
        how: XattrSet,
    ) -> FsResult<()> {
        let XattrName { name, ns } = name;
        if value.len() > SIZE_MAX {
            return Err(fs_err!(E2BIG, "attribute value over 64 KiB"));
        }
        if !visible(ns, caller) {
            return Err(fs_err!(EPERM, "trusted.* is root's"));
        }
        self.check_store()?;
        let time = now_ns();
        let mut t = self.change_tree()?;
        let n = t.node(ino)?;
        if !allowed_on(ns, n.attr.kind) {
            return Err(fs_err!(EPERM, "user.* only on files and directories"));
        }
        // The names must fit one listxattr answer.
        let listed: usize = n
            .xattrs
            .iter()
            .flat_map(|x| x.keys())
            .filter(|k| &***k != name)
            .map(|k| k.len() + 1)
            .sum();
        if listed + name.len() + 1 > LIST_MAX {
            return Err(fs_err!(ENOSPC, "too many attribute names on this inode"));
        }
        let (name, value): (Arc<str>, Arc<[u8]>) = (name.into(), value.into());
        t.set_xattr(ino, &name, &value, how, time)?;
        if let Some(path) = t.path_of(ino) {
            let change = Change::SetXattr {
                path: path.into(),
                name,
                value,
            };
            self.record(&mut t, caller, time, change)?;
        }
        Ok(())
    }

    /// [`Fs::removexattr`] of a live node.
    pub(in crate::core) fn live_removexattr(
        &self,
        caller: &Caller,
        ino: Ino,
        name: XattrName<'_>,
    ) -> FsResult<()> {
        let XattrName { name, ns } = name;
        if !visible(ns, caller) {
            return Err(fs_err!(EPERM, "trusted.* is root's"));
        }
        self.check_store()?;
        let time = now_ns();
        let mut t = self.change_tree()?;
        if !allowed_on(ns, t.node(ino)?.attr.kind) {
            return Err(fs_err!(EPERM, "user.* only on files and directories"));
        }
        t.remove_xattr(ino, name, time)?;
        if let Some(path) = t.path_of(ino) {
            let change = Change::RemoveXattr {
                path: path.into(),
                name: name.into(),
            };
            self.record(&mut t, caller, time, change)?;
        }
        Ok(())
    }
}
