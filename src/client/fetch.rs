//! Fetch: one request per broker for every partition it leads, decoded without copying
//! the records.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{ClientError, Cluster};
use crate::net::{Connection, NetError};
use crate::wire::fetch::{decode_fetch_response, FetchResponse, MAX_VERSION, MIN_VERSION};
use crate::wire::message::encode_request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
}

#[derive(Debug, Clone)]
pub struct FetchSpec {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub isolation: Isolation,
}

pub(crate) fn request(specs: &[FetchSpec], o: &FetchOptions) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for spec in specs {
        let partition = FetchPartition::default()
            .with_partition(spec.partition)
            .with_fetch_offset(spec.offset)
            .with_current_leader_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(o.partition_max_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == spec.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(spec.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(o.max_wait_ms)
        .with_min_bytes(o.min_bytes)
        .with_max_bytes(o.max_bytes)
        .with_isolation_level(match o.isolation {
            Isolation::ReadUncommitted => 0,
            Isolation::ReadCommitted => 1,
        })
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

pub async fn fetch(conn: &Connection, specs: &[FetchSpec], options: &FetchOptions) -> Result<FetchResponse, NetError> {
    let version = conn.pick_version(ApiKey::Fetch, (MIN_VERSION, MAX_VERSION))?;
    let id = conn.next_correlation_id();
    let frame =
        encode_request(&request(specs, options), version, id, conn.client_id()).map_err(|e| conn.wire_error(e))?;
    let response = conn.round_trip(vec![frame], id, "Fetch").await?;
    // Fetch v4..=11 answers with response header v0: just the correlation id.
    decode_fetch_response(&response.slice(4..), version).map_err(|e| conn.wire_error(e))
}

/// One Fetch request to the broker with node id `node`, on its connection number `lane`.
pub async fn fetch_from_broker(
    cluster: &Cluster,
    node: i32,
    lane: usize,
    specs: &[FetchSpec],
    options: &FetchOptions,
) -> Result<FetchResponse, ClientError> {
    let conn = cluster.broker_lane(node, lane).await?;
    fetch(&conn, specs, options).await.map_err(|e| cluster.net_error(e))
}
