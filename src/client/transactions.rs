//! Kafka transactions as one producer runs them (KIP-98), with the consumer group's
//! generation in the offset commit (KIP-447): the batches written to the target and the
//! progress committed to the flow's group become visible together or not at all, and a
//! successor that takes over the transactional id, or a group generation that moved on
//! without this member, fences whatever a zombie still sends.
//!
//! One transaction: `add_partitions` for every partition before its first batch goes out
//! (stamped transactional, produced with the transactional id), `add_offsets` for the
//! group before `commit_offsets`, then `end`. The same handle then runs the next one.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::error::{ClientError, KafkaCode, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR};
use super::group_member::Generation;
use super::group_offsets::{by_topic, coordinator_address_for, Position, GROUP_KEY, TRANSACTION_KEY};
use super::producer_id::{self, ProducerIdentity};
use super::Cluster;
use crate::wire::batch::ProducerStamp;

// librdkafka's mock cluster advertises AddPartitionsToTxn, AddOffsetsToTxn and EndTxn up
// to version 1 only, so it never gets their flexible versions; it advertises
// TxnOffsetCommit up to the flexible 3 and, unlike its group apis, reads that version's
// compact arrays correctly, so no range is capped below its first flexible version here.
// Every range stops at 3: version 4 of each only lets the broker answer
// TRANSACTION_ABORTABLE (KIP-890), which strait cannot act on yet, and later versions
// belong to the second transaction protocol (a new epoch after every transaction, and
// partitions added by the produce itself). AddPartitionsToTxn 4 and later is moreover
// the form brokers send each other.
pub(crate) const ADD_PARTITIONS_TO_TXN: (i16, i16) = (0, 3);
pub(crate) const ADD_OFFSETS_TO_TXN: (i16, i16) = (0, 3);
pub(crate) const TXN_OFFSET_COMMIT: (i16, i16) = (0, 3);
pub(crate) const END_TXN: (i16, i16) = (0, 3);

/// The first TxnOffsetCommit version that carries the member's generation, member id
/// and instance id; older ones are fenced by the transactional id alone.
const COMMIT_WITH_MEMBER: i16 = 3;

pub use super::error::INVALID_PRODUCER_EPOCH;
pub use super::group_member::{FENCED_INSTANCE_ID, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID};
/// Another producer took over the transactional id (brokers since KIP-588 say this
/// where older ones say INVALID_PRODUCER_EPOCH).
pub const PRODUCER_FENCED: i16 = 90;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
/// The coordinator is still finishing the previous transaction (writing its markers).
pub const CONCURRENT_TRANSACTIONS: i16 = 51;
pub const INVALID_TXN_STATE: i16 = 48;
/// Partitions of a request the coordinator left alone because another one failed.
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// How long answers that mean "not yet" (a coordinator loading or moving, the previous
/// transaction still completing) are retried before the error is returned.
const RETRY_WITHIN: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Whether `error` says another producer or group member has taken this one's place:
/// no retry can succeed, and whoever took over carries on.
pub fn is_fenced(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Kafka { code: KafkaCode(code), .. } if matches!(
            *code,
            INVALID_PRODUCER_EPOCH | PRODUCER_FENCED | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID
        )
    )
}

/// Finds the coordinator of `transactional_id` and registers this producer with it: any
/// earlier producer of the same id is fenced (its epoch is bumped past) and the
/// transaction it left open is aborted. A transaction left open longer than
/// `transaction_timeout` is aborted by the coordinator.
pub async fn init_transactional(
    cluster: &Cluster,
    transactional_id: &str,
    transaction_timeout: Duration,
) -> Result<ProducerIdentity, ClientError> {
    Ok(init(cluster, transactional_id, transaction_timeout).await?.0)
}

