//! Progress commits, in the background: at distance a commit costs a round trip to the
//! target, which fetching and forwarding must not wait for. One commit is under way at
//! a time, so commits land in the order they were made; what is acknowledged meanwhile
//! waits for the next.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{JoinError, JoinSet};
use tracing::Instrument as _;

use crate::client::group_member::Generation;
use crate::client::{ClientError, Cluster};
use crate::mirror::in_flight::Key;
use crate::mirror::progress::{self, Progress};
use crate::mirror::MirrorError;

use super::{Flow, COMMIT_EVERY};

/// A commit that finished: each partition's new position, with the generation of its
/// state when the commit was made.
pub(super) struct Committed {
    advanced: Vec<(Key, u64, i64)>,
    result: Result<(), ClientError>,
}

/// The commit under way, if any.
#[derive(Default)]
pub(super) struct Commits {
    task: JoinSet<Committed>,
    /// After the group refused a commit (it is rebalancing): no new one before then.
    refused_until: Option<Instant>,
}

/// How long a commit the group refused waits before it is tried again: a rebalance
/// takes seconds, and asking in a tight loop meanwhile only loads the coordinator.
const REFUSED_PAUSE: Duration = Duration::from_millis(250);

impl Commits {
    /// The commit under way, once it finishes; `None` at once when none is.
    pub(super) async fn next(&mut self) -> Option<Result<Committed, JoinError>> {
        self.task.join_next().await
    }

    /// Whether a commit is under way.
    pub(super) fn busy(&self) -> bool {
        !self.task.is_empty()
    }
}

impl Flow {
    /// Starts committing the acknowledged progress when it is due (when no forward is
    /// under way, or `COMMIT_EVERY` after the last commit) and none is under way.
    pub(super) fn commit_due(&mut self) {
        if self.uncommitted.is_empty() || !self.commits.task.is_empty() {
            return;
        }
        if !self.forwards.is_empty() && self.committed_at.elapsed() < COMMIT_EVERY {
            return;
        }
        if self.commits.refused_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.committed_at = Instant::now();
        let Some(member) = self.generation.clone() else {
            self.uncommitted.clear();
            return;
        };
        let (advanced, positions) = self.take_uncommitted();
        let (target, flow) = (self.target.clone(), self.cfg.name.clone());
        self.commits.task.spawn(async move {
            let result = send(&target, &flow, &member, &positions).await;
            Committed { advanced, result }
        });
    }

    /// One entry per partition, its latest, with what the commit writes for it.
    fn take_uncommitted(&mut self) -> (Vec<(Key, u64, i64)>, Vec<crate::client::group_offsets::Position>) {
        let latest: BTreeMap<Key, i64> = std::mem::take(&mut self.uncommitted).into_iter().collect();
        let mut advanced = Vec::with_capacity(latest.len());
        let mut progress = Vec::with_capacity(latest.len());
        for (key, next) in &latest {
            let Some(state) = self.partitions.get(key) else {
                continue;
            };
            advanced.push((key.clone(), state.generation, *next));
            progress.push(Progress {
                target_topic: &state.target_topic,
                source_topic: &key.0,
                source_topic_id: state.topic_id,
                partition: key.1,
                next_offset: *next,
            });
        }
        let positions = progress::positions(self.source.name(), &progress);
        (advanced, positions)
    }

    /// Applies a finished commit: its partitions' positions advance. A commit the
    /// group refused because it is rebalancing or moved on is tried again with the next
    /// one (for the partitions still owned); any other refusal is the flow's error: it
    /// restarts from what was committed.
    pub(super) fn on_committed(&mut self, done: Result<Committed, JoinError>) -> Result<(), MirrorError> {
        let Committed { advanced, result } = done.map_err(|e| self.panicked("a progress commit", &e))?;
        if let Err(e) = result {
            if !is_group_refusal(&e) {
                return Err(self.err(e));
            }
            tracing::debug!(flow = %self.cfg.name, error = %e, partitions = advanced.len(), "the group refused a progress commit; it is tried again");
            self.commits.refused_until = Some(Instant::now() + REFUSED_PAUSE);
            let again = advanced
                .into_iter()
                .filter(|(key, generation, _)| self.partitions.get(key).is_some_and(|s| s.generation == *generation))
                .map(|(key, _, next)| (key, next));
            let newer = std::mem::take(&mut self.uncommitted);
            self.uncommitted = again.chain(newer).collect();
            return Ok(());
        }
        tracing::debug!(flow = %self.cfg.name, partitions = advanced.len(), "progress committed");
        let now = Instant::now();
        for (key, generation, next) in advanced {
            // A partition of a topic deleted and created again meanwhile is another one.
            let Some(state) = self.partitions.get_mut(&key).filter(|s| s.generation == generation) else {
                continue;
            };
            if next > state.position {
                state.progressed = now;
            }
            state.position = next;
        }
        Ok(())
    }

    /// Waits for the commit under way, if any, and applies it.
    async fn settle_commit(&mut self) -> Result<(), MirrorError> {
        match self.commits.next().await {
            Some(done) => self.on_committed(done),
            None => Ok(()),
        }
    }

    /// Sets one partition's progress now, after the commit under way (which may carry
    /// an older position of it) and dropping what was acknowledged before: for a
    /// position reset.
    pub(super) async fn commit_reset(&mut self, key: &Key, position: i64) -> Result<(), MirrorError> {
        self.settle_commit().await?;
        self.uncommitted.retain(|(k, _)| k != key);
        self.uncommitted.push((key.clone(), position));
        self.commit_uncommitted().await
    }

    /// Commits what is acknowledged and waits for the answer.
    async fn commit_uncommitted(&mut self) -> Result<(), MirrorError> {
        let Some(member) = self.generation.clone() else {
            self.uncommitted.clear();
            return Ok(());
        };
        let (advanced, positions) = self.take_uncommitted();
        let result = send(&self.target, &self.cfg.name, &member, &positions).await;
        self.on_committed(Ok(Committed { advanced, result }))
    }
}

/// Whether the coordinator refused a commit for the member's standing in the group,
/// which the next generation fixes, rather than for the commit itself.
fn is_group_refusal(e: &ClientError) -> bool {
    use crate::client::group_member::{
        FENCED_INSTANCE_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
    };
    matches!(e, ClientError::Kafka { code, .. }
        if matches!(code.0, REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID))
}

/// One commit request, in its span.
async fn send(
    target: &Arc<Cluster>,
    flow: &str,
    member: &Generation,
    positions: &[crate::client::group_offsets::Position],
) -> Result<(), ClientError> {
    let span =
        tracing::debug_span!("commit", flow = %flow, partitions = positions.len() as i64, generation = member.id);
    progress::commit(target, flow, member, positions).instrument(span).await
}
