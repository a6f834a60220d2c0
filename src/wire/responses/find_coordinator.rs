//! FindCoordinator, versions 0 to 3 (the single-key form): the group coordinator's
//! address.

use kafka_protocol::messages::FindCoordinatorRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorResponse {
    pub error_code: i16,
    pub host: String,
    pub port: i32,
}

impl Decode for FindCoordinatorResponse {
    const API: &'static str = "FindCoordinator";
    const WHAT: &'static str = "FindCoordinator response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        if version >= 1 {
            let _throttle_time_ms = b.i32()?;
        }
        let error_code = b.i16()?;
        if version >= 1 {
            b.skip_string()?; // error message
        }
        let _node_id = b.i32()?;
        Ok(FindCoordinatorResponse {
            error_code,
            host: b.string()?.unwrap_or_default(),
            port: b.i32()?,
        })
    }
}

impl Answered for FindCoordinatorRequest {
    type Answer = FindCoordinatorResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_the_address() {
        for version in 0..=3 {
            let sample = kafka_protocol::messages::FindCoordinatorResponse::default()
                .with_throttle_time_ms(if version >= 1 { 8 } else { 0 })
                .with_error_code(15)
                .with_error_message((version >= 1).then(|| s("loading")))
                .with_node_id(BrokerId(3))
                .with_host(s("kafka-3.kafka-headless.svc"))
                .with_port(9094);
            let r: FindCoordinatorResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(
                r,
                FindCoordinatorResponse {
                    error_code: 15,
                    host: "kafka-3.kafka-headless.svc".into(),
                    port: 9094
                },
                "v{version}"
            );
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        // v1: throttle, error 0, message length -2.
        let negative = [0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 0, 0];
        assert!(matches!(
            refused::<FindCoordinatorResponse>(&negative, 1),
            WireError::Malformed { .. }
        ));
        // v3: throttle, error 0, a compact message length of u32::MAX - 1.
        let huge = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        assert!(matches!(
            refused::<FindCoordinatorResponse>(&huge, 3),
            WireError::Truncated { .. }
        ));
    }
}
