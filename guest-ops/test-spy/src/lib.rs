//! `test-spy/`: the test view `spy`, a hostile view that ignores permissions and asks
//! the `store` import for everything it can think of, on every call. The host checks
//! what it gives a view for the caller of the request (docs/policy.md section 9), so
//! whatever the spy shows a caller must be what that caller could read directly; the
//! mounted test (`tests/sight.rs`) reads the spy's files as many callers and checks.
//!
//! - `dump` (volatile): a text report of every answer the store gave, in order:
//!   - `head`, `audit-head`;
//!   - every event from `events(0, …)` following `through`; then `events(s, 1, …)` for
//!     every `s` from 0 below `head`, ignoring `through` (a hidden event is not reachable
//!     by asking right before it); then `events(0, …)` under each guessed path;
//!   - every audit record, the same two ways;
//!   - for every seq from 0 to `head`: a walk from `/` calling `stat-at`, `readlink-at`,
//!     `list-at`, `read-at` (the whole content) and `hash-at` on every path it can name,
//!     and the same calls on every guessed path the walk did not reach (even where
//!     `list-at` of its directory failed): every path and path2 any event it received
//!     names, and every prefix of them;
//!   - a last line `calls N` (store calls made), or `BUDGET EXHAUSTED` when it stopped
//!     early (at [`MAX_CALLS`]: a view call has a time limit).
//! - `guess/P1,P2,…` (volatile): the same report with the paths Pi added to the guesses
//!   (`+` in a name stands for `/`: `guess/+priv+secret.txt`); each Pi is written
//!   `<GUESS>` in the report, so what the report holds of it came from the store.
//! - `append` (writable by every uid): a write of `PATH\nBODY` calls
//!   `store.append("spy-note", PATH, BODY)` and answers the bytes written, or the
//!   store's error (so `permission-denied` reaches the writer as EACCES).

use std::collections::BTreeSet;

use lighthouse_view_sdk::{
    attrs, error, path, slice_read, store, Attrs, AuditRecord, Caching, Caller, DirEntry, Event,
    EventFilter, FsError, NodeKind, OpenMode, View, ViewInfo,
};

/// Most store calls one report makes: the scene of the tests needs a few thousand.
const MAX_CALLS: usize = 20_000;
/// Most bytes read of one file at one seq.
const MAX_FILE: u64 = 1 << 20;
/// How deep the walk goes.
const MAX_DEPTH: usize = 16;

/// One report being written.
struct Report {
    out: String,
    calls: usize,
    /// Paths written `<GUESS>`.
    redact: Vec<String>,
}

impl Report {
    /// May one more store call be made?
    fn call(&mut self) -> bool {
        if self.calls >= MAX_CALLS {
            return false;
        }
        self.calls += 1;
        true
    }

    fn line(&mut self, text: String) {
        let mut text = text;
        for g in &self.redact {
            text = text.replace(g.as_str(), "<GUESS>");
        }
        self.out.push_str(&text);
        self.out.push('\n');
    }

    fn event(&mut self, how: &str, e: &Event) {
        self.line(format!(
            "{how} event seq={} time={} agent={:?} uid={} gid={} pid={} op={} path={:?} \
             path2={:?} size={:?} hash={:?} view={:?} body={:?}",
            e.seq,
            e.time_ns,
            e.agent,
            e.uid,
            e.gid,
            e.pid,
            e.op,
            e.path,
            e.path2,
            e.size,
            e.hash,
            e.view,
            e.body
        ));
    }

    fn audit(&mut self, how: &str, a: &AuditRecord) {
        self.line(format!(
            "{how} audit seq={} time={} agent={:?} uid={} gid={} pid={} op={} path={:?} outcome={:?}",
            a.seq, a.time_ns, a.agent, a.uid, a.gid, a.pid, a.op, a.path, a.outcome
        ));
    }
}

fn kind(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Directory => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::Stream => "stream",
    }
}

fn attrs_text(a: &Attrs) -> String {
    let owner = a.owner.map(|o| format!("{}:{}", o.uid, o.gid));
    format!(
        "{} size={} mtime={} perm={:o} owner={:?}",
        kind(a.kind),
        a.size,
        a.mtime_ns,
        a.perm,
        owner
    )
}

fn bytes_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).escape_debug().to_string()
}

/// `path` and every path above it (not `/`).
fn with_prefixes(path: &str, into: &mut BTreeSet<String>) {
    if !path.starts_with('/') {
        return;
    }
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        into.insert(at.clone());
    }
}

fn guess_event(e: &Event, guesses: &mut BTreeSet<String>) {
    with_prefixes(&e.path, guesses);
    if let Some(p2) = &e.path2 {
        with_prefixes(p2, guesses);
    }
}

