//! `strait status`: what a running strait is doing, read from its metrics endpoint and
//! printed as a table: per flow its rate, lag, replication latency p99, heartbeat age
//! and state; per proxy its connections and request rate. `--watch` redraws it in
//! place, like `top`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Args)]
pub struct StatusArgs {
    /// The running strait's metrics endpoint (its --metrics or [metrics] listen).
    #[arg(
        long,
        env = "STRAIT_METRICS",
        default_value = "127.0.0.1:9464",
        value_name = "HOST:PORT"
    )]
    pub metrics: String,
    /// Redraw every few seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between the two scrapes a rate is measured over, and between redraws.
    #[arg(long, default_value_t = 2)]
    pub interval_secs: u64,
}

/// Largest answer read from the endpoint.
const MAX_ANSWER: usize = 64 << 20;
const DEADLINE: Duration = Duration::from_secs(5);

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let interval = Duration::from_secs(args.interval_secs.max(1));
    let mut before = Scrape::take(&args.metrics).await?;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let now = match Scrape::take(&args.metrics).await {
            Ok(now) => now,
            // Watching, a strait that restarts or a scrape that times out is shown, not
            // the end of the watch.
            Err(e) if args.watch => {
                print!("\x1b[2J\x1b[Hstrait at {}\n\n{e:#}\n", args.metrics);
                continue;
            }
            Err(e) => return Err(e),
        };
        let table = render(&args.metrics, &before, &now);
        if !args.watch {
            print!("{table}");
            return Ok(());
        }
        // Clear the screen and go home, then draw.
        print!("\x1b[2J\x1b[H{table}");
        before = now;
    }
}

/// One reading of the endpoint: every sample by metric name, with its labels.
struct Scrape {
    at: Instant,
    samples: Vec<Sample>,
}

struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Scrape {
    async fn take(addr: &str) -> anyhow::Result<Scrape> {
        let text = tokio::time::timeout(DEADLINE, get_metrics(addr))
            .await
            .with_context(|| format!("{addr} did not answer within {DEADLINE:?}"))??;
        Ok(Scrape {
            at: Instant::now(),
            samples: text.lines().filter_map(parse_sample).collect(),
        })
    }

    /// The sum of `name` over the samples whose labels include `with`.
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.matching(name, with).map(|s| s.value).sum()
    }

    fn matching<'a>(&'a self, name: &'a str, with: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The values of label `label` on samples of `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

async fn get_metrics(addr: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("no strait metrics endpoint at {addr} (start strait with --metrics {addr})"))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    (&mut stream).take(MAX_ANSWER as u64).read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").context("not an HTTP answer")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "{addr} answered {}",
        head.lines().next().unwrap_or("")
    );
    Ok(body.to_owned())
}

/// `name{a="x",b="y"} 1.5` as a sample; comments and anything else as `None`.
fn parse_sample(line: &str) -> Option<Sample> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        out.insert(key.trim_start_matches(',').to_owned(), after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// The p99 of a histogram's bucket counts (cumulative, by upper bound), in seconds.
fn p99(buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, count)| *count >= total * 0.99)
        .map(|(le, _)| *le)
}

