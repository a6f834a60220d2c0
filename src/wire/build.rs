//! Record batches strait writes itself (probe records): uncompressed, CreateTime, no
//! producer id, one value per record, no keys or headers.

use bytes::{BufMut, Bytes};

use super::batch::{Batch, PatchedBatch, HEADER_LEN};
use super::varint::{put_varlong, varlong_len};
use super::WireError;

/// Where the CRC-covered part of a batch header starts (the attributes field).
const CRC_FROM: usize = 21;

fn put_record(out: &mut Vec<u8>, offset_delta: i32, value: &[u8]) {
    let value_len = value.len() as i64;
    // attributes, timestamp delta 0, offset delta, null key, value, no headers
    let body = 1 + 1 + varlong_len(offset_delta.into()) + 1 + varlong_len(value_len) + value.len() + 1;
    put_varlong(out, body as i64);
    out.put_i8(0);
    put_varlong(out, 0);
    put_varlong(out, offset_delta.into());
    put_varlong(out, -1);
    put_varlong(out, value_len);
    out.extend_from_slice(value);
    put_varlong(out, 0);
}

/// One batch holding `values`, all stamped `timestamp_ms`.
pub fn batch_of(values: &[&[u8]], timestamp_ms: i64) -> Result<Batch, WireError> {
    let count = i32::try_from(values.len()).map_err(|_| WireError::Encode {
        what: "record batch",
        detail: format!("{} records", values.len()),
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + values.iter().map(|v| v.len() + 16).sum::<usize>());
    out.put_i64(0);
    out.put_i32(0); // batch length, set below
    out.put_i32(-1); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // crc, set below
    out.put_i16(0); // attributes: uncompressed, CreateTime
    out.put_i32(count - 1); // last offset delta
    out.put_i64(timestamp_ms);
    out.put_i64(timestamp_ms);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(count);
    for (i, value) in values.iter().enumerate() {
        put_record(&mut out, i as i32, value);
    }
    let length = super::frame::length_prefix(out.len() - 12)?;
    out[8..12].copy_from_slice(&length);
    let crc = crc32c::crc32c(&out[CRC_FROM..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Batch::new(Bytes::from(out))
}

/// A built batch in the form the produce encoder takes.
pub fn as_patched(batch: &Batch) -> PatchedBatch {
    let bytes = batch.as_bytes();
    PatchedBatch {
        header: bytes.slice(..HEADER_LEN),
        records: bytes.slice(HEADER_LEN..),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::records::read_records;

    #[test]
    fn a_built_batch_reads_back_with_its_values_and_a_valid_crc() {
        let long = vec![7u8; 300];
        let values: [&[u8]; 3] = [b"one", b"", &long];
        let batch = batch_of(&values, 1_700_000_000_123).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!((batch.record_count(), batch.last_offset_delta()), (3, 2));
        assert_eq!(batch.max_timestamp(), 1_700_000_000_123);
        assert_eq!(batch.producer_id(), -1);
        let section = batch.records();
        let records = read_records(&section, 3).unwrap();
        let read: Vec<&[u8]> = records.iter().map(|r| r.value.unwrap()).collect();
        assert_eq!(read, values);
        assert!(records.iter().all(|r| r.key.is_none() && r.headers.is_empty()));
        assert_eq!(records[2].offset_delta, 2);
    }
}
