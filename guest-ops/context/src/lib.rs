//! `context/`: context packages. An agent names what it is working on (paths and globs
//! of `current/`, and a purpose) by writing a manifest; the view serves those files'
//! content and hashes, and what is known about them (annotations, recent changes), as
//! of the moment of reading.
//!
//! ```text
//! $ mkdir -p MOUNT/context/login
//! $ echo '{"purpose":"fix the login redirect","paths":["src/auth/**/*.rs","README.md"]}' \
//!       > MOUNT/context/login/manifest.json
//! $ ls MOUNT/context MOUNT/context/login
//! MOUNT/context:
//! login
//! MOUNT/context/login:
//! context.json  files.json  manifest.json
//! $ jq -r '.files[].path' MOUNT/context/login/files.json
//! /README.md
//! /src/auth/session.rs
//! $ echo '{"purpose":"x","paths":[]}' > MOUNT/context/login/manifest.json
//! bash: echo: write error: Invalid argument
//! ```
//!
//! - `context/` lists the packages that have a manifest. Any valid package name
//!   resolves (1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.`), as an empty
//!   package whose `manifest.json` is `{}`, so `mkdir -p` and a write of its manifest
//!   work: a package exists once a manifest is written (a plain `mkdir` of a new name
//!   says it exists already, since every valid name does). A bad name is EINVAL on
//!   `mkdir` and writes, not found elsewhere. Nothing else can be created (EACCES).
//! - `<pkg>/manifest.json` (0666: the policy's `context:write` decides): one write of
//!   one JSON document at offset 0 (see [`manifest`] for the format and limits). A good one is recorded in the log as an
//!   event `context` at path `/<pkg>` whose body is the normalized manifest, attributed
//!   to the writer; the package is its latest such event, so a later manifest replaces
//!   the earlier, and `{"delete": true}` removes the package. A bad one is EINVAL with
//!   the reason (in the host's log), and nothing is recorded. Reading gives the
//!   manifest back pretty-printed, with its defaults.
//! - `<pkg>/files.json` ([`files_json`]) and `<pkg>/context.json` ([`context_json`]),
//!   read-only, volatile: rendered at the head when read; their sizes are exact. They
//!   are rendered with the reader's eyes (the store shows each caller what it may
//!   read): what the patterns reached that the reader may not read is left out and
//!   named in `denied` (a file, or a directory it may not list as `/dir/`), by name only.
//!
//! Which files are selected: [`glob`] (patterns) and [`select`] (the bounded walk).
//! Layout: [`name`], [`manifest`], [`packages`] (the fold of `context` events), [`glob`],
//! [`select`], [`files_json`], [`context_json`], [`event_json`], [`base64`], and [`view`]
//! (the answers, generic over the store and tested natively against the SDK's model
//! store); this file binds them to the component.

pub mod base64;
pub mod context_json;
pub mod event_json;
pub mod files_json;
pub mod glob;
pub mod manifest;
pub mod name;
pub mod packages;
pub mod select;
pub mod view;

#[cfg(test)]
mod tests;

use lighthouse_view_sdk::{
    Attrs, Caller, DirEntry, FsError, HostStore, NodeKind, OpenMode, View, ViewInfo,
};

use crate::view::Context;

thread_local! {
    /// One per instance: its cache of rendered documents lives as long as the instance.
    static VIEW: Context<HostStore> = const { Context::new(HostStore) };
}

/// Runs `f` on this instance's view, serving caller `c`.
fn serve<T>(c: Caller, f: impl FnOnce(&Context<HostStore>) -> T) -> T {
    VIEW.with(|v| {
        v.serving(&c);
        f(v)
    })
}

struct ContextView;

impl View for ContextView {
    fn info() -> ViewInfo {
        lighthouse_view_sdk::view_info!(
            "context",
            "Context packages: write <pkg>/manifest.json (purpose, paths and globs of current/); read files.json (content, hashes) and context.json (annotations, recent events)"
        )
    }

    fn getattr(c: Caller, path: String) -> Result<Attrs, FsError> {
        serve(c, |v| v.getattr(&path))
    }

    fn readdir(c: Caller, path: String) -> Result<Vec<DirEntry>, FsError> {
        serve(c, |v| v.readdir(&path))
    }

    fn read(c: Caller, path: String, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        serve(c, |v| v.read(&path, offset, len))
    }

    fn readlink(c: Caller, path: String) -> Result<String, FsError> {
        serve(c, |v| v.readlink(&path))
    }

    fn open(c: Caller, path: String, write: bool) -> Result<OpenMode, FsError> {
        serve(c, |v| v.open(&path, write))
    }

    fn write(c: Caller, path: String, offset: u64, data: Vec<u8>) -> Result<u32, FsError> {
        serve(c, |v| v.write(&path, offset, &data))
    }

    fn create(c: Caller, path: String, kind: NodeKind) -> Result<Attrs, FsError> {
        serve(c, |v| v.create(&path, kind))
    }

    fn remove(c: Caller, path: String, dir: bool) -> Result<(), FsError> {
        serve(c, |v| v.remove(&path, dir))
    }
}

lighthouse_view_sdk::export!(ContextView);
