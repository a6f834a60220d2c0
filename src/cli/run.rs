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
    if config.mirror.is_empty() {
        anyhow::bail!("the config has no [[mirror]] flows to run");
    }
    let mut clusters = HashMap::new();
    for (name, c) in &config.clusters {
        clusters.insert(name.clone(), config::connect_cluster(name, c)?);
    }
    let shutdown = super::shutdown_signal();
    let mut flows = tokio::task::JoinSet::new();
    for m in config.mirror {
        let (source, target) = (clusters[&m.source].clone(), clusters[&m.target].clone());
        flows.spawn(supervise(m, source, target, shutdown.clone()));
    }
    let mut failed = 0;
    while let Some(done) = flows.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "flow stopped");
                failed += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, "flow task failed");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} flow(s) stopped with errors");
    }
    Ok(())
}
