//! SaslHandshake: whether the broker takes the mechanism, and which it offers if not.

use kafka_protocol::messages::SaslHandshakeRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslHandshakeResponse {
    pub error_code: i16,
    pub mechanisms: Vec<String>,
}

impl Decode for SaslHandshakeResponse {
    const API: &'static str = "SaslHandshake";
    const WHAT: &'static str = "SaslHandshake response";
    const VERSIONS: (i16, i16) = (0, 1);
    const FIRST_FLEXIBLE: i16 = i16::MAX;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let error_code = b.i16()?;
        let count = b.array_len(b.min_string())?;
        let mut mechanisms = Vec::new();
        for _ in 0..count {
            mechanisms.push(b.string()?.unwrap_or_default());
        }
        Ok(SaslHandshakeResponse { error_code, mechanisms })
    }
}

impl Answered for SaslHandshakeRequest {
    type Answer = SaslHandshakeResponse;
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_code_and_mechanisms() {
        for version in 0..=1 {
            let sample = kafka_protocol::messages::SaslHandshakeResponse::default()
                .with_error_code(33)
                .with_mechanisms(vec![s("PLAIN"), s("SCRAM-SHA-512")]);
            let r: SaslHandshakeResponse = decode_all(&encode(&sample, version), version);
            assert_eq!(r.error_code, 33);
            assert_eq!(r.mechanisms, ["PLAIN", "SCRAM-SHA-512"]);
        }
    }

    #[test]
    fn hostile_counts_and_lengths_are_refused() {
        assert_huge_counts_refused::<SaslHandshakeResponse>(|_| vec![0, 0]);
        let negative_length = [0, 0, 0, 0, 0, 1, 0xff, 0xfe, b'x'];
        assert!(matches!(
            refused::<SaslHandshakeResponse>(&negative_length, 1),
            WireError::Malformed { .. }
        ));
    }
}
