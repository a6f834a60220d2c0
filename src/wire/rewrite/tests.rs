//! Every version of every rewritten response, built by kafka-protocol's encoder,
//! rewritten, and decoded again: addresses replaced, everything else unchanged.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{self, AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, DescribeClusterResponse, FetchResponse, FindCoordinatorResponse,
    MetadataResponse, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::*;

fn encode(m: &impl Encodable, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn decode<M: Decodable>(body: Vec<u8>, version: i16) -> M {
    M::decode(&mut Bytes::from(body), version).unwrap()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn proxy_address(node: i32, _host: &str, _port: i32) -> (String, i32) {
    ("proxy.example.com".to_owned(), 30_000 + node)
}

fn metadata(version: i16) -> MetadataResponse {
    let brokers = (1..=3)
        .map(|i| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(i))
                .with_host(s(&format!("kafka-{i}.kafka-headless.svc.cluster.local")))
                .with_port(9092)
                .with_rack((version >= 1).then(|| s("rack-a")))
        })
        .collect();
    let partitions = (0..2)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(p + 1))
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])
                .with_leader_epoch(if version >= 7 { 5 } else { -1 })
        })
        .collect();
    let topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(s("events"))))
        .with_partitions(partitions);
    MetadataResponse::default()
        .with_throttle_time_ms(if version >= 3 { 7 } else { 0 })
        .with_brokers(brokers)
        .with_cluster_id((version >= 2).then(|| s("cluster-x")))
        .with_controller_id(BrokerId(if version >= 1 { 2 } else { -1 }))
        .with_topics(vec![topic])
}

#[test]
fn metadata_of_every_version_advertises_the_proxy_and_keeps_the_rest() {
    for v in 0..=metadata::MAX_VERSION {
        let original = metadata(v);
        let out = metadata::rewrite(&encode(&original, v), v, &mut proxy_address).unwrap();
        let got: MetadataResponse = decode(out, v);
        let mut want = original.clone();
        for b in &mut want.brokers {
            b.host = s("proxy.example.com");
            b.port = 30_000 + b.node_id.0;
        }
        assert_eq!(got, want, "v{v}");
    }
}

#[test]
fn find_coordinator_of_every_version_advertises_the_proxy() {
    for v in 0..=find_coordinator::MAX_VERSION {
        let original = if v < 4 {
            FindCoordinatorResponse::default()
                .with_node_id(BrokerId(3))
                .with_host(s("kafka-3.internal"))
                .with_port(9093)
                .with_error_message(Some(s(if v >= 1 { "fine" } else { "" })))
        } else {
            FindCoordinatorResponse::default().with_coordinators(vec![
                Coordinator::default()
                    .with_key(s("group-a"))
                    .with_node_id(BrokerId(3))
                    .with_host(s("kafka-3.internal"))
                    .with_port(9093),
                Coordinator::default()
                    .with_key(s("group-b"))
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(15),
            ])
        };
        let out = find_coordinator::rewrite(&encode(&original, v), v, &mut proxy_address).unwrap();
        let got: FindCoordinatorResponse = decode(out, v);
        let mut want = original.clone();
        if v < 4 {
            want.host = s("proxy.example.com");
            want.port = 30_003;
        } else {
            want.coordinators[0].host = s("proxy.example.com");
            want.coordinators[0].port = 30_003;
        }
        assert_eq!(got, want, "v{v}: an error answer (node -1) stays as it is");
    }
}

#[test]
fn describe_cluster_of_every_version_advertises_the_proxy() {
    for v in 0..=describe_cluster::MAX_VERSION {
        let brokers = (1..=2)
            .map(|i| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(i))
                    .with_host(s("10.0.0.9"))
                    .with_port(9092)
                    .with_rack(Some(s("r")))
                    .with_is_fenced(v >= 2 && i == 2)
            })
            .collect();
        let original = DescribeClusterResponse::default()
            .with_cluster_id(s("cluster-x"))
            .with_controller_id(BrokerId(1))
            .with_endpoint_type(1)
            .with_brokers(brokers);
        let out = describe_cluster::rewrite(&encode(&original, v), v, &mut proxy_address).unwrap();
        let got: DescribeClusterResponse = decode(out, v);
        let mut want = original.clone();
        for b in &mut want.brokers {
            b.host = s("proxy.example.com");
            b.port = 30_000 + b.broker_id.0;
        }
        assert_eq!(got, want, "v{v}");
    }
}

