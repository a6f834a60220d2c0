//! AddPartitionsToTxn, versions 0 to 3 (flexible from 3): whether the transaction
//! coordinator took each partition into the open transaction. A batch written to a
//! partition the coordinator does not know about is never committed or aborted, so each
//! partition's answer matters. Versions 4 and later are the form brokers send each other
//! (many transactions per request, KIP-890) and a client may not send them.

use kafka_protocol::messages::AddPartitionsToTxnRequest;

use super::{partition_errors, Answered, Body, Decode};
use crate::wire::WireError;

pub type AddedPartition = partition_errors::PartitionError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnResponse {
    pub partitions: Vec<AddedPartition>,
}

impl Decode for AddPartitionsToTxnResponse {
    const API: &'static str = "AddPartitionsToTxn";
    const WHAT: &'static str = "AddPartitionsToTxn response";
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn read(b: &mut Body<'_>, _version: i16) -> Result<Self, WireError> {
        let _throttle_time_ms = b.i32()?;
        let partitions = partition_errors::read(b)?;
        Ok(AddPartitionsToTxnResponse { partitions })
    }
}

impl Answered for AddPartitionsToTxnRequest {
    type Answer = AddPartitionsToTxnResponse;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    fn sample(version: i16) -> kafka_protocol::messages::AddPartitionsToTxnResponse {
        let topics = [("orders", 0), ("clicks", 5)]
            .iter()
            .map(|(name, first)| {
                let partitions = (*first..first + 2)
                    .map(|p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(p)
                            .with_partition_error_code(if p == 6 { 51 } else { 0 })
                    })
                    .collect();
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(s(name)))
                    .with_results_by_partition(partitions)
            })
            .collect();
        let mut sample = kafka_protocol::messages::AddPartitionsToTxnResponse::default()
            .with_throttle_time_ms(7)
            .with_results_by_topic_v3_and_below(topics);
        if version >= 3 {
            sample = sample.with_unknown_tagged_field(3, Bytes::from_static(b"later"));
        }
        sample
    }

    #[test]
    fn every_version_reads_each_partitions_error() {
        for version in 0..=3 {
            let r: AddPartitionsToTxnResponse = decode_all(&encode(&sample(version), version), version);
            let got: Vec<_> = r
                .partitions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition_index, p.error_code))
                .collect();
            assert_eq!(
                got,
                [("orders", 0, 0), ("orders", 1, 0), ("clicks", 5, 0), ("clicks", 6, 51)],
                "v{version}"
            );
        }
    }

    #[test]
    fn the_batched_broker_form_is_refused() {
        let body = encode(&sample(3), 3);
        for version in [4, 5] {
            assert!(matches!(
                refused::<AddPartitionsToTxnResponse>(&body, version),
                WireError::UnsupportedVersion { .. }
            ));
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<AddPartitionsToTxnResponse>(|_| vec![0; 4]);
        // v1: one topic "t" with i32::MAX partitions.
        let body = [
            0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
        ];
        assert!(matches!(
            refused::<AddPartitionsToTxnResponse>(&body, 1),
            WireError::Truncated { .. }
        ));
        // v3: the same with compact lengths.
        let body = [0, 0, 0, 0, 2, 2, b't', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            refused::<AddPartitionsToTxnResponse>(&body, 3),
            WireError::Truncated { .. }
        ));
    }
}
