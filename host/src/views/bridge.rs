//! Where the view host meets the rest of the host: the store seen through
//! [`History`] as the views' `store` import, and the [`ViewHost`] seen by the core as its
//! [`Views`](crate::core::view_section::Views).

use std::sync::Arc;

use super::host::Version;
use super::{StoreAccess, ViewCallError, ViewHost};
use crate::contract::{self as vt, Chunk, NodeKind, ViewAttrs, ViewDirEntry, ViewError};
use crate::core::sight::{Class, Seen};
use crate::core::view_section::{
    check_open, AnswerCacheFigures, OpenedView, RefusedView, ViewPath, ViewStatus, ViewVersion,
    Views,
};
use crate::core::{Caller, FileKind, FsError, FsResult, Sights, Viewer};
use crate::store::{grants_in, Change, Event, Hash, History, Need, Tree};

/// The event store as views see it: past trees by seq, the log, the host's clock, each
/// seen with the eyes of the caller of the view call being served.
pub struct HistoryAccess {
    history: History,
    sights: Arc<Sights>,
}

/// How many events one `events` call looks at, at most, for a caller who may see few of
/// them: the page's `through` tells the view where to go on.
const MAX_SCAN: usize = 64 * 1024;

/// What an audit record below a view shows a caller other than root: the view's
/// directory alone (`None`: the path as it is). A view's names mirror the tree's
/// (`shadows/priv/x`, `history/@3/priv/x`) in ways only the view knows, so the host
/// cannot check them as it checks a path of `current/`.
fn view_section_of(path: &str, viewer: &Viewer) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let (top, below) = rest.split_once('/')?;
    if matches!(top, "current" | "debug") || below.is_empty() {
        return None;
    }
    viewer.depends();
    (viewer.sight.creds.uid != 0).then(|| format!("/{top}"))
}

/// One page of what a caller may see of a log (events, audit records): batches of
/// `limit` from `fetch(after)`, each item kept or left out by `keep` (a batch at a time,
/// as (seq, what is shown)), until `limit` are kept, the log ends or [`MAX_SCAN`] were
/// looked at. Returns what was kept and how far the log was looked at.
fn page_of<T, R>(
    after: u64,
    limit: u32,
    mut fetch: impl FnMut(u64) -> Vec<T>,
    mut keep: impl FnMut(Vec<T>) -> Vec<(u64, Option<R>)>,
) -> (Vec<R>, u64) {
    let (mut kept, mut through, mut scanned) = (Vec::new(), after, 0);
    while scanned < MAX_SCAN && kept.len() < limit as usize {
        let batch = fetch(through);
        let n = batch.len();
        for (seq, shown) in keep(batch) {
            through = seq;
            kept.extend(shown);
            if kept.len() == limit as usize {
                return (kept, through);
            }
        }
        scanned += n;
        if n < limit as usize {
            break;
        }
    }
    (kept, through)
}

impl HistoryAccess {
    pub fn new(history: History, sights: Arc<Sights>) -> HistoryAccess {
        HistoryAccess { history, sights }
    }

    /// The tree after `seq`, if the viewer may see `path` there as `need` asks:
    /// `PermissionDenied` otherwise, checked before the path is looked up, so that what is
    /// missing tells no more than what is there.
    fn tree_for(
        &self,
        viewer: &Viewer,
        path: &str,
        seq: u64,
        need: Need,
    ) -> Result<Arc<Tree>, ViewError> {
        if !viewer.sight.may(Class::Tree, viewer) {
            return Err(ViewError::PermissionDenied);
        }
        let tree = self.history.tree_at(seq).map_err(error_out)?;
        if !viewer.sight.passes(&grants_in(&tree, path, need), viewer) {
            return Err(ViewError::PermissionDenied);
        }
        Ok(tree)
    }

    /// How much of `e` the viewer may see, by its label's verdict `seen`.
    fn seen(&self, viewer: &Viewer, e: &Event, seen: Seen) -> Seen {
        let sight = &viewer.sight;
        let class = match e.change.view() {
            Some(view) => sight.may_view(view, viewer),
            None => sight.may(Class::Events, viewer),
        };
        match (&e.change, seen) {
            _ if !class => Seen::Hidden,
            // An attribute's name and value, an annotation, are about the node's content.
            (
                Change::SetXattr { .. } | Change::RemoveXattr { .. } | Change::View { .. },
                Seen::Name,
            ) => Seen::Hidden,
            (_, seen) => seen,
        }
    }
}

