//! `strait run`: every flow and proxy of a config file, flows restarted after failures
//! a retry can fix, all stopped together on SIGINT or SIGTERM; SIGHUP applies a changed
//! config file without pausing what it did not change.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use strait::config::{self, Config};
use strait::metrics::{self as endpoint, Endpoint, Expected, Metrics};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::units::Units;

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
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if self.metrics_listen.is_some() {
            config.metrics.listen.clone_from(&self.metrics_listen);
            config::validate::validate(config)?;
        }
        Ok(())
    }
}

/// How `strait run` reads its config, at start and again on SIGHUP: the file, then the
/// command line's options over it.
pub struct Reread {
    path: PathBuf,
    metrics: MetricsArgs,
    otlp: super::telemetry::OtlpArgs,
}

impl From<RunArgs> for Reread {
    fn from(args: RunArgs) -> Reread {
        Reread {
            path: args.config,
            metrics: args.metrics,
            otlp: args.otlp,
        }
    }
}

impl Reread {
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = config::load(&self.path)?;
        self.metrics.apply(&mut config)?;
        self.otlp.apply(&mut config)?;
        Ok(config)
    }
}

/// Runs every flow and proxy of `config` until SIGINT or SIGTERM. With the path of the
/// config file, SIGHUP reads it again and applies what changed.
pub async fn run_config(config: Config, reread: Option<Reread>) -> anyhow::Result<()> {
    if config.mirror.is_empty() && config.proxy.is_empty() {
        anyhow::bail!("the config has no [[mirror]] flows and no [[proxy]] entries to run");
    }
    let mut shutdown = super::shutdown_signal();
    let mut hangups = signal(SignalKind::hangup())?;
    let metrics = Metrics::default();
    let endpoint = match &config.metrics.listen {
        Some(listen) => {
            let served = Arc::new(Endpoint::new(metrics.clone(), Expected::default()));
            endpoint::serve(listen.parse()?, served.clone(), shutdown.clone()).await?;
            Some(served)
        }
        None => None,
    };
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let mut units = Units::new(metrics, ended_tx);
    units.apply(&config).await?;
    if let Some(e) = &endpoint {
        e.expect(units.expected());
    }
    let mut current = config;
    let mut failed = 0;
    while !*shutdown.borrow() && !units.is_empty() {
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() { break },
            _ = hangups.recv() => {
                if let Some(next) = reload(reread.as_ref(), &current, &mut units).await {
                    current = next;
                    if let Some(e) = &endpoint {
                        e.expect(units.expected());
                    }
                }
            }
            Some((unit, generation, result)) = ended.recv() => {
                if units.ended(&unit, generation) {
                    if let Err(e) = result {
                        tracing::error!(%unit, error = %e, "stopped with an error");
                        failed += 1;
                    }
                }
            }
        }
    }
    units.stop_all().await;
    if failed > 0 {
        anyhow::bail!("{failed} flow(s) or proxies stopped with errors");
    }
    Ok(())
}

/// Reads the config file again and applies it; a config that does not load or
/// validate is logged and changes nothing. Returns the config now in force.
async fn reload(reread: Option<&Reread>, current: &Config, units: &mut Units) -> Option<Config> {
    let Some(reread) = reread else {
        tracing::warn!("SIGHUP: no config file to read again (flows from the command line)");
        return None;
    };
    tracing::info!(config = %reread.path.display(), "SIGHUP: reading the config again");
    let next = match reread.load() {
        Ok(next) => next,
        Err(e) => {
            tracing::error!(error = %e, "config not reloaded; everything keeps running as it was");
            return None;
        }
    };
    if next.mirror.is_empty() && next.proxy.is_empty() {
        tracing::error!("config not reloaded: it has no [[mirror]] flows and no [[proxy]] entries; everything keeps running as it was");
        return None;
    }
    if next.metrics != current.metrics || next.tracing != current.tracing || next.log != current.log {
        tracing::warn!("[metrics], [tracing] and [log] take effect at the next start, not on SIGHUP");
    }
    match units.apply(&next).await {
        Ok(()) => {
            tracing::info!("config reloaded");
            Some(next)
        }
        Err(e) => {
            tracing::error!(error = %e, "config not reloaded; everything keeps running as it was");
            None
        }
    }
}
