//! The Fetch response, decoded by hand so that the records of every partition stay a
//! slice of the frame they arrived in and every count is bounded by the bytes present.
//! Versions 4 to 11 (non-flexible, topic names rather than ids).

use bytes::Bytes;

use super::varint::Reader;
use super::WireError;

pub const MIN_VERSION: i16 = 4;
pub const MAX_VERSION: i16 = 11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

#[derive(Debug, Clone)]
pub struct FetchPartition {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub aborted: Vec<AbortedTransaction>,
    pub records: Bytes,
}

#[derive(Debug, Clone)]
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub topics: Vec<FetchTopic>,
}

/// Smallest encodings, used to bound counts before looping over them.
const MIN_TOPIC: usize = 2 + 4;
const MIN_PARTITION: usize = 4 + 2 + 8 + 8 + 4 + 4;
const MIN_ABORTED: usize = 16;

pub fn decode_fetch_response(body: &Bytes, version: i16) -> Result<FetchResponse, WireError> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(WireError::UnsupportedVersion {
            api: "Fetch",
            version,
            min: MIN_VERSION,
            max: MAX_VERSION,
        });
    }
    let mut r = Reader::new(body, "fetch response");
    let throttle_time_ms = r.i32()?;
    let error_code = if version >= 7 {
        let code = r.i16()?;
        let _session_id = r.i32()?;
        code
    } else {
        0
    };
    let topic_count = r.array_len(MIN_TOPIC)?;
    let mut topics = Vec::new();
    for _ in 0..topic_count {
        let name = r.string()?.unwrap_or_default();
        let partition_count = r.array_len(MIN_PARTITION)?;
        let mut partitions = Vec::new();
        for _ in 0..partition_count {
            partitions.push(decode_partition(&mut r, body, version)?);
        }
        topics.push(FetchTopic { name, partitions });
    }
    Ok(FetchResponse {
        throttle_time_ms,
        error_code,
        topics,
    })
}

fn decode_partition(r: &mut Reader<'_>, body: &Bytes, version: i16) -> Result<FetchPartition, WireError> {
    let partition = r.i32()?;
    let error_code = r.i16()?;
    let high_watermark = r.i64()?;
    let last_stable_offset = r.i64()?;
    let log_start_offset = if version >= 5 { r.i64()? } else { -1 };
    let aborted_count = r.array_len(MIN_ABORTED)?;
    let mut aborted = Vec::with_capacity(aborted_count);
    for _ in 0..aborted_count {
        aborted.push(AbortedTransaction {
            producer_id: r.i64()?,
            first_offset: r.i64()?,
        });
    }
    if version >= 11 {
        let _preferred_read_replica = r.i32()?;
    }
    let len = r.i32()?;
    let records = if len <= 0 {
        Bytes::new()
    } else {
        let start = r.position();
        r.take(len as usize)?;
        body.slice(start..start + len as usize)
    };
    Ok(FetchPartition {
        partition,
        error_code,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        aborted,
        records,
    })
}
