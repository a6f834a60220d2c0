//! CreatePartitions, versions 0 to 3: whether each topic got its new partitions.

use kafka_protocol::messages::CreatePartitionsRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionsResult {
    pub error_code: i16,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitionsResponse {
    pub results: Vec<PartitionsResult>,
}

impl Decode for CreatePartitionsResponse {
    const API: &'static str = "CreatePartitions";
    const WHAT: &'static str = "CreatePartitions response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 2;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let count = b.array_len(b.min_string() + 2 + b.min_string() + b.min_tags())?;
        let mut results = Vec::new();
        for _ in 0..count {
            b.skip_string()?; // name: strait grows one topic at a time
            results.push(PartitionsResult {
                error_code: b.i16()?,
                error_message: b.string()?,
            });
            b.tagged_fields()?;
        }
        Ok(CreatePartitionsResponse { results })
    }
}

impl Answered for CreatePartitionsRequest {
    type Answer = CreatePartitionsResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    #[test]
    fn every_version_reads_each_result() {
        for version in 0..=3 {
            let results = vec![
                CreatePartitionsTopicResult::default()
                    .with_name(TopicName(s("events")))
                    .with_error_code(37)
                    .with_error_message(Some(s("Topic already has 12 partitions."))),
                CreatePartitionsTopicResult::default().with_name(TopicName(s("other"))),
            ];
            let sample = kafka_protocol::messages::CreatePartitionsResponse::default()
                .with_throttle_time_ms(5)
                .with_results(results);
            let r: CreatePartitionsResponse = decode_all(&encode(&sample, version), version);
            let got: Vec<_> = r
                .results
                .iter()
                .map(|t| (t.error_code, t.error_message.as_deref()))
                .collect();
            assert_eq!(
                got,
                [(37, Some("Topic already has 12 partitions.")), (0, None)],
                "v{version}"
            );
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<CreatePartitionsResponse>(|_| vec![0; 4]);
    }
}
