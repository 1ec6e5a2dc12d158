//! Builds the view components in `guest-ops/` for `wasm32-wasip2` and embeds them.
//!
//! `guest-ops/` is a workspace of its own (its crates only build for wasm32-wasip2, so it
//! cannot be a member of the host's workspace). This script runs
//!
//! ```text
//! $CARGO build --release --locked --target wasm32-wasip2 \
//!     --manifest-path <repo>/guest-ops/Cargo.toml --target-dir $OUT_DIR/guest-target
//! ```
//!
//! with its own target dir under OUT_DIR (the outer build holds the lock on the host's
//! target dir: sharing it would deadlock) and with the outer build's flags and target
//! settings removed from the environment (RUSTFLAGS for the host must not reach a wasm
//! build). Every `<stem>.wasm` produced becomes an entry of `$OUT_DIR/builtin_components.rs`:
//!
//! - `BUILTIN`: the production views (and the `hello` example);
//! - `TEST_COMPONENTS`: the views only tests load: the deliberately bad ones (`bad_*`)
//!   and the other test views (`test_*`: the two versions of the hot-swap view, the
//!   `spy` that asks the store for everything).
//!
//! Without `guest-ops/Cargo.toml` both lists are empty (with a warning).
//!
//! It also writes `$OUT_DIR/sdk_files.rs`: the view SDK's sources, the WIT and
//! guest-ops' `Cargo.lock`, which `lighthouse-fs views new` vendors into a new view crate
//! so that it builds without this repository (see [`write_sdk_files`]).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repo = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let guest_ops = repo.join("guest-ops");
    let wit = repo.join("wit");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", wit.display());

    let guest_manifest = guest_ops.join("Cargo.toml");
    if !guest_manifest.is_file() {
        // Watch the directory so that adding the workspace re-runs this script.
        println!("cargo:rerun-if-changed={}", guest_ops.display());
        println!(
            "cargo:warning=no {} yet: no built-in views are embedded",
            guest_manifest.display()
        );
        write_registry(&out_dir, &[]);
        write_sdk_files(&out_dir, None);
        return;
    }
    watch_guest_sources(&guest_ops);
    write_sdk_files(&out_dir, Some((&guest_ops, &wit)));
    ensure_wasm_target();

    let guest_target = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--locked", "--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(&guest_manifest)
        .arg("--target-dir")
        .arg(&guest_target)
        .current_dir(&guest_ops);
    scrub_outer_build_env(&mut cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build guest-ops: {e}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`")
        {
            panic!(
                "the {WASM_TARGET} target is not installed for this toolchain; \
                 run: rustup target add {WASM_TARGET}\n\n{stderr}"
            );
        }
        panic!(
            "building guest-ops for {WASM_TARGET} failed ({}):\n{stderr}",
            output.status
        );
    }

    let release = guest_target.join(WASM_TARGET).join("release");
    let components_dir = out_dir.join("components");
    fs::create_dir_all(&components_dir).expect("create OUT_DIR/components");
    let mut stems: Vec<(String, PathBuf)> = Vec::new();
    for entry in
        fs::read_dir(&release).unwrap_or_else(|e| panic!("read {}: {e}", release.display()))
    {
        let path = entry.expect("read_dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wasm") || !path.is_file() {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 wasm file name")
            .to_owned();
        let dest = components_dir.join(format!("{stem}.wasm"));
        fs::copy(&path, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        stems.push((stem, dest));
    }
    stems.sort();
    write_registry(&out_dir, &stems);
}

/// `true` for the views only tests load: deliberately bad ones, and test fixtures.
fn is_test_component(stem: &str) -> bool {
    ["bad_", "bad-", "test_", "test-"]
        .iter()
        .any(|prefix| stem.starts_with(prefix))
}

fn write_registry(out_dir: &Path, components: &[(String, PathBuf)]) {
    let mut src = String::from("// @generated by host/build.rs from guest-ops/\n\n");
    let mut list = |name: &str, doc: &str, test: bool| {
        let _ = writeln!(src, "/// {doc}");
        let _ = writeln!(src, "pub const {name}: &[(&str, &[u8])] = &[");
        for (stem, path) in components
            .iter()
            .filter(|(s, _)| is_test_component(s) == test)
        {
            let _ = writeln!(
                src,
                "    ({stem:?}, include_bytes!({:?})),",
                path.display().to_string()
            );
        }
        src.push_str("];\n\n");
    };
    list(
        "BUILTIN",
        "The views built from guest-ops/ and embedded in the binary: (file stem, component bytes).",
        false,
    );
    list(
        "TEST_COMPONENTS",
        "Views only tests load (`bad_*`, `test_*`): (file stem, component bytes).",
        true,
    );
    fs::write(out_dir.join("builtin_components.rs"), src).expect("write builtin_components.rs");
}

/// Writes `$OUT_DIR/sdk_files.rs` with
///
/// - `SDK_FILES`: (path inside the vendored SDK crate, bytes) of `Cargo.toml` (made
///   standalone: see [`standalone_manifest`]), every file under `guest-ops/sdk/src/` and
///   every file of `wit/` as `wit/...` (the SDK's `generate!` reads `wit`, a symlink to
///   the repository's `wit/` in guest-ops);
/// - `GUEST_LOCK`: `guest-ops/Cargo.lock`, so a new view crate resolves to exactly the
///   versions guest-ops is built and tested with on the pinned toolchain.
///
/// `None` (no guest-ops): both empty.
fn write_sdk_files(out_dir: &Path, sources: Option<(&Path, &Path)>) {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut lock = None;
    if let Some((guest_ops, wit)) = sources {
        let sdk = guest_ops.join("sdk");
        let read = |p: &Path| {
            fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        };
        let manifest = standalone_manifest(
            &read(&sdk.join("Cargo.toml")),
            &read(&guest_ops.join("Cargo.toml")),
        );
        let manifest_out = out_dir.join("sdk-Cargo.toml");
        fs::write(&manifest_out, manifest).expect("write OUT_DIR/sdk-Cargo.toml");
        files.push(("Cargo.toml".into(), manifest_out));
        for (dir, prefix) in [(sdk.join("src"), "src"), (wit.to_path_buf(), "wit")] {
            println!("cargo:rerun-if-changed={}", dir.display());
            for (rel, path) in files_under(&dir) {
                files.push((format!("{prefix}/{rel}"), path));
            }
        }
        for p in ["sdk/Cargo.toml", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", guest_ops.join(p).display());
        }
        lock = Some(guest_ops.join("Cargo.lock"));
    }
    let mut src = String::from("// @generated by host/build.rs from guest-ops/sdk and wit/\n\n");
    src.push_str(
        "/// The view SDK as a new view crate vendors it: (path in the SDK crate, bytes).\n",
    );
    src.push_str("pub const SDK_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        let _ = writeln!(
            src,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    src.push_str("];\n\n/// guest-ops/Cargo.lock (empty without guest-ops).\n");
    match lock {
        Some(lock) => {
            let _ = writeln!(
                src,
                "pub const GUEST_LOCK: &str = include_str!({:?});",
                lock.display().to_string()
            );
        }
        None => src.push_str("pub const GUEST_LOCK: &str = \"\";\n"),
    }
    fs::write(out_dir.join("sdk_files.rs"), src).expect("write sdk_files.rs");
}

/// Every file below `dir` (recursively, symlinks followed), as (path relative to `dir`
/// with `/`, path), sorted.
fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("read_dir entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_else(|| panic!("non-UTF-8 file name {}", path.display()));
            let rel = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            if path.is_dir() {
                stack.push((path, rel));
            } else {
                out.push((rel, path));
            }
        }
    }
    out.sort();
    out
}

/// The SDK's `Cargo.toml` without workspace inheritance: each `key.workspace = true` of
/// `[package]` and `[dependencies]` becomes the value `[workspace.package]` or
/// `[workspace.dependencies]` of guest-ops' manifest gives it. A form this does not
/// understand fails the build rather than ship a manifest that cannot build.
fn standalone_manifest(member: &str, workspace: &str) -> String {
    let mut inherited: Vec<(String, String, String)> = Vec::new(); // (section, key, value)
    let mut section = String::new();
    for line in workspace.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            if !line.starts_with('#') {
                inherited.push((section.clone(), key.trim().into(), value.trim().into()));
            }
        }
    }
    let mut out = String::from(
        "# The lighthouse-fs view SDK, vendored by `lighthouse-fs views new` (the values\n\
         # guest-ops' workspace gives it written out, so it builds on its own).\n",
    );
    let mut section = String::new();
    for line in member.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.trim_matches(['[', ']']).to_owned();
        }
        let rewritten = match trimmed.split_once(".workspace") {
            Some((key, rest))
                if rest.trim_start().starts_with('=') && !trimmed.starts_with('#') =>
            {
                assert_eq!(
                    rest.trim_start().trim_start_matches('=').trim(),
                    "true",
                    "guest-ops/sdk/Cargo.toml: cannot make `{trimmed}` standalone"
                );
                let from = match section.as_str() {
                    "package" => "workspace.package",
                    "dependencies" => "workspace.dependencies",
                    other => panic!("guest-ops/sdk/Cargo.toml: `{trimmed}` in [{other}]"),
                };
                let value = inherited
                    .iter()
                    .find(|(s, k, _)| s == from && k == key)
                    .map(|(_, _, v)| v)
                    .unwrap_or_else(|| panic!("guest-ops/Cargo.toml has no {from}.{key}"));
                format!("{key} = {value}")
            }
            _ => line.to_owned(),
        };
        assert!(
            trimmed.starts_with('#') || !rewritten.contains("workspace"),
            "guest-ops/sdk/Cargo.toml: cannot make `{trimmed}` standalone"
        );
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

/// Re-run when any guest source changes, without watching `guest-ops/target`.
fn watch_guest_sources(guest_ops: &Path) {
    for file in ["Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", guest_ops.join(file).display());
    }
    let Ok(entries) = fs::read_dir(guest_ops) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.is_dir() || entry.file_name() == "target" || !dir.join("Cargo.toml").is_file() {
            continue;
        }
        println!(
            "cargo:rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        for sub in ["src", "build.rs", "wit"] {
            let path = dir.join(sub);
            if path.exists() {
                // A directory is watched recursively.
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

/// Make sure the toolchain has the wasm target, adding it with rustup when it is missing.
///
/// `rust-toolchain.toml` lists the target, but rustup adds it only when it installs the
/// toolchain: on a machine that already had 1.95 (or with rustup's auto-install off) the
/// README's first command would otherwise die here after compiling everything else. So
/// the build adds it itself, says so, and fails with the command to run only when it
/// cannot (no rustup, no network).
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(&rustc).args(["--print", "sysroot"]).output() else {
        return; // the guest build reports whatever is wrong
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let installed = || sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir();
    if !out.status.success() || installed() {
        return;
    }
    // Under rustup the sysroot is `$RUSTUP_HOME/toolchains/<name>`: add the target to
    // exactly the toolchain that builds this crate, whatever rustup's default is.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok().or_else(|| {
        let name = sysroot.file_name()?.to_str()?;
        (sysroot.parent()?.file_name()? == "toolchains").then(|| name.to_owned())
    });
    // rustup is on PATH where it installed cargo; else in its default home.
    let rustup = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin/rustup"))
        .filter(|p| p.is_file() && which("rustup").is_none())
        .unwrap_or_else(|| "rustup".into());
    let mut cmd = Command::new(&rustup);
    cmd.args(["target", "add", WASM_TARGET]);
    if let Some(toolchain) = &toolchain {
        cmd.args(["--toolchain", toolchain]);
    }
    let tried = match cmd.output() {
        Ok(o) if o.status.success() && installed() => {
            println!(
                "cargo:warning=the {WASM_TARGET} target was missing from {}: added it with \
                 `rustup target add {WASM_TARGET}` (the built-in views are built for it)",
                toolchain.as_deref().unwrap_or("the toolchain")
            );
            return;
        }
        Ok(o) => format!(
            "`rustup target add {WASM_TARGET}` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("rustup could not be run ({e})"),
    };
    panic!(
        "the {WASM_TARGET} target is not installed in {} and could not be added: {tried}\n\
         install it and build again: rustup target add {WASM_TARGET}",
        sysroot.display()
    );
}

/// `name` found on PATH, if it is there.
fn which(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The inner cargo must build guest-ops as if run by hand: nothing of the outer build
/// (flags for the host target, the host's target dir, wrappers such as clippy-driver,
/// package/feature variables meant for this build script) may leak into it.
fn scrub_outer_build_env(cmd: &mut Command) {
    /// CARGO_* variables that are user configuration, not outer-build state.
    const KEEP: &[&str] = &["CARGO_HOME", "CARGO_MAKEFLAGS", "CARGO_TERM_COLOR"];
    const KEEP_PREFIXES: &[&str] = &[
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
    ];
    const REMOVE: &[&str] = &[
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
    ];
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let cargo_state = (key.starts_with("CARGO") || key.starts_with("__CARGO"))
            && !KEEP.contains(&key)
            && !KEEP_PREFIXES.iter().any(|p| key.starts_with(p));
        if cargo_state || REMOVE.contains(&key) || key.starts_with("DEP_") {
            cmd.env_remove(key);
        }
    }
}
