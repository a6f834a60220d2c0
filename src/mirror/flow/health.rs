//! Whether a flow is doing its work, told truthfully: a partition with lag and no
//! progress for `stuck_after_secs` is stuck, one stopped by policy is stopped, and
//! either drops the flow's `up` to 0 and names the partition in `/readyz`. Lag stays
//! measured while a partition is not fetched (its forward stuck, or backing off): its
//! high watermark is then asked for on its own. A periodic log line says what the flow
//! copied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use tokio::task::{JoinError, JoinSet};

use crate::client::offsets::{list_offset, LATEST};
use crate::client::Cluster;
use crate::mirror::in_flight::Key;
use crate::mirror::metrics::{kind, FlowLabels, ForwardStats};
use crate::mirror::retry::LogThrottle;
use crate::mirror::settings::{FlowSettings, PartitionErrorPolicy};
use crate::mirror::MirrorError;

use super::{Flow, PartitionState};

/// How often health is judged.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A partition not fetched for this long has its high watermark asked for directly.
const PROBE_AFTER: Duration = Duration::from_secs(10);
/// Most partitions one probe asks about, one request each.
const PROBE_MAX: usize = 256;
/// How often a flow whose patterns match nothing says so again.
const NO_MATCH_EVERY: Duration = Duration::from_secs(300);

pub(super) type Probed = Result<Vec<(Key, i64)>, JoinError>;

/// Sets a flow's `up` gauge to 0 when the flow ends, by error, panic or stop.
pub(super) struct DownOnDrop(pub Gauge);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

pub(super) struct Health {
    stuck_after: Duration,
    progress_every: Option<Duration>,
    /// When health was last judged; `None` until the first time, which is at once.
    pub(super) checked: Option<Instant>,
    /// Since the last progress line.
    line_at: Instant,
    records: u64,
    bytes: u64,
    pub(super) errors: u64,
    pub(super) metadata_throttle: LogThrottle,
    no_match: LogThrottle,
    probes: JoinSet<Vec<(Key, i64)>>,
    probed: Instant,
}

impl Health {
    pub(super) fn new(cfg: &FlowSettings) -> Health {
        let now = Instant::now();
        Health {
            stuck_after: Duration::from_secs(cfg.stuck_after_secs),
            progress_every: (cfg.progress_log_secs > 0).then(|| Duration::from_secs(cfg.progress_log_secs)),
            checked: None,
            line_at: now,
            records: 0,
            bytes: 0,
            errors: 0,
            metadata_throttle: LogThrottle::new(Duration::from_secs(30)),
            no_match: LogThrottle::new(NO_MATCH_EVERY),
            probes: JoinSet::new(),
            probed: now,
        }
    }

    pub(super) fn copied(&mut self, stats: &ForwardStats) {
        self.records += stats.records;
        self.bytes += stats.bytes;
    }

    /// Says, now and again while it stays so, that the flow's patterns match nothing.
    pub(super) fn matched(&mut self, any: bool, cfg: &FlowSettings) {
        if any {
            return;
        }
        if self.no_match.allow().is_some() {
            tracing::warn!(flow = %cfg.name, topics = ?cfg.include.iter().map(|r| r.as_str()).collect::<Vec<_>>(), exclude = ?cfg.exclude.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "no source topic matches the flow's patterns; nothing to copy until one does");
        }
    }

    /// Asks the source for the high watermark of partitions not fetched lately.
    pub(super) fn start_probe_if_due(
        &mut self,
        source: &std::sync::Arc<Cluster>,
        partitions: &BTreeMap<Key, PartitionState>,
    ) {
        if !self.probes.is_empty() || self.probed.elapsed() < PROBE_AFTER {
            return;
        }
        self.probed = Instant::now();
        let quiet: Vec<Key> = partitions
            .iter()
            .filter(|(_, s)| s.fetched.elapsed() >= PROBE_AFTER)
            .map(|(k, _)| k.clone())
            .take(PROBE_MAX)
            .collect();
        if quiet.is_empty() {
            return;
        }
        let source = source.clone();
        self.probes.spawn(async move {
            let mut out = Vec::with_capacity(quiet.len());
            for key in quiet {
                if let Ok(hw) = list_offset(&source, &key.0, key.1, LATEST).await {
                    out.push((key, hw));
                }
            }
            out
        });
    }

    /// The probe under way, once it ends; `None` at once when none is.
    pub(super) async fn next_probe(&mut self) -> Option<Probed> {
        self.probes.join_next().await
    }
}

impl Flow {
    pub(super) fn on_probed(&mut self, probed: Probed) {
        let Ok(found) = probed else {
            return;
        };
        for (key, hw) in found {
            let Some(state) = self.partitions.get_mut(&key) else {
                continue;
            };
            state.high_watermark = hw;
            state.metrics.lag.set(state.lag());
        }
    }

