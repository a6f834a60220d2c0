//! gzip decompression of arbitrary bytes: never panics, never returns more than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::codec::{decompress, Compression};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = decompress(Compression::Gzip, data, LIMIT) {
        assert!(out.len() <= LIMIT, "{} bytes out, limit {LIMIT}", out.len());
    }
});
