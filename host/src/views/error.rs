//! Why a call into a view failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::contract::ViewError;

/// The failure of one call into a view ([`super::ViewHost::getattr`] and the others).
///
/// [`View`](ViewCallError::View) is the view's own answer (`fs-error`): part of normal
/// operation (ENOENT on a lookup, EROFS on a write), not logged. Every other variant is a
/// fault of the view or of the runtime: already logged at warn level with the view's
/// name, and recorded as the view's `last_error`; the reply is EIO.
#[derive(Clone, Debug)]
pub enum ViewCallError {
    /// No view of that name is loaded (ENOENT).
    NoSuchView,
    /// The generation asked for has been replaced and nothing holds it any more
    /// (ESTALE: the kernel looks the path up again and finds the current one).
    Gone,
    /// The view answered this `fs-error`.
    View(ViewError),
    /// The view trapped (a panic, `unreachable`, an out-of-bounds access...). `message`
    /// has the trap, the wasm backtrace, and the tail of the view's stderr.
    Trap { view: Arc<str>, message: String },
    /// The call ran past the per-call deadline and was interrupted.
    Timeout { view: Arc<str>, deadline: Duration },
    /// The view tried to grow its memory past the per-instance cap.
    MemoryCap { view: Arc<str>, cap: usize },
    /// The view's answer breaks the contract (more bytes than asked, a bad entry name...).
    BadAnswer { view: Arc<str>, message: String },
    /// No instance could be created (instance limit reached, instantiation failed).
    Unavailable { view: Arc<str>, message: String },
}

/// The kinds of fault a view call can end in, as counted and exported.
pub const FAULT_KINDS: [&str; 5] = ["trap", "timeout", "memory_cap", "bad_answer", "unavailable"];

impl ViewCallError {
    /// The errno of the FUSE reply.
    pub fn errno(&self) -> i32 {
        match self {
            ViewCallError::NoSuchView => libc::ENOENT,
            ViewCallError::Gone => libc::ESTALE,
            ViewCallError::View(e) => e.errno(),
            ViewCallError::Trap { .. }
            | ViewCallError::Timeout { .. }
            | ViewCallError::MemoryCap { .. }
            | ViewCallError::BadAnswer { .. }
            | ViewCallError::Unavailable { .. } => libc::EIO,
        }
    }

    /// `true` for the view's own `would-block`: park the read until the store's head
    /// moves, then call again.
    pub fn is_would_block(&self) -> bool {
        matches!(self, ViewCallError::View(ViewError::WouldBlock))
    }

    /// The kind of fault this is (one of [`FAULT_KINDS`]); `None` when it is none.
    pub fn fault_kind(&self) -> Option<&'static str> {
        Some(match self {
            ViewCallError::NoSuchView | ViewCallError::Gone | ViewCallError::View(_) => {
                return None
            }
            ViewCallError::Trap { .. } => "trap",
            ViewCallError::Timeout { .. } => "timeout",
            ViewCallError::MemoryCap { .. } => "memory_cap",
            ViewCallError::BadAnswer { .. } => "bad_answer",
            ViewCallError::Unavailable { .. } => "unavailable",
        })
    }

    /// `true` when the view itself misbehaved or the runtime failed (not an `fs-error`).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            ViewCallError::NoSuchView | ViewCallError::Gone | ViewCallError::View(_)
        )
    }
}

impl fmt::Display for ViewCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewCallError::NoSuchView => f.write_str("no such view"),
            ViewCallError::Gone => f.write_str("that version of the view has been replaced"),
            ViewCallError::View(e) => write!(f, "{e}"),
            ViewCallError::Trap { view, message } => write!(f, "view {view} trapped: {message}"),
            ViewCallError::Timeout { view, deadline } => {
                write!(f, "view {view} ran past its deadline of {deadline:?}")
            }
            ViewCallError::MemoryCap { view, cap } => {
                write!(f, "view {view} exceeded its memory cap of {cap} bytes")
            }
            ViewCallError::BadAnswer { view, message } => {
                write!(f, "view {view} broke the contract: {message}")
            }
            ViewCallError::Unavailable { view, message } => {
                write!(f, "view {view} has no instance available: {message}")
            }
        }
    }
}

impl std::error::Error for ViewCallError {}

impl From<ViewError> for ViewCallError {
    fn from(e: ViewError) -> Self {
        ViewCallError::View(e)
    }
}
