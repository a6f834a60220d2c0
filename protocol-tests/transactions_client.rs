//! strait's transactional client against real brokers: a transaction's batches and its
//! group offsets become visible together when it commits and not at all when it aborts,
//! and a second producer of the same transactional id fences the first.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use strait::client::fetch::{fetch, FetchOptions, FetchSpec, Isolation};
use strait::client::group_member::{Generation, GroupMember, MemberOptions};
use strait::client::group_offsets::{self, Position};
use strait::client::produce::ACKS_ALL;
use strait::client::transactions::{is_fenced, Transaction};
use strait::client::{admin, AddressMap, ClientError, Cluster};
use strait::net::ConnectOptions;
use strait::wire::batch::{patch, Piece, Splitter};
use strait::wire::build::batch_of;
use strait::wire::produce::{
    decode_produce_response, encode_produce_request, ProducePartition, ProduceRequest, MAX_VERSION, MIN_VERSION,
};
use strait::wire::records::read_records;

use crate::client::runtime;
use crate::harness::*;

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

fn cluster(bootstrap: &str) -> Arc<Cluster> {
    let options = ConnectOptions {
        request_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    };
    Cluster::new(
        "target",
        bootstrap.split(',').map(str::to_owned).collect(),
        AddressMap::default(),
        options,
    )
}

/// What a peer does that Apache Kafka does too; each `false` is a quirk, seen and named
/// where the peer starts.
struct Peer {
    bootstrap: String,
    /// Whether TxnOffsetCommit offsets show in OffsetFetch once the transaction commits.
    stores_transactional_offsets: bool,
    /// Whether OffsetFetch answers the metadata committed with an offset.
    keeps_offset_metadata: bool,
    /// Whether a second InitProducerId for a transactional id fences the first producer.
    fences_by_transactional_id: bool,
    /// Whether a fenced producer's EndTxn gets an answer (rather than a closed connection).
    answers_a_fenced_end: bool,
    /// Whether the commit and abort markers the broker writes carry a valid CRC32C.
    control_batches_pass_crc_checks: bool,
    /// Whether a read_committed Fetch lists aborted transactions, which librdkafka's
    /// consumer needs to drop their records.
    lists_aborted_transactions: bool,
}

/// The producer sequence of each partition: it goes on across transactions while the
/// epoch stays.
#[derive(Default)]
struct Sequences(HashMap<i32, i32>);

/// Produces one transactional batch of `values` to a partition's leader, carrying the
/// transactional id as a transactional producer's Produce must.
async fn produce(
    c: &Cluster,
    txn: &Transaction,
    sequences: &mut Sequences,
    topic: &str,
    partition: i32,
    values: &[String],
) -> Result<(), ClientError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let bytes: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    let sequence = sequences.0.entry(partition).or_default();
    let batch = patch(&batch_of(&bytes, now).unwrap(), txn.stamp(*sequence));
    let conn = c.broker(c.leader(topic, partition).await?).await?;
    let version = conn
        .pick_version(ApiKey::Produce, (MIN_VERSION, MAX_VERSION))
        .map_err(|e| c.net_error(e))?;
    let id = conn.next_correlation_id();
    let request = ProduceRequest {
        transactional_id: Some(txn.transactional_id()),
        acks: ACKS_ALL,
        timeout_ms: 10_000,
        partition: ProducePartition {
            topic,
            partition,
            batches: std::slice::from_ref(&batch),
        },
    };
    let parts = encode_produce_request(&request, version, id, conn.client_id()).unwrap();
    let frame = conn
        .round_trip(parts, id, "Produce")
        .await
        .map_err(|e| c.net_error(e))?;
    let answer = decode_produce_response(&frame[4..], version).unwrap().remove(0);
    if answer.error_code != 0 {
        return Err(ClientError::Kafka {
            cluster: c.name().to_owned(),
            api: "Produce",
            topic: Some(topic.to_owned()),
            partition: Some(partition),
            code: strait::client::KafkaCode(answer.error_code),
            message: answer.error_message,
        });
    }
    *sequence += values.len() as i32;
    Ok(())
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn hex(v: &str) -> String {
    hex_bytes(v.as_bytes())
}

