//! Which partitions a flow copies: matching source topics found at every refresh,
//! their target topics made ready, and where each partition starts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::client::admin;
use crate::client::error::UNKNOWN_TOPIC_OR_PARTITION;
use crate::client::offsets::{EARLIEST, LATEST};
use crate::client::Metadata;
use crate::mirror::in_flight::Key;
use crate::mirror::metrics::{kind, PartitionHandles};
use crate::mirror::progress::{self};
use crate::mirror::settings::StartChoice;
use crate::mirror::MirrorError;

use super::{refresh, Flow, Known, PartitionState};

impl Flow {
    /// Acts on a background refresh of the source's metadata: drops deleted topics and
    /// picks up new ones.
    pub(super) async fn on_refreshed(&mut self, done: refresh::Done) -> Result<(), MirrorError> {
        let meta = match done {
            Ok(Ok(meta)) => meta,
            Ok(Err(e)) => {
                self.metrics.error(&self.cfg.name, kind::METADATA);
                self.health.errors += 1;
                if let Some(suppressed) = self.health.metadata_throttle.allow() {
                    tracing::warn!(flow = %self.cfg.name, error = %e, suppressed, "cannot refresh the source's metadata; retrying");
                }
                return Ok(());
            }
            Err(e) => return Err(self.panicked("a metadata refresh", &e)),
        };
        self.refresh.succeeded = Instant::now();
        self.drop_deleted(&meta);
        self.discover(&meta).await
    }

    /// Drops the partitions of source topics that no longer exist, or exist under a new
    /// id (deleted and created again: discovery then copies the new one from its start),
    /// with their metric series; a forward still under way for one finishes and is then
    /// ignored. What was copied of a deleted topic stays on the target.
    fn drop_deleted(&mut self, meta: &Metadata) {
        let mut gone: BTreeMap<String, &'static str> = BTreeMap::new();
        for ((topic, _), known) in &self.known {
            match meta.topics.get(topic) {
                None => gone.insert(topic.clone(), "deleted"),
                Some(t) if t.error().is_some_and(|e| e.0 == UNKNOWN_TOPIC_OR_PARTITION) => {
                    gone.insert(topic.clone(), "deleted")
                }
                Some(t) if t.id != 0 && known.topic_id != 0 && t.id != known.topic_id => {
                    gone.insert(topic.clone(), "deleted and created again")
                }
                Some(_) => None,
            };
        }
        if gone.is_empty() {
            return;
        }
        for (topic, how) in gone {
            let keys: Vec<Key> = self
                .known
                .range((topic.clone(), i32::MIN)..=(topic.clone(), i32::MAX))
                .map(|(k, _)| k.clone())
                .collect();
            // Progress acknowledged for the old life and not committed yet would be
            // committed under the new one's topic id.
            self.uncommitted.retain(|(k, _)| !keys.contains(k));
            for key in &keys {
                self.known.remove(key);
                self.drop_partition(key);
                // A new life of the partition starts its producer sequence afresh.
                self.sequences.remove(key);
            }
            tracing::warn!(flow = %self.cfg.name, %topic, partitions = keys.len(), "source topic {how}; the flow drops what it knew of it (its copy on the target is left as it is)");
        }
        self.show_owned();
        self.show_universe();
    }

