//! The flow's progress: the next source offset of each partition, committed in the target
//! cluster under the group `strait.<flow>`, keyed by target topic and partition, and
//! advanced only after the target acknowledged the data.

use std::collections::HashMap;

use crate::client::group_offsets::{self, Position};
use crate::client::{ClientError, Cluster};

pub fn group(flow: &str) -> String {
    format!("strait.{flow}")
}

/// One partition's progress to commit.
pub struct Progress<'a> {
    pub target_topic: &'a str,
    pub source_topic: &'a str,
    pub partition: i32,
    pub next_offset: i64,
}

pub async fn load(
    target: &Cluster,
    flow: &str,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, ClientError> {
    group_offsets::fetch(target, &group(flow), partitions).await
}

pub async fn commit(
    target: &Cluster,
    flow: &str,
    source_cluster: &str,
    progress: &[Progress<'_>],
) -> Result<(), ClientError> {
    let positions: Vec<Position> = progress
        .iter()
        .map(|p| Position {
            topic: p.target_topic.to_owned(),
            partition: p.partition,
            offset: p.next_offset,
            metadata: format!("strait source={source_cluster}/{}", p.source_topic),
        })
        .collect();
    group_offsets::commit(target, &group(flow), &positions).await
}
