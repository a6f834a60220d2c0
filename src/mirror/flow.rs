//! One flow: discovers the topics to copy, makes sure the target has them, and runs
//! rounds until told to stop. A round fetches every partition that has no forward under
//! way from its source leader (one request per broker, all brokers at once), starts
//! forwarding what came back, then commits the progress of the forwards the target has
//! acknowledged so far. A forward outlives its round, so one stuck target partition
//! stalls nothing else.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::forward::{ForwardError, ForwardSettings};
use super::heartbeat;
use super::in_flight::{Forwarded, InFlight, Key, Outgoing};
use super::metrics::{kind, ErrorLabels, FlowLabels, ForwardStats, MirrorMetrics, PartitionLabels};
use super::progress::{self, Progress};
use super::select::{select, Held};
use super::topics::TopicFilter;
use super::MirrorError;
use crate::client::admin;
use crate::client::error::{NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE};
use crate::client::fetch::{fetch, FetchOptions, FetchSpec, Isolation};
use crate::client::offsets::{list_offset, EARLIEST, LATEST};
use crate::client::producer_id::{init_producer_id, ProducerIdentity};
use crate::client::{ClientError, Cluster, KafkaCode};
use crate::config::{IsolationChoice, MirrorConfig, OutOfRangePolicy, StartChoice};
use crate::wire::batch::Batch;
use crate::wire::fetch::{FetchPartition, FetchResponse};

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
    /// Whether the last round brought data or forwards are under way: then fetches wait
    /// only briefly, so finished forwards are committed and refetched soon.
    catching_up: bool,
}

