//! The views' own unit tests (guest-ops/, natively, against the SDK's model store), run
//! as part of the root test suite: guest-ops is a workspace of its own that `cargo test
//! --workspace` would not reach, and its logic (history's fold, shadows' re-anchoring,
//! streams' cursors) deserves the same gate as the host's.

mod common;

#[test]
fn guest_ops_unit_tests_pass() {
    let output = common::guest_cargo(&["test", "--workspace"], &[]);
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
