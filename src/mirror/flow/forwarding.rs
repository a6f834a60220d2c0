//! The target side of a flow: forwards started per partition, one at a time each, and
//! handled when the target acknowledged or refused them; what was fetched meanwhile
//! goes out next.

use crate::client::producer_id::init_producer_id;
use crate::mirror::forward::ForwardError;
use crate::mirror::in_flight::{Forwarded, Key, Outgoing};
use crate::mirror::metrics::{kind, ErrorLabels, FlowLabels, ForwardStats};
use crate::mirror::queued::Taken;
use crate::mirror::MirrorError;

use super::{Event, Flow, SHUTDOWN_GRACE, TICK};

impl Flow {
    /// Starts forwarding decided batches; with none to forward (control batches,
    /// aborted data), acknowledges their progress as it is.
    pub(super) fn forward_or_acknowledge(&mut self, key: Key, decided: Taken) {
        if self.membership.silenced() {
            // The group has dropped this process: the partition may be another's now.
            if let Some(state) = self.partitions.get_mut(&key) {
                state.rewind();
            }
            return;
        }
        if !decided.batches.is_empty() {
            return self.start_forward(key, decided);
        }
        if let Some(state) = self.partitions.get_mut(&key) {
            state.acked = decided.next;
        }
        self.uncommitted.push((key, decided.next));
    }

    /// Starts stamping a partition's batches with the flow's producer and producing them.
    pub(super) fn start_forward(&mut self, key: Key, decided: Taken) {
        let Taken { next, batches, charges } = decided;
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
            generation: state.generation,
            target_topic: state.target_topic.clone(),
            sequence: state.sequence,
            stats,
            key,
            batches,
            next,
            producer: self.producer,
            settings: self.settings,
            span,
            charges,
        };
        let retries = self.metrics.errors.get_or_create(&ErrorLabels {
            flow: self.cfg.name.clone(),
            kind: kind::PRODUCE_RETRY.to_owned(),
        });
        self.forwards.start(self.target.clone(), outgoing, retries.clone());
    }

    /// Handles finished forwards: acknowledged partitions' progress waits for the next
    /// commit; the others are rewound to fetch again, or stopped by policy when the
    /// target refused them for good.
    pub(super) async fn on_forwarded(&mut self, finished: Vec<Forwarded>) -> Result<(), MirrorError> {
        // Their partitions can be fetched again, likely with more to copy: fetches should
        // not wait long at the broker.
        self.catching_up = true;
        let mut fenced = None;
        for done in finished {
            if let Some(detail) = self.on_one_forwarded(done)? {
                fenced = Some(detail);
            }
        }
        if let Some(detail) = fenced {
            let flow = self.cfg.name.clone();
            tracing::warn!("{}", MirrorError::ProducerFenced { flow, detail });
            self.producer = init_producer_id(&self.target).await.map_err(|e| self.err(e))?;
            self.partitions.values_mut().for_each(|s| s.sequence = 0);
            self.sequences.clear();
        }
        Ok(())
    }

    /// Returns why the target fenced the current producer, if it did.
    fn on_one_forwarded(&mut self, done: Forwarded) -> Result<Option<String>, MirrorError> {
        let Forwarded {
            key,
            generation,
            next,
            next_sequence,
            producer,
            stats,
            result,
        } = done;
        // A forward started for an earlier life of this partition (its topic deleted and
        // created again meanwhile) says nothing of this one.
        if !self.partitions.get(&key).is_some_and(|s| s.generation == generation) {
            return Ok(None);
        }
        if let (Ok(()), Some(state)) = (&result, self.partitions.get(&key)) {
            stats.record(&state.metrics);
            self.health.copied(&stats);
            if self.is_heartbeat(&key.0) {
                let flow = FlowLabels {
                    flow: self.cfg.name.clone(),
                };
                stats.record_heartbeat(&self.metrics, &flow);
            }
        }
        let current = producer == self.producer;
        let Some(state) = self.partitions.get_mut(&key) else {
            return Ok(None);
        };
        state.in_flight = false;
        let e = match result {
            Ok(()) => {
                // Batches of a producer replaced meanwhile were acknowledged, but the
                // new producer's sequence for this partition starts from zero.
                if current {
                    state.sequence = next_sequence;
                }
                state.acked = next;
                let queued = state.queued.take();
                tracing::debug!(flow = %self.cfg.name, topic = %key.0, partition = key.1, records = stats.records, bytes = stats.bytes, next, "forwarded: the target acknowledged");
                self.uncommitted.push((key.clone(), next));
                if let Some(decided) = queued {
                    self.forward_or_acknowledge(key, decided);
                }
                return Ok(None);
            }
            Err(e) => e,
        };
        state.rewind();
        match e {
            ForwardError::Fenced(detail) if current => {
                self.metrics.error(&self.cfg.name, kind::FENCED);
                Ok(Some(detail))
            }
            ForwardError::Fenced(_) => Ok(None),
            ForwardError::Batch(e) => {
                let detail = self.batch_err(&key, e).to_string();
                self.partition_failed(&key, detail).map(|()| None)
            }
            ForwardError::Refused(detail) => {
                self.metrics.error(&self.cfg.name, kind::PRODUCE_REFUSED);
                let detail = format!(
                    "cluster {}: the target refused its data for good: {detail}",
                    self.target.name()
                );
                self.partition_failed(&key, detail).map(|()| None)
            }
        }
    }

    /// Lets the forwards under way finish and commits what the target acknowledged,
    /// within the grace period; the rest is copied again after a restart. The flow's
    /// group is still served meanwhile: a commit refused while it rebalances is tried
    /// again in the next generation, so a stop leaves no acknowledged progress behind.
    pub(super) async fn drain(&mut self) -> Result<(), MirrorError> {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        loop {
            if self.forwards.is_empty() && self.uncommitted.is_empty() && !self.commits.busy() {
                return Ok(());
            }
            let event = tokio::select! {
                done = self.forwards.finished(true), if !self.forwards.is_empty() => Event::Forwarded(done),
                Some(done) = self.commits.next() => Event::Committed(done),
                Some(next) = self.membership.next() => Event::Member(next),
                _ = tokio::time::sleep(TICK) => Event::Tick,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            self.handle(event).await?;
            self.settle_releases();
            self.commit_due();
        }
        if !self.forwards.is_empty() {
            tracing::warn!(flow = %self.cfg.name, "forwards did not finish within the grace period; their data will be copied again on restart");
            self.forwards.abandon();
        }
        if !self.uncommitted.is_empty() {
            tracing::warn!(flow = %self.cfg.name, partitions = self.uncommitted.len(), "acknowledged progress could not be committed within the grace period; that data will be copied again on restart");
        }
        Ok(())
    }
}
