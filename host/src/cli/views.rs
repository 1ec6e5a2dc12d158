//! Views at the command line: loading them for a mount, `lighthouse-fs views check` and
//! `lighthouse-fs views reload`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use crate::core::Fs;
use crate::store::History;
use crate::views::catalog::{Builtin, Catalog, Outcome, ReloadReport};
use crate::views::{builtin, check_component, HistoryAccess, ViewHost, ViewLimits};

/// Built-in components that are examples for view authors, not served by default.
const EXAMPLES: &[&str] = &["hello"];

#[derive(Subcommand)]
pub enum ViewsCommand {
    /// Validate a component against the contract and print its info.
    Check { file: PathBuf },
    /// Make a mount load its views directory again: new and changed components are
    /// swapped in, removed ones taken away. Prints, per view, what happened; fails if a
    /// component was refused (the version before it serves on).
    Reload {
        mountpoint: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a new view crate at DIR/NAME (DIR: the current directory), with the SDK.
    New { name: String, dir: Option<PathBuf> },
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
        ViewsCommand::Reload { mountpoint, json } => {
            let report = crate::control::reload(&mountpoint)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render(&report));
            }
            match report.failed() {
                0 => Ok(()),
                n => anyhow::bail!("{n} component(s) refused; see above"),
            }
        }
        ViewsCommand::New { name, dir } => super::scaffold::run(&name, dir.as_deref()),
    }
}

/// A reload's report for people: one line per view or file.
fn render(report: &ReloadReport) -> String {
    let mut out = String::new();
    for e in &report.entries {
        let view = e.view.as_deref().unwrap_or("?");
        let generation = e
            .generation
            .map_or(String::new(), |g| format!(" generation {g}"));
        let line = match e.outcome {
            Outcome::Failed => {
                let serving = match e.generation {
                    Some(g) => format!("generation {g} serves on"),
                    None => "not served".to_owned(),
                };
                format!(
                    "{view}: failed ({serving}): {}: {}",
                    e.origin,
                    e.error.as_deref().unwrap_or("unknown error")
                )
            }
            outcome => {
                format!("{view}: {}{generation} ({})", outcome.as_str(), e.origin)
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The views of a mount: the built-in views, then every `*.wasm` of `dir` (which replace
/// built-ins of the same name), compiled through the cache in `compiled`. A component
/// that does not load is logged and refused: the mount serves the others. `on_change` is
/// called with a view's name whenever it is loaded again or removed.
pub fn start_views(
    fs: &Fs,
    dir: Option<&Path>,
    compiled: Option<&Path>,
    limits: ViewLimits,
    on_change: Box<dyn Fn(&str) + Send + Sync>,
) -> anyhow::Result<Arc<Catalog>> {
    let access = Arc::new(HistoryAccess::new(
        History::new(fs.store().clone()),
        fs.sights().clone(),
    ));
    let mut host = ViewHost::new(limits, access).context("starting the view host")?;
    if let Some(cache) = compiled {
        host = host.with_compile_cache(cache)?;
    }
    let builtins: Vec<Builtin> = builtin::BUILTIN
        .iter()
        .filter(|(s, _)| !EXAMPLES.contains(s))
        .copied()
        .collect();
    // Absolute, so that origins in logs and reports say where the file is.
    let dir = dir
        .map(|d| {
            d.canonicalize()
                .with_context(|| format!("views directory {}", d.display()))
        })
        .transpose()?;
    let (catalog, report) = Catalog::start(Arc::new(host), &builtins, dir, on_change)?;
    report.log("start");
    Ok(Arc::new(catalog))
}
