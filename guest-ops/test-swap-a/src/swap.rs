//! The `swap` test view, shared by its two versions (`test-swap-a`, `test-swap-b`),
//! which differ only in [`super::LETTER`] and [`super::BIG_LEN`]: the host's hot-swap
//! tests and benchmark replace one with the other under readers and check that every
//! read is one version's whole output.
//!
//! - `version`: `version X\n`;
//! - `big`: `BIG_LEN` bytes of the letter, larger than one FUSE read, of a size that
//!   differs between the versions (so a read sized by one version and filled by the
//!   other shows).

use lighthouse_view_sdk::tree::TreeView;
use lighthouse_view_sdk::{Caller, FixedDir, ViewInfo};

use super::{BIG_LEN, LETTER};

static BIG: [u8; BIG_LEN] = [LETTER; BIG_LEN];
static VERSION: [u8; 10] = [
    b'v', b'e', b'r', b's', b'i', b'o', b'n', b' ', LETTER, b'\n',
];
static ROOT: FixedDir = FixedDir {
    files: &[("big", &BIG), ("version", &VERSION)],
    mtime_ns: 0,
};

pub struct Swap;

impl TreeView for Swap {
    type Files = &'static FixedDir<'static>;

    fn info() -> ViewInfo {
        ViewInfo {
            name: "swap".into(),
            version: format!("1.0.0-{}", LETTER as char),
            description: "hot-swap test view: one version of two".into(),
        }
    }

    fn files(_: Caller) -> Self::Files {
        &ROOT
    }
}
