//! `lighthouse-fs views new`, the plugin author's first step, end to end: the crate it
//! writes builds outside this repository (`cargo build --release --target
//! wasm32-wasip2`, with the lock file and SDK it carries), its own unit tests pass
//! natively, `views check` accepts the component, and a mount serves its files, on both
//! backends — from `--views DIR`, and with `--watch` when the built `.wasm` lands in the
//! watched directory while mounted.
//!
//! The crate is scaffolded and built once per test run, at a fixed place outside the
//! repository, with `CARGO_TARGET_DIR=target/scaffold-build`, so a second run reuses the
//! dependencies' artifacts.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The view the tests scaffold (a `-` in it: the component file is `my_view.wasm`).
const NAME: &str = "my-view";
const WASM_STEM: &str = "my_view";
/// One cargo command (a cold build of the SDK's dependencies takes about a minute here).
const CARGO_TIMEOUT: Duration = Duration::from_secs(600);
/// A mounted test may first wait for the build and the crate's own tests.
const MOUNTED_TIMEOUT_SECS: u64 = 2 * 600 + 120;
/// How long a component dropped into a watched directory may take to be served.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The component built from a freshly scaffolded crate (built once per test run).
fn component() -> &'static [u8] {
    static BUILT: OnceLock<Vec<u8>> = OnceLock::new();
    BUILT.get_or_init(scaffold_build_and_test)
}

/// `views new` into a directory outside the repository, then the crate's own tests and
/// its wasm build; returns the component's bytes. The crate's directory is removed.
fn scaffold_build_and_test() -> Vec<u8> {
    let parent = std::env::temp_dir().join("lighthouse-fs-scaffold-test");
    // A fixed place, so the crate's path (part of cargo's artifact hashes) is the same on
    // every run and target/scaffold-build does not grow.
    let _ = fs::remove_dir_all(&parent);
    fs::create_dir_all(&parent).unwrap();
    let _cleanup = RemoveOnDrop(parent.clone());

    let out = cli([
        "views".as_ref(),
        "new".as_ref(),
        NAME.as_ref(),
        parent.as_os_str(),
    ]);
    let stdout = out.ok();
    let wasm_rel = format!("target/wasm32-wasip2/release/{WASM_STEM}.wasm");
    for next in [
        "cargo build --release --target wasm32-wasip2",
        &format!("lighthouse-fs views check {wasm_rel}"),
        "--watch",
    ] {
        assert!(
            stdout.contains(next),
            "views new says what to do next ({next}):\n{stdout}"
        );
    }
    let krate = parent.join(NAME);
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "rust-toolchain.toml",
        ".gitignore",
        "src/lib.rs",
        "vendor/lighthouse-view-sdk/Cargo.toml",
        "vendor/lighthouse-view-sdk/src/lib.rs",
        "vendor/lighthouse-view-sdk/src/tree.rs",
        "vendor/lighthouse-view-sdk/wit/lighthouse-fs.wit",
    ] {
        assert!(krate.join(file).is_file(), "views new wrote {file}");
    }
    // Nothing in the crate points back into this repository.
    let repo_path = repo().to_str().unwrap();
    for (rel, text) in files_under(&krate) {
        assert!(!text.contains(repo_path), "{rel} mentions {repo_path}");
    }

    cargo(&krate, &["test"]);
    cargo(&krate, &["build", "--release", "--target", "wasm32-wasip2"]);

    // The build kept the versions guest-ops is built with (cargo only pruned the lock).
    let ours = locked_versions(&krate.join("Cargo.lock"));
    let guest = locked_versions(&repo().join("guest-ops/Cargo.lock"));
    let strays: Vec<_> = ours.difference(&guest).collect();
    assert!(
        strays.is_empty(),
        "resolved outside guest-ops' lock: {strays:?}"
    );
    assert!(
        ours.contains(&("wit-bindgen".into(), "0.57.1".into())),
        "{ours:?}"
    );

    let wasm = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{WASM_STEM}.wasm"));
    let check = cli(["views".as_ref(), "check".as_ref(), wasm.as_os_str()]);
    let said = check.ok();
    assert!(
        said.contains(&format!("view \"{NAME}\" version 0.1.0")),
        "{said}"
    );
    fs::read(&wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()))
}

fn target_dir() -> PathBuf {
    repo().join("target/scaffold-build")
}

/// Runs `cargo ARGS` in `dir` as a user would (none of this test run's build settings),
/// with the shared target dir; panics with its output on failure or after
/// [`CARGO_TIMEOUT`] (killing its whole process group).
fn cargo(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // As host/build.rs does for guest-ops: no outer-build state may leak into this build.
    const KEEP_PREFIXES: &[&str] = &["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTR"];
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let cargo_state = (key.starts_with("CARGO") || key.starts_with("__CARGO"))
            && !KEEP_PREFIXES.iter().any(|p| key.starts_with(p));
        let flags = [
            "RUSTFLAGS",
            "RUSTDOCFLAGS",
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
        ];
        if cargo_state || flags.contains(&key.as_str()) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir());
    let started = Instant::now();
    let child = cmd.spawn().expect("run cargo");
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    let output: Output = match rx.recv_timeout(CARGO_TIMEOUT) {
        Ok(output) => output.expect("cargo output"),
        Err(_) => {
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            panic!(
                "cargo {args:?} in {} ran past {CARGO_TIMEOUT:?}",
                dir.display()
            );
        }
    };
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed ({}):\n{}\n{}",
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("cargo {args:?}: {:.1} s", started.elapsed().as_secs_f64());
}

