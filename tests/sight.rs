//! Issue 14, "views must see with the caller's eyes": a mounted matrix, both backends.
//!
//! Root sets a scene in `current/` with secrets of three kinds — a file's content (a
//! 0640 file of uid 1000 in a public directory), a directory's content and names (a
//! 0750 directory of uid 1000), a name in a directory others may search but not list
//! (0711) — plus files whose mode changed over time (readable at @N1 and not now, and
//! the other way round), a rename of a public file into the private directory, and
//! annotations on both secret files. Then callers under other uids try to learn each
//! secret's content, name and hash by every route: `current/`, `history/@N`,
//! `history/.log`, `shadows/`, `streams/*` (audit included), `context/` (their own
//! package with `"paths": ["**"]`, and one root made), `grep -r` and `cat`, and the
//! built-in history component loaded again from `--views DIR` as a custom view, and the
//! hostile test view `spy` (guest-ops/test-spy), which ignores permissions and asks the
//! store import for everything: every seq, every path it can name or is told, every
//! event and audit record (ignoring `through`), and appends annotations about paths the
//! caller may not list.
//!
//! The mounts, per backend (each test its own store):
//! 1. no policy: root, the owner (1000), a member of its group (1006:1000) and another
//!    uid (1001); only the mode bits decide;
//! 2. `--policy`: agents by uid with various permission sets (root itself is an agent
//!    with `context:write` only: the policy applies to it, the mode bits do not);
//! 3. no policy, `--views DIR` holding `history.wasm`: the history rows again;
//! 4. `--views DIR` holding `spy.wasm`, without and with a policy (agents with `spy:read`
//!    and various reads): the spy's report as each caller, and its appends.
//!
//! Each row (route × caller) says whether the route must succeed, fail with EACCES or
//! may do either, and which markers (contents, names, hashes) its bytes must and must
//! not hold. Every failing row is reported in one table at the end.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;

/// The owner of the secrets (uid and gid).
const OWNER: u32 = 1000;
/// Another uid, in no group of the owner: the mode bits keep it out.
const OTHER: u32 = 1001;
/// A uid whose primary gid is the owner's group: the group bits let it in.
const GROUPIE: u32 = 1006;

// ---------------------------------------------------------------------------------------
// Callers
// ---------------------------------------------------------------------------------------

/// One caller: a uid/gid, and its agent's permissions (`None`: no policy).
#[derive(Clone, Debug)]
struct Who {
    label: &'static str,
    uid: u32,
    gid: u32,
    perms: Option<&'static [&'static str]>,
}

impl Who {
    /// `SECTION:read` (or write, or `*`).
    fn may(&self, section: &str) -> bool {
        match self.perms {
            None => true,
            Some(p) => p.iter().any(|q| {
                let (s, _) = q.split_once(':').unwrap();
                s == "*" || s == section
            }),
        }
    }

    /// `SECTION:write`.
    fn may_write(&self, section: &str) -> bool {
        match self.perms {
            None => true,
            Some(p) => p
                .iter()
                .any(|q| *q == "*:write" || *q == format!("{section}:write")),
        }
    }

    /// Tree data in a view (content, names, hashes): `current:read` or `history:read`.
    fn tree(&self) -> bool {
        self.may("current") || self.may("history")
    }

    /// The mode bits let it read the 0640 secrets of OWNER:OWNER (and list /priv, 0750).
    fn posix_secret(&self) -> bool {
        self.uid == 0 || self.uid == OWNER || self.gid == OWNER
    }

    /// The mode bits let it read a 0600 file of OWNER (and list /xonly, 0711).
    fn posix_owner(&self) -> bool {
        self.uid == 0 || self.uid == OWNER
    }

    fn describe(&self) -> String {
        match self.perms {
            None => format!(
                "{}(uid {} gid {}, no policy)",
                self.label, self.uid, self.gid
            ),
            Some(p) => format!("{}(uid {} gid {}, {:?})", self.label, self.uid, self.gid, p),
        }
    }
}

const NO_POLICY: [Who; 4] = [
    Who {
        label: "root",
        uid: 0,
        gid: 0,
        perms: None,
    },
    Who {
        label: "owner",
        uid: OWNER,
        gid: OWNER,
        perms: None,
    },
    Who {
        label: "groupie",
        uid: GROUPIE,
        gid: OWNER,
        perms: None,
    },
    Who {
        label: "other",
        uid: OTHER,
        gid: OTHER,
        perms: None,
    },
];

const READS: &[&str] = &[
    "current:read",
    "history:read",
    "shadows:read",
    "streams:read",
    "context:write",
];

/// The agents of the policy (each also in [`policy_text`]).
const AGENTS: [Who; 9] = [
    Who {
        label: "rootctx",
        uid: 0,
        gid: 0,
        perms: Some(&["context:write"]),
    },
    Who {
        label: "owner",
        uid: OWNER,
        gid: OWNER,
        perms: Some(&["*:read", "context:write"]),
    },
    Who {
        label: "reader",
        uid: OTHER,
        gid: OTHER,
        perms: Some(READS),
    },
    Who {
        label: "ctxonly",
        uid: 1002,
        gid: 1002,
        perms: Some(&["context:write"]),
    },
    Who {
        label: "streamsonly",
        uid: 1003,
        gid: 1003,
        perms: Some(&["streams:read"]),
    },
    Who {
        label: "historyonly",
        uid: 1004,
        gid: 1004,
        perms: Some(&["history:read"]),
    },
    Who {
        label: "currentonly",
        uid: 1005,
        gid: 1005,
        perms: Some(&["current:read"]),
    },
    Who {
        label: "ctxgroup",
        uid: GROUPIE,
        gid: OWNER,
        perms: Some(&["context:write"]),
    },
    Who {
        label: "groupreader",
        uid: 1007,
        gid: OWNER,
        perms: Some(READS),
    },
];

/// The agents of the spy's policy: each may enter `spy/`, with various of the reads that
/// reveal the store's data (the tree, events, annotations, the audit trail).
const SPY_AGENTS: [Who; 9] = [
    Who {
        label: "rootspy",
        uid: 0,
        gid: 0,
        perms: Some(&["spy:read", "streams:read", "shadows:read"]),
    },
    Who {
        label: "owner",
        uid: OWNER,
        gid: OWNER,
        perms: Some(&[
            "spy:read",
            "current:read",
            "history:read",
            "shadows:read",
            "streams:read",
        ]),
    },
    Who {
        label: "reader",
        uid: OTHER,
        gid: OTHER,
        perms: Some(&[
            "spy:read",
            "current:read",
            "history:read",
            "shadows:read",
            "streams:read",
        ]),
    },
    Who {
        label: "spyonly",
        uid: 1002,
        gid: 1002,
        perms: Some(&["spy:read"]),
    },
    Who {
        label: "spystreams",
        uid: 1003,
        gid: 1003,
        perms: Some(&["spy:read", "streams:read"]),
    },
    Who {
        label: "spyhistory",
        uid: 1004,
        gid: 1004,
        perms: Some(&["spy:read", "history:read"]),
    },
    Who {
        label: "spycurrent",
        uid: 1005,
        gid: 1005,
        perms: Some(&["spy:read", "current:read"]),
    },
    Who {
        label: "groupspy",
        uid: GROUPIE,
        gid: OWNER,
        perms: Some(&["spy:read", "current:read", "streams:read"]),
    },
    Who {
        label: "groupshadows",
        uid: 1007,
        gid: OWNER,
        perms: Some(&["spy:read", "shadows:read"]),
    },
];

fn policy_text() -> String {
    policy_of(&AGENTS)
}

/// A policy with `agents` (by uid) and nothing for anyone else.
fn policy_of(agents: &[Who]) -> String {
    let mut text = String::from("[default]\npermissions = []\n");
    for a in agents {
        let perms: Vec<String> = a.perms.unwrap().iter().map(|p| format!("{p:?}")).collect();
        text.push_str(&format!(
            "\n[[agents]]\nname = {:?}\nuids = [{}]\npermissions = [{}]\n",
            a.label,
            a.uid,
            perms.join(", ")
        ));
    }
    text
}

// ---------------------------------------------------------------------------------------
// The scene
// ---------------------------------------------------------------------------------------

/// What root set up, and what the callers must (not) learn.
#[derive(Clone, Debug)]
struct Scene {
    tag: String,
    /// After the files are made, before the modes change and the rename.
    n1: u64,
    /// After `/pub/handoff.txt` is written, before it is renamed into /priv.
    nh: u64,
    /// After everything.
    n2: u64,
    /// BLAKE3 hex of each file's content, from `lighthouse-fs log --json` (the store's own
    /// record, read as root past the mount).
    hashes: BTreeMap<&'static str, String>,
}

