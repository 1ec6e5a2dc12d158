//! The views' own unit tests (guest-ops/, natively, against the SDK's model store), run
//! as part of the root test suite: guest-ops is a workspace of its own that `cargo test
//! --workspace` would not reach, and its logic (history's fold, shadows' re-anchoring,
//! streams' cursors) deserves the same gate as the host's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Compiling the guest workspace natively from scratch takes a minute or two here.
const TIMEOUT: Duration = Duration::from_secs(900);

#[test]
fn guest_ops_unit_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("guest-ops/Cargo.toml");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["test", "--locked", "--workspace", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(root.join("target/guest-ops-native"))
        .current_dir(root.join("guest-ops"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The outer test run's build settings are not the guest workspace's.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" {
            cmd.env_remove(&key);
        }
    }
    let child = cmd.spawn().expect("run cargo test for guest-ops");
    let pid = Pid::from_raw(child.id() as i32);
    // Read the output on another thread (a full pipe would stall cargo), wait here.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(TIMEOUT) {
        Ok(output) => output.expect("cargo output"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("guest-ops tests did not finish within {TIMEOUT:?}");
        }
    };
    let status = output.status;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "guest-ops unit tests failed ({status}):\n{stdout}\n{stderr}"
    );
    // A run that tested nothing would pass too: make sure the views' tests ran.
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 20, "only {passed} guest tests ran:\n{stdout}");
}
