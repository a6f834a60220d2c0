//! Typed requests through kafka-protocol: encoding the requests strait sends. Their
//! responses are decoded by strait's own bounded decoders in `responses`, and the hot
//! path (fetch and produce) has its own zero-copy codecs in `fetch` and `produce`.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion, Message, Request, StrBytes};

use super::WireError;

fn api_name(key: i16) -> &'static str {
    match kafka_protocol::messages::ApiKey::try_from(key) {
        Ok(k) => api_key_name(k),
        Err(_) => "unknown",
    }
}

/// A static, human name for an api key, for errors and logs.
pub fn api_key_name(key: kafka_protocol::messages::ApiKey) -> &'static str {
    use kafka_protocol::messages::ApiKey::*;
    match key {
        Produce => "Produce",
        Fetch => "Fetch",
        ListOffsets => "ListOffsets",
        Metadata => "Metadata",
        OffsetCommit => "OffsetCommit",
        OffsetFetch => "OffsetFetch",
        FindCoordinator => "FindCoordinator",
        ApiVersions => "ApiVersions",
        CreateTopics => "CreateTopics",
        CreatePartitions => "CreatePartitions",
        DescribeConfigs => "DescribeConfigs",
        InitProducerId => "InitProducerId",
        SaslHandshake => "SaslHandshake",
        SaslAuthenticate => "SaslAuthenticate",
        DescribeCluster => "DescribeCluster",
        _ => "other",
    }
}

fn check_version<M: Message>(key: i16, version: i16) -> Result<(), WireError> {
    if version < M::VERSIONS.min || version > M::VERSIONS.max {
        return Err(WireError::UnsupportedVersion {
            api: api_name(key),
            version,
            min: M::VERSIONS.min,
            max: M::VERSIONS.max,
        });
    }
    Ok(())
}

/// A whole request frame, size prefix included.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<Bytes, WireError> {
    check_version::<R>(R::KEY, version)?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let encode_error = |e: anyhow::Error| WireError::Encode {
        what: api_name(R::KEY),
        detail: e.to_string(),
    };
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(encode_error)?;
    request.encode(&mut buf, version).map_err(encode_error)?;
    let len = super::frame::length_prefix(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len);
    Ok(buf.freeze())
}

/// Response header version of requests of type `R`.
pub fn response_header_version<R: Request>(version: i16) -> i16 {
    <R::Response as HeaderVersion>::header_version(version)
}
