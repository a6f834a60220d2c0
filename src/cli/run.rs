//! `strait run`: every flow of a config file, each restarted after failures a retry can
//! fix, all stopped together on SIGINT or SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use strait::client::Cluster;
use strait::config::{self, Config, MirrorConfig};
use strait::metrics::{self as endpoint, Endpoint, Metrics};
use strait::mirror::metrics::MirrorMetrics;
use strait::mirror::{run_flow, MirrorError};
use strait::proxy::Proxy;
use tokio::sync::watch;

#[derive(Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, short, env = "STRAIT_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub otlp: super::telemetry::OtlpArgs,
}

/// The Prometheus endpoint option, shared by `run`, `mirror` and `proxy`.
#[derive(Args)]
pub struct MetricsArgs {
    /// Serve /metrics, /healthz and /readyz on IP:PORT (e.g. 0.0.0.0:9464); overrides
    /// [metrics] listen in the config. Off by default.
    #[arg(long = "metrics", env = "STRAIT_METRICS", value_name = "IP:PORT")]
    pub metrics_listen: Option<String>,
}

impl MetricsArgs {
    /// Puts the option into the config, which then validates it like the file's own.
    pub fn apply(self, config: &mut Config) -> anyhow::Result<()> {
        if self.metrics_listen.is_some() {
            config.metrics.listen = self.metrics_listen;
            config::validate::validate(config)?;
        }
        Ok(())
    }
}

pub fn to_config(args: RunArgs) -> anyhow::Result<Config> {
    let mut config = config::load(&args.config)?;
    args.metrics.apply(&mut config)?;
    args.otlp.apply(&mut config)?;
    Ok(config)
}

fn restartable(e: &MirrorError) -> bool {
    matches!(e, MirrorError::Client { source, .. } if source.is_retriable())
}

async fn supervise(
    m: MirrorConfig,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    metrics: MirrorMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<(), MirrorError> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let flow = run_flow(
            m.clone(),
            source.clone(),
            target.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        match flow.await {
            Ok(()) => return Ok(()),
            Err(e) if restartable(&e) && *shutdown.borrow() => {
                // Stopping anyway: what the target acknowledged is committed, the rest is
                // copied again by the next start.
                tracing::warn!(error = %e, "flow failed while stopping");
                return Ok(());
            }
            Err(e) if restartable(&e) => {
                tracing::error!(error = %e, restart_in = ?backoff, "flow failed; restarting from its committed progress");
                let mut stop = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn run_config(config: Config) -> anyhow::Result<()> {
    if config.mirror.is_empty() && config.proxy.is_empty() {
        anyhow::bail!("the config has no [[mirror]] flows and no [[proxy]] entries to run");
    }
    let mut proxies = Vec::new();
    for p in &config.proxy {
        proxies.push(config::proxy_settings(p, &config.clusters[&p.cluster])?);
    }
    let mut clusters = HashMap::new();
    for (name, c) in &config.clusters {
        clusters.insert(name.clone(), config::connect_cluster(name, c)?);
    }
    let shutdown = super::shutdown_signal();
    let metrics = Metrics::default();
    let scrapes = match &config.metrics.listen {
        Some(listen) => {
            let flows = config.mirror.iter().map(|m| m.name.clone()).collect();
            let names = config.proxy.iter().map(|p| p.name.clone()).collect();
            let served = Arc::new(Endpoint::new(metrics.clone(), flows, names));
            Some(endpoint::serve(listen.parse()?, served, shutdown.clone()).await?)
        }
        None => None,
    };
    let mut flows = tokio::task::JoinSet::new();
    for settings in proxies {
        let (shutdown, metrics) = (shutdown.clone(), metrics.proxy.clone());
        flows.spawn(async move { Proxy::run(settings, metrics, shutdown).await.map_err(|e| e.to_string()) });
    }
    for m in config.mirror {
        let (source, target) = (clusters[&m.source].clone(), clusters[&m.target].clone());
        let (shutdown, metrics) = (shutdown.clone(), metrics.mirror.clone());
        flows.spawn(async move {
            supervise(m, source, target, metrics, shutdown)
                .await
                .map_err(|e| e.to_string())
        });
    }
    let mut failed = 0;
    while let Some(done) = flows.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "stopped with an error");
                failed += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "flow task failed");
                failed += 1;
            }
        }
    }
    if let Some(scrapes) = scrapes {
        scrapes.abort();
    }
    if failed > 0 {
        anyhow::bail!("{failed} flow(s) or proxies stopped with errors");
    }
    Ok(())
}
