//! Hot reload without a mount: the catalog against a views directory, versions held
//! across a swap, and the compile cache on disk.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::catalog::{Catalog, Outcome, ReloadEntry, ReloadReport};
use super::*;
use crate::core::Caller;

fn component(stem: &str) -> &'static [u8] {
    builtin::component(stem).unwrap_or_else(|| panic!("guest-ops built no {stem}.wasm"))
}

fn host() -> ViewHost {
    let limits = ViewLimits {
        max_instances: 16,
        ..ViewLimits::default()
    };
    ViewHost::new(limits, Arc::new(MemoryStore::new(0))).expect("view host")
}

fn caller() -> Caller {
    Caller {
        pid: 1,
        ..Caller::HOST
    }
}

fn read(host: &ViewHost, at: impl Target, path: &str) -> Vec<u8> {
    host.read(at, &caller(), path, 0, 1 << 20).unwrap()
}

/// The entry of `view` in a report.
fn entry<'a>(report: &'a ReloadReport, view: &str) -> &'a ReloadEntry {
    report
        .entries
        .iter()
        .find(|e| e.view.as_deref() == Some(view))
        .unwrap_or_else(|| panic!("no entry for {view} in {report:#?}"))
}

/// Written as a build tool would: a temporary name, then a rename.
fn put(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn the_catalog_follows_the_views_directory() {
    let dir = tempfile::tempdir().unwrap();
    let changed = Arc::new(Mutex::new(Vec::<String>::new()));
    let on_change = {
        let changed = changed.clone();
        Box::new(move |view: &str| changed.lock().push(view.to_owned()))
    };
    let builtins = [("history", component("history"))];
    let (catalog, report) = Catalog::start(
        Arc::new(host()),
        &builtins,
        Some(dir.path().to_path_buf()),
        on_change,
    )
    .unwrap();
    let host = catalog.host().clone();
    assert_eq!(entry(&report, "history").outcome, Outcome::Unchanged);
    assert_eq!(entry(&report, "history").origin, "built-in history");
    let took = |changed: &Mutex<Vec<String>>| std::mem::take(&mut *changed.lock());

    // A new file, then the same bytes again.
    put(dir.path(), "swap.wasm", component("test_swap_a"));
    let report = catalog.reload();
    let first = entry(&report, "swap");
    assert_eq!((first.outcome, report.failed()), (Outcome::Loaded, 0));
    assert_eq!(read(&host, "swap", "/version"), b"version a\n");
    assert_eq!(took(&changed), ["swap"]);
    let report = catalog.reload();
    assert_eq!(entry(&report, "swap").outcome, Outcome::Unchanged);
    assert!(
        took(&changed).is_empty(),
        "nothing changed, nothing forgotten"
    );

    // A new version replaces it.
    put(dir.path(), "swap.wasm", component("test_swap_b"));
    let report = catalog.reload();
    let second = entry(&report, "swap");
    assert_eq!(second.outcome, Outcome::Reloaded);
    assert!(second.generation > first.generation);
    assert_eq!(read(&host, "swap", "/version"), b"version b\n");
    assert_eq!(took(&changed), ["swap"]);

    // A broken one does not: B serves on, the refusal is kept and reported again. Broken
    // in each way a component can be: trapping in `info`, a core module, cut short.
    let core_module: &[u8] = b"\0asm\x01\0\0\0";
    let cut_short: &[u8] = b"\0asm\x0d\0\x01\0 truncated";
    for (bytes, why) in [
        (component("bad_info"), "`info` failed"),
        (core_module, "core module"),
        (cut_short, "not a valid WebAssembly component"),
    ] {
        put(dir.path(), "swap.wasm", bytes);
        for _ in 0..2 {
            let report = catalog.reload();
            let failed = entry(&report, "swap");
            assert_eq!(failed.outcome, Outcome::Failed);
            assert_eq!(failed.generation, second.generation, "B serves on");
            let error = failed.error.as_deref().unwrap();
            assert!(error.contains(why), "{why:?} in {error:?}");
            assert_eq!(report.failed(), 1);
        }
    }
    assert!(took(&changed).is_empty());
    assert_eq!(read(&host, "swap", "/version"), b"version b\n");
    let refused = host.refused();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].view.as_deref(), Some("swap"));

    // Fixed again: the refusal is gone.
    put(dir.path(), "swap.wasm", component("test_swap_a"));
    assert_eq!(entry(&catalog.reload(), "swap").outcome, Outcome::Reloaded);
    assert!(host.refused().is_empty());

    // Two files cannot serve one name: the second is refused and says why.
    put(dir.path(), "twin.wasm", component("test_swap_b"));
    let report = catalog.reload();
    let twin = report
        .entries
        .iter()
        .find(|e| e.origin.ends_with("twin.wasm"))
        .unwrap();
    assert_eq!(twin.outcome, Outcome::Failed);
    assert!(twin
        .error
        .as_deref()
        .unwrap()
        .contains("already served from"));
    assert_eq!(read(&host, "swap", "/version"), b"version a\n");
    std::fs::remove_file(dir.path().join("twin.wasm")).unwrap();
    assert_eq!(catalog.reload().failed(), 0);
    assert!(host.refused().is_empty());

    // A file may replace a built-in; removing it gives the built-in back.
    put(dir.path(), "my-history.wasm", component("history"));
    let report = catalog.reload();
    assert_eq!(entry(&report, "history").outcome, Outcome::Reloaded);
    assert!(entry(&report, "history")
        .origin
        .ends_with("my-history.wasm"));
    std::fs::remove_file(dir.path().join("my-history.wasm")).unwrap();
    let report = catalog.reload();
    assert_eq!(entry(&report, "history").outcome, Outcome::Restored);
    assert_eq!(entry(&report, "history").origin, "built-in history");
    assert!(host.has_view("history"));

    // Hidden files are not components yet; removing the file removes the view.
    put(dir.path(), ".half-written.wasm", b"garbage");
    std::fs::remove_file(dir.path().join("swap.wasm")).unwrap();
    let report = catalog.reload();
    assert_eq!(entry(&report, "swap").outcome, Outcome::Removed);
    assert_eq!(report.failed(), 0);
    assert!(!host.has_view("swap"));
    assert_eq!(took(&changed), ["swap", "history", "history", "swap"]);
}