#[test]
fn api_versions_of_every_version_offer_only_allowed_apis_at_allowed_versions() {
    for v in 0..=api_versions::MAX_VERSION {
        let key = |k: i16, min, max| {
            ApiVersion::default()
                .with_api_key(k)
                .with_min_version(min)
                .with_max_version(max)
        };
        let original = ApiVersionsResponse::default()
            .with_throttle_time_ms(if v >= 1 { 3 } else { 0 })
            .with_api_keys(vec![
                key(ApiKey::Produce as i16, 3, 15),
                key(ApiKey::Fetch as i16, 4, 20),
                key(ApiKey::ShareFetch as i16, 1, 1),
                key(ApiKey::Metadata as i16, 0, 99),
                key(ApiKey::OffsetCommit as i16, 2, 9),
                key(ApiKey::DescribeQuorum as i16, 0, 2),
                key(ApiKey::JoinGroup as i16, 10, 12),
                key(999, 0, 4),
            ]);
        let out = api_versions::rewrite(&encode(&original, v), v).unwrap();
        let got: ApiVersionsResponse = decode(out, v);
        let offered: Vec<(i16, i16, i16)> = got
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(
            offered,
            [
                (ApiKey::Produce as i16, 3, node_endpoints::PRODUCE_MAX),
                (ApiKey::Fetch as i16, 4, node_endpoints::FETCH_MAX),
                (ApiKey::Metadata as i16, 0, metadata::MAX_VERSION),
                (ApiKey::OffsetCommit as i16, 2, 9),
                (ApiKey::DescribeQuorum as i16, 0, 1),
            ],
            "v{v}: only allowed apis, capped, and none whose cap is below the broker's minimum"
        );
        assert_eq!(got.throttle_time_ms, original.throttle_time_ms, "v{v}");
    }
}

/// Answers that break their version's schema are refused whole, not passed on from
/// where the rewriter stopped understanding them; bytes after a schema's end are cut.
#[test]
fn answers_that_break_their_schema_are_refused() {
    let mut null_brokers = Vec::new();
    null_brokers.extend_from_slice(&(-1i32).to_be_bytes()); // brokers: null, which v1 forbids
    null_brokers.extend_from_slice(&(-1i32).to_be_bytes()); // controller
    null_brokers.extend_from_slice(&0i32.to_be_bytes()); // topics
    assert!(metadata::rewrite(&null_brokers, 1, &mut proxy_address).is_err());
    for v in 0..=metadata::MAX_VERSION {
        let clean = metadata::rewrite(&encode(&metadata(v), v), v, &mut proxy_address).unwrap();
        let mut body = encode(&metadata(v), v);
        body.extend_from_slice(b"kafka-9.internal");
        let cut = metadata::rewrite(&body, v, &mut proxy_address).unwrap();
        assert_eq!(cut, clean, "v{v}: bytes after the end are cut");
    }
    let body = encode(&metadata(4), 4);
    assert!(metadata::rewrite(&body[..body.len() - 1], 4, &mut proxy_address).is_err());
    for v in 0..=api_versions::MAX_VERSION {
        let body = encode(&ApiVersionsResponse::default(), v);
        let cut = api_versions::answer(&[&body[..], b"kafka-9"].concat(), v).unwrap();
        assert_eq!(cut, body, "api versions v{v}: bytes after the end are cut");
    }
    // An error answer in a form of its own (librdkafka's mock, to ApiVersions v99) is
    // replaced, not passed on.
    let odd = [0, 35, 1, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0, 0xAB];
    let own = api_versions::answer(&odd, 99).unwrap();
    assert_eq!(
        own,
        [0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, api_versions::MAX_VERSION as u8]
    );
}

