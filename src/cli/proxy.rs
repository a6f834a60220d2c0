//! `strait proxy`: one proxy in front of one cluster, no config file.

use clap::Args;

use super::flags::name_the_flag;
use strait::config::{ClusterConfig, Config, ProxyConfig};

#[derive(Args)]
pub struct ProxyArgs {
    /// The cluster's bootstrap servers, comma separated.
    #[arg(long, env = "STRAIT_UPSTREAM", value_delimiter = ',', required = true)]
    pub upstream: Vec<String>,
    /// Where clients bootstrap: IP:PORT. Broker N gets port PORT+1+N unless --port-base.
    #[arg(long, env = "STRAIT_LISTEN", default_value = "0.0.0.0:9092")]
    pub listen: String,
    /// The host name or IP clients reach the proxy at, written into every answer.
    #[arg(long, env = "STRAIT_ADVERTISE", required = true)]
    pub advertise: String,
    /// Broker N listens on BASE+N.
    #[arg(long, env = "STRAIT_PORT_BASE")]
    pub port_base: Option<u16>,
    /// Most client connections at once; more are refused.
    #[arg(long, env = "STRAIT_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Seconds a client may stay silent with nothing in flight before it is closed.
    #[arg(long, env = "STRAIT_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    pub idle_timeout_secs: u64,
    /// Proxy name, for logs.
    #[arg(long, env = "STRAIT_NAME", default_value = "proxy")]
    pub name: String,
    #[command(flatten)]
    pub metrics: super::run::MetricsArgs,
    #[command(flatten)]
    pub otlp: super::telemetry::OtlpArgs,
}

pub fn to_config(a: ProxyArgs) -> anyhow::Result<Config> {
    let mut p = ProxyConfig::new(&a.name, "upstream", &a.listen, &a.advertise);
    p.port_base = a.port_base;
    p.max_connections = a.max_connections;
    p.idle_timeout_secs = a.idle_timeout_secs;
    let mut config = Config::default();
    config
        .clusters
        .insert("upstream".into(), ClusterConfig::new(a.upstream));
    config.proxy.push(p);
    config.metrics.listen = a.metrics.metrics_listen;
    config.tracing = a.otlp.tracing();
    let flags = [
        ("proxy.listen", "--listen"),
        ("proxy.advertise", "--advertise"),
        ("proxy.name", "--name"),
        ("proxy.max_connections", "--max-connections"),
        ("proxy.idle_timeout_secs", "--idle-timeout-secs"),
        ("clusters.upstream.bootstrap", "--upstream"),
        ("metrics.listen", "--metrics"),
        ("tracing.otlp_endpoint", "--otlp-endpoint"),
        ("tracing.otlp_ca", "--otlp-ca"),
    ];
    strait::config::validate::validate(&config).map_err(|e| name_the_flag(e, &flags))?;
    Ok(config)
}
