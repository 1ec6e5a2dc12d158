//! `manifest.json`: what a package selects, and why.
//!
//! ```json
//! {
//!   "purpose": "fix the login redirect",
//!   "paths": ["src/auth/**/*.rs", "/README.md", "docs"],
//!   "max_bytes_per_file": 262144,
//!   "recent_events": 50
//! }
//! ```
//!
//! - `purpose` (required): a non-empty string.
//! - `paths` (required): 1 to 256 paths or globs relative to `current/` (see [`crate::glob`]);
//!   a plain path naming a directory selects every file below it.
//! - `max_bytes_per_file` (default 262144, at most 1048576): content served per file.
//! - `recent_events` (default 50, at most 1000): how many events `context.json` lists.
//!
//! Unknown fields, wrong types, anything else: EINVAL with the reason, nothing recorded.
//! `{"delete": true}` alone removes the package from the listing.
//!
//! Two more bodies are recorded by the view itself, never accepted from a write:
//! `{"mkdir": true}` (`mkdir context/<pkg>`: the package exists, without a manifest) and
//! `{"unlink": true}` (`rm context/<pkg>/manifest.json`: the package stays, empty).
//!
//! A good manifest is recorded normalized (paths as [`crate::glob::Pattern::text`],
//! defaults filled in, compact) as the body of a `context` event whose path is
//! `/<pkg>`; reading `manifest.json` gives it back pretty-printed.

use lighthouse_view_sdk::serde_json::{self, Value};
use serde::{Deserialize, Serialize};

use crate::glob::Pattern;

pub const DEFAULT_MAX_BYTES_PER_FILE: u64 = 256 * 1024;
pub const MAX_MAX_BYTES_PER_FILE: u64 = 1024 * 1024;
pub const DEFAULT_RECENT_EVENTS: u32 = 50;
pub const MAX_RECENT_EVENTS: u32 = 1000;
pub const MAX_PATHS: usize = 256;
/// The store's limit on an appended body.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub purpose: String,
    pub paths: Vec<String>,
    #[serde(default = "default_max_bytes_per_file")]
    pub max_bytes_per_file: u64,
    #[serde(default = "default_recent_events")]
    pub recent_events: u32,
}

fn default_max_bytes_per_file() -> u64 {
    DEFAULT_MAX_BYTES_PER_FILE
}

fn default_recent_events() -> u32 {
    DEFAULT_RECENT_EVENTS
}

/// What one write of `manifest.json` (or one `context` event's body) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Manifest(Manifest),
    Delete,
    /// The package was made with mkdir: it exists, without a manifest.
    Mkdir,
    /// Its manifest was removed: the package stays, without one.
    Unlink,
}

impl Record {
    /// Parses and checks a document; `Err(reason)` when it is not a good manifest.
    pub fn parse(bytes: &[u8]) -> Result<Record, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(object) = value.as_object() {
            for (flag, record) in [
                ("delete", Record::Delete),
                ("mkdir", Record::Mkdir),
                ("unlink", Record::Unlink),
            ] {
                if let Some(value) = object.get(flag) {
                    return match (value, object.len()) {
                        (Value::Bool(true), 1) => Ok(record),
                        (Value::Bool(true), _) => Err(format!("\"{flag}\" stands alone")),
                        _ => Err(format!("\"{flag}\" can only be true")),
                    };
                }
            }
        } else {
            return Err("a manifest is a JSON object".into());
        }
        let manifest = Manifest::deserialize(&value).map_err(|e| e.to_string())?;
        manifest.checked().map(Record::Manifest)
    }

    /// The compact body recorded in the log.
    pub fn body(&self) -> String {
        match self {
            Record::Manifest(manifest) => {
                serde_json::to_string(manifest).expect("a manifest serializes")
            }
            Record::Delete => r#"{"delete":true}"#.into(),
            Record::Mkdir => r#"{"mkdir":true}"#.into(),
            Record::Unlink => r#"{"unlink":true}"#.into(),
        }
    }
}

impl Manifest {
    /// The manifest with its paths normalized, or why it is no good.
    fn checked(mut self) -> Result<Manifest, String> {
        if self.purpose.trim().is_empty() {
            return Err("\"purpose\" is empty".into());
        }
        if self.paths.is_empty() {
            return Err("\"paths\" is empty: name at least one path or glob".into());
        }
        if self.paths.len() > MAX_PATHS {
            return Err(format!(
                "\"paths\" has {} entries: at most {MAX_PATHS}",
                self.paths.len()
            ));
        }
        for (i, path) in self.paths.iter_mut().enumerate() {
            let pattern = Pattern::parse(path).map_err(|why| format!("\"paths\"[{i}]: {why}"))?;
            *path = pattern.text().to_string();
        }
        if self.max_bytes_per_file > MAX_MAX_BYTES_PER_FILE {
            return Err(format!(
                "\"max_bytes_per_file\" is {}: at most {MAX_MAX_BYTES_PER_FILE}",
                self.max_bytes_per_file
            ));
        }
        if self.recent_events > MAX_RECENT_EVENTS {
            return Err(format!(
                "\"recent_events\" is {}: at most {MAX_RECENT_EVENTS}",
                self.recent_events
            ));
        }
        let size = serde_json::to_string(&self)
            .map_err(|e| e.to_string())?
            .len();
        if size > MAX_BODY {
            return Err(format!(
                "the manifest is {size} bytes once normalized: at most {MAX_BODY}"
            ));
        }
        Ok(self)
    }