    /// Picks up matching source topics and new partitions of known ones.
    pub(super) async fn discover(&mut self, meta: &Metadata) -> Result<(), MirrorError> {
        let mut topics: Vec<_> = meta
            .topics
            .values()
            .filter(|t| t.error().is_none() && (self.is_heartbeat(&t.name) || self.filter.selects(&t.name, t.internal)))
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        self.health
            .matched(topics.iter().any(|t| !self.is_heartbeat(&t.name)), &self.cfg);
        for topic in topics {
            let known = self.known.keys().filter(|(t, _)| *t == topic.name).count();
            if known == topic.partitions.len() {
                continue;
            }
            let target_topic = match self.is_heartbeat(&topic.name) {
                true => topic.name.clone(),
                false => self.filter.target_name(&topic.name),
            };
            let count = topic.partitions.len();
            let ready = match self.ensure_target(&topic.name, &target_topic, count).await {
                Ok(()) => {
                    self.add_partitions(&topic.name, topic.id, &target_topic, count as i32)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = ready {
                // One topic's trouble must not stop the others; the next refresh retries.
                tracing::error!(error = %e, retry_in_secs = self.cfg.topic_refresh_secs, "topic not mirrored");
            }
        }
        self.show_universe();
        Ok(())
    }

    /// Makes sure the target topic exists with at least `count` partitions.
    async fn ensure_target(&self, source_topic: &str, target_topic: &str, count: usize) -> Result<(), MirrorError> {
        let meta = self
            .target
            .refresh(Some(&[target_topic.to_owned()]))
            .await
            .map_err(|e| self.err(e))?;
        let existing = meta
            .topics
            .get(target_topic)
            .filter(|t| t.error().is_none())
            .map(|t| t.partitions.len());
        let too_small = |have| MirrorError::TargetTooSmall {
            flow: self.cfg.name.clone(),
            source_topic: source_topic.to_owned(),
            target_topic: target_topic.to_owned(),
            source_count: count,
            target: have,
        };
        match existing {
            Some(have) if have >= count => return Ok(()),
            Some(have) if !self.cfg.create_topics => return Err(too_small(have)),
            Some(have) => {
                tracing::info!(flow = %self.cfg.name, %target_topic, from = have, to = count, "adding partitions to target topic");
                if let Err(e) = admin::create_partitions(&self.target, target_topic, count as i32).await {
                    tracing::warn!(flow = %self.cfg.name, %target_topic, error = %e, "the target did not add partitions");
                    return Err(too_small(have));
                }
            }
            None if !self.cfg.create_topics => {
                return Err(MirrorError::TargetMissing {
                    flow: self.cfg.name.clone(),
                    source_topic: source_topic.to_owned(),
                    target_topic: target_topic.to_owned(),
                })
            }
            None => self.create_target(source_topic, target_topic, count).await?,
        }
        let have = self.await_target(target_topic, count).await?;
        if have < count {
            return Err(too_small(have));
        }
        Ok(())
    }

    async fn create_target(&self, source_topic: &str, target_topic: &str, count: usize) -> Result<(), MirrorError> {
        if !admin::can_create_topics(&self.target).await.map_err(|e| self.err(e))? {
            tracing::warn!(flow = %self.cfg.name, %target_topic, "target cluster cannot create topics by API (no CreateTopics); relying on its auto-creation with its default partition count");
            return admin::auto_create_topic(&self.target, target_topic)
                .await
                .map_err(|e| self.err(e));
        }
        let configs: Vec<(String, String)> = match admin::topic_configs(&self.source, source_topic).await {
            Ok(c) => c
                .into_iter()
                .filter(|(k, _)| !self.cfg.exclude_configs.contains(k))
                .collect(),
            Err(e) => {
                tracing::warn!(flow = %self.cfg.name, %source_topic, error = %e, "cannot read source topic configs; creating the target topic with the target's defaults");
                Vec::new()
            }
        };
        let rf = self.cfg.replication_factor;
        let created = match admin::create_topic(&self.target, target_topic, count as i32, rf, &configs).await {
            Ok(created) => created,
            Err(e) if !configs.is_empty() => {
                tracing::warn!(flow = %self.cfg.name, %target_topic, error = %e, "target refused the source's topic configs; creating it with the target's defaults");
                admin::create_topic(&self.target, target_topic, count as i32, rf, &[])
                    .await
                    .map_err(|e| self.err(e))?
            }
            Err(e) => return Err(self.err(e)),
        };
        if created {
            tracing::info!(flow = %self.cfg.name, %source_topic, %target_topic, partitions = count, configs = configs.len(), "created target topic");
        }
        Ok(())
    }

    /// Waits until the target's metadata shows the topic with leaders for all partitions;
    /// returns the partition count it shows.
    async fn await_target(&self, target_topic: &str, count: usize) -> Result<usize, MirrorError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let meta = self
                .target
                .refresh(Some(&[target_topic.to_owned()]))
                .await
                .map_err(|e| self.err(e))?;
            let topic = meta.topics.get(target_topic).filter(|t| t.error().is_none());
            let have = topic.map_or(0, |t| t.partitions.len());
            let ready = topic.is_some_and(|t| have >= count && t.partitions.iter().all(|p| p.leader >= 0));
            if ready || Instant::now() > deadline {
                return Ok(have);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Records a topic's partitions as the flow's, and starts those the group already
    /// gave this process.
    async fn add_partitions(
        &mut self,
        source_topic: &str,
        topic_id: u128,
        target_topic: &str,
        count: i32,
    ) -> Result<(), MirrorError> {
        let mut assigned = Vec::new();
        for p in 0..count {
            let key = (source_topic.to_owned(), p);
            if self.known.contains_key(&key) {
                continue;
            }
            if self.assigned.as_ref().is_some_and(|a| a.contains(&key)) {
                assigned.push(key.clone());
            }
            let known = Known {
                target_topic: target_topic.to_owned(),
                topic_id,
                born_later: self.started,
            };
            self.known.insert(key, known);
        }
        self.start_partitions(assigned).await
    }

    /// Starts partitions this process now owns: from their committed progress, else
    /// from where `start` says (from the beginning for those born after the flow's
    /// first look).
    pub(super) async fn start_partitions(&mut self, keys: Vec<Key>) -> Result<(), MirrorError> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, p) in keys {
            by_topic.entry(topic).or_default().push(p);
        }
        for (source_topic, new) in by_topic {
            let Some(first) = self.known.get(&(source_topic.clone(), new[0])) else {
                continue;
            };
            let (target_topic, topic_id) = (first.target_topic.clone(), first.topic_id);
            let keys: Vec<(String, i32)> = new.iter().map(|p| (target_topic.clone(), *p)).collect();
            let committed = progress::load(&self.target, &self.cfg.name, &keys, topic_id)
                .await
                .map_err(|e| self.err(e))?;
            for p in new {
                let key = (source_topic.clone(), p);
                let born_later = self.known.get(&key).is_some_and(|k| k.born_later);
                let handles = PartitionHandles::new(&self.metrics, &self.labels(&key));
                let mut state = PartitionState::new(&target_topic, topic_id, -1, handles);
                state.sequence = self.sequences.remove(&key).unwrap_or(0);
                match committed.get(&(target_topic.clone(), p)) {
                    Some(offset) => {
                        tracing::info!(flow = %self.cfg.name, topic = %source_topic, partition = p, %target_topic, position = offset, "partition assigned, resuming from its committed progress");
                        state.start_at(*offset);
                    }
                    None => {
                        let at = match self.cfg.start {
                            StartChoice::Latest if !born_later => LATEST,
                            _ => EARLIEST,
                        };
                        state.starting = true;
                        let (source, flow) = (self.source.clone(), self.cfg.name.clone());
                        self.starts.spawn(source, flow, key.clone(), state.generation, at);
                    }
                }
                self.partitions.insert(key, state);
            }
        }
        self.show_owned();
        Ok(())
    }
}