impl Scene {
    fn marker(&self, what: &str) -> String {
        format!("{what}-{}", self.tag)
    }
    /// The secret name in /priv (where /pub/handoff.txt is renamed to).
    fn hidden_name(&self) -> String {
        format!("hidden-{}.txt", self.marker("HIDNAME"))
    }
    /// The name in /xonly (0711: searchable, not listable, by others).
    fn xonly_name(&self) -> String {
        format!("known-{}.txt", self.marker("XDIRNAME"))
    }
    fn hash(&self, file: &str) -> String {
        self.hashes[file].clone()
    }
}

/// The content of each file of the scene.
fn content(scene_tag: &str, what: &str) -> String {
    format!("first line\n{what}-{scene_tag}\nlast line\n")
}

/// Create `p` with `mode`, give it to `owner` and set the mode again, all before the
/// first byte is written: the write event finds the file as it will stay.
fn make_file(p: &Path, data: &str, mode: u32, owner: Option<(u32, u32)>) {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(p)
        .unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).unwrap();
    }
    f.set_permissions(fs::Permissions::from_mode(mode)).unwrap();
    f.write_all(data.as_bytes()).unwrap();
    drop(f);
}

fn make_dir(p: &Path, mode: u32, owner: Option<(u32, u32)>) {
    DirBuilder::new()
        .mode(0o700)
        .create(p)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    if let Some((uid, gid)) = owner {
        lchown(p, uid, gid).unwrap();
    }
    chmod(p, mode).unwrap();
}

/// The store's last event, through debug/health.json (as root, no policy).
fn head_seq(m: &Mount) -> u64 {
    File::open(m.current()).unwrap().sync_all().unwrap();
    let text = fs::read_to_string(m.root().join("debug/health.json")).unwrap();
    let doc = json::parse(&text).unwrap();
    doc.at(&["store", "head_seq"])
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("store.head_seq in {text}"))
}

/// The hash of the newest event of `path` that has one (`lighthouse-fs log --json`).
fn hash_of(store: &Path, path: &str) -> String {
    let events = log_json(store, Some(path));
    let h = events
        .iter()
        .rev()
        .find_map(|e| e.get("hash").and_then(|h| h.as_str()).map(String::from))
        .unwrap_or_else(|| panic!("no hash for {path} in {events:?}"));
    assert!(
        h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
        "{path}: {h}"
    );
    h
}

const MANIFEST: &str = r#"{"purpose":"x","paths":["**"]}"#;

/// Root, on a mount without a policy, sets the scene.
fn set_scene(m: &Mount, store: &Path) -> Scene {
    let tag = format!("{:08x}", rand::random::<u32>());
    let c = m.current();
    let own = Some((OWNER, OWNER));
    make_dir(&c.join("pub"), 0o755, None);
    make_file(
        &c.join("pub/open.txt"),
        &content(&tag, "PUBLIC"),
        0o644,
        None,
    );
    // A directory the others may not enter, made so from the start.
    make_dir(&c.join("priv"), 0o750, own);
    make_file(
        &c.join("priv/secret.txt"),
        &content(&tag, "SECRET-DIR"),
        0o640,
        own,
    );
    // A file the others may not read, in a directory they may list.
    make_file(
        &c.join("pub/locked.txt"),
        &content(&tag, "SECRET-FILE"),
        0o640,
        own,
    );
    // A directory the others may search but not list.
    make_dir(&c.join("xonly"), 0o700, own);
    let scene_x = format!("known-XDIRNAME-{tag}.txt");
    make_file(
        &c.join("xonly").join(&scene_x),
        &content(&tag, "KNOWN"),
        0o644,
        None,
    );
    chmod(&c.join("xonly"), 0o711).unwrap();
    // Modes that change: readable at n1 and not at n2, and the other way round.
    make_file(
        &c.join("pub/was-open.txt"),
        &content(&tag, "WAS-OPEN"),
        0o644,
        own,
    );
    make_file(
        &c.join("pub/now-open.txt"),
        &content(&tag, "NOW-OPEN"),
        0o600,
        own,
    );
    let n1 = head_seq(m);
    // A public file renamed into the private directory under a secret name.
    make_file(
        &c.join("pub/handoff.txt"),
        &content(&tag, "HANDOFF"),
        0o644,
        None,
    );
    let nh = head_seq(m);
    let hidden = format!("hidden-HIDNAME-{tag}.txt");
    fs::rename(c.join("pub/handoff.txt"), c.join("priv").join(&hidden)).unwrap();
    chmod(&c.join("pub/was-open.txt"), 0o600).unwrap();
    chmod(&c.join("pub/now-open.txt"), 0o644).unwrap();
    // Annotations on both secret files.
    let shadows = m.root().join("shadows");
    fs::write(
        shadows.join("priv/secret.txt"),
        format!(r#"{{"kind":"comment","text":"NOTE-DIR-{tag}"}}"#),
    )
    .unwrap();
    fs::write(
        shadows.join("pub/locked.txt"),
        format!(r#"{{"kind":"comment","text":"NOTE-FILE-{tag}"}}"#),
    )
    .unwrap();
    // A package root made: every caller reads it with its own eyes.
    fs::create_dir(m.root().join("context/shared")).unwrap();
    fs::write(m.root().join("context/shared/manifest.json"), MANIFEST).unwrap();
    let n2 = head_seq(m);

    let mut hashes = BTreeMap::new();
    for (key, path) in [
        ("open", "/pub/open.txt".to_string()),
        ("secret", "/priv/secret.txt".to_string()),
        ("locked", "/pub/locked.txt".to_string()),
        ("known", format!("/xonly/{scene_x}")),
        ("was", "/pub/was-open.txt".to_string()),
        ("now", "/pub/now-open.txt".to_string()),
        ("handoff", "/pub/handoff.txt".to_string()),
    ] {
        hashes.insert(key, hash_of(store, &path));
    }
    let distinct: std::collections::BTreeSet<&String> = hashes.values().collect();
    assert_eq!(
        distinct.len(),
        hashes.len(),
        "each file has its own hash: {hashes:?}"
    );
    let scene = Scene {
        tag,
        n1,
        nh,
        n2,
        hashes,
    };
    assert!(n1 < nh && nh < n2, "{scene:?}");
    // As root: the history view shows the owners and modes each node had (the read and
    // execute bits: the view is read-only, its write bits may be cleared).
    let h = m.root().join("history");
    for (at, rel, want) in [
        (n1, "pub/was-open.txt", (OWNER, OWNER, 0o444)),
        (n2, "pub/was-open.txt", (OWNER, OWNER, 0o400)),
        (n1, "pub/now-open.txt", (OWNER, OWNER, 0o400)),
        (n2, "pub/now-open.txt", (OWNER, OWNER, 0o444)),
        (n2, "priv", (OWNER, OWNER, 0o550)),
        (n2, "xonly", (OWNER, OWNER, 0o511)),
        (n2, "pub/open.txt", (0, 0, 0o444)),
    ] {
        let md = fs::symlink_metadata(h.join(format!("@{at}")).join(rel)).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o555),
            want,
            "[{}] history/@{at}/{rel}: owner and mode as they were",
            m.backend()
        );
    }
    scene
}

// ---------------------------------------------------------------------------------------
// Routes, rows, and running them as a caller
// ---------------------------------------------------------------------------------------

/// How a route is taken, relative to the mount's root.
#[derive(Clone, Debug)]
enum How {
    /// `read` the whole file.
    Read(String),
    /// The names of a directory, one a line.
    List(String),
    /// `stat`: "uid gid mode" (mode & 0o555 in octal: a view is read-only, its write bits
    /// may be cleared).
    Stat(String),
    /// `grep -r -a -h -s TAG DIR`: the matching lines (whatever grep could read).
    Grep(String),
    /// `cat FILE`: its output, or EACCES when cat says "Permission denied".
    Cat(String),
    /// A stream replayed from seq 1, read with O_NONBLOCK up to its end (EAGAIN).
    Stream(String),
    /// `mkdir context/PKG` (EEXIST is fine), write the manifest, read `files.json`.
    Package(String),
}

/// A marker a route's bytes must or must not hold.
#[derive(Clone, Debug)]
struct Needle {
    label: String,
    text: String,
    /// `Some(true)`: must hold it; `Some(false)`: must not; `None`: either.
    want: Option<bool>,
}