/// How long brokers may hold a fetch while the flow is catching up.
const CATCH_UP_WAIT_MS: i32 = 10;

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

    fn in_flight_bytes(&self) -> prometheus_client::metrics::gauge::Gauge {
        let flow = FlowLabels {
            flow: self.cfg.name.clone(),
        };
        self.metrics.in_flight_bytes.get_or_create(&flow).clone()
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
        let mut flow = Flow {
            filter: TopicFilter::new(&cfg),
            cfg,
            source,
            target,
            partitions: BTreeMap::new(),
            producer,
            settings,
            forwards: InFlight::default(),
            metrics,
            started: false,
            catching_up: false,
        };
        tracing::info!(flow = %flow.cfg.name, source = flow.source.name(), target = flow.target.name(), producer_id = producer.id, "flow started");
        flow.discover().await?;
        flow.started = true;
        Ok(flow)
    }

    /// Picks up matching source topics and new partitions of known ones.
    async fn discover(&mut self) -> Result<(), MirrorError> {
        let meta = self.source.refresh(None).await.map_err(|e| self.err(e))?;
        let mut topics: Vec<_> = meta
            .topics
            .values()
            .filter(|t| t.error().is_none() && (self.is_heartbeat(&t.name) || self.filter.selects(&t.name, t.internal)))
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        for topic in topics {
            let known = self.partitions.keys().filter(|(t, _)| *t == topic.name).count();
            if known == topic.partitions.len() {
                continue;
            }
            let target_topic = match self.is_heartbeat(&topic.name) {
                true => topic.name.clone(),
                false => self.filter.target_name(&topic.name),
            };
            let count = topic.partitions.len();
            let ready = match self.ensure_target(&topic.name, &target_topic, count).await {
                Ok(()) => self.add_partitions(&topic.name, &target_topic, count as i32).await,
                Err(e) => Err(e),
            };
            if let Err(e) = ready {
                // One topic's trouble must not stop the others; the next refresh retries.
                tracing::error!(error = %e, retry_in_secs = self.cfg.topic_refresh_secs, "topic not mirrored");
            }
        }
        Ok(())
    }

    /// Makes sure the target topic exists with at least `count` partitions.
    async fn ensure_target(&self, source_topic: &str, target_topic: &str, count: usize) -> Result<(), MirrorError> {
        let meta = self
            .target
            .refresh(Some(&[target_topic.to_owned()]))
            .await
            .map_err(|e| self.err(e))?;
        let existing = meta
            .topics
            .get(target_topic)
            .filter(|t| t.error().is_none())
            .map(|t| t.partitions.len());
        let too_small = |have| MirrorError::TargetTooSmall {
            flow: self.cfg.name.clone(),
            source_topic: source_topic.to_owned(),
            target_topic: target_topic.to_owned(),
            source_count: count,
            target: have,
        };
        match existing {
            Some(have) if have >= count => return Ok(()),
            Some(have) if !self.cfg.create_topics => return Err(too_small(have)),
            Some(have) => {
                tracing::info!(flow = %self.cfg.name, %target_topic, from = have, to = count, "adding partitions to target topic");
                if let Err(e) = admin::create_partitions(&self.target, target_topic, count as i32).await {
                    tracing::warn!(flow = %self.cfg.name, %target_topic, error = %e, "the target did not add partitions");
                    return Err(too_small(have));
                }
            }
            None if !self.cfg.create_topics => {
                return Err(MirrorError::TargetMissing {
                    flow: self.cfg.name.clone(),
                    source_topic: source_topic.to_owned(),
                    target_topic: target_topic.to_owned(),
                })
            }
            None => self.create_target(source_topic, target_topic, count).await?,
        }
        let have = self.await_target(target_topic, count).await?;
        if have < count {
            return Err(too_small(have));
        }
        Ok(())
    }

    async fn create_target(&self, source_topic: &str, target_topic: &str, count: usize) -> Result<(), MirrorError> {
        if !admin::can_create_topics(&self.target).await.map_err(|e| self.err(e))? {
            tracing::warn!(flow = %self.cfg.name, %target_topic, "target cluster cannot create topics by API (no CreateTopics); relying on its auto-creation with its default partition count");
            return admin::auto_create_topic(&self.target, target_topic)
                .await
                .map_err(|e| self.err(e));
        }
        let configs: Vec<(String, String)> = match admin::topic_configs(&self.source, source_topic).await {
            Ok(c) => c
                .into_iter()
                .filter(|(k, _)| !self.cfg.exclude_configs.contains(k))
                .collect(),
            Err(e) => {
                tracing::warn!(flow = %self.cfg.name, %source_topic, error = %e, "cannot read source topic configs; creating the target topic with the target's defaults");
                Vec::new()
            }
        };
        let rf = self.cfg.replication_factor;
        let created = match admin::create_topic(&self.target, target_topic, count as i32, rf, &configs).await {
            Ok(created) => created,
            Err(e) if !configs.is_empty() => {
                tracing::warn!(flow = %self.cfg.name, %target_topic, error = %e, "target refused the source's topic configs; creating it with the target's defaults");
                admin::create_topic(&self.target, target_topic, count as i32, rf, &[])
                    .await
                    .map_err(|e| self.err(e))?
            }
            Err(e) => return Err(self.err(e)),
        };
        if created {
            tracing::info!(flow = %self.cfg.name, %source_topic, %target_topic, partitions = count, configs = configs.len(), "created target topic");
        }
        Ok(())
    }

    /// Waits until the target's metadata shows the topic with leaders for all partitions;
    /// returns the partition count it shows.
    async fn await_target(&self, target_topic: &str, count: usize) -> Result<usize, MirrorError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let meta = self
                .target
                .refresh(Some(&[target_topic.to_owned()]))
                .await
                .map_err(|e| self.err(e))?;
            let topic = meta.topics.get(target_topic).filter(|t| t.error().is_none());
            let have = topic.map_or(0, |t| t.partitions.len());
            let ready = topic.is_some_and(|t| have >= count && t.partitions.iter().all(|p| p.leader >= 0));
            if ready || Instant::now() > deadline {
                return Ok(have);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn add_partitions(&mut self, source_topic: &str, target_topic: &str, count: i32) -> Result<(), MirrorError> {
        let new: Vec<i32> = (0..count)
            .filter(|p| !self.partitions.contains_key(&(source_topic.to_owned(), *p)))
            .collect();
        let keys: Vec<(String, i32)> = new.iter().map(|p| (target_topic.to_owned(), *p)).collect();
        let committed = progress::load(&self.target, &self.cfg.name, &keys)
            .await
            .map_err(|e| self.err(e))?;
        for p in new {
            let position = match committed.get(&(target_topic.to_owned(), p)) {
                Some(offset) => *offset,
                None => {
                    let at = match self.cfg.start {
                        StartChoice::Latest if !self.started => LATEST,
                        _ => EARLIEST,
                    };
                    list_offset(&self.source, source_topic, p, at)
                        .await
                        .map_err(|e| self.err(e))?
                }
            };
            tracing::info!(flow = %self.cfg.name, topic = %source_topic, partition = p, %target_topic, position, resumed = committed.contains_key(&(target_topic.to_owned(), p)), "partition assigned");
            self.partitions.insert(
                (source_topic.to_owned(), p),
                PartitionState {
                    target_topic: target_topic.to_owned(),
                    position,
                    fetch_position: position,
                    sequence: 0,
                    held: Held::default(),
                    in_flight: false,
                },
            );
        }
        Ok(())
    }

    fn fetch_options(&self) -> FetchOptions {
        // All brokers of a round are awaited together: while catching up, a broker with
        // nothing new must not hold the others back for a whole long poll.
        let max_wait_ms = if self.catching_up {
            self.cfg.fetch_max_wait_ms.min(CATCH_UP_WAIT_MS)
        } else {
            self.cfg.fetch_max_wait_ms
        };
        FetchOptions {
            max_wait_ms,
            min_bytes: 1,
            max_bytes: self.cfg.fetch_max_bytes,
            partition_max_bytes: self.cfg.partition_max_bytes,
            isolation: match self.cfg.isolation {
                IsolationChoice::ReadCommitted => Isolation::ReadCommitted,
                IsolationChoice::ReadUncommitted => Isolation::ReadUncommitted,
            },
        }
    }

    /// Fetches every partition from its leader, all leaders at once.
    async fn fetch_all(&self) -> Result<(Vec<(String, FetchPartition)>, bool), MirrorError> {
        let mut by_leader: HashMap<i32, Vec<FetchSpec>> = HashMap::new();
        let mut stale = false;
        for ((topic, partition), state) in self.partitions.iter().filter(|(_, s)| !s.in_flight) {
            match self.source.metadata().leader(topic, *partition) {
                Some(leader) => by_leader.entry(leader).or_default().push(FetchSpec {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: state.fetch_position,
                }),
                None => stale = true,
            }
        }
        let options = self.fetch_options();
        let mut fetches = JoinSet::new();
        for (leader, specs) in by_leader {
            // Spans are at debug level, so with export off and the usual log filter they
            // cost a callsite check. Counts go out as i64: the OpenTelemetry layer
            // exports unsigned ones as text.
            let span = tracing::debug_span!(
                "fetch",
                flow = %self.cfg.name,
                broker = leader,
                partitions = specs.len() as i64,
                bytes = tracing::field::Empty,
            );
            fetches.spawn(fetch_from(self.source.clone(), leader, specs, options).instrument(span));
        }
        let mut out = Vec::new();
        while let Some(joined) = fetches.join_next().await {
            match joined.expect("fetch task panicked") {
                Ok(response) => {
                    for topic in response.topics {
                        out.extend(topic.partitions.into_iter().map(|p| (topic.name.clone(), p)));
                    }
                }
                Err(e) if e.is_retriable() => {
                    self.metrics.error(&self.cfg.name, kind::FETCH);
                    tracing::warn!(flow = %self.cfg.name, error = %e, "fetch failed; retrying after a metadata refresh");
                    stale = true;
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok((out, stale))
    }

    /// One round: fetch what has no forward under way, start forwarding it, commit the
    /// forwards that finished. With every partition in flight, waits for one to finish.
    async fn round(&mut self) -> Result<(), MirrorError> {
        let all_in_flight = self.partitions.values().all(|s| s.in_flight);
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
        self.catching_up = had_data || !self.forwards.is_empty();
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

    /// Whether a fetched partition carries data; handles its error code otherwise.
    async fn usable(&mut self, key: &Key, p: &FetchPartition, stale: &mut bool) -> Result<bool, MirrorError> {
        let code = KafkaCode(p.error_code);
        if p.error_code == 0 {
            let position = self.partitions[key].position;
            self.metrics
                .lag
                .get_or_create(&self.labels(key))
                .set((p.high_watermark - position).max(0));
            return Ok(true);
        }
        self.metrics.error(&self.cfg.name, kind::FETCH_PARTITION);
        match p.error_code {
            OFFSET_OUT_OF_RANGE => {
                self.metrics.error(&self.cfg.name, kind::OUT_OF_RANGE);
                self.out_of_range(key, p).await?
            }
            NOT_LEADER_OR_FOLLOWER => *stale = true,
            _ if code.is_retriable() => {
                *stale = true;
                tracing::debug!(flow = %self.cfg.name, topic = %key.0, partition = key.1, %code, "fetch error; refreshing metadata");
            }
            _ => tracing::error!(flow = %self.cfg.name, topic = %key.0, partition = key.1, %code, "fetch refused"),
        }
        Ok(false)
    }

    /// Sorts fetched batches into the partition's held set and takes out what is decided:
    /// the progress after it and the batches to forward.
    fn take_decided(&mut self, key: &Key, p: &FetchPartition) -> Result<Option<(i64, Vec<Batch>)>, MirrorError> {
        let isolation = self.fetch_options().isolation;
        let max_held = self.cfg.transaction_hold_bytes;
        let state = self.partitions.get_mut(key).expect("checked by the caller");
        let selection = match select(
            p.records.clone(),
            state.fetch_position,
            &p.aborted,
            isolation,
            &mut state.held,
            max_held,
        ) {
            Ok(s) => s,
            Err(e) => return Err(self.batch_err(key, e)),
        };
        if let Some(from) = selection.fetch_from {
            state.fetch_position = from;
        }
        Ok(selection.next_offset.map(|next| (next, selection.batches)))
    }

    /// Starts stamping a partition's batches with the flow's producer and producing them.
    fn start_forward(&mut self, key: Key, next: i64, batches: Vec<Batch>) {
        let Some(state) = self.partitions.get_mut(&key) else {
            return;
        };
        state.in_flight = true;
        let stats = ForwardStats::of(&batches);
        let span = tracing::debug_span!(
            "forward",
            flow = %self.cfg.name,
            topic = %key.0,
            partition = key.1,
            target_topic = %state.target_topic,
            batches = batches.len() as i64,
            records = stats.records as i64,
            bytes = stats.bytes as i64,
        );
        let outgoing = Outgoing {
            target_topic: state.target_topic.clone(),
            sequence: state.sequence,
            stats,
            key,
            batches,
            next,
            producer: self.producer,
            settings: self.settings,
            span,
        };
        self.in_flight_bytes().inc_by(outgoing.stats.bytes as i64);
        let retries = self.metrics.errors.get_or_create(&ErrorLabels {
            flow: self.cfg.name.clone(),
            kind: kind::PRODUCE_RETRY.to_owned(),
        });
        self.forwards.start(self.target.clone(), outgoing, retries.clone());
    }

    /// Takes the forwards that finished (with `wait`, at least one): acknowledged
    /// partitions join `advanced`, the others are rewound to fetch again. Returns why the
    /// target fenced the current producer, if it did.
    async fn collect_forwards(
        &mut self,
        wait: bool,
        advanced: &mut Vec<(Key, i64)>,
    ) -> Result<Option<String>, MirrorError> {
        let mut fenced = None;
        for done in self.forwards.finished(wait).await {
            let Forwarded {
                key,
                next,
                next_sequence,
                producer,
                stats,
                result,
            } = done;
            self.in_flight_bytes().dec_by(stats.bytes as i64);
            if result.is_ok() {
                stats.record(&self.metrics, &self.labels(&key));
                if self.is_heartbeat(&key.0) {
                    let flow = FlowLabels {
                        flow: self.cfg.name.clone(),
                    };
                    stats.record_heartbeat(&self.metrics, &flow);
                }
            }
            let current = producer == self.producer;
            let Some(state) = self.partitions.get_mut(&key) else {
                continue;
            };
            state.in_flight = false;
            match result {
                Ok(()) => {
                    // Batches of a producer replaced meanwhile were acknowledged, but the
                    // new producer's sequence for this partition starts from zero.
                    if current {
                        state.sequence = next_sequence;
                    }
                    advanced.push((key, next));
                }
                Err(e) => {
                    state.rewind();
                    match e {
                        ForwardError::Fenced(detail) if current => {
                            self.metrics.error(&self.cfg.name, kind::FENCED);
                            fenced = Some(detail);
                        }
                        ForwardError::Fenced(_) => {}
                        ForwardError::Batch(e) => return Err(self.batch_err(&key, e)),
                        ForwardError::Refused(detail) => {
                            self.metrics.error(&self.cfg.name, kind::PRODUCE_REFUSED);
                            tracing::error!(flow = %self.cfg.name, topic = %key.0, partition = key.1, %detail, "target refused data; retrying next round");
                        }
                    }
                }
            }
        }
        Ok(fenced)
    }

    /// Lets the forwards under way finish within the grace period and commits what the
    /// target acknowledged; the rest is copied again after a restart.
    async fn drain(&mut self) -> Result<(), MirrorError> {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut advanced = Vec::new();
        while !self.forwards.is_empty() {
            let finished = tokio::time::timeout_at(deadline, self.collect_forwards(true, &mut advanced)).await;
            match finished {
                Ok(result) => {
                    result?;
                }
                Err(_) => {
                    tracing::warn!(flow = %self.cfg.name, "forwards did not finish within the grace period; their data will be copied again on restart");
                    self.forwards.abandon();
                    break;
                }
            }
        }
        self.commit(&advanced).await
    }

    async fn commit(&mut self, advanced: &[(Key, i64)]) -> Result<(), MirrorError> {
        if advanced.is_empty() {
            return Ok(());
        }
        let progress: Vec<Progress<'_>> = advanced
            .iter()
            .filter_map(|((topic, partition), next)| {
                let state = self.partitions.get(&(topic.clone(), *partition))?;
                Some(Progress {
                    target_topic: &state.target_topic,
                    source_topic: topic,
                    partition: *partition,
                    next_offset: *next,
                })
            })
            .collect();
        let span = tracing::debug_span!("commit", flow = %self.cfg.name, partitions = progress.len() as i64);
        progress::commit(&self.target, &self.cfg.name, self.source.name(), &progress)
            .instrument(span)
            .await
            .map_err(|e| self.err(e))?;
        for (key, next) in advanced {
            if let Some(state) = self.partitions.get_mut(key) {
                state.position = *next;
            }
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

    /// The source deleted data under strait's position: say how much, then follow policy.
    async fn out_of_range(&mut self, key: &Key, p: &FetchPartition) -> Result<(), MirrorError> {
        let position = self.partitions[key].position;
        let log_start = list_offset(&self.source, &key.0, key.1, EARLIEST)
            .await
            .map_err(|e| self.err(e))?;
        let lost = (log_start - position).max(0);
        let error = MirrorError::OutOfRange {
            flow: self.cfg.name.clone(),
            topic: key.0.clone(),
            partition: key.1,
            position,
            log_start,
            lost,
        };
        let new_position = match self.cfg.on_offset_out_of_range {
            OutOfRangePolicy::Fail => return Err(error),
            OutOfRangePolicy::Earliest => log_start,
            OutOfRangePolicy::Latest => list_offset(&self.source, &key.0, key.1, LATEST)
                .await
                .map_err(|e| self.err(e))?,
        };
        tracing::error!(error = %error, high_watermark = p.high_watermark, new_position, "source offset out of range; continuing per on_offset_out_of_range");
        self.commit(&[(key.clone(), new_position)]).await?;
        if let Some(state) = self.partitions.get_mut(key) {
            state.rewind();
        }
        Ok(())
    }
}

/// One fetch request to one broker. Its span learns how many record bytes came back,
/// counted only when someone collects the span.
async fn fetch_from(
    source: Arc<Cluster>,
    leader: i32,
    specs: Vec<FetchSpec>,
    options: FetchOptions,
) -> Result<FetchResponse, ClientError> {
    let conn = source.broker(leader).await?;
    let response = fetch(&conn, &specs, &options).await.map_err(|e| source.net_error(e))?;
    let span = tracing::Span::current();
    if !span.is_disabled() {
        let records = response.topics.iter().flat_map(|t| &t.partitions);
        span.record("bytes", records.map(|p| p.records.len() as i64).sum::<i64>());
    }
    Ok(response)
}
