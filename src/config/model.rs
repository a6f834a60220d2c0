//! The config file's shape. Every option is documented in `config.example.toml`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::wire::codec::Compression;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterConfig>,
    #[serde(default)]
    pub mirror: Vec<MirrorConfig>,
    #[serde(default)]
    pub proxy: Vec<ProxyConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub tracing: TracingConfig,
    #[serde(default)]
    pub log: LogConfig,
}

/// What the log shows.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// error, warn, info, debug or trace, or a filter such as "info,strait=debug";
    /// `--log-level` and STRAIT_LOG override it. Default "info".
    #[serde(default)]
    pub level: Option<String>,
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// IP and port of `/metrics`, `/healthz` and `/readyz`; no endpoint when absent.
    #[serde(default)]
    pub listen: Option<String>,
}

/// Span export to an OpenTelemetry collector.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Base URL of an OTLP/HTTP collector (`/v1/traces` is appended); no export when absent.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// PEM CA certificates an https:// collector's certificate must chain to; the
    /// system's roots when absent.
    #[serde(default)]
    pub otlp_ca: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub name: String,
    pub cluster: String,
    pub listen: String,
    pub advertise: String,
    #[serde(default)]
    pub port_base: Option<u16>,
    /// Node id (as a string: TOML keys are) -> the port that stands for that broker.
    #[serde(default)]
    pub broker_ports: BTreeMap<String, u16>,
    #[serde(default)]
    pub tls: Option<ServerTlsConfig>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub bootstrap: Vec<String>,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// Advertised `host:port` -> the `host:port` strait dials instead.
    #[serde(default)]
    pub address_map: HashMap<String, String>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub sasl: Option<SaslSection>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Bytes; absent leaves the size to the kernel's tuning.
    #[serde(default)]
    pub socket_send_buffer_bytes: Option<u32>,
    #[serde(default)]
    pub socket_receive_buffer_bytes: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SaslSection {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompressionChoice {
    Keep,
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionChoice {
    /// The codec to write, or `None` to keep each batch's own.
    pub fn codec(self) -> Option<Compression> {
        match self {
            CompressionChoice::Keep => None,
            CompressionChoice::None => Some(Compression::None),
            CompressionChoice::Gzip => Some(Compression::Gzip),
            CompressionChoice::Snappy => Some(Compression::Snappy),
            CompressionChoice::Lz4 => Some(Compression::Lz4),
            CompressionChoice::Zstd => Some(Compression::Zstd),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IsolationChoice {
    ReadCommitted,
    ReadUncommitted,
}

// The flow's policies are the mirror's own types; the model reads them as they are.
pub use crate::mirror::settings::{CorruptPolicy, OutOfRangePolicy, PartitionErrorPolicy, StartChoice};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    pub name: String,
    pub source: String,
    pub target: String,
    pub topics: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default = "default_rename")]
    pub rename: String,
    #[serde(default = "default_compression")]
    pub compression: CompressionChoice,
    #[serde(default)]
    pub compression_level: Option<i32>,
    #[serde(default = "default_isolation")]
    pub isolation: IsolationChoice,
    #[serde(default = "default_start")]
    pub start: StartChoice,
    #[serde(default = "default_out_of_range")]
    pub on_offset_out_of_range: OutOfRangePolicy,
    #[serde(default = "default_corrupt")]
    pub on_corrupt_batch: CorruptPolicy,
    #[serde(default = "default_partition_error")]
    pub on_partition_error: PartitionErrorPolicy,
    /// Seconds a partition may have lag and make no progress before it is reported stuck.
    #[serde(default = "default_stuck_after_secs")]
    pub stuck_after_secs: u64,
    /// Seconds between the flow's progress lines in the log; 0 turns them off.
    #[serde(default = "default_progress_log_secs")]
    pub progress_log_secs: u64,
    #[serde(default = "default_true")]
    pub create_topics: bool,
    #[serde(default = "default_replication")]
    pub replication_factor: i16,
    #[serde(default = "default_exclude_configs")]
    pub exclude_configs: Vec<String>,
    #[serde(default = "default_topic_refresh_secs")]
    pub topic_refresh_secs: u64,
    /// Milliseconds between heartbeats written to the source; 0 turns them off.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "default_fetch_max_bytes")]
    pub fetch_max_bytes: i32,
    #[serde(default = "default_partition_max_bytes")]
    pub partition_max_bytes: i32,
    #[serde(default = "default_fetch_max_wait_ms")]
    pub fetch_max_wait_ms: i32,
    /// Connections to each source broker that fetch at once, each for its share of
    /// that broker's partitions.
    #[serde(default = "default_fetch_connections_per_broker")]
    pub fetch_connections_per_broker: usize,
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: usize,
    #[serde(default = "default_produce_timeout_ms")]
    pub produce_timeout_ms: i32,
    #[serde(default = "default_transaction_hold_bytes")]
    pub transaction_hold_bytes: usize,
    /// Bytes of fetched batches the target has not acknowledged yet, over all
    /// partitions, beyond which the flow fetches nothing new.
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: usize,
    /// This process's stable id in the flow's group; absent: STRAIT_INSTANCE_ID, else
    /// none (a new member at every start).
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
}

fn default_max_connections() -> usize {
    10_000
}
fn default_idle_timeout_secs() -> u64 {
    600
}
fn default_shutdown_grace_secs() -> u64 {
    30
}
fn default_client_id() -> String {
    "strait".into()
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_max_frame_bytes() -> usize {
    crate::wire::frame::DEFAULT_MAX_FRAME
}
pub fn default_rename() -> String {
    "{topic}".into()
}
fn default_compression() -> CompressionChoice {
    CompressionChoice::Keep
}
fn default_isolation() -> IsolationChoice {
    IsolationChoice::ReadCommitted
}
fn default_start() -> StartChoice {
    StartChoice::Earliest
}
fn default_out_of_range() -> OutOfRangePolicy {
    OutOfRangePolicy::Earliest
}
fn default_corrupt() -> CorruptPolicy {
    CorruptPolicy::Fail
}
fn default_partition_error() -> PartitionErrorPolicy {
    PartitionErrorPolicy::StopPartition
}
fn default_stuck_after_secs() -> u64 {
    60
}
fn default_progress_log_secs() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_replication() -> i16 {
    -1
}
/// Configs that describe the source cluster's placement, not the data: copying them
/// would fail or mislead on the target (the same list MirrorMaker 2 leaves out).
pub fn default_exclude_configs() -> Vec<String> {
    [
        "follower.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "unclean.leader.election.enable",
        "min.insync.replicas",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}
fn default_topic_refresh_secs() -> u64 {
    10
}
fn default_heartbeat_interval_ms() -> u64 {
    1000
}
fn default_fetch_max_bytes() -> i32 {
    16 * 1024 * 1024
}
fn default_partition_max_bytes() -> i32 {
    1024 * 1024
}
fn default_fetch_max_wait_ms() -> i32 {
    500
}
fn default_fetch_connections_per_broker() -> usize {
    2
}
fn default_max_decompressed_bytes() -> usize {
    crate::wire::codec::DEFAULT_MAX_DECOMPRESSED
}
fn default_produce_timeout_ms() -> i32 {
    30_000
}
fn default_max_in_flight_bytes() -> usize {
    64 << 20
}
fn default_session_timeout_ms() -> u64 {
    10_000
}
fn default_transaction_hold_bytes() -> usize {
    32 * 1024 * 1024
}

impl MirrorConfig {
    /// A flow with every option at its default.
    pub fn new(name: &str, source: &str, target: &str, topics: Vec<String>) -> MirrorConfig {
        MirrorConfig {
            name: name.into(),
            source: source.into(),
            target: target.into(),
            topics,
            exclude: Vec::new(),
            rename: default_rename(),
            compression: default_compression(),
            compression_level: None,
            isolation: default_isolation(),
            start: default_start(),
            on_offset_out_of_range: default_out_of_range(),
            on_corrupt_batch: default_corrupt(),
            on_partition_error: default_partition_error(),
            stuck_after_secs: default_stuck_after_secs(),
            progress_log_secs: default_progress_log_secs(),
            create_topics: true,
            replication_factor: default_replication(),
            exclude_configs: default_exclude_configs(),
            topic_refresh_secs: default_topic_refresh_secs(),
            heartbeat_interval_ms: default_heartbeat_interval_ms(),
            fetch_max_bytes: default_fetch_max_bytes(),
            partition_max_bytes: default_partition_max_bytes(),
            fetch_max_wait_ms: default_fetch_max_wait_ms(),
            max_decompressed_bytes: default_max_decompressed_bytes(),
            produce_timeout_ms: default_produce_timeout_ms(),
            transaction_hold_bytes: default_transaction_hold_bytes(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            fetch_connections_per_broker: default_fetch_connections_per_broker(),
            instance_id: None,
            session_timeout_ms: default_session_timeout_ms(),
        }
    }
}

impl ClusterConfig {
    pub fn new(bootstrap: Vec<String>) -> ClusterConfig {
        ClusterConfig {
            bootstrap,
            client_id: default_client_id(),
            address_map: HashMap::new(),
            tls: None,
            sasl: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_frame_bytes: default_max_frame_bytes(),
            socket_send_buffer_bytes: None,
            socket_receive_buffer_bytes: None,
        }
    }
}

impl ProxyConfig {
    /// A proxy with every option at its default.
    pub fn new(name: &str, cluster: &str, listen: &str, advertise: &str) -> ProxyConfig {
        ProxyConfig {
            name: name.into(),
            cluster: cluster.into(),
            listen: listen.into(),
            advertise: advertise.into(),
            port_base: None,
            broker_ports: BTreeMap::new(),
            tls: None,
            max_connections: default_max_connections(),
            max_frame_bytes: default_max_frame_bytes(),
            idle_timeout_secs: default_idle_timeout_secs(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
        }
    }
}
