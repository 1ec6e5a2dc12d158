//! The context view against the SDK's model store.

use lighthouse_view_sdk::model::{hash_hex, ModelStore};
use lighthouse_view_sdk::serde_json::{self, json, Value};
use lighthouse_view_sdk::{Caching, Caller, DirEntry, FsError, NodeKind, OpenMode, Store};

use crate::select::{MAX_ENTRIES, MAX_FILES};
use crate::view::Context;

const S: i64 = 1_000_000_000;
/// 2026-11-23T21:40:00Z
const T0: i64 = 1_795_470_000 * S;

/// /README.md, /src/main.rs, /src/lib.rs, /src/auth/session.rs, /src/auth/token.rs,
/// /src/auth/deep/x.rs, /docs/a.md, /docs/b.txt, /bin.dat (not UTF-8), /l -> src/main.rs.
fn sample() -> ModelStore {
    let m = ModelStore::new(T0);
    m.write("/README.md", b"# project\n");
    m.mkdir("/src");
    m.write("/src/main.rs", b"fn main() {}\n");
    m.write("/src/lib.rs", b"pub mod auth;\n");
    m.mkdir("/src/auth");
    m.write("/src/auth/session.rs", "// sessión\n".as_bytes());
    m.write("/src/auth/token.rs", b"// token\n");
    m.mkdir("/src/auth/deep");
    m.write("/src/auth/deep/x.rs", b"x\n");
    m.mkdir("/docs");
    m.write("/docs/a.md", b"a\n");
    m.write("/docs/b.txt", b"b\n");
    m.write("/bin.dat", &[0xff, 0x00, 0xfe]);
    m.push("symlink", "/l", Some("src/main.rs"), None);
    m
}

fn view(m: &ModelStore) -> Context<&ModelStore> {
    Context::new(m)
}

fn read_all(v: &Context<&ModelStore>, path: &str) -> Vec<u8> {
    v.read(path, 0, u32::MAX).unwrap()
}

fn doc(v: &Context<&ModelStore>, path: &str) -> Value {
    serde_json::from_slice(&read_all(v, path)).unwrap()
}

