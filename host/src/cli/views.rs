//! Views at the command line: loading them for a mount, and `lighthouse-fs views check`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use crate::core::Fs;
use crate::store::History;
use crate::views::{builtin, check_component, HistoryAccess, ViewHost, ViewLimits};

/// Built-in components that are examples for view authors, not served by default.
const EXAMPLES: &[&str] = &["hello"];

#[derive(Subcommand)]
pub enum ViewsCommand {
    /// Validate a component against the contract and print its info.
    Check { file: PathBuf },
}

pub fn run(cmd: ViewsCommand) -> anyhow::Result<()> {
    match cmd {
        ViewsCommand::Check { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let info = check_component(&bytes)
                .with_context(|| format!("{} is not a valid view", file.display()))?;
            println!(
                "{}: view {:?} version {} — {}",
                file.display(),
                info.name,
                info.version,
                info.description
            );
            Ok(())
        }
    }
}

/// The view host of a mount: the built-in views, then every `*.wasm` of `dir` (which
/// replace built-ins of the same name). A component that does not load is logged and
/// skipped: the mount serves the others.
pub fn start_views(fs: &Fs, dir: Option<&Path>) -> anyhow::Result<Arc<ViewHost>> {
    let access = Arc::new(HistoryAccess(History::new(fs.store().clone())));
    let host =
        Arc::new(ViewHost::new(ViewLimits::default(), access).context("starting the view host")?);
    for (stem, bytes) in builtin::BUILTIN
        .iter()
        .filter(|(s, _)| !EXAMPLES.contains(s))
    {
        host.load(bytes, &format!("built-in {stem}"))
            .with_context(|| format!("loading the built-in view {stem}"))?;
    }
    if let Some(dir) = dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading views directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        for file in files {
            let loaded = std::fs::read(&file)
                .with_context(|| format!("reading {}", file.display()))
                .and_then(|bytes| host.load(&bytes, &file.display().to_string()));
            match loaded {
                Ok(info) => {
                    tracing::info!(view = %info.name, file = %file.display(), "view loaded")
                }
                Err(e) => tracing::error!(file = %file.display(), "view not loaded: {e:#}"),
            }
        }
    }
    Ok(host)
}
