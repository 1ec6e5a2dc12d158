//! Paths as the host hands them to a view: `"/"` is the view's root, `"/a/b"` below it.

use crate::FsError;

/// The components of `path`: `"/a/b/"` → `["a", "b"]`, `"/"` and `""` → `[]`.
///
/// Empty components and `.` are skipped; `..` is refused (`invalid`): the host resolves
/// names one at a time and never sends it, so a view need not guess what it would mean.
pub fn split(path: &str) -> Result<Vec<&str>, FsError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(FsError::Invalid(format!("'..' in view path {path:?}"))),
            name => parts.push(name),
        }
    }
    Ok(parts)
}

/// The path of `parts` with a leading `/` (`[]` → `"/"`): the form the store import takes.
pub fn join<S: AsRef<str>>(parts: &[S]) -> String {
    if parts.is_empty() {
        return "/".to_string();
    }
    let mut out = String::new();
    for part in parts {
        out.push('/');
        out.push_str(part.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_normalizes() {
        assert_eq!(split("/a/b/").unwrap(), ["a", "b"]);
        assert_eq!(split("a//b").unwrap(), ["a", "b"]);
        assert_eq!(split("/./a/.").unwrap(), ["a"]);
        assert!(split("/").unwrap().is_empty());
        assert!(split("").unwrap().is_empty());
        assert_eq!(split("/.log/x y").unwrap(), [".log", "x y"]);
    }

    #[test]
    fn split_refuses_dotdot() {
        assert!(matches!(split("/a/../b"), Err(FsError::Invalid(_))));
        assert!(matches!(split(".."), Err(FsError::Invalid(_))));
        // Names that merely contain dots are ordinary.
        assert_eq!(split("/...").unwrap(), ["..."]);
        assert_eq!(split("/..a").unwrap(), ["..a"]);
    }

    #[test]
    fn join_round_trips() {
        assert_eq!(join::<&str>(&[]), "/");
        assert_eq!(join(&["a", "b"]), "/a/b");
        assert_eq!(join(&split("/a/b/").unwrap()), "/a/b");
    }
}