#[derive(Clone, Debug)]
struct Row {
    key: String,
    how: How,
    /// `Some(true)`: must succeed; `Some(false)`: must fail with EACCES; `None`: either.
    ok: Option<bool>,
    needles: Vec<Needle>,
    /// files.json must list what it left out under a non-empty `denied`.
    denied: bool,
}

impl Row {
    fn new(key: impl Into<String>, how: How, ok: Option<bool>) -> Row {
        Row {
            key: key.into(),
            how,
            ok,
            needles: Vec::new(),
            denied: false,
        }
    }
    /// Must hold `text` when `cond`, must not otherwise.
    fn shows(mut self, label: &str, text: impl Into<String>, cond: bool) -> Row {
        self.needles.push(Needle {
            label: label.into(),
            text: text.into(),
            want: Some(cond),
        });
        self
    }
    /// Must not hold `text` unless `cond` (then either).
    fn hides_unless(mut self, label: &str, text: impl Into<String>, cond: bool) -> Row {
        self.needles.push(Needle {
            label: label.into(),
            text: text.into(),
            want: if cond { None } else { Some(false) },
        });
        self
    }
    /// Must hold `text` when `show`, must not when `hide`, else either.
    fn tri(mut self, label: &str, text: impl Into<String>, show: bool, hide: bool) -> Row {
        self.needles.push(Needle {
            label: label.into(),
            text: text.into(),
            want: if show {
                Some(true)
            } else if hide {
                Some(false)
            } else {
                None
            },
        });
        self
    }
    fn with_denied(mut self, cond: bool) -> Row {
        self.denied = cond;
        self
    }
}

/// `Some(true)` when `allowed`; else `Some(false)` when `surely_denied`; else `None`.
fn ok_if(allowed: bool, surely_denied: bool) -> Option<bool> {
    if allowed {
        Some(true)
    } else if surely_denied {
        Some(false)
    } else {
        None
    }
}

/// Everything a caller does not get must be left out of every route; these are the
/// secrets' markers (contents, names, annotations) and hashes with the condition under
/// which the caller may learn each.
fn secrets(s: &Scene, w: &Who) -> Vec<(String, String, bool)> {
    let (rs, ro) = (w.posix_secret(), w.posix_owner());
    vec![
        (
            "content of /priv/secret.txt".into(),
            s.marker("SECRET-DIR"),
            rs,
        ),
        (
            "content of /pub/locked.txt".into(),
            s.marker("SECRET-FILE"),
            rs,
        ),
        ("name in /priv".into(), s.marker("HIDNAME"), rs),
        ("name in /xonly".into(), s.marker("XDIRNAME"), ro),
        ("hash of /priv/secret.txt".into(), s.hash("secret"), rs),
        ("hash of /pub/locked.txt".into(), s.hash("locked"), rs),
        (
            "annotation on /priv/secret.txt".into(),
            s.marker("NOTE-DIR"),
            rs,
        ),
    ]
}

/// Adds "must not hold" for every secret the caller may not learn (by the mode bits).
fn guard(mut row: Row, s: &Scene, w: &Who) -> Row {
    for (label, text, may) in secrets(s, w) {
        if !may && !row.needles.iter().any(|n| n.text == text) {
            row = row.hides_unless(&label, text, false);
        }
    }
    row
}

/// The rows of `current/`.
fn current_rows(s: &Scene, w: &Who) -> Vec<Row> {
    let cur = w.may("current");
    let (rs, ro) = (w.posix_secret(), w.posix_owner());
    let x = s.xonly_name();
    vec![
        Row::new(
            "current/pub/open.txt",
            How::Read("current/pub/open.txt".into()),
            Some(cur),
        )
        .shows("PUBLIC", s.marker("PUBLIC"), cur),
        Row::new(
            "current/pub/locked.txt (0640)",
            How::Read("current/pub/locked.txt".into()),
            Some(cur && rs),
        )
        .shows("SECRET-FILE", s.marker("SECRET-FILE"), cur && rs),
        Row::new(
            "cat current/pub/locked.txt",
            How::Cat("current/pub/locked.txt".into()),
            Some(cur && rs),
        )
        .shows("SECRET-FILE", s.marker("SECRET-FILE"), cur && rs),
        Row::new(
            "current/priv/secret.txt (dir 0750)",
            How::Read("current/priv/secret.txt".into()),
            Some(cur && rs),
        )
        .shows("SECRET-DIR", s.marker("SECRET-DIR"), cur && rs),
        Row::new(
            "ls current/priv",
            How::List("current/priv".into()),
            Some(cur && rs),
        )
        .shows("HIDNAME", s.marker("HIDNAME"), cur && rs),
        Row::new(
            "current/pub/was-open.txt (now 0600)",
            How::Read("current/pub/was-open.txt".into()),
            Some(cur && ro),
        )
        .shows("WAS-OPEN", s.marker("WAS-OPEN"), cur && ro),
        Row::new(
            "current/pub/now-open.txt (now 0644)",
            How::Read("current/pub/now-open.txt".into()),
            Some(cur),
        )
        .shows("NOW-OPEN", s.marker("NOW-OPEN"), cur),
        Row::new(
            "current/xonly/<known name> (dir 0711)",
            How::Read(format!("current/xonly/{x}")),
            Some(cur),
        )
        .shows("KNOWN", s.marker("KNOWN"), cur),
        Row::new(
            "ls current/xonly (0711)",
            How::List("current/xonly".into()),
            Some(cur && ro),
        )
        .shows("XDIRNAME", s.marker("XDIRNAME"), cur && ro),
        guard(
            Row::new("grep -r current/", How::Grep("current".into()), None)
                .shows("PUBLIC", s.marker("PUBLIC"), cur)
                .shows("SECRET-FILE", s.marker("SECRET-FILE"), cur && rs)
                .shows("SECRET-DIR", s.marker("SECRET-DIR"), cur && rs)
                .shows("HANDOFF (now in /priv)", s.marker("HANDOFF"), cur && rs)
                .shows("WAS-OPEN", s.marker("WAS-OPEN"), cur && ro)
                .shows("NOW-OPEN", s.marker("NOW-OPEN"), cur),
            s,
            w,
        ),
    ]
}