/// Every store answer about `p` at `seq`; then the walk below it where `list-at` answers.
fn probe(r: &mut Report, seq: u64, p: &str, depth: usize, seen: &mut BTreeSet<String>) {
    if !seen.insert(p.to_string()) {
        return;
    }
    if !r.call() {
        return;
    }
    let stat = match store::stat_at(p, seq) {
        Ok(a) => attrs_text(&a),
        Err(e) => format!("{e:?}"),
    };
    r.line(format!("@{seq} stat {p:?}: {stat}"));
    if !r.call() {
        return;
    }
    let link = store::readlink_at(p, seq);
    r.line(format!("@{seq} readlink {p:?}: {link:?}"));
    if !r.call() {
        return;
    }
    let hash = store::hash_at(p, seq);
    r.line(format!("@{seq} hash {p:?}: {hash:?}"));
    let mut content = Vec::new();
    let mut read_err = None;
    while (content.len() as u64) < MAX_FILE {
        if !r.call() {
            break;
        }
        match store::read_at(p, seq, content.len() as u64, 64 << 10) {
            Ok(b) if b.is_empty() => break,
            Ok(b) => content.extend_from_slice(&b),
            Err(e) => {
                read_err = Some(e);
                break;
            }
        }
    }
    match read_err {
        Some(e) => r.line(format!("@{seq} read {p:?}: {e:?}")),
        None => r.line(format!("@{seq} read {p:?}: \"{}\"", bytes_text(&content))),
    }
    if !r.call() {
        return;
    }
    match store::list_at(p, seq) {
        Ok(entries) => {
            let names: Vec<String> = entries
                .iter()
                .map(|e: &DirEntry| format!("{}({})", e.name, kind(e.kind)))
                .collect();
            r.line(format!("@{seq} list {p:?}: [{}]", names.join(", ")));
            if depth < MAX_DEPTH {
                for e in entries {
                    let child = if p == "/" {
                        format!("/{}", e.name)
                    } else {
                        format!("{p}/{}", e.name)
                    };
                    probe(r, seq, &child, depth + 1, seen);
                }
            }
        }
        Err(e) => r.line(format!("@{seq} list {p:?}: {e:?}")),
    }
}

/// The whole report, with `extra` guessed paths.
fn report(extra: &[String]) -> String {
    let mut r = Report {
        out: String::new(),
        calls: 0,
        redact: extra.to_vec(),
    };
    let mut guesses: BTreeSet<String> = BTreeSet::new();
    for g in extra {
        with_prefixes(g, &mut guesses);
    }
    r.calls += 2;
    let head = store::head();
    let audit_head = store::audit_head();
    r.line(format!("head {head}"));
    r.line(format!("audit-head {audit_head}"));

    // The log, following `through`.
    let mut after = 0;
    loop {
        if !r.call() {
            break;
        }
        let page = store::events(after, 4096, &EventFilter::all());
        for e in &page.events {
            r.event("page", e);
            guess_event(e, &mut guesses);
        }
        r.line(format!("page after {after}: through {}", page.through));
        if page.through <= after {
            break;
        }
        after = page.through;
    }
    // Ignoring `through`: right after every seq.
    for s in 0..head {
        if !r.call() {
            break;
        }
        let page = store::events(s, 1, &EventFilter::all());
        for e in &page.events {
            r.event(&format!("after {s}:"), e);
            guess_event(e, &mut guesses);
        }
        r.line(format!("after {s}: through {}", page.through));
    }
    // Under each guessed path.
    for g in guesses.clone() {
        if !r.call() {
            break;
        }
        let page = store::events(0, 4096, &EventFilter::under(g.clone()));
        for e in &page.events {
            r.event(&format!("under {g:?}:"), e);
            guess_event(e, &mut guesses);
        }
        r.line(format!("under {g:?}: through {}", page.through));
    }

    // The audit trail, both ways.
    let mut after = 0;
    loop {
        if !r.call() {
            break;
        }
        let page = store::audit(after, 4096);
        for a in &page.records {
            r.audit("page", a);
        }
        r.line(format!(
            "audit page after {after}: through {}",
            page.through
        ));
        if page.through <= after {
            break;
        }
        after = page.through;
    }
    for s in 0..audit_head {
        if !r.call() {
            break;
        }
        let page = store::audit(s, 1);
        for a in &page.records {
            r.audit(&format!("after {s}:"), a);
        }
        r.line(format!("audit after {s}: through {}", page.through));
    }

    // The tree at every seq: the walk, then every guess it did not reach.
    for seq in 0..=head {
        let mut seen = BTreeSet::new();
        probe(&mut r, seq, "/", 0, &mut seen);
        for g in &guesses {
            probe(&mut r, seq, g, 0, &mut seen);
        }
    }

    if r.calls >= MAX_CALLS {
        r.line("BUDGET EXHAUSTED".into());
    } else {
        let calls = r.calls;
        r.line(format!("calls {calls}"));
    }
    r.out
}

