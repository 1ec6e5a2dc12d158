//! `bad-panic/`, a deliberately bad view for the host's tests: a read of `/boom` panics
//! (the call traps), and so does every `create` (mkdir, touch): a panic writes its
//! message to the guest's stderr, WASI I/O that must not run on an async worker. Everything else behaves like a one-file view, so the host can load
//! it, list it and read it.

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FixedDir, FsError, NodeKind, View, ViewInfo};

const ROOT: FixedDir = FixedDir {
    files: &[("boom", b"never served\n"), ("ok", b"fine\n")],
    mtime_ns: 0,
};

struct Bad;

impl View for Bad {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!("bad-panic", "deliberately bad test view")
    }

    fn getattr(_: Caller, path: String) -> Result<Attrs, FsError> {
        ROOT.getattr(&path)
    }

    fn readdir(_: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        ROOT.readdir(&path)
    }

    fn read(_: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        if path == "/boom" {
            panic!("bad-panic: read of /boom");
        }
        ROOT.read(&path, offset, len)
    }

    fn create(_: Caller, path: String, _: NodeKind) -> Result<Attrs, FsError> {
        panic!("bad-panic: create of {path}");
    }
}

lighthouse_view_sdk::export!(Bad);