/// (name, version) of every package from a registry in a Cargo.lock.
fn locked_versions(lock: &Path) -> BTreeSet<(String, String)> {
    let text = fs::read_to_string(lock).unwrap();
    text.split("[[package]]")
        .filter(|block| block.contains("\nsource = "))
        .map(|block| {
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim_matches('"').to_string())
                    .unwrap_or_else(|| panic!("no {key} in {block}"))
            };
            (field("name = "), field("version = "))
        })
        .collect()
}

/// Every file below `dir` as (relative path, text).
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the component into `views` as a build tool would: a temporary name, then a
/// rename, so a watcher only ever sees the whole file.
fn install(views: &Path, bytes: &[u8]) {
    let part = views.join(format!(".{NAME}.part"));
    fs::write(&part, bytes).unwrap();
    fs::rename(&part, views.join(format!("{NAME}.wasm"))).unwrap();
}

/// The scaffolded view's files, read through the mount, as the template defines them.
fn assert_serves_the_scaffolded_view(m: &Mount, store: &Path) {
    let backend = m.backend();
    let dir = m.root().join(NAME);
    let mut names = listing(&dir);
    names.sort();
    assert_eq!(names, ["head", "hello.txt", "whoami"], "[{backend}]");
    assert_eq!(
        fs::read(dir.join("hello.txt")).unwrap(),
        format!("Hello from {NAME}!\n").as_bytes()
    );
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!(
        fs::read_to_string(dir.join("whoami")).unwrap(),
        format!("uid {uid} gid {gid}\n")
    );
    // `head` follows the log: the newest seq, whatever the log holds now.
    fs::write(m.path("note.txt"), b"a change").unwrap();
    fs::File::open(m.current()).unwrap().sync_all().unwrap();
    let head = log_json(store, None)
        .last()
        .and_then(|e| e.get("seq")?.as_u64())
        .unwrap();
    assert!(head > 0);
    assert_eq!(
        fs::read_to_string(dir.join("head")).unwrap(),
        format!("{head}\n"),
        "[{backend}]"
    );
    assert_errno(
        fs::write(dir.join("hello.txt"), b"x"),
        libc::EROFS,
        &format!("[{backend}] write"),
    );
}

#[test]
fn views_new_refuses_bad_names_and_non_empty_targets() {
    let (_t, parent) = temp_dir("lhfs-scaffold-");
    let new = |name: &str| {
        cli([
            "views".as_ref(),
            "new".as_ref(),
            name.as_ref(),
            parent.as_os_str(),
        ])
    };
    new("debug").assert_error(&["debug", "host serves that directory"]);
    new("a/b").assert_error(&["contains `/`"]);
    new("My View").assert_error(&["lowercase"]);
    new("fn").assert_error(&["reserve"]);
    assert_eq!(
        fs::read_dir(&parent).unwrap().count(),
        0,
        "a refused name writes nothing"
    );

    fs::create_dir(parent.join("taken")).unwrap();
    fs::write(parent.join("taken/keep.txt"), b"mine").unwrap();
    new("taken").assert_error(&["taken", "not empty"]);
    assert_eq!(fs::read_dir(parent.join("taken")).unwrap().count(), 1);
    assert_eq!(fs::read(parent.join("taken/keep.txt")).unwrap(), b"mine");

    // An existing empty directory is fine.
    fs::create_dir(parent.join("empty")).unwrap();
    new("empty").ok();
    assert!(parent.join("empty/src/lib.rs").is_file());
}

#[test]
fn views_new_writes_a_crate_that_builds_tests_and_checks() {
    let wasm = component();
    assert!(
        wasm.starts_with(b"\0asm\x0d\0\x01\0"),
        "a component, as built"
    );
}

both_backends! {
    #[timeout_secs(MOUNTED_TIMEOUT_SECS)]
    fn scaffolded_view_is_served_from_views_dir(backend: Backend) {
        let wasm = component();
        let (_d, views) = temp_dir("lhfs-views-");
        install(&views, wasm);
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap()]);
        assert_eq!(listing(m.root()), root_listing(&[NAME]), "[{backend}]");
        assert_serves_the_scaffolded_view(&m, &store);
        m.stop();
    }
}

// The edit–build–see loop: a mount watching an empty directory serves the view once its
// component is dropped there (temporary name, then rename, like a build tool).
both_backends! {
    #[timeout_secs(MOUNTED_TIMEOUT_SECS)]
    fn scaffolded_view_is_swapped_in_by_watch(backend: Backend) {
        let wasm = component();
        let (_d, views) = temp_dir("lhfs-views-");
        let (_t, store) = fresh_store();
        let m = Mount::start_with(backend, &store, &["--views", views.to_str().unwrap(), "--watch"]);
        assert_eq!(listing(m.root()), root_listing(&[]), "[{backend}] nothing to load yet");
        install(&views, wasm);
        let hello = m.root().join(NAME).join("hello.txt");
        let deadline = Instant::now() + WATCH_TIMEOUT;
        while fs::metadata(&hello).is_err() {
            assert!(
                Instant::now() < deadline,
                "[{backend}] {NAME} not served {WATCH_TIMEOUT:?} after it was dropped in the \
                 watched directory\nstderr:\n{}",
                m.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(listing(m.root()), root_listing(&[NAME]), "[{backend}]");
        assert_serves_the_scaffolded_view(&m, &store);
        m.stop();
    }
}

/// The names in `dir`, in the order it lists them.
fn listing(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}
