//! OffsetCommit, versions 2 to 7 (none flexible): whether each partition's offset was
//! stored.

use kafka_protocol::messages::OffsetCommitRequest;

use super::{partition_errors, Answered, Body, Decode};
use crate::wire::WireError;

pub type CommittedPartition = partition_errors::PartitionError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitResponse {
    pub partitions: Vec<CommittedPartition>,
}

impl Decode for OffsetCommitResponse {
    const API: &'static str = "OffsetCommit";
    const WHAT: &'static str = "OffsetCommit response";
    const VERSIONS: (i16, i16) = (2, 7);
    const FIRST_FLEXIBLE: i16 = 8;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        if version >= 3 {
            let _throttle_time_ms = b.i32()?;
        }
        let partitions = partition_errors::read(b)?;
        Ok(OffsetCommitResponse { partitions })
    }
}

impl Answered for OffsetCommitRequest {
    type Answer = OffsetCommitResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    fn sample(version: i16) -> kafka_protocol::messages::OffsetCommitResponse {
        let topics = [("a", 0), ("b", 2)]
            .iter()
            .map(|(name, first)| {
                let partitions = (*first..first + 2)
                    .map(|p| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p)
                            .with_error_code(if p == 3 { 25 } else { 0 })
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_partitions(partitions)
            })
            .collect();
        kafka_protocol::messages::OffsetCommitResponse::default()
            .with_throttle_time_ms(if version >= 3 { 12 } else { 0 })
            .with_topics(topics)
    }

    #[test]
    fn every_version_reads_each_partitions_error() {
        for version in 2..=7 {
            let r: OffsetCommitResponse = decode_all(&encode(&sample(version), version), version);
            let got: Vec<_> = r
                .partitions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition_index, p.error_code))
                .collect();
            assert_eq!(got, [("a", 0, 0), ("a", 1, 0), ("b", 2, 0), ("b", 3, 25)], "v{version}");
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<OffsetCommitResponse>(|v| if v >= 3 { vec![0; 4] } else { vec![] });
        // v2: one topic "t" with i32::MAX partitions.
        let body = [0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            refused::<OffsetCommitResponse>(&body, 2),
            WireError::Truncated { .. }
        ));
    }
}
