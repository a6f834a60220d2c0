//! The fetch side of a flow: one request in flight per connection to a source broker
//! (`fetch_connections_per_broker` of them, each for its share of the partitions, as a
//! broker answers each connection one request at a time), each started as soon as the
//! previous answer is handled, so brokers never wait for each other, nor for the target: a partition is fetched again while its data is still
//! being produced. Each fetch is sized to what is left of the flow's in-flight bound
//! and holds that much until it answers. A broker whose fetch fails is retried with
//! back-off; each partition's answer is checked for errors and sorted into what can be
//! forwarded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{JoinError, JoinSet};
use tracing::Instrument as _;

use crate::client::error::OFFSET_OUT_OF_RANGE;
use crate::client::fetch::{fetch_from_broker, FetchOptions, FetchSpec};
use crate::client::offsets::{list_offset, EARLIEST, LATEST};
use crate::client::{ClientError, Cluster, KafkaCode};
use crate::mirror::budget::Charge;
use crate::mirror::in_flight::Key;
use crate::mirror::metrics::kind;
use crate::mirror::queued::Taken;
use crate::mirror::retry::{Backoff, LogThrottle};
use crate::mirror::select::select;
use crate::mirror::settings::OutOfRangePolicy;
use crate::mirror::MirrorError;
use crate::wire::batch::Batch;
use crate::wire::fetch::{FetchPartition, FetchResponse};
use crate::wire::WireError;

use super::{Flow, PartitionState};

/// How long brokers may hold a fetch while the flow is catching up.
const CATCH_UP_WAIT_MS: i32 = 10;
/// Back-off of a broker whose fetch failed, and of a partition the broker refused.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(10);
/// A failure that repeats is logged at most once per this interval.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// What one fetch task brings back.
pub(super) struct Fetched {
    leader: i32,
    lane: usize,
    /// Bytes of the flow's budget held for this fetch's answer.
    reserved: u64,
    /// The partitions asked for, with the generation of their state then and the
    /// offset asked from.
    keys: Vec<(Key, Asked)>,
    result: Result<FetchResponse, ClientError>,
}

/// What a fetch asked of one partition: an answer is used only while the partition is
/// in the same life and still wants data from the same offset. A forward that failed
/// meanwhile rewound it, and the answer would leave a gap.
#[derive(Clone, Copy)]
pub(super) struct Asked {
    generation: u64,
    offset: i64,
}

/// The fetches under way, one per connection (broker and lane) at most, and the
/// brokers backing off.
#[derive(Default)]
pub(super) struct Fetches {
    tasks: JoinSet<Fetched>,
    busy: HashSet<(i32, usize)>,
    retry: HashMap<i32, (Backoff, Instant)>,
    throttle: HashMap<i32, LogThrottle>,
    /// Counts fetches, to turn the order of their partitions.
    turn: usize,
}

impl Fetches {
    /// The next fetch to finish; `None` at once when none is under way.
    pub(super) async fn next(&mut self) -> Option<Result<Fetched, JoinError>> {
        self.tasks.join_next().await
    }

    /// Whether a broker can be fetched now: not backing off, and a lane is free.
    fn ready(&self, leader: i32, lanes: usize, now: Instant) -> bool {
        self.retry.get(&leader).map_or(true, |r| r.1 <= now) && !self.free_lanes(leader, lanes).is_empty()
    }

    fn free_lanes(&self, leader: i32, lanes: usize) -> Vec<usize> {
        (0..lanes)
            .filter(|lane| !self.busy.contains(&(leader, *lane)))
            .collect()
    }

    /// Backs a broker off; returns the pause.
    fn back_off(&mut self, leader: i32) -> Duration {
        let (backoff, _) = self
            .retry
            .entry(leader)
            .or_insert_with(|| (Backoff::new(FIRST_RETRY, MAX_RETRY), Instant::now()));
        let pause = backoff.pause();
        self.retry.entry(leader).and_modify(|r| r.1 = Instant::now() + pause);
        pause
    }
}

