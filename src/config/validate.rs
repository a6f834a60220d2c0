//! Up-front validation: every problem names its key, the value and what is expected, so
//! that a bad config never half-starts.

use super::error::invalid;
use super::{Config, ConfigError, MirrorConfig, TracingConfig};

fn check_address(key: &str, addr: &str) -> Result<(), ConfigError> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !ok {
        return Err(invalid(
            key,
            format!("{addr:?}"),
            "an address as host:port with a port from 1 to 65535",
        ));
    }
    if addr.contains([',', ' ']) {
        return Err(invalid(
            key,
            format!("{addr:?}"),
            "one host:port per list entry, such as [\"a:9092\", \"b:9092\"]",
        ));
    }
    Ok(())
}

fn check_regexes(key: &str, patterns: &[String]) -> Result<(), ConfigError> {
    for (i, p) in patterns.iter().enumerate() {
        if let Err(e) = regex::Regex::new(p) {
            return Err(invalid(
                format!("{key}[{i}]"),
                format!("{p:?}"),
                format!("a valid regular expression ({e})"),
            ));
        }
    }
    Ok(())
}

/// A rename template may use `{source}` and `{topic}` and must use `{topic}`, or every
/// topic of the flow would land in one target topic.
fn check_rename(key: &str, template: &str) -> Result<(), ConfigError> {
    let stripped = template.replace("{source}", "").replace("{topic}", "");
    if stripped.contains('{') || stripped.contains('}') {
        return Err(invalid(
            key,
            format!("{template:?}"),
            "a template using only the placeholders {source} and {topic}",
        ));
    }
    if !template.contains("{topic}") {
        return Err(invalid(key, format!("{template:?}"), "a template containing {topic}"));
    }
    Ok(())
}

/// A listening address: an IP and a port; `example` shows the usual one.
fn listen_address(key: &str, value: &str, example: &str) -> Result<std::net::SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?}"),
            format!("an IP address and port, such as {example}"),
        )
    })
}

/// A frame size limit: big enough for any header, small enough for Kafka's i32 sizes.
fn frame_limit(key: &str, value: usize) -> Result<(), ConfigError> {
    if !(1024..=i32::MAX as usize).contains(&value) {
        return Err(invalid(key, value, "from 1024 to 2147483647 bytes"));
    }
    Ok(())
}

fn positive(key: &str, value: i64) -> Result<(), ConfigError> {
    if value <= 0 {
        return Err(invalid(key, value, "a number greater than 0"));
    }
    Ok(())
}

/// More fetch connections per broker than this add load on the broker, not speed.
const MAX_FETCH_CONNECTIONS: usize = 16;
/// Kafka brokers refuse session timeouts outside their own bounds (6 s to 30 min by
/// default); these are looser, for brokers configured otherwise and for tests.
const MIN_SESSION_TIMEOUT_MS: u64 = 1_000;
const MAX_SESSION_TIMEOUT_MS: u64 = 1_800_000;

/// A socket buffer size, when one is given: from 4 KiB to 1 GiB.
fn socket_buffer(key: &str, value: Option<u32>) -> Result<(), ConfigError> {
    match value {
        Some(v) if !(4096..=1 << 30).contains(&v) => Err(invalid(
            key,
            v,
            "from 4096 to 1073741824 bytes, or absent for the kernel's tuning",
        )),
        _ => Ok(()),
    }
}

