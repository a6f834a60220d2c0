//! InitProducerId: the idempotent producer identity strait stamps on forwarded batches,
//! so that the target broker drops strait's own retries instead of storing them twice.

use kafka_protocol::messages::{InitProducerIdRequest, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::error::{ClientError, KafkaCode};
use super::Cluster;

pub(crate) const VERSIONS: (i16, i16) = (0, 4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

/// An idempotent (not transactional) producer identity.
pub(crate) fn request() -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// A transactional producer identity: the coordinator of `transactional_id` fences any
/// earlier producer of that id (bumping its epoch) and aborts what it left open. A
/// transaction left open longer than `timeout_ms` is aborted by the coordinator.
pub(crate) fn transactional_request(transactional_id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    request()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
            transactional_id.to_owned(),
        ))))
        .with_transaction_timeout_ms(timeout_ms)
}

pub async fn init_producer_id(cluster: &Cluster) -> Result<ProducerIdentity, ClientError> {
    let conn = cluster.any_connection().await?;
    let (response, _) = conn
        .request_best(&request(), VERSIONS)
        .await
        .map_err(|e| cluster.net_error(e))?;
    if response.error_code != 0 {
        return Err(ClientError::Kafka {
            cluster: cluster.name().to_owned(),
            api: "InitProducerId",
            topic: None,
            partition: None,
            code: KafkaCode(response.error_code),
            message: None,
        });
    }
    Ok(ProducerIdentity {
        id: response.producer_id,
        epoch: response.producer_epoch,
    })
}
