//! Subcommands, one file each, and what they share: logging and shutdown signals.

mod check;
mod mirror;
mod probe;
mod proxy;
mod run;
mod units;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

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
}

pub fn init_logging(format: &LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRAIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check(args) => check::run(args),
        Command::Mirror(args) => mirror::run(*args).await,
        Command::Proxy(args) => proxy::run(*args).await,
        Command::Run(args) => run::run(args).await,
        Command::Probe(args) => probe::run(args).await,
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
