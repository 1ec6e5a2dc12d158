//! Anchors: a range of lines of a file, what it held then, and where that text is now.
//!
//! [`capture`] records, for lines `start..=end` (1-based, inclusive) of the file as it
//! is when the annotation is written:
//! - the range itself;
//! - `lines`: the anchored text (the lines joined with `\n`, invalid UTF-8 replaced by
//!   U+FFFD), cut at [`MAX_LINES_BYTES`] (then `truncated` is set);
//! - `fingerprint`: hex BLAKE3 of the anchored bytes exactly as the file held them
//!   (the lines joined with `\n`, without the last line's terminator);
//! - `before`/`after`: short whitespace-insensitive fingerprints of the line just above
//!   and just below the range (`null` at the top or bottom of the file), its context.
//!
//! [`locate`] finds that text in the file as it is now, without looking at the versions
//! in between (so the answer is a function of the annotation and the current content):
//! 1. the same bytes still at the original range: **fresh** (unless neither line next
//!    to it is the one recorded while an exact copy elsewhere has both: a common line
//!    such as `}` whose block moved away goes with its block, **moved**);
//! 2. otherwise every place the file holds exactly the anchored lines (checked against
//!    the fingerprint, so a truncated or lossy `lines` is still matched exactly): the
//!    best of them, **moved** (`match: exact`);
//! 3. otherwise every place whose lines equal the anchored ones once all whitespace is
//!    removed (re-indented, re-spaced code; for a truncated anchor only the recorded part
//!    is compared): the best of them, **moved** (`match: whitespace`), which may be the
//!    original range itself;
//! 4. otherwise **stale**: the original range is kept.
//!
//! "Best" is the candidate whose surroundings still match the recorded context (line
//! above and below, whitespace ignored), then the one nearest the original start, then
//! the upper one: a block of common lines (`}`, a blank line) goes back to where its
//! neighbours are, not to the first look-alike.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Reverse;

use serde::{Deserialize, Serialize};

/// The most bytes of anchored text an annotation keeps (the fingerprint covers all).
pub const MAX_LINES_BYTES: usize = 4096;
/// Hex digits of a context fingerprint.
const CONTEXT_HEX: usize = 16;

/// What an annotation's event records about its anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub start_line: u64,
    pub end_line: u64,
    /// The anchored text, at most [`MAX_LINES_BYTES`].
    pub lines: String,
    /// `lines` is only the beginning of the anchored text.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Hex BLAKE3 of the anchored bytes.
    pub fingerprint: String,
    /// Context fingerprint of the line above (`None`: the range started the file).
    #[serde(default)]
    pub before: Option<String>,
    /// Context fingerprint of the line below (`None`: the range ended the file).
    #[serde(default)]
    pub after: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Where an anchor's text is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub start_line: u64,
    pub end_line: u64,
    pub status: Status,
    pub found: Found,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The anchored text is where it was.
    Fresh,
    /// The anchored text is elsewhere (or changed only in whitespace).
    Moved,
    /// The anchored text is gone; the range is the original one.
    Stale,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Fresh => "fresh",
            Status::Moved => "moved",
            Status::Stale => "stale",
        }
    }
}

/// How the text was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Exact,
    Whitespace,
    Nowhere,
}

impl Found {
    pub fn as_str(self) -> &'static str {
        match self {
            Found::Exact => "exact",
            Found::Whitespace => "whitespace",
            Found::Nowhere => "none",
        }
    }
}

/// A file's content as lines: split at `\n`; a final `\n` ends the last line rather than
/// starting an empty one (`""` has no lines, `"\n"` one empty line, `"a"` and `"a\n"`
/// one). A `\r` before the `\n` stays part of its line.
pub struct Text<'a> {
    raw: Vec<&'a [u8]>,
    lossy: Vec<Cow<'a, str>>,
    squashed: OnceCell<Vec<String>>,
}

impl<'a> Text<'a> {
    pub fn new(content: &'a [u8]) -> Self {
        let raw: Vec<&[u8]> = if content.is_empty() {
            Vec::new()
        } else {
            let body = content.strip_suffix(b"\n").unwrap_or(content);
            body.split(|&b| b == b'\n').collect()
        };
        let lossy = raw.iter().map(|l| String::from_utf8_lossy(l)).collect();
        Text {
            raw,
            lossy,
            squashed: OnceCell::new(),
        }
    }

    pub fn line_count(&self) -> u64 {
        self.raw.len() as u64
    }

    fn squashed(&self) -> &[String] {
        self.squashed
            .get_or_init(|| self.lossy.iter().map(|l| squash(l)).collect())
    }

