//! KIP-951: a Produce (v10 on) or Fetch (v16 on) answer about a partition whose leader
//! moved names the new leader's host and port. Through the proxy, that address must be
//! the proxy's, or the client would leave the proxy for a broker it may not reach.

use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::harness::*;
use crate::metrics::{get, scrape_until, sum};
use crate::proxy::{port_of, proxy, raw_round_trip};

/// A flexible request header (v2) with correlation id 42.
fn header(api_key: i16, version: i16) -> BytesMut {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("kip951")))
        .encode(&mut buf, 2)
        .unwrap();
    buf
}

/// Sends a flexible request and returns the answer's body (header v1 removed).
fn ask(s: &mut TcpStream, request: BytesMut) -> (Vec<u8>, Bytes) {
    let answer = raw_round_trip(s, &request).expect("an answer");
    let mut body = Bytes::from(answer.clone());
    assert_eq!(body.get_i32(), 42);
    assert_eq!(body.get_u8(), 0, "no header tags");
    (answer, body)
}

fn topic_id(s: &mut TcpStream, topic: &str) -> uuid::Uuid {
    let mut request = header(3, 12);
    let wanted = MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))));
    MetadataRequest::default()
        .with_topics(Some(vec![wanted]))
        .encode(&mut request, 12)
        .unwrap();
    let (_, mut body) = ask(s, request);
    MetadataResponse::decode(&mut body, 12).unwrap().topics[0].topic_id
}

/// A Fetch answer's node endpoints as (node, host, port).
fn fetch_endpoints(got: &FetchResponse) -> Vec<(i32, String, i32)> {
    got.node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.host.to_string(), e.port))
        .collect()
}

/// A Fetch v16 from offset 0 of each partition, up to 1 MiB each.
fn fetch_v16(topic_id: uuid::Uuid, partitions: &[i32]) -> BytesMut {
    let mut request = header(1, 16);
    let partitions = partitions.iter().map(|&p| {
        FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)
    });
    FetchRequest::default()
        .with_max_wait_ms(10)
        .with_min_bytes(1)
        .with_max_bytes(4 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(partitions.collect())])
        .encode(&mut request, 16)
        .unwrap();
    request
}

/// A Produce v10 for one partition, with no records: only the leader check matters.
fn produce_v10(topic: &str, partition: i32) -> BytesMut {
    let mut buf = header(0, 10);
    let data = PartitionProduceData::default()
        .with_index(partition)
        .with_records(Some(Bytes::new()));
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![data])])
        .encode(&mut buf, 10)
        .unwrap();
    buf
}

#[test]
fn produce_and_fetch_answers_about_a_moved_leader_name_it_at_the_proxy() {
    let mut mock = MockCluster::start(3);
    let upstream = mock.addresses();
    mock.command("topic moved 2");
    mock.command("leader moved 0 2");
    let base = free_port_base(4);
    let (strait, _) = proxy(&mock.bootstrap, &["--port-base", &base.to_string()]);
    let broker_1 = format!("127.0.0.1:{}", base + 1);
    wait_for_port(&broker_1, Duration::from_secs(10));
    let mut s = TcpStream::connect(&broker_1).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    let (answer, mut body) = ask(&mut s, produce_v10("moved", 0));
    let got = ProduceResponse::decode(&mut body, 10).unwrap();
    let partition = &got.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 6, "NOT_LEADER_OR_FOLLOWER from broker 1");
    assert_eq!(partition.current_leader.leader_id.0, 2);
    let endpoints: Vec<(i32, String, i32)> = got
        .node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.host.to_string(), e.port))
        .collect();
    assert_eq!(endpoints, [(2, "127.0.0.1".to_owned(), i32::from(base) + 2)]);
    let leader_port: i32 = port_of(&upstream[1]).parse().unwrap();
    assert!(
        !answer.windows(4).any(|w| w == leader_port.to_be_bytes()),
        "broker 2's own port {leader_port} appears nowhere in the answer"
    );

    let moved = topic_id(&mut s, "moved");
    let request = fetch_v16(moved, &[0]);
    let (answer, mut body) = ask(&mut s, request);
    let got = FetchResponse::decode(&mut body, 16).unwrap();
    assert_eq!(
        got.responses[0].partitions[0].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER from broker 1"
    );
    assert_eq!(
        fetch_endpoints(&got),
        [(2, "127.0.0.1".to_owned(), i32::from(base) + 2)],
        "Fetch v16"
    );
    assert!(!answer.windows(4).any(|w| w == leader_port.to_be_bytes()));
    assert!(strait.stop().success());
}

