//! Produce with acks=all: forwarded batches go out as the buffers they are.

use kafka_protocol::messages::ApiKey;

use crate::net::{Connection, NetError};
use crate::wire::batch::PatchedBatch;
use crate::wire::produce::{
    decode_produce_response, encode_produce_request, ProducePartition, ProducePartitionResponse, ProduceRequest,
    MAX_VERSION, MIN_VERSION,
};
use crate::wire::WireError;

pub const ACKS_ALL: i16 = -1;

pub async fn produce(
    conn: &Connection,
    topic: &str,
    partition: i32,
    batches: &[PatchedBatch],
    timeout_ms: i32,
) -> Result<ProducePartitionResponse, NetError> {
    let version = conn.pick_version(ApiKey::Produce, (MIN_VERSION, MAX_VERSION))?;
    let id = conn.next_correlation_id();
    let request = ProduceRequest {
        transactional_id: None,
        acks: ACKS_ALL,
        timeout_ms,
        partition: ProducePartition {
            topic,
            partition,
            batches,
        },
    };
    let parts = encode_produce_request(&request, version, id, conn.client_id()).map_err(|e| conn.wire_error(e))?;
    let response = conn.round_trip(parts, id, "Produce").await?;
    let answers = decode_produce_response(&response[4..], version).map_err(|e| conn.wire_error(e))?;
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
