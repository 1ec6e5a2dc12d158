//! Which components a mount serves, and reloading them: the built-in views, overridden
//! by the `*.wasm` files of a views directory.
//!
//! [`Catalog::reload`] brings the served views in line with the directory: a new or
//! changed file is prepared (compiled, checked, asked `info`) while the old version keeps
//! serving, then swapped in; a file that fails any of that is refused and the old version
//! serves on; a removed file takes its view away, or gives a built-in of that name back.
//! Reloads are serialized (the watcher, SIGHUP and `views reload` may ask at once), and
//! after every change the kernel is told to forget the view's names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::ViewHost;

/// What a reload did with one view or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A view of a new name is served.
    Loaded,
    /// A new version replaced the one serving.
    Reloaded,
    /// Nothing changed.
    Unchanged,
    /// The file is gone, and with it the view.
    Removed,
    /// The file is gone; the built-in view of that name serves again.
    Restored,
    /// Refused: the version before it (if any) serves on.
    Failed,
}

/// One line of a reload's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadEntry {
    /// The view (unknown for a file that never loaded).
    pub view: Option<String>,
    /// Where it comes from: a file, or `built-in NAME`.
    pub origin: String,
    pub outcome: Outcome,
    /// The generation serving the view afterwards.
    pub generation: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What one reload did, view by view (sorted by view, then origin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub entries: Vec<ReloadEntry>,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Loaded => "loaded",
            Outcome::Reloaded => "reloaded",
            Outcome::Unchanged => "unchanged",
            Outcome::Removed => "removed",
            Outcome::Restored => "restored",
            Outcome::Failed => "failed",
        }
    }
}

impl ReloadReport {
    pub fn failed(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.outcome == Outcome::Failed)
            .count()
    }

    /// Logs what the reload changed (`trigger`: what asked for it); refusals were logged
    /// as they happened.
    pub fn log(&self, trigger: &str) {
        for entry in self.changes().filter(|e| e.outcome != Outcome::Failed) {
            tracing::info!(trigger, view = entry.view.as_deref().unwrap_or("?"),
                origin = %entry.origin, outcome = ?entry.outcome, generation = entry.generation,
                "views reloaded");
        }
    }

    /// Entries that changed something or failed (what a log needs).
    pub fn changes(&self) -> impl Iterator<Item = &ReloadEntry> {
        self.entries
            .iter()
            .filter(|e| e.outcome != Outcome::Unchanged)
    }
}

/// A built-in component: (file stem, bytes).
pub type Builtin = (&'static str, &'static [u8]);

/// The views a mount serves and where each comes from.
pub struct Catalog {
    host: Arc<ViewHost>,
    dir: Option<PathBuf>,
    /// Called with a view's name after it was loaded, replaced or removed.
    on_change: Box<dyn Fn(&str) + Send + Sync>,
    state: Mutex<State>,
    /// Outcomes other than `unchanged`, by view ("" for a file that never named one),
    /// since the start (for `/metrics`).
    counts: Mutex<BTreeMap<(String, Outcome), u64>>,
}

#[derive(Default)]
struct State {
    /// Built-in views by name.
    builtins: BTreeMap<String, Builtin>,
    /// The views directory's files as last seen.
    files: BTreeMap<PathBuf, FileState>,
}

struct FileState {
    hash: blake3::Hash,
    /// The view it serves (or last served, when it now fails).
    view: Option<String>,
    /// Why these bytes were refused.
    error: Option<String>,
}

fn builtin_origin(stem: &str) -> String {
    format!("built-in {stem}")
}

impl Catalog {
    /// Loads the built-ins (any failure is an error: the binary is broken), then the
    /// views directory (a file that fails is refused and reported, the mount goes on).
    pub fn start(
        host: Arc<ViewHost>,
        builtins: &[Builtin],
        dir: Option<PathBuf>,
        on_change: Box<dyn Fn(&str) + Send + Sync>,
    ) -> anyhow::Result<(Catalog, ReloadReport)> {
        let mut state = State::default();
        for &(stem, bytes) in builtins {
            let info = host
                .load(bytes, &builtin_origin(stem))
                .with_context(|| format!("loading the built-in view {stem}"))?;
            state.builtins.insert(info.name, (stem, bytes));
        }
        if let Some(dir) = &dir {
            if !dir.is_dir() {
                anyhow::bail!("the views directory {} is not a directory", dir.display());
            }
        }
        let catalog = Catalog {
            host,
            dir,
            on_change,
            state: Mutex::new(state),
            counts: Mutex::new(BTreeMap::new()),
        };
        let report = catalog.reload();
        Ok((catalog, report))
    }

