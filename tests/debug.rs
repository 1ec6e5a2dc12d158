//! `MNT/debug/` through a real mount, on both backends: four read-only JSON documents
//! that are fresh on every open (health, performance, cache statistics, views), read
//! with the syscalls and with real tools (cat, jq, Python), their errnos, and figures
//! that follow what the mount did. No timing thresholds: counts only grow by what the
//! test did, or more.

#[macro_use]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const FILES: [&str; 4] = [
    "cache_stats.json",
    "health.json",
    "performance.json",
    "views.json",
];

/// `MNT/debug/<file>`.
fn debug_path(m: &Mount, file: &str) -> PathBuf {
    m.root().join("debug").join(file)
}

/// A debug file read and parsed; it must end with a newline.
#[track_caller]
fn doc(m: &Mount, file: &str) -> json::Value {
    let text = fs::read_to_string(debug_path(m, file))
        .unwrap_or_else(|e| panic!("[{}] read debug/{file}: {e}", m.backend()));
    parse(m, file, &text)
}

#[track_caller]
fn parse(m: &Mount, file: &str, text: &str) -> json::Value {
    assert!(
        text.ends_with('\n'),
        "[{}] debug/{file} ends with a newline",
        m.backend()
    );
    json::parse(text)
        .unwrap_or_else(|e| panic!("[{}] debug/{file} is not JSON ({e}):\n{text}", m.backend()))
}

/// A number at a path of keys of a document.
#[track_caller]
fn num(v: &json::Value, path: &[&str]) -> u64 {
    v.at(path)
        .and_then(|n| n.as_u64())
        .unwrap_or_else(|| panic!("no count at {path:?} in {v:?}"))
}

/// The count of one operation in performance.json.
fn op_count(perf: &json::Value, op: &str) -> u64 {
    num(perf, &["ops", op, "count"])
}

/// Failures with `errno` (its name) over every operation of performance.json.
fn errno_total(perf: &json::Value, errno: &str) -> u64 {
    let ops = perf.get("ops").and_then(|o| o.as_object()).expect("ops");
    ops.values()
        .filter_map(|o| o.at(&["errnos", errno])?.as_u64())
        .sum()
}

/// The newest seq of the log once everything done through `m` is committed.
fn head_seq(m: &Mount) -> u64 {
    File::open(m.current()).unwrap().sync_all().unwrap();
    log_json(m.store(), None)
        .last()
        .and_then(|e| e.get("seq")?.as_u64())
        .unwrap_or(0)
}

