//! Who is calling, and may they: the policy of `--policy` (see `crate::policy` and
//! docs/policy.md), asked on every request. The adapters name the caller
//! ([`Fs::caller`]: its agent, by token binding, uid, gid or the default); each operation
//! asks [`Fs::allow`] for the permission it needs in the section of its inode, and the
//! agent's rate. A denial answers EACCES, a rate refusal EAGAIN; both are counted per
//! agent and audited ([`Audit`]). Without a policy none of this runs. With or without
//! one, the kernel checks the mode bits (the mount has `default_permissions`): a request
//! needs both.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::fs_err;
use crate::policy::{
    Access, AgentId, Authenticator, Limited, Limits, Policy, SectionRef, SessionCache,
    RATE_LIMIT_ERRNO,
};

/// A policy in force, with the state it needs while serving: the token bindings, the
/// pid → session cache, the rate buckets, and what was refused.
pub struct Gate {
    policy: Arc<Policy>,
    auth: Authenticator,
    sessions: SessionCache,
    limits: Limits,
    current: SectionRef,
    debug: SectionRef,
    /// Agent names by [`AgentId::index`], for audit lines and metrics.
    names: Box<[Arc<str>]>,
    /// The same, for [`Caller::agent_name`]: leaked once, as a process enforces one
    /// policy for its lifetime.
    static_names: Box<[&'static str]>,
    /// Refusals by [`AgentId::index`].
    counts: Box<[AgentCounts]>,
    /// When expired bindings and challenges are next forgotten, in ms since `started`.
    next_expiry_ms: AtomicU64,
    started: Instant,
}

/// How often a mount with bound sessions forgets the expired bindings (and, once none
/// is left, stops reading /proc for every request).
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The sizes of the policy's tables, for `debug/cache_stats.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PolicyTables {
    /// pid → session entries cached, and at most.
    pub sessions_cached: usize,
    pub sessions_capacity: usize,
    /// Sessions bound to an agent (expired ones until they are forgotten).
    pub bindings: usize,
    /// `.auth` challenges waiting for an answer.
    pub challenges: usize,
    /// Audit records kept for the audit stream, and at most.
    pub audit_kept: usize,
    pub audit_capacity: usize,
}

/// What was refused to one agent, and its authentications.
#[derive(Default)]
pub struct AgentCounts {
    /// Requests answered EACCES by the policy.
    pub denied: AtomicU64,
    /// Requests answered EAGAIN, by the limit that refused them ([`LIMITS`] order).
    pub limited: [AtomicU64; 4],
    /// Writes to `.auth` that bound a session to this agent, and that were refused.
    pub bound: AtomicU64,
    pub auth_failed: AtomicU64,
}

/// The limits of [`AgentCounts::limited`], in its order.
pub const LIMITS: [Limited; 4] = [
    Limited::AgentOps,
    Limited::AgentBytes,
    Limited::OverallOps,
    Limited::OverallBytes,
];

