//! Where a partition new to the flow starts (its earliest or latest offset), looked up
//! in the background: a partition whose leader does not answer waits, retried with
//! back-off, while every other partition is copied.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};

use crate::client::offsets::list_offset;
use crate::client::Cluster;
use crate::mirror::in_flight::Key;
use crate::mirror::retry::{Backoff, LogThrottle};

use super::Flow;

pub(super) type Started = Result<(Key, i64), JoinError>;

#[derive(Default)]
pub(super) struct Starts {
    tasks: JoinSet<(Key, i64)>,
}

impl Starts {
    /// Looks up the offset at `at` (`EARLIEST` or `LATEST`) until the source answers.
    pub(super) fn spawn(&mut self, source: Arc<Cluster>, flow: String, key: Key, at: i64) {
        self.tasks.spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
            let mut throttle = LogThrottle::new(Duration::from_secs(30));
            loop {
                match list_offset(&source, &key.0, key.1, at).await {
                    Ok(offset) => return (key, offset),
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
    }

    /// The next lookup to finish; `None` at once when none is under way.
    pub(super) async fn next(&mut self) -> Option<Started> {
        self.tasks.join_next().await
    }
}

impl Flow {
    pub(super) fn on_started(&mut self, key: Key, position: i64) {
        let Some(state) = self.partitions.get_mut(&key) else {
            return;
        };
        state.starting = false;
        state.position = position;
        state.fetch_position = position;
        tracing::info!(flow = %self.cfg.name, topic = %key.0, partition = key.1, target_topic = %state.target_topic, position, "partition assigned");
    }
}
