//! Hot reload through a real mount, on both backends: a view swapped 20 times under four
//! busy readers (no failed read, never a mix of versions, the new version once a swap
//! settles), a file held open across swaps, a broken version that leaves the old one
//! serving, and a watched directory followed file by file.
//!
//! The two versions are the test components `test_swap_a` and `test_swap_b`: view
//! `swap`, files `version` (`version a\n` / `version b\n`) and `big` (300,000 `a`s /
//! 200,003 `b`s: more than one FUSE read, sizes that differ).

#[macro_use]
mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// One version of the swap view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    A,
    B,
}

impl Version {
    fn component(self) -> &'static [u8] {
        let stem = match self {
            Version::A => "test_swap_a",
            Version::B => "test_swap_b",
        };
        lighthouse_fs::views::builtin::component(stem)
            .unwrap_or_else(|| panic!("the {stem} test component is built"))
    }

    fn letter(self) -> u8 {
        match self {
            Version::A => b'a',
            Version::B => b'b',
        }
    }

    fn big_len(self) -> usize {
        match self {
            Version::A => 300_000,
            Version::B => 200_003,
        }
    }

    fn other(self) -> Version {
        match self {
            Version::A => Version::B,
            Version::B => Version::A,
        }
    }

    /// The whole content of `file` in this version.
    fn content(self, file: &str) -> Vec<u8> {
        match file {
            "version" => format!("version {}\n", self.letter() as char).into_bytes(),
            "big" => vec![self.letter(); self.big_len()],
            other => panic!("the swap view has no {other}"),
        }
    }

    /// Which version `data`, read whole from `file`, is (`None`: neither, a mix).
    fn of(file: &str, data: &[u8]) -> Option<Version> {
        [Version::A, Version::B]
            .into_iter()
            .find(|v| v.content(file) == data)
    }
}

/// Puts `version` at `dir/swap.wasm` as a build tool would: a hidden temporary, then a
/// rename over the old file.
fn install(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join(".swap.wasm.tmp");
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, dir.join("swap.wasm")).unwrap();
}

/// `views reload MNT --json`: the exit code and the report.
fn reload(m: &Mount) -> (Option<i32>, serde_json::Value) {
    let out = cli([
        "views".as_ref(),
        "reload".as_ref(),
        m.root().as_os_str(),
        "--json".as_ref(),
    ]);
    let report = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("views reload --json: {e}\n{out:?}"));
    (out.code(), report)
}

/// The report's entry for view `swap`.
fn swap_entry(report: &serde_json::Value) -> &serde_json::Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["view"] == "swap")
        .unwrap_or_else(|| panic!("no swap entry in {report:#}"))
}

fn read_version(m: &Mount, file: &str) -> Option<Version> {
    let data = fs::read(m.root().join("swap").join(file)).unwrap();
    Version::of(file, &data)
}

/// What the readers saw.
#[derive(Default)]
struct Seen {
    reads: [AtomicU64; 2],
    failures: Mutex<Vec<String>>,
}

/// Reads every file of the view, whole, until `stop`: each read must be one version.
fn reader(root: PathBuf, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    while !stop.load(Ordering::Relaxed) {
        for file in ["version", "big"] {
            match fs::read(root.join("swap").join(file)) {
                Ok(data) => match Version::of(file, &data) {
                    Some(v) => {
                        seen.reads[v as usize].fetch_add(1, Ordering::Relaxed);
                    }
                    None => seen.failures.lock().unwrap().push(format!(
                        "{file}: {} bytes, neither version (first {:?}, last {:?})",
                        data.len(),
                        data.first().map(|&b| b as char),
                        data.last().map(|&b| b as char)
                    )),
                },
                Err(e) => seen
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("{file}: {e} ({})", errno_name(errno_of(&e)))),
            }
        }
    }
}

