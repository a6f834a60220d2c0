//! Topic administration the mirror needs: create topics, add partitions, read a topic's
//! own (non-default) configs.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DescribeConfigsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error::{ClientError, KafkaCode, TOPIC_ALREADY_EXISTS};
use super::Cluster;

/// kafka-protocol encodes CreateTopics from v2 on, and Kafka 4 answers nothing older.
pub(crate) const CREATE_TOPICS: (i16, i16) = (2, 7);
pub(crate) const CREATE_PARTITIONS: (i16, i16) = (0, 3);
pub(crate) const DESCRIBE_CONFIGS: (i16, i16) = (1, 4);
const TOPIC_RESOURCE: i8 = 2;
/// Config source: set on the topic itself (not a broker or default value).
const DYNAMIC_TOPIC_CONFIG: i8 = 1;

fn kafka_error(cluster: &Cluster, api: &'static str, topic: &str, code: i16, message: Option<String>) -> ClientError {
    ClientError::Kafka {
        cluster: cluster.name().to_owned(),
        api,
        topic: Some(topic.to_owned()),
        partition: None,
        code: KafkaCode(code),
        message,
    }
}

/// Creates a topic; an existing topic is not an error. `replication` -1 takes the
/// broker's default (CreateTopics v4+); older brokers get 1.
pub async fn create_topic(
    cluster: &Cluster,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(String, String)],
) -> Result<bool, ClientError> {
    let conn = cluster.controller().await?;
    let version = conn
        .pick_version(kafka_protocol::messages::ApiKey::CreateTopics, CREATE_TOPICS)
        .map_err(|e| cluster.net_error(e))?;
    let request = create_topics_request(name, partitions, replication, configs, version);
    let response = conn
        .request(&request, version)
        .await
        .map_err(|e| cluster.net_error(e))?;
    let Some(r) = response.topics.into_iter().next() else {
        return Ok(false);
    };
    match r.error_code {
        0 => Ok(true),
        TOPIC_ALREADY_EXISTS => Ok(false),
        code => Err(kafka_error(cluster, "CreateTopics", name, code, r.error_message)),
    }
}

/// Below v4 a broker needs an explicit replication factor: 1 then stands for "the
/// target's default" of later versions.
pub(crate) fn create_topics_request(
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(String, String)],
    version: i16,
) -> CreateTopicsRequest {
    let replication = if replication < 0 && version < 4 { 1 } else { replication };
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        );
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(30_000)
}

pub(crate) fn create_partitions_request(name: &str, count: i32) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_count(count)])
        .with_timeout_ms(30_000)
}

/// Raises a topic's partition count to `count`.
pub async fn create_partitions(cluster: &Cluster, name: &str, count: i32) -> Result<(), ClientError> {
    let conn = cluster.controller().await?;
    let (response, _) = conn
        .request_best(&create_partitions_request(name, count), CREATE_PARTITIONS)
        .await
        .map_err(|e| cluster.net_error(e))?;
    for r in response.results {
        if r.error_code != 0 {
            let (code, message) = (r.error_code, r.error_message);
            return Err(kafka_error(cluster, "CreatePartitions", name, code, message));
        }
    }
    Ok(())
}

pub(crate) fn describe_configs_request(name: &str) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_configuration_keys(None)])
}

/// The configs set on the topic itself, as (name, value).
pub async fn topic_configs(cluster: &Cluster, name: &str) -> Result<Vec<(String, String)>, ClientError> {
    let conn = cluster.any_connection().await?;
    let (response, _) = conn
        .request_best(&describe_configs_request(name), DESCRIBE_CONFIGS)
        .await
        .map_err(|e| cluster.net_error(e))?;
    let mut out = Vec::new();
    for r in response.results {
        if r.error_code != 0 {
            let (code, message) = (r.error_code, r.error_message);
            return Err(kafka_error(cluster, "DescribeConfigs", name, code, message));
        }
        for c in r.configs {
            if c.config_source == DYNAMIC_TOPIC_CONFIG && !c.is_sensitive {
                if let Some(v) = c.value {
                    out.push((c.name, v));
                }
            }
        }
    }
    Ok(out)
}

/// Whether the cluster answers CreateTopics at all (librdkafka's mock cluster does not).
pub async fn can_create_topics(cluster: &Cluster) -> Result<bool, ClientError> {
    let conn = cluster.controller().await?;
    Ok(conn
        .versions()
        .range(kafka_protocol::messages::ApiKey::CreateTopics)
        .is_some())
}

/// Asks for the topic with auto-creation allowed: what remains on a cluster that cannot
/// create topics by API. The partition count is then the cluster's default.
pub async fn auto_create_topic(cluster: &Cluster, name: &str) -> Result<(), ClientError> {
    let conn = cluster.any_connection().await?;
    let topics = [name.to_owned()];
    conn.request_built(super::metadata::VERSIONS, |v| {
        super::metadata::request(Some(&topics), v, true)
    })
    .await
    .map_err(|e| cluster.net_error(e))?;
    Ok(())
}

/// The topic's partition count once every partition has a leader, creating the topic
/// with `partitions` partitions first if it is missing (by API, or by auto-creation
/// where the cluster has no CreateTopics).
pub async fn ensure_topic(cluster: &Cluster, topic: &str, partitions: i32) -> Result<i32, ClientError> {
    let names = [topic.to_owned()];
    for attempt in 0..50 {
        let meta = cluster.refresh(Some(&names)).await?;
        if let Some(t) = meta.topics.get(topic).filter(|t| t.error().is_none()) {
            if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                return Ok(t.partitions.len() as i32);
            }
        } else if attempt == 0 {
            if can_create_topics(cluster).await? {
                create_topic(cluster, topic, partitions, -1, &[]).await?;
            } else {
                auto_create_topic(cluster, topic).await?;
            }
            tracing::info!(cluster = cluster.name(), %topic, "created topic");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(ClientError::Kafka {
        cluster: cluster.name().to_owned(),
        api: "Metadata",
        topic: Some(topic.to_owned()),
        partition: None,
        code: KafkaCode(super::error::UNKNOWN_TOPIC_OR_PARTITION),
        message: Some("no leader for every partition after 10 s".into()),
    })
}
