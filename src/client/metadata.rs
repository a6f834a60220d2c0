//! The cluster metadata strait keeps: brokers with their advertised addresses, and per
//! topic its partitions and their leaders.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error::KafkaCode;
use crate::wire::responses::metadata::{MetadataResponse, MetadataTopic};

/// Versions of Metadata strait speaks.
pub const VERSIONS: (i16, i16) = (1, 12);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl Broker {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    pub id: i32,
    pub leader: i32,
    pub error: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    /// 0 when the broker gives none (Metadata below v10).
    pub id: u128,
    pub error: i16,
    pub internal: bool,
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    pub fn error(&self) -> Option<KafkaCode> {
        (self.error != 0).then_some(KafkaCode(self.error))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub brokers: BTreeMap<i32, Broker>,
    pub controller: i32,
    pub topics: HashMap<String, TopicMeta>,
}

impl Metadata {
    /// A partition's leader: partitions are kept sorted by id, which is almost always
    /// their index, so a flow looking up thousands of leaders a round costs no scans.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let t = self.topics.get(topic)?;
        let p = match usize::try_from(partition).ok().and_then(|i| t.partitions.get(i)) {
            Some(p) if p.id == partition => p,
            _ => {
                let at = t.partitions.binary_search_by_key(&partition, |p| p.id).ok()?;
                &t.partitions[at]
            }
        };
        (p.leader >= 0).then_some(p.leader)
    }

    /// The cache's view of a decoded response; topics without a name (asked for by id,
    /// which strait never does) are left out.
    pub fn from_response(r: MetadataResponse) -> Metadata {
        let brokers = r
            .brokers
            .into_iter()
            .map(|b| {
                let broker = Broker {
                    node_id: b.node_id,
                    host: b.host,
                    port: b.port,
                    rack: b.rack,
                };
                (broker.node_id, broker)
            })
            .collect();
        let topics = r.topics.into_iter().filter_map(topic_meta).collect();
        Metadata {
            brokers,
            controller: r.controller_id,
            topics,
        }
    }
}

fn topic_meta(t: MetadataTopic) -> Option<(String, TopicMeta)> {
    let name = t.name?;
    let mut partitions: Vec<PartitionMeta> = t
        .partitions
        .iter()
        .map(|p| PartitionMeta {
            id: p.partition_index,
            leader: p.leader_id,
            error: p.error_code,
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    let meta = TopicMeta {
        name: name.clone(),
        id: t.id,
        error: t.error_code,
        internal: t.is_internal,
        partitions,
    };
    Some((name, meta))
}

/// A request for the given topics, or all topics when `None`, at `version`. From v4 on
/// it asks the broker not to create the topics; below, a broker creates them if its
/// own config says so, and no request can prevent it.
pub fn request(topics: Option<&[String]>, version: i16, auto_create: bool) -> MetadataRequest {
    let topics = topics.map(|names| {
        names
            .iter()
            .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(n.clone())))))
            .collect()
    });
    let request = MetadataRequest::default().with_topics(topics);
    match version >= 4 {
        true => request.with_allow_auto_topic_creation(auto_create),
        false => request,
    }
}
