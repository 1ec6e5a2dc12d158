//! `fs-error` values with their reasons. The unit variants (`FsError::NotFound`, ...)
//! need no helper; these build the ones that carry a message for the host's log.

use std::fmt::Display;

use crate::FsError;

/// EINVAL, with the reason.
pub fn invalid(reason: impl Display) -> FsError {
    FsError::Invalid(reason.to_string())
}

/// EIO, with the reason.
pub fn internal(reason: impl Display) -> FsError {
    FsError::Internal(reason.to_string())
}

/// The answer to `readlink` of anything that is not a symlink (EINVAL, as readlink(2)).
pub fn not_a_symlink(path: &str) -> FsError {
    FsError::Invalid(format!("{path:?} is not a symlink"))
}
