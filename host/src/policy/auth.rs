//! Token binding: a process proves it holds an agent's secret, and its session then acts
//! as that agent for a limited time, whatever its uid would map to.
//!
//! The protocol, version 1, through the control file `MOUNT/.auth`:
//!
//! 1. The process reads the file and gets one line, a fresh challenge:
//!    `lighthouse-fs-auth v1 <nonce>\n`, where `<nonce>` is 32 random bytes as 64
//!    lowercase hex digits. A challenge is issued to the reader's session (see
//!    [`SessionKey`]), can be answered once, and expires after `challenge_ttl_secs`.
//! 2. It writes one line: `<agent> <mac>\n`, where `<mac>` is the hex HMAC-SHA256, keyed
//!    with the agent's secret (the bytes the policy's hex stands for), of the message
//!    `lighthouse-fs-auth v1\n<nonce>\n<agent>` (no final newline) — [`response_mac`].
//! 3. The host checks the MAC in constant time against the challenges outstanding for the
//!    writer's session. If one matches, it is used up and the session is bound to the
//!    agent for `binding_ttl_secs`; the write succeeds. Otherwise the write fails
//!    ([`AuthError::errno`]) and every challenge outstanding for that session is used up,
//!    so each challenge allows one guess.
//!
//! Answering again rebinds (to the same or another agent) and restarts the lifetime.
//! Secrets never leave the policy: no message here contains a secret, a MAC or the line
//! that was written.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hmac::{Hmac, Mac};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use sha2::Sha256;

use super::{AgentId, Policy};

type HmacSha256 = Hmac<Sha256>;

/// The protocol name and version: the first words of a challenge and of the MAC'd message.
pub const PROTOCOL: &str = "lighthouse-fs-auth v1";

const NONCE_BYTES: usize = 32;
const MAC_BYTES: usize = 32;
/// A client reads one challenge per attempt; a few allow concurrent attempts in one
/// session without letting it pile up unanswered nonces.
const MAX_PENDING_PER_SESSION: usize = 4;
/// Across all sessions. When full, the oldest challenge gives way: a flood can make other
/// clients read a new challenge, but cannot grow memory.
const MAX_PENDING: usize = 1024;
/// Longer than any valid response (a 64-byte name, a space, 64 hex digits, a newline).
const MAX_RESPONSE: usize = 256;

/// A session a binding applies to: the session id, its leader's start time (so that a
/// reused sid is another session) and the caller's uid (so that a binding made by one
/// user never serves another). Built by [`super::session_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub sid: u32,
    pub leader_start: u64,
    pub uid: u32,
}

/// The MAC a client writes back: hex HMAC-SHA256 keyed with `secret` over
/// `"lighthouse-fs-auth v1\n" + nonce_hex + "\n" + agent`.
pub fn response_mac(secret: &[u8], nonce_hex: &str, agent: &str) -> String {
    hex::encode(keyed_mac(secret, nonce_hex, agent).finalize().into_bytes())
}

fn keyed_mac(secret: &[u8], nonce_hex: &str, agent: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    for part in [PROTOCOL, "\n", nonce_hex, "\n", agent] {
        mac.update(part.as_bytes());
    }
    mac
}

/// Why a response was refused. Messages name the agent at most, never a secret, a MAC
/// or the written line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// Not `<agent> <64 hex digits>\n`.
    Malformed,
    /// No agent has that name. (The name is not repeated: it may be anything.)
    UnknownAgent,
    /// The agent has no secret, so it cannot be bound to.
    NoSecret { agent: Box<str> },
    /// No challenge is outstanding for this session: never read, used up, or expired.
    NoChallenge,
    /// The MAC matches no outstanding challenge.
    BadMac { agent: Box<str> },
}

