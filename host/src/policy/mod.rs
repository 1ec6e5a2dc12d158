//! Agents, permissions, token binding and rate limits per caller: the pure logic behind
//! `--policy FILE`. Nothing here knows about FUSE; the core asks it three questions per
//! request, each answered without allocation or syscalls in the common case:
//!
//! ```ignore
//! // Who is calling? A token binding (see `auth`) wins over uid, uid over gid, and a
//! // caller that matches nothing is the default agent. /proc is only read when some
//! // session is bound at all.
//! let bound = if auth.has_bindings() {
//!     sessions.session_of(req.pid, req.uid, now).ok().and_then(|key| auth.bound(key, now))
//! } else {
//!     None
//! };
//! let agent = policy.agent_for(req.uid, req.gid, bound);
//! // May it do this? `section` comes from `policy.section_id("current")` etc., resolved
//! // once per top-level directory, not per request.
//! if !policy.allows(agent, section, Access::Write) { return Err(EACCES) }
//! // Is it within its rate? (RATE_LIMIT_ERRNO, and count `limited.as_str()`.)
//! limits.admit(agent, 1, len, now)?;
//! ```
//!
//! - [`file`]: the policy file, its validation and the precomputed tables.
//! - [`auth`]: the challenge–response that binds a session to an agent.
//! - [`proc`]: which session a pid belongs to, read from `/proc` and cached.
//! - [`rate`]: token buckets per agent and overall.
//!
//! The user documentation (format, permission table, protocol) is `docs/policy.md`.

pub mod auth;
pub mod file;
pub mod proc;
pub mod rate;

#[cfg(test)]
mod tests;

use std::fmt;

use rustc_hash::FxHashMap;

pub use auth::{response_mac, AuthError, Authenticator, SessionKey};
pub use proc::{session_of, SessionCache};
pub use rate::{Limited, Limits, RATE_LIMIT_ERRNO};

/// The sections the host knows by name. Their ids are their positions, so a policy that
/// names no custom view never consults the name table for them.
pub const BUILTIN_SECTIONS: [&str; 6] = [
    "current", "debug", "history", "shadows", "streams", "context",
];

/// Bit positions 0..63 are sections named by the policy (built-ins first); bit 63 stands
/// for every section the policy does not name, which only `*` grants.
const MAX_SECTIONS: usize = 63;
const OTHER_SECTION: u8 = 63;

/// The name under which callers that match no agent appear (audit lines, metrics).
pub const DEFAULT_AGENT_NAME: &str = "default";

/// An agent of one [`Policy`]: an index into its table. An id is only meaningful to the
/// policy that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(u32);

impl AgentId {
    /// The default agent, which every policy has: callers that match nothing.
    pub const DEFAULT: AgentId = AgentId(0);

    /// The position in the policy's agent table (0 is the default agent), for indexing
    /// per-agent arrays such as metrics.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A top-level section of the mount, resolved once by [`Policy::section_id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SectionRef(u8);

/// What an operation needs. `Write` implies `Read`: whoever may add annotations, create
/// context packages or change `current/` may also read what is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

/// An agent's permissions: one bit per section for read and one for write. `*` sets every
/// bit, including the one for sections the policy does not name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    read: u64,
    write: u64,
}

impl Permissions {
    /// Everything everywhere.
    pub const ALL: Permissions = Permissions {
        read: u64::MAX,
        write: u64::MAX,
    };

    pub fn allows(self, section: SectionRef, access: Access) -> bool {
        let mask = match access {
            Access::Read => self.read,
            Access::Write => self.write,
        };
        (mask >> section.0) & 1 == 1
    }

    fn grant(&mut self, bit: Option<u8>, access: Access) {
        let bits = bit.map_or(u64::MAX, |b| 1u64 << b);
        self.read |= bits;
        if access == Access::Write {
            self.write |= bits;
        }
    }
}

/// Operations and bytes per second; 0 means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub ops_per_sec: u64,
    pub bytes_per_sec: u64,
}

impl RateLimit {
    pub fn is_unlimited(&self) -> bool {
        self.ops_per_sec == 0 && self.bytes_per_sec == 0
    }
}

/// An agent's token-binding secret. Its `Debug` prints nothing of it, so a logged policy
/// cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Box<[u8]>);

impl Secret {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One agent: its name (shown in audit lines), what it may do and how fast.
#[derive(Clone, Debug)]
pub struct Agent {
    name: Box<str>,
    permissions: Permissions,
    limits: RateLimit,
    secret: Option<Secret>,
}

impl Agent {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    pub fn limits(&self) -> RateLimit {
        self.limits
    }