fn check_mirror(config: &Config, i: usize, m: &MirrorConfig) -> Result<(), ConfigError> {
    let key = |field: &str| format!("mirror[{i}].{field}");
    if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(invalid(
            key("name"),
            format!("{:?}", m.name),
            "a non-empty name of letters, digits, '.', '_' or '-'",
        ));
    }
    for (field, cluster) in [("source", &m.source), ("target", &m.target)] {
        if !config.clusters.contains_key(cluster) {
            let known: Vec<&String> = config.clusters.keys().collect();
            return Err(invalid(
                key(field),
                format!("{cluster:?}"),
                format!("the name of a [clusters.NAME] section (have {known:?})"),
            ));
        }
    }
    if m.topics.is_empty() {
        return Err(invalid(key("topics"), "[]", "at least one topic regular expression"));
    }
    check_regexes(&key("topics"), &m.topics)?;
    check_regexes(&key("exclude"), &m.exclude)?;
    check_rename(&key("rename"), &m.rename)?;
    if m.source == m.target && m.rename == "{topic}" {
        return Err(invalid(
            key("rename"),
            "\"{topic}\"",
            "a rename template other than {topic} when source and target are the same cluster",
        ));
    }
    if let Some(level) = m.compression_level {
        let codec = m.compression.codec();
        let range = match codec {
            Some(crate::wire::codec::Compression::Gzip) => 1..=9,
            Some(crate::wire::codec::Compression::Zstd) => -7..=22,
            _ => {
                return Err(invalid(
                    key("compression_level"),
                    level,
                    "no level unless compression is gzip or zstd",
                ))
            }
        };
        if !range.contains(&level) {
            return Err(invalid(
                key("compression_level"),
                level,
                format!("a level in {range:?}"),
            ));
        }
    }
    if m.replication_factor == 0 || m.replication_factor < -1 {
        return Err(invalid(
            key("replication_factor"),
            m.replication_factor,
            "-1 (the target's default) or a positive number",
        ));
    }
    positive(&key("topic_refresh_secs"), m.topic_refresh_secs as i64)?;
    positive(&key("stuck_after_secs"), m.stuck_after_secs as i64)?;
    positive(&key("fetch_max_bytes"), m.fetch_max_bytes.into())?;
    positive(&key("partition_max_bytes"), m.partition_max_bytes.into())?;
    positive(&key("max_decompressed_bytes"), m.max_decompressed_bytes as i64)?;
    positive(&key("produce_timeout_ms"), m.produce_timeout_ms.into())?;
    positive(&key("transaction_hold_bytes"), m.transaction_hold_bytes as i64)?;
    positive(&key("max_in_flight_bytes"), m.max_in_flight_bytes as i64)?;
    if !(1..=MAX_FETCH_CONNECTIONS).contains(&m.fetch_connections_per_broker) {
        return Err(invalid(
            key("fetch_connections_per_broker"),
            m.fetch_connections_per_broker,
            format!("from 1 to {MAX_FETCH_CONNECTIONS}"),
        ));
    }
    if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&m.session_timeout_ms) {
        return Err(invalid(
            key("session_timeout_ms"),
            m.session_timeout_ms,
            format!("from {MIN_SESSION_TIMEOUT_MS} to {MAX_SESSION_TIMEOUT_MS} milliseconds"),
        ));
    }
    if let Some(id) = &m.instance_id {
        if id.is_empty() || id.len() > 249 || id.chars().any(char::is_control) {
            return Err(invalid(
                key("instance_id"),
                format!("{id:?}"),
                "1 to 249 characters, none of them control characters",
            ));
        }
    }
    if m.fetch_max_wait_ms < 0 {
        return Err(invalid(
            key("fetch_max_wait_ms"),
            m.fetch_max_wait_ms,
            "0 or more milliseconds",
        ));
    }
    if m.partition_max_bytes > m.fetch_max_bytes {
        return Err(invalid(
            key("partition_max_bytes"),
            m.partition_max_bytes,
            format!("at most fetch_max_bytes ({})", m.fetch_max_bytes),
        ));
    }
    Ok(())
}

fn check_proxy(config: &Config, i: usize, p: &super::ProxyConfig) -> Result<(), ConfigError> {
    let key = |field: &str| format!("proxy[{i}].{field}");
    if p.name.is_empty() {
        return Err(invalid(key("name"), "\"\"", "a non-empty name"));
    }
    if !config.clusters.contains_key(&p.cluster) {
        return Err(invalid(
            key("cluster"),
            format!("{:?}", p.cluster),
            "the name of a [clusters.NAME] section",
        ));
    }
    let listen = listen_address(&key("listen"), &p.listen, "0.0.0.0:9092")?;
    if p.advertise.is_empty() || p.advertise.contains(':') && p.advertise.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(invalid(
            key("advertise"),
            format!("{:?}", p.advertise),
            "the host name or IP clients connect to, without a port",
        ));
    }
    if p.port_base.is_none() && listen.port() == u16::MAX {
        return Err(invalid(key("listen"), &p.listen, "a port below 65535, or a port_base"));
    }
    for node in p.broker_ports.keys() {
        node.parse::<i32>()
            .map_err(|_| invalid(format!("{}.\"{node}\"", key("broker_ports")), node, "a broker node id"))?;
    }
    positive(&key("max_connections"), p.max_connections as i64)?;
    positive(&key("idle_timeout_secs"), p.idle_timeout_secs as i64)?;
    frame_limit(&key("max_frame_bytes"), p.max_frame_bytes)?;
    Ok(())
}