fn hex_bytes(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

/// The control record key type of a commit marker (0 is an abort).
const COMMIT_MARKER: i16 = 1;

/// A librdkafka consumer that prints each value in hex, for a peer whose control batches
/// fail librdkafka's CRC check: the same reader as `consume` with CRC checks off, the
/// data batches' CRCs being checked by `decided` instead.
const UNCHECKED_CONSUMER: &str = r#"
import sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, isolation, expect, idle = sys.argv[1:]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strait-txn-reader", "enable.auto.commit": False,
              "check.crcs": False, "isolation.level": isolation, "auto.offset.reset": "earliest"})
meta = c.list_topics(topic, timeout=20)
c.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
seen, last = 0, time.time()
while time.time() - last < float(idle) and seen < int(expect):
    m = c.poll(0.2)
    if m is None:
        continue
    if m.error():
        if m.error().code() == -191:  # partition EOF
            continue
        sys.exit(str(m.error()))
    seen, last = seen + 1, time.time()
    print(m.value().hex(), flush=True)
c.close()
"#;

/// The values (in hex) a librdkafka consumer at `isolation` reads from `topic`, waiting
/// for up to `expect` records (and `idle` seconds without one).
fn read(peer: &Peer, topic: &str, expect: usize, isolation: &str, idle: u32) -> HashSet<String> {
    if peer.control_batches_pass_crc_checks {
        return consume_within(&peer.bootstrap, &[topic], expect, isolation, idle)
            .into_iter()
            .map(|r| r.value.expect("a value"))
            .collect();
    }
    let (expect, idle) = (expect.to_string(), idle.to_string());
    let out = std::process::Command::new(python())
        .args([
            "-c",
            UNCHECKED_CONSUMER,
            &peer.bootstrap,
            topic,
            isolation,
            &expect,
            &idle,
        ])
        .output()
        .expect("run the consumer");
    assert!(
        out.status.success(),
        "consumer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The values of `topic` by the marker that ended their transaction, as the broker
/// stored them (read with strait's own fetch, every data batch's CRC32C checked): what
/// read_committed means, judged without the broker's aborted-transactions list.
#[derive(Debug, Default)]
struct Decided {
    committed: HashSet<String>,
    aborted: HashSet<String>,
}

async fn decided(c: &Cluster, topic: &str) -> Decided {
    let options = FetchOptions {
        max_wait_ms: 100,
        min_bytes: 1,
        max_bytes: 1 << 20,
        partition_max_bytes: 1 << 20,
        isolation: Isolation::ReadUncommitted,
    };
    let mut out = Decided::default();
    for partition in 0..4 {
        let conn = c.broker(c.leader(topic, partition).await.unwrap()).await.unwrap();
        let mut open: HashMap<i64, Vec<String>> = HashMap::new();
        let mut offset = 0;
        loop {
            let spec = FetchSpec {
                topic: topic.to_owned(),
                partition,
                offset,
            };
            let response = fetch(&conn, &[spec], &options).await.unwrap();
            let records = response.topics[0].partitions[0].records.clone();
            let before = offset;
            // The mock answers a fetch with at most one batch per partition.
            for piece in Splitter::new(records) {
                let Piece::Batch(b) = piece.unwrap() else { continue };
                if b.next_offset() <= offset {
                    continue;
                }
                offset = b.next_offset();
                let section = b.records();
                let records = read_records(&section, b.record_count()).unwrap();
                if b.is_control() {
                    let key = records[0].key.expect("a control key");
                    let decided = match i16::from_be_bytes([key[2], key[3]]) {
                        COMMIT_MARKER => &mut out.committed,
                        _ => &mut out.aborted,
                    };
                    decided.extend(open.remove(&b.producer_id()).unwrap_or_default());
                    continue;
                }
                let at = format!("{topic}/{partition} at {}", b.base_offset());
                b.verify_crc().unwrap_or_else(|e| panic!("{at}: {e}"));
                assert!(b.is_transactional(), "{at}: not transactional");
                let values = records.iter().map(|r| hex_bytes(r.value.unwrap_or_default()));
                open.entry(b.producer_id()).or_default().extend(values);
            }
            if offset == before {
                break;
            }
        }
        assert!(
            open.values().all(Vec::is_empty),
            "{topic}/{partition}: undecided {open:?}"
        );
    }
    out
}

fn hexed(sets: &[&[String]]) -> HashSet<String> {
    sets.iter().flat_map(|s| s.iter().map(|v| hex(v))).collect()
}

/// Joins `group` as its only member and keeps the membership alive with heartbeats, so
/// that the transactional commits carry a generation the coordinator counts.
async fn join_alone(c: &Arc<Cluster>, group: &str) -> (Generation, tokio::task::JoinHandle<ClientError>) {
    let options = MemberOptions {
        group: group.to_owned(),
        instance_id: Some("txn-test-host".into()),
        // The mock cluster drops members whose session is shorter than its 3 s initial
        // rebalance delay, and holds a rebalance for about the session less a second.
        session_timeout: Duration::from_secs(6),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "strait".into(),
        protocol_name: "txn-test".into(),
    };
    let mut member = GroupMember::new(c.clone(), options);
    let joined = member.join(Bytes::from_static(b"m")).await.expect("join");
    assert!(joined.leader, "the only member leads");
    let generation = joined.generation.clone();
    let assignment = vec![(generation.member_id.clone(), Bytes::from_static(b"all"))];
    member.sync(&generation, assignment).await.expect("sync");
    let beating = generation.clone();
    let heartbeats = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Err(e) = member.heartbeat(&beating).await {
                return e;
            }
        }
    });
    (generation, heartbeats)
}