/// The size of `kept` (more than any dump of the test scene, which is padded to it).
const KEPT_SIZE: u64 = 1 << 20;

/// The guesses a `guess/NAME` stands for.
fn guesses_of(name: &str) -> Vec<String> {
    name.split(',')
        .filter(|g| !g.is_empty())
        .map(|g| g.replace('+', "/"))
        .collect()
}

/// What a file of the spy renders; `None`: not one of its files.
fn render(p: &str) -> Result<Option<String>, FsError> {
    Ok(match path::split(p)?.as_slice() {
        ["dump"] => Some(report(&[])),
        // The same length for every reader (the kernel keeps one size per file): padded.
        ["kept"] => {
            let mut text = report(&[]);
            text.truncate(KEPT_SIZE as usize);
            let pad = KEPT_SIZE as usize - text.len();
            text.extend(std::iter::repeat_n(' ', pad));
            Some(text)
        }
        ["guess", name] => Some(report(&guesses_of(name))),
        _ => None,
    })
}

struct Spy;

impl View for Spy {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!(
            "spy",
            "test view: ignores permissions, asks the store for everything"
        )
    }

    fn getattr(_: Caller, p: String) -> Result<Attrs, FsError> {
        match path::split(&p)?.as_slice() {
            [] | ["guess"] => return Ok(attrs::dir(0, Caching::Volatile)),
            // Lies: says its bytes never change and asks the store nothing for its
            // attributes, then renders the dump for whoever reads. The kernel's page
            // cache must still never hand one caller's rendering to another.
            ["kept"] => return Ok(attrs::file(KEPT_SIZE, 0, Caching::Immutable)),
            // The same lie for a directory: immutable, then a listing per reader (the
            // names of /priv as the store shows them to the caller).
            ["kept-dir"] => return Ok(attrs::dir(0, Caching::Immutable)),
            ["kept-dir", _] => return Ok(attrs::file(0, 0, Caching::Immutable)),
            ["append"] => {
                let mut a = attrs::file(0, 0, Caching::Volatile);
                a.perm = 0o666;
                a.writable = true;
                return Ok(a);
            }
            _ => {}
        }
        match render(&p)? {
            Some(text) => Ok(attrs::file(text.len() as u64, 0, Caching::Volatile)),
            None => Err(FsError::NotFound),
        }
    }

    fn readdir(_: Caller, p: String) -> Result<Vec<DirEntry>, FsError> {
        match path::split(&p)?.as_slice() {
            [] => Ok(vec![
                attrs::entry("append", NodeKind::File),
                attrs::entry("dump", NodeKind::File),
                attrs::entry("guess", NodeKind::Directory),
                attrs::entry("kept", NodeKind::File),
                attrs::entry("kept-dir", NodeKind::Directory),
            ]),
            ["kept-dir"] => Ok(store::list_at("/priv", store::head())
                .map(|names| {
                    let file = |e: DirEntry| attrs::entry(&e.name, NodeKind::File);
                    names.into_iter().map(file).collect()
                })
                .unwrap_or_default()),
            ["guess"] => Ok(Vec::new()),
            ["append"] | ["dump"] | ["kept"] | ["guess", _] | ["kept-dir", _] => {
                Err(FsError::NotADirectory)
            }
            _ => Err(FsError::NotFound),
        }
    }

    fn read(_: Caller, p: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        match path::split(&p)?.as_slice() {
            [] | ["guess"] => return Err(FsError::IsADirectory),
            ["append"] => return Ok(Vec::new()),
            _ => {}
        }
        match render(&p)? {
            Some(text) => Ok(slice_read(text.as_bytes(), offset, len)),
            None => Err(FsError::NotFound),
        }
    }

    fn open(_: Caller, p: String, write: bool) -> Result<OpenMode, FsError> {
        if write && p != "/append" {
            return Err(FsError::ReadOnly);
        }
        Ok(OpenMode::Plain)
    }

    fn write(_: Caller, p: String, _offset: u64, data: Vec<u8>) -> Result<u32, FsError> {
        if p != "/append" {
            return Err(FsError::ReadOnly);
        }
        let text = String::from_utf8(data.clone()).map_err(|_| error::invalid("not UTF-8"))?;
        let (at, body) = text.split_once('\n').unwrap_or((text.as_str(), "{}"));
        store::append("spy-note", at, body)?;
        Ok(data.len() as u32)
    }
}

lighthouse_view_sdk::export!(Spy);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_guesses() {
        let mut set = BTreeSet::new();
        with_prefixes("/a/b/c.txt", &mut set);
        with_prefixes("relative", &mut set);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            ["/a", "/a/b", "/a/b/c.txt"]
        );
        assert_eq!(guesses_of("+a+b,+c,"), ["/a/b", "/c"]);
    }
}
