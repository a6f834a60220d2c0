//! The receiving side: fetches the target topic and picks out this run's probe records,
//! whatever codec the replicator wrote them with.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::marker;
use super::ProbeError;
use crate::client::fetch::{fetch_from_broker, FetchOptions, FetchSpec, Isolation};
use crate::client::offsets::{list_offset, EARLIEST, LATEST};
use crate::client::{Cluster, KafkaCode};
use crate::wire::batch::{Batch, Piece, Splitter};
use crate::wire::codec::decompress;
use crate::wire::fetch::FetchPartition;
use crate::wire::records::read_records;

/// Largest records section accepted after decompression.
const MAX_DECOMPRESSED: usize = 64 << 20;
/// How often the topic's partitions are looked up again.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// A probe record of this run, read on the target.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub seq: u64,
    pub latency_micros: u64,
}

pub struct Receiver {
    target: Arc<Cluster>,
    topic: String,
    run: u64,
    /// Next offset to fetch per partition.
    positions: BTreeMap<i32, i64>,
    refreshed: Option<Instant>,
}

impl Receiver {
    /// Partitions that exist now are read from their end; ones that appear later (the
    /// replicator creating the topic) from their beginning.
    pub async fn prepare(target: Arc<Cluster>, topic: &str, run: u64) -> Result<Receiver, ProbeError> {
        let mut receiver = Receiver {
            target,
            topic: topic.to_owned(),
            run,
            positions: BTreeMap::new(),
            refreshed: None,
        };
        receiver.discover(LATEST).await?;
        Ok(receiver)
    }

    async fn discover(&mut self, start: i64) -> Result<(), ProbeError> {
        let meta = self
            .target
            .refresh(Some(std::slice::from_ref(&self.topic)))
            .await
            .map_err(ProbeError::target_side)?;
        self.refreshed = Some(Instant::now());
        let Some(topic) = meta.topics.get(&self.topic).filter(|t| t.error().is_none()) else {
            return Ok(());
        };
        for p in &topic.partitions {
            if !self.positions.contains_key(&p.id) && p.leader >= 0 {
                let at = list_offset(&self.target, &self.topic, p.id, start)
                    .await
                    .map_err(ProbeError::target_side)?;
                self.positions.insert(p.id, at);
            }
        }
        Ok(())
    }

    /// One fetch from every leader of the topic, waiting at most `max_wait_ms`.
    pub async fn poll(&mut self, max_wait_ms: i32) -> Result<Vec<Arrival>, ProbeError> {
        if !self.refreshed.is_some_and(|at| at.elapsed() < REFRESH_EVERY) || self.positions.is_empty() {
            self.discover(EARLIEST).await?;
        }
        if self.positions.is_empty() {
            tokio::time::sleep(Duration::from_millis(max_wait_ms as u64)).await;
            return Ok(Vec::new());
        }
        let mut arrivals = Vec::new();
        for p in self.fetch_all(max_wait_ms).await? {
            self.take(&p, &mut arrivals)?;
        }
        Ok(arrivals)
    }

    async fn fetch_all(&mut self, max_wait_ms: i32) -> Result<Vec<FetchPartition>, ProbeError> {
        let meta = self.target.metadata();
        let mut by_leader: HashMap<i32, Vec<FetchSpec>> = HashMap::new();
        for (partition, offset) in &self.positions {
            if let Some(leader) = meta.leader(&self.topic, *partition) {
                by_leader.entry(leader).or_default().push(FetchSpec {
                    topic: self.topic.clone(),
                    partition: *partition,
                    offset: *offset,
                });
            }
        }
        let options = FetchOptions {
            max_wait_ms,
            min_bytes: 1,
            max_bytes: 8 << 20,
            partition_max_bytes: 1 << 20,
            isolation: Isolation::ReadUncommitted,
        };
        let mut fetches = JoinSet::new();
        for (leader, specs) in by_leader {
            let target = self.target.clone();
            fetches.spawn(async move { fetch_from_broker(&target, leader, 0, &specs, &options).await });
        }
        let mut out = Vec::new();
        while let Some(joined) = fetches.join_next().await {
            match joined.map_err(|e| ProbeError::Panicked(e.to_string()))? {
                Ok(response) => out.extend(response.topics.into_iter().flat_map(|t| t.partitions)),
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "probe fetch failed; retrying");
                    self.refreshed = None;
                }
                Err(e) => return Err(ProbeError::target_side(e)),
            }
        }
        Ok(out)
    }

    /// Adds the partition's probe records of this run to `arrivals` and moves past them.
    fn take(&mut self, p: &FetchPartition, arrivals: &mut Vec<Arrival>) -> Result<(), ProbeError> {
        if p.error_code != 0 {
            let code = KafkaCode(p.error_code);
            tracing::warn!(topic = %self.topic, partition = p.partition, %code, "probe fetch error");
            self.refreshed = None;
            return Ok(());
        }
        let received = marker::now_micros();
        let batch_error = |source| ProbeError::Batch {
            topic: self.topic.clone(),
            partition: p.partition,
            source,
        };
        for piece in Splitter::new(p.records.clone()) {
            let Piece::Batch(batch) = piece.map_err(batch_error)? else {
                break;
            };
            if !batch.is_control() {
                self.read_batch(&batch, received, arrivals).map_err(batch_error)?;
            }
            self.positions.insert(p.partition, batch.next_offset());
        }
        Ok(())
    }

    fn read_batch(
        &self,
        batch: &Batch,
        received: u64,
        arrivals: &mut Vec<Arrival>,
    ) -> Result<(), crate::wire::WireError> {
        let plain = decompress(batch.compression()?, &batch.records(), MAX_DECOMPRESSED)?;
        for record in read_records(&plain, batch.record_count())? {
            let Some((seq, sent)) = record.value.and_then(|v| marker::decode(v, self.run)) else {
                continue;
            };
            arrivals.push(Arrival {
                seq,
                latency_micros: received.saturating_sub(sent),
            });
        }
        Ok(())
    }
}
