//! One flow: discovers the topics to copy, makes sure the target has them, and runs
//! rounds until told to stop. A round fetches every partition that has no forward under
//! way from its source leader (one request per broker, all brokers at once), starts
//! forwarding what came back, then commits the progress of the forwards the target has
//! acknowledged so far. A forward outlives its round, so one stuck target partition
//! stalls nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::forward::ForwardSettings;
use super::heartbeat;
use super::in_flight::{InFlight, Key};
use super::metrics::{kind, ErrorLabels, FlowLabels, MirrorMetrics, PartitionLabels};
use super::select::Held;
use super::topics::TopicFilter;
use super::MirrorError;
use crate::client::producer_id::{init_producer_id, ProducerIdentity};
use crate::client::{ClientError, Cluster};
use crate::config::MirrorConfig;

mod discover;
mod fetching;
mod forwarding;

struct PartitionState {
    target_topic: String,
    /// Next source offset whose data the target has not acknowledged: the progress.
    position: i64,
    /// Next source offset to fetch: past `position` while batches are held.
    fetch_position: i64,
    sequence: i32,
    held: Held,
    /// Whether a forward of this partition is under way: then it is not fetched.
    in_flight: bool,
}

impl PartitionState {
    /// Forgets what was fetched past the acknowledged position.
    fn rewind(&mut self) {
        self.fetch_position = self.position;
        self.held.clear();
    }
}

pub struct Flow {
    cfg: MirrorConfig,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    filter: TopicFilter,
    partitions: BTreeMap<Key, PartitionState>,
    producer: ProducerIdentity,
    settings: ForwardSettings,
    forwards: InFlight,
    metrics: MirrorMetrics,
    /// Set after the first discovery: partitions seen later were born after the flow
    /// began watching and are copied from their beginning, whatever `start` says.
    started: bool,
    /// Whether the last round brought data, advanced a partition, or left forwards under
    /// way: then fetches wait only briefly, so finished forwards are refetched soon.
    catching_up: bool,
}

