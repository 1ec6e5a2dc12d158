//! Extended attributes of files outside the mount, for `export` (write) and `import`
//! (read): the l* calls, so a symlink's own attributes are meant, never its target's.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Call `f(buf, len)` with a buffer of the size it asks for with `len` 0 (retrying when
/// the attribute grew in between).
fn sized(mut f: impl FnMut(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = f(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size as usize];
        let got = f(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// Every attribute of `path` the caller may read, in the namespaces the store keeps
/// (`user.`, `trusted.`, `security.`; POSIX ACLs are not kept). A filesystem without
/// extended attributes has none.
pub fn read(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path; the buffer pointer and length agree.
    let list = match sized(|buf, len| unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) }) {
        Ok(list) => list,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in list.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(text) = std::str::from_utf8(name) else {
            tracing::warn!(path = %path.display(), "skipped an attribute whose name is not UTF-8");
            continue;
        };
        if !["user.", "trusted.", "security."]
            .iter()
            .any(|p| text.starts_with(p))
        {
            continue;
        }
        let cname = CString::new(name).expect("split at NUL");
        // SAFETY: as above.
        match sized(|buf, len| unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), buf, len) }) {
            Ok(value) => out.push((text.to_string(), value)),
            // Removed since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Set `name` to `value` on `path` (not following a symlink).
pub fn write(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(path)?;
    let n = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: NUL-terminated path and name; the value pointer and length agree.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