both_backends! {
    #[timeout_secs(300)]
    fn swaps_under_readers_never_fail_or_mix(backend: Backend) {
        let tmp = tempfile::tempdir().unwrap();
        let views = tmp.path().join("views");
        fs::create_dir(&views).unwrap();
        install(&views, Version::A.component());
        let views_arg = views.to_str().unwrap();
        let m = Mount::start_with(backend, &tmp.path().join("store"), &["--views", views_arg]);
        assert_eq!(read_version(&m, "big"), Some(Version::A));

        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (root, stop, seen) = (m.root().to_path_buf(), stop.clone(), seen.clone());
                thread::spawn(move || reader(root, stop, seen))
            })
            .collect();

        // A file held open across every swap reads its own version to the end.
        let mut held = fs::File::open(m.root().join("swap/big")).unwrap();
        let mut held_data = vec![0; 4096];
        held.read_exact(&mut held_data).unwrap();

        let mut now = Version::A;
        let mut generation = 0;
        for swap in 0..20 {
            let next = now.other();
            install(&views, next.component());
            let (code, report) = reload(&m);
            let entry = swap_entry(&report);
            assert_eq!(code, Some(0), "swap {swap}: {report:#}");
            assert_eq!(entry["outcome"], "reloaded", "swap {swap}: {report:#}");
            let g = entry["generation"].as_u64().unwrap();
            assert!(g > generation, "swap {swap}: generation {g} after {generation}");
            generation = g;
            // Settled: what is opened from now on is the new version.
            for file in ["version", "big"] {
                assert_eq!(read_version(&m, file), Some(next), "swap {swap}: {file} after the reload");
            }
            now = next;
            thread::sleep(Duration::from_millis(20));
        }
        held.read_to_end(&mut held_data).unwrap();
        assert_eq!(Version::of("big", &held_data), Some(Version::A), "the held file is A throughout");
        drop(held);

        // A broken version: refused, the old one serves on and says so everywhere.
        fs::write(views.join(".swap.wasm.tmp"), b"\0asm\x0d\0\x01\0 cut short").unwrap();
        fs::rename(views.join(".swap.wasm.tmp"), views.join("swap.wasm")).unwrap();
        let (code, report) = reload(&m);
        let entry = swap_entry(&report);
        assert_eq!(code, Some(1), "a refused component fails the command: {report:#}");
        assert_eq!(entry["outcome"], "failed");
        assert_eq!(entry["generation"].as_u64(), Some(generation), "the old generation serves on");
        assert!(entry["error"].as_str().unwrap().contains("not a valid WebAssembly component"), "{entry:#}");
        let human = cli(["views".as_ref(), "reload".as_ref(), m.root().as_os_str()]);
        assert_eq!(human.code(), Some(1));
        assert!(human.stdout.contains(&format!("swap: failed (generation {generation} serves on)")), "{human:?}");
        assert!(human.stderr.contains("refused"), "{human:?}");
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(m.root().join("debug/views.json")).unwrap()).unwrap();
        let refused = doc["refused"].as_array().unwrap();
        assert_eq!(refused.len(), 1, "{doc:#}");
        assert_eq!(refused[0]["view"], "swap");
        assert_eq!(doc["views"]["swap"]["generation"].as_u64(), Some(generation));
        let health: serde_json::Value =
            serde_json::from_slice(&fs::read(m.root().join("debug/health.json")).unwrap()).unwrap();
        assert_eq!(health["status"], "degraded", "{health:#}");
        assert!(health["problems"][0].as_str().unwrap().contains("swap.wasm refused"), "{health:#}");
        for file in ["version", "big"] {
            assert_eq!(read_version(&m, file), Some(now), "{file} after the refusal");
        }

        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        let failures = seen.failures.lock().unwrap();
        assert!(failures.is_empty(), "{} failed or mixed reads, first: {:?}", failures.len(), &failures[..failures.len().min(5)]);
        let (a, b) = (seen.reads[0].load(Ordering::Relaxed), seen.reads[1].load(Ordering::Relaxed));
        assert!(a > 0 && b > 0, "the readers saw both versions ({a} A, {b} B)");
        assert!(m.stderr().contains("view not loaded"), "the refusal is logged:\n{}", m.stderr());
        m.stop();
    }
}

/// Polls (up to 30 s) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn views_doc(m: &Mount) -> serde_json::Value {
    serde_json::from_slice(&fs::read(m.root().join("debug/views.json")).unwrap()).unwrap()
}

both_backends! {
    #[timeout_secs(240)]
    fn a_watched_directory_is_followed(backend: Backend) {
        let tmp = tempfile::tempdir().unwrap();
        let views = tmp.path().join("views");
        fs::create_dir(&views).unwrap();
        let views_arg = views.to_str().unwrap();
        let m = Mount::start_with(backend, &tmp.path().join("store"), &["--views", views_arg, "--watch"]);
        let swap = m.root().join("swap");
        assert!(!swap.exists());

        // A new file, then a new version: each shows without a command.
        install(&views, Version::A.component());
        eventually("swap A appears", || fs::read(swap.join("version")).ok() == Some(Version::A.content("version")));
        install(&views, Version::B.component());
        eventually("swap B replaces A", || fs::read(swap.join("version")).ok() == Some(Version::B.content("version")));
        assert_eq!(read_version(&m, "big"), Some(Version::B));

        // A broken file is refused: B serves on, debug/views.json says why.
        install(&views, b"not wasm at all");
        eventually("the refusal shows", || !views_doc(&m)["refused"].as_array().unwrap().is_empty());
        assert_eq!(read_version(&m, "version"), Some(Version::B));

        // A file replacing a built-in; its removal gives the built-in back.
        let history = lighthouse_fs::views::builtin::component("history").unwrap();
        fs::write(views.join(".h.tmp"), history).unwrap();
        fs::rename(views.join(".h.tmp"), views.join("my-history.wasm")).unwrap();
        eventually("the file serves history", || {
            views_doc(&m)["views"]["history"]["origin"].as_str().unwrap().ends_with("my-history.wasm")
        });
        fs::remove_file(views.join("my-history.wasm")).unwrap();
        eventually("the built-in history is back", || views_doc(&m)["views"]["history"]["origin"] == "built-in history");

        // Removing the file removes the view, directory and all.
        fs::remove_file(views.join("swap.wasm")).unwrap();
        eventually("swap is gone", || !swap.exists());
        let names: Vec<String> = fs::read_dir(m.root()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(!names.contains(&"swap".to_string()), "{names:?}");
        assert!(views_doc(&m)["refused"].as_array().unwrap().is_empty(), "a removed file's refusal goes with it");
        m.stop();

        // The compile cache: a second mount of the store compiles nothing it has seen.
        install(&views, Version::A.component());
        let again = Mount::start_with(backend, &tmp.path().join("store"), &["--views", views_arg]);
        assert_eq!(read_version(&again, "version"), Some(Version::A));
        let log = again.stop();
        let loads: Vec<&str> = log.lines().filter(|l| l.contains("view loaded")).collect();
        assert_eq!(loads.len(), 5, "four built-ins and swap:\n{log}");
        assert!(loads.iter().all(|l| l.contains("from_cache=true")), "every view from the compile cache:\n{log}");
    }
}