fn error_out(e: FsError) -> ViewError {
    match e.errno {
        libc::ENOENT => ViewError::NotFound,
        libc::ENOTDIR => ViewError::NotADirectory,
        libc::EISDIR => ViewError::IsADirectory,
        libc::EINVAL => ViewError::Invalid(e.message.into_owned()),
        _ => ViewError::Internal(e.to_string()),
    }
}

/// What a view is given of a `trusted.*` attribute's name: the namespace alone. Only root
/// may list those names (listxattr hides them from others, as on tmpfs), and views
/// answer every caller alike, so neither the name nor the value's size reaches them.
const TRUSTED_REDACTED: &str = "trusted.*";

fn event_out(e: Event) -> vt::EventInfo {
    let trusted = e.change.op().ends_with("xattr")
        && e.change
            .path2()
            .is_some_and(|name| name.starts_with("trusted."));
    let (size, hash) = match &e.change {
        crate::store::Change::Write { size, hash, .. } => (Some(*size), hash.map(|h| h.to_hex())),
        // path2 names the attribute; its size is the value's.
        crate::store::Change::SetXattr { value, .. } if !trusted => {
            (Some(value.len() as u64), None)
        }
        _ => (None, None),
    };
    let path2 = if trusted {
        Some(TRUSTED_REDACTED.to_string())
    } else {
        e.change.path2().map(String::from)
    };
    vt::EventInfo {
        seq: e.seq,
        time_ns: e.time,
        agent: e.agent.as_deref().map(String::from),
        uid: e.caller.uid,
        gid: e.caller.gid,
        pid: e.caller.pid,
        op: e.change.op().to_string(),
        path: e.change.path().to_string(),
        path2,
        size,
        hash,
        view: e.change.view().map(String::from),
        body: e.change.body().map(String::from),
    }
}

impl StoreAccess for HistoryAccess {
    fn head(&self) -> u64 {
        self.history.head()
    }

    fn now_ns(&self) -> i64 {
        crate::core::now_ns()
    }

    fn viewer(&self, caller: &Caller) -> Viewer {
        Viewer::new(
            self.sights
                .of(caller.agent_name, caller.uid, caller.gid, caller.pid),
        )
    }

