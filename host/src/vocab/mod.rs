//! The vocabulary the core, the store and the view host share (see docs/architecture.md):
//! a leaf module, so that the store needs nothing of the core.

mod error;
mod types;

pub use error::{errno_name, is_no_space, FsError, FsResult};
pub use types::*;
