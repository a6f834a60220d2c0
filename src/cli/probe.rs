//! `strait probe`: produce timestamped records on one cluster, read them on another,
//! print a line per second and a percentile summary.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use strait::client::Cluster;
use strait::config::{self, ClusterConfig};
use strait::mirror::topics::TopicFilter;
use strait::probe::{run_probe, ProbeSettings, Summary, Tick};

#[derive(Args)]
pub struct ProbeArgs {
    /// Where probe records are produced: bootstrap servers (comma separated), or a
    /// cluster name from --config.
    #[arg(long, env = "STRAIT_SOURCE", value_delimiter = ',', required = true)]
    pub source: Vec<String>,
    /// Where they are read back: bootstrap servers, or a cluster name from --config.
    #[arg(long, env = "STRAIT_TARGET", value_delimiter = ',', required = true)]
    pub target: Vec<String>,
    /// A config file whose [clusters.NAME] sections (TLS, SASL, address maps) --source
    /// and --target name.
    #[arg(long, short, env = "STRAIT_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Topic on the source, which the replicator must copy; created with one partition
    /// if missing.
    #[arg(long, env = "STRAIT_PROBE_TOPIC", default_value = "strait-probe")]
    pub topic: String,
    /// The topic's name on the target, if the replicator renames it.
    #[arg(long, env = "STRAIT_PROBE_TARGET_TOPIC")]
    pub target_topic: Option<String>,
    /// How long to send (e.g. 30s, 5m, 1h); until interrupted when absent.
    #[arg(long, env = "STRAIT_PROBE_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Time between probe records (e.g. 100ms).
    #[arg(long, env = "STRAIT_PROBE_INTERVAL", default_value = "100ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to wait for records still under way once sending stops.
    /// The default covers a mirror's default topic_refresh_secs (10) plus the copy, so
    /// a probe topic new to a running mirror is found on the first run.
    #[arg(long, env = "STRAIT_PROBE_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub grace: Duration,
}

/// `500ms`, `30s`, `5m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, such as 30s"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(duration)
}

