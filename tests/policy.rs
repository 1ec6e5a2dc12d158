//! `--policy` through a real mount, on both backends, with real processes under other
//! uids and gids (forked children that drop privileges, each in a session of its own):
//! what each agent may do, EACCES without an event for what it may not, token binding
//! (rights gained, kept apart per session, lost at expiry; a wrong MAC refused), rate
//! limits that trip and recover, and each case in the audit log and in `streams/audit`.

#[macro_use]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::metrics::*;
use common::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const BUILDER_SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const AUDITOR_SECRET: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
/// Unlisted: the default agent, which may do nothing here.
const NOBODY_UID: u32 = 4500;
const WRITER_GID: u32 = 4200;
const THROTTLED_UID: u32 = 4300;
const REVIEWER_UID: u32 = 65534;

fn policy_text() -> String {
    format!(
        r#"
[default]
permissions = []

[[agents]]
name = "operator"
uids = [0]
permissions = ["*:write"]

[[agents]]
name = "reviewer"
uids = [{REVIEWER_UID}]
permissions = ["current:read", "history:read"]

[[agents]]
name = "writer"
gids = [{WRITER_GID}]
permissions = ["current:write"]

[[agents]]
name = "builder"
secret = "{BUILDER_SECRET}"
permissions = ["current:write"]

[[agents]]
name = "auditor"
secret = "{AUDITOR_SECRET}"
permissions = ["current:read", "streams:read"]

[[agents]]
name = "throttled"
uids = [{THROTTLED_UID}]
permissions = ["current:read"]
ops_per_sec = 20

[auth]
binding_ttl_secs = 3
"#
    )
}

/// A store and a policy file (with the auditor's secret in a file any uid may read).
struct Setup {
    _dir: tempfile::TempDir,
    store: PathBuf,
    policy: PathBuf,
    auditor_key: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let policy = dir.path().join("policy.toml");
    fs::write(&policy, policy_text()).unwrap();
    let auditor_key = dir.path().join("auditor.key");
    fs::write(&auditor_key, AUDITOR_SECRET).unwrap();
    fs::set_permissions(&auditor_key, fs::Permissions::from_mode(0o644)).unwrap();
    Setup {
        store: dir.path().join("store"),
        _dir: dir,
        policy,
        auditor_key,
    }
}

fn start(backend: Backend, s: &Setup, extra: &[&str]) -> Mount {
    let mut args = vec![
        "--policy",
        s.policy.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    args.extend_from_slice(extra);
    Mount::start_with(backend, &s.store, &args)
}

/// "ok" or the errno's name.
fn outcome<T>(r: std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        // `errno_name` says "EACCES(13)": the name is enough here.
        Err(e) => errno_name(errno_of(&e))
            .split('(')
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Run `f` in a child as `uid`/`gid`, in a session of its own (`setsid`), and return the
/// lines it wrote down: one per step, so the parent can compare them at once.
fn session_as(uid: u32, gid: u32, f: impl FnOnce(&mut Vec<String>)) -> Vec<String> {
    let out = tempfile::NamedTempFile::new().unwrap();
    fs::set_permissions(out.path(), fs::Permissions::from_mode(0o666)).unwrap();
    let path = out.path().to_path_buf();
    let result = run_as(uid, gid, move || {
        nix::unistd::setsid()?;
        let mut lines = Vec::new();
        f(&mut lines);
        fs::write(&path, lines.join("\n"))
    });
    assert_eq!(result, Ok(()), "the child as uid {uid} could not report");
    fs::read_to_string(out.path())
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Answer a challenge of `.auth` as `agent` with `secret_hex` (the raw protocol).
fn bind(root: &Path, agent: &str, secret_hex: &str) -> std::io::Result<()> {
    let control = root.join(".auth");
    let mut challenge = String::new();
    fs::File::open(&control)?.read_to_string(&mut challenge)?;
    let nonce = challenge
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(secret_hex).unwrap()).unwrap();
    mac.update(format!("lighthouse-fs-auth v1\n{nonce}\n{agent}").as_bytes());
    let mac = hex::encode(mac.finalize().into_bytes());
    OpenOptions::new()
        .write(true)
        .open(&control)?
        .write_all(format!("{agent} {mac}\n").as_bytes())
}

/// The store's last event, read through the mount's debug/health.json (as root).
fn head_seq(m: &Mount) -> u64 {
    let text = fs::read_to_string(m.root().join("debug/health.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["store"]["head_seq"].as_u64().unwrap()
}

/// The audit lines of the server's JSON log: (agent, op, path, outcome).
fn audit_lines(m: &Mount) -> Vec<(String, String, String, String)> {
    m.stderr()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["fields"]["message"] == "audit")
        .map(|e| {
            let f = &e["fields"];
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("agent"), s("op"), s("path"), s("outcome"))
        })
        .collect()
}

/// The audit stream `streams/audit@1` as read now (non-blocking, to the first EAGAIN):
/// (agent, op, path, outcome) per line.
fn audit_stream(m: &Mount) -> Vec<(String, String, String, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(m.root().join("streams/audit@1"))
        .unwrap();
    let mut text = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) => panic!("reading streams/audit: {e}"),
        }
    }
    String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("agent"), s("op"), s("path"), s("outcome"))
        })
        .collect()
}