/// A Fetch answer of over 100 kB goes to the client as it arrives, before its end (where
/// the node endpoints are) is read. The rewrite must keep the length announced: with a
/// shorter advertised host it is padded with an unknown tag, with a longer one the
/// endpoints are left out. Either way the records are the broker's bytes.
#[test]
fn a_large_fetch_answer_about_a_moved_leader_keeps_its_records_and_length() {
    let mut mock = MockCluster::start(3);
    let upstream = mock.addresses();
    mock.command("topic bulk 2");
    mock.command("leader bulk 0 1");
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &mock.bootstrap,
            "--topic",
            "bulk",
            "--count",
            "100",
            "--partitions",
            "1",
            "--pad",
            "2000",
        ],
    );
    mock.command("leader bulk 1 2");
    let mut direct = TcpStream::connect(&upstream[0]).unwrap();
    let bulk = topic_id(&mut direct, "bulk");
    let (_, mut body) = ask(&mut direct, fetch_v16(bulk, &[0]));
    let records = FetchResponse::decode(&mut body, 16).unwrap().responses[0].partitions[0]
        .records
        .clone();
    let size = records.as_ref().map_or(0, Bytes::len);
    assert!(size > 100_000, "the mock answers with {size} bytes of records");
    let leader_port: i32 = port_of(&upstream[1]).parse().unwrap();

    for (advertise, kept) in [("127.1", true), ("a-much-longer-proxy-name.example.com", false)] {
        let base = free_port_base(4);
        let (strait, _) = proxy(
            &mock.bootstrap,
            &["--port-base", &base.to_string(), "--advertise", advertise],
        );
        let broker_1 = format!("127.0.0.1:{}", base + 1);
        wait_for_port(&broker_1, Duration::from_secs(10));
        let mut s = TcpStream::connect(&broker_1).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (answer, mut body) = ask(&mut s, fetch_v16(bulk, &[0, 1]));
        let got = FetchResponse::decode(&mut body, 16).unwrap();
        let partitions = &got.responses[0].partitions;
        assert_eq!(partitions[0].records, records, "{advertise}: the broker's record bytes");
        assert_eq!(
            (partitions[1].error_code, partitions[1].current_leader.leader_id.0),
            (6, 2)
        );
        let want = if kept {
            vec![(2, advertise.to_owned(), i32::from(base) + 2)]
        } else {
            vec![]
        };
        assert_eq!(fetch_endpoints(&got), want, "{advertise}");
        let padding: Vec<i32> = got.unknown_tagged_fields.keys().copied().collect();
        assert!(
            !padding.is_empty() && padding.iter().all(|t| *t >= 10_000),
            "{advertise}: padded, {padding:?}"
        );
        assert!(!answer.windows(4).any(|w| w == leader_port.to_be_bytes()));
        assert!(strait.stop().success());
    }
}

/// Runs a peer script (its arguments separated by spaces) while the leaders of `topic`'s
/// 4 partitions rotate every 50 ms; returns its output and how many rotations it saw.
fn while_leaders_move(mock: &mut MockCluster, topic: &str, script: &'static str, args: String) -> (String, usize) {
    let peer = std::thread::spawn(move || run_peer(script, &args.split(' ').collect::<Vec<_>>()));
    let mut round = 0;
    while !peer.is_finished() {
        for p in 0..4 {
            mock.command(&format!("leader {topic} {p} {}", 1 + (p + round) % 3));
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    (peer.join().unwrap(), round)
}

/// The broker addresses a peer script reported on its last line.
fn brokers_seen(output: &str) -> Vec<String> {
    let last: serde_json::Value = serde_json::from_str(output.trim().lines().last().unwrap()).unwrap();
    serde_json::from_value(last["brokers"].clone()).unwrap()
}

fn assert_only_the_proxy(client: &str, seen: &[String], upstream: &[String]) {
    let leaked: Vec<&String> = seen
        .iter()
        .filter(|b| upstream.iter().any(|u| b.ends_with(&format!(":{}", port_of(u)))))
        .collect();
    assert!(
        !seen.is_empty() && leaked.is_empty(),
        "the {client} learned broker addresses from the proxy: {leaked:?} (it knew {seen:?})"
    );
}

#[test]
fn clients_follow_moving_leaders_through_the_proxy_and_never_learn_a_broker_address() {
    let mut mock = MockCluster::start(3);
    mock.command("topic roaming 4");
    let metrics = format!("127.0.0.1:{}", free_port());
    // 127.1 is shorter than the mock's 127.0.0.1: large Fetch answers, whose length goes
    // out before their node endpoints are read, reach the consumer padded.
    let (strait, listen) = proxy(&mock.bootstrap, &["--metrics", &metrics, "--advertise", "127.1"]);
    let upstream = mock.addresses();
    let args = format!("--bootstrap {listen} --topic roaming --count 6000 --pad 2000 --brokers-seen");
    let (out, moves) = while_leaders_move(&mut mock, "roaming", "produce.py", args);
    assert_only_the_proxy("producer", &brokers_seen(&out), &upstream);
    let text = scrape_until(&metrics, "a rewritten Produce answer", |t| {
        sum(t, "strait_proxy_rewrites_total", &["api=\"Produce\""]) > 0.0
    });
    eprintln!(
        "producing: leaders moved {moves} times; Produce answers rewritten: {}",
        sum(&text, "strait_proxy_rewrites_total", &["api=\"Produce\""])
    );

    // A consumer reads so fast that whether its fetches meet a moved leader is luck; the
    // raw Fetch of the test above is the certain case, this one checks what a real consumer learns.
    let args = format!("--bootstrap {listen} --topic roaming --expect 6000 --brokers-seen");
    let (out, moves) = while_leaders_move(&mut mock, "roaming", "consume.py", args);
    assert_only_the_proxy("consumer", &brokers_seen(&out), &upstream);
    assert_eq!(
        out.trim().lines().count(),
        6000 + 1,
        "every record, then the brokers line"
    );
    let (_, text) = get(&metrics, "/metrics");
    eprintln!(
        "consuming: leaders moved {moves} times; Fetch answers rewritten: {}",
        sum(&text, "strait_proxy_rewrites_total", &["api=\"Fetch\""])
    );
    assert!(strait.stop().success());
}
