//! What strait's fencing of a dropped process rests on, against real coordinators: once
//! the group has gone on without a member (its session ended while it was frozen or cut
//! off), that member's late progress commit is refused and the group's committed progress
//! stays where its successor left it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strait::client::group_member::{GroupMember, MemberOptions, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID};
use strait::client::group_offsets::{self, Position};
use strait::client::{AddressMap, ClientError, Cluster};
use strait::net::ConnectOptions;

use crate::client::runtime;
use crate::harness::*;

const SESSION: Duration = Duration::from_secs(4);

fn member(cluster: &Arc<Cluster>, group: &str, instance: &str) -> GroupMember {
    let options = MemberOptions {
        group: group.to_owned(),
        instance_id: (!instance.is_empty()).then(|| instance.to_owned()),
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(10),
        protocol_type: "strait".into(),
        protocol_name: "strait-flow-1".into(),
    };
    GroupMember::new(cluster.clone(), options)
}

fn position(offset: i64) -> Vec<Position> {
    vec![Position {
        topic: "fenced".into(),
        partition: 0,
        offset,
        metadata: String::new(),
    }]
}

/// Joins and syncs as the group's only live member, joining again while the coordinator
/// still waits for the silent one (Tansu rebalances before it drops it).
async fn join_alone(m: &mut GroupMember) -> strait::client::group_member::Generation {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let joined = m.join(Bytes::from_static(b"m")).await?;
            let generation = joined.generation.clone();
            let all = joined
                .members
                .iter()
                .map(|x| (x.member_id.clone(), Bytes::from_static(b"a")))
                .collect();
            m.sync(&generation, all).await.map(|_| generation)
        };
        match attempt.await {
            Ok(generation) => return generation,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no generation of the successor's own within 60 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn late_commit_is_refused(bootstrap: &str, static_ids: bool) {
    let options = ConnectOptions {
        request_timeout: Duration::from_secs(30),
        ..ConnectOptions::default()
    };
    let cluster = Cluster::new("target", vec![bootstrap.to_owned()], AddressMap::default(), options);
    let group = "strait.fencing";
    let partitions = [("fenced".to_owned(), 0)];

    let mut first = member(&cluster, group, if static_ids { "first" } else { "" });
    let joined = first.join(Bytes::from_static(b"m")).await.expect("first join");
    let gone = joined.generation.clone();
    let mine = vec![(gone.member_id.clone(), Bytes::from_static(b"a"))];
    first.sync(&gone, mine).await.expect("first sync");
    group_offsets::commit(&cluster, group, Some(&gone), &position(5))
        .await
        .expect("a member's commit is accepted");

    // The first member falls silent past its session; a successor joins and commits.
    tokio::time::sleep(SESSION + Duration::from_secs(2)).await;
    let mut second = member(&cluster, group, if static_ids { "second" } else { "" });
    let now = join_alone(&mut second).await;
    assert_ne!(now, gone, "the group went on in a new generation or with a new member");
    group_offsets::commit(&cluster, group, Some(&now), &position(9))
        .await
        .expect("the successor's commit is accepted");

    // The first member's late commit, with what it still believes, is refused...
    let late = group_offsets::commit(&cluster, group, Some(&gone), &position(7)).await;
    match late {
        Err(ClientError::Kafka { code, .. }) if code.0 == ILLEGAL_GENERATION || code.0 == UNKNOWN_MEMBER_ID => {}
        other => panic!("a dropped member's commit was not refused: {other:?}"),
    }
    // ...and the progress is the successor's.
    let committed = group_offsets::fetch(&cluster, group, &partitions)
        .await
        .expect("offset fetch");
    assert_eq!(committed.get(&partitions[0]).map(|(o, _)| *o), Some(9));
}

#[test]
fn a_dropped_members_late_commit_is_refused_on_the_mock_cluster() {
    let mut target = MockCluster::start(1);
    target.command("topic fenced 1");
    runtime().block_on(late_commit_is_refused(&target.bootstrap, true));
}

#[test]
fn a_dropped_members_late_commit_is_refused_on_tansu() {
    let target = Tansu::start();
    run_peer(
        "produce.py",
        &[
            "--bootstrap",
            &target.bootstrap,
            "--topic",
            "fenced",
            "--count",
            "1",
            "--partitions",
            "1",
        ],
    );
    // Members without instance ids: Tansu was not seen dropping a silent static member.
    runtime().block_on(late_commit_is_refused(&target.bootstrap, false));
}