/// Is the decision in the log's audit lines, and in the audit stream?
fn audited(m: &Mount, agent: &str, op: &str, path: &str, outcome: &str) -> bool {
    let is = |(a, o, p, out): &(String, String, String, String)| {
        a == agent && o == op && p == path && out.starts_with(outcome)
    };
    let streamed = audit_stream(m).iter().any(is);
    // The log line is written by the server's stderr writer and read from a pipe: it may
    // trail the stream's record by a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut logged = audit_lines(m).iter().any(is);
    while logged != streamed && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        logged = audit_lines(m).iter().any(is);
    }
    assert_eq!(
        logged, streamed,
        "{agent} {op} {path} {outcome}: in the log {logged}, in streams/audit {streamed}"
    );
    logged
}

both_backends! {
    fn each_agent_gets_its_permissions(backend: Backend) {
        let s = setup();
        let m = start(backend, &s, &[]);
        let root = m.root().to_path_buf();
        // The operator (root) sets the scene.
        fs::write(m.path("doc"), b"the doc").unwrap();
        fs::create_dir(m.path("dir")).unwrap();
        fs::write(m.path("readonly"), b"ro").unwrap();
        fs::set_permissions(m.path("readonly"), fs::Permissions::from_mode(0o444)).unwrap();
        fs::write(m.path("open"), b"rw").unwrap();
        fs::set_permissions(m.path("open"), fs::Permissions::from_mode(0o666)).unwrap();
        // The writers' group may add names to current/ (the mode bits apply too).
        lchown(&m.current(), 0, WRITER_GID).unwrap();
        fs::set_permissions(m.current(), fs::Permissions::from_mode(0o775)).unwrap();
        File::open(m.current()).unwrap().sync_all().unwrap();
        let before = head_seq(&m);

        // A reader of the audit stream waits for news; the first denial wakes it.
        let stream = root.join("streams/audit");
        let waiting = std::thread::spawn(move || {
            let mut f = fs::File::open(stream).unwrap();
            let mut buf = vec![0u8; 65536];
            let n = f.read(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        });
        std::thread::sleep(Duration::from_millis(200));

        let r = root.clone();
        let seen = session_as(REVIEWER_UID, REVIEWER_UID, move |out| {
            let c = r.join("current");
            out.push(outcome(fs::read(c.join("doc"))));
            out.push(outcome(fs::read_dir(c.join("dir"))));
            out.push(outcome(fs::write(c.join("doc"), b"x")));
            out.push(outcome(fs::write(c.join("open"), b"x")));
            out.push(outcome(fs::write(c.join("new"), b"x")));
            out.push(outcome(fs::create_dir(c.join("newdir"))));
            out.push(outcome(fs::remove_file(c.join("doc"))));
            out.push(outcome(fs::rename(c.join("doc"), c.join("moved"))));
            out.push(outcome(fs::read_dir(r.join("history"))));
            out.push(outcome(fs::read_dir(r.join("streams"))));
            out.push(outcome(fs::read(r.join("debug/health.json"))));
            out.push(outcome(fs::read_dir(&r)));
            out.push(outcome(fs::metadata(r.join("streams"))));
        });
        let want = ["ok", "ok", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES", "EACCES", "ok", "EACCES", "EACCES", "ok", "ok"];
        assert_eq!(seen, want, "[{backend}] reviewer (uid {REVIEWER_UID}: current and history, read)");
        let woken = waiting.join().unwrap();
        assert!(woken.starts_with("{\"seq\":1,") && woken.contains("\"agent\":\"reviewer\""), "{woken}");

        let r = root.clone();
        let seen = session_as(NOBODY_UID, NOBODY_UID, move |out| {
            let c = r.join("current");
            out.push(outcome(fs::read(c.join("doc"))));
            out.push(outcome(fs::read_dir(&c)));
            out.push(outcome(fs::write(c.join("new"), b"x")));
            out.push(outcome(fs::read_dir(&r)));
        });
        assert_eq!(seen, ["EACCES", "EACCES", "EACCES", "ok"], "[{backend}] an unlisted uid: the default, nothing");
        assert_eq!(head_seq(&m), before, "[{backend}] denied requests left no event");

        // By gid; and the policy and the mode bits both decide.
        let r = root.clone();
        let seen = session_as(4201, WRITER_GID, move |out| {
            let c = r.join("current");
            out.push(outcome(fs::write(c.join("w"), b"written")));
            out.push(outcome(fs::read(c.join("w"))));
            out.push(outcome(OpenOptions::new().write(true).open(c.join("readonly")).and_then(|mut f| f.write_all(b"RO"))));
            out.push(outcome(fs::write(c.join("open"), b"by the writer")));
            out.push(outcome(fs::read_dir(r.join("history"))));
        });
        assert_eq!(seen, ["ok", "ok", "EACCES", "ok", "EACCES"], "[{backend}] writer (gid {WRITER_GID}: current, write)");
        assert_eq!(fs::read(m.path("readonly")).unwrap(), b"ro", "mode 0444: the policy's write does not override it");

        // Events name their agents.
        File::open(m.current()).unwrap().sync_all().unwrap();
        let log = cli(["log", "--json", "--store", s.store.to_str().unwrap()]);
        let agents: Vec<(String, String, String)> = log
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|e| (e["op"].as_str().unwrap().to_owned(), e["path"].as_str().unwrap().to_owned(), e["agent"].as_str().unwrap_or("-").to_owned()))
            .collect();
        assert!(agents.contains(&("create".into(), "/doc".into(), "operator".into())), "{agents:?}");
        assert!(agents.contains(&("create".into(), "/w".into(), "writer".into())), "{agents:?}");
        assert!(agents.contains(&("write".into(), "/open".into(), "writer".into())), "{agents:?}");
        assert!(!agents.contains(&("write".into(), "/readonly".into(), "writer".into())), "{agents:?}");

        // Each denial of the policy is audited with its agent, operation and path (the
        // kernel's own, by the mode bits, never reach the filesystem).
        assert!(audited(&m, "reviewer", "open", "/current/open", "denied"), "{:#?}", audit_lines(&m));
        assert!(audited(&m, "reviewer", "opendir", "/streams", "denied"));
        assert!(audited(&m, "default", "open", "/current/doc", "denied"));
        m.stop();
    }
}

/// `getxattr` of `name` on `p` into a 64-byte buffer.
fn get_xattr(p: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let (c, n) = (cpath(p), std::ffi::CString::new(name).unwrap());
    let mut buf = [0u8; 64];
    let got =
        unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if got < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(buf[..got as usize].to_vec())
}

both_backends! {
    fn extended_attributes_need_read_and_write(backend: Backend) {
        let s = setup();
        let m = start(backend, &s, &[]);
        let root = m.root().to_path_buf();
        fs::write(m.path("doc"), b"the doc").unwrap();
        // Writable by all, so that the policy is what tells the agents apart.
        fs::set_permissions(m.path("doc"), fs::Permissions::from_mode(0o666)).unwrap();
        lsetxattr(&m.path("doc"), "user.k", b"v").unwrap();
        let r = root.clone();
        let seen = session_as(REVIEWER_UID, REVIEWER_UID, move |out| {
            let d = r.join("current/doc");
            out.push(outcome(get_xattr(&d, "user.k")));
            out.push(outcome(lsetxattr(&d, "user.k", b"x")));
            let (c, n) = (cpath(&d), std::ffi::CString::new("user.k").unwrap());
            out.push(outcome(check(unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) })));
        });
        assert_eq!(seen, ["ok", "EACCES", "EACCES"], "[{backend}] reviewer: get, not set or remove");
        let r = root.clone();
        let seen = session_as(NOBODY_UID, NOBODY_UID, move |out| {
            out.push(outcome(get_xattr(&r.join("current/doc"), "user.k")));
        });
        assert_eq!(seen, ["EACCES"], "[{backend}] an agent without read may not get");
        let r = root.clone();
        let seen = session_as(4201, WRITER_GID, move |out| {
            out.push(outcome(lsetxattr(&r.join("current/doc"), "user.k", b"by the writer")));
        });
        assert_eq!(seen, ["ok"], "[{backend}] writer: current:write, and the mode bits allow it");
        assert_eq!(get_xattr(&m.path("doc"), "user.k").unwrap(), b"by the writer");
        assert!(audited(&m, "reviewer", "setxattr", "/current/doc", "denied"), "{:#?}", audit_lines(&m));
        assert!(audited(&m, "reviewer", "removexattr", "/current/doc", "denied"));
        m.stop();
    }
}

