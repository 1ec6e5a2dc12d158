//! `MOUNT/debug/`: the host's own state as read-only JSON files, served natively (not a
//! view): `health.json`, `performance.json`, `cache_stats.json`, `views.json`.
//!
//! Always fresh: a file's document is rendered when it is opened, into the handle, so a
//! reader reading in chunks sees one consistent document, and the handle is opened with
//! direct I/O so the page cache never serves an older one. `stat` renders too (attribute
//! TTL zero): its size is the size of a document rendered now, so tools that trust
//! `st_size` read it whole; readers that read to EOF (cat, jq, Python) need no size.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::SerializeMap;
use serde::Serialize;

use super::handles::{DebugFileHandle, Handle, HandleCensus};
use super::stats::{CacheCounters, OpSnapshot};
use super::view_section::{RefusedView, ViewStatus, VIEW_INO_BASE};
use super::*;
use crate::fs_err;

/// The directory's name in the mount root.
pub const DEBUG_DIR: &str = "debug";
/// `MOUNT/debug/`; its files follow it. Far above any live-tree inode, below the views'.
pub const DEBUG_INO: Ino = VIEW_INO_BASE - 16;

/// Is `ino` the debug directory or one of its files?
pub fn is_debug_ino(ino: Ino) -> bool {
    (DEBUG_INO..=DEBUG_INO + DebugFile::ALL.len() as Ino).contains(&ino)
}

/// The files of `debug/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugFile {
    Health,
    Performance,
    CacheStats,
    Views,
}

