//! The sending side: one probe record at a time to the source topic, spread over its
//! partitions, each acknowledged by all replicas before it counts as sent.

use std::sync::Arc;

use super::marker;
use super::ProbeError;
use crate::client::admin::ensure_topic;
use crate::client::produce::produce_one;
use crate::client::Cluster;
use crate::wire::build::{as_patched, batch_of};

const PRODUCE_TIMEOUT_MS: i32 = 10_000;

pub struct Sender {
    source: Arc<Cluster>,
    topic: String,
    partitions: i32,
    run: u64,
    next_seq: u64,
}

impl Sender {
    /// Creates the topic with one partition if it is missing.
    pub async fn prepare(source: Arc<Cluster>, topic: &str, run: u64) -> Result<Sender, ProbeError> {
        let partitions = ensure_topic(&source, topic, 1).await.map_err(ProbeError::source_side)?;
        Ok(Sender {
            source,
            topic: topic.to_owned(),
            partitions,
            run,
            next_seq: 0,
        })
    }

    /// Produces the next probe record; returns its sequence number once acknowledged.
    pub async fn send_one(&mut self) -> Result<u64, ProbeError> {
        let seq = self.next_seq;
        let partition = (seq % self.partitions as u64) as i32;
        let now = marker::now_micros();
        let value = marker::encode(self.run, seq, now);
        let batch = batch_of(&[&value], (now / 1000) as i64).map_err(|source| ProbeError::Batch {
            topic: self.topic.clone(),
            partition,
            source,
        })?;
        produce_one(
            &self.source,
            &self.topic,
            partition,
            &as_patched(&batch),
            PRODUCE_TIMEOUT_MS,
        )
        .await
        .map_err(ProbeError::source_side)?;
        self.next_seq += 1;
        Ok(seq)
    }
}
