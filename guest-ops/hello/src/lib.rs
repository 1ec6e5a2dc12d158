//! `hello/`: the smallest useful view, one fixed file.
//!
//! ```text
//! $ cat /MOUNT/hello/greeting
//! Hello from a lighthouse-fs view!
//! ```

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FixedDir, FsError, View, ViewInfo};

const ROOT: FixedDir = FixedDir {
    files: &[("greeting", b"Hello from a lighthouse-fs view!\n")],
    mtime_ns: 0,
};

struct Hello;

impl View for Hello {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!("hello", "Example view: one fixed file, /greeting")
    }

    fn getattr(_: Caller, path: String) -> Result<Attrs, FsError> {
        ROOT.getattr(&path)
    }

    fn readdir(_: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        ROOT.readdir(&path)
    }

    fn read(_: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        ROOT.read(&path, offset, len)
    }
}

lighthouse_view_sdk::export!(Hello);