/// The rows of the history view mounted as `sec` (`history`, or a custom copy of it).
fn history_rows(s: &Scene, w: &Who, sec: &str) -> Vec<Row> {
    let hist = w.may("history");
    let (rs, ro) = (w.posix_secret(), w.posix_owner());
    let (n1, nh, n2) = (s.n1, s.nh, s.n2);
    let x = s.xonly_name();
    let p = |rel: String| format!("{sec}/{rel}");
    let mut rows = vec![
        Row::new(
            p(format!("@{n2}/pub/open.txt")),
            How::Read(p(format!("@{n2}/pub/open.txt"))),
            Some(hist),
        )
        .shows("PUBLIC", s.marker("PUBLIC"), hist),
        Row::new(
            p(format!("@{n2}/pub/locked.txt")),
            How::Read(p(format!("@{n2}/pub/locked.txt"))),
            Some(hist && rs),
        )
        .shows("SECRET-FILE", s.marker("SECRET-FILE"), hist && rs),
        Row::new(
            p(format!("@{n1}/pub/locked.txt")),
            How::Read(p(format!("@{n1}/pub/locked.txt"))),
            Some(hist && rs),
        )
        .shows("SECRET-FILE", s.marker("SECRET-FILE"), hist && rs),
        Row::new(
            p(format!("@{n2}/priv/secret.txt")),
            How::Read(p(format!("@{n2}/priv/secret.txt"))),
            Some(hist && rs),
        )
        .shows("SECRET-DIR", s.marker("SECRET-DIR"), hist && rs),
        Row::new(
            format!("cat {}", p(format!("@{n2}/priv/secret.txt"))),
            How::Cat(p(format!("@{n2}/priv/secret.txt"))),
            Some(hist && rs),
        )
        .shows("SECRET-DIR", s.marker("SECRET-DIR"), hist && rs),
        Row::new(
            format!("ls {}", p(format!("@{n2}/priv"))),
            How::List(p(format!("@{n2}/priv"))),
            Some(hist && rs),
        )
        .shows("HIDNAME", s.marker("HIDNAME"), hist && rs),
        Row::new(
            p(format!("@{n1}/pub/was-open.txt (0644 then)")),
            How::Read(p(format!("@{n1}/pub/was-open.txt"))),
            Some(hist),
        )
        .shows("WAS-OPEN", s.marker("WAS-OPEN"), hist),
        Row::new(
            p(format!("@{n2}/pub/was-open.txt (0600 then)")),
            How::Read(p(format!("@{n2}/pub/was-open.txt"))),
            Some(hist && ro),
        )
        .shows("WAS-OPEN", s.marker("WAS-OPEN"), hist && ro),
        Row::new(
            p(format!("@{n1}/pub/now-open.txt (0600 then)")),
            How::Read(p(format!("@{n1}/pub/now-open.txt"))),
            Some(hist && ro),
        )
        .shows("NOW-OPEN", s.marker("NOW-OPEN"), hist && ro),
        Row::new(
            p(format!("@{n2}/pub/now-open.txt (0644 then)")),
            How::Read(p(format!("@{n2}/pub/now-open.txt"))),
            Some(hist),
        )
        .shows("NOW-OPEN", s.marker("NOW-OPEN"), hist),
        Row::new(
            p("-0s/pub/locked.txt (a relative time: the head)".into()),
            How::Read(p("-0s/pub/locked.txt".into())),
            Some(hist && rs),
        )
        .shows("SECRET-FILE", s.marker("SECRET-FILE"), hist && rs),
        Row::new(
            format!("ls {}", p("-0s/priv".into())),
            How::List(p("-0s/priv".into())),
            Some(hist && rs),
        )
        .shows("HIDNAME", s.marker("HIDNAME"), hist && rs),
        Row::new(
            p(format!("@{nh}/pub/handoff.txt (before the rename)")),
            How::Read(p(format!("@{nh}/pub/handoff.txt"))),
            Some(hist),
        )
        .shows("HANDOFF", s.marker("HANDOFF"), hist),
        Row::new(
            p(format!("@{n2}/xonly/<known name>")),
            How::Read(p(format!("@{n2}/xonly/{x}"))),
            Some(hist),
        )
        .shows("KNOWN", s.marker("KNOWN"), hist),
        Row::new(
            format!("ls {}", p(format!("@{n2}/xonly"))),
            How::List(p(format!("@{n2}/xonly"))),
            Some(hist && ro),
        )
        .shows("XDIRNAME", s.marker("XDIRNAME"), hist && ro),
        // The owner and mode each node had. Without history:read a stat may still
        // succeed: the kernel answers lookups and attributes from its caches without
        // asking the filesystem (docs/policy.md section 6), so only "ok when allowed".
        Row::new(
            format!("stat {}", p(format!("@{n1}/pub/was-open.txt"))),
            How::Stat(p(format!("@{n1}/pub/was-open.txt"))),
            ok_if(hist, false),
        )
        .tri("owner and mode at n1", "1000 1000 444", hist, false),
        Row::new(
            format!("stat {}", p(format!("@{n2}/pub/was-open.txt"))),
            How::Stat(p(format!("@{n2}/pub/was-open.txt"))),
            ok_if(hist, false),
        )
        .tri("owner and mode at n2", "1000 1000 400", hist, false),
        Row::new(
            format!("stat {}", p(format!("@{n2}/priv"))),
            How::Stat(p(format!("@{n2}/priv"))),
            ok_if(hist, false),
        )
        .tri("owner and mode of /priv", "1000 1000 550", hist, false),
        guard(
            Row::new(
                format!("grep -r {}", p(format!("@{n2}"))),
                How::Grep(p(format!("@{n2}"))),
                None,
            )
            .shows("PUBLIC", s.marker("PUBLIC"), hist)
            .shows("SECRET-FILE", s.marker("SECRET-FILE"), hist && rs)
            .shows("SECRET-DIR", s.marker("SECRET-DIR"), hist && rs)
            .shows("HANDOFF (in /priv at n2)", s.marker("HANDOFF"), hist && rs)
            .shows("WAS-OPEN", s.marker("WAS-OPEN"), hist && ro)
            .shows("NOW-OPEN", s.marker("NOW-OPEN"), hist),
            s,
            w,
        ),
        guard(
            Row::new(
                format!("grep -r {}", p(format!("@{n1}"))),
                How::Grep(p(format!("@{n1}"))),
                None,
            )
            .shows("PUBLIC", s.marker("PUBLIC"), hist)
            .shows("SECRET-FILE", s.marker("SECRET-FILE"), hist && rs)
            .shows("WAS-OPEN", s.marker("WAS-OPEN"), hist)
            .shows("NOW-OPEN", s.marker("NOW-OPEN"), hist && ro),
            s,
            w,
        ),
    ];
    // history/.log: the events of one path, each shown only where the caller could list
    // the directories it names, the hash only where it could read the file then.
    let log = |rel: &str| p(format!(".log/{rel}"));
    rows.extend([
        guard(
            Row::new(
                log("pub/locked.txt"),
                How::Read(log("pub/locked.txt")),
                Some(hist),
            )
            .shows("a write event", "\"write\"", hist)
            .shows("hash of locked.txt", s.hash("locked"), hist && rs),
            s,
            w,
        ),
        guard(
            Row::new(
                log("priv/secret.txt"),
                How::Read(log("priv/secret.txt")),
                ok_if(hist && rs, !hist),
            )
            .shows("hash of secret.txt", s.hash("secret"), hist && rs),
            s,
            w,
        ),
        guard(
            Row::new(
                format!("ls {}", log("priv")),
                How::List(log("priv")),
                ok_if(hist && rs, !hist),
            )
            .shows("HIDNAME", s.marker("HIDNAME"), hist && rs),
            s,
            w,
        ),
        guard(
            Row::new(
                log("pub/was-open.txt (written at 0644)"),
                How::Read(log("pub/was-open.txt")),
                Some(hist),
            )
            .shows("its write's hash", s.hash("was"), hist),
            s,
            w,
        ),
        guard(
            Row::new(
                log("pub/now-open.txt (written at 0600)"),
                How::Read(log("pub/now-open.txt")),
                Some(hist),
            )
            .shows("a write event", "\"write\"", hist)
            .shows("its write's hash", s.hash("now"), hist && ro),
            s,
            w,
        ),
        guard(
            Row::new(
                log("pub/handoff.txt (renamed into /priv)"),
                How::Read(log("pub/handoff.txt")),
                Some(hist),
            )
            .shows("its write's hash", s.hash("handoff"), hist)
            .shows("the rename event", "\"rename\"", hist && rs)
            .shows("HIDNAME", s.marker("HIDNAME"), hist && rs),
            s,
            w,
        ),
        guard(
            Row::new(
                log(&format!("priv/{}", s.hidden_name())),
                How::Read(log(&format!("priv/{}", s.hidden_name()))),
                ok_if(hist && rs, !hist),
            )
            .shows("the rename event", "\"rename\"", hist && rs),
            s,
            w,
        ),
        guard(
            Row::new(
                format!("ls {}", log("xonly")),
                How::List(log("xonly")),
                ok_if(hist && ro, !hist),
            )
            .shows("XDIRNAME", s.marker("XDIRNAME"), hist && ro),
            s,
            w,
        ),
        guard(
            Row::new(
                log("xonly/<known name>"),
                How::Read(log(&format!("xonly/{x}"))),
                ok_if(hist && ro, !hist),
            )
            .shows(
                "XDIRNAME (in the events' paths)",
                s.marker("XDIRNAME"),
                hist && ro,
            ),
            s,
            w,
        ),
    ]);
    rows
}

/// The rows of `shadows/`.
fn shadows_rows(s: &Scene, w: &Who) -> Vec<Row> {
    let shad = w.may("shadows");
    let (rs, tree) = (w.posix_secret(), w.tree());
    vec![
        guard(
            Row::new(
                "shadows/priv/secret.txt",
                How::Read("shadows/priv/secret.txt".into()),
                ok_if(shad && rs && tree, !shad),
            )
            .shows("NOTE-DIR", s.marker("NOTE-DIR"), shad && rs && tree),
            s,
            w,
        ),
        guard(
            Row::new(
                "shadows/pub/locked.txt",
                How::Read("shadows/pub/locked.txt".into()),
                ok_if(shad && rs && tree, !shad),
            )
            .tri(
                "NOTE-FILE",
                s.marker("NOTE-FILE"),
                shad && rs && tree,
                !shad,
            ),
            s,
            w,
        ),
        guard(
            Row::new(
                "ls shadows/priv",
                How::List("shadows/priv".into()),
                ok_if(shad && rs && tree, !shad),
            )
            .shows("HIDNAME", s.marker("HIDNAME"), shad && rs && tree),
            s,
            w,
        ),
        guard(
            Row::new("grep -r shadows/", How::Grep("shadows".into()), None)
                .tri("NOTE-DIR", s.marker("NOTE-DIR"), shad && rs && tree, true)
                .tri(
                    "NOTE-FILE",
                    s.marker("NOTE-FILE"),
                    shad && rs && tree,
                    !shad,
                ),
            s,
            w,
        ),
    ]
}

