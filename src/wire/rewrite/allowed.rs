//! The apis the proxy lets clients use, each up to the highest version whose answers
//! were checked against kafka-protocol's schemas: either no field of the answer names a
//! host up to that version, or the proxy rewrites every one that does. An allow-list,
//! not a deny-list, so that an api Kafka adds later (whose answers may name brokers, as
//! KIP-932's ShareFetch does) stays hidden from clients until someone checked it.
//!
//! Left out on purpose:
//! - the share-group apis (KIP-932): ShareFetch and ShareAcknowledge answers carry node
//!   endpoints the proxy does not rewrite, and the rest of the family is useless without
//!   them;
//! - DescribeQuorum from v2 (its nodes' listeners name hosts), and the raft apis;
//! - broker-to-broker and broker-to-controller apis (WriteTxnMarkers, AlterPartition,
//!   Envelope, BrokerRegistration, FetchSnapshot, share-group state, ...), which no
//!   client sends.

use kafka_protocol::messages::ApiKey;

use super::{describe_cluster, find_coordinator, metadata, node_endpoints};

/// Api and the highest version the proxy lets through.
const ALLOWED: &[(ApiKey, i16)] = &[
    // Rewritten: their answers name brokers.
    (ApiKey::Metadata, metadata::MAX_VERSION),
    (ApiKey::FindCoordinator, find_coordinator::MAX_VERSION),
    (ApiKey::DescribeCluster, describe_cluster::MAX_VERSION),
    (ApiKey::Produce, node_endpoints::PRODUCE_MAX),
    (ApiKey::Fetch, node_endpoints::FETCH_MAX),
    (ApiKey::ApiVersions, super::api_versions::MAX_VERSION),
    // Producers and consumers.
    (ApiKey::ListOffsets, 10),
    (ApiKey::OffsetCommit, 10),
    (ApiKey::OffsetFetch, 10),
    (ApiKey::OffsetForLeaderEpoch, 4),
    (ApiKey::JoinGroup, 9),
    (ApiKey::Heartbeat, 4),
    (ApiKey::LeaveGroup, 5),
    (ApiKey::SyncGroup, 5),
    (ApiKey::ConsumerGroupHeartbeat, 1),
    (ApiKey::InitProducerId, 6),
    (ApiKey::AddPartitionsToTxn, 5),
    (ApiKey::AddOffsetsToTxn, 4),
    (ApiKey::EndTxn, 5),
    (ApiKey::TxnOffsetCommit, 5),
    (ApiKey::SaslHandshake, 1),
    (ApiKey::SaslAuthenticate, 2),
    (ApiKey::GetTelemetrySubscriptions, 0),
    (ApiKey::PushTelemetry, 0),
    // Admin clients. DescribeGroups and ConsumerGroupDescribe name each member's client
    // host (the client's own address, not a broker's).
    (ApiKey::DescribeGroups, 6),
    (ApiKey::ConsumerGroupDescribe, 1),
    (ApiKey::ListGroups, 5),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::OffsetDelete, 0),
    (ApiKey::CreateTopics, 7),
    (ApiKey::DeleteTopics, 6),
    (ApiKey::CreatePartitions, 3),
    (ApiKey::DeleteRecords, 2),
    (ApiKey::DescribeTopicPartitions, 0),
    (ApiKey::ElectLeaders, 2),
    (ApiKey::AlterPartitionReassignments, 1),
    (ApiKey::ListPartitionReassignments, 0),
    (ApiKey::DescribeConfigs, 4),
    (ApiKey::AlterConfigs, 2),
    (ApiKey::IncrementalAlterConfigs, 1),
    (ApiKey::ListConfigResources, 1),
    (ApiKey::DescribeLogDirs, 4),
    (ApiKey::AlterReplicaLogDirs, 2),
    // The ACLs' host is the pattern of client hosts an ACL matches, not a broker.
    (ApiKey::DescribeAcls, 3),
    (ApiKey::CreateAcls, 3),
    (ApiKey::DeleteAcls, 3),
    (ApiKey::CreateDelegationToken, 3),
    (ApiKey::RenewDelegationToken, 2),
    (ApiKey::ExpireDelegationToken, 2),
    (ApiKey::DescribeDelegationToken, 3),
    (ApiKey::DescribeClientQuotas, 1),
    (ApiKey::AlterClientQuotas, 1),
    (ApiKey::DescribeUserScramCredentials, 0),
    (ApiKey::AlterUserScramCredentials, 0),
    (ApiKey::UpdateFeatures, 2),
    (ApiKey::DescribeProducers, 0),
    (ApiKey::DescribeTransactions, 0),
    (ApiKey::ListTransactions, 2),
    (ApiKey::UnregisterBroker, 0),
    // Its v0 and v1 answers name no host; v2 adds listeners.
    (ApiKey::DescribeQuorum, 1),
];

/// The highest version of this api the proxy lets through; `None` if it lets none.
pub fn max_version(api_key: i16) -> Option<i16> {
    let key = ApiKey::try_from(api_key).ok()?;
    ALLOWED.iter().find(|(api, _)| *api == key).map(|(_, max)| *max)
}

/// Every api the proxy lets through, with its highest version.
pub fn all() -> impl Iterator<Item = (ApiKey, i16)> {
    ALLOWED.iter().copied()
}

#[cfg(test)]
#[path = "allowed_tests.rs"]
mod tests;
