//! The patterns of a manifest's `paths`: a path relative to `current/`, or a glob.
//!
//! - `src/main.rs`, `/src/main.rs`, `./src//main.rs`: the same path (normalized to
//!   `src/main.rs`); `..` is refused, and so is a pattern naming the whole tree (`/`).
//! - `*` any run of characters within one name (dot-files included), `?` one character,
//!   `[abc]`, `[a-z]`, `[!a-z]` / `[^a-z]` one character of (not of) a set (a `]` right
//!   after `[` or `[!` is literal), `\x` the character `x` itself;
//! - `**` as a whole component: any number of directories, none included
//!   (`src/**/*.rs` matches `src/main.rs` and `src/a/b/c.rs`; `**` alone, everything).
//!
//! Matching is by components, so `*` never crosses a `/`. A pattern is matched against
//! whole paths with a table over (pattern part, path component): no backtracking blow-up
//! however many `**` it has.

/// The longest pattern (bytes).
pub const MAX_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[...]`: ranges (inclusive), negated or not.
    Class(bool, Vec<(char, char)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// `**`
    AnyDepth,
    Name(Vec<Token>),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The normalized text (`src/**/*.rs`: no leading `/`, no empty or `.` components).
    text: String,
    parts: Vec<Part>,
}

impl Pattern {
    /// `Err(reason)` for a pattern that cannot be used.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.len() > MAX_LEN {
            return Err(format!("a path of {} bytes: at most {MAX_LEN}", text.len()));
        }
        if text.contains('\0') {
            return Err(format!("{text:?} has a NUL character"));
        }
        let mut parts = Vec::new();
        let mut names = Vec::new();
        for component in text.split('/') {
            match component {
                "" | "." => continue,
                ".." => return Err(format!("{text:?}: '..' is not allowed")),
                "**" => {
                    if parts.last() != Some(&Part::AnyDepth) {
                        parts.push(Part::AnyDepth);
                    }
                }
                name => parts.push(Part::Name(
                    tokens(name).map_err(|why| format!("{text:?}: {why}"))?,
                )),
            }
            names.push(component);
        }
        if parts.is_empty() {
            return Err(format!(
                "{text:?} names the whole tree: say \"**\" to mean every file"
            ));
        }
        Ok(Pattern {
            text: names.join("/"),
            parts,
        })
    }

    /// The normalized text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A plain path (no wildcard): its store path (`/src/main.rs`).
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            let Part::Name(tokens) = part else {
                return None;
            };
            out.push('/');
            for token in tokens {
                let Token::Char(c) = token else { return None };
                out.push(*c);
            }
        }
        Some(out)
    }

    /// The components before the first wildcard: where a walk for this pattern starts.
    pub fn base(&self) -> Vec<String> {
        let mut base = Vec::new();
        for part in &self.parts {
            let Part::Name(tokens) = part else { break };
            let mut name = String::new();
            for token in tokens {
                let Token::Char(c) = token else { return base };
                name.push(*c);
            }
            base.push(name);
        }
        base
    }

    /// Does the path of these components match?
    pub fn matches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        self.table(path, false)
    }

    /// Could something below the directory of these components match?
    pub fn may_match_below<S: AsRef<str>>(&self, dir: &[S]) -> bool {
        self.table(dir, true)
    }

    /// `ok[i][j]`: parts `i..` match components `j..` (`below`: components `j..` plus at
    /// least one more, still unknown), filled from the end.
    fn table<S: AsRef<str>>(&self, path: &[S], below: bool) -> bool {
        let (p, d) = (self.parts.len(), path.len());
        let width = d + 1;
        let mut ok = vec![false; (p + 1) * width];
        for i in (0..=p).rev() {
            for j in (0..=d).rev() {
                ok[i * width + j] = if j == d && below {
                    i < p // some part is left for the components still to come
                } else if i == p {
                    j == d
                } else {
                    match &self.parts[i] {
                        Part::AnyDepth => {
                            ok[(i + 1) * width + j] || (j < d && ok[i * width + j + 1])
                        }
                        Part::Name(tokens) => {
                            j < d
                                && ok[(i + 1) * width + j + 1]
                                && name_matches(tokens, path[j].as_ref())
                        }
                    }
                };
            }
        }
        ok[0]
    }
}

fn tokens(name: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => {
                if out.last() == Some(&Token::Star) {
                    continue;
                }
                Token::Star
            }
            '?' => Token::One,
            '\\' => Token::Char(chars.next().ok_or("a '\\' at the end of a name")?),
            '[' => {
                let negated = matches!(chars.peek(), Some('!' | '^'));
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = match chars.next() {
                        None => return Err(format!("'[' without ']' in {name:?}")),
                        Some(']') if !first => break,
                        Some('\\') => chars.next().ok_or("a '\\' at the end of a name")?,
                        Some(c) => c,
                    };
                    first = false;
                    let mut lookahead = chars.clone();
                    if lookahead.next() == Some('-') && lookahead.peek().is_some_and(|&e| e != ']')
                    {
                        chars.next();
                        let end = match chars.next() {
                            Some('\\') => chars.next().ok_or("a '\\' at the end of a name")?,
                            Some(e) => e,
                            None => unreachable!("peeked"),
                        };
                        if end < c {
                            return Err(format!("range {c}-{end} runs backwards in {name:?}"));
                        }
                        ranges.push((c, end));
                    } else {
                        ranges.push((c, c));
                    }
                }
                Token::Class(negated, ranges)
            }
            c => Token::Char(c),
        });
    }
    Ok(out)
}

impl Token {
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Char(want) => *want == c,
            Token::One => true,
            Token::Star => unreachable!("stars are matched by name_matches"),
            Token::Class(negated, ranges) => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

/// One name against one component's tokens: the classic star backtrack (linear in
/// practice: only the last star is ever resumed).
fn name_matches(tokens: &[Token], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let (mut t, mut n) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                resume = Some((t + 1, n));
                t += 1;
            }
            Some(token) if token.accepts(name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match resume {
                Some((after_star, from)) => {
                    t = after_star;
                    n = from + 1;
                    resume = Some((after_star, from + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|token| *token == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        Pattern::parse(pattern).unwrap().matches(&parts)
    }

    fn below(pattern: &str, dir: &str) -> bool {
        let parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        Pattern::parse(pattern).unwrap().may_match_below(&parts)
    }

    #[test]
    fn normalizes_and_refuses() {
        let p = Pattern::parse("./src//main.rs").unwrap();
        assert_eq!(p.text(), "src/main.rs");
        assert_eq!(p.literal().as_deref(), Some("/src/main.rs"));
        assert_eq!(Pattern::parse("/src/main.rs").unwrap(), p);
        assert_eq!(Pattern::parse("src/**/**/x").unwrap().text(), "src/**/**/x");
        assert_eq!(Pattern::parse("src/*.rs").unwrap().literal(), None);
        assert_eq!(
            Pattern::parse("a/b\\*").unwrap().literal().as_deref(),
            Some("/a/b*")
        );
        assert_eq!(Pattern::parse("a/b/*.rs/c").unwrap().base(), ["a", "b"]);
        for bad in [
            "", "/", ".", "./", "a/../b", "..", "a/[bc", "a/[]", "a/[!]", "a\\", "[z-a]", "a\0",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Pattern::parse(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn single_names() {
        assert!(m("*.rs", "main.rs"));
        assert!(m("*.rs", ".rs"));
        assert!(m("*", ".hidden"));
        assert!(!m("*.rs", "main.rsx"));
        assert!(m("a*b*c", "abc") && m("a*b*c", "aXbYbZc") && !m("a*b*c", "aXbYcZ"));
        assert!(m("?", "x") && !m("?", "xy") && !m("?", ""));
        assert!(m("m??n.rs", "main.rs"));
        assert!(m("[abc].rs", "b.rs") && !m("[abc].rs", "d.rs"));
        assert!(m("[a-c]x", "bx") && !m("[a-c]x", "dx"));
        assert!(m("[!a-c]x", "dx") && !m("[!a-c]x", "ax") && m("[^a]", "b"));
        assert!(m("[]]", "]") && m("[!]]", "a") && !m("[!]]", "]"));
        assert!(m("[a-]", "-") && m("[a-]", "a"));
        assert!(m("\\*", "*") && !m("\\*", "x"));
        assert!(m("é?", "éü"));
        assert!(m("**", "a") && m("**", "a/b/c"));
        assert!(m("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!m("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn paths_and_depth() {
        assert!(m("src/*.rs", "src/main.rs"));
        assert!(!m("src/*.rs", "src/a/main.rs"));
        assert!(!m("*", "src/main.rs"));
        assert!(m("src/**/*.rs", "src/main.rs"));
        assert!(m("src/**/*.rs", "src/a/b/c.rs"));
        assert!(!m("src/**/*.rs", "lib/a.rs"));
        assert!(m("**/*.md", "README.md") && m("**/*.md", "docs/x/y.md"));
        assert!(m("src/**", "src/a") && m("src/**", "src/a/b"));
        assert!(m("**/a/**/b", "a/b") && m("**/a/**/b", "x/a/y/z/b") && !m("**/a/**/b", "x/b"));
        assert!(m("src/main.rs", "src/main.rs") && !m("src/main.rs", "src/main.rs/x"));
        let deep: String = (0..200).map(|_| "a/").collect::<String>() + "b";
        assert!(!m("**/a/**/a/**/a/**/a/**/c", &deep));
        assert!(m("**/a/**/a/**/a/**/a/**/b", &deep));
    }

    #[test]
    fn prunes_directories_that_cannot_lead_to_a_match() {
        assert!(below("src/*.rs", "src"));
        assert!(!below("src/*.rs", "src/a"));
        assert!(!below("src/*.rs", "lib"));
        assert!(below("src/**/*.rs", "src/a/b"));
        assert!(below("**/*.rs", "anything/at/all"));
        assert!(below("*/x", "a") && !below("*/x", "a/b"));
        assert!(below("a", "") && !below("a", "a"));
    }
}
