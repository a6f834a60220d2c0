//! A records field split into batches; every whole batch patched with a producer stamp.
//! The patched batch must parse, carry a valid CRC, the stamp, and the original records
//! section byte for byte.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait::wire::batch::{patch, Batch, Piece, ProducerStamp, Splitter};

fuzz_target!(|data: &[u8]| {
    let mut seen = 0usize;
    for (i, piece) in Splitter::new(Bytes::copy_from_slice(data)).enumerate() {
        let batch = match piece {
            Ok(Piece::Batch(batch)) => batch,
            Ok(Piece::Truncated { have, .. }) => {
                assert_eq!(seen + have, data.len(), "truncated piece is not the whole rest");
                break;
            }
            Err(_) => break,
        };
        assert_eq!(&data[seen..seen + batch.len()], &batch.as_bytes()[..]);
        seen += batch.len();
        let stamp = ProducerStamp {
            producer_id: 0x0102_0304_0506_0708 ^ i as i64,
            producer_epoch: 7,
            base_sequence: i as i32 * 3,
            transactional: i % 2 == 1,
        };
        let patched = patch(&batch, stamp);
        assert_eq!(patched.len(), batch.len());
        let out = Batch::new(patched.to_contiguous()).expect("patched batch does not parse");
        out.verify_crc().expect("patched batch has a bad CRC");
        assert_eq!(out.records(), batch.records(), "records section changed");
        assert_eq!(out.base_offset(), 0);
        assert_eq!(out.producer_id(), stamp.producer_id);
        assert_eq!(out.producer_epoch(), stamp.producer_epoch);
        assert_eq!(out.base_sequence(), stamp.base_sequence);
        assert_eq!(out.is_transactional(), stamp.transactional);
        assert_eq!(out.attributes() & !(1 << 4), batch.attributes() & !(1 << 4));
        assert_eq!(out.last_offset_delta(), batch.last_offset_delta());
        assert_eq!(out.record_count(), batch.record_count());
        assert_eq!(out.base_timestamp(), batch.base_timestamp());
        assert_eq!(out.max_timestamp(), batch.max_timestamp());
    }
});