impl Gate {
    pub fn new(policy: Policy) -> Gate {
        let policy = Arc::new(policy);
        let names: Box<[Arc<str>]> = policy.agents().map(|(_, a)| a.name().into()).collect();
        Gate {
            auth: Authenticator::new(policy.clone()),
            sessions: SessionCache::default(),
            limits: Limits::new(&policy),
            current: policy.section_id("current"),
            debug: policy.section_id("debug"),
            counts: names.iter().map(|_| AgentCounts::default()).collect(),
            static_names: names
                .iter()
                .map(|n| &*Box::leak(Box::<str>::from(&**n)))
                .collect(),
            names,
            policy,
            next_expiry_ms: AtomicU64::new(EXPIRE_EVERY.as_millis() as u64),
            started: Instant::now(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy's section of `current/`.
    pub(super) fn current_section(&self) -> SectionRef {
        self.current
    }

    /// The policy's section of `debug/`.
    pub(super) fn debug_section(&self) -> SectionRef {
        self.debug
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The name of `agent`, as events and audit lines show it.
    pub fn name(&self, agent: AgentId) -> &Arc<str> {
        &self.names[agent.index().min(self.names.len() - 1)]
    }

    /// Every agent with what was refused to it (for `/metrics`).
    pub fn counts(&self) -> impl Iterator<Item = (&Arc<str>, &AgentCounts)> {
        self.names.iter().zip(self.counts.iter())
    }

    /// The agent of a caller: its session's token binding, else its uid, its gid, or the
    /// default. /proc is read only while some session is bound (and then cached).
    fn identify(&self, uid: u32, gid: u32, pid: u32) -> AgentId {
        let bound = if self.auth.has_bindings() {
            let now = Instant::now();
            self.expire_now_and_then(now);
            self.sessions
                .session_of(pid, uid, now)
                .ok()
                .and_then(|key| self.auth.bound(key, now))
        } else {
            None
        };
        self.policy.agent_for(uid, gid, bound)
    }

    /// Forget expired bindings and challenges once every [`EXPIRE_EVERY`] (one relaxed
    /// load per request otherwise).
    fn expire_now_and_then(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.started).as_millis() as u64;
        let due = self.next_expiry_ms.load(Ordering::Relaxed);
        if ms >= due
            && self
                .next_expiry_ms
                .compare_exchange(
                    due,
                    ms + EXPIRE_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.auth.expire(now);
        }
    }

    /// The sizes of its tables; `audit` is the store's trail.
    pub fn table_sizes(&self, audit: &crate::store::Audit) -> PolicyTables {
        let (bindings, challenges) = self.auth.table_sizes();
        PolicyTables {
            sessions_cached: self.sessions.len(),
            sessions_capacity: crate::policy::proc::SESSION_CACHE_CAPACITY,
            bindings,
            challenges,
            audit_kept: audit.kept(),
            audit_capacity: crate::store::AUDIT_KEPT,
        }
    }

    fn counts_of(&self, agent: AgentId) -> &AgentCounts {
        &self.counts[agent.index().min(self.counts.len() - 1)]
    }
}

impl Fs {
    /// Enforce `gate` from now on (once, before mounting).
    pub fn set_gate(&self, gate: Arc<Gate>) {
        self.sights.set_policy(gate.policy.clone());
        if self.gate.set(gate).is_err() {
            tracing::warn!("a policy was already set; keeping the first");
        }
    }

    /// What callers may see through views (for the views' `store` import).
    pub fn sights(&self) -> &Arc<super::Sights> {
        &self.sights
    }

    /// The policy in force, if any.
    pub fn gate(&self) -> Option<&Arc<Gate>> {
        self.gate.get()
    }

    /// The caller of a request that came through mount `mount`, with its agent (the
    /// adapters call this for every request).
    #[inline]
    pub fn caller(&self, uid: u32, gid: u32, pid: u32, mount: MountId) -> Caller {
        let (agent, agent_name) = match self.gate.get() {
            Some(gate) => {
                let agent = gate.identify(uid, gid, pid);
                let name = gate.static_names[agent.index().min(gate.static_names.len() - 1)];
                (agent, Some(name))
            }
            None => (AgentId::DEFAULT, None),
        };
        Caller {
            uid,
            gid,
            pid,
            mount,
            agent,
            agent_name,
        }
    }

    /// The agent's name for an event (`None` without a policy).
    pub(super) fn agent_name(&self, caller: &Caller) -> Option<Arc<str>> {
        caller.agent_name.map(Arc::from)
    }

    /// May `caller` do `op`, which needs `need` on `ino` (and on its child `name`, for the
    /// audit line), and moves `bytes`? EACCES when the policy denies it, EAGAIN when a
    /// rate limit refuses it; each audited.
    #[inline]
    pub(super) fn allow(
        &self,
        caller: &Caller,
        op: Op,
        ino: Ino,
        name: Option<&OsStr>,
        need: Access,
        bytes: u64,
    ) -> FsResult<()> {
        let Some(gate) = self.gate.get() else {
            return Ok(());
        };
        let section = self.section(ino);
        if let Some(section) = self.guarded_section(gate, &section, op, ino) {
            if !gate.policy.allows(caller.agent, section, need) {
                gate.counts_of(caller.agent)
                    .denied
                    .fetch_add(1, Ordering::Relaxed);
                let what = match need {
                    Access::Read => "read",
                    Access::Write => "write",
                };
                let outcome = format!("denied: no {what} permission here");
                self.audit(gate, caller, op, ino, name, outcome);
                return Err(fs_err!(EACCES, "denied by the policy"));
            }
        }
        self.admit(caller, op, ino, bytes)
    }

    /// Charge a request of `caller` moving `bytes` to its rate limits (EAGAIN when over).
    #[inline]
    /// Must reads and writes reach the core to be counted (a policy with rate limits)?
    pub(super) fn io_counted(&self) -> bool {
        self.gate.get().is_some_and(|g| !g.limits.is_unlimited())
    }

    pub(super) fn admit(&self, caller: &Caller, op: Op, ino: Ino, bytes: u64) -> FsResult<()> {
        let Some(gate) = self.gate.get() else {
            return Ok(());
        };
        if gate.limits.is_unlimited() {
            return Ok(());
        }
        match gate.limits.admit(caller.agent, 1, bytes, Instant::now()) {
            Ok(()) => Ok(()),
            Err(limited) => {
                let i = LIMITS.iter().position(|l| *l == limited).unwrap_or(0);
                gate.counts_of(caller.agent).limited[i].fetch_add(1, Ordering::Relaxed);
                let outcome = format!("limited: {limited}");
                self.audit(gate, caller, op, ino, None, outcome);
                Err(FsError::new(RATE_LIMIT_ERRNO, "over a rate limit"))
            }
        }
    }

    /// The section whose permission a request on `ino` needs; `None` when it needs none:
    /// the mount root and `.auth` are open to every caller, and so are the attributes of
    /// each section's directory (`ls -l MOUNT` shows them all).
    fn audit(
        &self,
        gate: &Gate,
        caller: &Caller,
        op: Op,
        ino: Ino,
        name: Option<&OsStr>,
        outcome: String,
    ) {
        let mut path = self.describe(ino);
        if let Some(name) = name {
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(&name.to_string_lossy());
        }
        self.store()
            .audit()
            .record(caller, gate.name(caller.agent), op.as_str(), path, outcome);
        // Wake the readers of the audit stream.
        self.store().poke_waiters();
    }

    /// An authentication through `.auth` (see [`super::auth_file`]), audited.
    pub(super) fn audit_auth(
        &self,
        gate: &Gate,
        caller: &Caller,
        agent: Option<AgentId>,
        outcome: String,
    ) {
        let counts = gate.counts_of(agent.unwrap_or(caller.agent));
        if agent.is_some() && outcome.starts_with("bound") {
            counts.bound.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.auth_failed.fetch_add(1, Ordering::Relaxed);
        }
        let name = gate.name(agent.unwrap_or(caller.agent)).clone();
        self.store()
            .audit()
            .record(caller, &name, Op::Write.as_str(), "/.auth".into(), outcome);
        self.store().poke_waiters();
    }

    /// The session of `caller` as the token bindings know it (read fresh from /proc).
    pub(super) fn session_of(&self, caller: &Caller) -> FsResult<crate::policy::SessionKey> {
        crate::policy::session_of(caller.pid, caller.uid)
            .map_err(|e| FsError::io("finding the caller's session", &e))
    }
}
