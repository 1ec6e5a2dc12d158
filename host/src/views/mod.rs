//! The WebAssembly component host: views are components (world `view-component` of
//! `wit/lighthouse-fs.wit`) loaded by wasmtime and called synchronously by the core.
//!
//! - [`ViewHost`] — load, check, list, and call views (`getattr`, `readdir`, `read`,
//!   `readlink`, `write`); errors are [`ViewCallError`] with an [`errno`](ViewCallError::errno).
//! - [`StoreAccess`] — what the core implements so views can see the event store.
//! - [`ViewLimits`] — time, memory and instance limits, with their reasons.
//! - [`builtin`] — the components built from `guest-ops/` by `build.rs`.
//!
//! Inside: `engine` (one wasmtime engine, epoch ticker), `component` (compile, check
//! against the contract, link), `pool` (a generation's instances), `instance_state` (what
//! a `Store` carries: empty WASI, memory cap, stderr tail), `store_import` (the `store`
//! import), `bindings` (generated from the WIT, converted once to [`crate::contract`]).

mod answers;
mod bindings;
mod bridge;
pub mod catalog;
mod compile_cache;
mod component;
mod engine;
mod error;
mod host;
mod instance_state;
mod limits;
mod memory_store;
mod pool;
mod store_import;
pub mod watch;

#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use bridge::{CoreViews, HistoryAccess};
pub use compile_cache::{CompileCache, Compiled};
pub use component::{check_view_name, CONTRACT_VERSION, RESERVED_VIEW_NAMES};
pub use error::{ViewCallError, FAULT_KINDS};
pub use host::{Installed, LoadedView, Prepared, Target, Version, ViewCallFigures, ViewHost};
pub use limits::ViewLimits;
pub use memory_store::MemoryStore;
pub use store_import::StoreAccess;

/// Components built from `guest-ops/` for wasm32-wasip2 by `host/build.rs`, embedded in
/// the binary: `BUILTIN` (the views the mount loads at start, and the `hello` example)
/// and `TEST_COMPONENTS` (views only tests load: `bad_*`, `test_*`). Each entry is
/// (file stem, component bytes); both lists are empty when guest-ops/ has no workspace.
pub mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

    /// The bytes of the built-in or test component with this file stem.
    pub fn component(stem: &str) -> Option<&'static [u8]> {
        BUILTIN
            .iter()
            .chain(TEST_COMPONENTS)
            .find(|(s, _)| *s == stem)
            .map(|(_, bytes)| *bytes)
    }
}

/// `lighthouse-fs views check FILE.wasm`: compiles, links, instantiates and asks `info`
/// of a component, against an empty store, with the default limits. The error says
/// precisely what is wrong.
pub fn check_component(bytes: &[u8]) -> anyhow::Result<crate::contract::ViewInfo> {
    let limits = ViewLimits {
        max_instances: 2,
        ..ViewLimits::default()
    };
    ViewHost::new(limits, Arc::new(MemoryStore::default()))?.check(bytes)
}