impl Flow {
    fn fetch_options(&self) -> FetchOptions {
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
            isolation: self.cfg.isolation,
        }
    }

    /// Starts a fetch for every broker that has none under way, with its partitions that
    /// are not backing off and have little queued. Each fetch asks for what is left of
    /// the in-flight bound, but at least one partition's worth, and none starts while
    /// less than that is left, or the whole bound when it is smaller (back-pressure).
    pub(super) fn start_fetches(&mut self) {
        if self.membership.silenced() {
            return;
        }
        let cfg = &self.cfg;
        let floor =
            (cfg.partition_max_bytes.min(cfg.fetch_max_bytes).max(1) as u64).min(cfg.max_in_flight_bytes as u64);
        if self.budget.left() < floor {
            return;
        }
        let meta = self.source.metadata();
        let lanes = self.cfg.fetch_connections_per_broker.max(1);
        // Every connection busy (an idle flow's fetches waiting at their brokers): no
        // fetch can start, and the partitions need no look.
        let busy = self
            .fetches
            .busy
            .iter()
            .filter(|(node, _)| meta.brokers.contains_key(node))
            .count();
        if !meta.brokers.is_empty() && busy >= meta.brokers.len() * lanes {
            return;
        }
        let now = Instant::now();
        let lookahead = self.cfg.partition_max_bytes.max(1) as u64;
        let mut by_leader: HashMap<i32, Vec<FetchSpec>> = HashMap::new();
        let keeps = self.cfg.fetch_max_bytes.max(1) as u64;
        let fetchable = self
            .partitions
            .iter()
            .filter(|(_, s)| s.fetchable(now, lookahead, keeps));
        for ((topic, partition), state) in fetchable {
            match meta.leader(topic, *partition) {
                Some(leader) if self.fetches.ready(leader, lanes, now) => {
                    by_leader.entry(leader).or_default().push(FetchSpec {
                        topic: topic.clone(),
                        partition: *partition,
                        offset: state.fetch_position,
                    })
                }
                Some(_) => {}
                None => self.refresh.want(),
            }
        }
        for (leader, mut specs) in by_leader {
            // A broker fills a fetch's max_bytes partition by partition in the order
            // asked, and answers the rest with nothing: the order turns every fetch so
            // that no partition is always last.
            self.fetches.turn = self.fetches.turn.wrapping_add(1);
            let turn = self.fetches.turn % specs.len();
            specs.rotate_left(turn);
            // The broker's partitions shared out in runs over as many of its free lanes
            // as the budget can fill, so that none is left out when it cannot fill all.
            let mut free = self.fetches.free_lanes(leader, lanes);
            free.truncate((self.budget.left() / floor).max(1) as usize);
            let per_lane = specs.len().div_ceil(free.len());
            let bytes_each = self.budget.left() / free.len() as u64;
            for lane in free {
                if specs.is_empty() {
                    break;
                }
                let run: Vec<FetchSpec> = specs.drain(..per_lane.min(specs.len())).collect();
                if !self.start_fetch(leader, lane, run, bytes_each, floor) {
                    return;
                }
            }
        }
    }

    /// Starts one fetch on a broker's connection number `lane` for up to `bytes`,
    /// holding that much of the budget until it answers; false when less than `floor`
    /// is left.
    fn start_fetch(&mut self, leader: i32, lane: usize, specs: Vec<FetchSpec>, bytes: u64, floor: u64) -> bool {
        if self.budget.left() < floor {
            return false;
        }
        // Never below one partition's worth: a broker may answer a smaller fetch with
        // nothing past its first partition (librdkafka's mock cluster does).
        // Nor above what its partitions can bring: an idle fetch waits at the broker
        // holding what it reserved, which other brokers' fetches may need.
        let mut options = self.fetch_options();
        let least = options.partition_max_bytes.min(options.max_bytes);
        let most = i64::from(options.partition_max_bytes).saturating_mul(specs.len() as i64);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX).min(most);
        options.max_bytes = options
            .max_bytes
            .min(i32::try_from(bytes).unwrap_or(i32::MAX))
            .max(least);
        let reserved = options.max_bytes as u64;
        self.budget.reserve(reserved);
        let mut keys = Vec::with_capacity(specs.len());
        for spec in &specs {
            let key = (spec.topic.clone(), spec.partition);
            if let Some(state) = self.partitions.get_mut(&key) {
                state.fetching = true;
                let asked = Asked {
                    generation: state.generation,
                    offset: state.fetch_position,
                };
                keys.push((key, asked));
            }
        }
        // Spans are at debug level, so with export off and the usual log filter they
        // cost a callsite check. Counts go out as i64: the OpenTelemetry layer exports
        // unsigned ones as text.
        let span = tracing::debug_span!(
            "fetch",
            flow = %self.cfg.name,
            broker = leader,
            lane = lane as i64,
            partitions = specs.len() as i64,
            bytes = tracing::field::Empty,
        );
        tracing::trace!(flow = %self.cfg.name, broker = leader, lane, partitions = specs.len(), "fetch");
        self.fetches.busy.insert((leader, lane));
        let source = self.source.clone();
        self.fetches.tasks.spawn(
            async move {
                let result = fetch_from(&source, leader, lane, &specs, options).await;
                Fetched {
                    leader,
                    lane,
                    reserved,
                    keys,
                    result,
                }
            }
            .instrument(span),
        );
        true
    }

    /// Handles one broker's answer: its partitions' data is forwarded, their errors
    /// handled; a failed fetch backs that broker off and asks for fresh metadata.
    pub(super) async fn on_fetched(&mut self, fetched: Fetched) -> Result<(), MirrorError> {
        let Fetched {
            leader,
            lane,
            reserved,
            keys,
            result,
        } = fetched;
        self.budget.unreserve(reserved);
        self.fetches.busy.remove(&(leader, lane));
        let response = match result {
            Ok(response) => {
                self.fetches.retry.remove(&leader);
                response
            }
            Err(e) => {
                let now = Instant::now();
                for (key, asked) in &keys {
                    self.fetch_answered(key, asked, now);
                }
                return self.on_fetch_failed(leader, keys.len(), e);
            }
        };
        self.on_answer(leader, keys, response).await
    }

    /// Marks a partition's fetch as answered, if the partition is still in the life it
    /// was asked for; returns its state then.
    fn fetch_answered(&mut self, key: &Key, asked: &Asked, now: Instant) -> Option<&mut PartitionState> {
        let state = self
            .partitions
            .get_mut(key)
            .filter(|s| s.generation == asked.generation)?;
        state.fetching = false;
        state.fetched = now;
        Some(state)
    }

    fn on_fetch_failed(&mut self, leader: i32, partitions: usize, e: ClientError) -> Result<(), MirrorError> {
        match e {
            e if e.is_retriable() => {
                self.metrics.error(&self.cfg.name, kind::FETCH);
                self.health.errors += 1;
                let pause = self.fetches.back_off(leader);
                let throttle = self
                    .fetches
                    .throttle
                    .entry(leader)
                    .or_insert_with(|| LogThrottle::new(LOG_EVERY));
                if let Some(suppressed) = throttle.allow() {
                    tracing::warn!(flow = %self.cfg.name, broker = leader, partitions, error = %e, retry_in = ?pause, suppressed, "fetch failed; this broker's partitions retry after a metadata refresh, the others go on");
                }
                self.refresh.want();
                Ok(())
            }
            e => Err(self.err(e)),
        }
    }

    /// Handles a broker's answer, partition by partition. Most partitions of a flow
    /// that keeps up answer with nothing new: they only note their high watermark,
    /// with one lookup, since an idle flow of thousands of partitions does this for
    /// each of them several times a second.
    async fn on_answer(
        &mut self,
        leader: i32,
        keys: Vec<(Key, Asked)>,
        response: FetchResponse,
    ) -> Result<(), MirrorError> {
        let bytes: usize = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.len())
            .sum();
        tracing::debug!(flow = %self.cfg.name, broker = leader, partitions = keys.len(), bytes, "fetched");
        // What this answer brought stays in memory until its last batch is acknowledged.
        let charge = Charge::new(&self.budget, bytes as u64);
        // Only what was asked, once each, for the same life of the partition and the offset
        // it is still at.
        let mut asked: HashMap<Key, Asked> = keys.into_iter().collect();
        let mut had_data = false;
        let now = Instant::now();
        for topic in response.topics {
            for p in topic.partitions {
                let key = (topic.name.clone(), p.partition);
                let Some(was) = asked.remove(&key) else {
                    tracing::debug!(flow = %self.cfg.name, topic = %key.0, partition = key.1, "fetch answer for a partition not asked for; ignored");
                    continue;
                };
                let Some(state) = self.fetch_answered(&key, &was, now) else {
                    continue;
                };
                if state.fetch_position != was.offset {
                    continue;
                }
                if p.error_code == 0 && p.records.is_empty() {
                    state.answered_ok(p.high_watermark, now);
                    continue;
                }
                had_data |= !p.records.is_empty();
                self.on_partition(key, p, &charge).await?;
            }
        }
        // Asked and left out of the answer: asked again next time.
        for (key, was) in asked {
            self.fetch_answered(&key, &was, now);
        }
        // A forward that finishes makes its partition fetchable again and sets this too
        // (see `on_forwarded`); forwards merely under way do not, or one stuck target
        // partition would have every broker polled a hundred times a second.
        self.catching_up = had_data;
        Ok(())
    }

    async fn on_partition(&mut self, key: Key, p: FetchPartition, charge: &Arc<Charge>) -> Result<(), MirrorError> {
        // Dropped, stopped or being released while this fetch was under way: its data
        // is not wanted.
        let wanted = |s: &PartitionState| s.stopped.is_none() && !s.releasing;
        if !self.partitions.get(&key).is_some_and(wanted) || !self.usable(&key, &p).await? {
            return Ok(());
        }
        let at = self.partitions[&key].fetch_position;
        let decided = match self.take_decided(&key, &p) {
            Ok(decided) => decided,
            Err(e) => {
                let cluster = self.source.name();
                let detail = format!("cluster {cluster}: the fetch answer at offset {at} cannot be forwarded: {e}");
                return self.partition_failed(&key, detail);
            }
        };
        let Some((next, batches)) = decided else {
            return Ok(());
        };
        let state = self.partitions.get_mut(&key).expect("checked above");
        if state.in_flight || !state.queued.is_empty() {
            // Behind the forward under way, in order; also when nothing is to forward,
            // as that progress must not be acknowledged before the data ahead of it.
            state.queued.push(next, batches, charge);
        } else {
            let charges = vec![charge.clone()];
            self.forward_or_acknowledge(key, Taken { next, batches, charges });
        }
        Ok(())
    }

    /// Whether a fetched partition carries data; handles its error code otherwise.
    async fn usable(&mut self, key: &Key, p: &FetchPartition) -> Result<bool, MirrorError> {
        let code = KafkaCode(p.error_code);
        if p.error_code == 0 {
            let state = self.partitions.get_mut(key).expect("checked by the caller");
            state.answered_ok(p.high_watermark, Instant::now());
            return Ok(true);
        }
        self.metrics.error(&self.cfg.name, kind::FETCH_PARTITION);
        self.health.errors += 1;
        let busy = self
            .partitions
            .get(key)
            .is_some_and(|s| s.in_flight || !s.queued.is_empty());
        match p.error_code {
            OFFSET_OUT_OF_RANGE if !busy => {
                self.metrics.error(&self.cfg.name, kind::OUT_OF_RANGE);
                self.out_of_range(key, p).await?;
            }
            // Its position can be reset only once the data before it is acknowledged:
            // until then it is asked again after a pause.
            OFFSET_OUT_OF_RANGE => self.pause_partition(key, code),
            // NOT_LEADER_OR_FOLLOWER among them: brokers answer it at once, so without a
            // pause the partition would be asked again at round-trip speed.
            _ if code.is_retriable() => {
                self.refresh.want();
                self.pause_partition(key, code);
            }
            _ => {
                let detail = format!("the source refused to fetch it: {code}");
                self.partition_failed(key, detail)?;
            }
        }
        Ok(false)
    }

    /// Keeps a partition from being fetched for a while, longer each time in a row.
    fn pause_partition(&mut self, key: &Key, code: KafkaCode) {
        let Some(state) = self.partitions.get_mut(key) else {
            return;
        };
        let (backoff, at) = state
            .retry
            .get_or_insert_with(|| (Backoff::new(FIRST_RETRY, MAX_RETRY), Instant::now()));
        let pause = backoff.pause();
        *at = Instant::now() + pause;
        tracing::debug!(flow = %self.cfg.name, topic = %key.0, partition = key.1, %code, retry_in = ?pause, "fetch error; asking again later");
    }

    /// Sorts fetched batches into the partition's held set and takes out what is decided:
    /// the progress after it and the batches to forward.
    fn take_decided(&mut self, key: &Key, p: &FetchPartition) -> Result<Option<(i64, Vec<Batch>)>, WireError> {
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
            Err(e) => {
                state.rewind();
                return Err(e);
            }
        };
        if let Some(from) = selection.fetch_from {
            state.fetch_position = from;
        }
        Ok(selection.next_offset.map(|next| (next, selection.batches)))
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
        self.commit_reset(key, new_position).await?;
        if let Some(state) = self.partitions.get_mut(key) {
            state.start_at(new_position);
        }
        Ok(())
    }
}

/// One fetch request to one broker. Its span learns how many record bytes came back,
/// counted only when someone collects the span.
async fn fetch_from(
    source: &Arc<Cluster>,
    leader: i32,
    lane: usize,
    specs: &[FetchSpec],
    options: FetchOptions,
) -> Result<FetchResponse, ClientError> {
    let response = fetch_from_broker(source, leader, lane, specs, &options).await?;
    let span = tracing::Span::current();
    if !span.is_disabled() {
        let records = response.topics.iter().flat_map(|t| &t.partitions);
        span.record("bytes", records.map(|p| p.records.len() as i64).sum::<i64>());
    }
    Ok(response)
}
