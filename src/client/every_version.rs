//! Every request strait builds encodes at every version in the range it offers: a broker
//! that supports only the oldest one must get a request, not an encoding error that
//! stops every flow ("A field is set that is not available on the selected protocol
//! version").

use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol::protocol::Request;

use super::fetch::{FetchOptions, FetchSpec, Isolation};
use super::group_member::{self, Generation, MemberOptions};
use super::group_offsets::{self, Position};
use super::producer_id::ProducerIdentity;
use super::{admin, fetch, metadata, offsets, producer_id, transactions};
use crate::wire::fetch::{MAX_VERSION as FETCH_MAX, MIN_VERSION as FETCH_MIN};
use crate::wire::message::encode_request;

fn encodes_at_every_version<R: Request>(what: &str, range: (i16, i16), build: impl Fn(i16) -> R) {
    for version in range.0..=range.1 {
        if let Err(e) = encode_request(&build(version), version, 7, "strait") {
            panic!("{what} v{version} cannot be encoded: {e}");
        }
    }
}

#[test]
fn every_request_strait_sends_encodes_at_every_version_it_may_choose() {
    let topics = ["a".to_owned(), "b".to_owned()];
    encodes_at_every_version("Metadata (all topics)", metadata::VERSIONS, |v| {
        metadata::request(None, v, false)
    });
    encodes_at_every_version("Metadata (some topics)", metadata::VERSIONS, |v| {
        metadata::request(Some(&topics), v, false)
    });
    encodes_at_every_version("Metadata (auto-create)", metadata::VERSIONS, |v| {
        metadata::request(Some(&topics), v, true)
    });
    let spec = FetchSpec {
        topic: "a".into(),
        partition: 3,
        offset: 42,
    };
    let options = FetchOptions {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        partition_max_bytes: 1 << 16,
        isolation: Isolation::ReadCommitted,
    };
    encodes_at_every_version("Fetch", (FETCH_MIN, FETCH_MAX), |_| {
        fetch::request(std::slice::from_ref(&spec), &options)
    });
    encodes_at_every_version("ListOffsets", offsets::VERSIONS, |_| offsets::request("a", 3, -2));
    encodes_at_every_version("InitProducerId", producer_id::VERSIONS, |_| producer_id::request());
    encodes_at_every_version("FindCoordinator", group_offsets::FIND_COORDINATOR, |_| {
        group_offsets::coordinator_request(group_offsets::GROUP_KEY, "g")
    });
    let positions = [Position {
        topic: "a".into(),
        partition: 3,
        offset: 42,
        metadata: "m".into(),
    }];
    let member = Generation {
        id: 4,
        member_id: "m-1".into(),
        instance_id: Some("host-a".into()),
    };
    encodes_at_every_version("OffsetCommit", group_offsets::OFFSET_COMMIT, |v| {
        group_offsets::commit_request("g", Some(&member), &positions, v)
    });
    encodes_at_every_version("OffsetCommit (no member)", group_offsets::OFFSET_COMMIT, |v| {
        group_offsets::commit_request("g", None, &positions, v)
    });
    let options = MemberOptions {
        group: "g".into(),
        instance_id: Some("host-a".into()),
        session_timeout: std::time::Duration::from_secs(10),
        rebalance_timeout: std::time::Duration::from_secs(60),
        protocol_type: "strait".into(),
        protocol_name: "p".into(),
    };
    encodes_at_every_version("JoinGroup", group_member::JOIN_GROUP, |v| {
        group_member::join_request(&options, "m-1", bytes::Bytes::from_static(b"x"), v)
    });
    let assignments = [("m-1".to_owned(), bytes::Bytes::from_static(b"y"))];
    encodes_at_every_version("SyncGroup", group_member::SYNC_GROUP, |v| {
        group_member::sync_request(&options, &member, &assignments, v)
    });
    encodes_at_every_version("Heartbeat", group_member::HEARTBEAT, |v| {
        group_member::heartbeat_request("g", &member, v)
    });
    encodes_at_every_version("LeaveGroup", group_member::LEAVE_GROUP, |_| {
        group_member::leave_request("g", "m-1")
    });
    encodes_at_every_version("OffsetFetch", group_offsets::OFFSET_FETCH, |_| {
        group_offsets::fetch_request("g", &[("a".into(), 3)])
    });
    let configs = [("retention.ms".to_owned(), "1000".to_owned())];
    encodes_at_every_version("CreateTopics", admin::CREATE_TOPICS, |v| {
        admin::create_topics_request("a", 4, -1, &configs, v)
    });
    encodes_at_every_version("CreatePartitions", admin::CREATE_PARTITIONS, |_| {
        admin::create_partitions_request("a", 8)
    });
    encodes_at_every_version("DescribeConfigs", admin::DESCRIBE_CONFIGS, |_| {
        admin::describe_configs_request("a")
    });
    encodes_at_every_version("ApiVersions", (0, 3), |_| ApiVersionsRequest::default());
}

#[test]
fn every_transactional_request_encodes_at_every_version_it_may_choose() {
    encodes_at_every_version(
        "FindCoordinator (transaction)",
        group_offsets::FIND_TRANSACTION_COORDINATOR,
        |_| group_offsets::coordinator_request(group_offsets::TRANSACTION_KEY, "flow-a-0"),
    );
    encodes_at_every_version("InitProducerId (transactional)", producer_id::VERSIONS, |_| {
        producer_id::transactional_request("flow-a-0", 60_000)
    });
    let producer = ProducerIdentity { id: 1000, epoch: 3 };
    let partitions = [("a".to_owned(), 0), ("a".to_owned(), 1), ("b".to_owned(), 2)];
    encodes_at_every_version("AddPartitionsToTxn", transactions::ADD_PARTITIONS_TO_TXN, |_| {
        transactions::add_partitions_request("flow-a-0", producer, &partitions)
    });
    encodes_at_every_version("AddOffsetsToTxn", transactions::ADD_OFFSETS_TO_TXN, |_| {
        transactions::add_offsets_request("flow-a-0", producer, "g")
    });
    let positions = [Position {
        topic: "a".into(),
        partition: 3,
        offset: 42,
        metadata: "m".into(),
    }];
    let members = [
        Generation {
            id: 4,
            member_id: "m-1".into(),
            instance_id: Some("host-a".into()),
        },
        Generation {
            id: -1,
            member_id: String::new(),
            instance_id: None,
        },
    ];
    for member in &members {
        encodes_at_every_version("TxnOffsetCommit", transactions::TXN_OFFSET_COMMIT, |v| {
            transactions::txn_offset_commit_request("flow-a-0", producer, "g", member, &positions, v)
        });
    }
    for commit in [true, false] {
        encodes_at_every_version("EndTxn", transactions::END_TXN, |_| {
            transactions::end_request("flow-a-0", producer, commit)
        });
    }
}
