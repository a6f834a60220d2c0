//! The one error type of the mirror layer, naming the flow and, where it applies, the
//! topic, partition and offset.

use thiserror::Error;

use crate::client::ClientError;
use crate::wire::WireError;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MirrorError {
    #[error("flow {flow}: {source}")]
    Client { flow: String, source: Box<ClientError> },
    #[error("flow {flow}: {topic}/{partition}: {source}")]
    Batch {
        flow: String,
        topic: String,
        partition: i32,
        source: WireError,
    },
    #[error("flow {flow}: target topic {target_topic} has {target} partitions but source topic {source_topic} has {source_count}; strait never remaps partitions (raise the target's count or set create_topics = true)")]
    TargetTooSmall {
        flow: String,
        source_topic: String,
        target_topic: String,
        source_count: usize,
        target: usize,
    },
    #[error(
        "flow {flow}: target topic {target_topic} (for source {source_topic}) does not exist and create_topics = false"
    )]
    TargetMissing {
        flow: String,
        source_topic: String,
        target_topic: String,
    },
    #[error("flow {flow}: {topic}/{partition}: source offset {position} is out of range (log starts at {log_start}): {lost} records were deleted before strait copied them")]
    OutOfRange {
        flow: String,
        topic: String,
        partition: i32,
        position: i64,
        log_start: i64,
        lost: i64,
    },
    #[error("flow {flow}: {topic}/{partition} stopped: {detail}")]
    PartitionStopped {
        flow: String,
        topic: String,
        partition: i32,
        detail: String,
    },
    #[error("flow {flow}: {what} panicked: {detail}")]
    Panicked {
        flow: String,
        what: &'static str,
        detail: String,
    },
    #[error("flow {flow}: the target fenced strait's producer id ({detail}); it starts again with a new one")]
    ProducerFenced { flow: String, detail: String },
    #[error("flow {flow}: this process is refused by the flow's group: {detail}; every process of a flow must copy the same way (fix the config and restart it)")]
    SettingsDiffer { flow: String, detail: String },
    #[error("flow {flow}: another process joined the flow's group with the same instance id {instance_id:?}; each process needs its own (instance_id, --instance-id or STRAIT_INSTANCE_ID)")]
    InstanceFenced { flow: String, instance_id: String },
}

impl MirrorError {
    /// Whether starting the flow again from its committed progress may succeed: after a
    /// network or broker failure a retry can fix, or a panic (a bug met on some input,
    /// which a restart with back-off keeps visible without giving up on the flow).
    pub fn is_restartable(&self) -> bool {
        match self {
            MirrorError::Client { source, .. } => source.is_retriable(),
            MirrorError::Panicked { .. } => true,
            _ => false,
        }
    }
}
