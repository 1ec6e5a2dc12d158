//! `hello/`: the smallest useful view, one fixed file.
//!
//! ```text
//! $ cat /MOUNT/hello/greeting
//! Hello from a lighthouse-fs view!
//! ```

use lighthouse_view_sdk::tree::TreeView;
use lighthouse_view_sdk::{Caller, FixedDir, ViewInfo};

static ROOT: FixedDir = FixedDir {
    files: &[("greeting", b"Hello from a lighthouse-fs view!\n")],
    mtime_ns: 0,
};

struct Hello;

impl TreeView for Hello {
    type Files = &'static FixedDir<'static>;

    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!("hello", "Example view: one fixed file, /greeting")
    }

    fn files(_: Caller) -> Self::Files {
        &ROOT
    }
}

lighthouse_view_sdk::export!(Hello);
