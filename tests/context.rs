//! Context packages through a real mount, on both backends: `mkdir` makes a package,
//! `ls` lists it, `rmdir` removes an empty one, a name that is no package is not there
//! (in this view and every other); manifests select files, bad ones record nothing.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

/// `prog args…` run to its end: (exit code, stderr).
fn run(prog: &str, args: &[&Path]) -> (i32, String) {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let out = Command::new("ls").arg(dir).output().expect("run ls");
    assert!(
        out.status.success(),
        "ls {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

both_backends! {
    fn packages_are_made_by_mkdir_and_removed_by_rmdir(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::write(m.path("README.md"), b"read me\n").unwrap();
        let context = m.root().join("context");
        let pkg = context.join("login");
        // A package that was never made is not there: lookups, listings, writes all ENOENT.
        assert_errno(fs::metadata(&pkg), libc::ENOENT, &format!("[{backend}] stat of a package never made"));
        assert_errno(fs::read(pkg.join("manifest.json")), libc::ENOENT, "a manifest of no package");
        assert_errno(fs::write(pkg.join("manifest.json"), br#"{"purpose":"p","paths":["README.md"]}"#), libc::ENOENT, "a manifest written without mkdir");
        assert!(listing(&context).is_empty());

        assert_eq!(run("mkdir", &[&pkg]), (0, String::new()), "[{backend}] mkdir context/login");
        assert!(fs::metadata(&pkg).unwrap().is_dir());
        assert_eq!(listing(&context), ["login"]);
        assert_eq!(listing(&pkg), ["manifest.json"], "an empty package holds the manifest to write");
        let (code, err) = run("mkdir", &[&pkg]);
        assert!(code != 0 && err.contains("File exists"), "[{backend}] mkdir twice: {code} {err}");
        assert_errno(fs::create_dir(context.join(".hidden")), libc::EINVAL, "a name no package may have");
        assert_eq!(run("rmdir", &[&pkg]), (0, String::new()), "[{backend}] rmdir of an empty package");
        assert_errno(fs::metadata(&pkg), libc::ENOENT, "gone after rmdir");
        assert!(listing(&context).is_empty());

        // With a manifest the package is not empty: rm the manifest first.
        assert_eq!(run("mkdir", &[&pkg]), (0, String::new()));
        let status = Command::new("sh").arg("-c").arg(format!("echo '{{\"purpose\":\"p\",\"paths\":[\"README.md\"]}}' > {}/manifest.json", pkg.display())).status().unwrap();
        assert!(status.success(), "[{backend}] the shell writes the manifest");
        assert_eq!(listing(&pkg), ["context.json", "files.json", "manifest.json"]);
        let (code, err) = run("rmdir", &[&pkg]);
        assert!(code != 0 && err.contains("not empty"), "[{backend}] rmdir of a package with a manifest: {code} {err}");
        assert_errno(fs::remove_file(pkg.join("files.json")), libc::EACCES, "files.json goes with the manifest, not alone");
        assert_eq!(run("rm", &[&pkg.join("manifest.json")]), (0, String::new()), "[{backend}] rm manifest.json");
        assert_eq!(listing(&pkg), ["manifest.json"]);
        assert_eq!(fs::read(pkg.join("manifest.json")).unwrap(), b"{}\n");

        // Packages are events: they survive a remount, and `rm -rf` removes a full one.
        let other = context.join("other");
        fs::create_dir(&other).unwrap();
        fs::write(other.join("manifest.json"), br#"{"purpose":"o","paths":["README.md"]}"#).unwrap();
        drop(m.stop());
        let m = Mount::start(backend, &store);
        let context = m.root().join("context");
        assert_eq!(listing(&context), ["login", "other"], "[{backend}] after a remount");
        assert!(fs::read_to_string(context.join("other/files.json")).unwrap().contains("read me"));
        let (code, err) = run("rm", &[Path::new("-rf"), &context.join("other")]);
        assert_eq!((code, err.as_str()), (0, ""), "[{backend}] rm -rf of a package");
        assert_eq!(listing(&context), ["login"]);
        m.stop();
    }
}

both_backends! {
    fn names_that_are_not_there_are_enoent_in_every_view(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        // The roots of the views show a time a person can read, not 1 January 1970, even
        // before the log has an event to date them by.
        for view in ["history", "shadows", "streams", "context"] {
            let mtime = fs::metadata(m.root().join(view)).unwrap().modified().unwrap();
            let age = std::time::SystemTime::now().duration_since(mtime).unwrap_or_default();
            assert!(age < std::time::Duration::from_secs(24 * 3600), "[{backend}] {view}/ has mtime {mtime:?}");
        }
        fs::write(m.path("a"), b"a").unwrap();
        for path in ["context/nope", "context/nope/manifest.json", "context/.x", "history/nope", "history/@1/nope",
                     "shadows/nope", "shadows/nope/b", "streams/nope", "streams/file_changes@bogus", "debug/nope", "nope"] {
            assert_errno(fs::symlink_metadata(m.root().join(path)), libc::ENOENT, &format!("[{backend}] {path}"));
            let (code, err) = run("mkdir", &[&m.root().join(path).join("sub")]);
            assert!(code != 0 && err.contains("No such file"), "[{backend}] mkdir below {path}: {err}");
        }
        m.stop();
    }
}

both_backends! {
    fn context_packages_select_files_and_refuse_bad_manifests(backend: Backend) {
        let (_t, store) = fresh_store();
        let m = Mount::start(backend, &store);
        fs::create_dir(m.path("src")).unwrap();
        fs::write(m.path("src/main.rs"), b"fn main() {}\n").unwrap();
        fs::write(m.path("src/lib.rs"), b"pub fn f() {}\n").unwrap();
        fs::write(m.path("README"), b"read me\n").unwrap();
        let pkg = m.root().join("context/login");
        fs::create_dir(&pkg).unwrap();
        fs::File::open(m.current()).unwrap().sync_all().unwrap(); // the log file has them all
        let events_before = log_json(&store, None).len();
        for bad in [
            &b"not json"[..],
            br#"{"paths":["src/*.rs"]}"#,
            br#"{"purpose":"x","paths":[]}"#,
            br#"{"purpose":"x","paths":["src/*.rs"],"colour":"red"}"#,
            br#"{"purpose":7,"paths":["src/*.rs"]}"#,
        ] {
            assert_errno(fs::write(pkg.join("manifest.json"), bad), libc::EINVAL, &format!("manifest {:?}", String::from_utf8_lossy(bad)));
        }
        fs::File::open(m.current()).unwrap().sync_all().unwrap();
        assert_eq!(log_json(&store, None).len(), events_before, "[{backend}] bad manifests record nothing");

        fs::write(pkg.join("manifest.json"), br#"{"purpose":"fix the login","paths":["src/*.rs"]}"#).unwrap();
        let names: Vec<String> = fs::read_dir(m.root().join("context")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, ["login"]);
        let files = fs::read_to_string(pkg.join("files.json")).unwrap();
        let v = json::parse(&files).unwrap_or_else(|e| panic!("files.json: {e}: {files}"));
        assert_eq!(v.get("purpose").and_then(|p| p.as_str()), Some("fix the login"));
        assert!(files.contains("\"/src/main.rs\"") && files.contains("\"/src/lib.rs\""), "{files}");
        assert!(files.contains("fn main() {}\\n"), "{files}");
        assert!(!files.contains("README"), "{files}");
        // An annotation on a selected file shows in context.json, with the recent events.
        fs::write(m.root().join("shadows/src/main.rs"), br#"{"kind":"question","text":"why no args?"}"#).unwrap();
        let context = fs::read_to_string(pkg.join("context.json")).unwrap();
        let v = json::parse(&context).unwrap_or_else(|e| panic!("context.json: {e}: {context}"));
        assert!(v.get("annotations").and_then(|a| a.get("/src/main.rs")).is_some(), "[{backend}] {context}");
        assert!(context.contains("why no args?"), "[{backend}] {context}");
        assert!(context.contains("\"recent_events\""), "[{backend}] {context}");
        fs::File::open(m.current()).unwrap().sync_all().unwrap(); // the manifest is committed
        let manifests: Vec<_> = log_json(&store, None).into_iter().filter(|e| e.get("op").and_then(|o| o.as_str()) == Some("context")).collect();
        assert_eq!(manifests.len(), 2, "[{backend}] the mkdir and one manifest: {manifests:?}");
        assert_eq!(manifests[0].at(&["body", "mkdir"]).and_then(|b| b.as_bool()), Some(true), "{manifests:?}");
        assert_eq!(manifests[1].at(&["body", "purpose"]).and_then(|p| p.as_str()), Some("fix the login"));
        m.stop();
    }
}
