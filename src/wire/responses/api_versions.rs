//! ApiVersions: the version range of every api the broker speaks. strait asks with v3
//! and falls back to v0; the features v3 carries in tagged fields are skipped unread.

use kafka_protocol::messages::ApiVersionsRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    pub error_code: i16,
    pub api_keys: Vec<ApiRange>,
}

impl Decode for ApiVersionsResponse {
    const API: &'static str = "ApiVersions";
    const WHAT: &'static str = "ApiVersions response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let error_code = b.i16()?;
        let count = b.array_len(6 + b.min_tags())?;
        let mut api_keys = Vec::new();
        for _ in 0..count {
            api_keys.push(ApiRange {
                api_key: b.i16()?,
                min_version: b.i16()?,
                max_version: b.i16()?,
            });
            b.tagged_fields()?;
        }
        if version >= 1 {
            let _throttle_time_ms = b.i32()?;
        }
        Ok(ApiVersionsResponse { error_code, api_keys })
    }
}

impl Answered for ApiVersionsRequest {
    type Answer = ApiVersionsResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};

    use super::super::testing::*;
    use super::*;

    fn sample(version: i16) -> kafka_protocol::messages::ApiVersionsResponse {
        let keys = [(0, 3, 9), (1, 4, 13), (18, 0, 4)]
            .map(|(k, lo, hi)| {
                ApiVersion::default()
                    .with_api_key(k)
                    .with_min_version(lo)
                    .with_max_version(hi)
            })
            .to_vec();
        let mut r = kafka_protocol::messages::ApiVersionsResponse::default()
            .with_error_code(35)
            .with_api_keys(keys)
            .with_throttle_time_ms(if version >= 1 { 250 } else { 0 });
        if version >= 3 {
            r = r
                .with_supported_features(vec![SupportedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_min_version(1)
                    .with_max_version(20)])
                .with_finalized_features_epoch(7)
                .with_finalized_features(vec![FinalizedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_min_version_level(20)
                    .with_max_version_level(20)])
                .with_zk_migration_ready(true);
        }
        r
    }

    #[test]
    fn every_version_reads_the_ranges_and_skips_the_features() {
        for version in 0..=3 {
            let r: ApiVersionsResponse = decode_all(&encode(&sample(version), version), version);
            assert_eq!(r.error_code, 35);
            let ranges: Vec<_> = r
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect();
            assert_eq!(ranges, [(0, 3, 9), (1, 4, 13), (18, 0, 4)], "v{version}");
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<ApiVersionsResponse>(|_| vec![0, 0]);
    }

    #[test]
    fn a_huge_feature_count_in_a_tagged_field_is_skipped_by_size() {
        // v3, no api keys, throttle 0, one tagged field (0, SupportedFeatures) of 5 bytes
        // holding a compact count of u32::MAX - 1: skipped by its size, never read.
        let body = [0, 0, 1, 0, 0, 0, 0, 1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let r: ApiVersionsResponse = decode_all(&body, 3);
        assert!(r.api_keys.is_empty());
        let lying_size = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0x7f, 0xff];
        assert!(matches!(
            refused::<ApiVersionsResponse>(&lying_size, 3),
            WireError::Truncated { .. }
        ));
    }

    /// A broker that does not speak v3 answers in v0's format with UNSUPPORTED_VERSION;
    /// read as v3 it must still show that code, so the connection retries with v0.
    #[test]
    fn a_v0_refusal_read_as_v3_keeps_its_error_code() {
        let refusal = sample(0).with_error_code(35);
        let r = super::super::decode::<ApiVersionsResponse>(&encode(&refusal, 0), 3).unwrap();
        assert_eq!(r.error_code, 35);
    }

    #[test]
    fn unsupported_versions_are_refused() {
        assert!(matches!(
            refused::<ApiVersionsResponse>(&[0, 0, 0, 0, 0, 0], 4),
            WireError::UnsupportedVersion { version: 4, .. }
        ));
    }
}
