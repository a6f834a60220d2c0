//! What a flow counts for the Prometheus endpoint. The families are cheap handles onto
//! shared series; the endpoint registers them once and every flow records into them.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::wire::batch::Batch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    pub flow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub flow: String,
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub flow: String,
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub flow: String,
    pub kind: String,
}

/// Kinds of errors a flow counts; each names where the flow met it.
pub mod kind {
    pub const FETCH: &str = "fetch";
    pub const FETCH_PARTITION: &str = "fetch_partition";
    pub const PRODUCE_RETRY: &str = "produce_retry";
    pub const PRODUCE_REFUSED: &str = "produce_refused";
    pub const FENCED: &str = "producer_fenced";
    pub const OUT_OF_RANGE: &str = "offset_out_of_range";
    pub const HEARTBEAT: &str = "heartbeat";
    pub const METADATA: &str = "metadata";
    pub const PARTITION_STOPPED: &str = "partition_stopped";
}

type LatencyFamily = Family<TopicLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s: same-region copies and long cross-region catch-ups alike.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn rebalance_histogram() -> Histogram {
    // 10 ms to about 10 minutes: a group of one joins at once, a rebalance that waits
    // for a slow member takes up to its rebalance timeout.
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

#[derive(Clone)]
pub struct MirrorMetrics {
    pub records: Family<PartitionLabels, Counter>,
    pub bytes: Family<PartitionLabels, Counter>,
    pub batches: Family<PartitionLabels, Counter>,
    pub lag: Family<PartitionLabels, Gauge>,
    pub latency: LatencyFamily,
    pub errors: Family<ErrorLabels, Counter>,
    pub in_flight_bytes: Family<FlowLabels, Gauge>,
    pub up: Family<FlowLabels, Gauge>,
    pub partitions_stuck: Family<FlowLabels, Gauge>,
    pub partitions_stopped: Family<FlowLabels, Gauge>,
    /// What each flow's partitions have wrong, for `/readyz`: one line per partition.
    problems: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    pub heartbeat_delay: Family<FlowLabels, Gauge<f64, AtomicU64>>,
    pub heartbeat_timestamp: Family<FlowLabels, Gauge<f64, AtomicU64>>,
    pub member_partitions: Family<FlowLabels, Gauge>,
    pub member_generation: Family<FlowLabels, Gauge>,
    pub rebalances: Family<FlowLabels, Counter>,
    pub rebalance_seconds: Family<FlowLabels, Histogram, fn() -> Histogram>,
    pub partitions_moved: Family<FlowLabels, Counter>,
}

impl Default for MirrorMetrics {
    fn default() -> Self {
        MirrorMetrics {
            records: Family::default(),
            bytes: Family::default(),
            batches: Family::default(),
            lag: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            in_flight_bytes: Family::default(),
            up: Family::default(),
            partitions_stuck: Family::default(),
            partitions_stopped: Family::default(),
            problems: Arc::default(),
            heartbeat_delay: Family::default(),
            heartbeat_timestamp: Family::default(),
            member_partitions: Family::default(),
            member_generation: Family::default(),
            rebalances: Family::default(),
            rebalance_seconds: Family::new_with_constructor(rebalance_histogram),
            partitions_moved: Family::default(),
        }
    }
}

impl MirrorMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strait_mirror");
        r.register("records", "Records the target acknowledged", self.records.clone());
        r.register(
            "bytes",
            "Source batch bytes the target acknowledged",
            self.bytes.clone(),
        );
        r.register(
            "batches",
            "Record batches the target acknowledged",
            self.batches.clone(),
        );
        r.register(
            "lag_offsets",
            "Source high watermark minus the flow's committed position",
            self.lag.clone(),
        );
        r.register(
            "replication_latency_seconds",
            "Target acknowledgement time minus the newest source timestamp of each batch",
            self.latency.clone(),
        );
        r.register("errors", "Errors met by the flow, by kind", self.errors.clone());
        r.register(
            "in_flight_bytes",
            "Bytes of fetch answers held until the target acknowledges them: queued or being produced",
            self.in_flight_bytes.clone(),
        );
        r.register(
            "up",
            "1 while the flow runs with no partition stuck or stopped, 0 otherwise",
            self.up.clone(),
        );
        r.register(
            "partitions_stuck",
            "Partitions with lag and no progress for stuck_after_secs",
            self.partitions_stuck.clone(),
        );
        r.register(
            "partitions_stopped",
            "Partitions stopped by on_partition_error after an error no retry can fix",
            self.partitions_stopped.clone(),
        );
        r.register(
            "heartbeat_delay_seconds",
            "Target acknowledgement time minus the source timestamp of the newest heartbeat",
            self.heartbeat_delay.clone(),
        );
        r.register(
            "heartbeat_timestamp_seconds",
            "Source timestamp of the newest heartbeat the target acknowledged; time() minus it grows while the flow stalls",
            self.heartbeat_timestamp.clone(),
        );
        r.register(
            "member_partitions",
            "Source partitions this process copies for the flow, as its group assigned them",
            self.member_partitions.clone(),
        );
        r.register(
            "member_generation",
            "Generation of the flow's group this process last joined",
            self.member_generation.clone(),
        );
        r.register(
            "rebalances",
            "Assignments this process received from the flow's group",
            self.rebalances.clone(),
        );
        r.register(
            "rebalance_seconds",
            "Time from joining the flow's group to receiving the assignment",
            self.rebalance_seconds.clone(),
        );
        r.register(
            "partitions_moved",
            "Partitions this process gained or released in rebalances",
            self.partitions_moved.clone(),
        );
    }

    /// Replaces what `flow`'s partitions have wrong.
    pub fn set_problems(&self, flow: &str, problems: Vec<String>) {
        let mut all = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if problems.is_empty() {
            all.remove(flow);
        } else {
            all.insert(flow.to_owned(), problems);
        }
    }

    pub fn problems(&self, flow: &str) -> Vec<String> {
        let all = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        all.get(flow).cloned().unwrap_or_default()
    }

    /// Removes a partition's series, after its source topic was deleted.
    pub fn forget_partition(&self, labels: &PartitionLabels) {
        self.records.remove(labels);
        self.bytes.remove(labels);
        self.batches.remove(labels);
        self.lag.remove(labels);
    }

    pub fn error(&self, flow: &str, kind: &str) {
        let labels = ErrorLabels {
            flow: flow.to_owned(),
            kind: kind.to_owned(),
        };
        self.errors.get_or_create(&labels).inc();
    }
}