impl AuthError {
    /// The errno the write of a refused response fails with: EINVAL for a malformed line,
    /// EACCES otherwise.
    pub fn errno(&self) -> i32 {
        match self {
            AuthError::Malformed => libc::EINVAL,
            _ => libc::EACCES,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Malformed => write!(
                f,
                "malformed response: expected one line `<agent> <hex HMAC-SHA256>` \
                 ({PROTOCOL})"
            ),
            AuthError::UnknownAgent => f.write_str("no agent of that name"),
            AuthError::NoSecret { agent } => {
                write!(f, "agent {agent:?} has no secret and cannot be bound to")
            }
            AuthError::NoChallenge => f.write_str(
                "no challenge outstanding for this session (read the control file first; \
                 a challenge is used once and expires)",
            ),
            AuthError::BadMac { agent } => write!(f, "wrong MAC for agent {agent:?}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Issued challenges and session bindings of one policy. Shared by all request threads;
/// the per-request [`Authenticator::bound`] takes no lock while nothing is bound, and a
/// read lock otherwise.
pub struct Authenticator {
    policy: Arc<Policy>,
    /// True while `bindings` may be non-empty; written under its write lock.
    any_bound: AtomicBool,
    /// Bounded by the sessions bound within one binding TTL: expired ones go at the next
    /// binding and at [`Authenticator::expire`].
    bindings: RwLock<FxHashMap<SessionKey, Binding>>,
    /// In issue order, hence in expiry order (one TTL for all); at most [`MAX_PENDING`].
    pending: Mutex<VecDeque<Pending>>,
}

#[derive(Clone, Copy)]
struct Binding {
    agent: AgentId,
    until: Instant,
}

struct Pending {
    key: SessionKey,
    nonce_hex: [u8; 2 * NONCE_BYTES],
    until: Instant,
}

impl Pending {
    fn nonce(&self) -> &str {
        // Filled by `hex::encode_to_slice`: ASCII.
        std::str::from_utf8(&self.nonce_hex).unwrap_or_default()
    }
}

impl Authenticator {
    pub fn new(policy: Arc<Policy>) -> Authenticator {
        Authenticator {
            policy,
            any_bound: AtomicBool::new(false),
            bindings: RwLock::new(FxHashMap::default()),
            pending: Mutex::new(VecDeque::new()),
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// A fresh challenge line for a reader in session `key`. Fails only if the OS cannot
    /// provide random bytes.
    pub fn challenge(&self, key: SessionKey, now: Instant) -> io::Result<String> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(io::Error::from)?;
        let mut nonce_hex = [0u8; 2 * NONCE_BYTES];
        hex::encode_to_slice(nonce, &mut nonce_hex).map_err(|e| io::Error::other(e.to_string()))?;
        let entry = Pending {
            key,
            nonce_hex,
            until: now + self.policy.auth_settings().challenge_ttl,
        };
        let line = format!("{PROTOCOL} {}\n", entry.nonce());

        let mut pending = self.pending.lock();
        drop_expired(&mut pending, now);
        let of_key = pending.iter().filter(|p| p.key == key).count();
        if of_key >= MAX_PENDING_PER_SESSION {
            if let Some(oldest) = pending.iter().position(|p| p.key == key) {
                pending.remove(oldest);
            }
        }
        if pending.len() >= MAX_PENDING {
            pending.pop_front();
        }
        pending.push_back(entry);
        Ok(line)
    }

    /// Checks a response written by session `key` and, if it is right, binds the session
    /// to the agent it names.
    pub fn respond(
        &self,
        key: SessionKey,
        line: &[u8],
        now: Instant,
    ) -> Result<AgentId, AuthError> {
        let (name, mac) = parse_response(line)?;
        let agent = self
            .policy
            .agent_by_name(name)
            .ok_or(AuthError::UnknownAgent)?;
        let agent_name = || Box::<str>::from(self.policy.agent(agent).name());
        let Some(secret) = self.policy.agent(agent).secret() else {
            return Err(AuthError::NoSecret {
                agent: agent_name(),
            });
        };

        {
            let mut pending = self.pending.lock();
            drop_expired(&mut pending, now);
            let mut found = false;
            let mut matched = None;
            for (i, p) in pending.iter().enumerate() {
                if p.key == key {
                    found = true;
                    let expected = keyed_mac(secret.bytes(), p.nonce(), name);
                    if expected.verify_slice(&mac).is_ok() {
                        matched = Some(i);
                        break;
                    }
                }
            }
            match matched {
                Some(i) => {
                    pending.remove(i);
                }
                None => {
                    pending.retain(|p| p.key != key);
                    return Err(if found {
                        AuthError::BadMac {
                            agent: agent_name(),
                        }
                    } else {
                        AuthError::NoChallenge
                    });
                }
            }
        }

        let until = now + self.policy.auth_settings().binding_ttl;
        let mut bindings = self.bindings.write();
        bindings.retain(|_, b| b.until > now);
        bindings.insert(key, Binding { agent, until });
        self.any_bound.store(true, Ordering::Release);
        Ok(agent)
    }

    /// Whether any session may be bound. When not, a request need not look up its
    /// session at all.
    pub fn has_bindings(&self) -> bool {
        self.any_bound.load(Ordering::Acquire)
    }

    /// The agent session `key` is bound to, if its binding is still in force.
    pub fn bound(&self, key: SessionKey, now: Instant) -> Option<AgentId> {
        if !self.has_bindings() {
            return None;
        }
        let bindings = self.bindings.read();
        let binding = bindings.get(&key)?;
        (binding.until > now).then_some(binding.agent)
    }

    /// Ends a session's binding; whether there was one.
    pub fn unbind(&self, key: SessionKey) -> bool {
        let mut bindings = self.bindings.write();
        let removed = bindings.remove(&key).is_some();
        if bindings.is_empty() {
            self.any_bound.store(false, Ordering::Release);
        }
        removed
    }

    /// Sessions bound now (expired ones included until they are forgotten), and
    /// challenges waiting for an answer.
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.bindings.read().len(), self.pending.lock().len())
    }

    /// Forgets expired bindings and challenges. Expired ones are never honoured anyway;
    /// calling this now and then (e.g. once a minute) frees their memory and lets
    /// [`Authenticator::has_bindings`] turn false again.
    pub fn expire(&self, now: Instant) {
        drop_expired(&mut self.pending.lock(), now);
        let mut bindings = self.bindings.write();
        bindings.retain(|_, b| b.until > now);
        if bindings.is_empty() {
            self.any_bound.store(false, Ordering::Release);
        }
    }
}

fn drop_expired(pending: &mut VecDeque<Pending>, now: Instant) {
    while pending.front().is_some_and(|p| p.until <= now) {
        pending.pop_front();
    }
}

/// `<agent> <64 hex digits>`, one trailing newline allowed.
fn parse_response(line: &[u8]) -> Result<(&str, [u8; MAC_BYTES]), AuthError> {
    if line.len() > MAX_RESPONSE {
        return Err(AuthError::Malformed);
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = std::str::from_utf8(line).map_err(|_| AuthError::Malformed)?;
    let mut words = line.split(' ');
    let (Some(name), Some(mac_hex), None) = (words.next(), words.next(), words.next()) else {
        return Err(AuthError::Malformed);
    };
    let mut mac = [0u8; MAC_BYTES];
    hex::decode_to_slice(mac_hex, &mut mac).map_err(|_| AuthError::Malformed)?;
    if name.is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok((name, mac))
}
