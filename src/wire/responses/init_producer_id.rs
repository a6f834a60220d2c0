//! InitProducerId: the idempotent producer identity strait stamps on forwarded batches.

use kafka_protocol::messages::InitProducerIdRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    pub error_code: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Decode for InitProducerIdResponse {
    const API: &'static str = "InitProducerId";
    const WHAT: &'static str = "InitProducerId response";
    const VERSIONS: (i16, i16) = (0, 4);
    const FIRST_FLEXIBLE: i16 = 2;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        Ok(InitProducerIdResponse {
            error_code: b.i16()?,
            producer_id: b.i64()?,
            producer_epoch: b.i16()?,
        })
    }
}

impl Answered for InitProducerIdRequest {
    type Answer = InitProducerIdResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ProducerId;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_the_identity() {
        for version in 0..=4 {
            let sample = kafka_protocol::messages::InitProducerIdResponse::default()
                .with_throttle_time_ms(20)
                .with_error_code(47)
                .with_producer_id(ProducerId(0x1234_5678_9abc))
                .with_producer_epoch(513);
            let r: InitProducerIdResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(
                r,
                InitProducerIdResponse {
                    error_code: 47,
                    producer_id: 0x1234_5678_9abc,
                    producer_epoch: 513
                }
            );
        }
    }

    #[test]
    fn a_lying_tagged_field_size_is_refused() {
        // v2: every field, then one tagged field claiming 127 bytes that are not there.
        let mut body = vec![0; 16];
        body.extend_from_slice(&[1, 0, 0x7f, 1]);
        assert!(matches!(
            refused::<InitProducerIdResponse>(&body, 2),
            WireError::Truncated { .. }
        ));
    }
}
