//! Events and annotations as `context.json` shows them (the `streams/` line shape).

use lighthouse_view_sdk::json;
use lighthouse_view_sdk::serde_json::Value;
use lighthouse_view_sdk::time::rfc3339_nanos;
use lighthouse_view_sdk::Event;
use serde::Serialize;

/// An event: the SDK's [`EventJson`], the line shape of `streams/` and the log.
pub use lighthouse_view_sdk::json::EventJson;

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
            body: e.body.as_deref().map_or(Value::Null, json::body_json),
        }
    }
}