    /// The patterns (they parsed when the manifest was checked).
    pub fn patterns(&self) -> Vec<Pattern> {
        self.paths
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Record, String> {
        Record::parse(text.as_bytes())
    }

    #[test]
    fn a_good_manifest_is_normalized_with_defaults() {
        let r = parse(r#"{"purpose":"fix it","paths":["/src//main.rs","./docs/*.md"]}"#).unwrap();
        assert_eq!(
            r,
            Record::Manifest(Manifest {
                purpose: "fix it".into(),
                paths: vec!["src/main.rs".into(), "docs/*.md".into()],
                max_bytes_per_file: DEFAULT_MAX_BYTES_PER_FILE,
                recent_events: DEFAULT_RECENT_EVENTS,
            })
        );
        assert_eq!(
            r.body(),
            r#"{"purpose":"fix it","paths":["src/main.rs","docs/*.md"],"max_bytes_per_file":262144,"recent_events":50}"#
        );
        assert_eq!(Record::parse(r.body().as_bytes()).unwrap(), r);
        let r = parse(
            "{\"purpose\":\"p\",\"paths\":[\"a\"],\"max_bytes_per_file\":0,\"recent_events\":0}\n",
        );
        assert!(matches!(r, Ok(Record::Manifest(m)) if m.max_bytes_per_file == 0));
    }

    #[test]
    fn delete_stands_alone() {
        assert_eq!(parse(r#"{"delete":true}"#), Ok(Record::Delete));
        assert_eq!(Record::Delete.body(), r#"{"delete":true}"#);
        assert!(parse(r#"{"delete":false}"#).is_err());
        assert!(parse(r#"{"delete":true,"purpose":"p"}"#).is_err());
    }

    #[test]
    fn bad_manifests_say_why() {
        let why = |text: &str| parse(text).unwrap_err();
        assert!(why("").starts_with("not JSON"));
        assert!(why("{\"purpose\":").starts_with("not JSON"));
        assert!(why(r#"{"purpose":"p","paths":["a"]} {}"#).starts_with("not JSON"));
        assert!(why("[]").contains("object"));
        assert!(why(r#"{"paths":["a"]}"#).contains("missing field `purpose`"));
        assert!(why(r#"{"purpose":"p"}"#).contains("missing field `paths`"));
        assert!(why(r#"{"purpose":" ","paths":["a"]}"#).contains("\"purpose\" is empty"));
        assert!(why(r#"{"purpose":"p","paths":[]}"#).contains("\"paths\" is empty"));
        assert!(why(r#"{"purpose":3,"paths":["a"]}"#).contains("invalid type"));
        assert!(why(r#"{"purpose":"p","paths":"a"}"#).contains("invalid type"));
        assert!(why(r#"{"purpose":"p","paths":[1]}"#).contains("invalid type"));
        assert!(
            why(r#"{"purpose":"p","paths":["a"],"recent_events":-1}"#).contains("invalid value")
        );
        assert!(why(r#"{"purpose":"p","paths":["a"],"extra":1}"#).contains("unknown field `extra`"));
        assert!(why(r#"{"purpose":"p","paths":["a/../b"]}"#).contains("\"paths\"[0]"));
        assert!(why(r#"{"purpose":"p","paths":["a","/"]}"#).contains("\"paths\"[1]"));
        assert!(why(r#"{"purpose":"p","paths":["[x"]}"#).contains("'['"));
        assert!(
            why(r#"{"purpose":"p","paths":["a"],"max_bytes_per_file":2000000}"#)
                .contains("at most")
        );
        assert!(
            why(r#"{"purpose":"p","paths":["a"],"recent_events":1001}"#).contains("at most 1000")
        );
        let many: Vec<String> = (0..257).map(|i| format!("\"f{i}\"")).collect();
        assert!(why(&format!(
            r#"{{"purpose":"p","paths":[{}]}}"#,
            many.join(",")
        ))
        .contains("at most 256"));
        let long = "x".repeat(70_000);
        assert!(why(&format!(r#"{{"purpose":"{long}","paths":["a"]}}"#)).contains("at most 65536"));
    }
}
