//! `lighthouse-fs mount`: serve a store at a mountpoint until a signal or an unmount.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::{SigSet, Signal};

use crate::core::{Fs, FsConfig};
use crate::fuse::{self, mountpoint, Backend, MountOptions, StopSignal};
use crate::views::CoreViews;

#[derive(Args)]
pub struct MountArgs {
    /// Where to mount (an existing, empty directory).
    #[arg(required_unless_present = "mounts", conflicts_with = "mounts")]
    mountpoint: Option<PathBuf>,
    /// Serve the store at PATH through BACKEND (fuser or fuse3); give it twice, once per
    /// backend, to serve both side by side from one process (`--mount /a=fuser --mount
    /// /b=fuse3`): a change through one is seen through the other at once, and /metrics
    /// shows the two apart. Takes the place of MOUNTPOINT and --backend.
    #[arg(long = "mount", value_name = "PATH=BACKEND", value_parser = parse_mount)]
    mounts: Vec<(PathBuf, Backend)>,
    /// The store: a directory (created if missing), or a PostgreSQL database
    /// (`postgres://USER@HOST/DB`; the password from the URL or PGPASSWORD) that several
    /// hosts may share.
    #[arg(long, env = "LIGHTHOUSE_STORE", default_value_os_t = super::default_store())]
    store: PathBuf,
    #[command(flatten)]
    cache: super::CacheArgs,
    /// FUSE backend: fuser (threaded) or fuse3 (async, tokio).
    #[arg(long, env = "LIGHTHOUSE_FUSE_BACKEND", default_value = "fuser", value_parser = super::parse_backend)]
    backend: Backend,
    /// Do not let other users use the mount (the default for root is to allow them:
    /// agents run under their own uids).
    #[arg(long)]
    no_allow_other: bool,
    /// Worker threads (fuser), or reader threads and tokio workers (fuse3).
    #[arg(long, env = "LIGHTHOUSE_THREADS")]
    threads: Option<usize>,
    /// A view call's own time, in milliseconds, before it is stopped and its caller gets
    /// EIO; the call's wall time, the host's answers to the view included, may be ten
    /// times that. For custom views that legitimately work long (one that reads whole
    /// histories); the built-in views answer in microseconds.
    #[arg(long, env = "LIGHTHOUSE_VIEW_TIME_LIMIT", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    view_time_limit: u64,
    /// FUSE passthrough for open files of current/: `auto` serves them from the store's
    /// own files where the kernel (6.9+) and privileges (CAP_SYS_ADMIN) allow it, else
    /// through this process; `off` always through this process. health.json says which.
    #[arg(long, env = "LIGHTHOUSE_PASSTHROUGH", value_enum, default_value_t = PassthroughMode::Auto)]
    passthrough: PassthroughMode,
    /// Files smaller than this (bytes; K, M, G suffixes) are opened through the page
    /// cache even where passthrough could serve them: their cold reads are one or two
    /// requests, and a cached open keeps their pages from the last one.
    #[arg(long, env = "LIGHTHOUSE_PASSTHROUGH_MIN_SIZE", default_value = "128K", value_parser = super::parse_size)]
    passthrough_min_size: u64,
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
    /// Who may do what (TOML: agents by uid, gid or token binding, their permissions per
    /// section, rate limits; see docs/policy.md). Without it every caller may do what the
    /// mode bits allow.
    #[arg(long, env = "LIGHTHOUSE_POLICY")]
    policy: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics and liveness at /healthz (e.g.
    /// 127.0.0.1:9464; port 0 picks a free port, logged at start).
    #[arg(long, env = "LIGHTHOUSE_METRICS")]
    metrics: Option<String>,
}

/// The view runtime's limits with `--view-time-limit`.
fn view_limits(ms: u64) -> crate::views::ViewLimits {
    let deadline = std::time::Duration::from_millis(ms);
    crate::views::ViewLimits {
        call_deadline: deadline,
        call_wall_limit: deadline * 10,
        ..Default::default()
    }
}

/// `--passthrough`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PassthroughMode {
    Auto,
    Off,
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