/// The rows of `streams/`. `audit`: the mount has a policy (so the audit trail has the
/// owner's denied create of `/priv/AUDITNAME…`).
fn streams_rows(s: &Scene, w: &Who, audit: bool) -> Vec<Row> {
    let strm = w.may("streams");
    let (rs, ro, tree, shad) = (
        w.posix_secret(),
        w.posix_owner(),
        w.tree(),
        w.may("shadows"),
    );
    // A write's hash: shown where the mode bits said yes then and the agent may see
    // tree data (a hash is the content in short); hidden everywhere else.
    let hash =
        |row: Row, label: &str, h: String, posix: bool| row.shows(label, h, strm && posix && tree);
    let mut rows = Vec::new();
    for name in ["all", "file_changes", "agent_activity"] {
        let full = name != "agent_activity";
        let mut row = Row::new(
            format!("streams/{name}@1"),
            How::Stream(format!("streams/{name}@1")),
            Some(strm),
        )
        .shows("events of /pub/open.txt", "\"/pub/open.txt\"", strm)
        .shows(
            "HIDNAME (the rename into /priv)",
            s.marker("HIDNAME"),
            strm && rs,
        )
        .shows("XDIRNAME", s.marker("XDIRNAME"), strm && ro);
        if full {
            row = hash(row, "hash of locked.txt", s.hash("locked"), rs);
            row = hash(row, "hash of secret.txt", s.hash("secret"), rs);
            row = hash(
                row,
                "hash of was-open.txt (written at 0644)",
                s.hash("was"),
                true,
            );
            row = hash(
                row,
                "hash of now-open.txt (written at 0600)",
                s.hash("now"),
                ro,
            );
            row = hash(row, "hash of open.txt", s.hash("open"), true);
        }
        if name == "all" {
            // An annotation of a file: shadows:read, the mode bits, and tree data.
            row = row
                .shows("NOTE-DIR", s.marker("NOTE-DIR"), strm && shad && rs && tree)
                .shows(
                    "NOTE-FILE",
                    s.marker("NOTE-FILE"),
                    strm && shad && rs && tree,
                );
        }
        rows.push(guard(row, s, w));
    }
    rows.push(guard(
        hash(
            Row::new(
                "streams/annotations@1",
                How::Stream("streams/annotations@1".into()),
                Some(strm),
            )
            .shows("NOTE-DIR", s.marker("NOTE-DIR"), strm && shad && rs && tree)
            .shows(
                "NOTE-FILE",
                s.marker("NOTE-FILE"),
                strm && shad && rs && tree,
            ),
            // An annotation's body carries the hash of the file it was made against: it is
            // shown only with the annotation, to who may read the file's content.
            "hash of locked.txt (in the annotation's body)",
            s.hash("locked"),
            rs,
        ),
        s,
        w,
    ));
    if audit {
        rows.push(guard(
            Row::new(
                "streams/audit@1",
                How::Stream("streams/audit@1".into()),
                Some(strm),
            )
            .shows(
                "AUDITNAME (a denied create in /priv)",
                s.marker("AUDITNAME"),
                strm && rs,
            ),
            s,
            w,
        ));
    }
    rows
}

/// The rows of `context/`: the caller's own package, and the one root made.
fn context_rows(s: &Scene, w: &Who) -> Vec<Row> {
    let ctx = w.may("context");
    let (rs, ro, tree, shad) = (
        w.posix_secret(),
        w.posix_owner(),
        w.tree(),
        w.may("shadows"),
    );
    let files = |row: Row| {
        guard(
            row.shows("PUBLIC", s.marker("PUBLIC"), tree)
                .shows("NOW-OPEN", s.marker("NOW-OPEN"), tree)
                .shows("WAS-OPEN (0600 now)", s.marker("WAS-OPEN"), tree && ro)
                .shows("SECRET-FILE", s.marker("SECRET-FILE"), tree && rs)
                .shows("SECRET-DIR", s.marker("SECRET-DIR"), tree && rs)
                .shows("HANDOFF (in /priv now)", s.marker("HANDOFF"), tree && rs)
                .shows("HIDNAME", s.marker("HIDNAME"), tree && rs)
                .shows("KNOWN (in /xonly)", s.marker("KNOWN"), tree && ro)
                .shows("XDIRNAME", s.marker("XDIRNAME"), tree && ro)
                .shows("hash of open.txt", s.hash("open"), tree)
                .shows("hash of locked.txt", s.hash("locked"), tree && rs)
                .shows("hash of secret.txt", s.hash("secret"), tree && rs)
                // Any file content at all needs current:read or history:read.
                .hides_unless("any file's first line", "first line", tree)
                .with_denied(!(tree && ro)),
            s,
            w,
        )
    };
    let mut rows = Vec::new();
    let pkg = format!("leak-{}", w.uid);
    let own = w.may_write("context");
    // Without a policy only the mode bits decide, and context/ is the mount owner's
    // (root's) 0755 directory: another uid may not be able to make a package there.
    // Under a policy, context:write is what making one needs.
    let own_ok = if w.perms.is_none() && w.uid != 0 {
        None
    } else {
        Some(own)
    };
    rows.push(files(Row::new(
        format!("context/{pkg}/files.json (its own, paths **)"),
        How::Package(pkg.clone()),
        own_ok,
    )));
    if own {
        rows.push(guard(
            Row::new(
                format!("context/{pkg}/context.json"),
                How::Read(format!("context/{pkg}/context.json")),
                own_ok,
            )
            .shows("NOTE-DIR", s.marker("NOTE-DIR"), shad && rs && tree)
            .hides_unless("NOTE-FILE", s.marker("NOTE-FILE"), shad)
            .hides_unless("hash of locked.txt", s.hash("locked"), tree && rs),
            s,
            w,
        ));
    }
    rows.push(files(Row::new(
        "context/shared/files.json (root's package)",
        How::Read("context/shared/files.json".into()),
        Some(ctx),
    )));
    rows.push(guard(
        Row::new(
            "context/shared/context.json",
            How::Read("context/shared/context.json".into()),
            Some(ctx),
        )
        .shows("NOTE-DIR", s.marker("NOTE-DIR"), ctx && shad && rs && tree)
        .hides_unless("NOTE-FILE", s.marker("NOTE-FILE"), shad)
        .hides_unless("hash of locked.txt", s.hash("locked"), tree && rs),
        s,
        w,
    ));
    rows.push(guard(
        Row::new("grep -r context/", How::Grep("context".into()), None),
        s,
        w,
    ));
    rows
}

/// The paths the spy is told (`spy/guess/…`): the secret names, as a caller who guessed
/// or overheard them would ask by name.
fn spy_guesses(s: &Scene) -> Vec<String> {
    vec![
        format!("/xonly/{}", s.xonly_name()),
        format!("/priv/{}", s.hidden_name()),
        "/priv/secret.txt".into(),
    ]
}

