//! SyncGroup, versions 1 to 5 (flexible from 4): the assignment the leader made for this
//! member. Version 3 is the first whose request carries the group.instance.id static
//! membership needs; the answer only grows the protocol's type and name at 5, which the
//! member already knows from its join, so they are skipped.

use kafka_protocol::messages::SyncGroupRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: i16,
    /// Opaque to the coordinator; empty (or null, read as empty) when the leader gave
    /// this member nothing or the sync failed.
    pub assignment: Vec<u8>,
}

impl Decode for SyncGroupResponse {
    const API: &'static str = "SyncGroup";
    const WHAT: &'static str = "SyncGroup response";
    const VERSIONS: (i16, i16) = (1, 5);
    const FIRST_FLEXIBLE: i16 = 4;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let error_code = b.i16()?;
        if version >= 5 {
            b.skip_string()?; // protocol type
            b.skip_string()?; // protocol name
        }
        Ok(SyncGroupResponse {
            error_code,
            assignment: b.bytes()?,
        })
    }
}

impl Answered for SyncGroupRequest {
    type Answer = SyncGroupResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::testing::*;
    use super::*;

    const ASSIGNMENT: &[u8] =
        b"\x00\x03\x00\x00\x00\x01\x00\x06orders\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff";

    #[test]
    fn every_version_reads_the_assignment() {
        for version in 1..=5 {
            let mut sample = kafka_protocol::messages::SyncGroupResponse::default()
                .with_throttle_time_ms(4)
                .with_error_code(27)
                .with_protocol_type((version >= 5).then(|| s("consumer")))
                .with_protocol_name((version >= 5).then(|| s("cooperative-sticky")))
                .with_assignment(Bytes::from_static(ASSIGNMENT));
            if version >= 4 {
                sample = sample.with_unknown_tagged_field(3, Bytes::from_static(b"later"));
            }
            let r: SyncGroupResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(
                r,
                SyncGroupResponse {
                    error_code: 27,
                    assignment: ASSIGNMENT.to_vec()
                },
                "v{version}"
            );
        }
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        for version in [0, 6] {
            assert!(matches!(
                refused::<SyncGroupResponse>(&[0; 16], version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        // v3: throttle, error 0, an assignment of i32::MAX bytes with 3 behind it.
        let huge = [0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            refused::<SyncGroupResponse>(&huge, 3),
            WireError::Truncated { .. }
        ));
        // v3: an assignment length of -2.
        let negative = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3];
        assert!(matches!(
            refused::<SyncGroupResponse>(&negative, 3),
            WireError::Malformed { .. }
        ));
        // v4: a compact assignment length of u32::MAX - 1.
        let compact = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2];
        assert!(matches!(
            refused::<SyncGroupResponse>(&compact, 4),
            WireError::Truncated { .. }
        ));
        // v5: a compact protocol type length of u32::MAX - 1.
        assert!(matches!(
            refused::<SyncGroupResponse>(&compact, 5),
            WireError::Truncated { .. }
        ));
    }
}
