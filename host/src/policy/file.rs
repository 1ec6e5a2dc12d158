//! The policy file: TOML, read once at start. Everything is validated here, so the
//! [`Policy`] the hot path sees cannot be inconsistent. Format: `docs/policy.md`.
//!
//! Error messages name the file, the agent and the bad value, but never a secret: a
//! TOML syntax error is reported as `file:line:column: message`, without the excerpt of
//! the offending line that `toml` would print, because that line may hold a secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;

use super::{
    Access, Agent, AgentId, AuthSettings, Permissions, Policy, RateLimit, Secret, BUILTIN_SECTIONS,
    DEFAULT_AGENT_NAME, MAX_SECTIONS,
};

/// `[auth]` defaults: a binding lasts an hour (a working session of an agent), a challenge
/// a minute (a client answers within milliseconds; the slack covers a loaded machine).
pub(crate) const DEFAULT_AUTH: AuthSettings = AuthSettings {
    binding_ttl: Duration::from_secs(3600),
    challenge_ttl: Duration::from_secs(60),
};

/// Longest accepted TTL: a year keeps `Instant + ttl` far from overflow.
const MAX_TTL_SECS: u64 = 365 * 24 * 3600;

/// 128 bits: below that an HMAC key is guessable in principle.
const MIN_SECRET_BYTES: usize = 16;

const MAX_NAME_LEN: usize = 64;

/// Highest accepted `ops_per_sec` or `bytes_per_sec`, 16 GiB/s: more than FUSE can carry,
/// and low enough that a bucket's clock (ticks of 1/rate s in 64 bits) lasts 34 years.
pub(crate) const MAX_RATE: u64 = 1 << 34;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    agents: Vec<RawAgent>,
    default: Option<RawDefault>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    auth: RawAuth,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: String,
    #[serde(default)]
    uids: Vec<u32>,
    #[serde(default)]
    gids: Vec<u32>,
    #[serde(default)]
    permissions: Vec<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    ops_per_sec: Option<u64>,
    bytes_per_sec: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefault {
    /// Absent means read-only everywhere, as when the whole table is absent.
    permissions: Option<Vec<String>>,
    ops_per_sec: Option<u64>,
    bytes_per_sec: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    ops_per_sec: Option<u64>,
    bytes_per_sec: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    binding_ttl_secs: Option<u64>,
    challenge_ttl_secs: Option<u64>,
}

impl Policy {
    /// Reads and validates the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy file {}", path.display()))?;
        Policy::parse(&text, &path.to_string_lossy())
    }

    /// Validates a policy given as text. `origin` names it in error messages and is the
    /// path relative `secret_file`s are resolved against (they are relative to its
    /// directory, as for [`Policy::load`]).
    pub fn parse(text: &str, origin: &str) -> Result<Policy> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| toml_error(origin, text, &e))?;
        Builder::new(origin).build(raw)
    }
}

/// `origin:line:column: message`, the position taken from the error's span.
fn toml_error(origin: &str, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            anyhow!("{origin}:{line}:{column}: {message}")
        }
        None => anyhow!("{origin}: {message}"),
    }
}

