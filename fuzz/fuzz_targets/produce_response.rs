//! Produce response bodies, versions 3 to 8; byte 0 picks the version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::produce::decode_produce_response;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let version = 3 + i16::from(first % 6);
    if let Ok(partitions) = decode_produce_response(body, version) {
        // Every partition takes at least 22 bytes of the body.
        assert!(partitions.len() * 22 <= body.len());
    }
});