    fn events(
        &self,
        viewer: &Viewer,
        after: u64,
        limit: u32,
        filter: &vt::EventFilter,
    ) -> vt::EventsPage {
        let labels = self.history.store().labels();
        let fetch = |after| {
            let (prefix, ops) = (filter.prefix.as_deref(), &filter.ops);
            self.history
                .events(after, limit, prefix, ops)
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "events for a view");
                    Vec::new()
                })
        };
        let keep = |batch: Vec<Event>| {
            let ids = labels.ids(batch.iter().map(|e| e.seq));
            let verdicts = viewer.sight.seen(labels, &ids, viewer);
            batch
                .into_iter()
                .zip(verdicts)
                .map(|(e, verdict)| {
                    let seq = e.seq;
                    let seen = self.seen(viewer, &e, verdict);
                    (
                        seq,
                        (seen != Seen::Hidden).then(|| {
                            let mut out = event_out(e);
                            if seen == Seen::Name {
                                // A hash is the content in short: it confirms a guess of it.
                                out.hash = None;
                            }
                            out
                        }),
                    )
                })
                .collect()
        };
        let (events, through) = page_of(after, limit, fetch, keep);
        vt::EventsPage { events, through }
    }

    fn seq_at_time(&self, time_ns: i64) -> u64 {
        self.history.seq_at_time(time_ns).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "seq-at-time for a view");
            0
        })
    }

    fn stat_at(&self, viewer: &Viewer, path: &str, seq: u64) -> Result<ViewAttrs, ViewError> {
        let tree = self.tree_for(viewer, path, seq, Need::Reach)?;
        let n = tree
            .node(tree.resolve(path).map_err(error_out)?)
            .map_err(error_out)?;
        Ok(ViewAttrs {
            kind: n.attr.kind.into(),
            size: n.attr.size,
            mtime_ns: n.attr.mtime,
            perm: (n.attr.perm & 0o7777) as u16,
            writable: false,
            caching: vt::Caching::Immutable,
            owner: Some((n.attr.uid, n.attr.gid)),
        })
    }

    fn list_at(
        &self,
        viewer: &Viewer,
        path: &str,
        seq: u64,
    ) -> Result<Vec<ViewDirEntry>, ViewError> {
        let tree = self.tree_for(viewer, path, seq, Need::List)?;
        let children = tree
            .children(tree.resolve(path).map_err(error_out)?)
            .map_err(error_out)?;
        Ok(children
            .iter()
            .filter_map(|(name, &ino)| {
                tree.node(ino).ok().map(|n| ViewDirEntry {
                    name: name.to_string(),
                    kind: n.attr.kind.into(),
                })
            })
            .collect())
    }

    fn read_at(
        &self,
        viewer: &Viewer,
        path: &str,
        seq: u64,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, ViewError> {
        self.tree_for(viewer, path, seq, Need::Read)?;
        self.history
            .read_at(path, seq, offset, len)
            .map_err(error_out)
    }

    fn readlink_at(&self, viewer: &Viewer, path: &str, seq: u64) -> Result<String, ViewError> {
        self.tree_for(viewer, path, seq, Need::Reach)?;
        let n = self.history.node_at(path, seq).map_err(error_out)?;
        n.target
            .map(|t| t.to_string())
            .ok_or(ViewError::Invalid("not a symlink".into()))
    }

    fn hash_at(&self, viewer: &Viewer, path: &str, seq: u64) -> Result<String, ViewError> {
        self.tree_for(viewer, path, seq, Need::Read)?;
        let n = self.history.node_at(path, seq).map_err(error_out)?;
        match n.attr.kind {
            FileKind::File => Ok(n.hash.unwrap_or_else(Hash::of_empty).to_hex()),
            FileKind::Dir => Err(ViewError::IsADirectory),
            _ => Err(ViewError::Invalid(format!(
                "{path:?} is not a regular file"
            ))),
        }
    }

    fn audit_head(&self) -> u64 {
        self.history.store().audit().head()
    }

    fn audit(&self, viewer: &Viewer, after: u64, limit: u32) -> vt::AuditPage {
        let audit = self.history.store().audit();
        let mut page = vt::AuditPage {
            records: Vec::new(),
            through: after,
        };
        if !viewer.sight.may(Class::Audit, viewer) {
            page.through = audit.head().max(after);
            return page;
        }
        let labels = self.history.store().labels();
        let fetch = |after| audit.after(after, limit as usize);
        let keep = |batch: Vec<crate::store::AuditRecord>| {
            batch
                .into_iter()
                .map(|a| {
                    // A record names a path of the mount; one of current/ is shown to who
                    // could list its directory now (the trail has no point of the log).
                    let hidden = a.path.strip_prefix("/current").is_some_and(|live| {
                        live.starts_with('/')
                            && !viewer
                                .sight
                                .passes(&labels.grants_now(live, Need::Name), viewer)
                    });
                    let path = view_section_of(&a.path, viewer).unwrap_or(a.path);
                    let record = (!hidden).then(|| vt::AuditInfo {
                        seq: a.seq,
                        time_ns: a.time_ns,
                        agent: a.agent.to_string(),
                        uid: a.uid,
                        gid: a.gid,
                        pid: a.pid,
                        op: a.op.to_string(),
                        path,
                        outcome: a.outcome,
                    });
                    (a.seq, record)
                })
                .collect()
        };
        (page.records, page.through) = page_of(after, limit, fetch, keep);
        page
    }

    fn append(
        &self,
        view: &str,
        caller: &Caller,
        viewer: &Viewer,
        op: &str,
        path: &str,
        body: &str,
    ) -> Result<u64, ViewError> {
        // A view records for its caller what the caller could say itself: about a path it
        // could list where it is.
        let grants = self.history.store().labels().grants_now(path, Need::Name);
        if !viewer.sight.passes(&grants, viewer) {
            return Err(ViewError::PermissionDenied);
        }
        let change = Change::View {
            view: view.into(),
            op: op.into(),
            path: path.into(),
            body: body.into(),
        };
        let agent = caller.agent_name.map(Arc::from);
        self.history
            .append_view_event(caller, agent, change)
            .map_err(error_out)
    }
}