fn positions(topic: &str, offsets: &[(i32, i64)], metadata: &str) -> Vec<Position> {
    offsets
        .iter()
        .map(|&(partition, offset)| Position {
            topic: topic.to_owned(),
            partition,
            offset,
            metadata: metadata.to_owned(),
        })
        .collect()
}

async fn committed(c: &Cluster, group: &str, topic: &str) -> HashMap<i32, (i64, String)> {
    let partitions: Vec<(String, i32)> = (0..4).map(|p| (topic.to_owned(), p)).collect();
    group_offsets::fetch(c, group, &partitions)
        .await
        .expect("OffsetFetch")
        .into_iter()
        .map(|((_, p), v)| (p, v))
        .collect()
}

fn transactions_commit_abort_and_fence(peer: &Peer, topic: &str) {
    let (group, id) = ("txn-flow", "txn-flow-0");
    let a = values("committed-a", 3);
    let b = values("committed-b", 2);
    let aborted = values("aborted", 4);
    runtime().block_on(async {
        let c = cluster(&peer.bootstrap);
        admin::ensure_topic(&c, topic, 4).await.unwrap();
        let (generation, heartbeats) = join_alone(&c, group).await;
        let txn = Transaction::init(&c, id, TXN_TIMEOUT).await.unwrap();
        assert!(txn.producer().id >= 0, "{:?}", txn.producer());
        let mut sequences = Sequences::default();

        // One transaction over two partitions, with the group's progress.
        let first = [(topic.to_owned(), 0), (topic.to_owned(), 1)];
        txn.add_partitions(&c, &first).await.unwrap();
        produce(&c, &txn, &mut sequences, topic, 0, &a).await.unwrap();
        produce(&c, &txn, &mut sequences, topic, 1, &b).await.unwrap();
        txn.add_offsets(&c, group).await.unwrap();
        let progress = positions(topic, &[(0, 3), (1, 2)], "first");
        txn.commit_offsets(&c, group, &generation, &progress).await.unwrap();
        txn.end(&c, true).await.unwrap();

        let seen = tokio::task::block_in_place(|| read(peer, topic, 5, "read_committed", 8));
        assert_eq!(
            seen,
            hexed(&[&a, &b]),
            "a committed transaction shows to read_committed"
        );
        let log = decided(&c, topic).await;
        assert_eq!(log.committed, hexed(&[&a, &b]), "the commit markers");
        assert!(log.aborted.is_empty(), "{log:?}");
        let stored = committed(&c, group, topic).await;
        if peer.stores_transactional_offsets {
            let metadata = if peer.keeps_offset_metadata { "first" } else { "" };
            let expected = HashMap::from([(0, (3, metadata.to_owned())), (1, (2, metadata.to_owned()))]);
            assert_eq!(stored, expected, "a committed transaction's offsets");
        }

        // The next transaction aborts: neither its batch nor its progress shows.
        txn.add_partitions(&c, &first[..1]).await.unwrap();
        produce(&c, &txn, &mut sequences, topic, 0, &aborted).await.unwrap();
        txn.add_offsets(&c, group).await.unwrap();
        let progress = positions(topic, &[(0, 7), (1, 2)], "second");
        txn.commit_offsets(&c, group, &generation, &progress).await.unwrap();
        txn.end(&c, false).await.unwrap();

        let log = decided(&c, topic).await;
        assert_eq!(log.committed, hexed(&[&a, &b]), "the commit markers");
        assert_eq!(log.aborted, hexed(&[&aborted]), "the abort marker");
        if peer.lists_aborted_transactions {
            let seen = tokio::task::block_in_place(|| read(peer, topic, 9, "read_committed", 4));
            assert_eq!(seen, hexed(&[&a, &b]), "an aborted transaction stays hidden");
        }
        assert_eq!(
            committed(&c, group, topic).await,
            stored,
            "aborted offsets are not committed"
        );

        // A second producer of the same transactional id fences the first.
        txn.add_partitions(&c, &[(topic.to_owned(), 2)]).await.unwrap();
        let successor = Transaction::init(&c, id, TXN_TIMEOUT).await.unwrap();
        if peer.fences_by_transactional_id {
            let added = txn.add_partitions(&c, &[(topic.to_owned(), 3)]).await;
            let e = added.expect_err("a fenced producer adds nothing");
            assert!(is_fenced(&e), "{e}");
            assert!(e.to_string().contains("fenced"), "{e}");
            let late = values("zombie", 1);
            let produced = produce(&c, &txn, &mut sequences, topic, 2, &late).await;
            let e = produced.expect_err("a fenced producer writes nothing");
            assert!(is_fenced(&e), "{e}");
            if peer.answers_a_fenced_end {
                let ended = txn.end(&c, true).await.expect_err("a fenced producer ends nothing");
                assert!(is_fenced(&ended), "{ended}");
            }
        }
        let later = values("successor", 2);
        let mut successor_sequences = Sequences::default();
        successor.add_partitions(&c, &[(topic.to_owned(), 3)]).await.unwrap();
        produce(&c, &successor, &mut successor_sequences, topic, 3, &later)
            .await
            .unwrap();
        successor.end(&c, true).await.unwrap();
        let log = decided(&c, topic).await;
        assert_eq!(log.committed, hexed(&[&a, &b, &later]), "the successor's commit");
        assert_eq!(log.aborted, hexed(&[&aborted]), "nothing of the zombie's");
        if heartbeats.is_finished() {
            panic!("the member fell out of its group: {}", heartbeats.await.unwrap());
        }
        heartbeats.abort();
    });
}

