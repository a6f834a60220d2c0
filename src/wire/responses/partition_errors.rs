//! The answer several commit-like apis share: per topic, per partition, an error code
//! (OffsetCommit, TxnOffsetCommit, AddPartitionsToTxn). One reader for all of them, so
//! the bounds on their counts are kept in one place.

use super::Body;
use crate::wire::WireError;

/// One partition's error code in such an answer; 0 when it went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    pub topic: String,
    pub partition_index: i32,
    pub error_code: i16,
}

/// Reads the topics array and every partition's index and error code in it.
pub(super) fn read(b: &mut Body<'_>) -> Result<Vec<PartitionError>, WireError> {
    let mut partitions = Vec::new();
    let topics = b.array_len(b.min_string() + b.min_array() + b.min_tags())?;
    for _ in 0..topics {
        let topic = b.string()?.unwrap_or_default();
        let count = b.array_len(4 + 2 + b.min_tags())?;
        for _ in 0..count {
            partitions.push(PartitionError {
                topic: topic.clone(),
                partition_index: b.i32()?,
                error_code: b.i16()?,
            });
            b.tagged_fields()?;
        }
        b.tagged_fields()?;
    }
    Ok(partitions)
}
