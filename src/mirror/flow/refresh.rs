//! The flow's view of the source cluster kept fresh in the background: every
//! `topic_refresh_secs`, and soon after a fetch met a moved leader or a dead broker. A
//! refresh runs as a task of its own, so a broker slow to answer Metadata holds up no
//! fetch or forward; the flow acts on its answer when it comes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{JoinError, JoinSet};

use crate::client::{ClientError, Cluster, Metadata};
use crate::mirror::settings::FlowSettings;

/// Least time between the starts of two refreshes, failed ones included.
const MIN_GAP: Duration = Duration::from_secs(1);

pub(in crate::mirror::flow) type Done = Result<Result<Arc<Metadata>, ClientError>, JoinError>;

pub(in crate::mirror::flow) struct Refresh {
    task: JoinSet<Result<Arc<Metadata>, ClientError>>,
    wanted: bool,
    started: Instant,
    /// When the last refresh succeeded.
    pub(in crate::mirror::flow) succeeded: Instant,
}

impl Refresh {
    /// After the flow's first look at the source.
    pub(in crate::mirror::flow) fn new() -> Refresh {
        Refresh {
            task: JoinSet::new(),
            wanted: false,
            started: Instant::now(),
            succeeded: Instant::now(),
        }
    }

    /// Asks for a refresh soon.
    pub(in crate::mirror::flow) fn want(&mut self) {
        self.wanted = true;
    }

    /// Starts a refresh when one is due and none is under way.
    pub(in crate::mirror::flow) fn start_if_due(&mut self, source: &Arc<Cluster>, cfg: &FlowSettings) {
        if !self.task.is_empty() {
            return;
        }
        let periodic = self.succeeded.elapsed() >= Duration::from_secs(cfg.topic_refresh_secs);
        if !(periodic || self.wanted) || self.started.elapsed() < MIN_GAP {
            return;
        }
        self.wanted = false;
        self.started = Instant::now();
        let source = source.clone();
        self.task.spawn(async move { source.refresh(None).await });
    }

    /// The refresh under way, once it ends; `None` at once when none is.
    pub(in crate::mirror::flow) async fn next(&mut self) -> Option<Done> {
        self.task.join_next().await
    }
}