/// One partition's series, looked up once when the partition is assigned, so that the
/// per-batch path touches no label map.
#[derive(Clone)]
pub struct PartitionHandles {
    pub records: Counter,
    pub bytes: Counter,
    pub batches: Counter,
    pub lag: Gauge,
    pub latency: Histogram,
}

impl PartitionHandles {
    pub fn new(m: &MirrorMetrics, labels: &PartitionLabels) -> PartitionHandles {
        let topic = TopicLabels {
            flow: labels.flow.clone(),
            topic: labels.topic.clone(),
        };
        PartitionHandles {
            records: m.records.get_or_create(labels).clone(),
            bytes: m.bytes.get_or_create(labels).clone(),
            batches: m.batches.get_or_create(labels).clone(),
            lag: m.lag.get_or_create(labels).clone(),
            latency: m.latency.get_or_create(&topic).clone(),
        }
    }
}

/// A forward's batches as the metrics see them.
#[derive(Debug, Default, Clone)]
pub struct ForwardStats {
    pub records: u64,
    pub bytes: u64,
    /// The newest timestamp of each batch, in milliseconds since the epoch.
    pub newest: Vec<i64>,
}

impl ForwardStats {
    pub fn of(batches: &[Batch]) -> ForwardStats {
        ForwardStats {
            records: batches.iter().map(|b| b.record_count().max(0) as u64).sum(),
            bytes: batches.iter().map(|b| b.len() as u64).sum(),
            newest: batches.iter().map(Batch::max_timestamp).collect(),
        }
    }

    /// Records an acknowledged forward of one partition.
    pub fn record(&self, h: &PartitionHandles) {
        h.records.inc_by(self.records);
        h.bytes.inc_by(self.bytes);
        h.batches.inc_by(self.newest.len() as u64);
        let now_ms = now_ms();
        for newest in self.newest.iter().filter(|t| **t > 0) {
            h.latency.observe((now_ms - newest).max(0) as f64 / 1000.0);
        }
    }

    /// Records an acknowledged forward of the flow's heartbeat topic.
    pub fn record_heartbeat(&self, m: &MirrorMetrics, flow: &FlowLabels) {
        let Some(newest) = self.newest.iter().copied().max().filter(|t| *t > 0) else {
            return;
        };
        let delay = (now_ms() - newest).max(0) as f64 / 1000.0;
        m.heartbeat_delay.get_or_create(flow).set(delay);
        m.heartbeat_timestamp.get_or_create(flow).set(newest as f64 / 1000.0);
    }
}

/// Wall-clock milliseconds since the epoch, as Kafka timestamps count them.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
