//! The Produce request and response, coded by hand: the request is written as a list of
//! buffers so that forwarded batches go out by vectored write without being copied, and
//! the response is read with bounded counts. Versions 3 to 8 (magic 2, non-flexible).

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::PatchedBatch;
use super::frame::length_prefix;
use super::varint::Reader;
use super::WireError;

pub const MIN_VERSION: i16 = 3;
pub const MAX_VERSION: i16 = 8;
const API_KEY: i16 = 0;

/// One partition's batches to produce.
pub struct ProducePartition<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub batches: &'a [PatchedBatch],
}

pub struct ProduceRequest<'a> {
    pub transactional_id: Option<&'a str>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub partition: ProducePartition<'a>,
}

fn put_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        None => buf.put_i16(-1),
        Some(s) => {
            buf.put_i16(s.len() as i16);
            buf.put_slice(s.as_bytes());
        }
    }
}

/// Encodes a whole request frame as buffers to write in order.
pub fn encode_produce_request(
    req: &ProduceRequest<'_>,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<Vec<Bytes>, WireError> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(WireError::UnsupportedVersion {
            api: "Produce",
            version,
            min: MIN_VERSION,
            max: MAX_VERSION,
        });
    }
    let records_len: usize = req.partition.batches.iter().map(PatchedBatch::len).sum();
    let mut head = BytesMut::with_capacity(64 + req.partition.topic.len() + client_id.len());
    head.put_i32(0);
    head.put_i16(API_KEY);
    head.put_i16(version);
    head.put_i32(correlation_id);
    put_string(&mut head, Some(client_id));
    put_string(&mut head, req.transactional_id);
    head.put_i16(req.acks);
    head.put_i32(req.timeout_ms);
    head.put_i32(1);
    put_string(&mut head, Some(req.partition.topic));
    head.put_i32(1);
    head.put_i32(req.partition.partition);
    head.put_i32(i32::try_from(records_len).map_err(|_| WireError::Encode {
        what: "Produce",
        detail: format!("{records_len} bytes of records"),
    })?);
    let frame_len = head.len() - 4 + records_len;
    head[..4].copy_from_slice(&length_prefix(frame_len)?);
    let mut parts = Vec::with_capacity(1 + 2 * req.partition.batches.len());
    parts.push(head.freeze());
    for batch in req.partition.batches {
        parts.push(batch.header.clone());
        parts.push(batch.records.clone());
    }
    Ok(parts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
    pub log_append_time: i64,
    pub error_message: Option<String>,
}

const MIN_TOPIC: usize = 2 + 4;
const MIN_PARTITION: usize = 4 + 2 + 8 + 8;

pub fn decode_produce_response(body: &[u8], version: i16) -> Result<Vec<ProducePartitionResponse>, WireError> {
    let mut r = Reader::new(body, "produce response");
    let mut out = Vec::new();
    let topics = r.array_len(MIN_TOPIC)?;
    for _ in 0..topics {
        let topic = r.string()?.unwrap_or_default();
        let partitions = r.array_len(MIN_PARTITION)?;
        for _ in 0..partitions {
            out.push(decode_partition(&mut r, &topic, version)?);
        }
    }
    Ok(out)
}

fn decode_partition(r: &mut Reader<'_>, topic: &str, version: i16) -> Result<ProducePartitionResponse, WireError> {
    let partition = r.i32()?;
    let error_code = r.i16()?;
    let base_offset = r.i64()?;
    let log_append_time = r.i64()?;
    if version >= 5 {
        let _log_start_offset = r.i64()?;
    }
    let mut error_message = None;
    if version >= 8 {
        let record_errors = r.array_len(4 + 2)?;
        for _ in 0..record_errors {
            let _batch_index = r.i32()?;
            let _message = r.string()?;
        }
        error_message = r.string()?;
    }
    Ok(ProducePartitionResponse {
        topic: topic.to_owned(),
        partition,
        error_code,
        base_offset,
        log_append_time,
        error_message,
    })
}

/// The acks of a Produce request frame (header included): a proxy must not wait for an
/// answer to acks=0, which gets none.
pub fn request_acks(frame: &[u8], header_version: i16, version: i16) -> Result<i16, WireError> {
    let start = super::header::request_body_offset(frame, header_version)?;
    let mut r = Reader::new(&frame[start..], "produce request");
    if version >= 3 {
        if version >= 9 {
            let len = r.uvarint()? as usize;
            r.take(len.saturating_sub(1))?;
        } else {
            r.string()?;
        }
    }
    r.i16()
}
