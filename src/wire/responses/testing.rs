//! Helpers for the decoders' tests: kafka-protocol encodes a response, ours must read
//! every byte of it, and every shorter prefix must be refused cleanly.

use bytes::BytesMut;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::{decode, decode_counted, Decode};
use crate::wire::WireError;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub fn encode(m: &impl Encodable, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// Decodes `body`, which must be read to its last byte; every prefix must fail.
pub fn decode_all<D: Decode>(body: &[u8], version: i16) -> D {
    for cut in 0..body.len() {
        assert!(
            decode::<D>(&body[..cut], version).is_err(),
            "{} v{version}: a prefix of {cut} of {} bytes decoded",
            D::WHAT,
            body.len()
        );
    }
    let (response, read) = decode_counted::<D>(body, version).unwrap();
    assert_eq!(read, body.len(), "{} v{version}: bytes left unread", D::WHAT);
    response
}

/// The error from decoding `body`, which must be a clean refusal.
pub fn refused<D: Decode>(body: &[u8], version: i16) -> WireError {
    match decode::<D>(body, version) {
        Ok(_) => panic!("{} v{version}: hostile input decoded", D::WHAT),
        Err(e) => e,
    }
}

/// For every version: `prefix(version)` (the fields before an array), then a count of
/// i32::MAX (or a compact u32::MAX - 1) and a few bytes. The count must be refused as
/// more than the bytes left, before anything is allocated for it.
pub fn assert_huge_counts_refused<D: Decode>(prefix: impl Fn(i16) -> Vec<u8>) {
    for version in D::VERSIONS.0..=D::VERSIONS.1 {
        let mut body = prefix(version);
        if version >= D::FIRST_FLEXIBLE {
            body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        } else {
            body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        }
        body.extend_from_slice(&[0, 1, 2, 3, 4, 5]);
        match refused::<D>(&body, version) {
            WireError::Truncated { what, .. } => assert_eq!(what, D::WHAT),
            other => panic!("{} v{version}: expected a refused count, got {other}", D::WHAT),
        }
    }
}
