//! JSON as views serve it: one document per file, or JSON lines.

use serde::Serialize;

use crate::{error, FsError};

/// `value` as one JSON line (compact, ending in `\n`).
pub fn line<T: Serialize + ?Sized>(value: &T) -> Result<String, FsError> {
    let mut out = serde_json::to_string(value).map_err(error::internal)?;
    out.push('\n');
    Ok(out)
}

/// `value` as a pretty-printed JSON document ending in `\n`.
pub fn document<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, FsError> {
    let mut out = serde_json::to_vec_pretty(value).map_err(error::internal)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_documents_end_in_newline() {
        assert_eq!(line(&serde_json::json!({"a": 1})).unwrap(), "{\"a\":1}\n");
        assert_eq!(document(&[1, 2]).unwrap(), b"[\n  1,\n  2\n]\n");
    }
}