async fn init(
    cluster: &Cluster,
    transactional_id: &str,
    transaction_timeout: Duration,
) -> Result<(ProducerIdentity, String), ClientError> {
    let timeout_ms = i32::try_from(transaction_timeout.as_millis()).unwrap_or(i32::MAX);
    let request = producer_id::transactional_request(transactional_id, timeout_ms);
    retrying(|| async {
        let coordinator = coordinator_address_for(cluster, TRANSACTION_KEY, transactional_id).await?;
        let conn = cluster.connection_to(&coordinator).await?;
        let (response, _) = conn
            .request_best(&request, producer_id::VERSIONS)
            .await
            .map_err(|e| cluster.net_error(e))?;
        if response.error_code != 0 {
            return Err(txn_error(
                cluster,
                "InitProducerId",
                transactional_id,
                response.error_code,
            ));
        }
        let producer = ProducerIdentity {
            id: response.producer_id,
            epoch: response.producer_epoch,
        };
        Ok((producer, coordinator))
    })
    .await
}

/// A transactional producer: its id, the identity its coordinator gave it, and where
/// that coordinator is. It runs one transaction at a time, and the next after `end`.
pub struct Transaction {
    transactional_id: String,
    producer: ProducerIdentity,
    /// The transaction coordinator's address; `None` once it said it moved.
    coordinator: Mutex<Option<String>>,
    /// Each group's coordinator, as last found.
    group_coordinators: Mutex<HashMap<String, String>>,
    /// Partitions already in the open transaction, not sent again until it ends.
    added: Mutex<HashSet<(String, i32)>>,
    /// Whether anything was added since the last end: a coordinator with nothing to end
    /// answers INVALID_TXN_STATE, so such an end sends nothing.
    open: AtomicBool,
}

impl Transaction {
    /// Registers a transactional producer (see `init_transactional`) and keeps its
    /// coordinator for the transactions that follow.
    pub async fn init(
        cluster: &Cluster,
        transactional_id: &str,
        transaction_timeout: Duration,
    ) -> Result<Transaction, ClientError> {
        let (producer, coordinator) = init(cluster, transactional_id, transaction_timeout).await?;
        Ok(Transaction::new(transactional_id.to_owned(), producer, coordinator))
    }

    /// A handle for a producer registered before (by `init_transactional`).
    pub fn new(transactional_id: String, producer: ProducerIdentity, coordinator: String) -> Transaction {
        Transaction {
            transactional_id,
            producer,
            coordinator: Mutex::new(Some(coordinator)),
            group_coordinators: Mutex::default(),
            added: Mutex::default(),
            open: AtomicBool::new(false),
        }
    }

    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    pub fn producer(&self) -> ProducerIdentity {
        self.producer
    }

    /// What a batch of this transaction carries: the producer's identity and the
    /// transactional bit, so that the broker holds it back from read_committed readers
    /// until the transaction ends and drops it if it aborts.
    pub fn stamp(&self, base_sequence: i32) -> ProducerStamp {
        ProducerStamp {
            producer_id: self.producer.id,
            producer_epoch: self.producer.epoch,
            base_sequence,
            transactional: true,
        }
    }

    /// Adds partitions to the open transaction (opening one if none is); partitions
    /// already in it are not sent again. A batch produced to a partition before it was
    /// added is refused, or never committed.
    pub async fn add_partitions(&self, cluster: &Cluster, partitions: &[(String, i32)]) -> Result<(), ClientError> {
        let new: Vec<(String, i32)> = {
            let added = lock(&self.added);
            let mut new: Vec<(String, i32)> = partitions.iter().filter(|p| !added.contains(*p)).cloned().collect();
            new.sort();
            new.dedup();
            new
        };
        if new.is_empty() {
            return Ok(());
        }
        self.open.store(true, Ordering::SeqCst);
        let request = add_partitions_request(&self.transactional_id, self.producer, &new);
        retrying(|| async {
            let conn = cluster.connection_to(&self.coordinator(cluster).await?).await?;
            let (response, _) = conn
                .request_best(&request, ADD_PARTITIONS_TO_TXN)
                .await
                .map_err(|e| cluster.net_error(e))?;
            let failed = response
                .partitions
                .iter()
                .filter(|p| p.error_code != 0)
                .min_by_key(|p| p.error_code == OPERATION_NOT_ATTEMPTED);
            match failed {
                Some(p) => Err(self.failed(
                    cluster,
                    "AddPartitionsToTxn",
                    Some((&p.topic, p.partition_index)),
                    p.error_code,
                )),
                None => Ok(()),
            }
        })
        .await?;
        lock(&self.added).extend(new);
        Ok(())
    }