/// The rows of the test view `spy` (guest-ops/test-spy): a custom view that ignores
/// permissions and asks the store import for everything (every seq, every path it can
/// name or is told, every event and audit record, `through` ignored). What its report
/// holds for a caller must be what the caller could read directly (docs/policy.md
/// section 9): the tree needs `current:read` or `history:read` and the mode bits then,
/// events `history:read` or `streams:read` and the right to list their directories, an
/// annotation `shadows:read` and the right to read its file, the audit trail
/// `streams:read` and the right to list the directory now.
fn spy_rows(s: &Scene, w: &Who, audit: bool) -> Vec<Row> {
    let spy = w.may("spy");
    let (rs, ro, tree, shad, strm) = (
        w.posix_secret(),
        w.posix_owner(),
        w.tree(),
        w.may("shadows"),
        w.may("streams"),
    );
    let ev = w.may("history") || strm;
    let (t, e) = (spy && tree, spy && (tree || ev));
    let row = |key: String, rel: String, told: bool| {
        let mut row = Row::new(key, How::Read(rel), Some(spy))
            .shows("the report's last line (no budget hit)", "\ncalls ", spy)
            .hides_unless("BUDGET EXHAUSTED", "BUDGET EXHAUSTED", false)
            .shows("PUBLIC", s.marker("PUBLIC"), t)
            .shows("SECRET-FILE", s.marker("SECRET-FILE"), t && rs)
            .shows("SECRET-DIR", s.marker("SECRET-DIR"), t && rs)
            .shows("HANDOFF (0644 at nh)", s.marker("HANDOFF"), t)
            .shows("WAS-OPEN (0644 at n1)", s.marker("WAS-OPEN"), t)
            .shows("NOW-OPEN (0644 at n2)", s.marker("NOW-OPEN"), t)
            // Any file content at all needs current:read or history:read.
            .hides_unless("any file's first line", "first line", t)
            // Hashes: from hash-at (the tree), a write event or an annotation's body,
            // each only with tree data and where the mode bits let the caller read the
            // file then.
            .shows("hash of open.txt", s.hash("open"), t)
            .shows("hash of was-open.txt", s.hash("was"), t)
            .shows("hash of now-open.txt", s.hash("now"), t)
            .shows("hash of handoff.txt", s.hash("handoff"), t)
            .shows("hash of locked.txt", s.hash("locked"), t && rs)
            .shows("hash of secret.txt", s.hash("secret"), t && rs)
            // Annotations of files: shadows:read, tree data, reading the file then.
            .shows("NOTE-DIR", s.marker("NOTE-DIR"), spy && shad && rs && t)
            .shows("NOTE-FILE", s.marker("NOTE-FILE"), spy && shad && rs && t);
        row = if told {
            // Told its name, the spy reads /xonly/known… as anyone who may search /xonly.
            // The names it was told are written <GUESS>: a name it shows comes from a
            // listing, or (either way) from an event's path the spy did not redact.
            row.shows("KNOWN (by its name)", s.marker("KNOWN"), t)
                .shows("hash of the known file", s.hash("known"), t)
                .tri("HIDNAME", s.marker("HIDNAME"), t && rs, !(e && rs))
                .tri("XDIRNAME", s.marker("XDIRNAME"), t && ro, !(e && ro))
        } else {
            // Not told: only where /xonly may be listed, or its events seen.
            // Names: from a listing (the tree) or from an event's path.
            row.tri("KNOWN", s.marker("KNOWN"), t && ro, !t)
                .shows("hash of the known file", s.hash("known"), t && ro)
                .shows("HIDNAME", s.marker("HIDNAME"), e && rs)
                .shows("XDIRNAME", s.marker("XDIRNAME"), e && ro)
        };
        if audit {
            row = row.shows(
                "AUDITNAME (a denied create in /priv)",
                s.marker("AUDITNAME"),
                spy && strm && rs,
            );
        }
        guard(row, s, w)
    };
    let told: Vec<String> = spy_guesses(s).iter().map(|g| g.replace('/', "+")).collect();
    let told = format!("spy/guess/{}", told.join(","));
    vec![
        row("spy/dump".into(), "spy/dump".into(), false),
        row("spy/guess/<the secret paths>".into(), told, true),
    ]
}

/// A stream from its start to its end, without waiting at the end.
fn read_stream(p: &Path) -> io::Result<Vec<u8>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(out),
            Err(e) => return Err(e),
        }
        if out.len() > 64 << 20 {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
    }
}