fn cluster(role: &str, given: &[String], file: Option<&config::Config>) -> anyhow::Result<Arc<Cluster>> {
    let Some(file) = file else {
        return Ok(config::connect_cluster(role, &ClusterConfig::new(given.to_vec()))?);
    };
    let name = given.join(",");
    let Some(c) = file.clusters.get(&name) else {
        anyhow::bail!("--{role} {name}: the config has no [clusters.{name}] section");
    };
    Ok(config::connect_cluster(&name, c)?)
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

fn tick_line(t: &Tick, duration: Option<Duration>, terminal: bool) -> String {
    let latency = t.last_second.map_or("no records this second".to_owned(), |p| {
        format!("p50 {} p99 {} max {}", ms(p.p50), ms(p.p99), ms(p.max))
    });
    let line = format!(
        "{:>5}s  sent {}  received {}  {latency}",
        t.elapsed.as_secs(),
        t.sent,
        t.received
    );
    match duration.filter(|_| terminal) {
        Some(d) => {
            let done = (t.elapsed.as_secs_f64() / d.as_secs_f64()).min(1.0);
            let bar = (done * 20.0) as usize;
            format!("[{}{}] {line}", "#".repeat(bar), " ".repeat(20 - bar))
        }
        None => line,
    }
}

fn summary_text(topic: &str, target_topic: &str, s: &Summary) -> String {
    let mut text = format!(
        "probe {topic} -> {target_topic}: sent {}, received {}, missing {}, duplicates {}, send errors {}\n",
        s.sent,
        s.received,
        s.missing(),
        s.duplicates,
        s.send_errors
    );
    if let Some(p) = s.latency {
        text += &format!(
            "latency p50 {}  p90 {}  p99 {}  max {}\n",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        );
    }
    text
}

pub async fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let file = args.config.as_deref().map(config::load).transpose()?;
    let source = cluster("source", &args.source, file.as_ref())?;
    let target = cluster("target", &args.target, file.as_ref())?;
    let args_clusters = (args.source.join(","), args.target.join(","));
    let settings = ProbeSettings {
        target_topic: args.target_topic.clone().unwrap_or_else(|| args.topic.clone()),
        topic: args.topic,
        duration: args.duration,
        interval: args.interval,
        grace: args.grace,
    };
    let terminal = std::io::stdout().is_terminal();
    let show = |t: &Tick| {
        let line = tick_line(t, settings.duration, terminal);
        let mut out = std::io::stdout().lock();
        // In a terminal the line is redrawn in place; in a pipe or a log, one per second.
        let _ = if terminal {
            write!(out, "\r\x1b[2K{line}")
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    };
    let summary = run_probe(source, target.clone(), settings.clone(), super::shutdown_signal(), show).await?;
    if terminal {
        println!();
    }
    print!("{}", summary_text(&settings.topic, &settings.target_topic, &summary));
    if summary.sent == 0 {
        anyhow::bail!("no probe record could be sent to the source");
    }
    if summary.missing() > 0 {
        // With a config, --source and --target name its clusters.
        let clusters = file
            .as_ref()
            .map(|f| (f, args_clusters.0.as_str(), args_clusters.1.as_str()));
        for hint in why_missing(&summary, &settings, &target, clusters).await {
            println!("why: {hint}");
        }
        anyhow::bail!(
            "{} of {} probe records did not reach {} within {:?} after sending stopped",
            summary.missing(),
            summary.sent,
            settings.target_topic,
            settings.grace
        );
    }
    Ok(())
}

/// What the probe can tell about why records did not arrive: the target topic missing,
/// no flow of the config copying the topic (or copying it under another name), nothing
/// arriving at all.
async fn why_missing(
    s: &Summary,
    settings: &ProbeSettings,
    target: &Cluster,
    config: Option<(&config::Config, &str, &str)>,
) -> Vec<String> {
    let mut hints = Vec::new();
    let (topic, target_topic) = (&settings.topic, &settings.target_topic);
    let exists = match target.refresh(Some(std::slice::from_ref(target_topic))).await {
        Ok(meta) => meta.topics.get(target_topic).is_some_and(|t| t.error().is_none()),
        Err(_) => true,
    };
    if !exists {
        hints.push(format!(
            "the target has no topic {target_topic}: no replicator copied {topic} there. If yours renames topics, give the target's name with --target-topic"
        ));
    }
    if let Some((file, source, target)) = config {
        hints.extend(flows_copying(file, (source, target), topic, target_topic));
    }
    if s.received == 0 {
        hints.push(format!(
            "none of the {} records arrived: is a replicator running from the source to the target, and does it copy {topic}?",
            s.sent
        ));
    }
    hints
}

/// What the config's flows do with the probe topic, when none copies it to the target
/// topic the probe reads.
fn flows_copying(file: &config::Config, clusters: (&str, &str), topic: &str, target_topic: &str) -> Vec<String> {
    let mut copies = Vec::new();
    for m in file
        .mirror
        .iter()
        .filter(|m| (m.source.as_str(), m.target.as_str()) == clusters)
    {
        let Ok(flow) = config::flow_settings(m) else { continue };
        let filter = TopicFilter::new(&flow);
        if filter.selects(topic, false) {
            copies.push((m.name.clone(), filter.target_name(topic)));
        }
    }
    if copies.is_empty() {
        let (from, to) = clusters;
        return vec![format!(
            "no flow in the config copies {topic} from {from} to {to}: add it to a flow's topics"
        )];
    }
    if copies.iter().any(|(_, t)| t == target_topic) {
        return Vec::new();
    }
    copies
        .into_iter()
        .map(|(flow, t)| format!("flow {flow} copies {topic} to {t}: use --target-topic {t}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_a_positive_number() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("30").unwrap_err().contains("unit"));
        assert!(parse_duration("0s").unwrap_err().contains("more than zero"));
        assert!(parse_duration("s").unwrap_err().contains("a number"));
    }
}
