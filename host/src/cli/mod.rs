//! The `lighthouse-fs` command: mount, umount, import, export, log, views, auth.

mod auth;
mod export;
mod import;
mod log;
mod mount;
mod scaffold;
mod store;
mod time;
mod views;
mod xattrs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::fuse::Backend;

#[derive(Parser)]
#[command(
    name = "lighthouse-fs",
    version,
    about = "Event-sourced FUSE filesystem with WebAssembly views"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (for people) or JSON (one object per line, for collectors).
    /// Filter with RUST_LOG (default: info).
    #[arg(
        long,
        global = true,
        env = "LIGHTHOUSE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Mount the filesystem and serve it in the foreground until SIGINT/SIGTERM or umount.
    Mount(mount::MountArgs),
    /// Unmount a mounted lighthouse-fs (lazily if it is busy).
    Umount { mountpoint: PathBuf },
    /// Seed a store from a directory tree.
    Import(import::ImportArgs),
    /// Write the tree as it is now, or as it was at --at, into a directory.
    Export(export::ExportArgs),
    /// Print the event log (optionally only events touching PATH).
    Log(log::LogArgs),
    /// Work with view components.
    #[command(subcommand)]
    Views(views::ViewsCommand),
    /// Make this session an agent of a mount's policy (token binding through MOUNT/.auth).
    Auth(auth::AuthArgs),
    /// Work with stores as a whole (copy one, history and all, into another).
    #[command(subcommand)]
    Store(store::StoreCommand),
}

/// The store used when --store is not given: `$XDG_DATA_HOME/lighthouse-fs/store`
/// (`~/.local/share/lighthouse-fs/store`).
pub fn default_store() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("/var/lib"))
        .join("lighthouse-fs")
        .join("store")
}

/// Open the store `spec` names for writing: a directory (the embedded store) or a
/// PostgreSQL URL (`postgres://…`), whose objects are cached in `cache` (default: one
/// directory per database under the user's cache directory).
pub fn open_store(
    spec: &std::path::Path,
    cache: &CacheArgs,
) -> anyhow::Result<crate::store::OpenedStore> {
    use crate::store::{postgres, EmbeddedStore, PgStore};
    match spec.to_str().filter(|s| postgres::is_url(s)) {
        Some(url) => {
            let dir = cache
                .cache
                .clone()
                .unwrap_or_else(|| postgres::default_cache_dir(url));
            PgStore::open(url, &dir, cache.cache_size)
        }
        None => EmbeddedStore::open(spec),
    }
}

/// Where a PostgreSQL store keeps its local copies of file contents.
#[derive(clap::Args, Debug, Clone)]
pub struct CacheArgs {
    /// With a PostgreSQL store: the local cache of file contents (and the mount's
    /// control socket) [default: a directory per database under ~/.cache/lighthouse-fs].
    #[arg(long, env = "LIGHTHOUSE_CACHE")]
    pub cache: Option<PathBuf>,
    /// With a PostgreSQL store: the most the cache keeps (bytes, or with K, M, G, T);
    /// the least recently used go first, to be fetched again when read.
    #[arg(long, env = "LIGHTHOUSE_CACHE_SIZE", default_value = "4G", value_parser = parse_size)]
    pub cache_size: u64,
}

/// `4096`, `512K`, `64M`, `4G`, `1T` (powers of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?}: the unit is K, M, G or T")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (bytes, or a number with K, M, G or T)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, like every other error: clap's first line without its prefix.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!(
                "lighthouse-fs: error: {}",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Mount(args) => mount::run(args),
        Command::Umount { mountpoint } => crate::fuse::mountpoint::unmount(&mountpoint),
        Command::Import(args) => import::run(args),
        Command::Export(args) => export::run(args),
        Command::Log(args) => log::run(args),
        Command::Store(command) => store::run(command),
        Command::Views(cmd) => views::run(cmd),
        Command::Auth(args) => auth::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of contexts, outermost first.
            eprintln!("lighthouse-fs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // At debug level, one line per FUSE request as its span closes, with its time.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    let _ = match format {
        // Colours for a person at a terminal; plain text for logs, pipes and files.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        // One JSON object per line: timestamp, level, fields, and the spans it is in.
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

/// Without RUST_LOG: our own notices; of fuser only errors — it warns once per mount for
/// each operation left to the kernel's ENOSYS fallback (xattrs), which is by design; of
/// fuse3 only warnings — it runs each request in an info span, a line per request here.
const DEFAULT_LOG: &str = "info,fuser=error,fuse3=warn";
