//! lighthouse-fs host: a backend-neutral filesystem core over an event-sourced store,
//! served through FUSE by either `fuser` (threaded) or `fuse3` (async on tokio).

pub mod cli;
pub mod contract;
pub mod control;
pub mod core;
pub mod fuse;
pub mod metrics;
pub mod policy;
pub mod store;
pub mod views;
pub mod vocab;

#[cfg(test)]
mod test_disk;
