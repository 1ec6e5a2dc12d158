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

/// One event as the log shows it in JSON: every field, absent ones `null`, the time also
/// spelled out (RFC 3339, UTC, nanoseconds), and a view's `body` as the JSON document it
/// is (a body that is not JSON, which the host refuses, as a string). What
/// `lighthouse-fs log --json`, `history/.log/<path>` and `streams/all` show.
#[derive(Debug, Clone, Serialize)]
pub struct EventJson {
    pub seq: u64,
    pub time: String,
    pub time_ns: i64,
    pub agent: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    pub op: String,
    pub path: String,
    pub path2: Option<String>,
    pub size: Option<u64>,
    pub hash: Option<String>,
    pub view: Option<String>,
    pub body: Option<serde_json::Value>,
}

impl From<&crate::Event> for EventJson {
    fn from(e: &crate::Event) -> Self {
        EventJson {
            seq: e.seq,
            time: crate::time::rfc3339_nanos(e.time_ns),
            time_ns: e.time_ns,
            agent: e.agent.clone(),
            uid: e.uid,
            gid: e.gid,
            pid: e.pid,
            op: e.op.clone(),
            path: e.path.clone(),
            path2: e.path2.clone(),
            size: e.size,
            hash: e.hash.clone(),
            view: e.view.clone(),
            body: e.body.as_deref().map(body_json),
        }
    }
}

/// [`EventJson`] as one line, ending in `\n`.
pub fn event_line(event: &crate::Event) -> Result<String, FsError> {
    line(&EventJson::from(event))
}

/// A view's body as JSON: the document it is, or (not JSON) a string holding it.
pub fn body_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string()))
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
