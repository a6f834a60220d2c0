//! The one path that decodes a batch: recompression to another codec, and the rewrites a
//! target broker would otherwise get wrong (LogAppendTime timestamps, offset gaps left by
//! compaction inside compressed batches).

use std::sync::Arc;

use super::batch::{layout, Batch, TimestampType, HEADER_LEN};
use super::buffers::BufferPool;
use super::codec::{compress_into, decompress_into, Compression};
use super::records::{read_records, write_record};
use super::WireError;

/// What the records of a batch must become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub compression: Compression,
    pub level: Option<i32>,
    /// Cap on the decompressed records section.
    pub max_decompressed: usize,
}

/// Whether the records must be rewritten for a target broker to store what a source
/// consumer sees: a LogAppendTime batch would get the target's append time or the
/// producer's create times; a compressed batch with offset gaps is refused by Kafka.
pub fn needs_record_rewrite(batch: &Batch) -> Result<bool, WireError> {
    let gaps = i64::from(batch.last_offset_delta()) + 1 != i64::from(batch.record_count());
    let compressed = batch.compression()? != Compression::None;
    Ok(batch.timestamp_type() == TimestampType::LogAppendTime || (gaps && compressed))
}

/// Rebuilds a batch for `target`: decompress, rewrite records if needed, compress, new
/// header with a valid CRC. Producer fields are left for `batch::patch`.
/// Every buffer comes from the shared pool and goes back to it.
pub fn rebuild(batch: &Batch, target: Target) -> Result<Batch, WireError> {
    let pool = BufferPool::shared();
    let records = batch.records();
    let mut plain = pool.take(records.len().saturating_mul(4).min(target.max_decompressed));
    decompress_into(batch.compression()?, &records, target.max_decompressed, &mut plain)?;
    let mut header = batch.header();
    if needs_record_rewrite(batch)? {
        let normalized = normalize_records(batch, &plain, &mut header)?;
        pool.recycle(std::mem::replace(&mut plain, normalized));
    }
    let rebuilt = assemble(&pool, header, target, &plain);
    pool.recycle(plain);
    rebuilt
}

/// Makes timestamps CreateTime holding what a source consumer saw, and offset deltas
/// dense. Updates the header fields that depend on them.
fn normalize_records(batch: &Batch, plain: &[u8], header: &mut [u8; HEADER_LEN]) -> Result<Vec<u8>, WireError> {
    let records = read_records(plain, batch.record_count())?;
    let log_append = batch.timestamp_type() == TimestampType::LogAppendTime;
    let base_ts = if log_append {
        batch.max_timestamp()
    } else {
        batch.base_timestamp()
    };
    let mut out = Vec::with_capacity(plain.len());
    for (i, record) in records.iter().enumerate() {
        let ts_delta = if log_append { 0 } else { record.timestamp_delta };
        write_record(&mut out, record, ts_delta, i as i32);
    }
    let last_delta = (records.len() as i32 - 1).max(0);
    header[23..27].copy_from_slice(&last_delta.to_be_bytes());
    header[27..35].copy_from_slice(&base_ts.to_be_bytes());
    let attributes = batch.attributes() & !layout::TIMESTAMP_TYPE_BIT;
    header[layout::ATTRIBUTES_AT..layout::ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    Ok(out)
}

/// The new batch: `plain` compressed straight after room for the header, which is
/// filled in last, once the length and CRC are known.
fn assemble(
    pool: &Arc<BufferPool>,
    mut header: [u8; HEADER_LEN],
    target: Target,
    plain: &[u8],
) -> Result<Batch, WireError> {
    let mut out = pool.take(HEADER_LEN + plain.len() / 2);
    out.extend_from_slice(&header);
    compress_into(target.compression, target.level, plain, &mut out)?;
    let records = &out[HEADER_LEN..];
    let attributes = i16::from_be_bytes([header[21], header[22]]);
    let attributes = (attributes & !0x07) | target.compression.attribute_bits();
    header[layout::ATTRIBUTES_AT..layout::ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let batch_length = i32::try_from(HEADER_LEN - 12 + records.len()).map_err(|_| WireError::Encode {
        what: "record batch",
        detail: format!("{} bytes of records do not fit a batch", records.len()),
    })?;
    header[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[layout::CRC_FROM..]), records);
    header[layout::CRC_AT..layout::CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out[..HEADER_LEN].copy_from_slice(&header);
    Batch::new(pool.freeze(out))
}