    /// Hex BLAKE3 of lines `i..i + n` (0-based) joined with `\n`.
    fn fingerprint(&self, i: usize, n: usize) -> String {
        let mut hasher = blake3::Hasher::new();
        for (k, line) in self.raw[i..i + n].iter().enumerate() {
            if k > 0 {
                hasher.update(b"\n");
            }
            hasher.update(line);
        }
        hasher.finalize().to_hex().to_string()
    }

    /// The context fingerprint of line `i` (0-based), if the file has it.
    fn context(&self, i: Option<usize>) -> Option<String> {
        i.and_then(|i| self.lossy.get(i)).map(|l| context_print(l))
    }
}

/// `line` without any whitespace.
fn squash(line: &str) -> String {
    line.chars().filter(|c| !c.is_whitespace()).collect()
}

fn context_print(line: &str) -> String {
    let mut hex = blake3::hash(squash(line).as_bytes()).to_hex().to_string();
    hex.truncate(CONTEXT_HEX);
    hex
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// The anchor of lines `start..=end` (1-based) of `text`, which the caller has checked
/// are lines of it (`1 <= start <= end <= line_count`).
pub fn capture(text: &Text, start: u64, end: u64) -> Recorded {
    let (i, n) = ((start - 1) as usize, (end - start + 1) as usize);
    let mut lines = text.lossy[i..i + n].join("\n");
    let truncated = cut(&mut lines, MAX_LINES_BYTES);
    Recorded {
        start_line: start,
        end_line: end,
        lines,
        truncated,
        fingerprint: text.fingerprint(i, n),
        before: text.context(i.checked_sub(1)),
        after: text.context(Some(i + n)),
    }
}

/// The recorded lines as a pattern: whole lines, plus the beginning of one more when
/// `lines` was truncated.
struct Pattern<'r> {
    whole: Vec<Cow<'r, str>>,
    partial: Option<Cow<'r, str>>,
}

impl<'r> Pattern<'r> {
    /// `None` when the record contradicts itself (more lines than its range).
    fn new(rec: &'r Recorded, n: usize) -> Option<Self> {
        let mut whole: Vec<Cow<str>> = rec.lines.split('\n').map(Cow::Borrowed).collect();
        let partial = if rec.truncated { whole.pop() } else { None };
        let consistent = if rec.truncated {
            whole.len() < n
        } else {
            whole.len() == n
        };
        consistent.then_some(Pattern { whole, partial })
    }

    /// The pattern with all whitespace removed.
    fn squashed(&self) -> Pattern<'static> {
        let sq = |s: &Cow<str>| Cow::Owned(squash(s));
        Pattern {
            whole: self.whole.iter().map(sq).collect(),
            partial: self.partial.as_ref().map(sq),
        }
    }

    /// Do `lines` from `i` on start with the pattern?
    fn matches<L: AsRef<str>>(&self, lines: &[L], i: usize) -> bool {
        self.whole
            .iter()
            .zip(&lines[i..])
            .all(|(want, line)| line.as_ref() == want.as_ref())
            && self.partial.as_ref().is_none_or(|want| {
                lines[i + self.whole.len()]
                    .as_ref()
                    .starts_with(want.as_ref())
            })
    }
}

/// Where the text `rec` anchored is in `text` now (see the module docs).
pub fn locate(rec: &Recorded, text: &Text) -> Located {
    let stale = Located {
        start_line: rec.start_line,
        end_line: rec.end_line,
        status: Status::Stale,
        found: Found::Nowhere,
    };
    let total = text.raw.len();
    if rec.start_line == 0 || rec.end_line < rec.start_line {
        return stale;
    }
    let n = match usize::try_from(rec.end_line - rec.start_line + 1) {
        Ok(n) if n <= total => n,
        _ => return stale,
    };
    let Some(pattern) = Pattern::new(rec, n) else {
        return stale;
    };
    let orig = usize::try_from(rec.start_line - 1).unwrap_or(usize::MAX);
    let at = |i: usize, found| Located {
        start_line: i as u64 + 1,
        end_line: (i + n) as u64,
        status: if found == Found::Exact && i == orig {
            Status::Fresh
        } else {
            Status::Moved
        },
        found,
    };

    let exact =
        |i: usize| pattern.matches(&text.lossy, i) && text.fingerprint(i, n) == rec.fingerprint;
    let context = |i: usize| context_score(rec, text, i, n);
    let in_place = orig <= total - n && exact(orig);
    if in_place && context(orig) > 0 {
        return at(orig, Found::Exact);
    }
    let mut hits: Vec<usize> = (0..=total - n).filter(|&i| exact(i)).collect();
    if in_place {
        // Still in place but among new neighbours: it stays unless a copy elsewhere has
        // both of its old ones (a common line such as `}` whose block moved).
        hits.retain(|&i| context(i) == 2);
        hits.push(orig);
    }
    if let Some(i) = best(&hits, orig, context) {
        return at(i, Found::Exact);
    }

    let (lines, pattern) = (text.squashed(), pattern.squashed());
    let hits: Vec<usize> = (0..=total - n)
        .filter(|&i| pattern.matches(lines, i))
        .collect();
    match best(&hits, orig, context) {
        Some(i) => at(i, Found::Whitespace),
        None => stale,
    }
}