    /// Stops a partition whose data cannot be copied, or the flow, by policy.
    pub(super) fn partition_failed(&mut self, key: &Key, detail: String) -> Result<(), MirrorError> {
        let error = MirrorError::PartitionStopped {
            flow: self.cfg.name.clone(),
            topic: key.0.clone(),
            partition: key.1,
            detail,
        };
        if self.cfg.on_partition_error == PartitionErrorPolicy::StopFlow {
            return Err(error);
        }
        self.metrics.error(&self.cfg.name, kind::PARTITION_STOPPED);
        tracing::error!(error = %error, "partition stopped (on_partition_error = \"stop_partition\"); the flow's other partitions go on, and a restart of the flow tries it again");
        if let Some(state) = self.partitions.get_mut(key) {
            state.stopped = Some(error.to_string());
            state.rewind();
        }
        Ok(())
    }

    /// Judges every partition, at most once a second: sets the flow's `up`, its stuck and
    /// stopped counts and the problems `/readyz` names; writes the progress line.
    pub(super) fn check_health(&mut self) {
        if self.health.checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return;
        }
        let since = self.health.checked.map(|t| t.elapsed().as_secs_f64());
        self.health.checked = Some(Instant::now());
        if let Some(secs) = since {
            self.measure_rates(secs);
        }
        let stuck_after = self.health.stuck_after;
        let mut problems = Vec::new();
        let (mut stuck, mut stopped, mut lag) = (0i64, 0i64, 0i64);
        for ((topic, partition), state) in self.partitions.iter_mut() {
            lag += state.lag();
            if state.lag() == 0 && !state.starting {
                state.progressed = Instant::now();
            }
            if let Some(why) = &state.stopped {
                stopped += 1;
                problems.push(format!("{topic}/{partition} stopped: {why}"));
                continue;
            }
            let idle = state.progressed.elapsed();
            let unanswered = state.answered.elapsed();
            let silent = !state.in_flight && !state.starting && unanswered >= stuck_after;
            let now_stuck = idle >= stuck_after || silent;
            if now_stuck {
                stuck += 1;
                let lag = state.lag();
                problems.push(if state.starting {
                    format!(
                        "{topic}/{partition} not started: its start offset not found for {}s",
                        idle.as_secs()
                    )
                } else if silent {
                    format!(
                        "{topic}/{partition} stuck: no answer from its leader for {}s",
                        unanswered.as_secs()
                    )
                } else {
                    format!(
                        "{topic}/{partition} stuck: lag {lag}, no progress for {}s",
                        idle.as_secs()
                    )
                });
            }
            if now_stuck != state.stuck {
                state.stuck = now_stuck;
                match now_stuck {
                    true => {
                        tracing::warn!(flow = %self.cfg.name, %topic, partition, lag = state.lag(), no_progress_secs = idle.as_secs(), in_flight = state.in_flight, "partition stuck: it has lag and made no progress")
                    }
                    false => tracing::info!(flow = %self.cfg.name, %topic, partition, "partition moving again"),
                }
            }
        }
        if self.assigned.is_none() {
            problems.push(format!(
                "no partitions yet: waiting for its share from the group {}",
                crate::mirror::progress::group(&self.cfg.name)
            ));
        }
        let flow = FlowLabels {
            flow: self.cfg.name.clone(),
        };
        self.metrics.partitions_stuck.get_or_create(&flow).set(stuck);
        self.metrics.partitions_stopped.get_or_create(&flow).set(stopped);
        self.metrics.up.get_or_create(&flow).set(i64::from(problems.is_empty()));
        self.metrics.set_problems(&self.cfg.name, problems);
        self.progress_line(lag);
    }

    /// Smooths each partition's acknowledged bytes per second over the last `secs`
    /// and reports them to the membership.
    fn measure_rates(&mut self, secs: f64) {
        let mut rates = BTreeMap::new();
        for (key, state) in self.partitions.iter_mut() {
            let bytes = state.metrics.bytes.get();
            let now = bytes.saturating_sub(state.rate_bytes) as f64 / secs.max(0.001);
            state.rate_bytes = bytes;
            state.rate = 0.8 * state.rate + 0.2 * now;
            rates.insert(key.clone(), state.rate as u64);
        }
        self.membership.report_rates(rates);
    }

    fn progress_line(&mut self, lag: i64) {
        let Some(every) = self.health.progress_every else {
            return;
        };
        let elapsed = self.health.line_at.elapsed();
        if elapsed < every {
            return;
        }
        let h = &mut self.health;
        let rate = h.records as f64 / elapsed.as_secs_f64();
        let mb_per_s = h.bytes as f64 / elapsed.as_secs_f64() / 1e6;
        tracing::info!(
            flow = %self.cfg.name,
            records = h.records,
            bytes = h.bytes,
            records_per_sec = format!("{rate:.0}"),
            mb_per_sec = format!("{mb_per_s:.2}"),
            lag,
            partitions = self.partitions.len(),
            errors = h.errors,
            "flow progress since the last line"
        );
        h.line_at = Instant::now();
        (h.records, h.bytes, h.errors) = (0, 0, 0);
    }
}
