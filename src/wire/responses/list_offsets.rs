//! ListOffsets, versions 1 to 7: the offset found for each partition asked about.
//! strait asks one partition at a time, so topics are flattened into one list.

use kafka_protocol::messages::ListOffsetsRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    pub partition_index: i32,
    pub error_code: i16,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    pub partitions: Vec<ListedOffset>,
}

impl Decode for ListOffsetsResponse {
    const API: &'static str = "ListOffsets";
    const WHAT: &'static str = "ListOffsets response";
    const VERSIONS: (i16, i16) = (1, 7);
    const FIRST_FLEXIBLE: i16 = 6;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        if version >= 2 {
            let _throttle_time_ms = b.i32()?;
        }
        let mut partitions = Vec::new();
        let topics = b.array_len(b.min_string() + b.min_array() + b.min_tags())?;
        for _ in 0..topics {
            b.skip_string()?; // name: strait asks one partition of one topic
            let count = b.array_len(4 + 2 + 8 + 8 + b.min_tags())?;
            for _ in 0..count {
                partitions.push(read_partition(b, version)?);
            }
            b.tagged_fields()?;
        }
        Ok(ListOffsetsResponse { partitions })
    }
}

fn read_partition(b: &mut Body<'_>, version: i16) -> Result<ListedOffset, WireError> {
    let partition_index = b.i32()?;
    let error_code = b.i16()?;
    let _timestamp = b.i64()?;
    let offset = b.i64()?;
    if version >= 4 {
        let _leader_epoch = b.i32()?;
    }
    b.tagged_fields()?;
    Ok(ListedOffset {
        partition_index,
        error_code,
        offset,
    })
}

impl Answered for ListOffsetsRequest {
    type Answer = ListOffsetsResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    fn partition(version: i16, index: i32) -> ListOffsetsPartitionResponse {
        ListOffsetsPartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(if index == 2 { 6 } else { 0 })
            .with_timestamp(1_700_000_000_000)
            .with_offset(1000 + i64::from(index))
            .with_leader_epoch(if version >= 4 { 4 } else { -1 })
    }

    fn sample(version: i16) -> kafka_protocol::messages::ListOffsetsResponse {
        let topics = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let first = 2 * i as i32;
                ListOffsetsTopicResponse::default()
                    .with_name(TopicName(s(name)))
                    .with_partitions(vec![partition(version, first), partition(version, first + 1)])
            })
            .collect();
        kafka_protocol::messages::ListOffsetsResponse::default()
            .with_throttle_time_ms(if version >= 2 { 30 } else { 0 })
            .with_topics(topics)
    }

    #[test]
    fn every_version_reads_each_partitions_offset() {
        for version in 1..=7 {
            let r: ListOffsetsResponse = decode_all(&encode(&sample(version), version), version);
            let got: Vec<_> = r
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code, p.offset))
                .collect();
            assert_eq!(
                got,
                [(0, 0, 1000), (1, 0, 1001), (2, 6, 1002), (3, 0, 1003)],
                "v{version}"
            );
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<ListOffsetsResponse>(|v| if v >= 2 { vec![0; 4] } else { vec![] });
        // v6: one topic "t", then a partition count of u32::MAX - 1.
        let body = [0, 0, 0, 0, 2, 2, b't', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
        assert!(matches!(
            refused::<ListOffsetsResponse>(&body, 6),
            WireError::Truncated { .. }
        ));
    }
}