    /// Tells the transaction coordinator that `group`'s offsets commit with this
    /// transaction; `commit_offsets` for the group must follow it, within the same
    /// transaction.
    pub async fn add_offsets(&self, cluster: &Cluster, group: &str) -> Result<(), ClientError> {
        self.open.store(true, Ordering::SeqCst);
        let request = add_offsets_request(&self.transactional_id, self.producer, group);
        retrying(|| async {
            let conn = cluster.connection_to(&self.coordinator(cluster).await?).await?;
            let (response, _) = conn
                .request_best(&request, ADD_OFFSETS_TO_TXN)
                .await
                .map_err(|e| cluster.net_error(e))?;
            match response.error_code {
                0 => Ok(()),
                code => Err(self.failed(cluster, "AddOffsetsToTxn", None, code)),
            }
        })
        .await
    }

    /// Commits `positions` to `group` within the transaction, sent to the group's
    /// coordinator as `member`: the group refuses the commit of a member it no longer
    /// counts (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) where the
    /// version carries the generation. A caller outside the group's membership passes
    /// generation -1 and an empty member id, which a group without members accepts.
    pub async fn commit_offsets(
        &self,
        cluster: &Cluster,
        group: &str,
        member: &Generation,
        positions: &[Position],
    ) -> Result<(), ClientError> {
        if positions.is_empty() {
            return Ok(());
        }
        retrying(|| async {
            let address = self.group_coordinator(cluster, group).await?;
            let conn = cluster.connection_to(&address).await?;
            let (response, _) = conn
                .request_built(TXN_OFFSET_COMMIT, |v| {
                    txn_offset_commit_request(&self.transactional_id, self.producer, group, member, positions, v)
                })
                .await
                .map_err(|e| cluster.net_error(e))?;
            match response.partitions.iter().find(|p| p.error_code != 0) {
                Some(p) => {
                    if matches!(p.error_code, NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) {
                        lock(&self.group_coordinators).remove(group);
                    }
                    let code = p.error_code;
                    let mut error = txn_error(cluster, "TxnOffsetCommit", &self.transactional_id, code);
                    if let ClientError::Kafka {
                        topic,
                        partition,
                        message,
                        ..
                    } = &mut error
                    {
                        *topic = Some(p.topic.clone());
                        *partition = Some(p.partition_index);
                        if let Some(why) = member_fenced(group, member, code) {
                            *message = Some(why);
                        }
                    }
                    Err(error)
                }
                None => Ok(()),
            }
        })
        .await
    }

