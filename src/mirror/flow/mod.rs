//! One flow: discovers the topics to copy, makes sure the target has them, and moves
//! data until told to stop. Each source broker is fetched on its own, one request in
//! flight per connection to it, so a slow or silent broker holds back only its own
//! partitions;
//! what a fetch brings is forwarded at once, and a forward outlives the fetch that
//! started it, so one stuck target partition stalls nothing else either; a partition
//! is fetched again while its forward is under way, so at distance fetching and
//! producing overlap. Progress is committed in the background for the forwards the
//! target acknowledged. Every byte between fetch and acknowledgement counts in the
//! flow's in-flight bound.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::budget::Budget;
use super::forward::ForwardSettings;
use super::heartbeat;
use super::in_flight::{InFlight, Key};
use super::metrics::{kind, ErrorLabels, FlowLabels, MirrorMetrics, PartitionHandles, PartitionLabels};
use super::queued::Queued;
use super::retry::Backoff;
use super::select::Held;
use super::topics::TopicFilter;
use super::MirrorError;
use crate::client::group_member::Generation;
use crate::client::producer_id::{init_producer_id, ProducerIdentity};
use crate::client::{ClientError, Cluster};
use crate::mirror::membership::{Membership, Next};
use crate::mirror::settings::FlowSettings;

mod assigned;
mod committing;
mod discover;
mod fetching;
mod forwarding;
mod health;
mod refresh;
mod starting;

use committing::{Commits, Committed};
use fetching::{Fetched, Fetches};
use health::Health;
use refresh::Refresh;
use starting::Starts;

struct PartitionState {
    target_topic: String,
    /// The source topic's id (0 when its cluster gives none): a topic recreated under the
    /// same name has a new one.
    topic_id: u128,
    /// Which life of this partition the state belongs to: a topic deleted and created
    /// again gets a new state, and answers for the old one (fetches, forwards, start
    /// lookups still under way) are recognised by it and ignored.
    generation: u64,
    /// Next source offset whose progress is committed.
    position: i64,
    /// Next source offset whose data the target has acknowledged: at or past
    /// `position`, since commits follow acknowledgements by up to `COMMIT_EVERY`.
    acked: i64,
    /// Next source offset to fetch: past `position` while batches are held.
    fetch_position: i64,
    sequence: i32,
    held: Held,
    /// Decided batches waiting for the forward under way to finish.
    queued: Queued,
    /// Whether a forward of this partition is under way: then what is fetched queues.
    in_flight: bool,
    /// Whether a fetch that includes this partition is under way.
    fetching: bool,
    /// Whether its first position is still being looked up on the source.
    starting: bool,
    /// Whether the group moved it elsewhere: not fetched, dropped once its forward is
    /// done and its progress committed.
    releasing: bool,
    /// The source's high watermark as last seen; -1 before the first look.
    high_watermark: i64,
    /// When the partition last advanced, or was seen with nothing left to copy.
    progressed: Instant,
    /// When its last fetch answered, with data or an error.
    fetched: Instant,
    /// When its leader last answered it without an error: a high watermark older than
    /// `stuck_after_secs` says nothing, and the partition is stuck whatever its lag.
    answered: Instant,
    /// After a failure that may pass: not fetched before then.
    retry: Option<(Backoff, Instant)>,
    /// Why the partition was stopped (`on_partition_error = "stop_partition"`).
    stopped: Option<String>,
    stuck: bool,
    /// Bytes per second the target acknowledged, smoothed, and the byte count it was
    /// last measured from: reported to the group's leader, which balances by it.
    rate: f64,
    rate_bytes: u64,
    metrics: PartitionHandles,
}

