//! The flow's progress: the next source offset of each partition, committed in the target
//! cluster under the group `strait.<flow>`, keyed by target topic and partition, and
//! advanced only after the target acknowledged the data. Beside each offset goes the
//! source topic's id, so that progress made on a topic that was deleted and created
//! again under the same name is never applied to the new one.

use std::collections::HashMap;

use crate::client::group_member::Generation;
use crate::client::group_offsets::{self, Position};
use crate::client::{ClientError, Cluster};

pub fn group(flow: &str) -> String {
    format!("strait.{flow}")
}

/// One partition's progress to commit.
pub struct Progress<'a> {
    pub target_topic: &'a str,
    pub source_topic: &'a str,
    /// The source topic's id; 0 when its cluster gives none.
    pub source_topic_id: u128,
    pub partition: i32,
    pub next_offset: i64,
}

fn metadata(source_cluster: &str, p: &Progress<'_>) -> String {
    let topic = format!("strait source={source_cluster}/{}", p.source_topic);
    match p.source_topic_id {
        0 => topic,
        id => format!("{topic} id={id:032x}"),
    }
}

/// The source topic id a commit's metadata names, if any.
fn committed_id(metadata: &str) -> Option<u128> {
    let hex = metadata.split(' ').find_map(|word| word.strip_prefix("id="))?;
    u128::from_str_radix(hex, 16).ok()
}

/// The committed progress of the given target partitions whose source topic is the one
/// with id `source_topic_id` now (or whose id is unknown on either side).
pub async fn load(
    target: &Cluster,
    flow: &str,
    partitions: &[(String, i32)],
    source_topic_id: u128,
) -> Result<HashMap<(String, i32), i64>, ClientError> {
    let committed = group_offsets::fetch(target, &group(flow), partitions).await?;
    Ok(committed
        .into_iter()
        .filter(|(_, (_, metadata))| same_topic(committed_id(metadata), source_topic_id))
        .map(|(key, (offset, _))| (key, offset))
        .collect())
}

fn same_topic(committed: Option<u128>, now: u128) -> bool {
    match committed {
        Some(id) if id != 0 && now != 0 => id == now,
        _ => true,
    }
}

/// What a commit of `progress` writes: built before the commit is sent, so that it
/// can go out in the background.
pub fn positions(source_cluster: &str, progress: &[Progress<'_>]) -> Vec<Position> {
    progress
        .iter()
        .map(|p| Position {
            topic: p.target_topic.to_owned(),
            partition: p.partition,
            offset: p.next_offset,
            metadata: metadata(source_cluster, p),
        })
        .collect()
}

/// Commits as the flow's member `member`: the coordinator refuses the commit of a
/// process that is no longer one, so a process the group dropped cannot move progress.
pub async fn commit(
    target: &Cluster,
    flow: &str,
    member: &Generation,
    positions: &[Position],
) -> Result<(), ClientError> {
    group_offsets::commit(target, &group(flow), Some(member), positions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_its_source_topic_id_and_applies_only_to_that_topic() {
        let p = Progress {
            target_topic: "t",
            source_topic: "s",
            source_topic_id: 0xabc,
            partition: 0,
            next_offset: 5,
        };
        let m = metadata("sea", &p);
        assert_eq!(m, "strait source=sea/s id=00000000000000000000000000000abc");
        assert_eq!(committed_id(&m), Some(0xabc));
        assert!(same_topic(committed_id(&m), 0xabc));
        assert!(!same_topic(committed_id(&m), 0xdef), "a recreated topic starts afresh");
        assert!(
            same_topic(committed_id("strait source=sea/s"), 0xdef),
            "older progress has no id"
        );
        assert!(same_topic(committed_id(&m), 0), "a cluster without ids cannot tell");
    }
}