/// Accumulates the tables of a [`Policy`] while the raw file is checked.
struct Builder<'a> {
    origin: &'a str,
    agents: Vec<Agent>,
    by_uid: FxHashMap<u32, AgentId>,
    by_gid: FxHashMap<u32, AgentId>,
    by_name: FxHashMap<Box<str>, AgentId>,
    custom_sections: Vec<Box<str>>,
    warnings: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(origin: &'a str) -> Self {
        Builder {
            origin,
            agents: Vec::new(),
            by_uid: FxHashMap::default(),
            by_gid: FxHashMap::default(),
            by_name: FxHashMap::default(),
            custom_sections: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn build(mut self, raw: RawPolicy) -> Result<Policy> {
        let origin = self.origin;
        let default = self
            .default_agent(raw.default)
            .map_err(|e| anyhow!("{origin}: [default]: {e:#}"))?;
        self.agents.push(default);
        for agent in raw.agents {
            self.add_agent(agent)?;
        }
        Ok(Policy {
            origin: origin.into(),
            agents: self.agents,
            by_uid: self.by_uid,
            by_gid: self.by_gid,
            by_name: self.by_name,
            custom_sections: self.custom_sections,
            overall: limits(raw.limits.ops_per_sec, raw.limits.bytes_per_sec)
                .map_err(|e| anyhow!("{origin}: [limits]: {e:#}"))?,
            auth: auth_settings(&raw.auth).map_err(|e| anyhow!("{origin}: [auth]: {e:#}"))?,
            warnings: self.warnings,
        })
    }

    /// `[default]`; read-only everywhere when the table or its `permissions` is absent.
    fn default_agent(&mut self, raw: Option<RawDefault>) -> Result<Agent> {
        let read_only = || vec!["*:read".to_owned()];
        let (permissions, limits) = match raw {
            None => (read_only(), RateLimit::default()),
            Some(d) => (
                d.permissions.unwrap_or_else(read_only),
                limits(d.ops_per_sec, d.bytes_per_sec)?,
            ),
        };
        Ok(Agent {
            name: DEFAULT_AGENT_NAME.into(),
            permissions: self.permissions(DEFAULT_AGENT_NAME, &permissions)?,
            limits,
            secret: None,
        })
    }

    fn add_agent(&mut self, raw: RawAgent) -> Result<()> {
        let origin = self.origin;
        check_name(&raw.name).map_err(|e| anyhow!("{origin}: {e:#}"))?;
        let name = raw.name.as_str();
        let id = AgentId(self.agents.len() as u32);
        if self.by_name.insert(name.into(), id).is_some() {
            bail!("{origin}: agent {name:?} is defined twice");
        }
        let context = |e: anyhow::Error| anyhow!("{origin}: agent {name:?}: {e:#}");
        for (ids, map, kind) in [
            (&raw.uids, &mut self.by_uid, "uid"),
            (&raw.gids, &mut self.by_gid, "gid"),
        ] {
            for &n in ids {
                match map.insert(n, id) {
                    Some(other) if other != id => bail!(
                        "{origin}: agent {name:?}: {kind} {n} is already listed by agent {:?} \
                         (a {kind} can map to one agent only)",
                        self.agents[other.index()].name()
                    ),
                    _ => {}
                }
            }
        }
        let permissions = self.permissions(name, &raw.permissions).map_err(context)?;
        let limits = limits(raw.ops_per_sec, raw.bytes_per_sec).map_err(context)?;
        let secret = secret(&raw, origin).map_err(context)?;
        if raw.uids.is_empty() && raw.gids.is_empty() && secret.is_none() {
            self.warnings.push(format!(
                "{origin}: agent {name:?} has no uids, no gids and no secret: no caller can \
                 ever act as it"
            ));
        }
        self.agents.push(Agent {
            name: name.into(),
            permissions,
            limits,
            secret,
        });
        Ok(())
    }

    /// Compiles `SECTION:ACCESS` strings into bits, giving custom sections ids as they
    /// first appear, and warns once per agent about each section that is not built in.
    fn permissions(&mut self, agent: &str, list: &[String]) -> Result<Permissions> {
        let mut permissions = Permissions::default();
        let mut warned = FxHashSet::default();
        for entry in list {
            let (section, access) = parse_permission(entry)?;
            let bit = match section {
                "*" => None,
                s => Some(
                    self.section_bit(s)
                        .with_context(|| format!("permission {entry:?}: too many sections"))?,
                ),
            };
            if bit.is_some_and(|b| usize::from(b) >= BUILTIN_SECTIONS.len())
                && warned.insert(section)
            {
                let warning = unusual_section(self.origin, agent, section);
                self.warnings.push(warning);
            }
            permissions.grant(bit, access);
        }
        Ok(permissions)
    }

    fn section_bit(&mut self, name: &str) -> Result<u8> {
        if let Some(i) = BUILTIN_SECTIONS.iter().position(|&s| s == name) {
            return Ok(i as u8);
        }
        let i = match self.custom_sections.iter().position(|s| &**s == name) {
            Some(i) => i,
            None => {
                self.custom_sections.push(name.into());
                self.custom_sections.len() - 1
            }
        };
        let bit = BUILTIN_SECTIONS.len() + i;
        if bit >= MAX_SECTIONS {
            bail!(
                "a policy can name at most {} sections besides the built-in ones",
                MAX_SECTIONS - BUILTIN_SECTIONS.len()
            );
        }
        Ok(bit as u8)
    }
}

const PERMISSION_HELP: &str = "(sections: current, debug, history, shadows, streams, \
    context, another view's name, or *; access: read, write)";

/// `SECTION:ACCESS` → (section, access); the section is `*`, built in, or a valid view name.
fn parse_permission(entry: &str) -> Result<(&str, Access)> {
    let Some((section, access)) = entry.split_once(':') else {
        bail!("permission {entry:?} is not SECTION:ACCESS {PERMISSION_HELP}");
    };
    let access = match access {
        "read" => Access::Read,
        "write" => Access::Write,
        _ => bail!("unknown access {access:?} in permission {entry:?} {PERMISSION_HELP}"),
    };
    if section != "*" && !BUILTIN_SECTIONS.contains(&section) && !is_view_name(section) {
        bail!("unknown section {section:?} in permission {entry:?} {PERMISSION_HELP}");
    }
    Ok((section, access))
}

/// The view-name syntax a policy accepts: `[a-z0-9][a-z0-9_-]*`, at most 255 bytes.
fn is_view_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    s.len() <= 255
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn unusual_section(origin: &str, agent: &str, section: &str) -> String {
    let hint = BUILTIN_SECTIONS
        .iter()
        .find(|b| edit_distance(b, section) <= 2)
        .map(|b| format!("; did you mean {b:?}?"))
        .unwrap_or_default();
    format!(
        "{origin}: agent {agent:?}: section {section:?} is not built in (current, debug, \
         history, shadows, streams, context); it only applies to a view of that name{hint}"
    )
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

fn check_name(name: &str) -> Result<()> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        bail!("agent name {name:?} is not 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -");
    }
    if name == DEFAULT_AGENT_NAME {
        bail!(
            "agent name {DEFAULT_AGENT_NAME:?} is reserved for callers that match no agent; \
             configure it in the [default] table"
        );
    }
    Ok(())
}