impl PartitionState {
    fn new(target_topic: &str, topic_id: u128, position: i64, metrics: PartitionHandles) -> PartitionState {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = Instant::now();
        // The series outlives a partition that leaves and comes back.
        let rate_bytes = metrics.bytes.get();
        PartitionState {
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            acked: position,
            metrics,
            target_topic: target_topic.to_owned(),
            topic_id,
            position,
            fetch_position: position,
            sequence: 0,
            held: Held::default(),
            queued: Queued::default(),
            in_flight: false,
            fetching: false,
            starting: false,
            releasing: false,
            high_watermark: -1,
            progressed: now,
            fetched: now,
            answered: now,
            retry: None,
            stopped: None,
            stuck: false,
            rate: 0.0,
            rate_bytes,
        }
    }

    /// Forgets what was fetched past what the target acknowledged.
    fn rewind(&mut self) {
        self.fetch_position = self.acked;
        self.held.clear();
        self.queued.clear();
    }

    /// Starts from `offset`: found on the source, or where progress was reset.
    fn start_at(&mut self, offset: i64) {
        self.position = offset;
        self.acked = offset;
        self.fetch_position = offset;
        self.held.clear();
        self.queued.clear();
    }

    /// Its leader answered it without an error, with this high watermark.
    fn answered_ok(&mut self, high_watermark: i64, now: Instant) {
        self.high_watermark = high_watermark;
        self.answered = now;
        self.retry = None;
        self.metrics.lag.set(self.lag());
    }

    fn lag(&self) -> i64 {
        if self.high_watermark < 0 {
            return 0;
        }
        (self.high_watermark - self.position).max(0)
    }

    /// Whether it can be fetched now: also while its forward is under way, until
    /// `lookahead` bytes wait behind it, or its queue keeps `keeps` bytes of fetch
    /// answers alive (a partition whose forward is stuck must not hold the whole
    /// in-flight bound with small slices of large answers).
    fn fetchable(&self, now: Instant, lookahead: u64, keeps: u64) -> bool {
        self.queued.bytes() < lookahead
            && self.queued.charged() < keeps
            && !self.fetching
            && !self.starting
            && !self.releasing
            && self.stopped.is_none()
            && self.retry.as_ref().map_or(true, |r| r.1 <= now)
    }
}

/// A source partition the flow would copy, whether or not this process owns it.
struct Known {
    target_topic: String,
    topic_id: u128,
    /// Whether it appeared after the flow's first look at the source: then it is
    /// copied from its beginning, whatever `start` says.
    born_later: bool,
}

pub struct Flow {
    cfg: FlowSettings,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    filter: TopicFilter,
    /// The partitions this process owns (releasing ones included).
    partitions: BTreeMap<Key, PartitionState>,
    /// Every source partition the flow would copy, whoever owns it.
    known: BTreeMap<Key, Known>,
    membership: Membership,
    /// The partitions the group gave this process; `None` before the first assignment.
    assigned: Option<BTreeSet<Key>>,
    /// Who this process is in the group now: what commits carry. `None` while it is
    /// not a member.
    generation: Option<Generation>,
    /// When the release under way began.
    release_started: Option<Instant>,
    /// The next producer sequence of partitions released with nothing in flight, for
    /// when they come back.
    sequences: HashMap<Key, i32>,
    producer: ProducerIdentity,
    settings: ForwardSettings,
    /// The bound on the bytes between fetch and acknowledgement.
    budget: Budget,
    forwards: InFlight,
    fetches: Fetches,
    refresh: Refresh,
    starts: Starts,
    health: Health,
    metrics: MirrorMetrics,
    /// Set after the first discovery: partitions seen later were born after the flow
    /// began watching and are copied from their beginning, whatever `start` says.
    started: bool,
    /// Whether data arrived lately or forwards are under way: then fetches wait only
    /// briefly at the broker, so finished forwards are refetched soon.
    catching_up: bool,
    /// Acknowledged progress not committed yet, and when the last commit went out.
    uncommitted: Vec<(Key, i64)>,
    committed_at: Instant,
    commits: Commits,
}

