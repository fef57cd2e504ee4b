//! Fuzzes the gateway's request-framing scanner (`gateway::framing`), which follows a client's
//! byte stream to find heads with both `Content-Length` and `Transfer-Encoding`.
//!
//! Properties: nothing panics; the scanner's verdicts (heads read, heads marked, whether it
//! still follows) do not depend on how the stream is cut into reads; a marked head is one that
//! was read.
//!
//! Input layout: the first byte picks the size of the pieces the rest is fed in (1 to 256).
#![no_main]

use std::sync::Arc;

use gateway::framing::{Scanner, Verdicts};
use libfuzzer_sys::fuzz_target;

fn scan(stream: &[u8], piece: usize) -> (u64, Vec<u64>, bool) {
    let verdicts = Arc::new(Verdicts::default());
    let mut scanner = Scanner::new(verdicts.clone());
    for chunk in stream.chunks(piece) {
        scanner.feed(chunk);
    }
    (scanner.heads(), verdicts.marked(), scanner.following())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first) + 1;
    let whole = scan(stream, stream.len().max(1));
    let cut = scan(stream, piece);
    assert_eq!(whole, cut, "verdicts depend on the cut (pieces of {piece})");
    let (heads, marked, _) = whole;
    assert!(marked.iter().all(|&i| i < heads), "{marked:?} of {heads} heads");
});
