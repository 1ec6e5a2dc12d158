//! `lighthouse-fs mount`: serve a store at a mountpoint until a signal or an unmount.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use nix::sys::signal::{SigSet, Signal};

use crate::core::{Fs, FsConfig};
use crate::fuse::{self, mountpoint, Backend, MountOptions, StopSignal};
use crate::store::Store;
use crate::views::CoreViews;

#[derive(Args)]
pub struct MountArgs {
    /// Where to mount (an existing, empty directory).
    mountpoint: PathBuf,
    /// The store directory (created if missing).
    #[arg(long, env = "LIGHTHOUSE_STORE", default_value_os_t = super::default_store())]
    store: PathBuf,
    /// FUSE backend: fuser (threaded) or fuse3 (async, tokio).
    #[arg(long, env = "LIGHTHOUSE_FUSE_BACKEND", default_value = "fuser", value_parser = super::parse_backend)]
    backend: Backend,
    /// Do not let other users use the mount (the default for root is to allow them:
    /// agents run under their own uids).
    #[arg(long)]
    no_allow_other: bool,
    /// Worker threads (fuser) or tokio workers (fuse3).
    #[arg(long, env = "LIGHTHOUSE_THREADS")]
    threads: Option<usize>,
    /// Extra views: every `*.wasm` component in DIR (one named like a built-in view
    /// replaces it). SIGHUP or `lighthouse-fs views reload MOUNTPOINT` loads DIR again.
    #[arg(long, env = "LIGHTHOUSE_VIEWS")]
    views: Option<PathBuf>,
    /// Reload the views directory whenever a `*.wasm` in it is added, changed or removed.
    #[arg(long, requires = "views")]
    watch: bool,
    /// Where compiled components are kept, so a restart or an unchanged reload does not
    /// compile again [default: STORE/compiled].
    #[arg(long, env = "LIGHTHOUSE_COMPILE_CACHE")]
    compile_cache: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics and liveness at /healthz (e.g.
    /// 127.0.0.1:9464; port 0 picks a free port, logged at start).
    #[arg(long, env = "LIGHTHOUSE_METRICS")]
    metrics: Option<String>,
}

pub fn run(args: MountArgs) -> anyhow::Result<()> {
    // Block the termination signals in every thread (threads inherit the mask), so that
    // one dedicated thread receives them and asks the session to unmount.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    signals
        .thread_block()
        .context("blocking termination signals")?;

    let mountpoint = mountpoint::prepare(&args.mountpoint)?;
    let opened = Store::open(&args.store)?;
    let mut config = FsConfig::default();
    if let Some(n) = args.threads {
        config.worker_threads = n.max(1);
    }
    let store_dir = opened.store.dir().to_path_buf();
    let fs = Arc::new(Fs::new(opened, config));
    let compile_cache = args
        .compile_cache
        .unwrap_or_else(|| store_dir.join("compiled"));
    let forget = {
        let fs = fs.clone();
        Box::new(move |view: &str| {
            let forgotten = fs.forget_view(view);
            tracing::debug!(view, ?forgotten, "the kernel forgot the view's names");
        })
    };
    let catalog =
        super::views::start_views(&fs, args.views.as_deref(), Some(&compile_cache), forget)?;
    fs.set_views(Arc::new(CoreViews(catalog.host().clone())));
    // Without the socket `views reload` cannot reach this mount; SIGHUP still can.
    let _control = crate::control::listen(&store_dir, catalog.clone())
        .map_err(|e| tracing::warn!("no control socket: {e:#}"))
        .ok();
    let serving = Arc::new(AtomicBool::new(false));
    if let Some(addr) = &args.metrics {
        let sources = crate::metrics::Sources {
            fs: fs.clone(),
            catalog: catalog.clone(),
            serving: serving.clone(),
        };
        crate::metrics::serve(addr, sources)?;
    }
    let _watcher = if args.watch {
        Some(crate::views::watch::watch(catalog.clone())?)
    } else {
        None
    };

    let stop = StopSignal::new();
    {
        let stop = stop.clone();
        let catalog = catalog.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                match signals.wait() {
                    Ok(Signal::SIGHUP) => catalog.reload().log("SIGHUP"),
                    Ok(sig) => {
                        tracing::info!(signal = %sig, "unmounting");
                        stop.stop();
                        return;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "waiting for signals failed");
                        return;
                    }
                }
            })
            .context("starting the signal thread")?;
    }

    let is_root = nix::unistd::geteuid().is_root();
    let opts = MountOptions {
        mountpoint: mountpoint.clone(),
        allow_other: is_root && !args.no_allow_other,
        fsname: format!("{}{}", mountpoint::FSNAME_PREFIX, store_dir.display()),
    };
    let backend = args.backend;
    let result = fuse::serve(backend, fs.clone(), &opts, stop, &mut || {
        serving.store(true, Ordering::Relaxed);
        tracing::info!(mountpoint = %mountpoint.display(), %backend, store = %store_dir.display(), "serving");
    });
    serving.store(false, Ordering::Relaxed);
    // Whatever happened to the session, every queued event reaches the log.
    fs.shutdown();
    result
}
