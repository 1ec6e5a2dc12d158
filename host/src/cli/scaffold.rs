//! `lighthouse-fs views new NAME [DIR]`: a new view crate at `DIR/NAME`, ready to build
//! with `cargo build --release --target wasm32-wasip2` anywhere, without this repository.
//!
//! The binary carries what that needs (`host/build.rs` embeds it): the view SDK's sources
//! with a standalone `Cargo.toml`, the WIT the SDK binds, and guest-ops' `Cargo.lock`, so
//! the new crate resolves to exactly the dependency versions the built-in views are built
//! and tested with on the pinned toolchain (a fresh resolve could pick crates that need a
//! newer rustc). The templates are the `*.in` files beside this one.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::views::{check_view_name, CONTRACT_VERSION};

mod sdk {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// Where the SDK goes inside the new crate (its `Cargo.toml` depends on this path).
const SDK_DIR: &str = "vendor/lighthouse-view-sdk";

/// The crate's own files: (path, template).
const TEMPLATES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("scaffold/Cargo.toml.in")),
    ("src/lib.rs", include_str!("scaffold/lib.rs.in")),
    ("README.md", include_str!("scaffold/README.md.in")),
    (
        "rust-toolchain.toml",
        include_str!("scaffold/rust-toolchain.toml.in"),
    ),
    (".gitignore", include_str!("scaffold/gitignore.in")),
];

/// Names cargo refuses for a package or that would shadow a crate the view uses.
const RESERVED_CRATE_NAMES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "proc-macro",
    "test",
    "deps",
    "examples",
    "build",
    "incremental",
    "lighthouse-view-sdk",
    "lighthouse_view_sdk",
    "wit-bindgen",
    "wit_bindgen",
];

/// Rust keywords (a crate named like one cannot be referred to).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// What `views new` wrote.
#[derive(Debug)]
pub struct Scaffold {
    /// The new crate's directory.
    pub dir: PathBuf,
    /// The component the build produces, relative to `dir`.
    pub wasm: String,
}

/// `views new`: scaffold, then say what was made and what to do next.
pub fn run(name: &str, parent: Option<&Path>) -> Result<()> {
    let parent = parent.unwrap_or(Path::new("."));
    let made = scaffold(name, parent)?;
    let dir = made.dir.display();
    println!("created the view crate {name} in {dir}:");
    for (path, what) in [
        ("Cargo.toml", "the crate: a cdylib, a workspace of its own"),
        (
            "src/lib.rs",
            "the view, with unit tests against the SDK's model store",
        ),
        ("README.md", "how to build, check and load it"),
        (
            "Cargo.lock",
            "the dependency versions lighthouse-fs builds its views with",
        ),
        (
            "rust-toolchain.toml",
            "Rust 1.95.0 with the wasm32-wasip2 target",
        ),
        (".gitignore", "target/"),
        (SDK_DIR, "the view SDK, with the WIT contract"),
    ] {
        println!("  {path:<28} {what}");
    }
    let wasm = &made.wasm;
    println!(
        "\nnext:\n  cd {dir}\n  cargo test\n  cargo build --release --target wasm32-wasip2\n  \
         lighthouse-fs views check {wasm}\n  \
         mkdir -p VIEWS && cp {wasm} VIEWS/{name}.wasm\n  \
         lighthouse-fs mount MNT --views VIEWS --watch\n\
         (README.md has the edit-build-see loop)"
    );
    Ok(())
}

/// Writes the new crate `parent/name`. Refuses a bad name, and a target that exists and
/// is not an empty directory (nothing is overwritten).
pub fn scaffold(name: &str, parent: &Path) -> Result<Scaffold> {
    check_view_name(name)?;
    check_crate_name(name)?;
    if sdk::SDK_FILES.is_empty() {
        bail!("this lighthouse-fs was built without guest-ops/: it carries no view SDK");
    }
    let dir = parent.join(name);
    match fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty: not writing a view crate there",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("{} exists and is not an empty directory", dir.display()))
        }
    }
    let lib = name.replace('-', "_");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", name)
            .replace("{{lib}}", &lib)
            .replace("{{version}}", env!("CARGO_PKG_VERSION"))
            .replace("{{contract}}", CONTRACT_VERSION)
    };
    let own = TEMPLATES
        .iter()
        .map(|(path, template)| (PathBuf::from(path), fill(template).into_bytes()));
    let vendored = sdk::SDK_FILES
        .iter()
        .map(|(path, bytes)| (Path::new(SDK_DIR).join(path), bytes.to_vec()));
    // Cargo adds the crate itself at its first build and drops the entries of guest-ops'
    // other members that it does not use; the versions stay those of the lock.
    let lock = (
        PathBuf::from("Cargo.lock"),
        sdk::GUEST_LOCK.as_bytes().to_vec(),
    );
    for (path, bytes) in own.chain(vendored).chain([lock]) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("creating directory {}", parent.display()))?;
        }
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Scaffold {
        dir,
        wasm: format!("target/wasm32-wasip2/release/{lib}.wasm"),
    })
}

