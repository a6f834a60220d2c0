//! Forwards under way, one per partition at most. They outlive the round that started
//! them, so a partition whose target leader is slow or unreachable holds back only
//! itself: the other partitions keep being fetched, forwarded and committed.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::forward::{produce_acked, ForwardError};
use super::metrics::ForwardStats;
use crate::client::producer_id::ProducerIdentity;
use crate::client::Cluster;
use crate::wire::batch::PatchedBatch;

pub type Key = (String, i32);

/// One partition's batches, stamped and ready to produce.
pub struct Stamped {
    pub key: Key,
    pub target_topic: String,
    pub batches: Vec<PatchedBatch>,
    /// The source offset after the last batch: the progress once acknowledged.
    pub next: i64,
    pub next_sequence: i32,
    /// The producer whose id and epoch the batches carry.
    pub producer: ProducerIdentity,
    pub stats: ForwardStats,
    /// The forward's span: its produce requests are its children.
    pub span: tracing::Span,
}

/// What a finished forward reports.
pub struct Forwarded {
    pub key: Key,
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

    /// Starts producing; `retries` counts the retriable failures met on the way.
    pub fn start(&mut self, target: Arc<Cluster>, s: Stamped, timeout_ms: i32, retries: Counter) {
        let span = s.span.clone();
        let forward = async move {
            let result = produce_acked(target, &s.target_topic, s.key.1, &s.batches, timeout_ms, &retries).await;
            Forwarded {
                key: s.key,
                next: s.next,
                next_sequence: s.next_sequence,
                producer: s.producer,
                stats: s.stats,
                result,
            }
        };
        self.tasks.spawn(forward.instrument(span));
    }

    /// The forwards that have finished; with `wait`, at least one unless none is under
    /// way. Cancel-safe: a forward finished but not yet returned stays in the set.
    pub async fn finished(&mut self, wait: bool) -> Vec<Forwarded> {
        let mut done = Vec::new();
        if wait {
            if let Some(joined) = self.tasks.join_next().await {
                done.push(joined.expect("forward task panicked"));
            }
        }
        while let Some(joined) = self.tasks.try_join_next() {
            done.push(joined.expect("forward task panicked"));
        }
        done
    }

    /// Stops every forward; what they did not finish is fetched again after a restart.
    pub fn abandon(&mut self) {
        self.tasks.abort_all();
    }
}