both_backends! {
    fn token_binding_gives_rights_per_session_until_expiry(backend: Backend) {
        let s = setup();
        let m = start(backend, &s, &[]);
        fs::write(m.path("doc"), b"the doc").unwrap();
        // Every uid may add names (the mode bits apply too): the policy tells them apart.
        fs::set_permissions(m.current(), fs::Permissions::from_mode(0o777)).unwrap();
        let root = m.root().to_path_buf();
        let auditor_key = s.auditor_key.clone();
        let seen = session_as(NOBODY_UID, NOBODY_UID, move |out| {
            let c = root.join("current");
            out.push(outcome(fs::write(c.join("x"), b"1")));
            out.push(outcome(bind(&root, "builder", BUILDER_SECRET)));
            out.push(outcome(fs::write(c.join("x"), b"1")));
            // A wrong MAC is refused; the binding made before stands.
            out.push(outcome(bind(&root, "builder", AUDITOR_SECRET)));
            out.push(outcome(bind(&root, "nosuchagent", BUILDER_SECRET)));
            out.push(outcome(fs::write(c.join("x2"), b"2")));
            // Another session of the same uid, bound to another agent (with the CLI), is
            // told apart: it may read but not write; this session still may.
            let other = run_as(NOBODY_UID, NOBODY_UID, || {
                nix::unistd::setsid()?;
                let status = std::process::Command::new(bin())
                    .args(["auth", root.to_str().unwrap(), "--agent", "auditor", "--secret-file", auditor_key.to_str().unwrap()])
                    .stdout(std::process::Stdio::null())
                    .status()?;
                if !status.success() {
                    return Err(std::io::Error::from_raw_os_error(libc::EPROTO));
                }
                fs::read(c.join("doc"))?;
                match fs::write(c.join("y"), b"y") {
                    Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
                    Err(e) => Err(e),
                    Ok(()) => Err(std::io::Error::from_raw_os_error(libc::EEXIST)),
                }
            });
            out.push(format!("{other:?}"));
            out.push(outcome(fs::write(c.join("x3"), b"3")));
            // The binding runs out (binding_ttl_secs = 3).
            std::thread::sleep(Duration::from_millis(3500));
            out.push(outcome(fs::write(c.join("x4"), b"4")));
        });
        assert_eq!(
            seen,
            ["EACCES", "ok", "ok", "EACCES", "EACCES", "ok", "Ok(())", "ok", "EACCES"],
            "[{backend}] unlisted uid {NOBODY_UID}: bound to builder, a wrong MAC, another session bound to auditor, expiry"
        );
        assert_eq!(fs::read(m.path("x")).unwrap(), b"1");
        assert!(!m.path("y").exists() && !m.path("x4").exists());
        assert!(audited(&m, "builder", "write", "/.auth", "bound: session"), "{:#?}", audit_lines(&m));
        assert!(audited(&m, "auditor", "write", "/.auth", "bound: session"));
        assert!(audited(&m, "builder", "write", "/.auth", "refused: wrong MAC"));
        assert!(audited(&m, "default", "write", "/.auth", "refused: no agent of that name") || audited(&m, "builder", "write", "/.auth", "refused: no agent of that name"));
        assert!(audited(&m, "auditor", "create", "/current/y", "denied"));
        // Without read on current/, the lookup of the new name is what is denied.
        assert!(audited(&m, "default", "lookup", "/current/x4", "denied"));
        // Secrets and MACs never reach the log.
        let log = m.stderr();
        assert!(!log.contains(BUILDER_SECRET) && !log.contains(AUDITOR_SECRET));
        // The policy's tables in cache_stats.json: the two bindings (the expired one is
        // forgotten later), the sessions of the callers, the audit records kept.
        let text = fs::read_to_string(m.root().join("debug/cache_stats.json")).unwrap();
        let c = json::parse(&text).unwrap();
        let n = |k: &str| c.at(&["policy", k]).and_then(|v| v.as_u64()).unwrap_or_else(|| panic!("policy.{k} in {text}"));
        assert_eq!(n("bindings"), 2, "[{backend}] {text}");
        assert!(n("challenges") <= 1, "[{backend}] only the one read for an unknown agent waits out its TTL: {text}");
        assert!((1..=n("sessions_capacity")).contains(&n("sessions_cached")), "[{backend}] {text}");
        assert!((6..=n("audit_capacity")).contains(&n("audit_kept")), "[{backend}] {text}");
        m.stop();
    }
}

