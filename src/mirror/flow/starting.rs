//! Where a partition new to the flow starts (its earliest or latest offset), looked up
//! in the background: a partition whose leader does not answer waits, retried with
//! back-off, while every other partition is copied.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinError, JoinSet};

use crate::client::offsets::list_offset;
use crate::client::Cluster;
use crate::mirror::in_flight::Key;
use crate::mirror::retry::{Backoff, LogThrottle};

use super::Flow;

/// A partition's key and generation, and where it starts.
pub(super) type Started = Result<((Key, u64), i64), JoinError>;

#[derive(Default)]
pub(super) struct Starts {
    tasks: JoinSet<((Key, u64), i64)>,
    /// The lookup of each partition still starting, to end it when the partition goes.
    handles: HashMap<Key, AbortHandle>,
}

impl Starts {
    /// Looks up the offset at `at` (`EARLIEST` or `LATEST`) until the source answers.
    pub(super) fn spawn(&mut self, source: Arc<Cluster>, flow: String, key: Key, generation: u64, at: i64) {
        let handle_key = key.clone();
        let handle = self.tasks.spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
            let mut throttle = LogThrottle::new(Duration::from_secs(30));
            loop {
                match list_offset(&source, &key.0, key.1, at).await {
                    Ok(offset) => return ((key, generation), offset),
                    Err(e) => {
                        let pause = backoff.pause();
                        if let Some(suppressed) = throttle.allow() {
                            tracing::warn!(%flow, topic = %key.0, partition = key.1, error = %e, retry_in = ?pause, suppressed, "cannot find where the partition starts; the flow's other partitions go on");
                        }
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        });
        if let Some(old) = self.handles.insert(handle_key, handle) {
            old.abort();
        }
    }

    /// Ends the lookup of a partition the flow no longer copies.
    pub(super) fn forget(&mut self, key: &Key) {
        if let Some(handle) = self.handles.remove(key) {
            handle.abort();
        }
    }

    /// The next lookup to finish; `None` at once when none is under way.
    pub(super) async fn next(&mut self) -> Option<Started> {
        self.tasks.join_next().await
    }
}

impl Flow {
    pub(super) fn on_started(&mut self, (key, generation): (Key, u64), position: i64) {
        let Some(state) = self.partitions.get_mut(&key) else {
            return;
        };
        // A lookup for an earlier life of this partition (its topic deleted and created
        // again meanwhile) says nothing of this one.
        if state.generation != generation || !state.starting {
            return;
        }
        self.starts.forget(&key);
        state.starting = false;
        state.start_at(position);
        tracing::info!(flow = %self.cfg.name, topic = %key.0, partition = key.1, target_topic = %state.target_topic, position, "partition assigned");
    }
}
