//! `MOUNT/.auth`: the control file of token binding (docs/policy.md, section 4), present
//! while a policy is in force. Reading it gives a fresh challenge for the reader's
//! session; writing `<agent> <mac>` answers it and binds the writer's session to the
//! agent. Every caller may use it; nothing secret is ever in it.

use std::time::{Duration, Instant};

use super::handles::{AuthFileHandle, Handle};
use super::*;
use crate::fs_err;
use crate::policy::auth::PROTOCOL;

/// The file's name in the mount root.
pub const AUTH_NAME: &str = ".auth";
/// Its inode: beside `debug/`'s, far above the live tree's, below the views'.
pub const AUTH_INO: Ino = super::debug::DEBUG_INO - 1;
/// A challenge line: the protocol, a space, 64 hex digits, a newline.
const CHALLENGE_LEN: u64 = PROTOCOL.len() as u64 + 1 + 64 + 1;

impl Fs {
    /// Is there a `.auth` (a policy in force)?
    pub(super) fn has_auth_file(&self) -> bool {
        self.gate.get().is_some()
    }

    /// The attributes of `.auth`: a file every caller may read and write, the size of a
    /// challenge.
    pub(super) fn auth_attr(&self) -> Attr {
        Attr {
            ino: AUTH_INO,
            kind: FileKind::File,
            perm: 0o666,
            nlink: 1,
            size: CHALLENGE_LEN,
            ..self.root_attr
        }
    }

    pub(super) fn auth_entry(&self) -> Entry {
        Entry {
            attr: self.auth_attr(),
            entry_ttl: self.config().entry_ttl,
            // Nothing about it changes; its content is per open.
            attr_ttl: self.config().attr_ttl,
            generation: 0,
        }
    }

    /// Open `.auth`: a reader gets a challenge for its session, issued now.
    pub(super) fn auth_open(&self, caller: &Caller, flags: i32) -> FsResult<Opened> {
        let gate = self
            .gate
            .get()
            .ok_or(fs_err!(ENOENT, "no policy, no .auth"))?;
        let challenge = if flags & libc::O_ACCMODE == libc::O_WRONLY {
            Vec::new()
        } else {
            let key = self.session_of(caller)?;
            gate.authenticator()
                .challenge(key, Instant::now())
                .map_err(|e| FsError::io("issuing a challenge", &e))?
                .into_bytes()
        };
        let fh = self
            .handles
            .insert(Handle::Auth(AuthFileHandle { challenge }));
        // Every open is a new challenge.
        Ok(Opened::fresh(fh))
    }

    /// A response written to `.auth`: bind the writer's session to the agent it names
    /// when the MAC answers one of the session's challenges. Audited either way; the line
    /// itself is never logged.
    pub(super) fn auth_write(&self, caller: &Caller, data: &[u8]) -> FsResult<u32> {
        let gate = self
            .gate
            .get()
            .ok_or(fs_err!(ENOENT, "no policy, no .auth"))?;
        let key = self.session_of(caller)?;
        match gate.authenticator().respond(key, data, Instant::now()) {
            Ok(agent) => {
                let ttl = gate.policy().auth_settings().binding_ttl;
                let outcome = format!(
                    "bound: session {} is {} for {}",
                    key.sid,
                    gate.name(agent),
                    humane(ttl)
                );
                self.audit_auth(gate, caller, Some(agent), outcome);
                Ok(data.len() as u32)
            }
            Err(e) => {
                self.audit_auth(gate, caller, None, format!("refused: {e}"));
                Err(FsError::with(e.errno(), format!("{e}")))
            }
        }
    }
}

/// `3600 s` → `1h`, for an audit line.
fn humane(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}min", s / 60),
        s => format!("{s}s"),
    }
}
