//! `shadows/`: annotations on the files of `current/`.

mod anchor;
mod fold;
mod input;
