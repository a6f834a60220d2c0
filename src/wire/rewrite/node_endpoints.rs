//! Produce (v10 on) and Fetch (v16 on) answers name the new leaders of partitions that
//! moved, host and port included, in a top-level tagged field (KIP-951's NodeEndpoints,
//! tag 0) after everything else. The body is walked without copying to find where those
//! tagged fields start; the records a Fetch answer carries are skipped by their length
//! and kept as the same bytes. Only the tagged fields are written anew.

use kafka_protocol::messages::ApiKey;

use super::walk::Walk;
use super::{Advertise, Rewritten, MIN_BROKER};
use crate::wire::responses::Body;
use crate::wire::varint::{put_uvarint, Reader};
use crate::wire::WireError;

pub const PRODUCE_FIRST: i16 = 10;
pub const PRODUCE_MAX: i16 = 13;
pub const FETCH_FIRST: i16 = 16;
pub const FETCH_MAX: i16 = 18;

pub(super) const NODE_ENDPOINTS_TAG: u32 = 0;

/// Whether answers to this api and version can carry node endpoints.
pub fn carried(api_key: i16, version: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::Produce) => version >= PRODUCE_FIRST,
        Ok(ApiKey::Fetch) => version >= FETCH_FIRST,
        _ => false,
    }
}

/// The answer with its node endpoints' addresses replaced; `None` when it names none,
/// which is every answer but those right after a leader moved.
pub fn rewrite(
    api_key: i16,
    version: i16,
    body: &[u8],
    advertise: &mut Advertise<'_>,
) -> Result<Option<Rewritten>, WireError> {
    if !carried(api_key, version) {
        return Ok(None);
    }
    let keep = match ApiKey::try_from(api_key) {
        Ok(ApiKey::Produce) => {
            super::check_version("Produce", version, PRODUCE_MAX)?;
            produce_tags_start(body, version)?
        }
        Ok(ApiKey::Fetch) => {
            super::check_version("Fetch", version, FETCH_MAX)?;
            fetch_tags_start(body, version)?
        }
        _ => return Ok(None),
    };
    let tail = rewrite_tags(&body[keep..], advertise)?;
    Ok(tail.map(|tail| Rewritten { keep, tail }))
}

/// Where a Produce answer's top-level tagged fields start.
fn produce_tags_start(body: &[u8], version: i16) -> Result<usize, WireError> {
    let mut b = Body::new(body, true, "produce response");
    let min_partition = 4 + 2 + 8 + 8 + 8 + 1 + 1 + 1;
    for _ in 0..b.array_len(1 + 1 + 1)? {
        skip_topic_identity(&mut b, version, 13)?;
        for _ in 0..b.array_len(min_partition)? {
            b.skip(4 + 2 + 8 + 8 + 8)?;
            for _ in 0..b.array_len(4 + 1 + 1)? {
                b.skip(4)?;
                b.skip_string()?;
                b.tagged_fields()?;
            }
            b.skip_string()?; // error message
            b.tagged_fields()?;
        }
        b.tagged_fields()?;
    }
    b.skip(4)?; // throttle time
    Ok(b.position())
}

/// Where a Fetch answer's top-level tagged fields start; records are skipped unread.
fn fetch_tags_start(body: &[u8], version: i16) -> Result<usize, WireError> {
    let mut b = Body::new(body, true, "fetch response");
    b.skip(4 + 2 + 4)?; // throttle time, error code, session id
    let min_partition = 4 + 2 + 8 + 8 + 8 + 1 + 4 + 1 + 1;
    for _ in 0..b.array_len(1 + 1 + 1)? {
        skip_topic_identity(&mut b, version, 13)?;
        for _ in 0..b.array_len(min_partition)? {
            b.skip(4 + 2 + 8 + 8 + 8)?;
            for _ in 0..b.array_len(8 + 8 + 1)? {
                b.skip(8 + 8)?; // aborted transaction: producer id, first offset
                b.tagged_fields()?;
            }
            b.skip(4)?; // preferred read replica
            b.skip_bytes()?; // records
            b.tagged_fields()?;
        }
        b.tagged_fields()?;
    }
    Ok(b.position())
}

/// A topic is named up to one version and identified by its 16-byte id from `by_id` on.
fn skip_topic_identity(b: &mut Body<'_>, version: i16, by_id: i16) -> Result<(), WireError> {
    if version >= by_id {
        b.skip(16)
    } else {
        b.skip_string()
    }
}

/// The tagged-field section with node endpoints rewritten and nothing after it, or
/// `None` if it names no node and ends the answer. Other tags are copied as they are,
/// in their order.
fn rewrite_tags(tags: &[u8], advertise: &mut Advertise<'_>) -> Result<Option<Vec<u8>>, WireError> {
    let mut r = Reader::new(tags, "tagged fields");
    let count = r.uvarint()?;
    let mut out = Vec::with_capacity(tags.len() + 64);
    put_uvarint(&mut out, count);
    let mut rewrote = false;
    for _ in 0..count {
        let tag = r.uvarint()?;
        let size = r.uvarint()? as usize;
        let data = r.take(size)?;
        put_uvarint(&mut out, tag);
        let endpoints = if tag == NODE_ENDPOINTS_TAG {
            rewrite_endpoints(data, advertise)?
        } else {
            None
        };
        rewrote |= endpoints.is_some();
        let data = endpoints.as_deref().unwrap_or(data);
        put_uvarint(&mut out, data.len() as u32);
        out.extend_from_slice(data);
    }
    // Bytes after the last field are cut (see `Walk::finish`). With nothing rewritten
    // the section goes as the broker wrote it, its varints as they were encoded.
    Ok(match (rewrote, r.remaining() > 0) {
        (true, _) => Some(out),
        (false, true) => Some(tags[..r.position()].to_vec()),
        (false, false) => None,
    })
}

/// NodeEndpoints: node id, host, port, rack, tagged fields, per node; `None` if empty.
fn rewrite_endpoints(data: &[u8], advertise: &mut Advertise<'_>) -> Result<Option<Vec<u8>>, WireError> {
    let mut w = Walk::new(data, true, "node endpoints");
    let nodes = w.copy_array_len(MIN_BROKER)?;
    for _ in 0..nodes {
        let node = w.copy_i32()?;
        w.replace_address(node, advertise)?;
        w.copy_string()?; // rack
        w.copy_tagged()?;
    }
    let endpoints = w.finish()?;
    Ok((nodes > 0).then_some(endpoints))
}