/// A collector's URL is checked here rather than failing on every export.
fn check_otlp_endpoint(url: &str) -> Result<(), ConfigError> {
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .map(|rest| rest.split('/').next().unwrap_or_default());
    match authority {
        Some(authority) if check_address("", authority).is_ok() => Ok(()),
        _ => Err(invalid(
            "tracing.otlp_endpoint",
            format!("{url:?}"),
            "an http:// or https://HOST:PORT URL of an OTLP/HTTP collector, such as http://127.0.0.1:4318",
        )),
    }
}

fn check_tracing(tracing: &TracingConfig) -> Result<(), ConfigError> {
    if let Some(url) = &tracing.otlp_endpoint {
        check_otlp_endpoint(url)?;
    }
    let https = tracing
        .otlp_endpoint
        .as_ref()
        .is_some_and(|url| url.starts_with("https://"));
    if let (Some(ca), false) = (&tracing.otlp_ca, https) {
        return Err(invalid(
            "tracing.otlp_ca",
            format!("{ca:?}"),
            "a CA file only for an https:// otlp_endpoint",
        ));
    }
    Ok(())
}

pub fn validate(config: &Config) -> Result<(), ConfigError> {
    check_tracing(&config.tracing)?;
    if let Some(level) = &config.log.level {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(level) {
            let expected =
                format!("a level (error, warn, info, debug, trace) or a filter such as \"info,strait=debug\" ({e})");
            return Err(invalid("log.level", format!("{level:?}"), expected));
        }
    }
    if let Some(listen) = &config.metrics.listen {
        listen_address("metrics.listen", listen, "0.0.0.0:9464")?;
    }
    for (name, c) in &config.clusters {
        let key = |field: &str| format!("clusters.{name}.{field}");
        if c.bootstrap.is_empty() {
            return Err(invalid(key("bootstrap"), "[]", "at least one host:port"));
        }
        for (i, addr) in c.bootstrap.iter().enumerate() {
            check_address(&format!("{}[{i}]", key("bootstrap")), addr)?;
        }
        for (from, to) in &c.address_map {
            check_address(&format!("{}.\"{from}\"", key("address_map")), from)?;
            check_address(&format!("{}.\"{from}\"", key("address_map")), to)?;
        }
        positive(&key("request_timeout_ms"), c.request_timeout_ms as i64)?;
        positive(&key("connect_timeout_ms"), c.connect_timeout_ms as i64)?;
        frame_limit(&key("max_frame_bytes"), c.max_frame_bytes)?;
        socket_buffer(&key("socket_send_buffer_bytes"), c.socket_send_buffer_bytes)?;
        socket_buffer(&key("socket_receive_buffer_bytes"), c.socket_receive_buffer_bytes)?;
        if let Some(tls) = &c.tls {
            if tls.cert.is_some() != tls.key.is_some() {
                return Err(invalid(
                    key("tls"),
                    "cert without key (or key without cert)",
                    "both cert and key for a client certificate, or neither",
                ));
            }
        }
        // Secrets are resolved when a cluster is prepared (by `strait run` before it
        // starts anything, and by `strait check` unless told --no-secrets), not here.
    }
    for (i, p) in config.proxy.iter().enumerate() {
        check_proxy(config, i, p)?;
    }
    let mut names = std::collections::HashSet::new();
    for (i, m) in config.mirror.iter().enumerate() {
        check_mirror(config, i, m)?;
        if !names.insert(&m.name) {
            return Err(invalid(
                format!("mirror[{i}].name"),
                format!("{:?}", m.name),
                "a name no other flow uses",
            ));
        }
    }
    Ok(())
}