    /// How often each view was loaded, reloaded, removed, restored or refused since the
    /// start ("" for a file that never named a view).
    pub fn outcome_counts(&self) -> Vec<(String, Outcome, u64)> {
        self.counts
            .lock()
            .iter()
            .map(|((view, outcome), n)| (view.clone(), *outcome, *n))
            .collect()
    }

    pub fn host(&self) -> &Arc<ViewHost> {
        &self.host
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Brings the served views in line with the views directory (see the module docs).
    pub fn reload(&self) -> ReloadReport {
        let mut state = self.state.lock();
        let mut entries = Vec::new();
        let present = match &self.dir {
            Some(dir) => match component_files(dir) {
                Ok(files) => files,
                Err(e) => {
                    // Keep serving what is served: a directory that went away for a
                    // moment is no reason to drop every view.
                    entries.push(ReloadEntry {
                        view: None,
                        origin: dir.display().to_string(),
                        outcome: Outcome::Failed,
                        error: Some(format!("{e:#}")),
                        generation: None,
                    });
                    return self.finish(entries);
                }
            },
            None => Vec::new(),
        };

        // New and changed files.
        for file in &present {
            let entry = self.reload_file(&mut state, file, &present);
            entries.push(entry);
        }
        // Files gone.
        let gone: Vec<PathBuf> = state
            .files
            .keys()
            .filter(|f| !present.contains(f))
            .cloned()
            .collect();
        for file in gone {
            let was = state.files.remove(&file).and_then(|f| f.view);
            let origin = file.display().to_string();
            self.host.forget_refused(&origin);
            if let Some(view) = was {
                if !served_by_a_file(&state, &view) {
                    entries.push(self.fall_back(&state, &view, origin));
                }
            }
        }
        self.finish(entries)
    }

    /// Loads `file` if its bytes are new.
    fn reload_file(&self, state: &mut State, file: &Path, present: &[PathBuf]) -> ReloadEntry {
        let origin = file.display().to_string();
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) => {
                let known = state.files.get(file).and_then(|f| f.view.clone());
                let error = format!("reading {origin}: {e}");
                return self.refuse(origin, known, error);
            }
        };
        let hash = blake3::hash(&bytes);
        if let Some(known) = state.files.get(file).filter(|f| f.hash == hash) {
            let generation = known.view.as_deref().and_then(|v| self.host.generation(v));
            return ReloadEntry {
                view: known.view.clone(),
                origin,
                outcome: match known.error {
                    Some(_) => Outcome::Failed,
                    None => Outcome::Unchanged,
                },
                generation,
                error: known.error.clone(),
            };
        }
        let before = state.files.get(file).and_then(|f| f.view.clone());
        let prepared = self.host.prepare(&bytes);
        let outcome = prepared.and_then(|prepared| {
            let name = prepared.info.name.clone();
            // Another file of the directory serving that name keeps it: the refusal says
            // which, so the author sees why this one is not served.
            if let Some(other) = present.iter().find(|other| {
                *other != file
                    && state
                        .files
                        .get(*other)
                        .is_some_and(|f| f.error.is_none() && f.view.as_deref() == Some(&name))
            }) {
                anyhow::bail!("view {name:?} is already served from {}", other.display());
            }
            Ok(self.host.install(prepared, &origin))
        });
        match outcome {
            Ok(installed) => {
                let name = installed.info.name.clone();
                self.host.forget_refused(&origin);
                (self.on_change)(&name);
                state.files.insert(
                    file.to_path_buf(),
                    FileState {
                        hash,
                        view: Some(name.clone()),
                        error: None,
                    },
                );
                // The file now holds another view: the one it served goes.
                if let Some(old) = before.filter(|old| *old != name) {
                    if !served_by_a_file(state, &old) {
                        let gone = self.fall_back(state, &old, origin.clone());
                        tracing::info!(view = old, outcome = ?gone.outcome, file = %origin,
                            "the file now holds view {name:?}");
                    }
                }
                ReloadEntry {
                    view: Some(name),
                    origin,
                    outcome: match installed.replaced {
                        Some(_) => Outcome::Reloaded,
                        None => Outcome::Loaded,
                    },
                    generation: Some(installed.generation),
                    error: None,
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                state.files.insert(
                    file.to_path_buf(),
                    FileState {
                        hash,
                        view: before.clone(),
                        error: Some(error.clone()),
                    },
                );
                self.refuse(origin, before, error)
            }
        }
    }

