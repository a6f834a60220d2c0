//! What a flow does with its group's word: starts the partitions it gained from their
//! committed progress, and releases those it lost. A release stops fetching the
//! partition, lets its forward under way finish, commits what the target acknowledged,
//! and only then drops the partition and tells the membership, so that its new owner
//! starts exactly where this process stopped. A partition lost with the generation
//! (the group went on without this process) is dropped without a commit: the
//! coordinator would refuse it, and the new owner copies again what was in flight.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::task::JoinError;

use crate::mirror::in_flight::Key;
use crate::mirror::membership::{MemberEvent, Next};
use crate::mirror::MirrorError;

use super::Flow;

/// Longest a release waits for forwards under way before it drops the partition
/// anyway: the rebalance must not wait for a target that stopped answering.
const RELEASE_WITHIN: Duration = Duration::from_secs(45);

impl Flow {
    pub(super) async fn on_membership(&mut self, next: Next) -> Result<(), MirrorError> {
        match next {
            Next::Event(MemberEvent::Assigned { generation, partitions }) => {
                self.generation = Some(generation);
                self.on_assigned(partitions).await
            }
            Next::Event(MemberEvent::Lost) => {
                self.generation = None;
                let all: Vec<Key> = self.partitions.keys().cloned().collect();
                // Their progress cannot be committed any more.
                self.uncommitted.clear();
                self.release(all);
                // Not ready again until the group has taken this process back.
                self.assigned = None;
                Ok(())
            }
            Next::Ended(ended) => self.membership_ended(ended),
        }
    }

    fn membership_ended(&self, ended: Result<Result<(), MirrorError>, JoinError>) -> Result<(), MirrorError> {
        match ended {
            Ok(result) => result,
            Err(e) => Err(self.panicked("the group membership", &e)),
        }
    }

    async fn on_assigned(&mut self, partitions: BTreeSet<Key>) -> Result<(), MirrorError> {
        let lost: Vec<Key> = self
            .partitions
            .keys()
            .filter(|k| !partitions.contains(*k))
            .cloned()
            .collect();
        self.release(lost);
        let mut gained = Vec::new();
        for key in &partitions {
            match self.partitions.get_mut(key) {
                // Given back while still being released: it simply stays.
                Some(state) => state.releasing = false,
                None if self.known.contains_key(key) => gained.push(key.clone()),
                // The leader saw a partition this process has not discovered yet.
                None => self.refresh.want(),
            }
        }
        self.assigned = Some(partitions);
        // Judged again at once: `/readyz` must not keep saying it waits for partitions.
        self.health.checked = None;
        self.start_partitions(gained).await
    }

    /// Stops fetching `keys` and forgets what was fetched past what the target
    /// acknowledged; `settle_releases` drops them once their forwards are done.
    fn release(&mut self, keys: Vec<Key>) {
        if keys.is_empty() {
            return;
        }
        for key in &keys {
            if let Some(state) = self.partitions.get_mut(key) {
                state.releasing = true;
                state.rewind();
            }
        }
        self.release_started.get_or_insert_with(Instant::now);
        tracing::info!(flow = %self.cfg.name, partitions = keys.len(), "releasing partitions the group moved elsewhere");
    }

    /// Drops the released partitions once none has a forward under way and what the
    /// target acknowledged of them is committed, or once the release took too long.
    /// A commit the group refuses (it is rebalancing) is tried again, in the next
    /// generation if need be: this process still claims the partitions when it joins
    /// again meanwhile, so nobody else starts them before their progress is stored.
    pub(super) fn settle_releases(&mut self) {
        let Some(started) = self.release_started else {
            return;
        };
        let releasing: BTreeSet<Key> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.releasing)
            .map(|(k, _)| k.clone())
            .collect();
        let busy = releasing.iter().any(|k| self.partitions[k].in_flight);
        let uncommitted = self.commits.busy() || self.uncommitted.iter().any(|(k, _)| releasing.contains(k));
        if (busy || uncommitted) && started.elapsed() < RELEASE_WITHIN {
            return;
        }
        if busy || uncommitted {
            tracing::warn!(flow = %self.cfg.name, waited = ?started.elapsed(), forwards_under_way = busy, progress_uncommitted = uncommitted, "released partitions could not finish in time; dropping them anyway (their new owner copies the unfinished batches again)");
        }
        for key in &releasing {
            self.drop_partition(key);
        }
        self.uncommitted.retain(|(k, _)| !releasing.contains(k));
        self.release_started = None;
        tracing::info!(flow = %self.cfg.name, partitions = releasing.len(), "released partitions, their progress committed");
        self.show_owned();
    }

    /// Forgets a partition, keeping its producer sequence for when it comes back.
    pub(super) fn drop_partition(&mut self, key: &Key) {
        if let Some(state) = self.partitions.remove(key) {
            if !state.in_flight {
                self.sequences.insert(key.clone(), state.sequence);
            }
        }
        self.starts.forget(key);
        self.metrics.forget_partition(&self.labels(key));
    }

    /// Tells the membership which partitions this process holds.
    pub(super) fn show_owned(&self) {
        let owned: BTreeSet<Key> = self.partitions.keys().cloned().collect();
        self.membership.show(|view| view.owned = owned);
    }

    /// Tells the membership every source partition the flow would copy.
    pub(super) fn show_universe(&self) {
        let universe: BTreeSet<Key> = self.known.keys().cloned().collect();
        self.membership.show(|view| view.universe = universe);
    }
}
