//! SaslAuthenticate: one round of a SASL exchange, the server's message or its error.

use kafka_protocol::messages::SaslAuthenticateRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslAuthenticateResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub auth_bytes: Vec<u8>,
}

impl Decode for SaslAuthenticateResponse {
    const API: &'static str = "SaslAuthenticate";
    const WHAT: &'static str = "SaslAuthenticate response";
    const VERSIONS: (i16, i16) = (0, 2);
    const FIRST_FLEXIBLE: i16 = 2;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let error_code = b.i16()?;
        let error_message = b.string()?;
        let auth_bytes = b.bytes()?;
        if version >= 1 {
            let _session_lifetime_ms = b.i64()?;
        }
        Ok(SaslAuthenticateResponse {
            error_code,
            error_message,
            auth_bytes,
        })
    }
}

impl Answered for SaslAuthenticateRequest {
    type Answer = SaslAuthenticateResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_code_message_and_bytes() {
        for version in 0..=2 {
            let sample = kafka_protocol::messages::SaslAuthenticateResponse::default()
                .with_error_code(58)
                .with_error_message(Some(s("bad proof")))
                .with_auth_bytes(Bytes::from_static(b"v=c2lnbmF0dXJl"))
                .with_session_lifetime_ms(if version >= 1 { 3_600_000 } else { 0 });
            let r: SaslAuthenticateResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(r.error_code, 58);
            assert_eq!(r.error_message.as_deref(), Some("bad proof"));
            assert_eq!(r.auth_bytes, b"v=c2lnbmF0dXJl");
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        // v0: error 0, null message, bytes of length -2.
        let negative = [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            refused::<SaslAuthenticateResponse>(&negative, 0),
            WireError::Malformed { .. }
        ));
        // v0: bytes of length i32::MAX with 3 bytes behind it.
        let huge = [0, 0, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            refused::<SaslAuthenticateResponse>(&huge, 0),
            WireError::Truncated { .. }
        ));
        // v2: a compact message length of u32::MAX - 1.
        let compact = [0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2];
        assert!(matches!(
            refused::<SaslAuthenticateResponse>(&compact, 2),
            WireError::Truncated { .. }
        ));
    }
}