/// Absent and 0 both mean unlimited.
fn limits(ops_per_sec: Option<u64>, bytes_per_sec: Option<u64>) -> Result<RateLimit> {
    for (key, value) in [
        ("ops_per_sec", ops_per_sec),
        ("bytes_per_sec", bytes_per_sec),
    ] {
        if let Some(value) = value.filter(|&v| v > MAX_RATE) {
            bail!("{key} = {value} is above the highest limit, {MAX_RATE} (0 = unlimited)");
        }
    }
    Ok(RateLimit {
        ops_per_sec: ops_per_sec.unwrap_or(0),
        bytes_per_sec: bytes_per_sec.unwrap_or(0),
    })
}

fn auth_settings(raw: &RawAuth) -> Result<AuthSettings> {
    let ttl = |value: Option<u64>, key: &str, default: Duration| match value {
        None => Ok(default),
        Some(s) if (1..=MAX_TTL_SECS).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(anyhow!("{key} = {s}: must be 1 to {MAX_TTL_SECS} seconds")),
    };
    Ok(AuthSettings {
        binding_ttl: ttl(
            raw.binding_ttl_secs,
            "binding_ttl_secs",
            DEFAULT_AUTH.binding_ttl,
        )?,
        challenge_ttl: ttl(
            raw.challenge_ttl_secs,
            "challenge_ttl_secs",
            DEFAULT_AUTH.challenge_ttl,
        )?,
    })
}

/// The agent's secret, from `secret` (hex) or `secret_file` (a file holding the same hex,
/// surrounding whitespace ignored, so `openssl rand -hex 32 > FILE` makes one). Messages
/// never quote the value.
fn secret(raw: &RawAgent, origin: &str) -> Result<Option<Secret>> {
    let (hex_text, what) = match (&raw.secret, &raw.secret_file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => bail!("give either secret or secret_file, not both"),
        (Some(s), None) => (s.clone(), "secret".to_owned()),
        (None, Some(file)) => {
            let path = match Path::new(origin).parent() {
                Some(dir) if file.is_relative() => dir.join(file),
                _ => file.clone(),
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow!("cannot read secret_file {}: {e}", path.display()))?;
            (text, format!("secret_file {}", path.display()))
        }
    };
    let bytes = hex::decode(hex_text.trim())
        .map_err(|_| anyhow!("{what} is not an even number of hex digits"))?;
    if bytes.len() < MIN_SECRET_BYTES {
        bail!(
            "{what} is {} bytes; at least {MIN_SECRET_BYTES} are required \
             (make one with `openssl rand -hex 32`)",
            bytes.len()
        );
    }
    Ok(Some(Secret(bytes.into_boxed_slice())))
}