/// Take one route (in the child, as the caller).
fn take(root: &Path, tag: &str, how: &How) -> io::Result<Vec<u8>> {
    match how {
        How::Read(rel) => fs::read(root.join(rel)),
        How::List(rel) => {
            let mut names = Vec::new();
            for e in fs::read_dir(root.join(rel))? {
                names.push(e?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names.join("\n").into_bytes())
        }
        How::Stat(rel) => {
            let md = fs::symlink_metadata(root.join(rel))?;
            Ok(format!("{} {} {:o}", md.uid(), md.gid(), md.mode() & 0o555).into_bytes())
        }
        How::Grep(rel) => {
            let out = Command::new("grep")
                .args(["-r", "-a", "-h", "-s", "-e", tag])
                .arg(root.join(rel))
                .output()?;
            Ok(out.stdout)
        }
        How::Cat(rel) => {
            let out = Command::new("cat").arg(root.join(rel)).output()?;
            if out.status.success() {
                Ok(out.stdout)
            } else if String::from_utf8_lossy(&out.stderr).contains("Permission denied") {
                Err(io::Error::from_raw_os_error(libc::EACCES))
            } else {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        How::Stream(rel) => read_stream(&root.join(rel)),
        How::Package(pkg) => {
            let dir = root.join("context").join(pkg);
            match fs::create_dir(&dir) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                _ => {}
            }
            fs::write(dir.join("manifest.json"), MANIFEST)?;
            fs::read(dir.join("files.json"))
        }
    }
}

/// Take every route of `rows` as `who` (a forked child that drops to its uid/gid);
/// each route's outcome: its bytes, or its errno.
fn take_as(who: &Who, root: &Path, tag: &str, rows: &[Row]) -> Vec<Result<Vec<u8>, i32>> {
    let out = tempfile::NamedTempFile::new().unwrap();
    fs::set_permissions(out.path(), fs::Permissions::from_mode(0o666)).unwrap();
    let path = out.path().to_path_buf();
    let (root, tag) = (root.to_path_buf(), tag.to_string());
    let hows: Vec<How> = rows.iter().map(|r| r.how.clone()).collect();
    let result = run_as(who.uid, who.gid, move || {
        let mut lines = String::new();
        for how in &hows {
            match take(&root, &tag, how) {
                Ok(bytes) => lines.push_str(&format!("ok {}\n", hex::encode(bytes))),
                Err(e) => lines.push_str(&format!("err {}\n", e.raw_os_error().unwrap_or(-1))),
            }
        }
        fs::write(&path, lines)
    });
    assert_eq!(
        result,
        Ok(()),
        "the child as {} could not report",
        who.describe()
    );
    let text = fs::read_to_string(out.path()).unwrap();
    let got: Vec<Result<Vec<u8>, i32>> = text
        .lines()
        .map(|l| match l.split_once(' ') {
            Some(("ok", h)) => Ok(hex::decode(h).unwrap()),
            Some(("err", n)) => Err(n.parse().unwrap()),
            _ => panic!("bad report line {l:?}"),
        })
        .collect();
    assert_eq!(got.len(), rows.len(), "one outcome per route");
    got
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    format!("{s:?}")
}

/// Check each row's outcome; a line per mismatch into `failures`.
fn judge(
    ctx: &str,
    who: &Who,
    rows: &[Row],
    got: &[Result<Vec<u8>, i32>],
    failures: &mut Vec<String>,
) {
    for (row, got) in rows.iter().zip(got) {
        let mut fail = |what: String| {
            failures.push(format!("{ctx} | {} | {} | {what}", who.describe(), row.key))
        };
        match (row.ok, got) {
            (Some(true), Err(e)) => fail(format!("want success, got {}", errno_name(*e))),
            (Some(false), Ok(b)) => fail(format!("want EACCES, got success: {}", preview(b))),
            (Some(false), Err(e)) if *e != libc::EACCES => {
                fail(format!("want EACCES, got {}", errno_name(*e)))
            }
            _ => {}
        }
        let Ok(bytes) = got else { continue };
        let text = String::from_utf8_lossy(bytes);
        for n in &row.needles {
            let has = text.contains(&n.text);
            match n.want {
                Some(true) if !has => fail(format!(
                    "want it to show {} ({}), it does not: {}",
                    n.label,
                    n.text,
                    preview(bytes)
                )),
                Some(false) if has => fail(format!(
                    "LEAK: want no {} ({}), it shows it: {}",
                    n.label,
                    n.text,
                    preview(bytes)
                )),
                _ => {}
            }
        }
        if row.denied {
            let denied = json::parse(&text)
                .ok()
                .and_then(|v| v.get("denied").and_then(|d| d.as_array()).map(|d| d.len()));
            if !matches!(denied, Some(n) if n > 0) {
                fail(format!(
                    "want a non-empty `denied` (something was left out), got {denied:?}: {}",
                    preview(bytes)
                ));
            }
        }
    }
}

/// Every row of `sections` for each caller; the mismatches.
fn run_matrix(
    ctx: &str,
    m: &Mount,
    s: &Scene,
    callers: &[Who],
    sections: &[&str],
    audit: bool,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for who in callers {
        let mut rows = Vec::new();
        for sec in sections {
            rows.extend(match *sec {
                "current" => current_rows(s, who),
                "history" => history_rows(s, who, "history"),
                "shadows" => shadows_rows(s, who),
                "streams" => streams_rows(s, who, audit),
                "context" => context_rows(s, who),
                "spy" => spy_rows(s, who, audit),
                other => panic!("no rows for {other}"),
            });
        }
        let got = take_as(who, m.root(), &s.tag, &rows);
        judge(ctx, who, &rows, &got, &mut failures);
        checked += rows.len();
    }
    (checked, failures)
}

#[track_caller]
fn report(ctx: &str, checked: usize, failures: &[String]) {
    eprintln!(
        "{ctx}: {checked} rows (route × caller) checked, {} mismatches",
        failures.len()
    );
    if !failures.is_empty() {
        panic!(
            "{ctx}: {} mismatches in {checked} rows (context | caller | route | what):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

const ALL_SECTIONS: [&str; 5] = ["current", "history", "shadows", "streams", "context"];

both_backends! {
    #[timeout_secs(300)]
    fn views_see_with_the_callers_eyes(backend: Backend) {
        let (dir, base) = temp_dir("lhfs-sight-");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let store = base.join("store");

        // 1. No policy: the mode bits decide.
        let m = Mount::start(backend, &store);
        let scene = set_scene(&m, &store);
        let ctx = format!("[{backend}] no policy");
        let (checked, mut failures) = run_matrix(&ctx, &m, &scene, &NO_POLICY, &ALL_SECTIONS, false);
        m.stop();

        // 2. A policy: the agent's permissions and the mode bits, both.
        let policy = base.join("policy.toml");
        fs::write(&policy, policy_text()).unwrap();
        let m = Mount::start_with(backend, &store, &["--policy", policy.to_str().unwrap()]);
        // The owner (read only) tries to create a file with a secret name in /priv: the
        // policy denies it, and the audit trail names the path.
        let audit_name = m.path("priv").join(format!("audit-{}.txt", scene.marker("AUDITNAME")));
        assert_eq!(run_as(OWNER, OWNER, move || fs::write(&audit_name, b"x")), Err(libc::EACCES), "[{backend}] the owner may not write");
        // And annotates the renamed file in /priv without shadows:write: the trail names a
        // view's path whose names are the tree's (the guard of streams/audit@1 checks that
        // HIDNAME reaches no caller who could not list /priv).
        let note = m.root().join("shadows/priv").join(scene.hidden_name());
        assert_eq!(run_as(OWNER, OWNER, move || fs::write(&note, b"{}")), Err(libc::EACCES), "[{backend}] the owner may not annotate");
        // NEW: the mode bits apply in current/ under a policy too (the rows of
        // `reader` and `currentonly`: current:read, yet EACCES on the 0640 file).
        let ctx = format!("[{backend}] policy");
        let (checked2, more) = run_matrix(&ctx, &m, &scene, &AGENTS, &ALL_SECTIONS, true);
        failures.extend(more);
        m.stop();
        report(&format!("[{backend}] no policy + policy"), checked + checked2, &failures);
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn a_custom_view_sees_with_the_callers_eyes(backend: Backend) {
        // No test component reads the store: the built-in history component, loaded from
        // --views DIR (replacing the built-in), is a view like any other to the host, and
        // reads the store (events, read-at, list-at, stat-at, hash-at) through its import.
        let (dir, base) = temp_dir("lhfs-sight-custom-");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let store = base.join("store");
        let m = Mount::start(backend, &store);
        let scene = set_scene(&m, &store);
        m.stop();
        let views = base.join("views");
        fs::create_dir(&views).unwrap();
        let bytes = lighthouse_fs::views::builtin::component("history").expect("the history component is built");
        fs::write(views.join("history.wasm"), bytes).unwrap();
        let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap()]);
        // The history view is the component of the directory, not the built-in.
        let out = cli(["views".as_ref(), "reload".as_ref(), m.root().as_os_str(), "--json".as_ref()]);
        let reloaded = json::parse(&out.stdout).unwrap_or_else(|e| panic!("views reload --json: {e}\n{out:?}"));
        let origin = reloaded
            .get("entries")
            .and_then(|e| e.as_array())
            .and_then(|e| e.iter().find(|e| e.get("view").and_then(|v| v.as_str()) == Some("history")))
            .and_then(|e| e.get("origin"))
            .and_then(|o| o.as_str())
            .map(String::from);
        assert!(
            origin.as_deref().is_some_and(|o| o.contains("history.wasm")),
            "[{backend}] history is served from {origin:?}: {}", out.stdout
        );
        let ctx = format!("[{backend}] history.wasm from --views");
        let callers = [NO_POLICY[1].clone(), NO_POLICY[2].clone(), NO_POLICY[3].clone()];
        let (checked, mut failures) = run_matrix(&ctx, &m, &scene, &callers, &["history"], false);
        m.stop();
        // The same, under a policy.
        let policy = base.join("policy.toml");
        fs::write(&policy, policy_text()).unwrap();
        let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap(), "--policy", policy.to_str().unwrap()]);
        let ctx = format!("[{backend}] history.wasm from --views, policy");
        let (checked2, more) = run_matrix(&ctx, &m, &scene, &AGENTS, &["history"], false);
        failures.extend(more);
        m.stop();
        report(&format!("[{backend}] custom view"), checked + checked2, &failures);
    }
}

/// Write `data` to `rel` under the mount as `uid:gid`: Ok, or the errno.
fn write_as(m: &Mount, uid: u32, gid: u32, rel: &str, data: String) -> Result<(), i32> {
    let p = m.root().join(rel);
    run_as(uid, gid, move || fs::write(&p, data.as_bytes()))
}

both_backends! {
    #[timeout_secs(400)]
    fn a_hostile_custom_view_sees_with_the_callers_eyes(backend: Backend) {
        // The test view `spy` ignores permissions and asks the store import for
        // everything on every read (guest-ops/test-spy): whatever it shows a caller must
        // be what that caller could read directly, as for the built-in views.
        let (dir, base) = temp_dir("lhfs-sight-spy-");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let store = base.join("store");
        let m = Mount::start(backend, &store);
        let scene = set_scene(&m, &store);
        m.stop();
        let views = base.join("views");
        fs::create_dir(&views).unwrap();
        let bytes = lighthouse_fs::views::builtin::component("test_spy").expect("the test-spy component is built");
        fs::write(views.join("spy.wasm"), bytes).unwrap();
        let vdir = views.to_str().unwrap();

        // The spy asks the store for everything, thousands of calls in one read: on a
        // loaded machine that outlasts the default limit (an honest EIO, not a leak).
        let slow = ["--view-time-limit", "5000"];
        // 1. No policy: the mode bits decide.
        let m = Mount::start_with(backend, &store, &[&["--views", vdir][..], &slow].concat());
        let root_dump = fs::read_to_string(m.root().join("spy/dump")).unwrap_or_else(|e| panic!("[{backend}] root reads spy/dump: {e}"));
        eprintln!(
            "[{backend}] spy/dump as root: {} bytes, {} lines, {}",
            root_dump.len(),
            root_dump.lines().count(),
            root_dump.lines().last().unwrap_or("")
        );
        let ctx = format!("[{backend}] spy, no policy");
        let (checked, mut failures) = run_matrix(&ctx, &m, &scene, &NO_POLICY, &["spy"], false);

        // Appends through the spy: about a path the caller could list where it is.
        let x = format!("/xonly/{}", scene.xonly_name());
        let note = |what: &str| format!("{{\"note\":\"{}\"}}", scene.marker(what));
        let appends = [
            (OTHER, x.clone(), "SPYNOTE-XONLY", Err(libc::EACCES)),
            (OTHER, "/pub/open.txt".to_string(), "SPYNOTE-OPEN", Ok(())),
            (OWNER, "/priv/secret.txt".to_string(), "SPYNOTE-OWNER", Ok(())),
            (OTHER, "/priv/secret.txt".to_string(), "SPYNOTE-DENIED", Err(libc::EACCES)),
        ];
        for (uid, at, what, want) in &appends {
            let got = write_as(&m, *uid, *uid, "spy/append", format!("{at}\n{}", note(what)));
            if got != *want {
                failures.push(format!(
                    "{ctx} | uid {uid} | spy/append about {at} | want {want:?}, got {:?}",
                    got.map_err(errno_name)
                ));
            }
        }
        // And through the real shadows view: another uid annotating the file in /xonly
        // (0711: it may reach the file, not list the directory) is refused, at the lookup
        // or at the write.
        let got = write_as(
            &m,
            OTHER,
            OTHER,
            &format!("shadows{x}"),
            format!(r#"{{"kind":"comment","text":"{}"}}"#, scene.marker("SHADOWNOTE-XONLY")),
        );
        if got != Err(libc::EACCES) {
            failures.push(format!(
                "{ctx} | uid {OTHER} | annotate shadows{x} | want EACCES, got {:?}",
                got.map_err(errno_name)
            ));
        }
        // The log (as root, past the mount) has exactly the allowed notes.
        File::open(m.current()).unwrap().sync_all().unwrap();
        let log = cli(["log".as_ref(), "--store".as_ref(), store.as_os_str(), "--json".as_ref()]);
        let log = log.ok();
        for (what, want) in [
            ("SPYNOTE-XONLY", false),
            ("SPYNOTE-OPEN", true),
            ("SPYNOTE-OWNER", true),
            ("SPYNOTE-DENIED", false),
            ("SHADOWNOTE-XONLY", false),
        ] {
            if log.contains(&scene.marker(what)) != want {
                failures.push(format!(
                    "{ctx} | root | lighthouse-fs log --json | want {what} {}",
                    if want { "recorded" } else { "not recorded (refused)" }
                ));
            }
        }
        // The notes recorded are shown as the spy's events to who could read their file.
        for who in &NO_POLICY {
            let rows = [Row::new("spy/dump after the appends", How::Read("spy/dump".into()), Some(true))
                .shows("SPYNOTE-OPEN", scene.marker("SPYNOTE-OPEN"), true)
                .shows("SPYNOTE-OWNER (about /priv/secret.txt)", scene.marker("SPYNOTE-OWNER"), who.posix_secret())
                .shows("SPYNOTE-XONLY (refused)", scene.marker("SPYNOTE-XONLY"), false)
                .shows("SPYNOTE-DENIED (refused)", scene.marker("SPYNOTE-DENIED"), false)];
            let got = take_as(who, m.root(), &scene.tag, &rows);
            judge(&ctx, who, &rows, &got, &mut failures);
        }
        m.stop();

        // 2. A policy: `spy:read` with various of the reads that reveal the store.
        let policy = base.join("policy.toml");
        fs::write(&policy, policy_of(&SPY_AGENTS)).unwrap();
        let m = Mount::start_with(backend, &store, &[&["--views", vdir, "--policy", policy.to_str().unwrap()][..], &slow].concat());
        // The owner (read only) tries to create a file with a secret name in /priv: the
        // policy denies it, and the audit trail names the path.
        let audit_name = m.path("priv").join(format!("audit-{}.txt", scene.marker("AUDITNAME")));
        assert_eq!(run_as(OWNER, OWNER, move || fs::write(&audit_name, b"x")), Err(libc::EACCES), "[{backend}] the owner may not write");
        // And annotates the renamed file in /priv without shadows:write: the trail names a
        // view's path whose names are the tree's (the guard of streams/audit@1 checks that
        // HIDNAME reaches no caller who could not list /priv).
        let note = m.root().join("shadows/priv").join(scene.hidden_name());
        assert_eq!(run_as(OWNER, OWNER, move || fs::write(&note, b"{}")), Err(libc::EACCES), "[{backend}] the owner may not annotate");
        let ctx = format!("[{backend}] spy, policy");
        let (checked2, more) = run_matrix(&ctx, &m, &scene, &SPY_AGENTS, &["spy"], true);
        failures.extend(more);
        m.stop();
        report(&format!("[{backend}] hostile custom view"), checked + checked2 + appends.len() + 6 + NO_POLICY.len(), &failures);
    }
}

/// `cat PATH` as `uid` (group `uid`, no supplementary groups): its output, or its error.
fn cat_as(uid: u32, path: &Path) -> Result<String, String> {
    cat_with_groups(uid, &[], path)
}

/// `cat PATH` as `uid` (group `uid`) with the supplementary `groups`.
fn cat_with_groups(uid: u32, groups: &[u32], path: &Path) -> Result<String, String> {
    program_as(uid, groups, "cat", path)
}

/// `PROGRAM PATH` (cat, ls) as `uid` (group `uid`) with the supplementary `groups`.
fn program_as(uid: u32, groups: &[u32], program: &str, path: &Path) -> Result<String, String> {
    let groups = if groups.is_empty() {
        "--clear-groups".to_string()
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        format!("--groups={}", list.join(","))
    };
    let out = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            &groups,
            program,
        ])
        .arg(path)
        .output()
        .expect("run setpriv");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

both_backends! {
    #[timeout_secs(180)]
    fn one_callers_pages_never_serve_another(backend: Backend) {
        // The kernel's page cache is one for all callers; a view's bytes may be one
        // caller's. spy/kept says its bytes never change (immutable, the same size for
        // all, no store call for its attributes), then renders what the store shows each
        // reader: root's rendering holds the secret, 1001's must not, whoever read first
        // and whatever is still open. (history/@N files are the honest case: they pass.)
        let (dir, base) = temp_dir("lhfs-sight-pages-");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let store = base.join("store");
        let m = Mount::start(backend, &store);
        let s = set_scene(&m, &store);
        m.stop();
        let views = base.join("views");
        fs::create_dir(&views).unwrap();
        let bytes = lighthouse_fs::views::builtin::component("test_spy").expect("the test-spy component is built");
        fs::write(views.join("spy.wasm"), bytes).unwrap();
        let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap()]);
        let kept = m.root().join("spy/kept");
        let secret = s.marker("SECRET-FILE");
        let other = |what: &str| {
            let seen = cat_as(OTHER, &kept).unwrap_or_else(|e| panic!("[{backend}] {what}: cat as {OTHER}: {e}"));
            assert!(seen.contains(&s.marker("PUBLIC")), "[{backend}] {what}: {OTHER} sees what it may");
            assert!(!seen.contains(&secret), "[{backend}] {what}: {OTHER} got root's rendering from the page cache");
        };
        // Root reads it (its pages fill the cache) and keeps it open.
        let mut held = File::open(&kept).unwrap();
        let mut mine = String::new();
        held.read_to_string(&mut mine).unwrap();
        assert!(mine.contains(&secret), "[{backend}] root's rendering holds the secret");
        other("while root has it open");
        // Root's open file still reads root's bytes.
        let mut again = vec![0u8; mine.len()];
        std::os::unix::fs::FileExt::read_exact_at(&held, &mut again, 0).unwrap();
        assert!(again == mine.as_bytes(), "[{backend}] root's pages are root's rendering");
        drop(held);
        other("after root closed it");
        // And back: 1001's pages never stand for root's.
        assert!(fs::read_to_string(&kept).unwrap() == mine, "[{backend}] root after {OTHER}");
        other("once more");

        // A directory's kept listing likewise: spy/kept-dir lists /priv as the store shows
        // it to the reader (root: the hidden name; 1001: nothing), and says it never changes.
        let dir = m.root().join("spy/kept-dir");
        let hidden = s.hidden_name();
        let names = |what: &str| -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("[{backend}] {what}: list as root: {e}"))
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let others = |what: &str| {
            let seen = program_as(OTHER, &[], "ls", &dir).unwrap_or_else(|e| panic!("[{backend}] {what}: ls as {OTHER}: {e}"));
            assert!(!seen.contains(&hidden), "[{backend}] {what}: {OTHER} got root's listing from the kernel's cache: {seen}");
        };
        let held = File::open(&dir).unwrap();
        let mine = names("first");
        assert!(mine.contains(&hidden), "[{backend}] root lists the hidden name: {mine:?}");
        others("while root has it open");
        assert_eq!(names("again"), mine, "[{backend}] root's listing stays root's");
        drop(held);
        others("after root closed it");
        assert_eq!(names("after"), mine, "[{backend}] root after {OTHER}");
        others("once more");
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(120)]
    fn supplementary_groups_count_as_for_the_kernel(backend: Backend) {
        // /pub/locked.txt is 0640, owner and group 1000. A caller whose primary group is
        // its own but who is in group 1000 by a supplementary group reads it directly
        // (the kernel checks all its groups); views must agree, both ways.
        let (dir, base) = temp_dir("lhfs-sight-groups-");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let m = Mount::start(backend, &base.join("store"));
        let s = set_scene(&m, &base.join("store"));
        let member = 1008;
        let direct = m.current().join("pub/locked.txt");
        let log = m.root().join("history/.log/pub/locked.txt");
        let hash = s.hash("locked");
        let read = cat_with_groups(member, &[OWNER], &direct).unwrap_or_else(|e| panic!("[{backend}] direct read in the group: {e}"));
        assert!(read.contains(&s.marker("SECRET-FILE")), "[{backend}] direct read in the group");
        let seen = cat_with_groups(member, &[OWNER], &log).unwrap_or_else(|e| panic!("[{backend}] the log in the group: {e}"));
        assert!(seen.contains(&hash), "[{backend}] in group {OWNER} by a supplementary group, the hash shows: {seen}");
        // The same uid without the group: neither directly nor through the view.
        assert!(cat_as(member, &direct).is_err(), "[{backend}] direct read outside the group");
        let seen = cat_as(member, &log).unwrap();
        assert!(!seen.contains(&hash), "[{backend}] outside the group, no hash: {seen}");
        m.stop();
    }
}
