//! What an agent writes to `shadows/<path>`: one JSON object, or several (JSON lines;
//! any whitespace between objects, so a pretty-printed object is fine too).
//!
//! ```text
//! {"kind":"comment","text":"check this loop","anchor":{"start_line":2,"end_line":2}}
//! ```
//!
//! - `kind` (required): a word of 1–32 characters, a letter then letters, digits, `-`
//!   or `_`; stored in lowercase. Usual kinds: `comment`, `note`, `question`,
//!   `warning`, `bug`, `todo`, `suggestion`, `praise`.
//! - `text` (required): not blank, at most [`MAX_TEXT_BYTES`].
//! - `anchor` (optional; absent or `null`: the whole file): `{"start_line": S,
//!   "end_line": E}`, 1-based and inclusive, `1 <= S <= E`; `end_line` may be left out
//!   (one line). `E` must be a line of the file (checked by the caller, which has it).
//!
//! Any other field, a field of the wrong type, or anything that is not a JSON object is
//! refused, and so is the whole write: every object is checked before any is recorded.

use lighthouse_view_sdk::{error, FsError};
use serde::Deserialize;
use serde_json::Value;

/// The longest `text` (bytes).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// The longest `kind` (characters).
pub const MAX_KIND_CHARS: usize = 32;
/// The most annotations one write may carry.
pub const MAX_PER_WRITE: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    kind: String,
    text: String,
    #[serde(default)]
    anchor: Option<WireAnchor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAnchor {
    start_line: u64,
    #[serde(default)]
    end_line: Option<u64>,
}

/// One annotation as written, checked (except its range against the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNote {
    pub kind: String,
    pub text: String,
    /// 1-based, inclusive; `None`: the whole file.
    pub range: Option<(u64, u64)>,
}

/// The annotations of one write, or why none of them may be recorded.
pub fn parse(data: &[u8]) -> Result<Vec<NewNote>, FsError> {
    let data = std::str::from_utf8(data)
        .map_err(|e| error::invalid(format!("annotations must be UTF-8 JSON: {e}")))?;
    let mut notes = Vec::new();
    for (k, value) in serde_json::Deserializer::from_str(data)
        .into_iter::<Value>()
        .enumerate()
    {
        let which = k + 1;
        if which > MAX_PER_WRITE {
            return Err(error::invalid(format!(
                "more than {MAX_PER_WRITE} annotations in one write"
            )));
        }
        let note = value
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(check)
            .map_err(|why| error::invalid(format!("annotation {which}: {why}")))?;
        notes.push(note);
    }
    if notes.is_empty() {
        return Err(error::invalid(
            r#"no annotation: write a JSON object such as {"kind":"comment","text":"..."}"#,
        ));
    }
    Ok(notes)
}

