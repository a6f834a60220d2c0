//! AddOffsetsToTxn, versions 0 to 3 (flexible from 3): whether the transaction
//! coordinator will commit a group's offsets with the transaction. Version 4 differs only
//! in allowing TRANSACTION_ABORTABLE (KIP-890), an answer strait cannot act on yet, so it
//! is left unread.

use kafka_protocol::messages::AddOffsetsToTxnRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOffsetsToTxnResponse {
    pub error_code: i16,
}

impl Decode for AddOffsetsToTxnResponse {
    const API: &'static str = "AddOffsetsToTxn";
    const WHAT: &'static str = "AddOffsetsToTxn response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        Ok(AddOffsetsToTxnResponse { error_code: b.i16()? })
    }
}

impl Answered for AddOffsetsToTxnRequest {
    type Answer = AddOffsetsToTxnResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_the_error() {
        for version in 0..=3 {
            let mut sample = kafka_protocol::messages::AddOffsetsToTxnResponse::default()
                .with_throttle_time_ms(3)
                .with_error_code(47);
            if version >= 3 {
                sample = sample.with_unknown_tagged_field(9, Bytes::from_static(b"x"));
            }
            let r: AddOffsetsToTxnResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(r, AddOffsetsToTxnResponse { error_code: 47 }, "v{version}");
        }
    }

    #[test]
    fn hostile_input_is_refused() {
        // v3: both fields, then a tagged-field section claiming 127 bytes that are not there.
        let body = [0, 0, 0, 0, 0, 0, 1, 0, 0x7f, 1];
        assert!(matches!(
            refused::<AddOffsetsToTxnResponse>(&body, 3),
            WireError::Truncated { .. }
        ));
        assert!(matches!(
            refused::<AddOffsetsToTxnResponse>(&[0; 6], 4),
            WireError::UnsupportedVersion { .. }
        ));
    }
}
