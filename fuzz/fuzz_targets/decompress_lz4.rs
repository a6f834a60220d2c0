//! lz4 decompression of arbitrary bytes: never panics, never returns more than the limit.
//! The same bytes compressed as strait writes lz4 frames decompress to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::codec::{compress, decompress, Compression};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = decompress(Compression::Lz4, data, LIMIT) {
        assert!(out.len() <= LIMIT, "{} bytes out, limit {LIMIT}", out.len());
    }
    let frame = compress(Compression::Lz4, None, data).expect("compress");
    let back = decompress(Compression::Lz4, &frame, data.len()).expect("own frame decodes");
    assert_eq!(back, data, "round trip");
});
