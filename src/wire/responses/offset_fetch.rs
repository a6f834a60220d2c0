//! OffsetFetch, versions 1 to 7 (the single-group form): the committed offset of each
//! partition asked about.

use kafka_protocol::messages::OffsetFetchRequest;

use super::{Answered, Body, Decode};
use crate::wire::WireError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition_index: i32,
    pub committed_offset: i64,
    pub metadata: Option<String>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    /// The group-level error (v2+; 0 before).
    pub error_code: i16,
    pub partitions: Vec<FetchedOffset>,
}

impl Decode for OffsetFetchResponse {
    const API: &'static str = "OffsetFetch";
    const WHAT: &'static str = "OffsetFetch response";
    const VERSIONS: (i16, i16) = (1, 7);
    const FIRST_FLEXIBLE: i16 = 6;

    fn read(b: &mut Body<'_>, version: i16) -> Result<Self, WireError> {
        if version >= 3 {
            let _throttle_time_ms = b.i32()?;
        }
        let mut partitions = Vec::new();
        let topics = b.array_len(b.min_string() + b.min_array() + b.min_tags())?;
        for _ in 0..topics {
            let topic = b.string()?.unwrap_or_default();
            let count = b.array_len(4 + 8 + b.min_string() + 2 + b.min_tags())?;
            for _ in 0..count {
                partitions.push(read_partition(b, &topic, version)?);
            }
            b.tagged_fields()?;
        }
        let error_code = if version >= 2 { b.i16()? } else { 0 };
        Ok(OffsetFetchResponse { error_code, partitions })
    }
}

fn read_partition(b: &mut Body<'_>, topic: &str, version: i16) -> Result<FetchedOffset, WireError> {
    let partition_index = b.i32()?;
    let committed_offset = b.i64()?;
    if version >= 5 {
        let _committed_leader_epoch = b.i32()?;
    }
    let metadata = b.string()?;
    let error_code = b.i16()?;
    b.tagged_fields()?;
    Ok(FetchedOffset {
        topic: topic.to_owned(),
        partition_index,
        committed_offset,
        metadata,
        error_code,
    })
}

impl Answered for OffsetFetchRequest {
    type Answer = OffsetFetchResponse;
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
    use kafka_protocol::messages::TopicName;

    use super::super::testing::*;
    use super::*;

    fn partition(version: i16, index: i32) -> OffsetFetchResponsePartition {
        OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(if index == 1 { -1 } else { 500 + i64::from(index) })
            .with_committed_leader_epoch(if version >= 5 { 9 } else { -1 })
            .with_metadata(Some(s("strait progress")))
            .with_error_code(if index == 3 { 3 } else { 0 })
    }

    fn sample(version: i16) -> kafka_protocol::messages::OffsetFetchResponse {
        let topics = [("a", 0), ("b", 2)]
            .iter()
            .map(|(name, first)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_partitions((*first..first + 2).map(|p| partition(version, p)).collect())
            })
            .collect();
        kafka_protocol::messages::OffsetFetchResponse::default()
            .with_throttle_time_ms(if version >= 3 { 21 } else { 0 })
            .with_topics(topics)
            .with_error_code(if version >= 2 { 16 } else { 0 })
    }

    #[test]
    fn every_version_reads_each_committed_offset() {
        for version in 1..=7 {
            let r: OffsetFetchResponse = decode_all(&encode(&sample(version), version), version);
            assert_eq!(r.error_code, if version >= 2 { 16 } else { 0 });
            let got: Vec<_> = r
                .partitions
                .iter()
                .map(|p| (p.topic.as_str(), p.partition_index, p.committed_offset, p.error_code))
                .collect();
            assert_eq!(
                got,
                [("a", 0, 500, 0), ("a", 1, -1, 0), ("b", 2, 502, 0), ("b", 3, 503, 3)],
                "v{version}"
            );
        }
    }

    #[test]
    fn huge_counts_are_refused() {
        assert_huge_counts_refused::<OffsetFetchResponse>(|v| if v >= 3 { vec![0; 4] } else { vec![] });
        // v6: one topic "t", then a compact partition count of u32::MAX - 1.
        let body = [0, 0, 0, 0, 2, 2, b't', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        assert!(matches!(
            refused::<OffsetFetchResponse>(&body, 6),
            WireError::Truncated { .. }
        ));
    }
}