/// How long a stopping flow lets its current round and its forwards finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs a flow until `shutdown` turns true; the round under way finishes first, so what
/// the target acknowledged is committed.
pub async fn run_flow(
    cfg: MirrorConfig,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    metrics: MirrorMetrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MirrorError> {
    let up = metrics.up.get_or_create(&FlowLabels { flow: cfg.name.clone() }).clone();
    let heartbeats = match cfg.heartbeat_interval_ms {
        0 => None,
        ms => {
            let ready = heartbeat::prepare(&source, &cfg.name).await;
            let failures = metrics.errors.get_or_create(&ErrorLabels {
                flow: cfg.name.clone(),
                kind: kind::HEARTBEAT.to_owned(),
            });
            let every = Duration::from_millis(ms);
            let beat = heartbeat::beat(source.clone(), cfg.name.clone(), every, ready, failures.clone());
            Some(tokio::spawn(beat))
        }
    };
    let result = async {
        let mut flow = Flow::start(cfg, source, target, metrics).await?;
        up.set(1);
        flow.run(&mut shutdown).await
    }
    .await;
    up.set(0);
    if let Some(task) = heartbeats {
        task.abort();
    }
    result
}

impl Flow {
    /// Rounds until `shutdown` turns true, then the forwards under way finish.
    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), MirrorError> {
        let refresh = Duration::from_secs(self.cfg.topic_refresh_secs);
        let mut discovered = Instant::now();
        while !*shutdown.borrow() {
            if discovered.elapsed() >= refresh {
                self.discover().await?;
                discovered = Instant::now();
            }
            if self.partitions.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let name = self.cfg.name.clone();
            let round = self.round();
            tokio::pin!(round);
            tokio::select! {
                r = &mut round => r?,
                _ = shutdown.changed() => {
                    match tokio::time::timeout(SHUTDOWN_GRACE, round).await {
                        Ok(r) => r?,
                        Err(_) => tracing::warn!(flow = %name, "round did not finish within the grace period; unacknowledged data will be copied again on restart"),
                    }
                }
            }
        }
        self.drain().await?;
        tracing::info!(flow = %self.cfg.name, "flow stopped");
        Ok(())
    }

    /// Whether a source topic is this flow's heartbeat topic, which it copies under the
    /// same name whatever its patterns and rename template say.
    fn is_heartbeat(&self, topic: &str) -> bool {
        self.cfg.heartbeat_interval_ms > 0 && topic == heartbeat::topic(&self.cfg.name)
    }

    fn labels(&self, key: &Key) -> PartitionLabels {
        PartitionLabels {
            flow: self.cfg.name.clone(),
            topic: key.0.clone(),
            partition: key.1,
        }
    }

    fn err(&self, source: ClientError) -> MirrorError {
        MirrorError::Client {
            flow: self.cfg.name.clone(),
            source: Box::new(source),
        }
    }

    async fn start(
        cfg: MirrorConfig,
        source: Arc<Cluster>,
        target: Arc<Cluster>,
        metrics: MirrorMetrics,
    ) -> Result<Flow, MirrorError> {
        let flow_err = |source| MirrorError::Client {
            flow: cfg.name.clone(),
            source: Box::new(source),
        };
        let producer = init_producer_id(&target).await.map_err(flow_err)?;
        let settings = ForwardSettings {
            compression: cfg.compression.codec(),
            level: cfg.compression_level,
            max_decompressed: cfg.max_decompressed_bytes,
            on_corrupt: cfg.on_corrupt_batch,
            produce_timeout_ms: cfg.produce_timeout_ms,
        };
        let in_flight = metrics
            .in_flight_bytes
            .get_or_create(&FlowLabels { flow: cfg.name.clone() })
            .clone();
        let mut flow = Flow {
            filter: TopicFilter::new(&cfg),
            cfg,
            source,
            target,
            partitions: BTreeMap::new(),
            producer,
            settings,
            forwards: InFlight::new(in_flight),
            metrics,
            started: false,
            catching_up: false,
        };
        tracing::info!(flow = %flow.cfg.name, source = flow.source.name(), target = flow.target.name(), producer_id = producer.id, "flow started");
        flow.discover().await?;
        flow.started = true;
        Ok(flow)
    }

    /// One round: fetch what has no forward under way, start forwarding it, commit the
    /// forwards that finished. With every partition in flight, or `max_in_flight_bytes`
    /// reached, fetches nothing and waits for a forward to finish (back-pressure).
    async fn round(&mut self) -> Result<(), MirrorError> {
        let full = self.forwards.bytes() >= self.cfg.max_in_flight_bytes as u64;
        let all_in_flight = full || self.partitions.values().all(|s| s.in_flight);
        let (fetched, mut stale) = if all_in_flight {
            (Vec::new(), false)
        } else {
            self.fetch_all().await?
        };
        let had_data = fetched.iter().any(|(_, p)| !p.records.is_empty());
        let mut advanced: Vec<(Key, i64)> = Vec::new();
        for (topic, p) in fetched {
            let key = (topic, p.partition);
            if !self.partitions.contains_key(&key) || !self.usable(&key, &p, &mut stale).await? {
                continue;
            }
            let Some((next, batches)) = self.take_decided(&key, &p)? else {
                continue;
            };
            if batches.is_empty() {
                advanced.push((key, next));
                continue;
            }
            self.start_forward(key, next, batches);
        }
        let fenced = self.collect_forwards(all_in_flight, &mut advanced).await?;
        // Partitions that just advanced are fetched next round and likely have more: a
        // broker holding its fetch for a long poll would hold them back.
        self.catching_up = had_data || !self.forwards.is_empty() || !advanced.is_empty();
        self.commit(&advanced).await?;
        if let Some(detail) = fenced {
            let flow = self.cfg.name.clone();
            tracing::warn!("{}", MirrorError::ProducerFenced { flow, detail });
            self.producer = init_producer_id(&self.target).await.map_err(|e| self.err(e))?;
            self.partitions.values_mut().for_each(|s| s.sequence = 0);
        }
        if stale {
            self.source.refresh(None).await.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn batch_err(&self, key: &Key, source: crate::wire::WireError) -> MirrorError {
        MirrorError::Batch {
            flow: self.cfg.name.clone(),
            topic: key.0.clone(),
            partition: key.1,
            source,
        }
    }
}