    /// Commits (`commit`) or aborts the open transaction; the next `add_partitions` or
    /// `add_offsets` opens another. With nothing added since the last end there is no
    /// transaction and nothing is sent.
    pub async fn end(&self, cluster: &Cluster, commit: bool) -> Result<(), ClientError> {
        if !self.open.load(Ordering::SeqCst) {
            return Ok(());
        }
        let request = end_request(&self.transactional_id, self.producer, commit);
        retrying(|| async {
            let conn = cluster.connection_to(&self.coordinator(cluster).await?).await?;
            let (response, _) = conn
                .request_best(&request, END_TXN)
                .await
                .map_err(|e| cluster.net_error(e))?;
            match response.error_code {
                0 => Ok(()),
                code => Err(self.failed(cluster, "EndTxn", None, code)),
            }
        })
        .await?;
        lock(&self.added).clear();
        self.open.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The transaction coordinator's address, found again after it moved.
    async fn coordinator(&self, cluster: &Cluster) -> Result<String, ClientError> {
        if let Some(address) = lock(&self.coordinator).clone() {
            return Ok(address);
        }
        let address = coordinator_address_for(cluster, TRANSACTION_KEY, &self.transactional_id).await?;
        *lock(&self.coordinator) = Some(address.clone());
        Ok(address)
    }

    async fn group_coordinator(&self, cluster: &Cluster, group: &str) -> Result<String, ClientError> {
        if let Some(address) = lock(&self.group_coordinators).get(group).cloned() {
            return Ok(address);
        }
        let address = coordinator_address_for(cluster, GROUP_KEY, group).await?;
        lock(&self.group_coordinators).insert(group.to_owned(), address.clone());
        Ok(address)
    }

    /// The error for a transaction coordinator's answer; one that says the coordinator
    /// moved makes the next attempt look for it again.
    fn failed(&self, cluster: &Cluster, api: &'static str, at: Option<(&str, i32)>, code: i16) -> ClientError {
        if matches!(code, NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) {
            *lock(&self.coordinator) = None;
        }
        let mut error = txn_error(cluster, api, &self.transactional_id, code);
        if let (ClientError::Kafka { topic, partition, .. }, Some((t, p))) = (&mut error, at) {
            *topic = Some(t.to_owned());
            *partition = Some(p);
        }
        error
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A broker's error about a transactional id, saying in words what a fencing means.
fn txn_error(cluster: &Cluster, api: &'static str, transactional_id: &str, code: i16) -> ClientError {
    let message = match code {
        INVALID_PRODUCER_EPOCH | PRODUCER_FENCED => Some(format!(
            "fenced: a newer producer took over transactional id {transactional_id}"
        )),
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED => {
            Some(format!("not allowed to use transactional id {transactional_id}"))
        }
        _ => None,
    };
    ClientError::Kafka {
        cluster: cluster.name().to_owned(),
        api,
        topic: None,
        partition: None,
        code: KafkaCode(code),
        message,
    }
}

/// What a group's refusal of a member's commit means, for the fencing codes.
fn member_fenced(group: &str, member: &Generation, code: i16) -> Option<String> {
    match code {
        ILLEGAL_GENERATION => Some(format!(
            "fenced: group {group} has moved past generation {} of member {}",
            member.id, member.member_id
        )),
        UNKNOWN_MEMBER_ID => Some(format!(
            "fenced: group {group} no longer counts member {}",
            member.member_id
        )),
        FENCED_INSTANCE_ID => Some(format!(
            "fenced: another member of group {group} took instance id {}",
            member.instance_id.as_deref().unwrap_or("")
        )),
        _ => None,
    }
}

/// Runs `attempt` again while its error means "not yet" (a coordinator loading, moving
/// or unreachable for now; the previous transaction still completing), backing off, up
/// to `RETRY_WITHIN`; any other error, or the last one, is returned.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let deadline = Instant::now() + RETRY_WITHIN;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match attempt().await {
            Err(e) if not_yet(&e) && Instant::now() + backoff < deadline => {
                tracing::debug!(error = %e, ?backoff, "transaction request to be retried");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}

fn not_yet(error: &ClientError) -> bool {
    match error {
        ClientError::Kafka {
            code: KafkaCode(code), ..
        } => matches!(
            *code,
            COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR | CONCURRENT_TRANSACTIONS
        ),
        ClientError::Net { source, .. } => source.is_retriable(),
        ClientError::NoBroker { .. } => true,
        _ => false,
    }
}

fn transactional_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_owned()))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

pub(crate) fn add_partitions_request(
    id: &str,
    producer: ProducerIdentity,
    partitions: &[(String, i32)],
) -> AddPartitionsToTxnRequest {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(*partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(transactional_id(id))
        .with_v3_and_below_producer_id(ProducerId(producer.id))
        .with_v3_and_below_producer_epoch(producer.epoch)
        .with_v3_and_below_topics(topics)
}

pub(crate) fn add_offsets_request(id: &str, producer: ProducerIdentity, group: &str) -> AddOffsetsToTxnRequest {
    AddOffsetsToTxnRequest::default()
        .with_transactional_id(transactional_id(id))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
}

/// The request at `version`: the member's generation, id and instance id go only where
/// the version has the fields.
pub(crate) fn txn_offset_commit_request(
    id: &str,
    producer: ProducerIdentity,
    group: &str,
    member: &Generation,
    positions: &[Position],
    version: i16,
) -> TxnOffsetCommitRequest {
    let topics = by_topic(positions)
        .into_iter()
        .map(|(topic, positions)| {
            let partitions = positions
                .into_iter()
                .map(|p| {
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(p.partition)
                        .with_committed_offset(p.offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(StrBytes::from_string(p.metadata.clone())))
                })
                .collect();
            TxnOffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(partitions)
        })
        .collect();
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(transactional_id(id))
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_topics(topics);
    if version < COMMIT_WITH_MEMBER {
        return request;
    }
    request
        .with_generation_id(member.id)
        .with_member_id(StrBytes::from_string(member.member_id.clone()))
        .with_group_instance_id(member.instance_id.clone().map(StrBytes::from_string))
}

pub(crate) fn end_request(id: &str, producer: ProducerIdentity, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(transactional_id(id))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_committed(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(code: i16) -> ClientError {
        ClientError::Kafka {
            cluster: "c".into(),
            api: "EndTxn",
            topic: None,
            partition: None,
            code: KafkaCode(code),
            message: None,
        }
    }

    #[test]
    fn fencing_codes_are_fenced_and_not_retried() {
        for code in [
            INVALID_PRODUCER_EPOCH,
            PRODUCER_FENCED,
            ILLEGAL_GENERATION,
            UNKNOWN_MEMBER_ID,
            FENCED_INSTANCE_ID,
        ] {
            assert!(is_fenced(&kafka(code)), "{code}");
            assert!(!not_yet(&kafka(code)), "{code}");
        }
        for code in [
            COORDINATOR_LOAD_IN_PROGRESS,
            COORDINATOR_NOT_AVAILABLE,
            NOT_COORDINATOR,
            CONCURRENT_TRANSACTIONS,
        ] {
            assert!(!is_fenced(&kafka(code)), "{code}");
            assert!(not_yet(&kafka(code)), "{code}");
        }
        assert!(!is_fenced(&kafka(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)));
        assert!(!not_yet(&kafka(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)));
    }

    #[test]
    fn a_fencing_error_says_who_was_fenced() {
        let cluster = Cluster::new("target", vec![], Default::default(), Default::default());
        let e = txn_error(&cluster, "EndTxn", "flow-a-0", PRODUCER_FENCED).to_string();
        assert!(
            e.contains("a newer producer took over transactional id flow-a-0"),
            "{e}"
        );
        let member = Generation {
            id: 7,
            member_id: "m-1".into(),
            instance_id: Some("host-a".into()),
        };
        let why = member_fenced("flow-a", &member, ILLEGAL_GENERATION).unwrap();
        assert!(why.contains("generation 7 of member m-1"), "{why}");
        assert!(member_fenced("flow-a", &member, FENCED_INSTANCE_ID)
            .unwrap()
            .contains("host-a"));
        assert_eq!(member_fenced("flow-a", &member, 3), None);
    }

    #[test]
    fn partitions_are_grouped_by_topic() {
        let producer = ProducerIdentity { id: 9, epoch: 2 };
        let partitions = [("a".to_owned(), 0), ("b".to_owned(), 4), ("a".to_owned(), 3)];
        let r = add_partitions_request("t", producer, &partitions);
        let got: Vec<_> = r
            .v3_and_below_topics
            .iter()
            .map(|t| (t.name.0.as_str(), t.partitions.clone()))
            .collect();
        assert_eq!(got, [("a", vec![0, 3]), ("b", vec![4])]);
    }

    #[test]
    fn the_member_goes_only_into_versions_that_carry_it() {
        let producer = ProducerIdentity { id: 9, epoch: 2 };
        let member = Generation {
            id: 7,
            member_id: "m-1".into(),
            instance_id: Some("host-a".into()),
        };
        let positions = [Position {
            topic: "a".into(),
            partition: 1,
            offset: 42,
            metadata: "m".into(),
        }];
        let old = txn_offset_commit_request("t", producer, "g", &member, &positions, 2);
        assert_eq!((old.generation_id, old.member_id.as_str()), (-1, ""));
        let new = txn_offset_commit_request("t", producer, "g", &member, &positions, 3);
        assert_eq!((new.generation_id, new.member_id.as_str()), (7, "m-1"));
        assert_eq!(new.group_instance_id.as_deref(), Some("host-a"));
    }
}
