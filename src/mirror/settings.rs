//! What a flow is told to do, as typed values: built and validated by `config` from the
//! TOML model, so the mirror never reads the config file's shapes (nor, through them,
//! anything the config knows of other jobs). Patterns arrive compiled: a pattern that
//! does not compile is an error at load, never a filter that silently matches nothing.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::client::fetch::Isolation;
use crate::wire::codec::Compression;

/// Where a partition without committed progress starts.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StartChoice {
    Earliest,
    Latest,
}

/// What a flow does when the source deleted data it had not copied yet.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutOfRangePolicy {
    Earliest,
    Latest,
    Fail,
}

/// What a flow does with a source batch whose CRC does not match its bytes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CorruptPolicy {
    Fail,
    Skip,
}

/// What a flow does when the target refuses a partition's data for good, or a source
/// batch cannot be forwarded: stop only that partition (the others keep flowing, and
/// `/readyz` names it) or stop the whole flow.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PartitionErrorPolicy {
    StopPartition,
    StopFlow,
}

#[derive(Debug, Clone)]
pub struct FlowSettings {
    pub name: String,
    /// The source and target clusters' names, as the rename template uses them.
    pub source_name: String,
    pub target_name: String,
    /// Whole-name patterns of the topics to copy and to leave out.
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
    pub rename: String,
    /// The codec to write, or `None` to keep each batch's own.
    pub compression: Option<Compression>,
    pub compression_level: Option<i32>,
    pub isolation: Isolation,
    pub start: StartChoice,
    pub on_offset_out_of_range: OutOfRangePolicy,
    pub on_corrupt_batch: CorruptPolicy,
    pub on_partition_error: PartitionErrorPolicy,
    pub stuck_after_secs: u64,
    pub progress_log_secs: u64,
    pub create_topics: bool,
    pub replication_factor: i16,
    pub exclude_configs: Vec<String>,
    pub topic_refresh_secs: u64,
    pub heartbeat_interval_ms: u64,
    pub fetch_max_bytes: i32,
    pub partition_max_bytes: i32,
    pub fetch_max_wait_ms: i32,
    pub fetch_connections_per_broker: usize,
    pub max_decompressed_bytes: usize,
    pub produce_timeout_ms: i32,
    pub transaction_hold_bytes: usize,
    pub max_in_flight_bytes: usize,
    /// This process's stable id in the flow's group (static membership), if any.
    pub instance_id: Option<String>,
    /// How long the flow's group waits for a silent process before moving its partitions.
    pub session_timeout_ms: u64,
}

/// A whole-name match, as Kafka tools match topic patterns.
pub fn whole_name(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}
