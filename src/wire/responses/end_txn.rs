//! EndTxn, versions 0 to 3 (flexible from 3): whether the transaction coordinator
//! committed or aborted the transaction. Version 4 only allows TRANSACTION_ABORTABLE
//! (KIP-890), which strait cannot act on yet; version 5 is the second transaction
//! protocol, where each transaction ends with a new producer epoch the producer must
//! adopt, and a producer that kept the old one would fence itself.

use kafka_protocol::messages::EndTxnRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnResponse {
    pub error_code: i16,
}

impl Decode for EndTxnResponse {
    const API: &'static str = "EndTxn";
    const WHAT: &'static str = "EndTxn response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        Ok(EndTxnResponse { error_code: b.i16()? })
    }
}

impl Answered for EndTxnRequest {
    type Answer = EndTxnResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_the_error() {
        for version in 0..=3 {
            let mut sample = kafka_protocol::messages::EndTxnResponse::default()
                .with_throttle_time_ms(11)
                .with_error_code(90);
            if version >= 3 {
                sample = sample.with_unknown_tagged_field(0, Bytes::from_static(b"later"));
            }
            let r: EndTxnResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(r, EndTxnResponse { error_code: 90 }, "v{version}");
        }
    }

    #[test]
    fn hostile_input_is_refused() {
        let body = [0, 0, 0, 0, 0, 0, 1, 0, 0x7f, 1];
        assert!(matches!(
            refused::<EndTxnResponse>(&body, 3),
            WireError::Truncated { .. }
        ));
        // Version 5 carries a new producer identity that must not be dropped unread.
        for version in [4, 5] {
            assert!(matches!(
                refused::<EndTxnResponse>(&[0; 16], version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }
}