/// A program on the PATH, if installed.
fn tool(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Run `program args…`, asserting success; its stdout.
#[track_caller]
fn run_tool(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

both_backends! {
    fn debug_is_a_native_read_only_section(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");

        // In the root after current/ and before the views, in READDIR and READDIRPLUS.
        let order: Vec<String> = fs::read_dir(m.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(order, root_listing(&[]), "{}", ctx("root order"));
        let ls = run_tool(Path::new("ls"), &["-la", m.root().to_str().unwrap()]);
        for name in ["current", "debug", "history"] {
            assert!(ls.lines().any(|l| l.ends_with(&format!(" {name}"))), "{}:\n{ls}", ctx(&format!("ls -la lists {name}")));
        }

        let d = m.root().join("debug");
        let md = fs::metadata(&d).unwrap();
        assert!(md.is_dir(), "{}", ctx("debug is a directory"));
        assert_eq!(md.permissions().mode() & 0o7777, 0o555, "{}", ctx("debug/ is 0555"));
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, FILES, "{}", ctx("debug/ lists its four files"));
        for f in FILES {
            let p = d.join(f);
            let md = fs::metadata(&p).unwrap();
            assert!(md.is_file(), "{}", ctx(&format!("{f} is a regular file")));
            assert_eq!(md.permissions().mode() & 0o7777, 0o444, "{}", ctx(&format!("{f} is 0444")));
            assert!(md.len() > 2, "{}", ctx(&format!("{f}: stat gives the size of a fresh render")));
            assert_eq!(md.uid(), fs::metadata(m.root()).unwrap().uid(), "{}", ctx("owned like the root"));
            let v = doc(&m, f);
            assert!(v.as_object().is_some(), "{}", ctx(&format!("{f} is a JSON object")));
        }
        assert_errno(fs::metadata(d.join("nope.json")), libc::ENOENT, &ctx("an unknown name"));

        // Read-only: EROFS inside, EXDEV across sections, EACCES for the root's names.
        let health = d.join("health.json");
        fs::write(m.path("a"), b"x").unwrap();
        assert_errno(fs::write(&health, b"{}"), libc::EROFS, &ctx("overwrite health.json"));
        assert_errno(OpenOptions::new().append(true).open(&health), libc::EROFS, &ctx("open for append"));
        assert_errno(OpenOptions::new().read(true).write(true).open(&health), libc::EROFS, &ctx("open read-write"));
        assert_errno(File::create(d.join("new.json")), libc::EROFS, &ctx("create in debug/"));
        assert_errno(fs::create_dir(d.join("dir")), libc::EROFS, &ctx("mkdir in debug/"));
        assert_errno(symlink("health.json", d.join("s")), libc::EROFS, &ctx("symlink in debug/"));
        assert_errno(fs::remove_file(d.join("views.json")), libc::EROFS, &ctx("unlink in debug/"));
        assert_errno(fs::rename(d.join("views.json"), d.join("v.json")), libc::EROFS, &ctx("rename in debug/"));
        assert_errno(fs::set_permissions(&health, fs::Permissions::from_mode(0o644)), libc::EROFS, &ctx("chmod"));
        assert_errno(truncate(&health, 0), libc::EROFS, &ctx("truncate"));
        assert_errno(fs::rename(m.path("a"), d.join("a")), libc::EXDEV, &ctx("rename current/a -> debug/a"));
        assert_errno(fs::rename(d.join("views.json"), m.path("v")), libc::EXDEV, &ctx("rename debug/views.json -> current/v"));
        assert_errno(fs::hard_link(m.path("a"), d.join("l")), libc::EXDEV, &ctx("link current/a -> debug/l"));
        assert_errno(fs::remove_dir(&d), libc::EACCES, &ctx("rmdir MNT/debug"));
        assert_eq!(fs::read(m.path("a")).unwrap(), b"x", "{}", ctx("the live file is untouched"));
        let mut names_after: Vec<String> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names_after.sort();
        assert_eq!(names_after, FILES, "{}", ctx("debug/ is as it was"));
        m.stop();
    }
}

both_backends! {
    fn real_tools_read_the_documents(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");
        let health = debug_path(&m, "health.json");
        let h = health.to_str().unwrap();

        let cat = run_tool(Path::new("cat"), &[h]);
        assert_eq!(parse(&m, "health.json", &cat).get("backend").and_then(|b| b.as_str()), Some(backend.as_str()), "{}", ctx("cat"));
        // A reader reading 7 bytes at a time gets one whole document.
        let mut small = Vec::new();
        let mut f = File::open(debug_path(&m, "performance.json")).unwrap();
        let mut buf = [0u8; 7];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            small.extend_from_slice(&buf[..n]);
        }
        parse(&m, "performance.json", &String::from_utf8(small).unwrap());

        match tool("python3") {
            Some(python) => {
                let out = run_tool(&python, &["-c", "import json, sys\nfor p in sys.argv[1:]:\n    d = json.load(open(p))\n    print(type(d).__name__)", h, debug_path(&m, "views.json").to_str().unwrap()]);
                assert_eq!(out, "dict\ndict\n", "{}", ctx("python json.load"));
            }
            None => eprintln!("python3 not installed: skipping its check"),
        }
        match tool("jq") {
            Some(jq) => {
                assert_eq!(run_tool(&jq, &["-r", ".backend", debug_path(&m, "performance.json").to_str().unwrap()]), format!("{backend}\n"), "{}", ctx("jq .backend"));
                assert_eq!(run_tool(&jq, &["-r", ".status", h]), "ok\n", "{}", ctx("jq .status"));
                assert_eq!(run_tool(&jq, &["-r", ".views.history.name", debug_path(&m, "views.json").to_str().unwrap()]), "history\n", "{}", ctx("jq views"));
            }
            None => eprintln!("jq not installed: skipping its check"),
        }
        m.stop();
    }
}

// Both adapters ask for FUSE_HANDLE_KILLPRIV_V2: the kernel then asks a file's
// `security.capability` before its first write only, not before every write (a round
// trip each, 256 for a 256 MiB copy), and leaves set-ID bits to the core
// (`live_tree::set_id_bits_are_dropped_as_on_tmpfs`).
both_backends! {
    fn writes_ask_security_capability_once_per_file(backend: Backend) {
        const WRITES: u64 = 32;
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");
        // A file with content: its writer is served cached, its writes reach the daemon
        // (a writer of an empty file writes it by passthrough, tests/passthrough.rs).
        fs::write(m.path("w"), b"content").unwrap();
        let before = doc(&m, "performance.json");
        let f = OpenOptions::new().write(true).open(m.path("w")).unwrap();
        for i in 0..WRITES {
            f.write_all_at(&[b'a' + (i % 26) as u8; 4096], i * 4096).unwrap();
        }
        drop(f);
        let after = doc(&m, "performance.json");
        let grew = |op| op_count(&after, op) - op_count(&before, op);
        assert_eq!(grew("write"), WRITES, "{}", ctx("every write reached the daemon"));
        assert!(grew("getxattr") <= 1, "{}: {} GETXATTRs for {WRITES} writes", ctx("security.capability asked once"), grew("getxattr"));
        assert_eq!(fs::metadata(m.path("w")).unwrap().len(), WRITES * 4096, "{}", ctx("the size"));
        m.stop();
    }
}

both_backends! {
    fn performance_counts_what_the_mount_served(backend: Backend) {
        const N: u64 = 40;
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");
        fs::write(m.path("f"), b"some bytes").unwrap();
        fs::create_dir(m.path("full")).unwrap();
        fs::write(m.path("full/x"), b"x").unwrap();

        let before = doc(&m, "performance.json");
        assert_eq!(before.get("backend").and_then(|b| b.as_str()), Some(backend.as_str()), "{}", ctx("names its backend"));
        assert!(op_count(&before, "create") >= 2, "{}", ctx("the creates are counted"));

        // N lookups of names the kernel has never seen (each one a LOOKUP), N opens of
        // a file (OPEN is never cached), N rmdirs that fail with ENOTEMPTY.
        for i in 0..N {
            assert_errno(fs::metadata(m.path(&format!("missing-{i}"))), libc::ENOENT, &ctx("stat a missing name"));
            let mut s = String::new();
            File::open(m.path("f")).unwrap().read_to_string(&mut s).unwrap();
            assert_errno(fs::remove_dir(m.path("full")), libc::ENOTEMPTY, &ctx("rmdir a full directory"));
        }
        for _ in 0..N {
            assert_errno(fs::write(debug_path(&m, "views.json"), b"x"), libc::EROFS, &ctx("write to debug/"));
        }

        let after = doc(&m, "performance.json");
        for (op, least) in [("lookup", N), ("open", N), ("rmdir", N)] {
            let (b, a) = (op_count(&before, op), op_count(&after, op));
            assert!(a >= b + least, "{}: {b} -> {a}", ctx(&format!("{op} grew by at least {least}")));
        }
        assert!(num(&after, &["ops", "rmdir", "errnos", "ENOTEMPTY"]) >= N, "{}", ctx("rmdir failures by errno"));
        assert!(num(&after, &["ops", "rmdir", "errors"]) >= N, "{}", ctx("rmdir errors"));
        assert!(errno_total(&after, "EROFS") >= errno_total(&before, "EROFS") + N, "{}", ctx("writes to debug/ failed with EROFS"));
        // Reading debug/ itself is served too: every document read is at least one READ.
        assert!(op_count(&after, "read") > op_count(&before, "read"), "{}", ctx("reads are counted"));
        assert!(num(&after, &["requests"]) > num(&before, &["requests"]));

        // Every operation has the same shape; the order of the figures holds.
        let ops = after.get("ops").and_then(|o| o.as_object()).unwrap();
        for op in ["lookup", "getattr", "open", "read", "write", "release", "readdir", "rmdir", "create"] {
            assert!(ops.contains_key(op), "{}", ctx(&format!("{op} is reported")));
        }
        for (name, o) in ops {
            let count = num(o, &["count"]);
            let figure = |k: &str| o.get(k).and_then(|v| v.as_f64());
            if count == 0 {
                assert!(o.get("p50_us").unwrap().is_null(), "{}", ctx(&format!("{name}: no percentiles without requests")));
                continue;
            }
            let (p50, p90, p99, max) = (figure("p50_us").unwrap(), figure("p90_us").unwrap(), figure("p99_us").unwrap(), figure("max_us").unwrap());
            assert!(0.0 <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{}: {o:?}", ctx(&format!("{name}: p50 <= p90 <= p99 <= max")));
            assert!(num(o, &["errors"]) <= count, "{}", ctx(&format!("{name}: errors <= count")));
        }
        m.stop();
    }
}

both_backends! {
    fn health_follows_the_log_and_is_fresh_on_every_open(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");
        for i in 0..5 {
            fs::write(m.path(&format!("f{i}")), format!("file {i}")).unwrap();
        }
        let seq = head_seq(&m);
        assert_eq!(seq, 10, "{}", ctx("a create and a write per file"));

        // An open handle keeps the document it was opened with.
        let mut held = File::open(debug_path(&m, "health.json")).unwrap();
        let mut first = String::new();
        held.read_to_string(&mut first).unwrap();
        let h = parse(&m, "health.json", &first);
        assert_eq!(h.get("status").and_then(|s| s.as_str()), Some("ok"), "{}: {first}", ctx("status"));
        assert_eq!(num(&h, &["store", "head_seq"]), seq, "{}", ctx("head_seq is the log's last seq"));
        assert_eq!(num(&h, &["store", "durable_seq"]), seq, "{}", ctx("durable after the fsync"));
        assert_eq!(num(&h, &["store", "pending_commit"]), 0, "{}", ctx("nothing pending after the fsync"));
        assert!(num(&h, &["store", "commits"]) >= 1, "{}", ctx("batches were committed"));
        assert!(h.at(&["store", "last_commit"]).and_then(|t| t.as_str()).is_some(), "{}", ctx("last commit time"));
        assert_eq!(h.get("backend").and_then(|b| b.as_str()), Some(backend.as_str()));
        assert_eq!(num(&h, &["pid"]), u64::from(m.pid()), "{}", ctx("the server's pid"));
        assert_eq!(h.get("mountpoint").and_then(|p| p.as_str()), m.root().to_str(), "{}", ctx("mountpoint"));
        assert_eq!(h.at(&["store", "path"]).and_then(|p| p.as_str()), store.to_str(), "{}", ctx("store path"));
        assert!(num(&h, &["inodes", "live"]) >= 6, "{}", ctx("current/ and five files"));
        assert_eq!(num(&h, &["views", "loaded"]), BUILT_IN_VIEWS.len() as u64, "{}", ctx("the built-in views are loaded"));
        assert_eq!(num(&h, &["views", "with_faults"]), 0);
        assert!(h.get("uptime_s").and_then(|u| u.as_f64()).unwrap() >= 0.0);
        assert!(num(&h, &["process", "open_fds"]) > 0 && num(&h, &["process", "threads"]) > 0);

        // Three more files: a new open sees six more events; the held handle does not change.
        for i in 5..8 {
            fs::write(m.path(&format!("f{i}")), format!("file {i}")).unwrap();
        }
        let seq2 = head_seq(&m);
        assert_eq!(seq2, seq + 6, "{}", ctx("three creates and three writes"));
        let h2 = doc(&m, "health.json");
        assert_eq!(num(&h2, &["store", "head_seq"]), seq2, "{}", ctx("a second read is fresh"));
        assert_eq!(num(&h2, &["store", "durable_seq"]), seq2);
        let mut again = vec![0u8; first.len()];
        held.read_exact_at(&mut again, 0).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), first, "{}", ctx("an open handle reads the document it opened"));
        // Its end (lseek asks the attributes through the handle) is that document's end.
        assert_eq!(held.seek(SeekFrom::End(0)).unwrap(), first.len() as u64, "{}", ctx("SEEK_END of an open handle"));
        drop(held);

        // Handles are counted while open.
        let a = File::open(m.path("f0")).unwrap();
        let b = File::open(m.path("f1")).unwrap();
        let h3 = doc(&m, "health.json");
        assert!(num(&h3, &["open_handles"]) >= 2, "{}", ctx("open handles"));
        let c = doc(&m, "cache_stats.json");
        assert!(num(&c, &["handles", "files"]) >= 2, "{}", ctx("file handles in cache_stats"));
        drop((a, b));
        m.stop();
    }
}

