//! Heartbeats: a flow writes a timestamped record to its own topic on the source at an
//! interval and forwards that topic like any other, so its replication latency stays
//! known while the user's topics are idle, and a stalled pipeline shows as heartbeats
//! that stop arriving. Each flow has its own topic, so the two flows of an
//! active/active pair never copy each other's heartbeats back.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::time::MissedTickBehavior;

use super::metrics::now_ms;
use crate::client::admin::ensure_topic;
use crate::client::produce::produce_one;
use crate::client::Cluster;
use crate::wire::build::{as_patched, batch_of};

const PRODUCE_TIMEOUT_MS: i32 = 10_000;
/// A failing heartbeat is logged once, then every this many failures.
const LOG_EVERY: u64 = 60;

/// The flow's heartbeat topic, on the source and on the target alike. The `__` prefix
/// keeps it out of every flow's topic patterns.
pub fn topic(flow: &str) -> String {
    format!("__strait_heartbeats.{flow}")
}

/// Makes sure the heartbeat topic exists before the flow's first look at the source, so
/// heartbeats flow from the start; returns whether it does.
pub async fn prepare(source: &Cluster, flow: &str) -> bool {
    match ensure_topic(source, &topic(flow), 1).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(%flow, error = %e, "cannot create the heartbeat topic on the source; retrying with each heartbeat");
            false
        }
    }
}

/// Writes heartbeats until the task is aborted; failures are counted and logged, never
/// fatal to the flow.
pub async fn beat(source: Arc<Cluster>, flow: String, every: Duration, mut ready: bool, failures: Counter) {
    let topic = topic(&flow);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failed = 0u64;
    loop {
        ticks.tick().await;
        let result = async {
            if !ready {
                ensure_topic(&source, &topic, 1).await.map_err(|e| e.to_string())?;
                ready = true;
            }
            let batch = batch_of(&[flow.as_bytes()], now_ms()).map_err(|e| e.to_string())?;
            produce_one(&source, &topic, 0, &as_patched(&batch), PRODUCE_TIMEOUT_MS)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            failures.inc();
            if failed % LOG_EVERY == 0 {
                tracing::warn!(%flow, %topic, error = %e, failures = failed + 1, "heartbeat not written to the source");
            }
            failed += 1;
        }
    }
}
