//! `bad-info/`, a deliberately bad view for the host's tests: `info` itself panics, so
//! loading it must fail. Everything else behaves like a one-file view, so the host can
//! load it, list it and read it.

use lighthouse_view_sdk::tree::TreeView;
use lighthouse_view_sdk::{Caller, FixedDir, ViewInfo};

static ROOT: FixedDir = FixedDir {
    files: &[("ok", b"fine\n")],
    mtime_ns: 0,
};

struct Bad;

impl TreeView for Bad {
    type Files = &'static FixedDir<'static>;

    fn info() -> ViewInfo {
        panic!("bad-info: info panics")
    }

    fn files(_: Caller) -> Self::Files {
        &ROOT
    }
}

lighthouse_view_sdk::export!(Bad);
