//! Subcommands, one file each, and what they share: logging and shutdown signals.

mod check;
mod flags;
mod mirror;
mod probe;
mod proxy;
mod run;
mod status;
pub mod telemetry;
mod units;

use clap::{Parser, Subcommand, ValueEnum};
use strait::config::{Config, TracingConfig};
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

#[derive(Parser)]
#[command(
    name = "strait",
    version,
    about = "Kafka replicator and proxy that forwards record batches byte for byte"
)]
pub struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "STRAIT_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What the log shows: error, warn, info, debug (a line per fetch, forward and
    /// commit) or trace, or a filter such as info,strait::mirror=debug. Overrides
    /// [log] level in the config. Default info.
    #[arg(long, global = true, env = "STRAIT_LOG", value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate a config file and print what it would run.
    Check(check::CheckArgs),
    /// Replicate topics from one cluster to another (one flow, no config file).
    Mirror(Box<mirror::MirrorArgs>),
    /// Stand in front of a cluster and rewrite the broker addresses it advertises.
    Proxy(Box<proxy::ProxyArgs>),
    /// Run every flow and proxy of a config file until SIGINT or SIGTERM.
    Run(run::RunArgs),
    /// Measure replication latency: produce timestamped records on one cluster, read
    /// them back on another.
    Probe(probe::ProbeArgs),
    /// Show what a running strait is doing: per flow its rate, lag, latency and state,
    /// per proxy its connections, from its metrics endpoint.
    Status(status::StatusArgs),
}

/// What `main` runs. Flows and proxies come as a validated config, read before logging
/// starts because it may name a span collector.
pub enum Job {
    Check(check::CheckArgs),
    Probe(probe::ProbeArgs),
    Status(status::StatusArgs),
    /// With the way to read the config again on SIGHUP when it came from a file.
    Serve(Box<Config>, Option<run::Reread>),
}

impl Job {
    /// The log level the config asks for, if any.
    pub fn log_level(&self) -> Option<&str> {
        match self {
            Job::Serve(config, _) => config.log.level.as_deref(),
            Job::Check(_) | Job::Probe(_) | Job::Status(_) => None,
        }
    }

    /// The tracing settings when spans are to be exported.
    pub fn span_export(&self) -> Option<&TracingConfig> {
        match self {
            Job::Serve(config, _) => Some(&config.tracing).filter(|t| t.otlp_endpoint.is_some()),
            Job::Check(_) | Job::Probe(_) | Job::Status(_) => None,
        }
    }
}

pub fn prepare(command: Command) -> anyhow::Result<Job> {
    Ok(match command {
        Command::Check(args) => Job::Check(args),
        Command::Probe(args) => Job::Probe(args),
        Command::Status(args) => Job::Status(args),
        Command::Mirror(args) => Job::Serve(Box::new(mirror::to_config(*args)?), None),
        Command::Proxy(args) => Job::Serve(Box::new(proxy::to_config(*args)?), None),
        Command::Run(args) => {
            let reread = run::Reread::from(args);
            Job::Serve(Box::new(reread.load()?), Some(reread))
        }
    })
}

/// Logs to stderr at `level` (the flag's or the config's, default info); with
/// `telemetry`, strait's spans also go to the collector whatever the level says, since
/// each layer has its own filter.
pub fn init_logging(
    format: &LogFormat,
    level: Option<&str>,
    telemetry: Option<&telemetry::Telemetry>,
) -> anyhow::Result<()> {
    let level = level.unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| {
        anyhow::anyhow!("--log-level {level:?}: expected a level or a filter such as info,strait=debug ({e})")
    })?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt = match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    };
    let mut layers = vec![fmt];
    layers.extend(telemetry.map(telemetry::Telemetry::layer));
    tracing_subscriber::registry().with(layers).init();
    Ok(())
}

pub async fn dispatch(job: Job) -> anyhow::Result<()> {
    match job {
        Job::Check(args) => check::run(args),
        Job::Probe(args) => probe::run(args).await,
        Job::Status(args) => status::run(args).await,
        Job::Serve(config, reread) => run::run_config(*config, reread).await,
    }
}

/// Turns true on the first SIGINT or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping: finishing in-flight data and committing progress");
        let _ = tx.send(true);
    });
    rx
}
