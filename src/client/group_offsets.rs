//! Offsets stored under a consumer group of a cluster. The mirror keeps its progress
//! (the next source offset of each partition) this way in the target cluster, so a
//! restart on any host resumes from what the target acknowledged.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error::{ClientError, KafkaCode};
use super::group_member::Generation;
use super::Cluster;
use crate::net::Connection;

pub(crate) const FIND_COORDINATOR: (i16, i16) = (0, 3);
pub(crate) const OFFSET_COMMIT: (i16, i16) = (2, 7);
pub(crate) const OFFSET_FETCH: (i16, i16) = (1, 7);

fn kafka_error(
    cluster: &Cluster,
    api: &'static str,
    topic: Option<&str>,
    partition: Option<i32>,
    code: i16,
) -> ClientError {
    ClientError::Kafka {
        cluster: cluster.name().to_owned(),
        api,
        topic: topic.map(str::to_owned),
        partition,
        code: KafkaCode(code),
        message: None,
    }
}

/// What a FindCoordinator key names: a consumer group, or a transactional id.
pub const GROUP_KEY: i8 = 0;
pub const TRANSACTION_KEY: i8 = 1;
/// The key type arrived in version 1; version 0 finds group coordinators only.
pub(crate) const FIND_TRANSACTION_COORDINATOR: (i16, i16) = (1, 3);

pub(crate) fn coordinator_request(key_type: i8, key: &str) -> FindCoordinatorRequest {
    FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(key.to_owned()))
        .with_key_type(key_type)
}

/// The group coordinator's connection.
pub async fn coordinator(cluster: &Cluster, group: &str) -> Result<Arc<Connection>, ClientError> {
    let address = coordinator_address(cluster, group).await?;
    cluster.connection_to(&address).await
}

/// The address the group's coordinator advertises.
pub async fn coordinator_address(cluster: &Cluster, group: &str) -> Result<String, ClientError> {
    coordinator_address_for(cluster, GROUP_KEY, group).await
}

/// The address the coordinator of a group (`GROUP_KEY`) or of a transactional id
/// (`TRANSACTION_KEY`) advertises.
pub async fn coordinator_address_for(cluster: &Cluster, key_type: i8, key: &str) -> Result<String, ClientError> {
    let versions = match key_type {
        GROUP_KEY => FIND_COORDINATOR,
        _ => FIND_TRANSACTION_COORDINATOR,
    };
    let conn = cluster.any_connection().await?;
    let (response, _) = conn
        .request_best(&coordinator_request(key_type, key), versions)
        .await
        .map_err(|e| cluster.net_error(e))?;
    if response.error_code != 0 {
        return Err(kafka_error(cluster, "FindCoordinator", None, None, response.error_code));
    }
    Ok(format!("{}:{}", response.host, response.port))
}

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: String,
}

/// Commits `positions` as `member` (its generation, id and instance id) when the group
/// has members, or as no member at all (generation -1) when it has none.
pub async fn commit(
    cluster: &Cluster,
    group: &str,
    member: Option<&Generation>,
    positions: &[Position],
) -> Result<(), ClientError> {
    if positions.is_empty() {
        return Ok(());
    }
    let conn = coordinator(cluster, group).await?;
    let (response, _) = conn
        .request_built(OFFSET_COMMIT, |v| commit_request(group, member, positions, v))
        .await
        .map_err(|e| cluster.net_error(e))?;
    for p in &response.partitions {
        if p.error_code != 0 {
            return Err(kafka_error(
                cluster,
                "OffsetCommit",
                Some(&p.topic),
                Some(p.partition_index),
                p.error_code,
            ));
        }
    }
    Ok(())
}

/// Positions grouped by topic, topics in their first appearance's order: commit
/// requests (plain and transactional) carry them so.
pub(crate) fn by_topic(positions: &[Position]) -> Vec<(&str, Vec<&Position>)> {
    let mut topics: Vec<(&str, Vec<&Position>)> = Vec::new();
    for p in positions {
        match topics.iter_mut().find(|(t, _)| *t == p.topic) {
            Some((_, list)) => list.push(p),
            None => topics.push((&p.topic, vec![p])),
        }
    }
    topics
}

/// The request at `version`: the instance id goes only where the version has the field.
pub(crate) fn commit_request(
    group: &str,
    member: Option<&Generation>,
    positions: &[Position],
    version: i16,
) -> OffsetCommitRequest {
    let topics = by_topic(positions)
        .into_iter()
        .map(|(topic, positions)| {
            let partitions = positions
                .into_iter()
                .map(|p| {
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(p.partition)
                        .with_committed_offset(p.offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(StrBytes::from_string(p.metadata.clone())))
                })
                .collect();
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(member.map_or(-1, |m| m.id))
        .with_member_id(StrBytes::from_string(
            member.map(|m| m.member_id.clone()).unwrap_or_default(),
        ))
        .with_group_instance_id(
            member
                .and_then(|m| m.instance_id.clone())
                .filter(|_| version >= 7)
                .map(StrBytes::from_string),
        )
        .with_retention_time_ms(-1)
        .with_topics(topics)
}

/// Committed offsets of `group` for the given partitions, with the metadata committed
/// beside each; absent ones are left out.
pub async fn fetch(
    cluster: &Cluster,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), (i64, String)>, ClientError> {
    let conn = coordinator(cluster, group).await?;
    let (response, _) = conn
        .request_best(&fetch_request(group, partitions), OFFSET_FETCH)
        .await
        .map_err(|e| cluster.net_error(e))?;
    if response.error_code != 0 {
        return Err(kafka_error(cluster, "OffsetFetch", None, None, response.error_code));
    }
    let mut out = HashMap::new();
    for p in response.partitions {
        if p.error_code != 0 {
            return Err(kafka_error(
                cluster,
                "OffsetFetch",
                Some(&p.topic),
                Some(p.partition_index),
                p.error_code,
            ));
        }
        if p.committed_offset >= 0 {
            out.insert(
                (p.topic, p.partition_index),
                (p.committed_offset, p.metadata.unwrap_or_default()),
            );
        }
    }
    Ok(out)
}

pub(crate) fn fetch_request(group: &str, partitions: &[(String, i32)]) -> OffsetFetchRequest {
    let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partition_indexes.push(*partition),
            None => topics.push(
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_indexes(vec![*partition]),
            ),
        }
    }
    OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_topics(Some(topics))
}
