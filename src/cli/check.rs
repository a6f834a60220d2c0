//! `strait check`: validate a config, then prepare everything `strait run` would need
//! before it connects anywhere (TLS files read and parsed, secrets resolved, patterns
//! compiled), and print the plan in the config's own spellings, secrets never shown.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use strait::config::{self, Config, Secret};

#[derive(Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(long, short, env = "STRAIT_CONFIG")]
    pub config: PathBuf,
    /// Leave secrets (${env:...}, ${file:...}) unresolved: for a pipeline that checks a
    /// config where the secrets are not present. TLS files are still read.
    #[arg(long)]
    pub no_secrets: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let config = config::load(&args.config)?;
    let problems = prepare(&config, args.no_secrets);
    print!("{}", plan(&config));
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        eprintln!("strait check: {problem}");
    }
    anyhow::bail!("{} problem(s) that `strait run` would meet", problems.len())
}

/// Builds what every cluster, proxy and flow runs with, as `strait run` does; returns
/// each failure.
fn prepare(config: &Config, no_secrets: bool) -> Vec<String> {
    let mut config = config.clone();
    if no_secrets {
        for c in config.clusters.values_mut() {
            if let Some(sasl) = &mut c.sasl {
                sasl.password = Secret::new("(not checked)");
            }
        }
    }
    let mut problems = Vec::new();
    for (name, c) in &config.clusters {
        if let Err(e) = config::connect_options(name, c) {
            problems.push(e.to_string());
        }
    }
    for p in &config.proxy {
        if let Err(e) = config::proxy_settings(p, &config.clusters[&p.cluster]) {
            problems.push(e.to_string());
        }
    }
    for m in &config.mirror {
        if let Err(e) = config::flow_settings(m) {
            problems.push(e.to_string());
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// A value as the config file writes it (`keep`, `read_committed`, `SCRAM-SHA-512`).
fn spelled(value: &impl Serialize) -> String {
    toml::Value::try_from(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A readable summary of what the config would run.
pub fn plan(config: &Config) -> String {
    let mut out = String::new();
    for (name, c) in &config.clusters {
        out += &format!("cluster {name}: bootstrap {}\n", c.bootstrap.join(","));
        for (from, to) in &c.address_map {
            out += &format!("  dial {to} for advertised {from}\n");
        }
        if let Some(tls) = &c.tls {
            let ca = tls.ca.as_deref().unwrap_or("system roots");
            let client = if tls.cert.is_some() { ", client certificate" } else { "" };
            out += &format!("  tls: CA {ca}{client}\n");
        }
        if let Some(sasl) = &c.sasl {
            out += &format!(
                "  sasl: {} as {} (password from {})\n",
                spelled(&sasl.mechanism),
                sasl.username,
                sasl.password.source()
            );
        }
    }
    for p in &config.proxy {
        out += &format!(
            "proxy {}: listen {} for cluster {}, advertised as {}, broker ports from {}\n",
            p.name,
            p.listen,
            p.cluster,
            p.advertise,
            p.port_base
                .map_or("listen port + 1 + node id".to_owned(), |b| format!("{b} + node id"))
        );
    }
    for m in &config.mirror {
        out += &format!(
            "mirror {}: {} -> {}, topics {:?} excluding {:?}, renamed {:?}, compression {}, {}, start {}, on partition error {}\n",
            m.name,
            m.source,
            m.target,
            m.topics,
            m.exclude,
            m.rename,
            spelled(&m.compression),
            spelled(&m.isolation),
            spelled(&m.start),
            spelled(&m.on_partition_error),
        );
    }
    if let Some(listen) = &config.metrics.listen {
        out += &format!("metrics: http://{listen}/metrics, /healthz, /readyz\n");
    }
    if let Some(url) = &config.tracing.otlp_endpoint {
        out += &format!("tracing: spans to {}/v1/traces\n", url.trim_end_matches('/'));
    }
    out
}