/// How long a stopping flow lets its forwards finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Longest sleep of an idle flow between looks at its timers.
const TICK: Duration = Duration::from_millis(250);
/// Acknowledged progress is committed at most this often while forwards keep finishing.
const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// What woke the flow.
enum Event {
    Fetched(Result<Fetched, tokio::task::JoinError>),
    Forwarded(Result<Vec<super::in_flight::Forwarded>, String>),
    Refreshed(refresh::Done),
    Probed(health::Probed),
    Started(starting::Started),
    Committed(Result<Committed, tokio::task::JoinError>),
    Member(Next),
    Tick,
}

/// Runs a flow until `shutdown` turns true; forwards under way finish first, so what
/// the target acknowledged is committed.
pub async fn run_flow(
    cfg: FlowSettings,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    metrics: MirrorMetrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MirrorError> {
    let up = metrics.up.get_or_create(&FlowLabels { flow: cfg.name.clone() }).clone();
    // Owned here: aborted when the flow ends, however it ends.
    let mut heartbeats = JoinSet::new();
    if cfg.heartbeat_interval_ms > 0 {
        let ready = heartbeat::prepare(&source, &cfg.name).await;
        let failures = metrics.errors.get_or_create(&ErrorLabels {
            flow: cfg.name.clone(),
            kind: kind::HEARTBEAT.to_owned(),
        });
        let every = Duration::from_millis(cfg.heartbeat_interval_ms);
        heartbeats.spawn(heartbeat::beat(
            source.clone(),
            cfg.name.clone(),
            every,
            ready,
            failures.clone(),
        ));
    }
    let _down = health::DownOnDrop(up);
    let mut flow = Flow::start(cfg, source, target, metrics).await?;
    let result = flow.run(&mut shutdown, &mut heartbeats).await;
    // Also after an error: a flow started again in this process joins as a new member,
    // and the group would otherwise wait a session timeout for this one.
    flow.membership.stop().await;
    result
}

impl Flow {
    /// Works until `shutdown` turns true, then lets the forwards under way finish.
    /// The heartbeat task ends only by panicking: that is the flow's error too.
    async fn run(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        heartbeats: &mut JoinSet<()>,
    ) -> Result<(), MirrorError> {
        let mut stopping = false;
        while !stopping && !*shutdown.borrow() {
            self.refresh.start_if_due(&self.source, &self.cfg);
            self.start_fetches();
            self.health.start_probe_if_due(&self.source, &self.partitions);
            let event = tokio::select! {
                Some(done) = self.fetches.next() => Event::Fetched(done),
                done = self.forwards.finished(true), if !self.forwards.is_empty() => Event::Forwarded(done),
                Some(done) = self.refresh.next() => Event::Refreshed(done),
                Some(done) = self.health.next_probe() => Event::Probed(done),
                Some(done) = self.starts.next() => Event::Started(done),
                Some(done) = self.commits.next() => Event::Committed(done),
                Some(next) = self.membership.next() => Event::Member(next),
                Some(ended) = heartbeats.join_next() => match ended {
                    Err(e) => return Err(self.panicked("the heartbeat task", &e)),
                    Ok(()) => Event::Tick,
                },
                _ = tokio::time::sleep(TICK) => Event::Tick,
                // A sender gone is a stop too, or this branch would be ready forever.
                changed = shutdown.changed() => {
                    stopping = changed.is_err();
                    Event::Tick
                }
            };
            self.handle(event).await?;
            self.settle_releases();
            self.commit_due();
            self.check_health();
        }
        self.drain().await?;
        tracing::info!(flow = %self.cfg.name, "flow stopped");
        Ok(())
    }

    async fn handle(&mut self, event: Event) -> Result<(), MirrorError> {
        match event {
            Event::Fetched(Ok(fetched)) => self.on_fetched(fetched).await,
            Event::Fetched(Err(e)) => Err(self.panicked("a fetch", &e)),
            Event::Forwarded(Ok(done)) => self.on_forwarded(done).await,
            Event::Forwarded(Err(panic)) => Err(MirrorError::Panicked {
                flow: self.cfg.name.clone(),
                what: "a forward",
                detail: panic,
            }),
            Event::Refreshed(done) => self.on_refreshed(done).await,
            Event::Probed(probed) => {
                self.on_probed(probed);
                Ok(())
            }
            Event::Started(Ok((partition, position))) => {
                self.on_started(partition, position);
                Ok(())
            }
            Event::Started(Err(e)) => Err(self.panicked("a partition's start lookup", &e)),
            Event::Committed(done) => self.on_committed(done),
            Event::Member(next) => self.on_membership(next).await,
            Event::Tick => Ok(()),
        }
    }

    fn panicked(&self, what: &'static str, e: &tokio::task::JoinError) -> MirrorError {
        MirrorError::Panicked {
            flow: self.cfg.name.clone(),
            what,
            detail: e.to_string(),
        }
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
        cfg: FlowSettings,
        source: Arc<Cluster>,
        target: Arc<Cluster>,
        metrics: MirrorMetrics,
    ) -> Result<Flow, MirrorError> {
        let flow_err = |source| MirrorError::Client {
            flow: cfg.name.clone(),
            source: Box::new(source),
        };
        let producer = init_producer_id(&target).await.map_err(flow_err)?;
        let meta = source.refresh(None).await.map_err(flow_err)?;
        let settings = ForwardSettings {
            compression: cfg.compression,
            level: cfg.compression_level,
            max_decompressed: cfg.max_decompressed_bytes,
            on_corrupt: cfg.on_corrupt_batch,
            produce_timeout_ms: cfg.produce_timeout_ms,
        };
        let gauge = metrics
            .in_flight_bytes
            .get_or_create(&FlowLabels { flow: cfg.name.clone() })
            .clone();
        let budget = Budget::new(cfg.max_in_flight_bytes as u64, gauge);
        let membership = Membership::start(target.clone(), &cfg, metrics.clone());
        let mut flow = Flow {
            filter: TopicFilter::new(&cfg),
            health: Health::new(&cfg),
            refresh: Refresh::new(),
            starts: Starts::default(),
            fetches: Fetches::default(),
            cfg,
            source,
            target,
            partitions: BTreeMap::new(),
            known: BTreeMap::new(),
            membership,
            assigned: None,
            generation: None,
            release_started: None,
            sequences: HashMap::new(),
            producer,
            settings,
            forwards: InFlight::default(),
            budget,
            metrics,
            started: false,
            catching_up: false,
            uncommitted: Vec::new(),
            committed_at: Instant::now(),
            commits: Commits::default(),
        };
        let warm = warm_up(flow.target.clone());
        let (discovered, ()) = tokio::join!(flow.discover(&meta), warm);
        discovered?;
        flow.started = true;
        tracing::info!(flow = %flow.cfg.name, source = flow.source.name(), target = flow.target.name(), producer_id = producer.id, partitions = flow.known.len(), group = %super::progress::group(&flow.cfg.name), "flow started");
        Ok(flow)
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

/// Dials every target broker at once while the flow discovers its topics, so that the
/// first forwards do not each wait for a dial and its ApiVersions round trip in turn:
/// at distance, that is seconds before the first byte is copied.
async fn warm_up(target: Arc<Cluster>) {
    // No topics asked: only the brokers, however large the target cluster.
    if let Err(e) = target.refresh(Some(&[])).await {
        tracing::debug!(cluster = target.name(), error = %e, "cannot read the target's brokers yet");
        return;
    }
    let mut dials = JoinSet::new();
    for node in target.metadata().brokers.keys().copied() {
        let target = target.clone();
        dials.spawn(async move { (node, target.broker(node).await.err()) });
    }
    while let Some(dialled) = dials.join_next().await {
        if let Ok((node, Some(e))) = dialled {
            tracing::debug!(cluster = target.name(), node, error = %e, "cannot dial a target broker yet");
        }
    }
}
