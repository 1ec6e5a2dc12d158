//! What a caller may see of the store through a view (docs/policy.md, "What views may
//! reveal"): its credentials against the mode bits of the tree at the point shown, and
//! its agent's permissions against the classes of data the store holds.
//!
//! A view reads the store with the host's authority and answers whoever called it, so the
//! host checks what it gives a view for the caller of the call it serves: the `store`
//! import takes a [`Viewer`] (see `views::store_import`), and nothing a view can do gets
//! around it. [`Sights`] resolves a caller (agent, uid, gid, pid → supplementary groups)
//! to a shared [`Sight`], which keeps its verdicts per event label: a stream of 10,000
//! events costs a few distinct checks, not 10,000.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::policy::{Access, AgentId, Policy};
use crate::store::{Grant, Labels};

/// The classes of data the store holds, each with the permissions that reveal it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The tree, now or at any point: `current:read` or `history:read`.
    Tree,
    /// The live tree's events: `history:read` or `streams:read`.
    Events,
    /// The policy's audit trail: `streams:read`.
    Audit,
}

impl Class {
    const ALL: [Class; 3] = [Class::Tree, Class::Events, Class::Audit];

    fn sections(self) -> &'static [&'static str] {
        match self {
            Class::Tree => &["current", "history"],
            Class::Events => &["history", "streams"],
            Class::Audit => &["streams"],
        }
    }
}

/// How much of one event a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    Hidden,
    /// The event, without what it says of the content (a write's hash).
    Name,
    Content,
}

/// Who a caller is for the mode bits: what the kernel would check with
/// `default_permissions` (uid, gid and supplementary groups; root passes them all).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    /// Sorted.
    pub groups: Arc<[u32]>,
}

impl Creds {
    /// Does the class of `g`'s bits that applies to this caller grant `g.need`?
    pub fn passes(&self, g: &Grant) -> bool {
        if self.uid == 0 {
            // CAP_DAC_READ_SEARCH: root reads and searches everything.
            return true;
        }
        let need = u16::from(g.need);
        let shift = if self.uid == g.uid {
            6
        } else if self.gid == g.gid || self.groups.binary_search(&g.gid).is_ok() {
            3
        } else {
            0
        };
        (g.perm >> shift) & need == need
    }

    fn passes_all(&self, grants: &[Grant]) -> bool {
        grants.iter().all(|g| self.passes(g))
    }
}

/// One caller's eyes: shared by every call of the same agent and credentials.
pub struct Sight {
    /// Distinct per identity (a key of caches that keep answers per caller).
    pub id: u64,
    pub creds: Creds,
    agent: AgentId,
    policy: Option<Arc<Policy>>,
    /// May the agent read each [`Class`], and may every agent.
    classes: [bool; 3],
    public: [bool; 3],
    /// Verdicts by label id (see [`KNOWN`]; 0: not yet).
    verdicts: Mutex<Vec<u8>>,
    /// `VIEW:read` by view: (this agent may, every agent may).
    views: Mutex<FxHashMap<Box<str>, (bool, bool)>>,
}

impl Sight {
    /// May the agent read `class`? Marks `viewer` when not every agent may.
    pub fn may(&self, class: Class, viewer: &Viewer) -> bool {
        let i = class as usize;
        if !self.public[i] {
            viewer.depends();
        }
        self.classes[i]
    }

    /// May the agent read what view `view` recorded (`VIEW:read`)?
    pub fn may_view(&self, view: &str, viewer: &Viewer) -> bool {
        let Some(policy) = &self.policy else {
            return true;
        };
        let known = self.views.lock().get(view).copied();
        let (may, everyone) = known.unwrap_or_else(|| {
            let section = policy.section_id(view);
            let everyone = policy
                .agents()
                .all(|(id, _)| policy.allows(id, section, Access::Read))
                && policy.allows(AgentId::DEFAULT, section, Access::Read);
            let may = policy.allows(self.agent, section, Access::Read);
            self.views.lock().insert(view.into(), (may, everyone));
            (may, everyone)
        });
        if !everyone {
            viewer.depends();
        }
        may
    }

    /// Do the credentials pass every check of `grants`? Marks `viewer` when not every
    /// caller would.
    pub fn passes(&self, grants: &[Grant], viewer: &Viewer) -> bool {
        if !grants.iter().all(Grant::is_public) {
            viewer.depends();
        }
        self.creds.passes_all(grants)
    }