#[test]
fn truncated_and_hostile_bodies_are_errors_not_panics() {
    let body = encode(&metadata(9), 9);
    for cut in 0..body.len() {
        let _ = metadata::rewrite(&body[..cut], 9, &mut proxy_address);
    }
    let hostile = [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    assert!(metadata::rewrite(&hostile, 3, &mut proxy_address).is_err());
    assert!(
        metadata::rewrite(&body, 14, &mut proxy_address).is_err(),
        "unknown versions are refused"
    );
}

/// Found by fuzzing: an error answer's host was re-encoded through a lossy UTF-8
/// conversion instead of being copied.
#[test]
fn an_error_answer_is_copied_byte_for_byte_even_with_invalid_utf8() {
    let mut body = vec![0, 15]; // v0: error_code
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&[0, 3, 0xff, 0xfe, 0xfd]);
    body.extend_from_slice(&(-1i32).to_be_bytes());
    let out = find_coordinator::rewrite(&body, 0, &mut proxy_address).unwrap();
    assert_eq!(out, body);
}

fn endpoints() -> Vec<NodeEndpoint> {
    (1..=2)
        .map(|i| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(i))
                .with_host(s(&format!("kafka-{i}.kafka-headless.svc.cluster.local")))
                .with_port(9092)
                .with_rack(Some(s("rack-b")))
        })
        .collect()
}

fn produce(version: i16, endpoints: Vec<NodeEndpoint>) -> ProduceResponse {
    let partition = PartitionProduceResponse::default()
        .with_index(3)
        .with_error_code(6)
        .with_base_offset(-1)
        .with_record_errors(vec![BatchIndexAndErrorMessage::default()
            .with_batch_index(0)
            .with_batch_index_error_message(Some(s("moved")))])
        .with_error_message(Some(s("not the leader")))
        .with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(2))
                .with_leader_epoch(7),
        );
    let mut topic = TopicProduceResponse::default().with_partition_responses(vec![partition]);
    if version >= 13 {
        topic.topic_id = Uuid::from_u128(0x1234_5678);
    } else {
        topic.name = TopicName(s("events"));
    }
    ProduceResponse::default()
        .with_responses(vec![topic])
        .with_throttle_time_ms(5)
        .with_node_endpoints(endpoints)
}

fn fetch(version: i16, records: &Bytes, endpoints: Vec<fetch_response::NodeEndpoint>) -> FetchResponse {
    let partition = PartitionData::default()
        .with_partition_index(1)
        .with_high_watermark(500)
        .with_aborted_transactions(Some(vec![AbortedTransaction::default()
            .with_producer_id(ProducerId(9))
            .with_first_offset(40)]))
        .with_records(Some(records.clone()));
    let mut topic = FetchableTopicResponse::default().with_partitions(vec![partition.clone(), partition]);
    if version >= 13 {
        topic.topic_id = Uuid::from_u128(0x1234_5678);
    } else {
        topic.topic = TopicName(s("events"));
    }
    FetchResponse::default()
        .with_session_id(77)
        .with_responses(vec![topic])
        .with_node_endpoints(endpoints)
}

fn fetch_endpoints() -> Vec<fetch_response::NodeEndpoint> {
    endpoints()
        .into_iter()
        .map(|e| {
            fetch_response::NodeEndpoint::default()
                .with_node_id(e.node_id)
                .with_host(e.host)
                .with_port(e.port)
                .with_rack(e.rack)
        })
        .collect()
}

/// `fetch` with its node endpoints as `proxy_address` rewrites them.
fn fetch_at_the_proxy(version: i16, records: &Bytes) -> FetchResponse {
    let mut answer = fetch(version, records, fetch_endpoints());
    for e in &mut answer.node_endpoints {
        e.host = s("proxy.example.com");
        e.port = 30_000 + e.node_id.0;
    }
    answer
}

/// The body a client gets: the kept bytes, then the rewritten tail.
fn reassemble(body: &[u8], rewritten: Rewritten) -> Vec<u8> {
    let mut out = body[..rewritten.keep].to_vec();
    out.extend_from_slice(&rewritten.tail);
    out
}