both_backends! {
    fn rate_limits_trip_and_recover(backend: Backend) {
        let s = setup();
        let m = start(backend, &s, &["--metrics", "127.0.0.1:0"]);
        fs::write(m.path("doc"), b"the doc").unwrap();
        let root = m.root().to_path_buf();
        let seen = session_as(THROTTLED_UID, THROTTLED_UID, move |out| {
            let doc = root.join("current/doc");
            let (mut ok, mut limited) = (0, 0);
            for _ in 0..200 {
                match fs::File::open(&doc) {
                    Ok(_) => ok += 1,
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => limited += 1,
                    Err(e) => out.push(format!("unexpected {e}")),
                }
            }
            // A second's budget opens several times (an open is one request or a few: the
            // open, and a lookup or getattr when the kernel's copies are stale).
            out.push(format!("ok>=5:{} limited:{}", ok >= 5, limited > 0));
            std::thread::sleep(Duration::from_millis(1500));
            out.push(outcome(fs::read(&doc)));
        });
        assert_eq!(seen, ["ok>=5:true limited:true", "ok"], "[{backend}] 20 operations a second");
        let metrics = samples(&get(&metrics_addr(&m), "/metrics").1);
        let limited = value(&metrics, "lighthouse_fs_rate_limited_total", &["agent=\"throttled\"", "limit=\"agent_ops\""]);
        assert!(limited >= 1.0, "[{backend}] the metric counts refusals: {limited}");
        assert!(audited(&m, "throttled", "open", "/current/doc", "limited: over the agent"), "{:#?}", audit_lines(&m));
        // The log takes a few lines a second per agent, not one per refusal.
        let lines = audit_lines(&m).iter().filter(|l| l.0 == "throttled" && l.3.starts_with("limited")).count();
        assert!(lines <= 40 && (lines as f64) < limited, "[{backend}] {lines} audit lines for {limited} refusals");
        m.stop();
    }
}

/// A policy with a mistake stops the mount before anything is mounted, naming it.
#[test]
fn a_bad_policy_is_refused_with_its_reason() {
    run_test(
        "a_bad_policy_is_refused_with_its_reason",
        DEFAULT_TIMEOUT,
        || {
            let s = setup();
            fs::write(
                &s.policy,
                "[[agents]]\nname = \"reviewer\"\nuids = [1]\npermissions = [\"current:reed\"]\n",
            )
            .unwrap();
            let mnt = tempfile::tempdir().unwrap();
            let out = cli([
                "mount",
                mnt.path().to_str().unwrap(),
                "--store",
                s.store.to_str().unwrap(),
                "--policy",
                s.policy.to_str().unwrap(),
            ]);
            assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
            assert!(
                out.stderr.contains("agent \"reviewer\"") && out.stderr.contains("current:reed"),
                "{}",
                out.stderr
            );
            assert!(!is_mounted(mnt.path()));
        },
    );
}