impl DebugFile {
    /// In listing order.
    pub const ALL: [DebugFile; 4] = [
        DebugFile::Health,
        DebugFile::Performance,
        DebugFile::CacheStats,
        DebugFile::Views,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DebugFile::Health => "health.json",
            DebugFile::Performance => "performance.json",
            DebugFile::CacheStats => "cache_stats.json",
            DebugFile::Views => "views.json",
        }
    }

    pub fn ino(self) -> Ino {
        DEBUG_INO + 1 + self as Ino
    }

    fn from_ino(ino: Ino) -> Option<DebugFile> {
        DebugFile::ALL.into_iter().find(|f| f.ino() == ino)
    }

    fn from_name(name: &str) -> Option<DebugFile> {
        DebugFile::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl Fs {
    /// Where a debug inode is in the mount: `/debug`, `/debug/health.json`.
    pub(super) fn debug_path(&self, ino: Ino) -> String {
        match DebugFile::from_ino(ino) {
            Some(f) => format!("/{DEBUG_DIR}/{}", f.name()),
            None => format!("/{DEBUG_DIR}"),
        }
    }

    /// Lookup of `debug` in the root or of a name in `debug/`; `None` when `parent` and
    /// `name` are not the debug section's.
    pub(super) fn debug_lookup(&self, parent: Ino, name: &str) -> FsResult<Option<Entry>> {
        match parent {
            ROOT_INO if name == DEBUG_DIR => Ok(Some(self.debug_entry(DEBUG_INO)?)),
            DEBUG_INO => match name {
                "." => self.debug_entry(DEBUG_INO).map(Some),
                ".." => Ok(Some(self.entry(self.root_attr))),
                _ => match DebugFile::from_name(name) {
                    Some(f) => self.debug_entry(f.ino()).map(Some),
                    // The names of debug/ never change: the kernel may keep the miss.
                    None => Ok(Some(self.negative_entry())),
                },
            },
            p if is_debug_ino(p) => Err(fs_err!(ENOTDIR, "a debug file is not a directory")),
            _ => Ok(None),
        }
    }

    /// The entry of the debug directory or one of its files: the names are fixed, a
    /// file's attributes (its size) are as fresh as its content.
    pub(super) fn debug_entry(&self, ino: Ino) -> FsResult<Entry> {
        let (attr, attr_ttl) = self.debug_getattr(ino, None, 0)?;
        Ok(Entry {
            attr,
            entry_ttl: self.config().entry_ttl,
            attr_ttl,
            generation: 0,
        })
    }

    /// Attributes of `debug/` or one of its files. Asked through an open handle (as the
    /// kernel does for lseek(SEEK_END)), a file's size is that of the document the handle
    /// holds; otherwise that of one rendered now for a reader of mount `viewer`.
    pub(super) fn debug_getattr(
        &self,
        ino: Ino,
        fh: Option<u64>,
        viewer: MountId,
    ) -> FsResult<(Attr, Duration)> {
        if ino == DEBUG_INO {
            let attr = Attr {
                ino,
                perm: 0o555,
                nlink: 2,
                ..self.root_attr
            };
            return Ok((attr, self.config().attr_ttl));
        }
        let file = DebugFile::from_ino(ino).ok_or(fs_err!(ESTALE, "unknown debug inode"))?;
        let held = fh
            .and_then(|fh| self.handles.get(fh).ok())
            .and_then(|h| match &*h {
                Handle::Debug(d) => Some(d.bytes.len()),
                _ => None,
            });
        let size = held.unwrap_or_else(|| self.render(file, viewer).len());
        let now = now_ns();
        let attr = Attr {
            ino,
            kind: FileKind::File,
            perm: 0o444,
            nlink: 1,
            size: size as u64,
            atime: now,
            mtime: now,
            ctime: now,
            ..self.root_attr
        };
        Ok((attr, Duration::ZERO))
    }

    pub(super) fn debug_open(&self, caller: &Caller, ino: Ino, flags: i32) -> FsResult<Opened> {
        let Some(file) = DebugFile::from_ino(ino) else {
            return Err(fs_err!(EISDIR, "debug/ is a directory"));
        };
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(fs_err!(EROFS, "debug/ is read-only"));
        }
        // What the store holds includes every write closed before (`core/deferred.rs`).
        self.settle_closes();
        let bytes = self.render(file, caller.mount);
        tracing::debug!(
            file = file.name(),
            bytes = bytes.len(),
            "debug file rendered"
        );
        let fh = self
            .handles
            .insert(Handle::Debug(DebugFileHandle { bytes }));
        // Fresh on every open: never from the page cache, whatever the size says.
        Ok(Opened::fresh(fh))
    }

    /// The listing of `debug/`.
    pub(super) fn debug_list(&self) -> Vec<DirItem> {
        let mut items = vec![
            DirItem {
                ino: DEBUG_INO,
                offset: 1,
                kind: FileKind::Dir,
                name: ".".into(),
            },
            DirItem {
                ino: ROOT_INO,
                offset: 2,
                kind: FileKind::Dir,
                name: "..".into(),
            },
        ];
        for file in DebugFile::ALL {
            items.push(DirItem {
                ino: file.ino(),
                offset: items.len() as u64 + 1,
                kind: FileKind::File,
                name: file.name().into(),
            });
        }
        items
    }

    /// A document as of now, for a reader of mount `viewer` (0 or gone: the first
    /// mount): pretty JSON, ending with a newline.
    fn render(&self, file: DebugFile, viewer: MountId) -> Vec<u8> {
        let mounts = self.mounts();
        let mount = mounts
            .iter()
            .find(|m| m.id == viewer)
            .or(mounts.first())
            .map(|m| &**m);
        let rendered = match file {
            DebugFile::Health => serde_json::to_vec_pretty(&self.health(mount, &mounts)),
            DebugFile::Performance => serde_json::to_vec_pretty(&self.performance(mount, &mounts)),
            DebugFile::CacheStats => serde_json::to_vec_pretty(&self.cache_stats()),
            DebugFile::Views => serde_json::to_vec_pretty(&self.views_doc()),
        };
        let mut bytes = rendered.unwrap_or_else(|e| {
            // Plain data cannot fail to serialize; say so in the file if it ever does.
            tracing::error!(file = file.name(), error = %e, "rendering a debug file");
            serde_json::to_vec(&serde_json::json!({ "error": e.to_string() })).unwrap_or_default()
        });
        bytes.push(b'\n');
        bytes
    }

    fn view_status(&self) -> Vec<ViewStatus> {
        self.views.get().map(|v| v.status()).unwrap_or_default()
    }

    /// `health.json`: is the mount well, and the figures that say so (`mount`: the one
    /// read through; `mounts`: all of them).
    fn health(&self, mount: Option<&Mount>, mounts: &[Arc<Mount>]) -> Health {
        let now = now_ns();
        let store = self.store();
        // Rendered now: room that came back is seen at once.
        store.space().recheck();
        let failure = store.failure();
        let shortage = store.shortage();
        // The durable point first: the head read after it is never behind it.
        let durable = store.durable();
        let head = store.head();
        let views = self.view_status();
        let faulted: Vec<&ViewStatus> = views.iter().filter(|v| v.faults > 0).collect();
        let mut problems = Vec::new();
        if let Some(f) = &failure {
            problems.push(format!("the store refuses changes: {f}"));
        }
        if let Some(why) = store.degraded() {
            problems.push(format!("the store is degraded: {why}"));
        }
        if let Some(s) = &shortage {
            problems.push(format!(
                "the store is short of room: {s} (file content answers {}; metadata changes go on)",
                errno_name(s.errno())
            ));
        }
        for v in &faulted {
            problems.push(format!(
                "view {} (generation {}): {} fault(s), the last: {}",
                v.name,
                v.generation,
                v.faults,
                v.last_error.as_deref().unwrap_or("unknown")
            ));
        }
        // Without notifications that kernel serves what it cached, after a change through
        // another mount or a view swap, until the TTLs run out.
        for m in mounts.iter().filter(|m| m.kernel().is_none()) {
            problems.push(format!(
                "the kernel of the {} mount at {} cannot be told of changes: it may serve \
                 stale names and attributes for up to their TTL",
                m.info.backend,
                m.info.mountpoint.display()
            ));
        }
        // A refused component is a view not at the version its author put down.
        for r in self.views.get().map(|v| v.refused()).unwrap_or_default() {
            problems.push(format!(
                "component {} refused{}: {}",
                r.origin,
                r.view
                    .map(|v| format!(" (view {v} serves its previous version, if any)"))
                    .unwrap_or_default(),
                r.error
            ));
        }
        let status = if failure.is_some() {
            "failing"
        } else if problems.is_empty() {
            "ok"
        } else {
            "degraded"
        };
        let out_of_reach = store.degraded();
        let store_state = if failure.is_some() {
            "failing"
        } else if shortage.is_some() || out_of_reach.is_some() {
            "degraded"
        } else {
            "ok"
        };
        let info = mount.map(|m| &m.info);
        let c = &self.cache;
        Health {
            status,
            problems,
            backend: info.map(|m| m.backend),
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            mountpoint: info.map(|m| m.mountpoint.display().to_string()),
            started: info.map(|m| rfc3339(m.started_ns)),
            uptime_s: info.map(|m| seconds(m.started.elapsed())),
            mounts: mounts.iter().map(|m| MountSummary::of(m)).collect(),
            now: rfc3339(now),
            store: StoreHealth {
                state: store_state,
                reason: failure
                    .clone()
                    .or_else(|| shortage.as_ref().map(|s| s.to_string()))
                    .or(out_of_reach),
                path: store.dir().display().to_string(),
                head_seq: head,
                shown_seq: self.shown_seq(),
                durable_seq: durable.seq,
                pending_commit: head.saturating_sub(durable.seq),
                commits: durable.commits,
                last_commit: durable.last_commit_ns.map(rfc3339),
                last_commit_age_s: durable.last_commit_ns.map(|t| ns_seconds(now - t)),
                failure,
            },
            open_handles: self.handles.len(),
            passthrough: self.passthrough_status(),
            inodes: InodeCounts {
                live: self.with_tree(|t| t.len()),
                view_paths: self.view_inodes.len(),
            },
            lookups: LookupCounts {
                positive: CacheCounters::get(&c.lookups_positive),
                negative: CacheCounters::get(&c.lookups_negative),
            },
            views: ViewCounts {
                loaded: views.len(),
                with_faults: faulted.len(),
            },
            process: process_figures(),
        }
    }

    /// `performance.json`: every operation served through `mount` (the one read
    /// through), and the totals of every mount (side by side when there are two).
    fn performance(&self, mount: Option<&Mount>, mounts: &[Arc<Mount>]) -> Performance {
        let info = mount.map(|m| &m.info);
        let ops: Vec<(&'static str, OpFigures)> = mount
            .map(|m| m.stats.snapshot_all())
            .unwrap_or_default()
            .iter()
            .map(|s| (s.op.as_str(), OpFigures::from(s)))
            .collect();
        Performance {
            backend: info.map(|m| m.backend),
            since: info.map(|m| rfc3339(m.started_ns)),
            uptime_s: info.map(|m| seconds(m.started.elapsed())),
            requests: ops.iter().map(|(_, o)| o.count).sum(),
            errors: ops.iter().map(|(_, o)| o.errors).sum(),
            ops: Ordered(ops),
            mounts: mounts.iter().map(|m| MountSummary::of(m)).collect(),
        }
    }

    /// `cache_stats.json`: what the host and the kernel keep, and how it serves.
    fn cache_stats(&self) -> CacheStats {
        let config = self.config();
        let c = &self.cache;
        let get = CacheCounters::get;
        let history = self.store().history_stats().snapshot();
        let asked = history.hits + history.misses;
        CacheStats {
            kernel: KernelCaching {
                entry_ttl_s: seconds(config.entry_ttl),
                attr_ttl_s: seconds(config.attr_ttl),
                negative_ttl_s: seconds(config.negative_ttl),
                lookups_positive: get(&c.lookups_positive),
                negative_entries_served: get(&c.lookups_negative),
                file_opens: FileOpens {
                    keep_cache: get(&c.opens_keep_cache),
                    direct_io: get(&c.opens_direct_io),
                    uncached: get(&c.opens_uncached),
                    passthrough: get(&c.opens_passthrough),
                },
                dir_opens: DirOpens {
                    cached: get(&c.opendirs_cached),
                    uncached: get(&c.opendirs_uncached),
                },
            },
            inodes: self.inode_census(),
            handles: self.handles.census(),
            history_trees: HistoryTrees {
                capacity: history.capacity,
                kept: history.kept,
                kept_nodes: history.kept_nodes,
                hits: history.hits,
                misses: history.misses,
                built_from_kept: history.from_kept,
                hit_ratio: (asked > 0).then(|| round(history.hits as f64 / asked as f64, 3)),
            },
            scratch: scratch_figures(&self.store().dir().join("scratch")),
            view_answers: self.views.get().and_then(|v| v.answer_cache()),
            stream_logs: {
                let (kept, held_bytes) = self.stream_logs.figures();
                StreamLogFigures {
                    kept,
                    capacity: super::stream_log::MAX_LOGS,
                    held_bytes,
                }
            },
            policy: self.gate.get().map(|g| g.table_sizes(self.store().audit())),
        }
    }

    /// The inode table: live nodes by kind and reference, view paths numbered.
    fn inode_census(&self) -> InodeCensus {
        let views = self.view_inodes.counts();
        let mut census = InodeCensus {
            view_paths: views.paths,
            view_paths_kernel_referenced: views.kernel_referenced,
            view_kernel_refs: views.kernel_refs,
            view_paths_held: views.held,
            ..InodeCensus::default()
        };
        self.with_tree(|t| {
            census.live = t.len();
            for n in t.nodes() {
                match n.attr.kind {
                    FileKind::File => census.files += 1,
                    FileKind::Dir => census.dirs += 1,
                    FileKind::Symlink => census.symlinks += 1,
                    FileKind::Fifo | FileKind::Socket => census.fifos_sockets += 1,
                    FileKind::CharDev | FileKind::BlockDev => census.devices += 1,
                }
                let lookups = n.lookups.load(Ordering::Relaxed);
                census.kernel_referenced += u64::from(lookups > 0);
                census.kernel_refs += lookups;
                census.open += u64::from(n.open.load(Ordering::Relaxed) > 0);
                census.unlinked_open += u64::from(n.links.is_empty());
            }
        });
        census
    }

    /// `views.json`: the loaded views by name.
    fn views_doc(&self) -> ViewsDoc {
        let views = self.view_status();
        ViewsDoc {
            loaded: views.len(),
            with_faults: views.iter().filter(|v| v.faults > 0).count(),
            views: views.into_iter().map(|v| (v.name.clone(), v)).collect(),
            refused: self.views.get().map(|v| v.refused()).unwrap_or_default(),
        }
    }
}

// ---- the documents, fields in the order they are written ----

#[derive(Serialize)]
struct Health {
    /// "ok", "degraded" (a view faulted, a component was refused, the store is short of
    /// room: see `problems`) or "failing" (the store refuses changes).
    status: &'static str,
    problems: Vec<String>,
    backend: Option<&'static str>,
    version: &'static str,
    pid: u32,
    mountpoint: Option<String>,
    started: Option<String>,
    uptime_s: Option<f64>,
    /// Every mount serving the filesystem (the fields above are the one read through).
    mounts: Vec<MountSummary>,
    now: String,
    store: StoreHealth,
    open_handles: usize,
    /// FUSE passthrough: on, off (and why), or pending until a kernel was negotiated.
    passthrough: super::PassthroughStatus,
    inodes: InodeCounts,
    lookups: LookupCounts,
    views: ViewCounts,
    process: ProcessFigures,
}

#[derive(Serialize)]
struct StoreHealth {
    /// "ok", "degraded" (short of room on its filesystem: new file content answers
    /// ENOSPC, metadata changes go on; passes when there is room again) or "failing".
    state: &'static str,
    /// Why it is not "ok".
    reason: Option<String>,
    path: String,
    /// The last event handed out.
    head_seq: u64,
    /// The newest event the live tree shows, this host's kernels told of what it
    /// changed: with a store shared by several hosts, how far this one has followed
    /// the others (`head_seq` may be ahead while it folds).
    shown_seq: u64,
    /// Every event up to this one is committed to SQLite.
    durable_seq: u64,
    /// Events in the log not yet committed (the writer's queue and the batch it is
    /// committing): `head_seq - durable_seq`.
    pending_commit: u64,
    /// Batches committed since the mount started, the last one when.
    commits: u64,
    last_commit: Option<String>,
    last_commit_age_s: Option<f64>,
    failure: Option<String>,
}

#[derive(Serialize)]
struct InodeCounts {
    live: usize,
    view_paths: usize,
}

#[derive(Serialize)]
struct LookupCounts {
    positive: u64,
    negative: u64,
}

#[derive(Serialize)]
struct ViewCounts {
    loaded: usize,
    with_faults: usize,
}

/// What the kernel says of this process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessFigures {
    pub open_fds: Option<usize>,
    pub rss_bytes: Option<u64>,
    pub threads: Option<u64>,
}

