//! `test-swap-b/`: version B of the `swap` test view (see `../test-swap-a/src/swap.rs`).

const LETTER: u8 = b'b';
const BIG_LEN: usize = 200_003;

#[path = "../../test-swap-a/src/swap.rs"]
mod swap;

use swap::Swap;

lighthouse_view_sdk::export!(Swap);
