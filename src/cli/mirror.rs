//! `strait mirror`: one flow from the command line, no config file.

use clap::Args;

use super::flags::{name_the_flag, split_patterns};
use strait::config::{ClusterConfig, CompressionChoice, Config, IsolationChoice, MirrorConfig, StartChoice};

#[derive(Args)]
pub struct MirrorArgs {
    /// Source cluster bootstrap servers, comma separated.
    #[arg(long, env = "STRAIT_SOURCE", value_delimiter = ',', required = true)]
    pub source: Vec<String>,
    /// Target cluster bootstrap servers, comma separated.
    #[arg(long, env = "STRAIT_TARGET", value_delimiter = ',', required = true)]
    pub target: Vec<String>,
    /// Topics to copy: a regular expression matching whole names. Repeat the flag for
    /// several; commas outside braces and brackets also separate patterns, so
    /// `o{1,2}rders` is one pattern and `a,b` two.
    #[arg(long, env = "STRAIT_TOPICS", required = true)]
    pub topics: Vec<String>,
    /// Topics to leave out: regular expressions, given like --topics.
    #[arg(long, env = "STRAIT_EXCLUDE")]
    pub exclude: Vec<String>,
    /// Target topic name template with {source} and {topic}.
    #[arg(long, env = "STRAIT_RENAME", default_value = "{topic}")]
    pub rename: String,
    /// keep, none, gzip, snappy, lz4 or zstd.
    #[arg(long, env = "STRAIT_COMPRESSION", default_value = "keep")]
    pub compression: String,
    /// Where a partition without committed progress starts: earliest or latest.
    #[arg(long, env = "STRAIT_START", default_value = "earliest")]
    pub start: String,
    /// read_committed or read_uncommitted.
    #[arg(long, env = "STRAIT_ISOLATION", default_value = "read_committed")]
    pub isolation: String,
    /// Flow name: progress is stored in the target under the group strait.NAME.
    #[arg(long, env = "STRAIT_NAME", default_value = "mirror")]
    pub name: String,
    /// Name of the source cluster, used by {source} in --rename.
    #[arg(long, env = "STRAIT_SOURCE_NAME", default_value = "source")]
    pub source_name: String,
    /// Milliseconds between heartbeats written to __strait_heartbeats.NAME on the
    /// source and copied to the target (latency while topics are idle); 0 turns them off.
    #[arg(long, env = "STRAIT_HEARTBEAT_INTERVAL_MS", default_value_t = 1000)]
    pub heartbeat_interval_ms: u64,
    /// Seconds between looks for new matching topics and partitions.
    #[arg(long, env = "STRAIT_TOPIC_REFRESH_SECS", default_value_t = 10)]
    pub topic_refresh_secs: u64,
    /// Seconds between the flow's progress lines in the log; 0 turns them off.
    #[arg(long, env = "STRAIT_PROGRESS_LOG_SECS", default_value_t = 30)]
    pub progress_log_secs: u64,
    /// This process's stable id in the flow's group (static membership): a restart
    /// under the same id within the session timeout moves no partition. Every process
    /// of a flow needs its own.
    #[arg(long, env = "STRAIT_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Milliseconds the flow's group waits for a silent process before its partitions
    /// move to the others.
    #[arg(long, env = "STRAIT_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    #[command(flatten)]
    pub metrics: super::run::MetricsArgs,
    #[command(flatten)]
    pub otlp: super::telemetry::OtlpArgs,
}

fn parse_enum<T: serde::de::DeserializeOwned>(flag: &str, value: &str) -> anyhow::Result<T> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(value))
        .map_err(|e| anyhow::anyhow!("--{flag} {value}: {e}"))
}

pub fn to_config(a: MirrorArgs) -> anyhow::Result<Config> {
    let mut m = MirrorConfig::new(&a.name, &a.source_name, "target", split_patterns(a.topics));
    m.exclude = split_patterns(a.exclude);
    m.topic_refresh_secs = a.topic_refresh_secs;
    m.progress_log_secs = a.progress_log_secs;
    m.rename = a.rename;
    m.compression = parse_enum::<CompressionChoice>("compression", &a.compression)?;
    m.start = parse_enum::<StartChoice>("start", &a.start)?;
    m.isolation = parse_enum::<IsolationChoice>("isolation", &a.isolation)?;
    m.heartbeat_interval_ms = a.heartbeat_interval_ms;
    m.instance_id = a.instance_id.filter(|id| !id.is_empty());
    m.session_timeout_ms = a.session_timeout_ms;
    let mut config = Config::default();
    config.clusters.insert(a.source_name, ClusterConfig::new(a.source));
    config.clusters.insert("target".into(), ClusterConfig::new(a.target));
    config.mirror.push(m);
    config.metrics.listen = a.metrics.metrics_listen;
    config.tracing = a.otlp.tracing();
    let flags = [
        ("mirror.topics", "--topics"),
        ("mirror.exclude", "--exclude"),
        ("mirror.rename", "--rename"),
        ("mirror.name", "--name"),
        ("mirror.topic_refresh_secs", "--topic-refresh-secs"),
        ("mirror.instance_id", "--instance-id"),
        ("mirror.session_timeout_ms", "--session-timeout-ms"),
        ("clusters.target.bootstrap", "--target"),
        ("metrics.listen", "--metrics"),
        ("tracing.otlp_endpoint", "--otlp-endpoint"),
        ("tracing.otlp_ca", "--otlp-ca"),
    ];
    let source_key = format!("clusters.{}.bootstrap", config.mirror[0].source);
    let mut flags = flags.to_vec();
    flags.push((source_key.as_str(), "--source"));
    strait::config::validate::validate(&config).map_err(|e| name_the_flag(e, &flags))?;
    Ok(config)
}
