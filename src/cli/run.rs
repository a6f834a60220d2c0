//! `strait run`: every flow of a config file, each restarted after failures a retry can
//! fix, all stopped together on SIGINT or SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use strait::client::Cluster;
use strait::config::{self, Config, MirrorConfig};
use strait::mirror::{run_flow, MirrorError};
use strait::proxy::Proxy;
use tokio::sync::watch;

#[derive(Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, short, env = "STRAIT_CONFIG")]
    pub config: PathBuf,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    run_config(config::load(&args.config)?).await
}

fn restartable(e: &MirrorError) -> bool {
    matches!(e, MirrorError::Client { source, .. } if source.is_retriable())
}

async fn supervise(
    m: MirrorConfig,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), MirrorError> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match run_flow(m.clone(), source.clone(), target.clone(), shutdown.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if restartable(&e) && !*shutdown.borrow() => {
                tracing::error!(error = %e, restart_in = ?backoff, "flow failed; restarting from its committed progress");
                tokio::time::sleep(backoff).await;
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
    let mut flows = tokio::task::JoinSet::new();
    for settings in proxies {
        let shutdown = shutdown.clone();
        flows.spawn(async move { Proxy::run(settings, shutdown).await.map_err(|e| e.to_string()) });
    }
    for m in config.mirror {
        let (source, target) = (clusters[&m.source].clone(), clusters[&m.target].clone());
        let shutdown = shutdown.clone();
        flows.spawn(async move { supervise(m, source, target, shutdown).await.map_err(|e| e.to_string()) });
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
    if failed > 0 {
        anyhow::bail!("{failed} flow(s) or proxies stopped with errors");
    }
    Ok(())
}