#[test]
fn transactions_commit_abort_and_fence_on_the_mock_cluster() {
    let mock = MockCluster::start(3);
    // librdkafka 2.16's mock answers TxnOffsetCommit without storing anything; its second
    // InitProducerId for a transactional id makes a new producer id and leaves the old
    // one valid, so nothing is fenced; its commit and abort markers carry a CRC of 0; and
    // its read_committed Fetch lists no aborted transactions, so librdkafka's consumer
    // delivers aborted records.
    let peer = Peer {
        bootstrap: mock.bootstrap.clone(),
        stores_transactional_offsets: false,
        keeps_offset_metadata: true,
        fences_by_transactional_id: false,
        answers_a_fenced_end: true,
        control_batches_pass_crc_checks: false,
        lists_aborted_transactions: false,
    };
    transactions_commit_abort_and_fence(&peer, "txn-mock");
}

#[test]
fn transactions_commit_abort_and_fence_on_tansu() {
    let tansu = Tansu::start();
    // Tansu answers OffsetFetch with empty metadata (plain commits too); it closes the
    // connection on a fenced producer's EndTxn instead of answering PRODUCER_FENCED; and
    // its read_committed Fetch lists no aborted transactions.
    let peer = Peer {
        bootstrap: tansu.bootstrap.clone(),
        stores_transactional_offsets: true,
        keeps_offset_metadata: false,
        fences_by_transactional_id: true,
        answers_a_fenced_end: false,
        control_batches_pass_crc_checks: true,
        lists_aborted_transactions: false,
    };
    transactions_commit_abort_and_fence(&peer, "txn-tansu");
}
