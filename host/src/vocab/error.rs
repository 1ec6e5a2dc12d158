//! Typed filesystem errors: an errno for the kernel and a message for the log.

use std::borrow::Cow;
use std::fmt;

/// An operation's failure: the errno the caller sees and why, for the log.
///
/// Messages are `Cow` so the hot path (a missing name, say) allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    pub errno: i32,
    pub message: Cow<'static, str>,
}

pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    pub const fn new(errno: i32, message: &'static str) -> Self {
        FsError {
            errno,
            message: Cow::Borrowed(message),
        }
    }

    pub fn with(errno: i32, message: String) -> Self {
        FsError {
            errno,
            message: Cow::Owned(message),
        }
    }

    /// An I/O failure of the host itself (store, object files): the caller gets EIO
    /// unless the OS error is one the caller can act on (ENOSPC, EDQUOT, EFBIG).
    pub fn io(context: &str, err: &std::io::Error) -> Self {
        let errno = match err.raw_os_error() {
            Some(e @ (libc::ENOSPC | libc::EDQUOT | libc::EFBIG)) => e,
            _ => libc::EIO,
        };
        FsError::with(errno, format!("{context}: {err}"))
    }

    pub fn name(&self) -> &'static str {
        errno_name(self.errno)
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, errno_name(self.errno))
    }
}

impl std::error::Error for FsError {}

/// `fs_err!(ENOENT, "no such entry")` or `fs_err!(EIO, "object {} missing", hash)`.
#[macro_export]
macro_rules! fs_err {
    ($errno:ident, $msg:literal) => {
        $crate::vocab::FsError::new(libc::$errno, $msg)
    };
    ($errno:ident, $fmt:literal, $($arg:tt)+) => {
        $crate::vocab::FsError::with(libc::$errno, format!($fmt, $($arg)+))
    };
}

/// ENOSPC or EDQUOT: no room on the store's filesystem, a state that passes (unlike EIO).
pub fn is_no_space(errno: i32) -> bool {
    errno == libc::ENOSPC || errno == libc::EDQUOT
}

/// Symbolic name of the errno values this filesystem returns (for logs and metrics).
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::EINTR => "EINTR",
        libc::EAGAIN => "EAGAIN",
        libc::ESTALE => "ESTALE",
        libc::EDQUOT => "EDQUOT",
        libc::ERANGE => "ERANGE",
        libc::E2BIG => "E2BIG",
        _ => "E?",
    }
}
