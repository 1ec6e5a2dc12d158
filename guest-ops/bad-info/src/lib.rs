//! `bad-info/`, a deliberately bad view for the host's tests: `info` itself panics, so
//! loading it must fail. Everything else behaves like a one-file view, so the host can
//! load it, list it and read it.

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FixedDir, FsError, View, ViewInfo};

const ROOT: FixedDir = FixedDir {
    files: &[("ok", b"fine\n")],
    mtime_ns: 0,
};

struct Bad;

impl View for Bad {
    fn info() -> ViewInfo {
        panic!("bad-info: info panics")
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

lighthouse_view_sdk::export!(Bad);