#[test]
fn a_version_held_across_a_swap_answers_until_let_go() {
    let host = host();
    host.load(component("test_swap_a"), "a").unwrap();
    let old = host.generation("swap").unwrap();
    let held = host.pin("swap", old).unwrap();
    host.load(component("test_swap_b"), "b").unwrap();
    let new = host.generation("swap").unwrap();
    assert!(new > old);

    // Held: the old generation answers, by pin and by version.
    assert_eq!(read(&host, &held, "/version"), b"version a\n");
    assert_eq!(read(&host, &held, "/big").len(), 300_000);
    assert_eq!(host.pin("swap", old).unwrap().generation(), old);
    assert_eq!(host.version("swap", Some(old)).unwrap().generation(), old);
    assert_eq!(read(&host, "swap", "/version"), b"version b\n");

    // Let go: gone for an open, the current one for anything else.
    drop(held);
    assert!(matches!(host.pin("swap", old), Err(ViewCallError::Gone)));
    assert_eq!(ViewCallError::Gone.errno(), libc::ESTALE);
    assert_eq!(host.version("swap", Some(old)).unwrap().generation(), new);
    assert!(matches!(
        host.pin("nope", 1),
        Err(ViewCallError::NoSuchView)
    ));
}

#[test]
fn compiled_components_are_kept_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = component("test_swap_a");
    let cached = || host().with_compile_cache(dir.path()).unwrap();
    let files = || -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };

    assert_eq!(cached().prepare(bytes).unwrap().compiled, Compiled::Fresh);
    let kept = files();
    assert_eq!(kept.len(), 1, "one file: {kept:?}");
    assert!(kept[0].extension().is_some_and(|e| e == "cwasm"));
    // A new engine of the same configuration (a restart) takes it from there, and it
    // serves.
    let again = cached();
    let prepared = again.prepare(bytes).unwrap();
    assert_eq!(prepared.compiled, Compiled::FromCache);
    again.install(prepared, "cache");
    assert_eq!(read(&again, "swap", "/version"), b"version a\n");

    // Another component is another file; a damaged file is compiled and written again.
    assert_eq!(
        cached().prepare(component("test_swap_b")).unwrap().compiled,
        Compiled::Fresh
    );
    assert_eq!(files().len(), 2);
    let mut data = std::fs::read(&kept[0]).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&kept[0], &data).unwrap();
    assert_eq!(cached().prepare(bytes).unwrap().compiled, Compiled::Fresh);
    assert_eq!(
        cached().prepare(bytes).unwrap().compiled,
        Compiled::FromCache
    );
    assert_eq!(files().len(), 2, "no temporary left behind");
}