/// The loaded views, as the core sees them.
pub struct CoreViews(pub Arc<ViewHost>);

/// A write or create a view refused as invalid: the writer only sees EINVAL, so the
/// reason goes to the log at info level (an agent's malformed annotation, a bad manifest).
fn refused(view: &str, op: &str, path: &str, caller: &Caller, e: ViewCallError) -> FsError {
    if let ViewCallError::View(ViewError::Invalid(why)) = &e {
        tracing::info!(
            view,
            op,
            path,
            uid = caller.uid,
            pid = caller.pid,
            "refused: {why}"
        );
    }
    call_error(e)
}

fn call_error(e: ViewCallError) -> FsError {
    FsError::with(e.errno(), e.to_string())
}

impl CoreViews {
    /// The version of the view that answers for `at`: its own generation while that is
    /// loaded, else the current one.
    fn at(&self, at: &ViewPath) -> FsResult<Version> {
        self.0
            .version(&at.view, Some(at.generation))
            .map_err(call_error)
    }
}

impl Views for CoreViews {
    fn names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .0
            .views()
            .into_iter()
            .map(|v| Arc::from(v.name.as_ref()))
            .collect();
        names.sort();
        names
    }

    fn generation(&self, view: &str) -> Option<u64> {
        self.0.generation(view)
    }

    fn answer_cache(&self) -> Option<AnswerCacheFigures> {
        Some(self.0.answer_cache_stats())
    }

    fn status(&self) -> Vec<ViewStatus> {
        self.0.views()
    }

    fn refused(&self) -> Vec<RefusedView> {
        self.0.refused()
    }

    fn getattr(&self, caller: &Caller, at: &ViewPath) -> FsResult<ViewAttrs> {
        self.0
            .getattr(&self.at(at)?, caller, &at.path)
            .map_err(call_error)
    }

    fn readdir(&self, caller: &Caller, at: &ViewPath) -> FsResult<Arc<[ViewDirEntry]>> {
        self.0
            .readdir(&self.at(at)?, caller, &at.path)
            .map_err(call_error)
    }

    fn readlink(&self, caller: &Caller, at: &ViewPath) -> FsResult<String> {
        self.0
            .readlink(&self.at(at)?, caller, &at.path)
            .map_err(call_error)
    }

    fn create(&self, caller: &Caller, at: &ViewPath, kind: NodeKind) -> FsResult<ViewAttrs> {
        self.0
            .create(&self.at(at)?, caller, &at.path, kind)
            .map_err(|e| refused(&at.view, "create", &at.path, caller, e))
    }

    fn remove(&self, caller: &Caller, at: &ViewPath, dir: bool) -> FsResult<()> {
        self.0
            .remove(&self.at(at)?, caller, &at.path, dir)
            .map_err(|e| refused(&at.view, "remove", &at.path, caller, e))
    }

    fn open(&self, caller: &Caller, at: &ViewPath, write: bool) -> FsResult<OpenedView> {
        let version = self.0.pin(&at.view, at.generation).map_err(call_error)?;
        let attr = self
            .0
            .getattr(&version, caller, &at.path)
            .map_err(call_error)?;
        check_open(&attr, write)?;
        let mode = self
            .0
            .open(&version, caller, &at.path, write)
            .map_err(call_error)?;
        Ok(OpenedView {
            attr,
            mode,
            version: Arc::new(OpenVersion {
                host: self.0.clone(),
                version,
            }),
        })
    }
}

/// A generation of a view held by an open file.
struct OpenVersion {
    host: Arc<ViewHost>,
    version: Version,
}

impl ViewVersion for OpenVersion {
    fn read(&self, caller: &Caller, path: &str, offset: u64, len: u32) -> FsResult<Vec<u8>> {
        self.host
            .read(&self.version, caller, path, offset, len)
            .map_err(call_error)
    }

    fn write(&self, caller: &Caller, path: &str, offset: u64, data: &[u8]) -> FsResult<u32> {
        self.host
            .write(&self.version, caller, path, offset, data)
            .map_err(|e| refused(self.version.view(), "write", path, caller, e))
    }

    fn next(&self, caller: &Caller, path: &str, cursor: u64, max: u32) -> FsResult<Chunk> {
        self.host
            .next(&self.version, caller, path, cursor, max)
            .map_err(call_error)
    }
}