    /// How much of each event labelled `ids` this caller may see (kept per label, with
    /// whether every caller would see as much): one lock for a whole page.
    pub fn seen(&self, labels: &Labels, ids: &[Option<u32>], viewer: &Viewer) -> Vec<Seen> {
        let mut verdicts = self.verdicts.lock();
        let mut public = true;
        let seen = ids
            .iter()
            .map(|&id| {
                let Some(id) = id else {
                    return Seen::Hidden;
                };
                let i = id as usize;
                if verdicts.len() <= i {
                    verdicts.resize(i + 1, 0);
                }
                if verdicts[i] == 0 {
                    verdicts[i] = self.verdict(labels, id);
                }
                public &= verdicts[i] & PUBLIC != 0;
                seen_of(verdicts[i] & SEEN)
            })
            .collect();
        if !public {
            viewer.depends();
        }
        seen
    }

    fn verdict(&self, labels: &Labels, id: u32) -> u8 {
        let Some(l) = labels.label(id) else {
            return KNOWN;
        };
        let tree = Class::Tree as usize;
        let seen = if !self.creds.passes_all(&l.name) {
            Seen::Hidden
        } else if !self.creds.passes_all(&l.content) || (l.content_of_file && !self.classes[tree]) {
            Seen::Name
        } else {
            Seen::Content
        };
        let public = l.name.iter().chain(l.content.iter()).all(Grant::is_public)
            && (!l.content_of_file || self.public[tree]);
        KNOWN | seen as u8 | if public { PUBLIC } else { 0 }
    }
}

/// A kept verdict: [`KNOWN`] | [`PUBLIC`] when every caller sees as much | [`Seen`].
const KNOWN: u8 = 0x80;
const PUBLIC: u8 = 0x40;
const SEEN: u8 = 0x03;

fn seen_of(v: u8) -> Seen {
    match v {
        0 => Seen::Hidden,
        1 => Seen::Name,
        _ => Seen::Content,
    }
}

/// The caller of one view call as the store import sees it: its [`Sight`], and whether
/// anything the store showed the view depended on who asked (then the host keeps the
/// view's answer for this caller only, and tells the kernel not to keep it).
pub struct Viewer {
    pub sight: Arc<Sight>,
    dependent: AtomicBool,
}

impl Viewer {
    pub fn new(sight: Arc<Sight>) -> Viewer {
        Viewer {
            sight,
            dependent: AtomicBool::new(false),
        }
    }

    /// Something shown (or withheld) would differ for another caller.
    pub fn depends(&self) {
        self.dependent.store(true, Ordering::Relaxed);
    }

    pub fn is_dependent(&self) -> bool {
        self.dependent.load(Ordering::Relaxed)
    }
}

/// How long a process's supplementary groups are trusted (they rarely change; a process
/// that drops a group is seen without it within this time).
const GROUPS_TTL: Duration = Duration::from_secs(1);
/// Bounds of the caches (cleared whole when full: they refill from /proc and the policy).
const MAX_PIDS: usize = 4096;
const MAX_SIGHTS: usize = 1024;

/// Resolves callers to their [`Sight`]s.
#[derive(Default)]
pub struct Sights {
    policy: OnceLock<Arc<Policy>>,
    /// Whether every agent may read each class (set with the policy).
    public: OnceLock<[bool; 3]>,
    groups: Mutex<FxHashMap<u32, PidGroups>>,
    sights: Mutex<FxHashMap<(AgentId, Creds), Arc<Sight>>>,
    next_id: AtomicU64,
}

struct PidGroups {
    uid: u32,
    gid: u32,
    read: Instant,
    groups: Arc<[u32]>,
}

impl Sights {
    /// The policy in force from now on (once; the mount sets it before serving).
    pub fn set_policy(&self, policy: Arc<Policy>) {
        let public = Class::ALL.map(|class| {
            std::iter::once(AgentId::DEFAULT)
                .chain(policy.agents().map(|(id, _)| id))
                .all(|id| class_allowed(&policy, id, class))
        });
        let _ = self.public.set(public);
        let _ = self.policy.set(policy);
        self.sights.lock().clear();
    }

