//! CreateTopics, versions 2 to 7: whether each topic was created. The configs newer
//! versions echo back are skipped.

use kafka_protocol::messages::CreateTopicsRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub error_code: i16,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsResponse {
    pub topics: Vec<CreatedTopic>,
}

impl Decode for CreateTopicsResponse {
    const API: &'static str = "CreateTopics";
    const WHAT: &'static str = "CreateTopics response";
    const VERSIONS: (i16, i16) = (2, 7);
    const FIRST_FLEXIBLE: i16 = 5;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let count = b.array_len(b.min_string() + 2 + b.min_string() + b.min_tags())?;
        let mut topics = Vec::new();
        for _ in 0..count {
            topics.push(read_topic(b, version)?);
        }
        Ok(CreateTopicsResponse { topics })
    }
}

fn read_topic(b: &mut Body<'_>, version: i16) -> Result<CreatedTopic, WireError> {
    b.skip_string()?; // name: strait creates one topic at a time
    if version >= 7 {
        b.skip(16)?; // topic id
    }
    let topic = CreatedTopic {
        error_code: b.i16()?,
        error_message: b.string()?,
    };
    if version >= 5 {
        let _num_partitions = b.i32()?;
        let _replication_factor = b.i16()?;
        skip_configs(b)?;
    }
    b.tagged_fields()?;
    Ok(topic)
}

fn skip_configs(b: &mut Body<'_>) -> Result<(), WireError> {
    let count = b.array_len(2 * b.min_string() + 3 + b.min_tags())?;
    for _ in 0..count {
        b.skip_string()?; // name
        b.skip_string()?; // value
        b.skip(3)?; // read only, source, sensitive
        b.tagged_fields()?;
    }
    Ok(())
}

impl Answered for CreateTopicsRequest {
    type Answer = CreateTopicsResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    fn topic(version: i16, name: &str, code: i16, message: Option<&str>) -> CreatableTopicResult {
        let mut t = CreatableTopicResult::default()
            .with_name(TopicName(s(name)))
            .with_error_code(code)
            .with_error_message(message.map(s));
        if version >= 5 {
            let config = CreatableTopicConfigs::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("86400000")))
                .with_read_only(true)
                .with_config_source(5)
                .with_is_sensitive(true);
            t = t
                .with_num_partitions(12)
                .with_replication_factor(3)
                .with_configs(Some(vec![config]))
                .with_topic_config_error_code(29);
        }
        if version >= 7 {
            t = t.with_topic_id(uuid::Uuid::from_u128(0xfeed));
        }
        t
    }

    fn sample(version: i16) -> kafka_protocol::messages::CreateTopicsResponse {
        kafka_protocol::messages::CreateTopicsResponse::default()
            .with_throttle_time_ms(40)
            .with_topics(vec![
                topic(version, "events", 36, Some("Topic 'events' already exists.")),
                topic(version, "other", 0, None),
            ])
    }

    #[test]
    fn every_version_reads_each_topics_error() {
        for version in 2..=7 {
            let r: CreateTopicsResponse = decode_all(&encode(&sample(version), version), version);
            let got: Vec<_> = r
                .topics
                .iter()
                .map(|t| (t.error_code, t.error_message.as_deref()))
                .collect();
            assert_eq!(
                got,
                [(36, Some("Topic 'events' already exists.")), (0, None)],
                "v{version}"
            );
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<CreateTopicsResponse>(|_| vec![0; 4]);
        // v5: one topic "t", error 0, null message, 1 partition, factor 1, then a
        // config count of u32::MAX - 1.
        let body = [
            0, 0, 0, 0, 2, 2, b't', 0, 0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0,
        ];
        assert!(matches!(
            refused::<CreateTopicsResponse>(&body, 5),
            WireError::Truncated { .. }
        ));
    }
}
