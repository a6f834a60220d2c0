//! The fetch side of a round: one request per source leader, each partition's answer
//! checked for errors and sorted into what can be forwarded.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::client::error::{NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE};
use crate::client::fetch::{fetch_from_broker, FetchOptions, FetchSpec, Isolation};
use crate::client::offsets::{list_offset, EARLIEST, LATEST};
use crate::client::{ClientError, Cluster, KafkaCode};
use crate::config::{IsolationChoice, OutOfRangePolicy};
use crate::mirror::in_flight::Key;
use crate::mirror::metrics::kind;
use crate::mirror::select::select;
use crate::mirror::MirrorError;
use crate::wire::batch::Batch;
use crate::wire::fetch::{FetchPartition, FetchResponse};

use super::Flow;

/// How long brokers may hold a fetch while the flow is catching up.
const CATCH_UP_WAIT_MS: i32 = 10;

impl Flow {
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
    pub(super) async fn fetch_all(&self) -> Result<(Vec<(String, FetchPartition)>, bool), MirrorError> {
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

    /// Whether a fetched partition carries data; handles its error code otherwise.
    pub(super) async fn usable(
        &mut self,
        key: &Key,
        p: &FetchPartition,
        stale: &mut bool,
    ) -> Result<bool, MirrorError> {
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
    pub(super) fn take_decided(
        &mut self,
        key: &Key,
        p: &FetchPartition,
    ) -> Result<Option<(i64, Vec<Batch>)>, MirrorError> {
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
    let response = fetch_from_broker(&source, leader, &specs, &options).await?;
    let span = tracing::Span::current();
    if !span.is_disabled() {
        let records = response.topics.iter().flat_map(|t| &t.partitions);
        span.record("bytes", records.map(|p| p.records.len() as i64).sum::<i64>());
    }
    Ok(response)
}