    /// The sight of a caller: `agent` by name (`None`: no policy, or the default agent).
    pub fn of(&self, agent: Option<&str>, uid: u32, gid: u32, pid: u32) -> Arc<Sight> {
        let policy = self.policy.get();
        let agent = match (policy, agent) {
            (Some(p), Some(name)) => p.agent_by_name(name).unwrap_or(AgentId::DEFAULT),
            _ => AgentId::DEFAULT,
        };
        let creds = Creds {
            uid,
            gid,
            groups: if uid == 0 {
                Arc::from([])
            } else {
                self.groups_of(pid, uid, gid)
            },
        };
        let mut sights = self.sights.lock();
        if let Some(s) = sights.get(&(agent, creds.clone())) {
            return s.clone();
        }
        if sights.len() >= MAX_SIGHTS {
            sights.clear();
        }
        let classes = Class::ALL.map(|class| match policy {
            Some(p) => class_allowed(p, agent, class),
            None => true,
        });
        let sight = Arc::new(Sight {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            creds: creds.clone(),
            agent,
            policy: policy.cloned(),
            classes,
            public: self.public.get().copied().unwrap_or([true; 3]),
            verdicts: Mutex::new(Vec::new()),
            views: Mutex::new(FxHashMap::default()),
        });
        sights.insert((agent, creds), sight.clone());
        sight
    }

    fn groups_of(&self, pid: u32, uid: u32, gid: u32) -> Arc<[u32]> {
        if pid == 0 {
            return Arc::from([]);
        }
        let now = Instant::now();
        {
            let cache = self.groups.lock();
            if let Some(g) = cache.get(&pid) {
                if g.uid == uid && g.gid == gid && now.duration_since(g.read) < GROUPS_TTL {
                    return g.groups.clone();
                }
            }
        }
        // A process gone by now is seen with its primary group alone: never more than it
        // had.
        let groups: Arc<[u32]> = read_groups(pid).unwrap_or_default().into();
        let mut cache = self.groups.lock();
        if cache.len() >= MAX_PIDS {
            cache.clear();
        }
        cache.insert(
            pid,
            PidGroups {
                uid,
                gid,
                read: now,
                groups: groups.clone(),
            },
        );
        groups
    }
}

fn class_allowed(policy: &Policy, agent: AgentId, class: Class) -> bool {
    class
        .sections()
        .iter()
        .any(|s| policy.allows(agent, policy.section_id(s), Access::Read))
}

/// The supplementary groups of process (or thread) `pid`, sorted, from
/// `/proc/PID/status` (the FUSE request names only the fsuid and fsgid).
fn read_groups(pid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    let mut groups: Vec<u32> = line
        .split_ascii_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    Some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(uid: u32, gid: u32, perm: u16, need: u8) -> Grant {
        Grant {
            uid,
            gid,
            perm,
            need,
        }
    }

    fn creds(uid: u32, gid: u32, groups: &[u32]) -> Creds {
        Creds {
            uid,
            gid,
            groups: groups.into(),
        }
    }

    #[test]
    fn the_class_that_applies_decides_as_the_kernel_does() {
        use crate::store::{R, X};
        let owner = creds(1000, 1000, &[]);
        let member = creds(1001, 50, &[]);
        let by_supplementary = creds(1002, 1002, &[7, 50]);
        let other = creds(1003, 1003, &[]);
        let root = creds(0, 0, &[]);
        // 0604: the owner reads, the group does not, others do (a group member is refused
        // although others are not: POSIX takes the first class that applies).
        let g = grant(1000, 50, 0o604, R);
        assert!(owner.passes(&g));
        assert!(!member.passes(&g));
        assert!(!by_supplementary.passes(&g));
        assert!(other.passes(&g));
        assert!(root.passes(&g));
        // 0710 directory: owner and group search it, others do not, nobody lists it but
        // the owner and root.
        let search = grant(1000, 50, 0o710, X);
        let list = grant(1000, 50, 0o710, R | X);
        assert!(member.passes(&search) && by_supplementary.passes(&search));
        assert!(!other.passes(&search));
        assert!(owner.passes(&list) && !member.passes(&list) && root.passes(&list));
        // 0 is root's, and root's alone.
        let none = grant(1000, 50, 0, R);
        assert!(!owner.passes(&none) && root.passes(&none));
    }

    #[test]
    fn public_means_every_class() {
        use crate::store::{R, X};
        assert!(grant(1, 1, 0o755, R | X).is_public());
        assert!(!grant(1, 1, 0o705, R | X).is_public());
        assert!(!grant(1, 1, 0o750, X).is_public());
        assert!(grant(1, 1, 0o111, X).is_public());
    }

    #[test]
    fn supplementary_groups_come_from_proc() {
        let own = read_groups(std::process::id()).expect("our own status");
        assert!(own.windows(2).all(|w| w[0] < w[1]), "sorted: {own:?}");
        assert_eq!(read_groups(u32::MAX), None);
    }
}
