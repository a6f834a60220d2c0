//! Heartbeat, versions 1 to 4 (flexible from 4): whether the member is still in the
//! current generation, or must rejoin. Version 3 is the first whose request carries the
//! group.instance.id static membership needs.

use kafka_protocol::messages::HeartbeatRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatResponse {
    pub error_code: i16,
}

impl Decode for HeartbeatResponse {
    const API: &'static str = "Heartbeat";
    const WHAT: &'static str = "Heartbeat response";
    const VERSIONS: (i16, i16) = (1, 4);
    const FIRST_FLEXIBLE: i16 = 4;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        Ok(HeartbeatResponse { error_code: b.i16()? })
    }
}

impl Answered for HeartbeatRequest {
    type Answer = HeartbeatResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_the_error() {
        for version in 1..=4 {
            let mut sample = kafka_protocol::messages::HeartbeatResponse::default()
                .with_throttle_time_ms(9)
                .with_error_code(27);
            if version >= 4 {
                sample = sample.with_unknown_tagged_field(1, Bytes::from_static(b"later"));
            }
            let r: HeartbeatResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(r, HeartbeatResponse { error_code: 27 }, "v{version}");
        }
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        for version in [0, 5] {
            assert!(matches!(
                refused::<HeartbeatResponse>(&[0; 16], version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }

    #[test]
    fn hostile_tagged_fields_are_refused() {
        // v4: throttle, error 0, then a tag count of u32::MAX - 1 with 2 bytes behind it.
        let body = [0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1, 2];
        match refused::<HeartbeatResponse>(&body, 4) {
            WireError::Truncated { what, .. } => assert_eq!(what, "Heartbeat response"),
            other => panic!("expected a truncated tag section, got {other}"),
        }
    }
}
