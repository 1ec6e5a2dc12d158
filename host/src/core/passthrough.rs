//! FUSE passthrough (Linux 6.9+): the kernel reads an open live file straight from a
//! local file, its committed object or its scratch copy, without a READ request per
//! block. Here: whether it is in force, and what the adapters report of their kernels.
//! Which file backs which open is the content's business (`store/content.rs`); the
//! adapters only register that file with their kernel connection.
//!
//! What stays as it was: every open, close, fsync, truncate and attribute request still
//! reaches the core, so policy checks at open, events at close and the durability
//! contract are unchanged. A writer alone on an empty file (created, or truncated by its
//! open) writes by passthrough too: the kernel writes its scratch copy, attributes are
//! answered from that file while it is open, and its close is committed at the release
//! (`core/deferred.rs` says why, and how the contract holds). Another writer is served
//! cached, or, when readers are already open by passthrough (the kernel accepts no mix),
//! by passthrough with direct I/O on the same backing. Reads no longer reach the core,
//! so under a policy with rate limits every handle gets direct I/O (its reads and writes
//! come to the core and count); passthrough then only serves mappings. Nor do writers
//! write by passthrough where their writes must be seen: under rate limits, with the
//! store short of room (content is refused then), or with another mount to tell.
//!
//! Not in force with a shared store (another host's version may replace a file under
//! open handles, which one backing per inode cannot express), with `--passthrough=off`,
//! or when a kernel or its privileges refuse it; each reason is logged once and shown in
//! `debug/health.json` and `/metrics`.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use super::*;
use crate::store::BackingClaims;

const UNKNOWN: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

pub struct Passthrough {
    wanted: bool,
    state: AtomicU8,
    why_off: Mutex<Option<String>>,
    /// Objects backing an inode now (see [`BackingClaims`]).
    pub(super) claims: BackingClaims,
    /// Opens answered with passthrough.
    pub(super) opens: AtomicU64,
    /// Of those, writers alone on an empty file, whose writes the kernel makes itself.
    pub(super) writer_opens: AtomicU64,
}

/// What `debug/health.json` shows of passthrough.
#[derive(Debug, Clone, Serialize)]
pub struct PassthroughStatus {
    /// "on", "off", or "pending" until a kernel connection was negotiated.
    pub state: &'static str,
    /// Why it is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Opens served by passthrough since the start.
    pub opens: u64,
    /// Of those, writers of a new or emptied file: the kernel wrote it directly.
    pub writer_opens: u64,
    /// Closes of such writers whose commit waits for the release now
    /// (`core/deferred.rs`); normally 0 a moment after the close.
    pub closes_due: usize,
    /// Committed objects backing an open file now.
    pub object_backings: usize,
}

impl Passthrough {
    pub(super) fn new(wanted: bool) -> Passthrough {
        Passthrough {
            wanted,
            state: AtomicU8::new(UNKNOWN),
            why_off: Mutex::new(None),
            claims: BackingClaims::default(),
            opens: AtomicU64::new(0),
            writer_opens: AtomicU64::new(0),
        }
    }

    pub(super) fn in_force(&self) -> bool {
        self.state.load(Ordering::Acquire) == ON
    }

    /// Off for the rest of the process, logged once with the first reason.
    fn turn_off(&self, why: String) {
        let mut reason = self.why_off.lock();
        if self.state.swap(OFF, Ordering::AcqRel) != OFF {
            tracing::info!("FUSE passthrough off: {why}; file data goes through this process");
            *reason = Some(why);
        }
    }

    pub fn status(&self) -> PassthroughStatus {
        PassthroughStatus {
            state: match self.state.load(Ordering::Acquire) {
                ON => "on",
                OFF => "off",
                _ => "pending",
            },
            reason: self.why_off.lock().clone(),
            opens: self.opens.load(Ordering::Relaxed),
            writer_opens: self.writer_opens.load(Ordering::Relaxed),
            closes_due: 0,
            object_backings: self.claims.len(),
        }
    }
}

impl Fs {
    /// Should an adapter ask its kernel for passthrough at INIT?
    pub fn passthrough_wanted(&self) -> bool {
        self.passthrough.wanted && !self.store.shared()
    }

    /// An adapter's INIT is done: `Ok` when its kernel connection accepted passthrough,
    /// else why not. Passthrough is in force while every mount's connection has it.
    pub fn passthrough_offered(&self, offered: Result<(), String>) {
        let p = &self.passthrough;
        let offered = if !p.wanted {
            Err("--passthrough=off".to_string())
        } else if self.store.shared() {
            Err(
                "the store is shared with other hosts, whose changes may replace a file \
                 under handles open here"
                    .to_string(),
            )
        } else {
            offered
        };
        match offered {
            Ok(()) => {
                if p.state
                    .compare_exchange(UNKNOWN, ON, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    tracing::info!("FUSE passthrough on: the kernel reads open files directly");
                }
            }
            Err(why) => p.turn_off(why),
        }
    }

    /// The kernel turned down the backing of the handle `fh` ([`Opened::backing`]): the
    /// handle is served through this process after all, and no later open tries
    /// passthrough again. Returns how to answer the open now.
    pub fn passthrough_refused(&self, fh: u64, err: &std::io::Error) -> Opened {
        self.passthrough.turn_off(match err.raw_os_error() {
            // The ioctl says EPERM alike for a missing CAP_SYS_ADMIN, a capability not
            // negotiated and a stack depth of 0.
            Some(libc::EPERM) => format!(
                "the kernel refused to register a backing file ({err}): passthrough needs \
                 CAP_SYS_ADMIN in the daemon"
            ),
            _ => format!("the kernel refused to register a backing file: {err}"),
        });
        self.live_passthrough_refused(fh)
    }

    pub fn passthrough_status(&self) -> PassthroughStatus {
        PassthroughStatus {
            closes_due: self.deferred.len(),
            ..self.passthrough.status()
        }
    }
}
