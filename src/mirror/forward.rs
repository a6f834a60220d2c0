//! Moving the selected batches of one partition to the target: CRC checked, rebuilt only
//! when a codec change or a rewrite demands it, stamped with strait's producer identity
//! and sequence, produced with acks=all, retried with the same sequences so that the
//! target drops duplicates of strait's own retries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::client::error::{
    CORRUPT_MESSAGE, DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER,
    UNKNOWN_PRODUCER_ID,
};
use crate::client::produce::{send, MAX_IN_FLIGHT};
use crate::client::producer_id::ProducerIdentity;
use crate::client::{ClientError, Cluster, KafkaCode};
use crate::mirror::retry::{Backoff, LogThrottle};
use crate::mirror::settings::CorruptPolicy;
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
    batch.verify_record_count()?;
    if !needs_rebuild(batch, s)? {
        return Ok(Some(batch.clone()));
    }
    let target = Target {
        compression: s.compression.unwrap_or(batch.compression()?),
        level: s.level,
        max_decompressed: s.max_decompressed,
    };
    rebuild(batch, target).map(Some)
}

/// Whether the batch's records must be decompressed and built again, for a codec change
/// or a rewrite; if not, stamping it only patches its header.
fn needs_rebuild(batch: &Batch, s: &ForwardSettings) -> Result<bool, WireError> {
    let codec = batch.compression()?;
    Ok(s.compression.is_some_and(|c| c != codec) || needs_record_rewrite(batch)?)
}

/// Source bytes that are stamped on an async worker when no batch needs a rebuild: their
/// CRCs take a few tens of microseconds, less than handing them to a stamping thread and
/// back, which perf showed as the largest cost of a mirror that keeps the codec.
const LIGHT_STAMPING_MAX: usize = 1024 * 1024;

/// Whether stamping these batches is light enough to do between two awaits.
pub fn stamping_is_light(batches: &[Batch], settings: &ForwardSettings) -> bool {
    batches.iter().map(Batch::len).sum::<usize>() <= LIGHT_STAMPING_MAX
        && batches
            .iter()
            .all(|b| needs_rebuild(b, settings).is_ok_and(|rebuild| !rebuild))
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

/// Longest pause between produce retries: a recovered target is back in use within it.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A produce failure that repeats is logged at most once per this interval.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Why a partition's produce requests stopped short.
enum Stop {
    Retry(String),
    Fail(ForwardError),
}

fn classify_code(topic: &str, partition: i32, code: i16, message: Option<String>) -> Stop {
    let kafka = KafkaCode(code);
    let detail = format!(
        "{topic}/{partition}: {kafka}{}",
        message.map(|m| format!(" ({m})")).unwrap_or_default()
    );
    match code {
        OUT_OF_ORDER_SEQUENCE_NUMBER | UNKNOWN_PRODUCER_ID | INVALID_PRODUCER_EPOCH => {
            Stop::Fail(ForwardError::Fenced(detail))
        }
        // Kafka calls a corrupt message retriable, for bytes damaged on the way; strait
        // would send the same bytes again, and the target refuse them again.
        CORRUPT_MESSAGE => Stop::Fail(ForwardError::Refused(detail)),
        _ if kafka.is_retriable() => Stop::Retry(detail),
        _ => Stop::Fail(ForwardError::Refused(detail)),
    }
}

fn classify_client(e: ClientError) -> Stop {
    if e.is_retriable() {
        Stop::Retry(e.to_string())
    } else {
        Stop::Fail(ForwardError::Refused(e.to_string()))
    }
}

/// Sends the batches in order to the partition's leader, keeping up to `MAX_IN_FLIGHT`
/// requests out: each answer lets the next request go, so over a long path the
/// partition's pipeline stays full instead of draining every five batches. Returns how
/// many the target acknowledged, in order, and why it stopped if not all.
#[tracing::instrument(
    level = "debug",
    name = "produce",
    skip_all,
    fields(
        topic = %topic,
        partition = partition,
        batches = batches.len() as i64,
        bytes = batches.iter().map(|b| b.len() as i64).sum::<i64>(),
        broker = tracing::field::Empty,
    )
)]
async fn send_in_order(
    target: &Cluster,
    topic: &str,
    partition: i32,
    batches: &[PatchedBatch],
    timeout_ms: i32,
) -> (usize, Option<Stop>) {
    let conn = match async {
        let leader = target.leader(topic, partition).await?;
        tracing::Span::current().record("broker", leader);
        target.broker(leader).await
    }
    .await
    {
        Ok(c) => c,
        Err(e) => return (0, Some(classify_client(e))),
    };
    let mut out = VecDeque::with_capacity(MAX_IN_FLIGHT);
    let (mut sent, mut acked) = (0, 0);
    loop {
        while out.len() < MAX_IN_FLIGHT && sent < batches.len() {
            match send(&conn, topic, partition, &batches[sent], timeout_ms).await {
                Ok(request) => out.push_back(request),
                Err(e) => return (acked, Some(classify_client(target.net_error(e)))),
            }
            sent += 1;
        }
        // Requests still out when this returns early are answered to no one; the retry
        // sends them again with the same sequences, which the target recognises.
        let Some(oldest) = out.pop_front() else {
            return (acked, None);
        };
        match oldest.answer(topic, partition).await {
            Ok(r) if r.error_code == 0 || r.error_code == DUPLICATE_SEQUENCE_NUMBER => acked += 1,
            Ok(r) => {
                return (
                    acked,
                    Some(classify_code(topic, partition, r.error_code, r.error_message)),
                )
            }
            Err(e) => return (acked, Some(classify_client(target.net_error(e)))),
        }
    }
}

/// Produces one partition's batches in order, retrying retriable failures with the same
/// sequences, with back-off and jitter, until the target acknowledged every batch. A
/// failure that repeats is logged once per `LOG_EVERY`, with how many were left out.
pub async fn produce_acked(
    target: Arc<Cluster>,
    topic: &str,
    partition: i32,
    batches: &[PatchedBatch],
    timeout_ms: i32,
    retries: &Counter,
) -> Result<(), ForwardError> {
    let mut done = 0;
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    let mut throttle = LogThrottle::new(LOG_EVERY);
    while done < batches.len() {
        let (acked, stop) = send_in_order(&target, topic, partition, &batches[done..], timeout_ms).await;
        done += acked;
        let problem = match stop {
            None => {
                backoff.reset();
                continue;
            }
            Some(Stop::Fail(e)) => return Err(e),
            Some(Stop::Retry(problem)) => problem,
        };
        retries.inc();
        let pause = backoff.pause();
        if let Some(suppressed) = throttle.allow() {
            tracing::warn!(cluster = target.name(), %topic, partition, %problem, retry_in = ?pause, suppressed, "produce failed, retrying");
        }
        tokio::time::sleep(pause).await;
        if let Err(e) = target.refresh(Some(&[topic.to_owned()])).await {
            tracing::debug!(error = %e, "metadata refresh failed");
        }
    }
    Ok(())
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
