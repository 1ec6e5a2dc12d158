//! Events and annotations as `context.json` shows them (the `streams/` line shape).

use lighthouse_view_sdk::serde_json::{self, Value};
use lighthouse_view_sdk::time::rfc3339_nanos;
use lighthouse_view_sdk::Event;
use serde::Serialize;

/// An event: `{"seq","time","time_ns","agent","uid","gid","pid","op","path","path2",
/// "size","hash","view","body"}`, absent values `null`, `body` as JSON.
#[derive(Debug, Serialize)]
pub struct EventJson {
    pub seq: u64,
    /// RFC 3339, UTC, nanoseconds.
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
    pub body: Option<Value>,
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        EventJson {
            seq: e.seq,
            time: rfc3339_nanos(e.time_ns),
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

/// An annotation: who made it when, and what the annotating view recorded
/// (`{"seq","time","agent","body"}`; for `shadows/` the body is
/// `{kind,text,anchor{start_line,end_line,lines,fingerprint},hash}`).
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub seq: u64,
    pub time: String,
    pub agent: Option<String>,
    pub body: Value,
}

impl From<&Event> for Note {
    fn from(e: &Event) -> Self {
        Note {
            seq: e.seq,
            time: rfc3339_nanos(e.time_ns),
            agent: e.agent.clone(),
            body: e.body.as_deref().map_or(Value::Null, body_json),
        }
    }
}

/// A view's body as JSON: the document it is, or (not JSON) a string holding it.
pub fn body_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}
