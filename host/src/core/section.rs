//! Which part of the mount a request is about: decided once, from its inode, and asked by
//! everything that depends on it — the policy (which permission), the statistics (which
//! section's counters), the audit and error lines (the path), whether the request may
//! enter a view's code, and whether the part takes changes. Adding a part of the mount
//! starts here.

use super::auth_file::{AUTH_INO, AUTH_NAME};
use super::debug::is_debug_ino;
use super::stats::{OpStats, SectionId};
use super::view_section::{is_view_ino, ViewPath};
use super::*;
use crate::fs_err;
use crate::policy::SectionRef;

/// The part of the mount an inode belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// The mount's root directory: it lists the sections.
    Root,
    /// `MOUNT/.auth`, the control file of token binding (under a policy).
    Auth,
    /// `debug/` and its files, served natively.
    Debug,
    /// `current/` and the live tree below it.
    Live,
    /// A path of a view (`None`: a view inode no longer numbered: ESTALE to most).
    View(Option<ViewPath>),
}

impl Section {
    /// The section's name as the policy and the statistics know it.
    pub fn name(&self) -> &str {
        match self {
            Section::Root | Section::Auth => "",
            Section::Debug => "debug",
            Section::Live => "current",
            Section::View(Some(vp)) => &vp.view,
            Section::View(None) => "",
        }
    }

    /// The counters a request here is counted in (`debug/performance.json`, `/metrics`):
    /// the root (and `.auth`, a file of it), `current/`, `debug/`, or a view by name.
    pub fn stats_id(&self, stats: &OpStats) -> SectionId {
        match self {
            Section::Root | Section::Auth | Section::View(None) => SectionId::ROOT,
            Section::Debug => SectionId::DEBUG,
            Section::Live => SectionId::CURRENT,
            Section::View(Some(vp)) => stats.section(&vp.view),
        }
    }

    /// Is this the top directory of its section (`current/`, `debug/`, a view's root)?
    /// Its attributes are open to every caller (`ls -l MOUNT`).
    fn is_top(&self, ino: Ino) -> bool {
        match self {
            Section::Debug => ino == super::debug::DEBUG_INO,
            Section::Live => ino == CURRENT_INO,
            Section::View(Some(vp)) => &*vp.path == "/",
            _ => false,
        }
    }

    /// Why a change here is refused, if it is (only the live tree takes changes; a view's
    /// own directories take what the view accepts, see `Fs::view_create`).
    pub fn refuse_change(&self) -> FsResult<()> {
        match self {
            Section::Live => Ok(()),
            Section::Root | Section::Auth => Err(fs_err!(EACCES, "the mount root is read-only")),
            Section::Debug => Err(fs_err!(EROFS, "debug/ is read-only")),
            Section::View(_) => Err(fs_err!(EROFS, "this view is read-only")),
        }
    }
}

impl Fs {
    /// The section of `ino`.
    pub fn section(&self, ino: Ino) -> Section {
        if ino == ROOT_INO {
            Section::Root
        } else if ino == AUTH_INO && self.has_auth_file() {
            Section::Auth
        } else if is_debug_ino(ino) {
            Section::Debug
        } else if is_view_ino(ino) {
            Section::View(self.view_inodes.path(ino).ok())
        } else {
            Section::Live
        }
    }

    /// The section a request on `ino` is counted in, of `stats` (a mount's).
    pub fn stats_section(&self, stats: &OpStats, ino: Ino) -> SectionId {
        self.section(ino).stats_id(stats)
    }

    /// The policy's section that guards `op` on `ino` in `section` (`None`: open to
    /// every caller: the root, `.auth`, and the attributes of each section's top).
    pub(super) fn guarded_section(
        &self,
        gate: &Gate,
        section: &Section,
        op: Op,
        ino: Ino,
    ) -> Option<SectionRef> {
        // Extended attributes are attributes too (`ls -l` asks for ACLs).
        let top_open = matches!(op, Op::Getattr | Op::Getxattr | Op::Listxattr);
        match section {
            Section::Root | Section::Auth => None,
            _ if top_open && section.is_top(ino) => None,
            Section::Debug => Some(gate.debug_section()),
            Section::Live => Some(gate.current_section()),
            Section::View(Some(vp)) => Some(gate.policy().section_id(&vp.view)),
            // Gone: the view's code is never reached; the request answers ESTALE.
            Section::View(None) => None,
        }
    }

    /// A path of the mount for `ino`, for log and audit lines: `/current/a/b`,
    /// `/history/@3/a`, `/debug/health.json`, `/.auth`.
    pub fn describe(&self, ino: Ino) -> String {
        match self.section(ino) {
            Section::Root => "/".into(),
            Section::Auth => format!("/{AUTH_NAME}"),
            Section::Debug => self.debug_path(ino),
            Section::View(Some(vp)) => {
                let path = if &*vp.path == "/" { "" } else { &vp.path };
                format!("/{}{path}", vp.view)
            }
            Section::Live => match self.with_tree(|t| t.path_of(ino)) {
                Some(path) => format!("/current{}", if path == "/" { "" } else { &path }),
                None => format!("inode {ino}"),
            },
            Section::View(None) => format!("inode {ino}"),
        }
    }

    /// May request `op` on `ino` run a view's code (wasm)? The one answer the adapters
    /// follow, so that none can get it wrong: the async adapter runs such requests where
    /// blocking is allowed (a view call is synchronous wasm whose WASI I/O blocks).
    /// Lookups and listings of the mount root ask the views for their names; any request
    /// on a view path may reach the view (a getattr, a create, a write, a setattr that
    /// asks the view what the file is), except the few that never call one.
    pub fn may_enter_view(&self, op: Op, ino: Ino) -> bool {
        if self.views.get().is_none() {
            return false;
        }
        match self.section(ino) {
            Section::Root => matches!(op, Op::Lookup | Op::Readdir | Op::Readdirplus),
            Section::View(_) => !matches!(
                op,
                Op::Forget | Op::Flush | Op::Release | Op::Releasedir | Op::Statfs | Op::Fsyncdir
            ),
            _ => false,
        }
    }
}
