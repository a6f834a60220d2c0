//! Closing tagged fields, rewritten, made exactly as long as the ones they replace. A
//! large answer's length goes to the client before its end has arrived (see
//! `proxy::cut_through`), so its node endpoints must be replaced at the same length.
//! Where the rewrite is shorter it is padded with a tag no Kafka version defines, which
//! clients skip as KIP-482 requires of unknown tags; where it is longer the node
//! endpoints are left out, and the client finds the new leader in metadata, as it did
//! before KIP-951.

use super::node_endpoints::NODE_ENDPOINTS_TAG;
use crate::wire::varint::{put_uvarint, uvarint_len, Reader};
use crate::wire::WireError;

/// The first padding tag: far above the one tag Kafka defines for these answers (0).
const PADDING_TAG: u32 = 10_000;

/// `tail` (a tagged-field section) in exactly `len` bytes. The rewrite of a tail that
/// carried node endpoints always fits, unless its last tag leaves no number above it
/// for padding (a broker's answer with a tag near 2³²): then it is an error.
pub fn fit(tail: &[u8], len: usize) -> Result<Vec<u8>, WireError> {
    if tail.len() == len {
        return Ok(tail.to_vec());
    }
    let (fields, trailing) = fields(tail)?;
    let without_endpoints: Vec<_> = fields
        .iter()
        .copied()
        .filter(|(tag, _)| *tag != NODE_ENDPOINTS_TAG)
        .collect();
    padded(&fields, trailing, len)
        .or_else(|| padded(&without_endpoints, trailing, len))
        .ok_or_else(|| {
            WireError::malformed(
                "tagged fields",
                format!("{} bytes cannot be fitted into {len}", tail.len()),
            )
        })
}

/// A tagged field: tag and data.
type Field<'a> = (u32, &'a [u8]);

/// The fields of a tagged-field section, and any bytes after them.
fn fields(tail: &[u8]) -> Result<(Vec<Field<'_>>, &[u8]), WireError> {
    let mut r = Reader::new(tail, "tagged fields");
    let count = r.uvarint()?;
    let mut fields = Vec::new();
    for _ in 0..count {
        let tag = r.uvarint()?;
        let size = r.uvarint()? as usize;
        fields.push((tag, r.take(size)?));
    }
    Ok((fields, r.take(r.remaining())?))
}

/// `fields`, up to two padding fields, then `trailing`, in exactly `len` bytes; one
/// padding field cannot make every length (its size's varint grows a byte at 128).
fn padded(fields: &[Field<'_>], trailing: &[u8], len: usize) -> Option<Vec<u8>> {
    // Tags must ascend: padding follows the last field's tag.
    let first_pad = match fields.last() {
        Some((tag, _)) => PADDING_TAG.max(tag.checked_add(1)?),
        None => PADDING_TAG,
    };
    first_pad.checked_add(1)?;
    (0..=2).find_map(|pads| {
        let unpadded = section(fields, first_pad, pads, 0, trailing);
        let short = len.checked_sub(unpadded.len())?;
        if pads == 0 {
            return (short == 0).then_some(unpadded);
        }
        // The last padding field's size: its data and the growth of its size varint.
        let size = (1..=5).find_map(|n| {
            let size = (short + 1).checked_sub(n)?;
            (uvarint_len(size as u32) == n).then_some(size)
        })?;
        Some(section(fields, first_pad, pads, size, trailing))
    })
}

/// A tagged-field section: `fields`, then `pads` padding fields of zeros, the last
/// `last_size` long and the others empty, then `trailing`.
fn section(fields: &[Field<'_>], first_pad: u32, pads: u32, last_size: usize, trailing: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + last_size + trailing.len());
    put_uvarint(&mut out, fields.len() as u32 + pads);
    for (tag, data) in fields {
        put_uvarint(&mut out, *tag);
        put_uvarint(&mut out, data.len() as u32);
        out.extend_from_slice(data);
    }
    for pad in 0..pads {
        let size = if pad + 1 == pads { last_size } else { 0 };
        put_uvarint(&mut out, first_pad + pad);
        put_uvarint(&mut out, size as u32);
        out.resize(out.len() + size, 0);
    }
    out.extend_from_slice(trailing);
    out
}