#[derive(Serialize)]
struct Performance {
    backend: Option<&'static str>,
    since: Option<String>,
    uptime_s: Option<f64>,
    requests: u64,
    errors: u64,
    ops: Ordered<OpFigures>,
    mounts: Vec<MountSummary>,
}

/// One mount of the filesystem, in `health.json` and `performance.json`.
#[derive(Serialize)]
struct MountSummary {
    backend: &'static str,
    mountpoint: String,
    started: String,
    requests: u64,
    errors: u64,
    /// Notifications sent to this mount's kernel for changes made through another mount.
    notifications: NotifyFigures,
}

#[derive(Serialize)]
struct NotifyFigures {
    /// Can this kernel be told at all (the adapter found its way to it)?
    available: bool,
    sent: u64,
    failed: u64,
    timed_out: u64,
}

impl MountSummary {
    fn of(m: &Mount) -> MountSummary {
        let ops = m.stats.snapshot_all();
        let n = m.notify_counts();
        MountSummary {
            backend: m.info.backend,
            mountpoint: m.info.mountpoint.display().to_string(),
            started: rfc3339(m.info.started_ns),
            requests: ops.iter().map(|o| o.count).sum(),
            errors: ops.iter().map(|o| o.errors).sum(),
            notifications: NotifyFigures {
                available: m.kernel().is_some(),
                sent: n.sent,
                failed: n.failed,
                timed_out: n.timed_out,
            },
        }
    }
}

