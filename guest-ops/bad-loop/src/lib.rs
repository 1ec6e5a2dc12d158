//! `bad-loop/`, a deliberately bad view for the host's tests: a read of `/spin` loops
//! forever (the host's deadline must stop it), and so does every `create`: a view that
//! is slow to make a file must not hold up the live tree. Everything else behaves like a one-file
//! view, so the host can load it, list it and read it.

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FixedDir, FsError, NodeKind, View, ViewInfo};

const ROOT: FixedDir = FixedDir {
    files: &[("spin", b"never served\n"), ("ok", b"fine\n")],
    mtime_ns: 0,
};

struct Bad;

impl View for Bad {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!("bad-loop", "deliberately bad test view")
    }

    fn getattr(_: Caller, path: String) -> Result<Attrs, FsError> {
        ROOT.getattr(&path)
    }

    fn readdir(_: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        ROOT.readdir(&path)
    }

    fn read(_: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        if path == "/spin" {
            spin();
        }
        ROOT.read(&path, offset, len)
    }

    fn create(_: Caller, _: String, _: NodeKind) -> Result<Attrs, FsError> {
        spin()
    }
}

fn spin() -> ! {
    let mut turns = 0u64;
    loop {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
}

lighthouse_view_sdk::export!(Bad);
