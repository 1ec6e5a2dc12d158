//! `files.json`: the selected files with their content and hashes at one seq.
//!
//! ```json
//! {
//!   "package": "login",
//!   "purpose": "fix the login redirect",
//!   "seq": 120,
//!   "files": [
//!     {"path": "/src/auth.rs", "size": 812, "hash": "…", "content": "…", "truncated": false},
//!     {"path": "/img/logo.png", "size": 4096, "hash": "…", "content_base64": "iVBO…", "truncated": false}
//!   ],
//!   "missing": ["docs/*.md"],
//!   "denied": ["/private/", "/secret/key.txt"],
//!   "cut": []
//! }
//! ```
//!
//! `seq` is the head the document was rendered at; `hash` is the hex BLAKE3 of the whole
//! file; `content` its first `max_bytes_per_file` bytes as UTF-8 text (cut back to a
//! whole character), or `content_base64` when the file is not UTF-8; `truncated` says
//! the content is not the whole file. `missing` lists the patterns that selected
//! nothing; `cut` says why the document is not complete (selection bounds, or the
//! [`MAX_TOTAL_CONTENT`] bytes of content a document holds, after which files come with
//! empty content and `truncated`), and is empty when it is.
//!
//! The package is rendered with its reader's eyes: `denied` names, sorted, what the
//! patterns reached that the reader may not read — a file (`/secret/key.txt`), or a
//! directory it may not list, once, with a trailing `/` (`/private/`), not walked. A
//! denied file is not in `files`, and nothing about it but its path appears (no size,
//! hash or content). `denied` is empty when nothing was.

use std::collections::BTreeSet;

use lighthouse_view_sdk::{json, FsError, Store};
use serde::Serialize;

use crate::base64;
use crate::packages::Package;
use crate::select::Selection;

/// Content bytes one `files.json` holds in all.
pub const MAX_TOTAL_CONTENT: u64 = 8 * 1024 * 1024;

#[derive(Serialize)]
struct FilesJson<'a> {
    package: &'a str,
    purpose: &'a str,
    seq: u64,
    files: Vec<FileJson>,
    missing: &'a [String],
    denied: BTreeSet<String>,
    cut: Vec<String>,
}

#[derive(Serialize)]
struct FileJson {
    path: String,
    size: u64,
    hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_base64: Option<String>,
    truncated: bool,
}

pub fn render<S: Store>(
    store: &S,
    name: &str,
    package: &Package,
    selection: &Selection,
    seq: u64,
) -> Result<Vec<u8>, FsError> {
    let mut cut: Vec<String> = selection.cut.iter().cloned().collect();
    let mut budget = MAX_TOTAL_CONTENT;
    let mut files = Vec::with_capacity(selection.files.len());
    let mut denied = selection.denied.clone();
    for path in &selection.files {
        // The selection left out what the caller may not read; should the store still
        // refuse a file, it is denied here too, with nothing about it kept.
        let refused = |e: &FsError| *e == FsError::PermissionDenied;
        let (size, hash) = match (store.stat_at(path, seq), store.hash_at(path, seq)) {
            (Ok(attrs), Ok(hash)) => (attrs.size, hash),
            (Err(e), _) | (_, Err(e)) if refused(&e) => {
                denied.insert(path.clone());
                continue;
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let wanted = package.manifest.max_bytes_per_file.min(size);
        let bytes = match store.read_all_at(path, seq, wanted.min(budget)) {
            Err(e) if refused(&e) => {
                denied.insert(path.clone());
                continue;
            }
            other => other?,
        };
        if wanted > budget && !cut.iter().any(|c| c.starts_with("content")) {
            cut.push(format!(
                "content stopped at {MAX_TOTAL_CONTENT} bytes in all: later files are truncated"
            ));
        }
        let read = bytes.len() as u64;
        budget -= read;
        let whole = read >= size;
        let (content, content_base64) = text_or_base64(bytes, !whole);
        files.push(FileJson {
            path: path.clone(),
            size,
            hash,
            content,
            content_base64,
            truncated: !whole,
        });
    }
    json::document(&FilesJson {
        package: name,
        purpose: &package.manifest.purpose,
        seq,
        files,
        missing: &selection.missing,
        denied,
        cut,
    })
}

/// UTF-8 text when the bytes are (a cut file may end inside a character: that
/// character is left out), base64 otherwise.
fn text_or_base64(bytes: Vec<u8>, cut_short: bool) -> (Option<String>, Option<String>) {
    match String::from_utf8(bytes) {
        Ok(text) => (Some(text), None),
        Err(e) => {
            let error = e.utf8_error();
            if cut_short && error.error_len().is_none() {
                let valid = error.valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                (
                    Some(String::from_utf8(bytes).expect("valid up to here")),
                    None,
                )
            } else {
                (None, Some(base64::encode(e.as_bytes())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_back_to_a_whole_character() {
        assert_eq!(
            text_or_base64(b"abc".to_vec(), false),
            (Some("abc".into()), None)
        );
        let e_acute = "é".as_bytes(); // 2 bytes
        let cut = [b"ab".as_slice(), &e_acute[..1]].concat();
        assert_eq!(text_or_base64(cut.clone(), true), (Some("ab".into()), None));
        // Not cut: an incomplete character at the end is not text.
        assert_eq!(text_or_base64(cut, false), (None, Some("YWLD".into())));
        assert_eq!(
            text_or_base64(vec![0xff, b'a'], true),
            (None, Some("/2E=".into()))
        );
    }
}