fn names(entries: &[DirEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

/// Writes a manifest as `echo ... > pkg/manifest.json` does: create, open, one write.
fn put(v: &Context<&ModelStore>, pkg: &str, manifest: &str) -> Result<u32, FsError> {
    let path = format!("/{pkg}/manifest.json");
    // mkdir, as the kernel asks for it: only when the package is not there.
    if v.getattr(&format!("/{pkg}")) == Err(FsError::NotFound) {
        v.create(&format!("/{pkg}"), NodeKind::Directory)?;
    }
    v.create(&path, NodeKind::File)?;
    assert_eq!(v.open(&path, true), Ok(OpenMode::Plain));
    v.write(&path, 0, manifest.as_bytes())
}

fn selected(v: &Context<&ModelStore>, pkg: &str) -> Vec<String> {
    doc(v, &format!("/{pkg}/files.json"))["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_good_manifest_is_recorded_once_and_reads_back() {
    let m = sample();
    let v = view(&m);
    let head = (&m).head();
    let text = r#"{"purpose": "fix the login", "paths": ["/src//auth/*.rs", "README.md"], "recent_events": 5}"#;
    assert_eq!(put(&v, "login", text), Ok(text.len() as u32));
    let events = m.all_events();
    assert_eq!(
        events.len() as u64,
        head + 2,
        "the mkdir, then exactly one event"
    );
    let mkdir = &events[events.len() - 2];
    assert_eq!(mkdir.body.as_deref(), Some(r#"{"mkdir":true}"#));
    let e = events.last().unwrap();
    assert_eq!((e.op.as_str(), e.path.as_str()), ("context", "/login"));
    assert_eq!(
        e.body.as_deref(),
        Some(
            r#"{"purpose":"fix the login","paths":["src/auth/*.rs","README.md"],"max_bytes_per_file":262144,"recent_events":5}"#
        )
    );
    let read = read_all(&v, "/login/manifest.json");
    assert_eq!(
        serde_json::from_slice::<Value>(&read).unwrap(),
        json!({"purpose": "fix the login", "paths": ["src/auth/*.rs", "README.md"],
               "max_bytes_per_file": 262144, "recent_events": 5})
    );
    assert!(read.ends_with(b"}\n") && read.starts_with(b"{\n  \"purpose\""));
    let a = v.getattr("/login/manifest.json").unwrap();
    assert_eq!(
        (a.kind, a.size, a.perm, a.writable, a.caching, a.mtime_ns),
        (
            NodeKind::File,
            read.len() as u64,
            0o666,
            true,
            Caching::Volatile,
            e.time_ns
        )
    );
    // What was read back is a good manifest too, and writing it changes nothing.
    assert_eq!(
        put(&v, "login", std::str::from_utf8(&read).unwrap()).map(|_| ()),
        Ok(())
    );
    assert_eq!(m.all_events().last().unwrap().body, e.body);
}

#[test]
fn bad_manifests_are_invalid_and_record_nothing() {
    let m = sample();
    let v = view(&m);
    put(&v, "p", r#"{"purpose":"good","paths":["src/main.rs"]}"#).unwrap();
    let before = m.all_events().len();
    let good_manifest = read_all(&v, "/p/manifest.json");
    for bad in [
        "",
        "not json",
        "{\"purpose\":\"p\",",
        r#"{"paths":["a"]}"#,
        r#"{"purpose":"","paths":["a"]}"#,
        r#"{"purpose":"p","paths":[]}"#,
        r#"{"purpose":"p"}"#,
        r#"{"purpose":["p"],"paths":["a"]}"#,
        r#"{"purpose":"p","paths":[1]}"#,
        r#"{"purpose":"p","paths":["a"],"max_bytes_per_file":"big"}"#,
        r#"{"purpose":"p","paths":["a"],"colour":"red"}"#,
        r#"{"purpose":"p","paths":["../etc/passwd"]}"#,
        r#"{"purpose":"p","paths":["src/[a"]}"#,
        r#"[{"purpose":"p","paths":["a"]}]"#,
        r#"{"delete":true,"purpose":"p"}"#,
    ] {
        let got = v.write("/p/manifest.json", 0, bad.as_bytes());
        assert!(matches!(got, Err(FsError::Invalid(_))), "{bad:?}: {got:?}");
    }
    let good = br#"{"purpose":"p","paths":["a"]}"#;
    for bad_name in ["/.p", "/a b", "/é", &format!("/{}", "x".repeat(65))] {
        let manifest = format!("{bad_name}/manifest.json");
        let why = v.write(&manifest, 0, good);
        assert!(
            matches!(&why, Err(FsError::Invalid(r)) if r.contains("package name")),
            "{why:?}"
        );
        assert!(matches!(
            v.create(bad_name, NodeKind::Directory),
            Err(FsError::Invalid(_))
        ));
        assert!(matches!(
            v.create(&manifest, NodeKind::File),
            Err(FsError::Invalid(_))
        ));
        assert_eq!(v.getattr(bad_name), Err(FsError::NotFound));
    }
    // One whole document at offset 0: an append or a second piece is refused.
    let r = v.write("/p/manifest.json", 5, good);
    assert!(matches!(r, Err(FsError::Invalid(why)) if why.contains("offset")));
    assert_eq!(m.all_events().len(), before, "nothing recorded");
    assert_eq!(read_all(&v, "/p/manifest.json"), good_manifest);
    // The reason says what is wrong.
    let r = v.write(
        "/p/manifest.json",
        0,
        br#"{"purpose":"p","paths":["a"],"colour":1}"#,
    );
    assert!(matches!(r, Err(FsError::Invalid(why)) if why.contains("unknown field `colour`")));
}

#[test]
fn packages_exist_from_mkdir_to_rmdir() {
    let m = sample();
    let v = view(&m);
    assert!(v.readdir("/").unwrap().is_empty());
    // A name that is no package is not there, however valid.
    assert_eq!(v.getattr("/later"), Err(FsError::NotFound));
    assert_eq!(v.getattr("/later/manifest.json"), Err(FsError::NotFound));
    assert_eq!(v.readdir("/later"), Err(FsError::NotFound));
    assert_eq!(v.open("/later/manifest.json", true), Err(FsError::NotFound));
    // mkdir records the package: listed, empty but for the manifest to write.
    let before = m.all_events().len();
    let a = v.create("/later", NodeKind::Directory).unwrap();
    assert_eq!(
        (a.kind, a.perm, a.writable),
        (NodeKind::Directory, 0o777, true)
    );
    assert_eq!(m.all_events().len(), before + 1);
    assert_eq!(
        v.create("/later", NodeKind::Directory),
        Err(FsError::Exists)
    );
    assert_eq!(names(&v.readdir("/").unwrap()), ["later"]);
    assert_eq!(names(&v.readdir("/later").unwrap()), ["manifest.json"]);
    assert_eq!(read_all(&v, "/later/manifest.json"), b"{}\n");
    assert_eq!(v.getattr("/later/manifest.json").unwrap().size, 3);
    assert_eq!(v.getattr("/later/files.json"), Err(FsError::NotFound));
    assert_eq!(v.read("/later/context.json", 0, 10), Err(FsError::NotFound));
    assert_eq!(v.open("/later/files.json", false), Err(FsError::NotFound));
    // The manifest placeholder removes as nothing; the package goes with rmdir.
    assert_eq!(v.remove("/later/manifest.json", false), Ok(()));
    assert_eq!(m.all_events().len(), before + 1);
    assert_eq!(v.remove("/later", false), Err(FsError::IsADirectory));
    assert_eq!(v.remove("/later", true), Ok(()));
    assert_eq!(v.getattr("/later"), Err(FsError::NotFound));
    assert_eq!(v.remove("/later", true), Err(FsError::NotFound));
    assert!(v.readdir("/").unwrap().is_empty());

    // With a manifest: rmdir is ENOTEMPTY until the manifest is removed; the derived
    // documents are not removed on their own.
    put(&v, "full", r#"{"purpose":"f","paths":["README.md"]}"#).unwrap();
    assert_eq!(v.remove("/full", true), Err(FsError::NotEmpty));
    assert_eq!(
        v.remove("/full/files.json", false),
        Err(FsError::PermissionDenied)
    );
    assert_eq!(
        v.remove("/full/manifest.json", true),
        Err(FsError::NotADirectory)
    );
    assert_eq!(v.remove("/full/manifest.json", false), Ok(()));
    assert_eq!(names(&v.readdir("/full").unwrap()), ["manifest.json"]);
    assert_eq!(read_all(&v, "/full/manifest.json"), b"{}\n");
    assert_eq!(v.remove("/full/files.json", false), Err(FsError::NotFound));
    assert_eq!(v.remove("/full", true), Ok(()));
    assert_eq!(v.remove("/", true), Err(FsError::PermissionDenied));
    // The records the view makes itself are not a manifest anyone may write.
    put(&v, "w", r#"{"purpose":"w","paths":["x"]}"#).unwrap();
    for body in [r#"{"mkdir":true}"#, r#"{"unlink":true}"#] {
        assert!(
            matches!(
                v.write("/w/manifest.json", 0, body.as_bytes()),
                Err(FsError::Invalid(_))
            ),
            "{body}"
        );
    }
    assert_eq!(v.remove("/w/manifest.json", false), Ok(()));
    assert_eq!(v.remove("/w", true), Ok(()));

    put(&v, "b-pkg", r#"{"purpose":"b","paths":["docs"]}"#).unwrap();
    put(&v, "a.pkg", r#"{"purpose":"a","paths":["README.md"]}"#).unwrap();
    let root = v.readdir("/").unwrap();
    assert_eq!(names(&root), ["a.pkg", "b-pkg"]);
    assert!(root.iter().all(|e| e.kind == NodeKind::Directory));
    assert_eq!(
        names(&v.readdir("/a.pkg").unwrap()),
        ["manifest.json", "files.json", "context.json"]
    );
    assert_eq!(v.readdir("/a.pkg/files.json"), Err(FsError::NotADirectory));
    for path in ["/a.pkg/other", "/a.pkg/files.json/x", "/.x", "/a/b/c"] {
        assert_eq!(v.getattr(path), Err(FsError::NotFound), "{path}");
    }
    // A view event of another op, or at a path no package can have, is not a package.
    (&m).append("annotate", "/c", r#"{"purpose":"c","paths":["x"]}"#)
        .unwrap();
    (&m).append(
        "context",
        "/src/main.rs",
        r#"{"purpose":"c","paths":["x"]}"#,
    )
    .unwrap();
    (&m).append("context", "/junk", r#"{"not":"a manifest"}"#)
        .unwrap();
    assert_eq!(names(&v.readdir("/").unwrap()), ["a.pkg", "b-pkg"]);
}

#[test]
fn a_later_manifest_replaces_the_earlier_and_delete_removes_it() {
    let m = sample();
    let v = view(&m);
    put(&v, "p", r#"{"purpose":"one","paths":["README.md"]}"#).unwrap();
    assert_eq!(selected(&v, "p"), ["/README.md"]);
    put(&v, "p", r#"{"purpose":"two","paths":["docs/*"]}"#).unwrap();
    assert_eq!(selected(&v, "p"), ["/docs/a.md", "/docs/b.txt"]);
    assert_eq!(doc(&v, "/p/files.json")["purpose"], "two");
    assert_eq!(doc(&v, "/p/manifest.json")["purpose"], "two");
    put(&v, "p", r#"{"delete": true}"#).unwrap();
    assert!(v.readdir("/").unwrap().is_empty());
    assert_eq!(v.getattr("/p/manifest.json"), Err(FsError::NotFound));
    assert_eq!(v.getattr("/p/files.json"), Err(FsError::NotFound));
    put(&v, "p", r#"{"purpose":"three","paths":["bin.dat"]}"#).unwrap();
    assert_eq!(names(&v.readdir("/").unwrap()), ["p"]);
}

#[test]
fn globs_select_the_right_files() {
    let m = sample();
    let v = view(&m);
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (&["src/*.rs"], &["/src/lib.rs", "/src/main.rs"], &[]),
        (
            &["src/**/*.rs"],
            &[
                "/src/auth/deep/x.rs",
                "/src/auth/session.rs",
                "/src/auth/token.rs",
                "/src/lib.rs",
                "/src/main.rs",
            ],
            &[],
        ),
        (&["**/*.md"], &["/README.md", "/docs/a.md"], &[]),
        (&["src/????.rs"], &["/src/main.rs"], &[]),
        (
            &["src/auth/[st]*.rs"],
            &["/src/auth/session.rs", "/src/auth/token.rs"],
            &[],
        ),
        (&["src/auth/[!s]*"], &["/src/auth/token.rs"], &[]),
        (&["*/a.*"], &["/docs/a.md"], &[]),
        // A plain directory: everything below it.
        (
            &["/src/auth"],
            &[
                "/src/auth/deep/x.rs",
                "/src/auth/session.rs",
                "/src/auth/token.rs",
            ],
            &[],
        ),
        // Each file once; a symlink is not a file; patterns that select nothing.
        (
            &[
                "README.md",
                "*.md",
                "l",
                "nope/*.rs",
                "src/*.py",
                "gone.txt",
            ],
            &["/README.md"],
            &["l", "nope/*.rs", "src/*.py", "gone.txt"],
        ),
        (&["src/main.rs/x"], &[], &["src/main.rs/x"]),
    ];
    for (i, (paths, want, missing)) in cases.iter().enumerate() {
        let pkg = format!("p{i}");
        let manifest = json!({"purpose": "test", "paths": paths}).to_string();
        put(&v, &pkg, &manifest).unwrap();
        assert_eq!(selected(&v, &pkg), *want, "{paths:?}");
        let files = doc(&v, &format!("/{pkg}/files.json"));
        assert_eq!(files["missing"], json!(missing), "{paths:?}");
        assert_eq!(files["cut"], json!([]));
    }
}

#[test]
fn files_json_holds_the_models_content_and_hashes() {
    let m = sample();
    let v = view(&m);
    put(
        &v,
        "p",
        r#"{"purpose":"read","paths":["README.md","bin.dat","src/auth/session.rs"],"max_bytes_per_file":9}"#,
    )
    .unwrap();
    let head = (&m).head();
    let files = doc(&v, "/p/files.json");
    assert_eq!(files["package"], "p");
    assert_eq!(files["purpose"], "read");
    assert_eq!(files["seq"], head);
    let list = files["files"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for f in list {
        let path = f["path"].as_str().unwrap();
        let content = (&m).read_all_at(path, head, u64::MAX).unwrap();
        assert_eq!(f["size"], content.len(), "{path}");
        assert_eq!(f["hash"], hash_hex(&content), "{path}");
    }
    // README.md is 10 bytes: 9 of them, truncated.
    assert_eq!(
        list[0],
        json!({"path":"/README.md","size":10,"hash":hash_hex(b"# project\n"),"content":"# project","truncated":true})
    );
    // Not UTF-8: base64, whole.
    assert_eq!(list[1]["content_base64"], "/wD+");
    assert!(list[1].get("content").is_none());
    assert_eq!(list[1]["truncated"], false);
    // 9 bytes are "// sessi" and the first byte of "ó": cut back to a whole character.
    assert_eq!(list[2]["content"], "// sessi");
    assert_eq!(list[2]["truncated"], true);

    put(
        &v,
        "whole",
        r#"{"purpose":"read","paths":["src/auth/session.rs"]}"#,
    )
    .unwrap();
    let f = &doc(&v, "/whole/files.json")["files"][0];
    assert_eq!(f["content"], "// sessión\n");
    assert_eq!(f["truncated"], false);
}

#[test]
fn documents_have_exact_sizes_and_read_in_pieces() {
    let m = sample();
    let v = view(&m);
    put(&v, "p", r#"{"purpose":"sizes","paths":["**"]}"#).unwrap();
    for name in ["manifest.json", "files.json", "context.json"] {
        let path = format!("/p/{name}");
        let a = v.getattr(&path).unwrap();
        let whole = read_all(&v, &path);
        assert_eq!(a.size as usize, whole.len(), "{name}");
        assert_eq!(a.caching, Caching::Volatile);
        let mut pieces = Vec::new();
        while pieces.len() < whole.len() {
            pieces.extend(v.read(&path, pieces.len() as u64, 7).unwrap());
        }
        assert_eq!(pieces, whole, "{name}");
        assert!(v.read(&path, whole.len() as u64, 7).unwrap().is_empty());
        // A fresh instance (no cache) renders the same bytes.
        assert_eq!(read_all(&view(&m), &path), whole, "{name} is deterministic");
    }
    let a = v.getattr("/p/files.json").unwrap();
    assert_eq!((a.perm, a.writable), (0o444, false));
    assert_eq!(v.open("/p/files.json", true), Err(FsError::ReadOnly));
    assert_eq!(v.write("/p/context.json", 0, b"{}"), Err(FsError::ReadOnly));
    assert_eq!(v.open("/p/context.json", false), Ok(OpenMode::Plain));
    assert_eq!(v.open("/p", false), Err(FsError::IsADirectory));
    assert_eq!(v.read("/p", 0, 1), Err(FsError::IsADirectory));
    // The head moves: the documents follow it.
    m.write("/README.md", b"changed\n");
    let files = doc(&v, "/p/files.json");
    assert_eq!(files["seq"], (&m).head());
    assert_eq!(files["files"][0]["content"], "changed\n");
    assert_eq!(
        v.getattr("/p/files.json").unwrap().size as usize,
        read_all(&v, "/p/files.json").len()
    );
}

#[test]
fn context_json_has_annotations_and_recent_events() {
    let m = sample();
    let note = |path: &str, text: &str| {
        let body = json!({"kind":"note","text":text,
            "anchor":{"start_line":1,"end_line":1,"lines":1,"fingerprint":"fp"},"hash":"h"});
        (&m).append("annotate", path, &body.to_string()).unwrap()
    };
    let n1 = note("/src/main.rs", "entry point");
    note("/docs/a.md", "not selected");
    // An editor's save: write a temp file, rename it over the file.
    m.write("/src/.main.rs.tmp", b"fn main() { run() }\n");
    m.rename("/src/.main.rs.tmp", "/src/main.rs");
    // A move of the annotated file carries its notes; then a note at the new name.
    let n2 = note("/src/lib.rs", "the library");
    m.rename("/src/lib.rs", "/src/core.rs");
    let n3 = note("/src/core.rs", "renamed");
    // A directory rename carries the notes of the files below it.
    let n4 = note("/src/auth/token.rs", "tokens");
    m.rename("/src/auth", "/src/login");
    m.write("/src/core.rs", b"pub mod login;\n");
    m.write("/docs/a.md", b"unrelated\n");

    let v = view(&m);
    put(
        &v,
        "p",
        r#"{"purpose":"ctx","paths":["src/*.rs","src/login/token.rs"],"recent_events":100}"#,
    )
    .unwrap();
    let ctx = doc(&v, "/p/context.json");
    assert_eq!(ctx["package"], "p");
    assert_eq!(ctx["seq"], (&m).head());
    assert_eq!(
        ctx["files"],
        json!(["/src/core.rs", "/src/login/token.rs", "/src/main.rs"])
    );
    let notes = ctx["annotations"].as_object().unwrap();
    assert_eq!(
        notes.keys().collect::<Vec<_>>(),
        ["/src/core.rs", "/src/login/token.rs", "/src/main.rs"]
    );
    let seqs = |path: &str| -> Vec<u64> {
        notes[path]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs("/src/main.rs"), [n1]);
    assert_eq!(seqs("/src/core.rs"), [n2, n3]);
    assert_eq!(seqs("/src/login/token.rs"), [n4]);
    let first = &notes["/src/main.rs"][0];
    assert_eq!(first["agent"], "model");
    assert_eq!(first["body"]["text"], "entry point");
    assert_eq!(first["body"]["anchor"]["start_line"], 1);
    assert_eq!(
        first["time"].as_str().unwrap().len(),
        "2026-11-23T21:40:00.000000000Z".len()
    );

    // Recent events: the changes of the selected files under their names at the time,
    // renames followed back; no annotations, manifests or other files.
    let recent: Vec<(String, String)> = ctx["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().into(),
                e["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = recent
        .iter()
        .map(|(o, p)| (o.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("write", "/src/main.rs"),
            ("write", "/src/lib.rs"),
            ("write", "/src/auth/token.rs"),
            ("write", "/src/.main.rs.tmp"),
            ("rename", "/src/.main.rs.tmp"),
            ("rename", "/src/lib.rs"),
            ("rename", "/src/auth"),
            ("write", "/src/core.rs"),
        ]
    );
    let last = ctx["recent_events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["hash"], hash_hex(b"pub mod login;\n"));
    assert!(last["time"].is_string() && last["body"].is_null());

    // Only the last N.
    put(
        &v,
        "q",
        r#"{"purpose":"ctx","paths":["src/*.rs","src/login/token.rs"],"recent_events":2}"#,
    )
    .unwrap();
    let ctx = doc(&v, "/q/context.json");
    let ops: Vec<&str> = ctx["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["rename", "write"]);
    assert_eq!(ctx["cut"], json!([]));
}

#[test]
fn only_packages_and_their_manifests_can_be_created() {
    let m = sample();
    let v = view(&m);
    let a = v.create("/new", NodeKind::Directory).unwrap();
    assert_eq!((a.kind, a.writable), (NodeKind::Directory, true));
    let a = v.create("/new/manifest.json", NodeKind::File).unwrap();
    assert_eq!((a.kind, a.size, a.writable), (NodeKind::File, 3, true));
    for (path, kind) in [
        ("/file", NodeKind::File),
        ("/new/notes.txt", NodeKind::File),
        ("/new/sub", NodeKind::Directory),
        ("/new/files.json", NodeKind::File),
        ("/new/manifest.json", NodeKind::Directory),
        ("/", NodeKind::Directory),
    ] {
        assert_eq!(
            v.create(path, kind),
            Err(FsError::PermissionDenied),
            "{path}"
        );
    }
    assert_eq!(v.create("/new/a/b", NodeKind::File), Err(FsError::NotFound));
    assert_eq!(v.write("/new", 0, b"{}"), Err(FsError::IsADirectory));
    assert_eq!(v.write("/new/x", 0, b"{}"), Err(FsError::NotFound));
    assert!(matches!(
        v.readlink("/new/manifest.json"),
        Err(FsError::Invalid(_))
    ));
    assert_eq!(v.readlink("/new/x"), Err(FsError::NotFound));
}

#[test]
fn selections_are_bounded_and_say_so() {
    let m = ModelStore::new(T0);
    m.mkdir("/many");
    for i in 0..=MAX_FILES {
        m.write(&format!("/many/f{i:04}"), b"x");
    }
    let v = view(&m);
    put(
        &v,
        "p",
        r#"{"purpose":"all","paths":["many/*","nothing-here"]}"#,
    )
    .unwrap();
    let files = doc(&v, "/p/files.json");
    assert_eq!(files["files"].as_array().unwrap().len(), MAX_FILES);
    assert_eq!(files["files"][0]["path"], "/many/f0000");
    assert!(files["cut"][0].as_str().unwrap().contains("500 files"));
    let ctx = doc(&v, "/p/context.json");
    assert!(ctx["cut"][0].as_str().unwrap().contains("500 files"));

    let m = ModelStore::new(T0);
    m.mkdir("/wide");
    for i in 0..MAX_ENTRIES {
        m.push("create", &format!("/wide/e{i:05}"), None, None);
    }
    m.write("/z.rs", b"z");
    let v = view(&m);
    put(&v, "p", r#"{"purpose":"wide","paths":["wide/*.rs"]}"#).unwrap();
    let files = doc(&v, "/p/files.json");
    assert_eq!(files["missing"], json!(["wide/*.rs"]));
    assert_eq!(
        files["cut"],
        json!([]),
        "exactly MAX_ENTRIES entries looked at"
    );
    put(&v, "q", r#"{"purpose":"wide","paths":["**/*.rs"]}"#).unwrap();
    let files = doc(&v, "/q/files.json");
    assert_eq!(
        files["files"][0]["path"], "/z.rs",
        "files before subdirectories"
    );
    assert!(files["cut"][0]
        .as_str()
        .unwrap()
        .contains("10000 directory entries"));
}

/// A package holds only what its reader may read, and names what it left out: a file
/// it may not read, a directory it may not list (once, with a trailing "/", not
/// walked). Nothing else about them appears anywhere in the documents.
#[test]
fn what_the_reader_may_not_read_is_denied_by_name_only() {
    let m = sample();
    m.mkdir("/private");
    m.mkdir("/private/deeper");
    m.write("/private/deeper/p.rs", b"PRIVATE CONTENT\n");
    m.write("/src/auth/secret.rs", b"SECRET CONTENT\n");
    (&m).append(
        "annotate",
        "/src/auth/secret.rs",
        r#"{"text":"SECRET NOTE"}"#,
    )
    .unwrap();
    m.deny_dir("/private");
    m.deny_read("/src/auth/secret.rs");
    let v = view(&m);
    let manifest = r#"{"purpose": "p", "paths": ["src/auth/*.rs", "private", "private/deeper/p.rs", "**/*.rs", "nothing.md"]}"#;
    put(&v, "p", manifest).unwrap();
    let files = doc(&v, "/p/files.json");
    assert_eq!(
        files["denied"],
        json!(["/private/", "/src/auth/secret.rs"]),
        "{files}"
    );
    assert_eq!(files["missing"], json!(["nothing.md"]));
    let paths = selected(&v, "p");
    assert!(paths.contains(&"/src/auth/session.rs".to_string()));
    assert!(!paths
        .iter()
        .any(|p| p.contains("secret") || p.contains("private")));
    let context = doc(&v, "/p/context.json");
    assert_eq!(context["denied"], files["denied"]);
    assert!(!context["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/src/auth/secret.rs"));
    for name in ["files.json", "context.json"] {
        let text = String::from_utf8(read_all(&v, &format!("/p/{name}"))).unwrap();
        for leak in [
            "SECRET",
            "PRIVATE",
            "deeper",
            &hash_hex(b"SECRET CONTENT\n"),
        ] {
            assert!(!text.contains(leak), "{name} shows {leak}: {text}");
        }
        assert_eq!(text.matches("/private/").count(), 1, "{text}");
    }
    // Only the denied directory is named, even below where the walk found it.
    let v = view(&m);
    put(
        &v,
        "deep",
        r#"{"purpose": "p", "paths": ["private/deeper/**"]}"#,
    )
    .unwrap();
    let files = doc(&v, "/deep/files.json");
    assert_eq!(files["denied"], json!(["/private/"]), "{files}");
    assert_eq!(files["missing"], json!([]));
}

/// Rendered documents are kept per caller: the store shows each its own, so what one
/// reader may read is never served to another from the cache.
#[test]
fn a_document_rendered_for_one_caller_is_not_served_to_another() {
    let m = sample();
    let v = view(&m);
    put(&v, "p", r#"{"purpose": "p", "paths": ["README.md"]}"#).unwrap();
    let caller = |uid| Caller {
        agent: None,
        uid,
        gid: uid,
        pid: 7,
        sight: uid.into(),
    };
    v.serving(&caller(1000));
    assert_eq!(selected(&v, "p"), ["/README.md"]);
    // The model cannot tell callers apart: it now denies the file to whoever asks, as
    // the host would to another caller at the same head.
    m.deny_read("/README.md");
    v.serving(&caller(2000));
    assert_eq!(selected(&v, "p"), Vec::<String>::new());
    assert_eq!(doc(&v, "/p/files.json")["denied"], json!(["/README.md"]));
}
