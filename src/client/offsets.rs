//! ListOffsets: the earliest or latest offset of a partition.

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error::{ClientError, KafkaCode};
use super::Cluster;

pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;
pub(crate) const VERSIONS: (i16, i16) = (1, 7);

pub(crate) fn request(topic: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])])
}

/// The offset at `timestamp` (`EARLIEST` or `LATEST`) of a partition, asked of its leader.
pub async fn list_offset(cluster: &Cluster, topic: &str, partition: i32, timestamp: i64) -> Result<i64, ClientError> {
    let leader = cluster.leader(topic, partition).await?;
    let conn = cluster.broker(leader).await?;
    let (response, _) = conn
        .request_best(&request(topic, partition, timestamp), VERSIONS)
        .await
        .map_err(|e| cluster.net_error(e))?;
    let answer = response
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| ClientError::Protocol {
            cluster: cluster.name().to_owned(),
            what: "ListOffsets response",
            detail: format!("no answer for {topic}/{partition}"),
        })?;
    if answer.error_code != 0 {
        return Err(ClientError::Kafka {
            cluster: cluster.name().to_owned(),
            api: "ListOffsets",
            topic: Some(topic.to_owned()),
            partition: Some(partition),
            code: KafkaCode(answer.error_code),
            message: None,
        });
    }
    Ok(answer.offset)
}