/// How many of the recorded neighbours (line above, line below; whitespace ignored) the
/// `n` lines from `i` have.
fn context_score(rec: &Recorded, text: &Text, i: usize, n: usize) -> u8 {
    let above = text.context(i.checked_sub(1)) == rec.before;
    let below = text.context(Some(i + n)) == rec.after;
    u8::from(above) + u8::from(below)
}

/// The best of the candidate starts `hits`: most context lines matching, then nearest
/// `orig`, then the upper one.
fn best(hits: &[usize], orig: usize, context: impl Fn(usize) -> u8) -> Option<usize> {
    hits.iter()
        .copied()
        .max_by_key(|&i| (context(i), Reverse(i.abs_diff(orig)), Reverse(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(content: &str, start: u64, end: u64) -> Recorded {
        capture(&Text::new(content.as_bytes()), start, end)
    }

    fn find(rec: &Recorded, content: &str) -> (u64, u64, Status, Found) {
        let l = locate(rec, &Text::new(content.as_bytes()));
        (l.start_line, l.end_line, l.status, l.found)
    }

    #[test]
    fn lines_are_split_like_wc_counts_them() {
        let count = |s: &str| Text::new(s.as_bytes()).line_count();
        assert_eq!(count(""), 0);
        assert_eq!(count("\n"), 1);
        assert_eq!(count("a"), 1);
        assert_eq!(count("a\n"), 1);
        assert_eq!(count("a\nb"), 2);
        assert_eq!(count("a\n\n"), 2);
        let t = Text::new(b"a\r\nb\r\n");
        assert_eq!(t.lossy, ["a\r", "b\r"]);
    }

    #[test]
    fn capture_records_text_fingerprint_and_context() {
        let r = rec("one\ntwo\nthree\nfour\n", 2, 3);
        assert_eq!((r.start_line, r.end_line), (2, 3));
        assert_eq!(r.lines, "two\nthree");
        assert!(!r.truncated);
        assert_eq!(
            r.fingerprint,
            blake3::hash(b"two\nthree").to_hex().to_string()
        );
        assert_eq!(r.before.as_deref(), Some(context_print("one").as_str()));
        assert_eq!(r.after.as_deref(), Some(context_print("four").as_str()));
        let top = rec("one\ntwo\n", 1, 2);
        assert_eq!((top.before, top.after), (None, None));
        // The record round-trips through its JSON.
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("truncated"));
        assert_eq!(serde_json::from_str::<Recorded>(&json).unwrap(), r);
    }

    #[test]
    fn unchanged_text_is_fresh() {
        let content = "a\nb\nc\n";
        let r = rec(content, 2, 2);
        assert_eq!(find(&r, content), (2, 2, Status::Fresh, Found::Exact));
        // Edits elsewhere do not matter.
        assert_eq!(
            find(&r, "a changed\nb\nc\nd\n"),
            (2, 2, Status::Fresh, Found::Exact)
        );
    }

    #[test]
    fn lines_inserted_above_move_the_anchor() {
        let r = rec(
            "fn main() {\n    for i in 0..n {\n        go(i);\n    }\n}\n",
            2,
            3,
        );
        let now = "// a\n// b\n// c\nfn main() {\n    for i in 0..n {\n        go(i);\n    }\n}\n";
        assert_eq!(find(&r, now), (5, 6, Status::Moved, Found::Exact));
        // Lines removed above move it up.
        let r = rec("x\ny\nz\ntarget\n", 4, 4);
        assert_eq!(find(&r, "target\n"), (1, 1, Status::Moved, Found::Exact));
    }

    #[test]
    fn removed_text_is_stale_with_the_original_range() {
        let r = rec("a\nb\nc\n", 2, 3);
        assert_eq!(find(&r, "a\nB\nc\n"), (2, 3, Status::Stale, Found::Nowhere));
        assert_eq!(find(&r, ""), (2, 3, Status::Stale, Found::Nowhere));
        // Only part of the range is left: stale.
        assert_eq!(find(&r, "b\n"), (2, 3, Status::Stale, Found::Nowhere));
    }

    #[test]
    fn the_nearest_copy_wins_and_context_beats_distance() {
        let r = rec("x\nTARGET\ny\nz\nw\nv\n", 2, 2);
        // Two copies, neither with the old neighbours: the nearer one (line 3, distance 1
        // from line 2) beats line 6.
        assert_eq!(
            find(&r, "p\nq\nTARGET\nr\ns\nTARGET\n"),
            (3, 3, Status::Moved, Found::Exact)
        );
        // Equally near: the upper one.
        assert_eq!(
            find(&r, "TARGET\nq\nTARGET\n"),
            (1, 1, Status::Moved, Found::Exact)
        );
        // A common line goes back to its neighbours even when another copy is nearer.
        let r = rec("a() {\n}\nb() {\n}\n", 2, 2);
        let now = "c() {\n}\nnew\nnew\na() {\n}\nb() {\n}\n";
        assert_eq!(find(&r, now), (6, 6, Status::Moved, Found::Exact));
        // But with one of its neighbours still in place, it stays.
        let now = "a() {\n}\nZ\na() {\n}\nb() {\n}\n";
        assert_eq!(find(&r, now), (2, 2, Status::Fresh, Found::Exact));
    }

    #[test]
    fn whitespace_changes_are_found_as_moved() {
        let r = rec("fn f() {\n    if x { y(); }\n}\n", 2, 2);
        // Re-indented in place.
        assert_eq!(
            find(&r, "fn f() {\n\tif x {y();}\n}\n"),
            (2, 2, Status::Moved, Found::Whitespace)
        );
        // Re-indented and moved; an exact copy elsewhere would win over it.
        assert_eq!(
            find(&r, "use a;\n\nfn f() {\n  if  x  { y(); }\n}\n"),
            (4, 4, Status::Moved, Found::Whitespace)
        );
        assert_eq!(
            find(&r, "  if x {y();}\nz\nz\n    if x { y(); }\n"),
            (4, 4, Status::Moved, Found::Exact)
        );
    }

    #[test]
    fn long_anchors_are_truncated_but_still_matched_exactly() {
        let long: String = (0..300)
            .map(|i| format!("line {i} of a long block\n"))
            .collect();
        let r = rec(&long, 1, 300);
        assert!(r.truncated && r.lines.len() <= MAX_LINES_BYTES);
        let shifted = format!("new\n{long}");
        assert_eq!(find(&r, &shifted), (2, 301, Status::Moved, Found::Exact));
        // A change past the recorded part is caught by the fingerprint; the whitespace
        // match, which cannot see it, still finds the block.
        let edited = shifted.replace("line 299 of", "line 299 in");
        assert_eq!(
            find(&r, &edited),
            (2, 301, Status::Moved, Found::Whitespace)
        );
        // A single line longer than the cap.
        let huge = format!("a\n{}\nb\n", "é".repeat(3000));
        let r = rec(&huge, 2, 2);
        assert!(r.truncated && r.lines.len() <= MAX_LINES_BYTES);
        assert_eq!(
            find(&r, &format!("x\n{huge}")),
            (3, 3, Status::Moved, Found::Exact)
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_matched_by_fingerprint() {
        let before = b"a\n\xff\xfe one\nb\n";
        let r = capture(&Text::new(before), 2, 2);
        assert_eq!(r.lines, "\u{fffd}\u{fffd} one");
        let moved = locate(&r, &Text::new(b"new\na\n\xff\xfe one\nb\n"));
        assert_eq!((moved.start_line, moved.status), (3, Status::Moved));
        // Other invalid bytes look the same after replacement, but are not the same text.
        let other = locate(&r, &Text::new(b"a\n\xfe\xff one\nb\n"));
        assert_eq!(other.found, Found::Whitespace);
    }

    #[test]
    fn records_that_contradict_themselves_are_stale() {
        let mut r = rec("a\nb\n", 1, 2);
        r.lines = "a".into();
        assert_eq!(find(&r, "a\nb\n").2, Status::Stale);
        let mut r = rec("a\nb\n", 1, 1);
        r.end_line = u64::MAX;
        assert_eq!(find(&r, "a\nb\n").2, Status::Stale);
        r.start_line = 0;
        assert_eq!(find(&r, "a\nb\n").2, Status::Stale);
    }
}
