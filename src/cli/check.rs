//! `strait check`: validate a config and print the plan, secrets never shown.

use std::path::PathBuf;

use clap::Args;
use strait::config::{self, Config};

#[derive(Args)]
pub struct CheckArgs {
    /// The config file to check.
    #[arg(long, short, env = "STRAIT_CONFIG")]
    pub config: PathBuf,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let config = config::load(&args.config)?;
    print!("{}", plan(&config));
    Ok(())
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
                "  sasl: {:?} as {} (password from {})\n",
                sasl.mechanism,
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
            "mirror {}: {} -> {}, topics {:?} excluding {:?}, renamed {:?}, compression {:?}, {:?}, start {:?}\n",
            m.name, m.source, m.target, m.topics, m.exclude, m.rename, m.compression, m.isolation, m.start
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