#[derive(Serialize)]
struct OpFigures {
    count: u64,
    errors: u64,
    errnos: Ordered<u64>,
    mean_us: Option<f64>,
    p50_us: Option<f64>,
    p90_us: Option<f64>,
    p99_us: Option<f64>,
    max_us: Option<f64>,
    total_ms: f64,
}

impl From<&OpSnapshot> for OpFigures {
    fn from(s: &OpSnapshot) -> Self {
        OpFigures {
            count: s.count,
            errors: s.errors,
            errnos: Ordered(s.errnos.clone()),
            mean_us: s.mean().map(micros),
            p50_us: s.p50.map(micros),
            p90_us: s.p90.map(micros),
            p99_us: s.p99.map(micros),
            max_us: (s.count > 0).then(|| micros(s.max)),
            total_ms: round(s.sum.as_secs_f64() * 1e3, 3),
        }
    }
}

#[derive(Serialize)]
struct CacheStats {
    kernel: KernelCaching,
    inodes: InodeCensus,
    handles: HandleCensus,
    history_trees: HistoryTrees,
    scratch: Scratch,
    /// Answers views declared immutable, kept by the view host (`null`: no views).
    view_answers: Option<super::view_section::AnswerCacheFigures>,
    stream_logs: StreamLogFigures,
    /// The policy's tables (`null`: no policy).
    policy: Option<super::access::PolicyTables>,
}

