//! `bad-memory/`, a deliberately bad view for the host's tests: a read of `/hog`
//! allocates 1 MiB after 1 MiB, without bound (the host's memory limit must stop it).
//! Everything else behaves like a one-file view, so the host can load it, list it and
//! read it.

use lighthouse_view_sdk::{Attrs, Caller, DirEntry, FixedDir, FsError, View, ViewInfo};

const ROOT: FixedDir = FixedDir {
    files: &[("hog", b"never served\n"), ("ok", b"fine\n")],
    mtime_ns: 0,
};

struct Bad;

impl View for Bad {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!("bad-memory", "deliberately bad test view")
    }

    fn getattr(_: Caller, path: String) -> Result<Attrs, FsError> {
        ROOT.getattr(&path)
    }

    fn readdir(_: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        ROOT.readdir(&path)
    }

    fn read(_: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        if path == "/hog" {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(std::hint::black_box(vec![0xa5; 1 << 20]));
                std::hint::black_box(&hoard);
            }
        }
        ROOT.read(&path, offset, len)
    }
}

lighthouse_view_sdk::export!(Bad);
