//! Records inside a batch's (decompressed) records section. Only the rebuild path and
//! tests decode records; forwarding never does.

use bytes::BufMut;

use super::varint::{put_varlong, varlong_len, Reader};
use super::WireError;

/// One record, borrowing its key, value and headers from the records section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    /// Key, value and headers exactly as encoded, for re-emitting without re-encoding.
    pub tail: &'a [u8],
}

fn read_record<'a>(body: &'a [u8]) -> Result<Record<'a>, WireError> {
    let mut r = Reader::new(body, "record");
    let attributes = r.i8()?;
    let timestamp_delta = r.varlong()?;
    let offset_delta = r.varint()?;
    let tail_start = r.position();
    let key = r.var_len()?.map(|n| r.take(n)).transpose()?;
    let value = r.var_len()?.map(|n| r.take(n)).transpose()?;
    let count = r.varint()?;
    if count < 0 {
        return Err(WireError::malformed("record", format!("negative header count {count}")));
    }
    let mut headers = Vec::new();
    for _ in 0..count {
        let Some(klen) = r.var_len()? else {
            return Err(WireError::malformed("record header", "null header key"));
        };
        let hkey = r.take(klen)?;
        let hvalue = r.var_len()?.map(|n| r.take(n)).transpose()?;
        headers.push((hkey, hvalue));
    }
    if r.remaining() != 0 {
        return Err(WireError::malformed(
            "record",
            format!("{} bytes after the headers", r.remaining()),
        ));
    }
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
        tail: &body[tail_start..],
    })
}

/// Reads every record of an uncompressed records section. The count is checked against
/// the batch header's, but never trusted to size anything.
pub fn read_records(data: &[u8], expected: i32) -> Result<Vec<Record<'_>>, WireError> {
    let mut r = Reader::new(data, "records");
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let Some(len) = r.var_len()? else {
            return Err(WireError::malformed("record", "null record length"));
        };
        out.push(read_record(r.take(len)?)?);
    }
    if out.len() != expected as usize {
        return Err(WireError::malformed(
            "records",
            format!("header says {expected} records, found {}", out.len()),
        ));
    }
    Ok(out)
}

/// How many records an uncompressed records section holds, read from their length
/// prefixes alone: nothing inside a record is decoded.
pub fn count_records(data: &[u8]) -> Result<usize, WireError> {
    let mut r = Reader::new(data, "records");
    let mut count = 0;
    while r.remaining() > 0 {
        let Some(len) = r.var_len()? else {
            return Err(WireError::malformed("record", "null record length"));
        };
        r.take(len)?;
        count += 1;
    }
    Ok(count)
}

/// Appends one record with new timestamp and offset deltas and the same key, value and
/// headers.
pub fn write_record(out: &mut Vec<u8>, record: &Record<'_>, timestamp_delta: i64, offset_delta: i32) {
    let body_len = 1 + varlong_len(timestamp_delta) + varlong_len(i64::from(offset_delta)) + record.tail.len();
    put_varlong(out, body_len as i64);
    out.put_i8(record.attributes);
    put_varlong(out, timestamp_delta);
    put_varlong(out, i64::from(offset_delta));
    out.extend_from_slice(record.tail);
}
