//! Metadata, versions 1 to 12: brokers with their advertised addresses, the controller,
//! and per topic its partitions and their leaders. Replica lists, topic ids and
//! authorized operations are skipped.

use kafka_protocol::messages::MetadataRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataPartition {
    pub error_code: i16,
    pub partition_index: i32,
    pub leader_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    pub error_code: i16,
    /// Null only from v12 on, for a topic asked for by id.
    pub name: Option<String>,
    /// The topic's id from v10 on (0 before, or from a broker that has none): a topic
    /// deleted and created again under its name gets a new one.
    pub id: u128,
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    pub brokers: Vec<MetadataBroker>,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic>,
}

impl Decode for MetadataResponse {
    const API: &'static str = "Metadata";
    const WHAT: &'static str = "Metadata response";
    const VERSIONS: (i16, i16) = (1, 12);
    const FIRST_FLEXIBLE: i16 = 9;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        if version >= 3 {
            let _throttle_time_ms = b.i32()?;
        }
        let count = b.array_len(4 + b.min_string() + 4 + b.min_string() + b.min_tags())?;
        let mut brokers = Vec::new();
        for _ in 0..count {
            brokers.push(read_broker(b)?);
        }
        if version >= 2 {
            b.skip_string()?; // cluster id
        }
        let controller_id = b.i32()?;
        let count = b.array_len(2 + b.min_string() + 1 + b.min_array() + b.min_tags())?;
        let mut topics = Vec::new();
        for _ in 0..count {
            topics.push(read_topic(b, version)?);
        }
        if (8..=10).contains(&version) {
            let _cluster_authorized_operations = b.i32()?;
        }
        Ok(MetadataResponse {
            brokers,
            controller_id,
            topics,
        })
    }
}

fn read_broker(b: &mut Body<'_>) -> Result<MetadataBroker, WireError> {
    let broker = MetadataBroker {
        node_id: b.i32()?,
        host: b.string()?.unwrap_or_default(),
        port: b.i32()?,
        rack: b.string()?,
    };
    b.tagged_fields()?;
    Ok(broker)
}

fn read_topic(b: &mut Body<'_>, version: i16) -> Result<MetadataTopic, WireError> {
    let error_code = b.i16()?;
    let name = b.string()?;
    let id = match version >= 10 {
        true => (u128::from(b.i64()? as u64) << 64) | u128::from(b.i64()? as u64),
        false => 0,
    };
    let is_internal = b.bool()?;
    let count = b.array_len(2 + 4 + 4 + 2 * b.min_array() + b.min_tags())?;
    let mut partitions = Vec::new();
    for _ in 0..count {
        partitions.push(read_partition(b, version)?);
    }
    if version >= 8 {
        let _topic_authorized_operations = b.i32()?;
    }
    b.tagged_fields()?;
    Ok(MetadataTopic {
        error_code,
        name,
        id,
        is_internal,
        partitions,
    })
}

fn read_partition(b: &mut Body<'_>, version: i16) -> Result<MetadataPartition, WireError> {
    let partition = MetadataPartition {
        error_code: b.i16()?,
        partition_index: b.i32()?,
        leader_id: b.i32()?,
    };
    if version >= 7 {
        let _leader_epoch = b.i32()?;
    }
    b.skip_i32_array()?; // replicas
    b.skip_i32_array()?; // in-sync replicas
    if version >= 5 {
        b.skip_i32_array()?; // offline replicas
    }
    b.tagged_fields()?;
    Ok(partition)
}

impl Answered for MetadataRequest {
    type Answer = MetadataResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::super::testing::*;
    use super::*;

    fn broker(id: i32) -> MetadataResponseBroker {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(s(&format!("kafka-{id}.kafka-headless.svc")))
            .with_port(9090 + id)
            .with_rack((id == 2).then(|| s("rack-b")))
    }

