//! Test support for a filesystem that fills up: a small tmpfs and a way to fill it
//! (the store's and the core's full-disk tests share them; they need root).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::no_space_errno;

/// A tmpfs of `size` (e.g. "3m") mounted on a fresh directory; detached on drop.
pub struct SmallTmpfs(tempfile::TempDir);

impl SmallTmpfs {
    pub fn new(size: &str) -> SmallTmpfs {
        let dir = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("size={size},mode=0755").as_str()),
        )
        .expect("mount a tmpfs (the test needs root)");
        SmallTmpfs(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Fill the filesystem of `dir` with one file, `dir/filler`, until it says no space;
/// returns the file.
pub fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = File::create(&filler).unwrap();
    let chunk = vec![7u8; 64 << 10];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if no_space_errno(&e).is_some() => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    filler
}