    /// Whether a process can bind its session to this agent (it has a secret).
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    pub(crate) fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }
}

/// Lifetimes of the token-binding protocol (`[auth]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// How long a successful response binds the session.
    pub binding_ttl: std::time::Duration,
    /// How long an issued challenge can be answered.
    pub challenge_ttl: std::time::Duration,
}

/// A loaded, validated policy, with everything the hot path needs precomputed.
#[derive(Debug)]
pub struct Policy {
    origin: Box<str>,
    /// Index = `AgentId`; 0 is the default agent.
    agents: Vec<Agent>,
    by_uid: FxHashMap<u32, AgentId>,
    by_gid: FxHashMap<u32, AgentId>,
    by_name: FxHashMap<Box<str>, AgentId>,
    /// Custom sections (view names the policy mentions); their ids follow the built-ins.
    custom_sections: Vec<Box<str>>,
    overall: RateLimit,
    auth: AuthSettings,
    warnings: Vec<String>,
}

impl Policy {
    /// The policy of a mount without `--policy`: one default agent that may read and write
    /// everything, no limits, no secrets.
    pub fn unrestricted() -> Policy {
        Policy {
            origin: "(no policy)".into(),
            agents: vec![Agent {
                name: DEFAULT_AGENT_NAME.into(),
                permissions: Permissions::ALL,
                limits: RateLimit::default(),
                secret: None,
            }],
            by_uid: FxHashMap::default(),
            by_gid: FxHashMap::default(),
            by_name: FxHashMap::default(),
            custom_sections: Vec::new(),
            overall: RateLimit::default(),
            auth: file::DEFAULT_AUTH,
            warnings: Vec::new(),
        }
    }

    /// Where the policy came from (the file path), as given to [`Policy::parse`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The agent a request is made as: a token binding wins, then the uid, then the
    /// (primary) gid, then the default agent. Root is matched like any other uid.
    pub fn agent_for(&self, uid: u32, gid: u32, bound: Option<AgentId>) -> AgentId {
        if let Some(agent) = bound {
            return agent;
        }
        if let Some(&agent) = self.by_uid.get(&uid) {
            return agent;
        }
        if let Some(&agent) = self.by_gid.get(&gid) {
            return agent;
        }
        AgentId::DEFAULT
    }

    /// # Panics
    /// If `id` was issued by another policy and is out of this one's range.
    pub fn agent(&self, id: AgentId) -> &Agent {
        &self.agents[id.index()]
    }

    /// Every agent, the default one first.
    pub fn agents(&self) -> impl ExactSizeIterator<Item = (AgentId, &Agent)> {
        self.agents
            .iter()
            .enumerate()
            .map(|(i, agent)| (AgentId(i as u32), agent))
    }

    /// The agent of that name, the default one included.
    pub fn agent_by_name(&self, name: &str) -> Option<AgentId> {
        if name == DEFAULT_AGENT_NAME {
            return Some(AgentId::DEFAULT);
        }
        self.by_name.get(name).copied()
    }

    /// The section a top-level directory belongs to. A name the policy never mentions
    /// shares one id with all such names: only `*` permissions reach it.
    pub fn section_id(&self, name: &str) -> SectionRef {
        if let Some(i) = BUILTIN_SECTIONS.iter().position(|&s| s == name) {
            return SectionRef(i as u8);
        }
        match self.custom_sections.iter().position(|s| &**s == name) {
            Some(i) => SectionRef((BUILTIN_SECTIONS.len() + i) as u8),
            None => SectionRef(OTHER_SECTION),
        }
    }

    /// Whether `agent` may access `section` so. An id from another policy is allowed
    /// nothing.
    pub fn allows(&self, agent: AgentId, section: SectionRef, access: Access) -> bool {
        self.agents
            .get(agent.index())
            .is_some_and(|a| a.permissions.allows(section, access))
    }

    /// The limits across all callers together (`[limits]`).
    pub fn overall_limits(&self) -> RateLimit {
        self.overall
    }

    pub fn auth_settings(&self) -> AuthSettings {
        self.auth
    }

    /// Whether any agent has a secret, i.e. whether token binding can ever succeed.
    pub fn has_secrets(&self) -> bool {
        self.agents.iter().any(Agent::has_secret)
    }

    /// Things that are valid but probably not meant, one message each, ready to log: a
    /// permission on a section that is not built in (a custom view, or a typo), an agent
    /// no caller can reach.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
