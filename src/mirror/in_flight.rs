//! Forwards under way, one per partition at most. They outlive the round that started
//! them, so a partition whose target leader is slow or unreachable holds back only
//! itself: the other partitions keep being fetched, forwarded and committed.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::budget::Charge;
use super::forward::{produce_acked, stamp_all, stamping_is_light, ForwardError, ForwardSettings};
use super::metrics::ForwardStats;
use super::stampers;
use crate::client::producer_id::ProducerIdentity;
use crate::client::Cluster;
use crate::wire::batch::Batch;

pub type Key = (String, i32);

/// One partition's selected source batches, to be stamped and produced.
pub struct Outgoing {
    pub key: Key,
    /// The generation of the partition's state it was started for.
    pub generation: u64,
    pub target_topic: String,
    pub batches: Vec<Batch>,
    /// The source offset after the last batch: the progress once acknowledged.
    pub next: i64,
    /// The sequence of the first batch.
    pub sequence: i32,
    /// The producer whose id and epoch the batches get.
    pub producer: ProducerIdentity,
    pub settings: ForwardSettings,
    pub stats: ForwardStats,
    /// The forward's span: its produce requests are its children.
    pub span: tracing::Span,
    /// The charges of the fetch answers the batches came in: given back when the
    /// forward ends, however it ends.
    pub charges: Vec<Arc<Charge>>,
}

/// What a finished forward reports.
pub struct Forwarded {
    pub key: Key,
    pub generation: u64,
    pub next: i64,
    pub next_sequence: i32,
    pub producer: ProducerIdentity,
    pub stats: ForwardStats,
    pub result: Result<(), ForwardError>,
}

#[derive(Default)]
pub struct InFlight {
    tasks: JoinSet<Forwarded>,
}

impl InFlight {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stamps the batches, off the async workers unless the work is light (recompression
    /// is CPU work that several partitions then share across cores), then produces them;
    /// `retries` counts the retriable failures met on the way.
    pub fn start(&mut self, target: Arc<Cluster>, o: Outgoing, retries: Counter) {
        let span = o.span.clone();
        let fail = crate::panic_switch::reached("forward");
        let forward = async move {
            let _charges = o.charges;
            assert!(!fail, "STRAIT_TEST_PANIC reached a forward");
            let (batches, settings, producer, sequence) = (o.batches, o.settings, o.producer, o.sequence);
            let stamped = if stamping_is_light(&batches, &settings) {
                stamp_all(&batches, &settings, producer, sequence)
            } else {
                match stampers::stamp(move || stamp_all(&batches, &settings, producer, sequence)).await {
                    Some(stamped) => stamped,
                    // A bug met on some input: the flow sees this task's panic as its
                    // error and restarts from its committed progress.
                    None => panic!("stamping {}/{} panicked on a stamping thread", o.key.0, o.key.1),
                }
            };
            let (result, next_sequence) = match stamped {
                Ok((stamped, next_sequence)) => {
                    let timeout = o.settings.produce_timeout_ms;
                    let produced = produce_acked(target, &o.target_topic, o.key.1, &stamped, timeout, &retries).await;
                    (produced, next_sequence)
                }
                Err(e) => (Err(ForwardError::Batch(e)), sequence),
            };
            Forwarded {
                key: o.key,
                generation: o.generation,
                next: o.next,
                next_sequence,
                producer: o.producer,
                stats: o.stats,
                result,
            }
        };
        self.tasks.spawn(forward.instrument(span));
    }

    /// The forwards that have finished; with `wait`, at least one unless none is under
    /// way. A forward that panicked is an error with the panic's message. Cancel-safe: a
    /// forward finished but not yet returned stays in the set.
    pub async fn finished(&mut self, wait: bool) -> Result<Vec<Forwarded>, String> {
        let mut done = Vec::new();
        if wait {
            if let Some(joined) = self.tasks.join_next().await {
                done.push(joined.map_err(|e| e.to_string())?);
            }
        }
        while let Some(joined) = self.tasks.try_join_next() {
            done.push(joined.map_err(|e| e.to_string())?);
        }
        Ok(done)
    }

    /// Stops every forward; what they did not finish is fetched again after a restart.
    pub fn abandon(&mut self) {
        self.tasks.abort_all();
    }
}
