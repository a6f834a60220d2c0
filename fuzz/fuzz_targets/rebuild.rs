//! Every whole batch of a records field rebuilt to zstd under a 1 MiB decompression cap.
//! A rebuilt batch must be zstd, carry a valid CRC and keep its record count.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use strait::wire::batch::{Piece, Splitter};
use strait::wire::codec::Compression;
use strait::wire::rebuild::{rebuild, Target};

const TARGET: Target = Target {
    compression: Compression::Zstd,
    level: Some(1),
    max_decompressed: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    for piece in Splitter::new(Bytes::copy_from_slice(data)) {
        let Ok(Piece::Batch(batch)) = piece else {
            break;
        };
        if let Ok(out) = rebuild(&batch, TARGET) {
            out.verify_crc().expect("rebuilt batch has a bad CRC");
            assert_eq!(out.compression().ok(), Some(Compression::Zstd));
            assert_eq!(out.record_count(), batch.record_count());
        }
    }
});
