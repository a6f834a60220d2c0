//! Fetch response bodies, versions 4 to 11; byte 0 picks the version. Every partition's
//! records must be a slice of the body.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait::wire::fetch::decode_fetch_response;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let version = 4 + i16::from(first % 8);
    let body = Bytes::copy_from_slice(body);
    if let Ok(response) = decode_fetch_response(&body, version) {
        let records: usize = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.len())
            .sum();
        assert!(records <= body.len());
    }
});
