//! Moving the selected batches of one partition to the target: CRC checked, rebuilt only
//! when a codec change or a rewrite demands it, stamped with strait's producer identity
//! and sequence, produced with acks=all, retried with the same sequences so that the
//! target drops duplicates of strait's own retries.

use std::sync::Arc;
use std::time::Duration;

use crate::client::error::{
    DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID,
};
use crate::client::produce::produce;
use crate::client::producer_id::ProducerIdentity;
use crate::client::{Cluster, KafkaCode};
use crate::config::CorruptPolicy;
use crate::wire::batch::{patch, Batch, PatchedBatch, ProducerStamp};
use crate::wire::codec::Compression;
use crate::wire::rebuild::{needs_record_rewrite, rebuild, Target};
use crate::wire::WireError;

/// What a flow fixes for every batch it forwards.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSettings {
    pub compression: Option<Compression>,
    pub level: Option<i32>,
    pub max_decompressed: usize,
    pub on_corrupt: CorruptPolicy,
    pub produce_timeout_ms: i32,
}

/// Why forwarding one partition's batches stopped.
#[derive(Debug)]
pub enum ForwardError {
    /// A batch cannot be forwarded as it is (corrupt, unknown codec, ...).
    Batch(WireError),
    /// The target no longer knows strait's producer id or epoch.
    Fenced(String),
    /// The target refused the data for a reason retrying cannot fix.
    Refused(String),
}

/// Kafka's sequence numbers wrap to 0 after i32::MAX.
pub fn advance_sequence(sequence: i32, records: i32) -> i32 {
    ((i64::from(sequence) + i64::from(records)) % (i64::from(i32::MAX) + 1)) as i32
}

fn prepare(batch: &Batch, s: &ForwardSettings) -> Result<Option<Batch>, WireError> {
    if let Err(e) = batch.verify_crc() {
        return match s.on_corrupt {
            CorruptPolicy::Fail => Err(e),
            CorruptPolicy::Skip => {
                tracing::error!(error = %e, "skipping corrupt source batch (on_corrupt_batch = skip)");
                Ok(None)
            }
        };
    }
    let codec = batch.compression()?;
    let recompress = s.compression.is_some_and(|c| c != codec);
    if !recompress && !needs_record_rewrite(batch)? {
        return Ok(Some(batch.clone()));
    }
    let target = Target {
        compression: s.compression.unwrap_or(codec),
        level: s.level,
        max_decompressed: s.max_decompressed,
    };
    rebuild(batch, target).map(Some)
}

/// Stamps batches with consecutive sequences from `sequence`; returns the next one.
pub fn stamp_all(
    batches: &[Batch],
    settings: &ForwardSettings,
    producer: ProducerIdentity,
    mut sequence: i32,
) -> Result<(Vec<PatchedBatch>, i32), WireError> {
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let Some(ready) = prepare(batch, settings)? else {
            continue;
        };
        let stamp = ProducerStamp {
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            base_sequence: sequence,
            transactional: false,
        };
        out.push(patch(&ready, stamp));
        sequence = advance_sequence(sequence, ready.record_count());
    }
    Ok((out, sequence))
}

/// Produces one partition's batches, retrying retriable failures until the target
/// acknowledges them.
pub async fn produce_acked(
    target: Arc<Cluster>,
    topic: &str,
    partition: i32,
    batches: &[PatchedBatch],
    timeout_ms: i32,
) -> Result<(), ForwardError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let leader = target.leader(topic, partition).await?;
            let conn = target.broker(leader).await?;
            produce(&conn, topic, partition, batches, timeout_ms)
                .await
                .map_err(|e| target.net_error(e))
        };
        let problem = match attempt.await {
            Ok(r) if r.error_code == 0 || r.error_code == DUPLICATE_SEQUENCE_NUMBER => return Ok(()),
            Ok(r) => {
                let code = KafkaCode(r.error_code);
                let detail = format!(
                    "{topic}/{partition}: {code}{}",
                    r.error_message.map(|m| format!(" ({m})")).unwrap_or_default()
                );
                match r.error_code {
                    OUT_OF_ORDER_SEQUENCE_NUMBER | UNKNOWN_PRODUCER_ID | INVALID_PRODUCER_EPOCH => {
                        return Err(ForwardError::Fenced(detail))
                    }
                    _ if !code.is_retriable() => return Err(ForwardError::Refused(detail)),
                    _ => detail,
                }
            }
            Err(e) if e.is_retriable() => e.to_string(),
            Err(e) => return Err(ForwardError::Refused(e.to_string())),
        };
        tracing::warn!(cluster = target.name(), %topic, partition, %problem, retry_in = ?backoff, "produce failed, retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if let Err(e) = target.refresh(Some(&[topic.to_owned()])).await {
            tracing::debug!(error = %e, "metadata refresh failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(advance_sequence(0, 5), 5);
        assert_eq!(advance_sequence(i32::MAX, 1), 0);
        assert_eq!(advance_sequence(i32::MAX - 1, 3), 1);
    }
}