/// The logs of stream paths the host keeps (per path and caller; see `stream_log`).
#[derive(Serialize)]
struct StreamLogFigures {
    kept: usize,
    capacity: usize,
    /// Their checkpoints and cached bytes (logs being rendered at the moment not counted).
    held_bytes: usize,
}

#[derive(Serialize)]
struct KernelCaching {
    entry_ttl_s: f64,
    attr_ttl_s: f64,
    negative_ttl_s: f64,
    lookups_positive: u64,
    negative_entries_served: u64,
    file_opens: FileOpens,
    dir_opens: DirOpens,
}

#[derive(Serialize)]
struct FileOpens {
    keep_cache: u64,
    direct_io: u64,
    uncached: u64,
    /// Served by passthrough (those with direct I/O are counted there too).
    passthrough: u64,
}

#[derive(Serialize)]
struct DirOpens {
    cached: u64,
    uncached: u64,
}

#[derive(Serialize, Default)]
struct InodeCensus {
    live: usize,
    files: u64,
    dirs: u64,
    symlinks: u64,
    fifos_sockets: u64,
    devices: u64,
    kernel_referenced: u64,
    kernel_refs: u64,
    open: u64,
    unlinked_open: u64,
    /// View paths numbered now: those a kernel refers to (and its references), or the
    /// host holds (open files, listings being read); forgotten when neither does.
    view_paths: usize,
    view_paths_kernel_referenced: u64,
    view_kernel_refs: u64,
    view_paths_held: u64,
}

