//! The `strait` command line.

mod cli;

use anyhow::Context;
use clap::Parser;

fn main() -> std::process::ExitCode {
    match run(cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strait: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads the config first: it says whether spans are exported, which logging needs to
/// know when it starts.
fn run(args: cli::Cli) -> anyhow::Result<()> {
    let job = cli::prepare(args.command)?;
    let telemetry = job.span_export().map(cli::telemetry::Telemetry::start).transpose()?;
    let level = args.log_level.as_deref().or(job.log_level());
    cli::init_logging(&args.log_format, level, telemetry.as_ref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(cli::dispatch(job));
    // Outside the runtime, after every flow has stopped: their last spans go too.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    result
}
