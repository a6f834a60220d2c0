//! Records of an uncompressed records section. Whatever parses must survive re-encoding
//! with the same deltas: read again, the records are equal.
//!
//! Input: 4 bytes of expected count (big-endian i32), then the records section.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait::wire::records::{read_records, write_record};

fuzz_target!(|data: &[u8]| {
    let Some((count, section)) = data.split_first_chunk::<4>() else {
        return;
    };
    let expected = i32::from_be_bytes(*count);
    let Ok(records) = read_records(section, expected) else {
        return;
    };
    assert_eq!(records.len(), expected as usize);
    let mut again = Vec::with_capacity(section.len());
    for record in &records {
        write_record(&mut again, record, record.timestamp_delta, record.offset_delta);
    }
    let reread = read_records(&again, expected).expect("re-encoded records do not parse");
    assert_eq!(reread, records);
});