    fn refuse(&self, origin: String, view: Option<String>, error: String) -> ReloadEntry {
        let serving = view.as_deref().and_then(|v| self.host.generation(v));
        tracing::error!(file = %origin, view = view.as_deref().unwrap_or("?"),
            "view not loaded: {error}{}",
            if serving.is_some() { " (the version before it serves on)" } else { "" });
        self.host.note_refused(&origin, view.as_deref(), &error);
        ReloadEntry {
            view,
            origin,
            outcome: Outcome::Failed,
            generation: serving,
            error: Some(error),
        }
    }

    /// `view` lost its file: the built-in of that name serves again, or the view goes.
    fn fall_back(&self, state: &State, view: &str, origin: String) -> ReloadEntry {
        if let Some(&(stem, bytes)) = state.builtins.get(view) {
            let builtin = builtin_origin(stem);
            match self.host.load(bytes, &builtin) {
                Ok(_) => {
                    (self.on_change)(view);
                    return ReloadEntry {
                        view: Some(view.to_owned()),
                        origin: builtin,
                        outcome: Outcome::Restored,
                        generation: self.host.generation(view),
                        error: None,
                    };
                }
                // Cannot happen with a binary whose built-ins loaded at start; if it
                // does, the view goes rather than serve a file that is gone.
                Err(e) => tracing::error!(view, "the built-in does not load again: {e:#}"),
            }
        }
        self.host.unload(view);
        (self.on_change)(view);
        ReloadEntry {
            view: Some(view.to_owned()),
            origin,
            outcome: Outcome::Removed,
            generation: None,
            error: None,
        }
    }

    /// The report: what changed, then every other served view as unchanged.
    fn finish(&self, mut entries: Vec<ReloadEntry>) -> ReloadReport {
        for loaded in self.host.views() {
            let mentioned = entries
                .iter()
                .any(|e| e.view.as_deref() == Some(loaded.name.as_str()));
            if !mentioned {
                entries.push(ReloadEntry {
                    view: Some(loaded.name.clone()),
                    origin: loaded.origin.clone(),
                    outcome: Outcome::Unchanged,
                    generation: Some(loaded.generation),
                    error: None,
                });
            }
        }
        entries.sort_by(|a, b| (&a.view, &a.origin).cmp(&(&b.view, &b.origin)));
        let mut counts = self.counts.lock();
        for e in entries.iter().filter(|e| e.outcome != Outcome::Unchanged) {
            let view = e.view.clone().unwrap_or_default();
            *counts.entry((view, e.outcome)).or_default() += 1;
        }
        ReloadReport { entries }
    }
}

/// Is `view` served by a file of the directory (as last seen)?
fn served_by_a_file(state: &State, view: &str) -> bool {
    state
        .files
        .values()
        .any(|f| f.error.is_none() && f.view.as_deref() == Some(view))
}

/// The `*.wasm` regular files of `dir`, sorted; hidden files (an editor's or a copy's
/// temporary, `.name.wasm`) are not components yet.
fn component_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading views directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading views directory {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let hidden = name.as_encoded_bytes().first() == Some(&b'.');
        let is_wasm = path.extension().is_some_and(|e| e == "wasm");
        // Follows symlinks: a link to a build output is a fine way to serve it.
        if is_wasm && !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
