//! TxnOffsetCommit, versions 0 to 3 (flexible from 3): whether the group coordinator
//! holds each partition's offset for the transaction. Version 3 is the first to carry the
//! member's generation, member id and instance id (KIP-447), so that a zombie's commit is
//! refused by the group as well as by the transaction. Version 4 only allows
//! TRANSACTION_ABORTABLE (KIP-890), which strait cannot act on yet, and 5 belongs to the
//! second transaction protocol.

use kafka_protocol::messages::TxnOffsetCommitRequest;

use super::{partition_errors, Answered, Body, Decode};
use crate::wire::WireError;

pub type TxnCommittedPartition = partition_errors::PartitionError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitResponse {
    pub partitions: Vec<TxnCommittedPartition>,
}

impl Decode for TxnOffsetCommitResponse {
    const API: &'static str = "TxnOffsetCommit";
    const WHAT: &'static str = "TxnOffsetCommit response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let partitions = partition_errors::read(b)?;
        Ok(TxnOffsetCommitResponse { partitions })
    }
}

impl Answered for TxnOffsetCommitRequest {
    type Answer = TxnOffsetCommitResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    fn sample(version: i16) -> kafka_protocol::messages::TxnOffsetCommitResponse {
        let topics = [("a", 0), ("b", 2)]
            .iter()
            .map(|(name, first)| {
                let partitions = (*first..first + 2)
                    .map(|p| {
                        let mut partition = TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p)
                            .with_error_code(if p == 3 { 22 } else { 0 });
                        if version >= 3 {
                            partition = partition.with_unknown_tagged_field(1, Bytes::from_static(b"p"));
                        }
                        partition
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_partitions(partitions)
            })
            .collect();
        kafka_protocol::messages::TxnOffsetCommitResponse::default()
            .with_throttle_time_ms(5)
            .with_topics(topics)
    }

    #[test]
    fn every_version_reads_each_partitions_error() {
        for version in 0..=3 {
            let r: TxnOffsetCommitResponse = decode_all(&encode(&sample(version), version), version);
            let got: Vec<_> = r
                .partitions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition_index, p.error_code))
                .collect();
            assert_eq!(got, [("a", 0, 0), ("a", 1, 0), ("b", 2, 0), ("b", 3, 22)], "v{version}");
        }
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        let body = encode(&sample(3), 3);
        for version in [-1, 4, 5] {
            assert!(matches!(
                refused::<TxnOffsetCommitResponse>(&body, version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<TxnOffsetCommitResponse>(|_| vec![0; 4]);
        // v2: one topic "t" with i32::MAX partitions.
        let body = [
            0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
        ];
        assert!(matches!(
            refused::<TxnOffsetCommitResponse>(&body, 2),
            WireError::Truncated { .. }
        ));
        // v3: one topic whose name claims u32::MAX - 1 bytes.
        let body = [0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
        assert!(matches!(
            refused::<TxnOffsetCommitResponse>(&body, 3),
            WireError::Truncated { .. }
        ));
    }
}
