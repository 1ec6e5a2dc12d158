//! Tunables of the core and of the kernel connection, in one place, with the reason for
//! each default. Both adapters read the same values, so both backends negotiate alike.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FsConfig {
    /// How long the kernel may cache a name → inode mapping of the live tree. Every change
    /// to the live tree passes through this mount's kernel, which updates its own dentry
    /// cache as it goes, so a long TTL is safe; it saves a LOOKUP round trip per path
    /// component on every `stat`/`open`. (A TTL of exactly zero would send a LOOKUP per
    /// component per syscall — the single largest cost of a naive FUSE filesystem.)
    pub entry_ttl: Duration,
    /// How long the kernel may cache attributes. Same reasoning as `entry_ttl`.
    pub attr_ttl: Duration,
    /// How long the kernel may remember that a name does *not* exist. Creates through this
    /// mount replace the negative dentry, so the only cost is for changes made behind the
    /// kernel's back, which the live tree does not have.
    pub negative_ttl: Duration,
    /// Largest WRITE request the kernel may send (bytes). 1 MiB halves the round trips of
    /// large sequential writes compared to the 128 KiB default.
    pub max_write: u32,
    /// Largest read-ahead the kernel may ask for in one READ.
    pub max_readahead: u32,
    /// Requests the kernel may keep in flight in the background (read-ahead, async I/O).
    /// The kernel default of 12 starves a multi-threaded daemon.
    pub max_background: u16,
    /// Threads serving requests on the threaded (fuser) backend, and tokio workers on the
    /// async (fuse3) backend.
    pub worker_threads: usize,
    /// Serve open live files by FUSE passthrough where the kernel allows it: reads then
    /// run at the speed of the store's own filesystem, without a round trip per block.
    /// Off only to compare, or to debug the data path.
    pub passthrough: bool,
    /// Files smaller than this are opened through the page cache even where passthrough
    /// could serve them: a cold read of them is one or two READs, and an open by
    /// passthrough costs more (the backing file's open and registration) while a cached
    /// open of an unchanged file keeps its pages from the last one. 128 KiB, the
    /// kernel's read-ahead window: measured on the development machine, an open + read
    /// 4 KiB + close of a hot file took 9 µs cached against 14 µs by passthrough, and a
    /// cold read of 256 MiB 1.5 GB/s cached against 3.6 GB/s by passthrough.
    pub passthrough_min_size: u64,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            entry_ttl: Duration::from_secs(10),
            attr_ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(10),
            max_write: 1 << 20,
            max_readahead: 1 << 20,
            max_background: 64,
            worker_threads: std::thread::available_parallelism()
                .map(|n| n.get().clamp(2, 8))
                .unwrap_or(4),
            passthrough: true,
            passthrough_min_size: 128 << 10,
        }
    }
}
