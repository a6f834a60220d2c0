//! The control-plane responses strait reads, decoded by hand, one file per response.
//!
//! kafka-protocol's decoders reserve array capacity straight from the input, so a few
//! hostile bytes can abort the process. These decoders read the schema of every version
//! strait negotiates, skip tagged fields without looking inside, bound every count by
//! the bytes left, and keep only the fields the client uses. Requests are still encoded
//! with kafka-protocol; only decoding lives here.

mod body;

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod describe_configs;
pub mod end_txn;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod partition_errors;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;

#[cfg(test)]
mod testing;

pub use body::Body;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Request;

use super::WireError;

/// A response strait decodes itself.
pub trait Decode: Sized {
    /// The api's name, for errors about versions.
    const API: &'static str;
    /// The response's name, for errors about its bytes.
    const WHAT: &'static str;
    /// The versions this decoder reads, both ends included.
    const VERSIONS: (i16, i16);
    /// The first version with compact lengths and tagged fields (`i16::MAX`: none).
    const FIRST_FLEXIBLE: i16;

    /// Reads the body's fields; the body's own tagged fields are left to `decode`.
    fn read(body: &mut Body<'_>, version: i16) -> Result<Self, WireError>;
}

/// Ties a kafka-protocol request type to the decoder of its response, so a typed
/// request gets a typed answer.
pub trait Answered: Request {
    type Answer: Decode;
}

/// Decodes a response body (header already removed) at `version`. Bytes after the last
/// field are ignored, as Kafka's own clients do.
pub fn decode<D: Decode>(body: &[u8], version: i16) -> Result<D, WireError> {
    decode_counted(body, version).map(|(response, _)| response)
}

/// Decodes and says how many bytes the schema covered.
fn decode_counted<D: Decode>(body: &[u8], version: i16) -> Result<(D, usize), WireError> {
    let (min, max) = D::VERSIONS;
    if !(min..=max).contains(&version) {
        return Err(WireError::UnsupportedVersion {
            api: D::API,
            version,
            min,
            max,
        });
    }
    let mut b = Body::new(body, version >= D::FIRST_FLEXIBLE, D::WHAT);
    let response = D::read(&mut b, version)?;
    b.tagged_fields()?;
    Ok((response, b.position()))
}

/// The api keys of every response decoded here.
pub const API_KEYS: [ApiKey; 20] = [
    ApiKey::ApiVersions,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::Metadata,
    ApiKey::InitProducerId,
    ApiKey::ListOffsets,
    ApiKey::CreateTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeConfigs,
    ApiKey::FindCoordinator,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::EndTxn,
];

/// Decodes `body` as the response to `api_key` at `version` and drops the result: one
/// entry point over every decoder, for the fuzz target.
pub fn decode_by_key(api_key: i16, version: i16, body: &[u8]) -> Result<(), WireError> {
    use ApiKey::*;
    let key = ApiKey::try_from(api_key).map_err(|_| WireError::UnknownApiKey(api_key))?;
    match key {
        ApiVersions => decode::<api_versions::ApiVersionsResponse>(body, version).map(drop),
        SaslHandshake => decode::<sasl_handshake::SaslHandshakeResponse>(body, version).map(drop),
        SaslAuthenticate => decode::<sasl_authenticate::SaslAuthenticateResponse>(body, version).map(drop),
        Metadata => decode::<metadata::MetadataResponse>(body, version).map(drop),
        InitProducerId => decode::<init_producer_id::InitProducerIdResponse>(body, version).map(drop),
        ListOffsets => decode::<list_offsets::ListOffsetsResponse>(body, version).map(drop),
        CreateTopics => decode::<create_topics::CreateTopicsResponse>(body, version).map(drop),
        CreatePartitions => decode::<create_partitions::CreatePartitionsResponse>(body, version).map(drop),
        DescribeConfigs => decode::<describe_configs::DescribeConfigsResponse>(body, version).map(drop),
        FindCoordinator => decode::<find_coordinator::FindCoordinatorResponse>(body, version).map(drop),
        OffsetCommit => decode::<offset_commit::OffsetCommitResponse>(body, version).map(drop),
        OffsetFetch => decode::<offset_fetch::OffsetFetchResponse>(body, version).map(drop),
        JoinGroup => decode::<join_group::JoinGroupResponse>(body, version).map(drop),
        SyncGroup => decode::<sync_group::SyncGroupResponse>(body, version).map(drop),
        Heartbeat => decode::<heartbeat::HeartbeatResponse>(body, version).map(drop),
        LeaveGroup => decode::<leave_group::LeaveGroupResponse>(body, version).map(drop),
        AddPartitionsToTxn => decode::<add_partitions_to_txn::AddPartitionsToTxnResponse>(body, version).map(drop),
        AddOffsetsToTxn => decode::<add_offsets_to_txn::AddOffsetsToTxnResponse>(body, version).map(drop),
        TxnOffsetCommit => decode::<txn_offset_commit::TxnOffsetCommitResponse>(body, version).map(drop),
        EndTxn => decode::<end_txn::EndTxnResponse>(body, version).map(drop),
        _ => Err(WireError::UnknownApiKey(api_key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_has_a_decoder_and_its_versions_are_checked() {
        for key in API_KEYS {
            let key = key as i16;
            match decode_by_key(key, 15, &[]) {
                Err(WireError::UnsupportedVersion { version: 15, .. }) => {}
                other => panic!("api {key}: {other:?}"),
            }
            assert!(decode_by_key(key, -1, &[0; 64]).is_err());
        }
        assert!(matches!(decode_by_key(1, 11, &[]), Err(WireError::UnknownApiKey(1))));
        assert!(matches!(decode_by_key(999, 0, &[]), Err(WireError::UnknownApiKey(999))));
    }
}
