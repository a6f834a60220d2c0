//! The TOML model shared by `strait run`, `strait check` and the one-flow command lines:
//! parsed strictly (unknown keys are errors), secrets resolved, validated up front.

pub mod error;
pub mod model;
pub mod secret;
pub mod validate;

pub use error::ConfigError;
pub use model::*;
pub use secret::Secret;

/// Reads, parses and validates a config file.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
        path: path.display().to_string(),
        reason,
    })?;
    parse(&text)
}

/// Parses and validates config text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
    validate::validate(&config)?;
    Ok(config)
}

/// How strait talks to a `[clusters.NAME]` section's brokers, secrets resolved.
pub fn connect_options(name: &str, c: &ClusterConfig) -> Result<crate::net::ConnectOptions, ConfigError> {
    use crate::net::{sasl, tls};
    let key = |field: &str| format!("clusters.{name}.{field}");
    let tls = match &c.tls {
        None => None,
        Some(t) => {
            let files = tls::TlsFiles {
                ca: t.ca.as_ref().map(Into::into),
                cert: t.cert.as_ref().map(Into::into),
                key: t.key.as_ref().map(Into::into),
                server_name: t.server_name.clone(),
            };
            Some(
                tls::TlsSettings::from_files(&files)
                    .map_err(|e| error::invalid(key("tls"), "(files)", format!("usable TLS files: {e}")))?,
            )
        }
    };
    let sasl = match &c.sasl {
        None => None,
        Some(s) => Some(sasl::SaslConfig {
            mechanism: match s.mechanism {
                SaslMechanism::Plain => sasl::Mechanism::Plain,
                SaslMechanism::ScramSha256 => sasl::Mechanism::ScramSha256,
                SaslMechanism::ScramSha512 => sasl::Mechanism::ScramSha512,
            },
            username: s.username.clone(),
            password: s.password.resolve(&key("sasl.password"))?,
        }),
    };
    Ok(crate::net::ConnectOptions {
        client_id: c.client_id.clone(),
        tls,
        sasl,
        connect_timeout: std::time::Duration::from_millis(c.connect_timeout_ms),
        request_timeout: std::time::Duration::from_millis(c.request_timeout_ms),
        max_frame: c.max_frame_bytes,
        buffers: crate::net::dial::SocketBuffers {
            send: c.socket_send_buffer_bytes,
            receive: c.socket_receive_buffer_bytes,
        },
    })
}

/// The client-layer cluster for a `[clusters.NAME]` section, secrets resolved.
pub fn connect_cluster(name: &str, c: &ClusterConfig) -> Result<std::sync::Arc<crate::client::Cluster>, ConfigError> {
    Ok(crate::client::Cluster::new(
        name,
        c.bootstrap.clone(),
        crate::client::AddressMap::new(c.address_map.clone()),
        connect_options(name, c)?,
    ))
}

/// What a `[[mirror]]` flow runs with: its patterns compiled (validation has already
/// refused any that does not compile; this says which, should one get here).
pub fn flow_settings(m: &MirrorConfig) -> Result<crate::mirror::settings::FlowSettings, ConfigError> {
    let compile = |field: &str, patterns: &[String]| -> Result<Vec<regex::Regex>, ConfigError> {
        patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                crate::mirror::settings::whole_name(p).map_err(|e| {
                    let key = format!("mirror.{}.{field}[{i}]", m.name);
                    error::invalid(key, format!("{p:?}"), format!("a valid regular expression ({e})"))
                })
            })
            .collect()
    };
    Ok(crate::mirror::settings::FlowSettings {
        name: m.name.clone(),
        source_name: m.source.clone(),
        target_name: m.target.clone(),
        include: compile("topics", &m.topics)?,
        exclude: compile("exclude", &m.exclude)?,
        rename: m.rename.clone(),
        compression: m.compression.codec(),
        compression_level: m.compression_level,
        isolation: match m.isolation {
            IsolationChoice::ReadCommitted => crate::client::fetch::Isolation::ReadCommitted,
            IsolationChoice::ReadUncommitted => crate::client::fetch::Isolation::ReadUncommitted,
        },
        start: m.start,
        on_offset_out_of_range: m.on_offset_out_of_range,
        on_corrupt_batch: m.on_corrupt_batch,
        on_partition_error: m.on_partition_error,
        stuck_after_secs: m.stuck_after_secs,
        progress_log_secs: m.progress_log_secs,
        create_topics: m.create_topics,
        replication_factor: m.replication_factor,
        exclude_configs: m.exclude_configs.clone(),
        topic_refresh_secs: m.topic_refresh_secs,
        heartbeat_interval_ms: m.heartbeat_interval_ms,
        fetch_max_bytes: m.fetch_max_bytes,
        partition_max_bytes: m.partition_max_bytes,
        fetch_max_wait_ms: m.fetch_max_wait_ms,
        fetch_connections_per_broker: m.fetch_connections_per_broker,
        max_decompressed_bytes: m.max_decompressed_bytes,
        produce_timeout_ms: m.produce_timeout_ms,
        transaction_hold_bytes: m.transaction_hold_bytes,
        max_in_flight_bytes: m.max_in_flight_bytes,
        instance_id: m.instance_id.clone().or_else(instance_id_from_env),
        session_timeout_ms: m.session_timeout_ms,
    })
}

/// The instance id a deployment gives every process through its environment (the pod
/// name in the Helm chart, the host and instance in the systemd unit).
fn instance_id_from_env() -> Option<String> {
    std::env::var("STRAIT_INSTANCE_ID").ok().filter(|id| !id.is_empty())
}

/// The settings of a `[[proxy]]` entry in front of its cluster.
pub fn proxy_settings(p: &ProxyConfig, c: &ClusterConfig) -> Result<crate::proxy::ProxySettings, ConfigError> {
    let key = |field: &str| format!("proxy.{}.{field}", p.name);
    let listen: std::net::SocketAddr = p
        .listen
        .parse()
        .map_err(|_| error::invalid(key("listen"), &p.listen, "an IP address and port"))?;
    let upstream_options = connect_options(&p.cluster, c)?;
    let client_tls = match &p.tls {
        None => None,
        Some(t) => Some(
            crate::proxy::tls::acceptor(&t.cert, &t.key, t.client_ca.as_deref())
                .map_err(|e| error::invalid(key("tls"), "(files)", format!("usable TLS files: {e}")))?,
        ),
    };
    let pinned_ports = p
        .broker_ports
        .iter()
        .filter_map(|(node, port)| node.parse().ok().map(|n| (n, *port)))
        .collect();
    Ok(crate::proxy::ProxySettings {
        name: p.name.clone(),
        listen,
        advertise_host: p.advertise.clone(),
        port_base: p.port_base.unwrap_or(listen.port().saturating_add(1)),
        pinned_ports,
        upstream: c.bootstrap.clone(),
        upstream_map: crate::client::AddressMap::new(c.address_map.clone()),
        upstream_tls: upstream_options.tls.clone(),
        upstream_options,
        client_tls,
        max_connections: p.max_connections,
        max_frame: p.max_frame_bytes,
        idle_timeout: std::time::Duration::from_secs(p.idle_timeout_secs),
        shutdown_grace: std::time::Duration::from_secs(p.shutdown_grace_secs),
    })
}
