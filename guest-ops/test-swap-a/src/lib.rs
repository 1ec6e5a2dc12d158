//! `test-swap-a/`: version A of the `swap` test view (see `swap.rs`).

const LETTER: u8 = b'a';
const BIG_LEN: usize = 300_000;

mod swap;

use swap::Swap;

lighthouse_view_sdk::export!(Swap);
