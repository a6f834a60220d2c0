//! strait's own client against real brokers: metadata, produce, fetch, and the address
//! map that sends every dial through a reachable address.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strait::client::fetch::{fetch, FetchOptions, FetchSpec, Isolation};
use strait::client::produce::produce_pipelined;
use strait::client::producer_id::init_producer_id;
use strait::client::{admin, AddressMap, Cluster};
use strait::net::ConnectOptions;
use strait::wire::batch::{patch, Batch, Piece, ProducerStamp, Splitter};
use strait::wire::codec::Compression;

use crate::harness::*;

fn cluster(bootstrap: &str, map: AddressMap) -> Arc<Cluster> {
    let options = ConnectOptions {
        request_timeout: Duration::from_secs(10),
        ..ConnectOptions::default()
    };
    Cluster::new("test", bootstrap.split(',').map(str::to_owned).collect(), map, options)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn fetch_all(c: &Cluster, topic: &str, partition: i32) -> Vec<Batch> {
    let leader = c.leader(topic, partition).await.unwrap();
    let conn = c.broker(leader).await.unwrap();
    let options = FetchOptions {
        max_wait_ms: 100,
        min_bytes: 1,
        max_bytes: 1 << 24,
        partition_max_bytes: 1 << 22,
        isolation: Isolation::ReadUncommitted,
    };
    let mut out: Vec<Batch> = Vec::new();
    loop {
        let offset = out.last().map_or(0, Batch::next_offset);
        let spec = FetchSpec {
            topic: topic.to_owned(),
            partition,
            offset,
        };
        let response = fetch(&conn, &[spec], &options).await.unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch {topic}/{partition}");
        let before = out.len();
        for piece in Splitter::new(p.records.clone()) {
            match piece.unwrap() {
                Piece::Batch(b) if b.next_offset() > offset => out.push(b),
                _ => {}
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Data records stored in the first `partitions` partitions of a topic, read with
/// strait's own client.
pub async fn count_records(c: &Cluster, topic: &str, partitions: i32) -> i64 {
    let mut n = 0;
    for p in 0..partitions {
        let batches = fetch_all(c, topic, p).await;
        n += batches
            .iter()
            .filter(|b| !b.is_control())
            .map(|b| i64::from(b.record_count()))
            .sum::<i64>();
    }
    n
}

/// The codec of every batch stored in the first `partitions` partitions of a topic.
pub fn batch_codecs(bootstrap: &str, topic: &str, partitions: i32) -> Vec<Compression> {
    runtime().block_on(async {
        let c = cluster(bootstrap, AddressMap::default());
        c.refresh(None).await.unwrap();
        let mut codecs = Vec::new();
        for p in 0..partitions {
            codecs.extend(fetch_all(&c, topic, p).await.iter().map(|b| b.compression().unwrap()));
        }
        codecs
    })
}

#[test]
fn metadata_from_the_mock_cluster_names_three_brokers_and_spreads_leaders() {
    let mut mock = MockCluster::start(3);
    spread_leaders(&mut mock, "spread");
    produce_records(&mock.bootstrap, "spread", 0, 40, "none", "confluent");
    runtime().block_on(async {
        let c = cluster(&mock.bootstrap, AddressMap::default());
        let meta = c.refresh(None).await.unwrap();
        assert_eq!(meta.brokers.len(), 3);
        let advertised: HashSet<String> = meta.brokers.values().map(|b| b.address()).collect();
        assert_eq!(advertised, mock.addresses().into_iter().collect());
        let topic = &meta.topics["spread"];
        assert_eq!(topic.partitions.len(), 4);
        let leaders: HashSet<i32> = topic.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders.len(), 3, "leaders {leaders:?}");
    });
}

pub async fn produce_golden_and_fetch_back(c: &Cluster, topic: &str) {
    let golden = Bytes::from(read(repo().join("protocol-tests/golden/rdkafka_zstd.bin")));
    let batches: Vec<Batch> = Splitter::new(golden)
        .filter_map(|p| match p.unwrap() {
            Piece::Batch(b) => Some(b),
            Piece::Truncated { .. } => None,
        })
        .collect();
    let producer = init_producer_id(c).await.unwrap();
    let mut sequence = 0;
    let mut patched = Vec::new();
    for b in &batches {
        let stamp = ProducerStamp {
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            base_sequence: sequence,
            transactional: false,
        };
        patched.push(patch(b, stamp));
        sequence += b.record_count();
    }
    let leader = c.leader(topic, 0).await.unwrap();
    let conn = c.broker(leader).await.unwrap();
    for answer in produce_pipelined(&conn, topic, 0, &patched, 10_000).await.unwrap() {
        let answer = answer.unwrap();
        assert_eq!(answer.error_code, 0, "{answer:?}");
    }
    let stored = fetch_all(c, topic, 0).await;
    let shape = |v: &[Batch]| {
        v.iter()
            .map(|b| (b.base_offset(), b.record_count()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stored.len(),
        batches.len(),
        "stored {:?}, sent {:?}",
        shape(&stored),
        shape(&batches)
    );
    for (s, b) in stored.iter().zip(&batches) {
        s.verify_crc().unwrap();
        assert_eq!(s.records(), b.records(), "the broker stores the bytes strait forwarded");
        assert_eq!(s.producer_id(), producer.id);
    }
}

#[test]
fn idempotent_produce_of_patched_batches_and_fetch_round_trip_on_tansu() {
    let tansu = Tansu::start();
    runtime().block_on(async {
        let c = cluster(&tansu.bootstrap, AddressMap::default());
        c.refresh(None).await.unwrap();
        assert!(admin::create_topic(&c, "roundtrip", 1, -1, &[]).await.unwrap());
        assert!(
            !admin::create_topic(&c, "roundtrip", 1, -1, &[]).await.unwrap(),
            "exists now"
        );
        c.refresh(Some(&["roundtrip".to_owned()])).await.unwrap();
        produce_golden_and_fetch_back(&c, "roundtrip").await;
    });
}

#[test]
fn idempotent_produce_of_patched_batches_and_fetch_round_trip_on_the_mock_cluster() {
    let mock = MockCluster::start(3);
    runtime().block_on(async {
        let c = cluster(&mock.bootstrap, AddressMap::default());
        admin::auto_create_topic(&c, "roundtrip").await.unwrap();
        c.refresh(Some(&["roundtrip".to_owned()])).await.unwrap();
        produce_golden_and_fetch_back(&c, "roundtrip").await;
    });
}

/// Creates `topic` with 4 partitions led by brokers 1, 2, 3, 1.
fn spread_leaders(mock: &mut MockCluster, topic: &str) {
    mock.command(&format!("topic {topic} 4"));
    for p in 0..4 {
        mock.command(&format!("leader {topic} {p} {}", 1 + p % 3));
    }
}

/// A TCP relay that counts the connections it carried.
async fn relay(to: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let to = to.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, count)
}

#[test]
fn the_address_map_sends_every_broker_dial_through_the_mapped_address() {
    let mut mock = MockCluster::start(3);
    spread_leaders(&mut mock, "mapped");
    produce_records(&mock.bootstrap, "mapped", 0, 40, "none", "confluent");
    runtime().block_on(async {
        let mut map = HashMap::new();
        let mut counters = HashMap::new();
        for advertised in mock.addresses() {
            let (via, count) = relay(advertised.clone()).await;
            map.insert(advertised.clone(), via);
            counters.insert(advertised, count);
        }
        let first = mock.addresses()[0].clone();
        let c = cluster(&first, AddressMap::new(map));
        let meta = c.refresh(None).await.unwrap();
        let mut leaders = HashSet::new();
        for p in 0..4 {
            assert!(!fetch_all(&c, "mapped", p).await.is_empty());
            leaders.insert(meta.brokers[&meta.leader("mapped", p).unwrap()].address());
        }
        for leader in &leaders {
            assert!(
                counters[leader].load(Ordering::SeqCst) >= 1,
                "no dial went through the relay for {leader}"
            );
        }
        assert_eq!(
            leaders.len(),
            3,
            "every broker leads a partition, so every relay must carry a dial"
        );
    });
}

#[test]
fn a_mapped_address_that_does_not_answer_is_named_in_the_error() {
    let mock = MockCluster::start(1);
    let dead = format!("127.0.0.1:{}", free_port());
    runtime().block_on(async {
        let map = AddressMap::new(HashMap::from([(mock.bootstrap.clone(), dead.clone())]));
        let c = cluster(&mock.bootstrap, map);
        let err = c.refresh(None).await.unwrap_err().to_string();
        assert!(err.contains(&mock.bootstrap), "{err}");
        let direct = c
            .connection_to(&mock.bootstrap)
            .await
            .err()
            .expect("dials the dead mapped address")
            .to_string();
        assert!(direct.contains(&dead), "{direct}");
    });
}