#[derive(Serialize)]
struct HistoryTrees {
    capacity: usize,
    kept: u64,
    kept_nodes: u64,
    hits: u64,
    misses: u64,
    built_from_kept: u64,
    hit_ratio: Option<f64>,
}

#[derive(Serialize)]
struct Scratch {
    files: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct ViewsDoc {
    loaded: usize,
    with_faults: usize,
    views: BTreeMap<String, ViewStatus>,
    /// Components offered and not loaded (a broken new version: the old one serves on).
    refused: Vec<RefusedView>,
}

/// A JSON object whose keys keep the order given (a `Value` object would sort them).
struct Ordered<V>(Vec<(&'static str, V)>);

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// What the kernel says of this process: descriptors, memory, threads (`null` when
/// unreadable).
pub fn process_figures() -> ProcessFigures {
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        // Less the descriptor reading the directory.
        .map(|d| d.count().saturating_sub(1));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    ProcessFigures {
        open_fds,
        rss_bytes: field("VmRSS:").map(|kb| kb * 1024),
        threads: field("Threads:"),
    }
}

/// Files being written (uncommitted copies in the store's `scratch/`).
fn scratch_figures(dir: &Path) -> Scratch {
    let (mut files, mut bytes) = (0, 0);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            files += 1;
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Scratch { files, bytes }
}

fn rfc3339(ns: TimeNs) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn seconds(d: Duration) -> f64 {
    round(d.as_secs_f64(), 3)
}

fn ns_seconds(ns: i64) -> f64 {
    round(ns as f64 / 1e9, 3)
}

/// Microseconds, to a tenth.
fn micros(d: Duration) -> f64 {
    round(d.as_nanos() as f64 / 1e3, 1)
}
