//! Produce with acks=all: forwarded batches go out as the buffers they are. Kafka takes
//! exactly one batch per partition in a request, so a partition's batches go out as
//! pipelined requests, in order, on one connection.

use kafka_protocol::messages::ApiKey;

use super::{ClientError, Cluster, KafkaCode};
use crate::net::{Connection, NetError, PendingReply};
use crate::wire::batch::PatchedBatch;
use crate::wire::produce::{
    decode_produce_response, encode_produce_request, ProducePartition, ProducePartitionResponse, ProduceRequest,
    MAX_VERSION, MIN_VERSION,
};
use crate::wire::WireError;

pub const ACKS_ALL: i16 = -1;

/// Requests an idempotent producer may have in flight per partition: the broker
/// remembers the last five batches of each producer to recognise retries.
pub const MAX_IN_FLIGHT: usize = 5;

/// One batch's produce request, written to the connection; its answer comes later.
pub struct Sent<'a> {
    reply: PendingReply<'a>,
    version: i16,
}

/// Writes one batch's produce request without waiting for its answer: a partition's
/// requests then follow each other on the connection, in order.
pub async fn send<'a>(
    conn: &'a Connection,
    topic: &str,
    partition: i32,
    batch: &PatchedBatch,
    timeout_ms: i32,
) -> Result<Sent<'a>, NetError> {
    let version = conn.pick_version(ApiKey::Produce, (MIN_VERSION, MAX_VERSION))?;
    let id = conn.next_correlation_id();
    let request = ProduceRequest {
        transactional_id: None,
        acks: ACKS_ALL,
        timeout_ms,
        partition: ProducePartition {
            topic,
            partition,
            batches: std::slice::from_ref(batch),
        },
    };
    let parts = encode_produce_request(&request, version, id, conn.client_id()).map_err(|e| conn.wire_error(e))?;
    let reply = conn.submit(parts, id, "Produce").await?;
    Ok(Sent { reply, version })
}

impl Sent<'_> {
    /// The partition's answer to the request.
    pub async fn answer(self, topic: &str, partition: i32) -> Result<ProducePartitionResponse, NetError> {
        let conn = self.reply.connection();
        let frame = self.reply.wait().await?;
        answer_for(conn, &frame, self.version, topic, partition)
    }
}

/// Produces each batch in its own request, all written before any answer is awaited;
/// returns one answer per batch, in order.
pub async fn produce_pipelined(
    conn: &Connection,
    topic: &str,
    partition: i32,
    batches: &[PatchedBatch],
    timeout_ms: i32,
) -> Result<Vec<Result<ProducePartitionResponse, NetError>>, NetError> {
    let mut sent = Vec::with_capacity(batches.len());
    for batch in batches {
        sent.push(send(conn, topic, partition, batch, timeout_ms).await?);
    }
    let mut answers = Vec::with_capacity(sent.len());
    for s in sent {
        answers.push(s.answer(topic, partition).await);
    }
    Ok(answers)
}

fn answer_for(
    conn: &Connection,
    frame: &[u8],
    version: i16,
    topic: &str,
    partition: i32,
) -> Result<ProducePartitionResponse, NetError> {
    // Produce v3..=8 answers with response header v0: just the correlation id.
    let answers = decode_produce_response(&frame[4..], version).map_err(|e| conn.wire_error(e))?;
    answers
        .into_iter()
        .find(|a| a.topic == topic && a.partition == partition)
        .ok_or_else(|| {
            conn.wire_error(WireError::malformed(
                "produce response",
                format!("no answer for {topic}/{partition}"),
            ))
        })
}

/// Produces one batch to a partition's leader and waits for acks=all; for the records
/// strait writes itself (probe records, heartbeats), not for forwarding.
pub async fn produce_one(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    batch: &PatchedBatch,
    timeout_ms: i32,
) -> Result<(), ClientError> {
    let leader = cluster.leader(topic, partition).await?;
    let conn = cluster.broker(leader).await?;
    let answers = produce_pipelined(&conn, topic, partition, std::slice::from_ref(batch), timeout_ms)
        .await
        .map_err(|e| cluster.net_error(e))?;
    for answer in answers {
        let answer = answer.map_err(|e| cluster.net_error(e))?;
        if answer.error_code != 0 {
            if KafkaCode(answer.error_code).is_retriable() {
                let _ = cluster.refresh(Some(&[topic.to_owned()])).await;
            }
            return Err(ClientError::Kafka {
                cluster: cluster.name().to_owned(),
                api: "Produce",
                topic: Some(topic.to_owned()),
                partition: Some(partition),
                code: KafkaCode(answer.error_code),
                message: answer.error_message,
            });
        }
    }
    Ok(())
}