fn latency_buckets(scrape: &Scrape, flow: &str) -> Vec<(f64, f64)> {
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in scrape.matching("strait_mirror_replication_latency_seconds_bucket", &[("flow", flow)]) {
        let le = match s.labels.get("le").map(String::as_str) {
            Some("+Inf") => f64::INFINITY,
            Some(v) => v.parse().unwrap_or(f64::INFINITY),
            None => continue,
        };
        by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += s.value;
    }
    let mut out: Vec<(f64, f64)> = by_le.into_values().collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The latency buckets of what arrived between the two scrapes, or of everything since
/// strait started when nothing did.
fn recent_buckets(before: &Scrape, now: &Scrape, flow: &str) -> Vec<(f64, f64)> {
    let (old, new) = (latency_buckets(before, flow), latency_buckets(now, flow));
    let delta: Vec<(f64, f64)> = new
        .iter()
        .map(|(le, count)| {
            let was = old.iter().find(|(l, _)| l == le).map_or(0.0, |b| b.1);
            (*le, count - was)
        })
        .collect();
    match delta.iter().any(|b| b.1 > 0.0) {
        true => delta,
        false => new,
    }
}

fn render(addr: &str, before: &Scrape, now: &Scrape) -> String {
    let dt = now.at.duration_since(before.at).as_secs_f64().max(0.001);
    let rate = |name: &str, with: &[(&str, &str)]| ((now.sum(name, with) - before.sum(name, with)) / dt).max(0.0);
    let mut out = format!("strait at {addr}\n\n");
    let flows = now.label_values("strait_mirror_up", "flow");
    if !flows.is_empty() {
        out += &format!(
            "{:<24} {:>12} {:>10} {:>12} {:>6} {:>10} {:>12}  {}\n",
            "FLOW", "RECORDS/S", "MB/S", "LAG", "PARTS", "P99", "HEARTBEAT", "STATE"
        );
    }
    for flow in &flows {
        let f = [("flow", flow.as_str())];
        let parts = now.matching("strait_mirror_lag_offsets", &f).count();
        let p99 = p99(&recent_buckets(before, now, flow)).map_or("-".to_owned(), seconds);
        let heartbeat = match now.sum("strait_mirror_heartbeat_timestamp_seconds", &f) {
            t if t > 0.0 => seconds(unix_now() - t) + " ago",
            _ => "-".to_owned(),
        };
        out += &format!(
            "{:<24} {:>12.0} {:>10.2} {:>12.0} {:>6} {:>10} {:>12}  {}\n",
            flow,
            rate("strait_mirror_records_total", &f),
            rate("strait_mirror_bytes_total", &f) / 1e6,
            now.sum("strait_mirror_lag_offsets", &f),
            parts,
            p99,
            heartbeat,
            flow_state(now, &f),
        );
    }
    let proxies = now.label_values("strait_proxy_up", "proxy");
    if !proxies.is_empty() {
        out += &format!(
            "\n{:<24} {:>12} {:>12} {:>10}  {}\n",
            "PROXY", "CONNECTIONS", "REQUESTS/S", "MB/S", "STATE"
        );
    }
    for proxy in &proxies {
        let p = [("proxy", proxy.as_str())];
        let up = now.sum("strait_proxy_up", &p) >= 1.0;
        out += &format!(
            "{:<24} {:>12.0} {:>12.0} {:>10.2}  {}\n",
            proxy,
            now.sum("strait_proxy_connections", &p),
            rate("strait_proxy_requests_total", &p),
            rate("strait_proxy_bytes_total", &p) / 1e6,
            if up { "running" } else { "down" },
        );
    }
    if flows.is_empty() && proxies.is_empty() {
        out += "no flows or proxies\n";
    }
    out
}

fn flow_state(now: &Scrape, f: &[(&str, &str)]) -> String {
    let stuck = now.sum("strait_mirror_partitions_stuck", f);
    let stopped = now.sum("strait_mirror_partitions_stopped", f);
    let mut parts = Vec::new();
    if stuck > 0.0 {
        parts.push(format!("{stuck:.0} stuck"));
    }
    if stopped > 0.0 {
        parts.push(format!("{stopped:.0} stopped"));
    }
    match (now.sum("strait_mirror_up", f) >= 1.0, parts.is_empty()) {
        (true, _) => "running".to_owned(),
        (false, true) => "down".to_owned(),
        (false, false) => parts.join(", "),
    }
}

fn seconds(s: f64) -> String {
    match s {
        s if s < 1.0 => format!("{:.0}ms", s * 1000.0),
        s if s < 120.0 => format!("{s:.1}s"),
        s => format!("{:.0}m", s / 60.0),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_and_p99_are_read_from_the_text_format() {
        let s = parse_sample(r#"strait_mirror_lag_offsets{flow="a",topic="t",partition="3"} 42"#).unwrap();
        assert_eq!((s.name.as_str(), s.value), ("strait_mirror_lag_offsets", 42.0));
        assert_eq!(s.labels["partition"], "3");
        assert!(parse_sample("# HELP x y").is_none());
        let buckets = [(0.001, 10.0), (0.002, 98.0), (0.004, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(p99(&buckets), Some(0.004));
        assert_eq!(p99(&[]), None);
    }
}
