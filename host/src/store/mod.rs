//! The durable embedded store: event log, content objects, projection of the tree.
pub struct Store;
