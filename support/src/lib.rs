//! What the root package's mounted tests (`tests/common`) and benchmarks
//! (`benches/mount.rs`) share, so that neither keeps its own copy:
//!
//! - [`mounts`]: the mount table read from `/proc/self/mountinfo` (never touching the
//!   mounts, so a stuck FUSE server cannot hang it), lazy unmounts, fusectl aborts and
//!   [`DetachOnDrop`];
//! - [`scratch`]: canonical temp dirs and [`Tmpfs`], a fresh tmpfs unmounted on drop
//!   (also on panic);
//! - [`postgres`]: PostgreSQL for the tests: [`test_server`] (CI's server or a
//!   throwaway [`PgCluster`]) and fresh databases on it;
//! - [`netns`]: hosts on one machine, a network namespace and a veth pair each
//!   ([`NetNs`]), whose links can be cut and restored;
//! - [`server`]: a server process's life: [`wait_live`] until its mount answers,
//!   [`wait_exit`], [`terminate`].
//!
//! The binary under test is the caller's: only the root package's tests and benches
//! know its path (`CARGO_BIN_EXE_lighthouse-fs`).

pub mod mounts;
pub mod netns;
pub mod postgres;
pub mod scratch;
pub mod server;
pub mod sys;

pub use mounts::{
    abort_fuse_connection, detach_all, fuse_mounts, is_mounted, mounts, mounts_at, umount_lazy,
    DetachOnDrop, MountEntry,
};
pub use netns::NetNs;
pub use postgres::{psql, test_server, PgCluster, Server};
pub use scratch::{temp_dir, Tmpfs};
pub use server::{terminate, wait_exit, wait_live, NotLive};
pub use sys::{check, cpath, kernel_dev, signal, stat_dev};