both_backends! {
    fn cache_stats_and_views_describe_the_host(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        let ctx = |what: &str| format!("[{backend}] {what}");
        fs::write(m.path("f"), b"one").unwrap();
        let seq = head_seq(&m);

        let v = doc(&m, "views.json");
        assert_eq!(num(&v, &["loaded"]), BUILT_IN_VIEWS.len() as u64, "{}", ctx("the built-in views"));
        let history = v.at(&["views", "history"]).unwrap_or_else(|| panic!("{}: {v:?}", ctx("views.json lists history")));
        assert!(num(history, &["generation"]) >= 1, "{}", ctx("history has a generation"));
        assert!(!history.get("version").and_then(|s| s.as_str()).unwrap().is_empty());
        assert!(history.get("origin").and_then(|s| s.as_str()).unwrap().contains("history"));
        assert_eq!(num(history, &["faults"]), 0);
        assert!(history.get("last_error").unwrap().is_null());

        let c = doc(&m, "cache_stats.json");
        assert_eq!(c.at(&["kernel", "entry_ttl_s"]).and_then(|t| t.as_f64()), Some(10.0), "{}", ctx("the entry TTL"));
        assert!(num(&c, &["kernel", "lookups_positive"]) >= 1);
        // views.json was opened before (cache_stats.json is rendered within its own open).
        assert!(num(&c, &["kernel", "file_opens", "direct_io"]) >= 1, "{}", ctx("debug/ opens bypass the page cache"));
        assert!(num(&c, &["inodes", "files"]) >= 1);
        // View paths are kept for the references to them: the views' directories the
        // root's listing handed out, at most.
        assert!(num(&c, &["inodes", "view_paths"]) <= BUILT_IN_VIEWS.len() as u64 + 1, "{}", ctx("view paths"));
        assert_eq!(num(&c, &["inodes", "view_paths_held"]), 0, "{}", ctx("no view file open, no listing read"));
        assert!(num(&c, &["inodes", "view_kernel_refs"]) >= num(&c, &["inodes", "view_paths_kernel_referenced"]));
        assert!(c.get("policy").unwrap().is_null(), "{}", ctx("no policy, no policy tables"));
        assert_eq!(num(&c, &["scratch", "files"]), 0, "{}", ctx("nothing is being written"));
        let misses = num(&c, &["history_trees", "misses"]);
        let negative = num(&c, &["kernel", "negative_entries_served"]);

        // A missing name is answered with a negative entry; a past tree is folded once.
        assert_errno(fs::metadata(m.path("not-there")), libc::ENOENT, &ctx("stat a missing name"));
        assert_eq!(fs::read(m.root().join(format!("history/@{seq}/f"))).unwrap(), b"one");
        // A file held open for writing has a scratch copy.
        let mut w = OpenOptions::new().write(true).open(m.path("f")).unwrap();
        std::io::Write::write_all(&mut w, b"two").unwrap();
        let c2 = doc(&m, "cache_stats.json");
        assert!(num(&c2, &["kernel", "negative_entries_served"]) > negative, "{}", ctx("negative entries are counted"));
        assert!(num(&c2, &["history_trees", "misses"]) > misses, "{}", ctx("the history tree cache missed"));
        assert!(num(&c2, &["history_trees", "kept"]) >= 1, "{}", ctx("and kept the tree"));
        assert_eq!(num(&c2, &["handles", "writable"]), 1, "{}", ctx("one writer"));
        // A stat of a stream renders its log, kept for the caller.
        let stream_logs = num(&c2, &["stream_logs", "kept"]);
        assert_eq!(num(&c2, &["stream_logs", "capacity"]), 256);
        assert!(fs::metadata(m.root().join("streams/all")).unwrap().len() > 0);
        let c3 = doc(&m, "cache_stats.json");
        assert_eq!(num(&c3, &["stream_logs", "kept"]), stream_logs + 1, "{}", ctx("a stream log is kept"));
        assert!(num(&c3, &["stream_logs", "held_bytes"]) > 0, "{}", ctx("it holds its newest bytes"));
        assert_eq!(num(&c2, &["scratch", "files"]), 1, "{}", ctx("its scratch copy"));
        // history/@seq/f is immutable: the view host kept its answers (getattr at least).
        assert!(num(&c2, &["view_answers", "inserts"]) >= 1, "{}", ctx("immutable answers are kept"));
        assert!(num(&c2, &["view_answers", "capacity_bytes"]) > 0);
        drop(w);
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(120)]
    fn a_faulting_view_shows_in_views_and_health(backend: Backend) {
        let (_d, views) = temp_dir("lhfs-views-");
        let bytes = lighthouse_fs::views::builtin::component("bad_panic").expect("the bad_panic test component is built");
        fs::write(views.join("bad_panic.wasm"), bytes).unwrap();
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap()]);
        let ctx = |what: &str| format!("[{backend}] {what}");
        let order: Vec<String> = fs::read_dir(m.root()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(order, root_listing(&["bad-panic"]), "{}", ctx("native sections first, then the views by name"));

        let h = doc(&m, "health.json");
        assert_eq!(h.get("status").and_then(|s| s.as_str()), Some("ok"), "{}", ctx("no fault yet"));
        assert_errno(fs::read(m.root().join("bad-panic/boom")), libc::EIO, &ctx("the view traps"));

        let v = doc(&m, "views.json");
        assert_eq!(num(&v, &["loaded"]), BUILT_IN_VIEWS.len() as u64 + 1);
        assert_eq!(num(&v, &["with_faults"]), 1, "{}", ctx("one view has faulted"));
        let bad = v.at(&["views", "bad-panic"]).unwrap();
        assert!(num(bad, &["faults"]) >= 1, "{}", ctx("its faults"));
        let last = bad.get("last_error").and_then(|e| e.as_str()).unwrap_or_else(|| panic!("{}: {bad:?}", ctx("its last error")));
        assert!(last.contains("/boom"), "{}: {last}", ctx("the last error names the path"));
        assert_eq!(num(&v, &["views", "history", "faults"]), 0);

        let h = doc(&m, "health.json");
        assert_eq!(h.get("status").and_then(|s| s.as_str()), Some("degraded"), "{}", ctx("a faulted view degrades the mount"));
        let problems = h.get("problems").and_then(|p| p.as_array()).unwrap();
        assert!(problems.iter().any(|p| p.as_str().unwrap().contains("bad-panic")), "{}: {problems:?}", ctx("the problem names the view"));
        assert_eq!(num(&h, &["views", "with_faults"]), 1);
        let perf = doc(&m, "performance.json");
        assert!(num(&perf, &["ops", "read", "errnos", "EIO"]) >= 1, "{}", ctx("the EIO is counted"));
        m.stop();
    }
}
