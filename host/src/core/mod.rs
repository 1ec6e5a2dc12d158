//! The backend-neutral filesystem. It knows nothing of either FUSE crate: adapters in
//! `crate::fuse` translate requests into calls on [`Fs`] and its answers into replies.

mod access;
mod auth_file;
mod config;
mod debug;
mod deferred;
mod fs;
mod handles;
mod kernel_cache;
mod live;
mod mounts;
mod others;
mod passthrough;
mod section;
pub mod sight;
mod stats;
pub mod stream_log;
mod types;
mod view_ops;
pub mod view_section;

pub use crate::vocab::*;
pub use access::{AgentCounts, Gate, PolicyTables, LIMITS};
pub use auth_file::{AUTH_INO, AUTH_NAME};
pub use config::FsConfig;
pub use debug::{process_figures, ProcessFigures};
pub use fs::Fs;
pub use handles::HandleCensus;
pub use kernel_cache::{Forgotten, KernelCache};
pub use mounts::{Mount, NotifyCounts, Stale};
pub use passthrough::PassthroughStatus;
pub use section::Section;
pub use sight::{Sight, Sights, Viewer};
pub use stats::CacheCounters;
pub use stats::{Latencies, LatencyCounts, Op, OpSnapshot, OpStats, SectionId};
pub use stream_log::WOULD_BLOCK;
pub use types::*;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_space;