fn check(value: Value) -> Result<NewNote, String> {
    if !value.is_object() {
        return Err(format!("not a JSON object: {value}"));
    }
    let wire: Wire = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let kind = wire.kind.to_ascii_lowercase();
    let word = kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind.len() <= MAX_KIND_CHARS
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !word {
        return Err(format!(
            "kind {:?} is not a word (a letter, then letters, digits, '-' or '_'; at most {MAX_KIND_CHARS})",
            wire.kind
        ));
    }
    if wire.text.trim().is_empty() {
        return Err("text is empty".into());
    }
    if wire.text.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "text is {} bytes, the limit is {MAX_TEXT_BYTES}",
            wire.text.len()
        ));
    }
    let range = match wire.anchor {
        None => None,
        Some(WireAnchor {
            start_line,
            end_line,
        }) => {
            let end_line = end_line.unwrap_or(start_line);
            if start_line == 0 {
                return Err("anchor lines start at 1".into());
            }
            if end_line < start_line {
                return Err(format!(
                    "anchor ends (line {end_line}) before it starts (line {start_line})"
                ));
            }
            Some((start_line, end_line))
        }
    };
    Ok(NewNote {
        kind,
        text: wire.text,
        range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(data: &str) -> Vec<NewNote> {
        parse(data.as_bytes()).unwrap()
    }

    fn why(data: &str) -> String {
        match parse(data.as_bytes()) {
            Err(FsError::Invalid(why)) => why,
            other => panic!("{data:?} gave {other:?}"),
        }
    }

    #[test]
    fn the_minimal_form_and_its_variants() {
        assert_eq!(
            ok(
                r#"{"kind":"comment","text":"check this loop","anchor":{"start_line":2,"end_line":2}}"#
            ),
            [NewNote {
                kind: "comment".into(),
                text: "check this loop".into(),
                range: Some((2, 2))
            }]
        );
        // Whole file (no anchor, or null), one-line anchors, upper case kinds.
        let notes = ok(concat!(
            "{\"kind\":\"note\",\"text\":\"a\"}\n",
            "\n",
            "{\"kind\":\"TODO\",\"text\":\"b\",\"anchor\":null}\n",
            "  {\"kind\":\"bug-2\",\"text\":\"c\",\"anchor\":{\"start_line\":7}}"
        ));
        assert_eq!(notes.len(), 3);
        assert_eq!(notes[0].range, None);
        assert_eq!((notes[1].kind.as_str(), notes[1].range), ("todo", None));
        assert_eq!(notes[2].range, Some((7, 7)));
        // A pretty-printed object.
        assert_eq!(
            ok("{\n  \"kind\": \"question\",\n  \"text\": \"why?\"\n}\n").len(),
            1
        );
    }

    #[test]
    fn refuses_what_is_not_an_annotation() {
        assert!(why("").starts_with("no annotation"));
        assert!(why(" \n\n").starts_with("no annotation"));
        assert!(why("{\"kind\":\"comment\"").contains("not JSON"));
        assert!(why("[1,2]").contains("not a JSON object"));
        assert!(why(r#"["comment","x"]"#).contains("not a JSON object"));
        assert!(why(r#"{"kind":"comment","text":"x"} 7"#).starts_with("annotation 2:"));
        assert!(why(r#"{"kind":"comment"}"#).contains("missing field `text`"));
        assert!(why(r#"{"text":"x"}"#).contains("missing field `kind`"));
        assert!(why(r#"{"kind":1,"text":"x"}"#).contains("invalid type"));
        assert!(why(r#"{"kind":"comment","text":["x"]}"#).contains("invalid type"));
        assert!(why(r#"{"kind":"comment","text":"x","id":"a"}"#).contains("unknown field `id`"));
        assert!(
            why(r#"{"kind":"comment","text":"x","anchor":{"start_line":1,"col":2}}"#)
                .contains("unknown field `col`")
        );
        assert!(why(r#"{"kind":"comment","text":"x","anchor":2}"#).contains("invalid type"));
        assert!(
            why(r#"{"kind":"comment","text":"x","anchor":{"start_line":-1}}"#)
                .contains("invalid value")
        );
        assert!(
            why(r#"{"kind":"comment","text":"x","anchor":{"start_line":1.5}}"#)
                .contains("invalid type")
        );
        assert!(
            why(r#"{"kind":"comment","text":"x","anchor":{"start_line":0}}"#)
                .contains("start at 1")
        );
        assert!(
            why(r#"{"kind":"comment","text":"x","anchor":{"start_line":3,"end_line":2}}"#)
                .contains("before it starts")
        );
        assert!(why(r#"{"kind":"comment","text":" \n"}"#).contains("text is empty"));
        for kind in ["", "two words", "9lives", "ünïcode", &"k".repeat(33)] {
            let data = serde_json::json!({"kind": kind, "text": "x"}).to_string();
            assert!(why(&data).contains("is not a word"), "{kind}");
        }
        let long = serde_json::json!({"kind": "note", "text": "x".repeat(MAX_TEXT_BYTES + 1)});
        assert!(why(&long.to_string()).contains("the limit is"));
        assert!(why("\u{feff}{}").contains("not JSON"));
        assert!(matches!(
            parse(b"{\"kind\":\"a\",\"text\":\"\xff\"}"),
            Err(FsError::Invalid(_))
        ));
    }

    #[test]
    fn one_bad_object_refuses_the_whole_write() {
        let good = r#"{"kind":"comment","text":"x"}"#;
        let data = format!("{good}\n{good}\n{{\"kind\":\"comment\",\"text\":\"\"}}\n");
        assert!(why(&data).starts_with("annotation 3: text is empty"));
        let many = format!("{good}\n").repeat(MAX_PER_WRITE);
        assert_eq!(ok(&many).len(), MAX_PER_WRITE);
        assert!(why(&format!("{many}{good}")).starts_with("more than"));
    }
}
