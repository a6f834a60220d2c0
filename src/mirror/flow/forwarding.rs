//! The target side of a round: forwards started per partition, collected when the
//! target acknowledged them, and the progress committed after.

use tracing::Instrument as _;

use crate::mirror::forward::ForwardError;
use crate::mirror::in_flight::{Forwarded, Key, Outgoing};
use crate::mirror::metrics::{kind, ErrorLabels, FlowLabels, ForwardStats};
use crate::mirror::progress::{self, Progress};
use crate::mirror::MirrorError;
use crate::wire::batch::Batch;

use super::{Flow, SHUTDOWN_GRACE};

impl Flow {
    /// Starts stamping a partition's batches with the flow's producer and producing them.
    pub(super) fn start_forward(&mut self, key: Key, next: i64, batches: Vec<Batch>) {
        let Some(state) = self.partitions.get_mut(&key) else {
            return;
        };
        state.in_flight = true;
        let stats = ForwardStats::of(&batches);
        let span = tracing::debug_span!(
            "forward",
            flow = %self.cfg.name,
            topic = %key.0,
            partition = key.1,
            target_topic = %state.target_topic,
            batches = batches.len() as i64,
            records = stats.records as i64,
            bytes = stats.bytes as i64,
        );
        let outgoing = Outgoing {
            target_topic: state.target_topic.clone(),
            sequence: state.sequence,
            stats,
            key,
            batches,
            next,
            producer: self.producer,
            settings: self.settings,
            span,
        };
        let retries = self.metrics.errors.get_or_create(&ErrorLabels {
            flow: self.cfg.name.clone(),
            kind: kind::PRODUCE_RETRY.to_owned(),
        });
        self.forwards.start(self.target.clone(), outgoing, retries.clone());
    }

    /// Takes the forwards that finished (with `wait`, at least one): acknowledged
    /// partitions join `advanced`, the others are rewound to fetch again. Returns why the
    /// target fenced the current producer, if it did.
    pub(super) async fn collect_forwards(
        &mut self,
        wait: bool,
        advanced: &mut Vec<(Key, i64)>,
    ) -> Result<Option<String>, MirrorError> {
        let mut fenced = None;
        for done in self.forwards.finished(wait).await {
            let Forwarded {
                key,
                next,
                next_sequence,
                producer,
                stats,
                result,
            } = done;
            if result.is_ok() {
                stats.record(&self.metrics, &self.labels(&key));
                if self.is_heartbeat(&key.0) {
                    let flow = FlowLabels {
                        flow: self.cfg.name.clone(),
                    };
                    stats.record_heartbeat(&self.metrics, &flow);
                }
            }
            let current = producer == self.producer;
            let Some(state) = self.partitions.get_mut(&key) else {
                continue;
            };
            state.in_flight = false;
            match result {
                Ok(()) => {
                    // Batches of a producer replaced meanwhile were acknowledged, but the
                    // new producer's sequence for this partition starts from zero.
                    if current {
                        state.sequence = next_sequence;
                    }
                    advanced.push((key, next));
                }
                Err(e) => {
                    state.rewind();
                    match e {
                        ForwardError::Fenced(detail) if current => {
                            self.metrics.error(&self.cfg.name, kind::FENCED);
                            fenced = Some(detail);
                        }
                        ForwardError::Fenced(_) => {}
                        ForwardError::Batch(e) => return Err(self.batch_err(&key, e)),
                        ForwardError::Refused(detail) => {
                            self.metrics.error(&self.cfg.name, kind::PRODUCE_REFUSED);
                            tracing::error!(flow = %self.cfg.name, topic = %key.0, partition = key.1, %detail, "target refused data; retrying next round");
                        }
                    }
                }
            }
        }
        Ok(fenced)
    }

    /// Lets the forwards under way finish within the grace period and commits what the
    /// target acknowledged; the rest is copied again after a restart.
    pub(super) async fn drain(&mut self) -> Result<(), MirrorError> {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut advanced = Vec::new();
        while !self.forwards.is_empty() {
            let finished = tokio::time::timeout_at(deadline, self.collect_forwards(true, &mut advanced)).await;
            match finished {
                Ok(result) => {
                    result?;
                }
                Err(_) => {
                    tracing::warn!(flow = %self.cfg.name, "forwards did not finish within the grace period; their data will be copied again on restart");
                    self.forwards.abandon();
                    break;
                }
            }
        }
        self.commit(&advanced).await
    }

    pub(super) async fn commit(&mut self, advanced: &[(Key, i64)]) -> Result<(), MirrorError> {
        if advanced.is_empty() {
            return Ok(());
        }
        let progress: Vec<Progress<'_>> = advanced
            .iter()
            .filter_map(|((topic, partition), next)| {
                let state = self.partitions.get(&(topic.clone(), *partition))?;
                Some(Progress {
                    target_topic: &state.target_topic,
                    source_topic: topic,
                    partition: *partition,
                    next_offset: *next,
                })
            })
            .collect();
        let span = tracing::debug_span!("commit", flow = %self.cfg.name, partitions = progress.len() as i64);
        progress::commit(&self.target, &self.cfg.name, self.source.name(), &progress)
            .instrument(span)
            .await
            .map_err(|e| self.err(e))?;
        for (key, next) in advanced {
            if let Some(state) = self.partitions.get_mut(key) {
                state.position = *next;
            }
        }
        Ok(())
    }
}