#[test]
fn produce_node_endpoints_of_every_version_advertise_the_proxy_and_keep_the_rest() {
    for v in node_endpoints::PRODUCE_FIRST..=node_endpoints::PRODUCE_MAX {
        let body = encode(&produce(v, endpoints()), v);
        let out = answer(ApiKey::Produce as i16, v, &body, &mut proxy_address)
            .unwrap()
            .unwrap();
        let got: ProduceResponse = decode(reassemble(&body, out), v);
        let mut want = produce(v, endpoints());
        for e in &mut want.node_endpoints {
            e.host = s("proxy.example.com");
            e.port = 30_000 + e.node_id.0;
        }
        assert_eq!(got, want, "v{v}");
        let plain = encode(&produce(v, vec![]), v);
        assert_eq!(
            answer(ApiKey::Produce as i16, v, &plain, &mut proxy_address).unwrap(),
            None
        );
    }
}

#[test]
fn fetch_node_endpoints_of_every_version_are_rewritten_and_the_records_kept_as_they_came() {
    let records = Bytes::from(vec![0xabu8; 4096]);
    for v in node_endpoints::FETCH_FIRST..=node_endpoints::FETCH_MAX {
        let body = encode(&fetch(v, &records, fetch_endpoints()), v);
        let out = answer(ApiKey::Fetch as i16, v, &body, &mut proxy_address)
            .unwrap()
            .unwrap();
        let records_end = body.windows(4096).rposition(|w| w == &records[..]).unwrap() + 4096;
        assert!(out.keep >= records_end, "v{v}: the records are in the kept part");
        let got: FetchResponse = decode(reassemble(&body, out), v);
        assert_eq!(got, fetch_at_the_proxy(v, &records), "v{v}");
        let plain = encode(&fetch(v, &records, vec![]), v);
        assert_eq!(
            answer(ApiKey::Fetch as i16, v, &plain, &mut proxy_address).unwrap(),
            None
        );
    }
}

#[test]
fn produce_and_fetch_answers_before_kip_951_pass_unread() {
    assert!(!rewritten(ApiKey::Produce as i16, 9));
    assert!(!rewritten(ApiKey::Fetch as i16, 15));
    assert!(rewritten(ApiKey::Produce as i16, 10));
    assert!(rewritten(ApiKey::Fetch as i16, 16));
}

#[test]
fn truncated_node_endpoint_answers_are_errors_not_panics() {
    let body = encode(&fetch(16, &Bytes::from_static(b"records"), fetch_endpoints()), 16);
    for cut in 0..body.len() {
        let _ = answer(ApiKey::Fetch as i16, 16, &body[..cut], &mut proxy_address);
    }
    let mut lying = encode(&produce(10, endpoints()), 10);
    let at = lying.len() - 60;
    lying[at] = 0x7f;
    let _ = answer(ApiKey::Produce as i16, 10, &lying, &mut proxy_address);
    assert!(answer(ApiKey::Fetch as i16, 19, &body, &mut proxy_address).is_err());
}

/// A Fetch answer whose end was announced at another length: every length but the
/// tiniest fits, padded (endpoints kept) or without its endpoints (when there is no
/// room for them and the padding).
#[test]
fn rewritten_fetch_tails_fit_any_announced_length_and_still_decode() {
    let records = Bytes::from(vec![0xabu8; 300]);
    for v in node_endpoints::FETCH_FIRST..=node_endpoints::FETCH_MAX {
        let body = encode(&fetch(v, &records, fetch_endpoints()), v);
        let out = answer(ApiKey::Fetch as i16, v, &body, &mut proxy_address)
            .unwrap()
            .unwrap();
        let rewritten = fetch_at_the_proxy(v, &records);
        let without = fetch(v, &records, vec![]);
        for len in 0..out.tail.len() + 300 {
            let Ok(tail) = same_length::fit(&out.tail, len) else {
                assert!(len < 4, "v{v}: no fit for {len} bytes");
                continue;
            };
            assert_eq!(tail.len(), len, "v{v}");
            let mut got: FetchResponse = decode([&body[..out.keep], &tail[..]].concat(), v);
            let padding = got.unknown_tagged_fields.keys().all(|tag| *tag >= 10_000);
            assert!(padding, "v{v}: only padding tags are added");
            got.unknown_tagged_fields.clear();
            // The smallest padding field takes 3 bytes (tag 10000, size 0).
            let room = len == out.tail.len() || len >= out.tail.len() + 3;
            let want = if room { &rewritten } else { &without };
            assert_eq!(&got, want, "v{v}, {len} bytes");
        }
    }
}