/// `Ok` when `name` is also a good package name for cargo (and the component file's
/// stem): lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
pub fn check_crate_name(name: &str) -> Result<()> {
    let why = if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "it must start with a lowercase ASCII letter"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        "only lowercase ASCII letters, digits, `-` and `_` are allowed"
    } else if name.len() > 64 {
        "it is longer than 64 characters"
    } else if KEYWORDS.contains(&name) || RESERVED_CRATE_NAMES.contains(&name) {
        "cargo or Rust reserve it"
    } else {
        return Ok(());
    };
    bail!("{name:?} cannot name a view crate: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view SDK (another workspace, built for wasm) keeps its own list of the live
    /// tree's ops; it must name exactly the ops the store records.
    #[test]
    fn the_sdks_live_ops_are_the_stores() {
        let (_, lib) = sdk::SDK_FILES
            .iter()
            .find(|(path, _)| *path == "src/lib.rs")
            .expect("the SDK's lib.rs is vendored");
        let lib = std::str::from_utf8(lib).unwrap();
        let start = lib
            .find("pub const LIVE_OPS")
            .expect("the SDK has LIVE_OPS");
        let list = &lib[start..start + lib[start..].find("];").unwrap()];
        let listed: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
        let mut ours: Vec<&str> = crate::store::TREE_OPS.to_vec();
        let mut theirs = listed.clone();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(theirs, ours, "guest-ops/sdk LIVE_OPS and store::TREE_OPS");
    }

    #[test]
    fn crate_names() {
        for good in ["notes", "my-view", "v2_stats", "a"] {
            check_crate_name(good).unwrap();
        }
        for bad in [
            "",
            "My",
            "2fast",
            "-x",
            "a.b",
            "fn",
            "std",
            "lighthouse-view-sdk",
            "é",
        ] {
            assert!(check_crate_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_crate_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn writes_a_standalone_crate_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let made = scaffold("my-view", tmp.path()).unwrap();
        assert_eq!(made.dir, tmp.path().join("my-view"));
        assert_eq!(made.wasm, "target/wasm32-wasip2/release/my_view.wasm");
        let read = |p: &str| fs::read_to_string(made.dir.join(p)).unwrap();
        let manifest = read("Cargo.toml");
        assert!(manifest.contains("name = \"my-view\""), "{manifest}");
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        assert!(read("src/lib.rs").contains("view_info!(\"my-view\""));
        assert!(!read("README.md").contains("{{"));
        // The SDK builds on its own: no inherited values, its WIT beside it.
        let sdk_manifest = read("vendor/lighthouse-view-sdk/Cargo.toml");
        assert!(!sdk_manifest
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("workspace")));
        assert!(sdk_manifest.contains("wit-bindgen = { version = \"0.57.1\""));
        assert!(read("vendor/lighthouse-view-sdk/src/lib.rs").contains("path: \"wit\""));
        assert!(read("vendor/lighthouse-view-sdk/wit/lighthouse-fs.wit")
            .contains(&format!("package lighthouse:fs@{CONTRACT_VERSION};")));
        assert!(read("Cargo.lock").contains("name = \"wit-bindgen\"\nversion = \"0.57.1\""));

        let again = scaffold("my-view", tmp.path()).unwrap_err();
        assert!(format!("{again:#}").contains("not empty"), "{again:#}");
        fs::create_dir(tmp.path().join("empty")).unwrap();
        scaffold("empty", tmp.path()).unwrap();
        fs::write(tmp.path().join("file"), b"x").unwrap();
        assert!(scaffold("file", tmp.path()).is_err());
        assert!(scaffold("debug", tmp.path()).is_err());
        assert!(scaffold("a/b", tmp.path()).is_err());
    }
}
