//! The sending side: one probe record at a time to the source topic, spread over its
//! partitions, each acknowledged by all replicas before it counts as sent.

use std::sync::Arc;
use std::time::Duration;

use super::marker;
use super::ProbeError;
use crate::client::produce::produce_pipelined;
use crate::client::{admin, ClientError, Cluster, KafkaCode};
use crate::wire::build::{as_patched, batch_of};

const PRODUCE_TIMEOUT_MS: i32 = 10_000;

pub struct Sender {
    source: Arc<Cluster>,
    topic: String,
    partitions: i32,
    run: u64,
    next_seq: u64,
}

/// The topic's partition count, creating the topic (one partition) if it is missing.
async fn ensure_topic(source: &Cluster, topic: &str) -> Result<i32, ClientError> {
    let names = [topic.to_owned()];
    for attempt in 0..50 {
        let meta = source.refresh(Some(&names)).await?;
        if let Some(t) = meta.topics.get(topic).filter(|t| t.error().is_none()) {
            if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                return Ok(t.partitions.len() as i32);
            }
        } else if attempt == 0 {
            if admin::can_create_topics(source).await? {
                admin::create_topic(source, topic, 1, -1, &[]).await?;
            } else {
                admin::auto_create_topic(source, topic).await?;
            }
            tracing::info!(%topic, "created the probe topic on the source");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(ClientError::Kafka {
        cluster: source.name().to_owned(),
        api: "Metadata",
        topic: Some(topic.to_owned()),
        partition: None,
        code: KafkaCode(crate::client::error::UNKNOWN_TOPIC_OR_PARTITION),
        message: Some("the probe topic has no leaders after 10 s".into()),
    })
}

impl Sender {
    pub async fn prepare(source: Arc<Cluster>, topic: &str, run: u64) -> Result<Sender, ProbeError> {
        let partitions = ensure_topic(&source, topic).await.map_err(ProbeError::source_side)?;
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
        let value = marker::encode(self.run, seq, marker::now_micros());
        let batch = batch_of(&[&value], (marker::now_micros() / 1000) as i64).map_err(|source| ProbeError::Batch {
            topic: self.topic.clone(),
            partition,
            source,
        })?;
        let leader = self
            .source
            .leader(&self.topic, partition)
            .await
            .map_err(ProbeError::source_side)?;
        let conn = self.source.broker(leader).await.map_err(ProbeError::source_side)?;
        let net = |e| ProbeError::source_side(self.source.net_error(e));
        let answers = produce_pipelined(&conn, &self.topic, partition, &[as_patched(&batch)], PRODUCE_TIMEOUT_MS)
            .await
            .map_err(net)?;
        for answer in answers {
            let answer = answer.map_err(net)?;
            if answer.error_code != 0 {
                if KafkaCode(answer.error_code).is_retriable() {
                    let _ = self.source.refresh(Some(std::slice::from_ref(&self.topic))).await;
                }
                return Err(ProbeError::source_side(ClientError::Kafka {
                    cluster: self.source.name().to_owned(),
                    api: "Produce",
                    topic: Some(self.topic.clone()),
                    partition: Some(partition),
                    code: KafkaCode(answer.error_code),
                    message: answer.error_message,
                }));
            }
        }
        self.next_seq += 1;
        Ok(seq)
    }
}