    let targets = targets(&args)?;
    // Checked whole before anything is opened: a mistake stops the mount here.
    let policy = args
        .policy
        .as_deref()
        .map(crate::policy::Policy::load)
        .transpose()?;
    let opened = super::open_store(&args.store, &args.cache)?;
    let mut config = FsConfig::default();
    if let Some(n) = args.threads {
        config.worker_threads = n.max(1);
    }
    config.passthrough = args.passthrough == PassthroughMode::Auto;
    config.passthrough_min_size = args.passthrough_min_size;
    let store_dir = opened.store.dir().to_path_buf();
    let fs = Arc::new(Fs::new(opened, config));
    fs.commit_when_room();
    fs.settle_in_background();
    fs.follow_others();
    if let Some(policy) = policy {
        for warning in policy.warnings() {
            tracing::warn!("policy {}: {warning}", policy.origin());
        }
        tracing::info!(
            policy = policy.origin(),
            agents = policy.agents().len() - 1,
            "enforcing the policy"
        );
        fs.set_gate(Arc::new(crate::core::Gate::new(policy)));
    }
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
    let catalog = super::views::start_views(
        &fs,
        args.views.as_deref(),
        Some(&compile_cache),
        view_limits(args.view_time_limit),
        forget,
    )?;
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

    let allow_other = nix::unistd::geteuid().is_root() && !args.no_allow_other;
    let fsname = format!("{}{}", mountpoint::FSNAME_PREFIX, store_dir.display());
    let live = Arc::new(AtomicUsize::new(0));
    let mut sessions = Vec::new();
    let mut failed = None;
    // One after the other: each mount is live before the next starts, so a fuse3 session
    // can tell its /dev/fuse descriptor from the other mount's (see fuse/dev_notify.rs),
    // and a mount that fails stops the ones already up.
    for (path, backend) in targets {
        let opts = MountOptions {
            mountpoint: path,
            allow_other,
            fsname: fsname.clone(),
        };
        let (up, is_up) = mpsc::channel();
        let session = {
            let (fs, stop, live, serving) =
                (fs.clone(), stop.clone(), live.clone(), serving.clone());
            let store = store_dir.clone();
            std::thread::Builder::new()
                .name(format!("mount-{backend}"))
                .spawn(move || {
                    let mut was_up = false;
                    let result = fuse::serve(backend, fs, &opts, stop, &mut || {
                        was_up = true;
                        live.fetch_add(1, Ordering::SeqCst);
                        tracing::info!(mountpoint = %opts.mountpoint.display(), %backend, store = %store.display(), "serving");
                        let _ = up.send(());
                    });
                    // /healthz says serving while any mount serves.
                    if was_up && live.fetch_sub(1, Ordering::SeqCst) == 1 {
                        serving.store(false, Ordering::Relaxed);
                    }
                    result
                })
                .context("starting a mount thread")?
        };
        if is_up.recv().is_err() {
            // The session ended before it was live: its error says why.
            failed = Some(joined(session));
            break;
        }
        sessions.push(session);
    }
    if failed.is_some() {
        stop.stop();
    } else {
        serving.store(true, Ordering::Relaxed);
    }
    // Each session ends on a stop or when its mount goes away from outside; the others
    // serve on.
    let mut result = failed.unwrap_or(Ok(()));
    for session in sessions {
        let ended = joined(session);
        if result.is_ok() {
            result = ended;
        }
    }
    serving.store(false, Ordering::Relaxed);
    // Whatever happened to the sessions, every queued event reaches the log.
    fs.shutdown();
    result
}

/// The result of a mount thread, a panic included.
fn joined(session: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    session
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("a mount thread panicked")))
}

/// `PATH=BACKEND` of `--mount`.
fn parse_mount(s: &str) -> Result<(PathBuf, Backend), String> {
    let (path, backend) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: expected PATH=BACKEND, e.g. /mnt/a=fuser"))?;
    if path.is_empty() {
        return Err(format!("{s:?}: the path is empty"));
    }
    Ok((PathBuf::from(path), backend.parse()?))
}

/// The mountpoints to serve, checked and canonical, each with its backend: MOUNTPOINT
/// with --backend, or every --mount. Two mounts must not share a path, nor a backend
/// (their metrics are told apart by backend).
fn targets(args: &MountArgs) -> anyhow::Result<Vec<(PathBuf, Backend)>> {
    let wanted: Vec<(&Path, Backend)> = match &args.mountpoint {
        Some(path) => vec![(path, args.backend)],
        None => args.mounts.iter().map(|(p, b)| (p.as_path(), *b)).collect(),
    };
    let mut targets: Vec<(PathBuf, Backend)> = Vec::new();
    for (path, backend) in wanted {
        let path = mountpoint::prepare(path)?;
        if let Some((_, other)) = targets.iter().find(|(p, _)| *p == path) {
            anyhow::bail!(
                "--mount {}: the same mountpoint twice (with {other} and {backend})",
                path.display()
            );
        }
        if let Some((p, _)) = targets.iter().find(|(_, b)| *b == backend) {
            anyhow::bail!(
                "--mount {}={backend}: {backend} already serves {}; give each backend once",
                path.display(),
                p.display()
            );
        }
        targets.push((path, backend));
    }
    Ok(targets)
}