    fn partition(version: i16, index: i32) -> MetadataResponsePartition {
        MetadataResponsePartition::default()
            .with_error_code(if index == 1 { 9 } else { 0 })
            .with_partition_index(index)
            .with_leader_id(BrokerId(index + 1))
            .with_leader_epoch(if version >= 7 { 11 } else { -1 })
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2), BrokerId(3)])
            .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])
            .with_offline_replicas(if version >= 5 { vec![BrokerId(3)] } else { vec![] })
    }

    fn topic(version: i16, name: Option<&str>, internal: bool) -> MetadataResponseTopic {
        MetadataResponseTopic::default()
            .with_error_code(if internal { 0 } else { 3 })
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_owned()))))
            .with_topic_id(if version >= 10 {
                uuid::Uuid::from_u128(0x1234_5678)
            } else {
                Default::default()
            })
            .with_is_internal(internal)
            .with_partitions((0..3).map(|p| partition(version, p)).collect())
            .with_topic_authorized_operations(if version >= 8 { 0x0f00 } else { i32::MIN })
    }

    fn sample(version: i16) -> kafka_protocol::messages::MetadataResponse {
        let mut topics = vec![
            topic(version, Some("events"), false),
            topic(version, Some("__consumer_offsets"), true),
        ];
        if version >= 12 {
            topics.push(topic(version, None, false));
        }
        kafka_protocol::messages::MetadataResponse::default()
            .with_throttle_time_ms(if version >= 3 { 15 } else { 0 })
            .with_brokers((1..=3).map(broker).collect())
            .with_cluster_id((version >= 2).then(|| s("cluster-x")))
            .with_controller_id(BrokerId(2))
            .with_topics(topics)
            .with_cluster_authorized_operations(if (8..=10).contains(&version) { 0x0ff0 } else { i32::MIN })
    }

    #[test]
    fn every_version_reads_brokers_controller_and_leaders() {
        for version in 1..=12 {
            let r: MetadataResponse = decode_all(&encode(&sample(version), version), version);
            let brokers: Vec<_> = r
                .brokers
                .iter()
                .map(|b| (b.node_id, b.host.as_str(), b.port, b.rack.as_deref()))
                .collect();
            assert_eq!(
                brokers,
                [
                    (1, "kafka-1.kafka-headless.svc", 9091, None),
                    (2, "kafka-2.kafka-headless.svc", 9092, Some("rack-b")),
                    (3, "kafka-3.kafka-headless.svc", 9093, None)
                ],
                "v{version}"
            );
            assert_eq!(r.controller_id, 2);
            assert_eq!(r.topics.len(), if version >= 12 { 3 } else { 2 });
            let events = &r.topics[0];
            assert_eq!(
                (events.name.as_deref(), events.error_code, events.is_internal),
                (Some("events"), 3, false)
            );
            let offsets = &r.topics[1];
            assert_eq!(
                (offsets.name.as_deref(), offsets.is_internal),
                (Some("__consumer_offsets"), true)
            );
            let leaders: Vec<_> = events
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id, p.error_code))
                .collect();
            assert_eq!(leaders, [(0, 1, 0), (1, 2, 9), (2, 3, 0)], "v{version}");
            if version >= 12 {
                assert_eq!(r.topics[2].name, None);
            }
        }
    }

    #[test]
    fn huge_broker_counts_are_refused() {
        assert_huge_counts_refused::<MetadataResponse>(|v| if v >= 3 { vec![0; 4] } else { vec![] });
    }

    #[test]
    fn huge_replica_counts_are_refused() {
        // v1: no brokers, controller 1, one topic "t" (not internal) with one partition
        // whose replica list claims i32::MAX entries.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, b't', 0];
        body.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(matches!(
            refused::<MetadataResponse>(&body, 1),
            WireError::Truncated { .. }
        ));
    }

    #[test]
    fn negative_host_length_is_refused() {
        // v1: one broker, node 1, host length -2.
        let body = [0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            refused::<MetadataResponse>(&body, 1),
            WireError::Malformed { .. }
        ));
    }
}
