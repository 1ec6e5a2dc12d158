//! `--watch`: reload the views directory whenever its files change.
//!
//! inotify events come in bursts (a build writes, renames, touches), so the watcher waits
//! for a quiet moment before reloading: [`QUIET`] after the last event, and never longer
//! than [`MAX_DELAY`] after the first. A file caught half-written fails to compile, is
//! refused (the old version serves on), and the next event retries it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use notify::{RecursiveMode, Watcher};

use super::catalog::Catalog;

/// Quiet time after the last event before a reload.
pub const QUIET: Duration = Duration::from_millis(100);
/// Longest wait from the first event of a burst to its reload.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// Watches the catalog's views directory until the process ends. The returned watcher
/// must be kept: dropping it stops the watching.
pub fn watch(catalog: Arc<Catalog>) -> anyhow::Result<notify::RecommendedWatcher> {
    let dir = catalog
        .dir()
        .context("--watch needs a views directory (--views DIR)")?
        .to_path_buf();
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_about_components(&event) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the views directory"),
        })
        .context("starting the views directory watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    std::thread::Builder::new()
        .name("views-watch".into())
        .spawn(move || reload_on_events(&catalog, &rx))
        .context("starting the views watch thread")?;
    tracing::info!(dir = %dir.display(), "watching views");
    Ok(watcher)
}

/// Events about `*.wasm` files (or the directory itself); not reads, not metadata.
fn is_about_components(event: &notify::Event) -> bool {
    use notify::EventKind;
    let relevant_kind = matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    ) && !matches!(
        event.kind,
        EventKind::Modify(notify::event::ModifyKind::Metadata(_))
    );
    relevant_kind
        && (event.paths.is_empty()
            || event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "wasm")))
}

fn reload_on_events(catalog: &Catalog, rx: &mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        let first = Instant::now();
        loop {
            let left = MAX_DELAY.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(QUIET.min(left)) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let report = catalog.reload();
        report.log("watch");
    }
}
