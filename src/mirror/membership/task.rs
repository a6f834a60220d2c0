//! The member's loop: join, let the leader assign, sync, tell the flow, then heartbeat
//! until the group rebalances, the flow's release is done, or (on the leader) new
//! source partitions call for a rebalance. A member that cannot reach its coordinator
//! for a session timeout stops its partitions itself: the group has dropped it, and
//! another member may be copying them already.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, watch};

use super::assign::assign;
use super::messages::{decode_assignment, decode_member, encode_assignment, encode_member, Assignment, MemberData};
use super::{differences, Answered, FlowView, MemberEvent, Rates};
use crate::client::group_member::{
    Generation, GroupMember, Joined, FENCED_INSTANCE_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
};
use crate::client::ClientError;
use crate::mirror::in_flight::Key;
use crate::mirror::metrics::{FlowLabels, MirrorMetrics};
use crate::mirror::retry::{Backoff, LogThrottle};
use crate::mirror::MirrorError;

/// The metric series of one flow's membership.
pub(super) struct Handles {
    partitions: Gauge,
    generation: Gauge,
    rebalances: Counter,
    rebalance_seconds: Histogram,
    moved: Counter,
}

impl Handles {
    pub(super) fn new(metrics: &MirrorMetrics, flow: &str) -> Handles {
        let labels = FlowLabels { flow: flow.to_owned() };
        Handles {
            partitions: metrics.member_partitions.get_or_create(&labels).clone(),
            generation: metrics.member_generation.get_or_create(&labels).clone(),
            rebalances: metrics.rebalances.get_or_create(&labels).clone(),
            rebalance_seconds: metrics.rebalance_seconds.get_or_create(&labels).clone(),
            moved: metrics.partitions_moved.get_or_create(&labels).clone(),
        }
    }
}

pub(super) struct Task {
    pub(super) member: GroupMember,
    pub(super) flow: String,
    pub(super) settings: BTreeMap<String, String>,
    pub(super) view: watch::Receiver<FlowView>,
    pub(super) events: mpsc::Sender<MemberEvent>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) metrics: Handles,
    pub(super) rates: Rates,
    pub(super) answered: Answered,
}

/// How long the leader lets the other members send their SyncGroup first. Kafka does
/// not need it, but librdkafka's mock cluster refuses a member's SyncGroup that comes
/// after the leader's, and a member that keeps losing that race never gets partitions.
const LEADER_SYNC_DELAY: Duration = Duration::from_millis(300);

/// How the steady part of a generation ended.
enum Then {
    Rejoin,
    Stop,
}

/// A Kafka error code, if that is what the error is.
fn code(e: &ClientError) -> Option<i16> {
    match e {
        ClientError::Kafka { code, .. } => Some(code.0),
        _ => None,
    }
}

impl Task {
    pub(super) async fn run(mut self) -> Result<(), MirrorError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            if *self.stop.borrow() {
                return self.leave().await;
            }
            let began = Instant::now();
            let options = self.member.options();
            tracing::debug!(flow = %self.flow, group = %options.group, instance = ?options.instance_id, session_timeout = ?options.session_timeout, "joining the flow's group");
            self.answered.joining(true);
            let joined = self.join().await;
            self.answered.joining(false);
            let Some(joined) = joined? else {
                return self.leave().await;
            };
            let joined = match joined {
                Ok(joined) => {
                    self.answered.now();
                    joined
                }
                Err(e) => {
                    self.check_fenced(&e)?;
                    let pause = backoff.pause();
                    tracing::warn!(flow = %self.flow, error = %e, retry_in = ?pause, "cannot join the flow's group; retrying");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let universe = self.view.borrow().universe.clone();
            let assignments = match joined.leader {
                true => self.lead(&joined, &universe),
                false => Vec::new(),
            };
            if joined.leader && joined.members.len() > 1 {
                tokio::time::sleep(LEADER_SYNC_DELAY).await;
            }
            self.answered.joining(true);
            let synced = self.sync(&joined, assignments).await;
            self.answered.joining(false);
            let partitions = match synced? {
                Some(partitions) => {
                    self.answered.now();
                    partitions
                }
                None => {
                    tokio::time::sleep(backoff.pause()).await;
                    continue;
                }
            };
            backoff.reset();
            let owned = self.view.borrow().owned.clone();
            self.record(&joined, &owned, &partitions, began);
            let revoked: BTreeSet<Key> = owned.difference(&partitions).cloned().collect();
            let assigned = MemberEvent::Assigned {
                generation: joined.generation.clone(),
                partitions,
            };
            if self.events.send(assigned).await.is_err() {
                return Ok(());
            }
            let leader_universe = joined.leader.then_some(universe);
            match self.steady(&joined.generation, leader_universe, revoked).await? {
                Then::Rejoin => continue,
                Then::Stop => return self.leave().await,
            }
        }
    }

    /// Joins with what the flow owns now; `None` when told to stop meanwhile.
    async fn join(&mut self) -> Result<Option<Result<Joined, ClientError>>, MirrorError> {
        let data = MemberData {
            settings: self.settings.clone(),
            owned: self.view.borrow().owned.clone(),
            rates: self.rates.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        let metadata = Bytes::from(encode_member(&data));
        tokio::select! {
            joined = self.member.join(metadata) => Ok(Some(joined)),
            _ = self.stop.changed() => Ok(None),
        }
    }

    /// This member's partitions for the generation; `None` when the sync must be
    /// retried with a new join.
    async fn sync(
        &mut self,
        joined: &Joined,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Option<BTreeSet<Key>>, MirrorError> {
        let bytes = match self.member.sync(&joined.generation, assignments).await {
            Ok(bytes) => bytes,
            Err(e) => {
                self.check_fenced(&e)?;
                if code(&e) != Some(REBALANCE_IN_PROGRESS) {
                    tracing::warn!(flow = %self.flow, error = %e, "the group's sync failed; joining again");
                }
                return Ok(None);
            }
        };
        match decode_assignment(&bytes) {
            Ok(Assignment::Partitions(partitions)) => Ok(Some(partitions)),
            Ok(Assignment::Refused(detail)) => Err(MirrorError::SettingsDiffer {
                flow: self.flow.clone(),
                detail,
            }),
            // An empty assignment comes from a leader that assigned nothing to anyone.
            Err(_) if bytes.is_empty() => Ok(Some(BTreeSet::new())),
            Err(e) => {
                tracing::warn!(flow = %self.flow, error = %e, "cannot read the assignment the group's leader sent; joining again");
                Ok(None)
            }
        }
    }

    /// The leader's part: every member's partitions, or why it is refused.
    fn lead(&self, joined: &Joined, universe: &BTreeSet<Key>) -> Vec<(String, Bytes)> {
        let mut owned = BTreeMap::new();
        let mut rates = BTreeMap::new();
        let mut out = Vec::new();
        for m in &joined.members {
            let refused = match decode_member(&m.metadata) {
                Ok(data) => match differences(&self.settings, &data.settings) {
                    None => {
                        owned.insert(m.member_id.clone(), data.owned);
                        rates.extend(data.rates);
                        continue;
                    }
                    Some(diff) => format!("its settings differ from the group leader's: {diff}"),
                },
                Err(e) => format!("the group's leader cannot read what it joined with: {e}"),
            };
            tracing::error!(flow = %self.flow, member = %m.member_id, instance = ?m.group_instance_id, reason = %refused, "a process of this flow is refused: it copies nothing until its settings match");
            out.push((
                m.member_id.clone(),
                Bytes::from(encode_assignment(&Assignment::Refused(refused))),
            ));
        }
        for stale in self.merge_stale(joined, &mut owned) {
            let nothing = Assignment::Partitions(BTreeSet::new());
            out.push((stale, Bytes::from(encode_assignment(&nothing))));
        }
        let plan = assign(&owned, &rates, universe);
        tracing::info!(flow = %self.flow, generation = joined.generation.id, members = owned.len(), partitions = universe.len(), withheld = plan.withheld, "assigned the flow's partitions as the group's leader");
        for (member, keys) in plan.assigned {
            out.push((member, Bytes::from(encode_assignment(&Assignment::Partitions(keys)))));
        }
        out
    }

    /// A coordinator that does not replace a static member which joined again under
    /// its instance id (librdkafka's mock cluster keeps the old one until its session
    /// ends) lists the instance twice. The last listed joined last and is taken as the
    /// live one: it inherits what the others claimed, so the instance's partitions are
    /// neither withheld for a process that is gone nor moved to others meanwhile. The
    /// others are returned, to be given nothing.
    fn merge_stale(&self, joined: &Joined, owned: &mut BTreeMap<String, BTreeSet<Key>>) -> Vec<String> {
        let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
        for m in joined.members.iter().filter(|m| owned.contains_key(&m.member_id)) {
            if let Some(instance) = m.group_instance_id.as_deref() {
                latest.insert(instance, &m.member_id);
            }
        }
        let mut stale = Vec::new();
        for m in &joined.members {
            let Some(instance) = m.group_instance_id.as_deref() else {
                continue;
            };
            let live = latest.get(instance).copied();
            if live.is_none() || live == Some(m.member_id.as_str()) {
                continue;
            }
            let Some(claims) = owned.remove(&m.member_id) else {
                continue;
            };
            let live = live.expect("checked above").to_owned();
            owned.entry(live.clone()).or_default().extend(claims);
            tracing::info!(flow = %self.flow, %instance, stale = %m.member_id, live = %live, "two members share an instance id; the one that joined last is taken as the live one");
            stale.push(m.member_id.clone());
        }
        stale
    }

    fn record(&self, joined: &Joined, owned: &BTreeSet<Key>, partitions: &BTreeSet<Key>, began: Instant) {
        let gained = partitions.difference(owned).count();
        let lost = owned.difference(partitions).count();
        let m = &self.metrics;
        m.partitions.set(partitions.len() as i64);
        m.generation.set(i64::from(joined.generation.id));
        m.rebalances.inc();
        m.rebalance_seconds.observe(began.elapsed().as_secs_f64());
        m.moved.inc_by((gained + lost) as u64);
        tracing::info!(flow = %self.flow, generation = joined.generation.id, member = %joined.generation.member_id, leader = joined.leader, owned = partitions.len(), gained, lost, took_ms = began.elapsed().as_millis() as u64, "assignment received");
    }

    /// Heartbeats until the generation ends for this member.
    async fn steady(
        &mut self,
        generation: &Generation,
        leader_universe: Option<BTreeSet<Key>>,
        revoked: BTreeSet<Key>,
    ) -> Result<Then, MirrorError> {
        let options = self.member.options().clone();
        let every = (options.session_timeout / 3).min(Duration::from_secs(3));
        let mut answered = Instant::now();
        let mut throttle = LogThrottle::new(Duration::from_secs(30));
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        loop {
            {
                let view = self.view.borrow_and_update();
                if !revoked.is_empty() && view.owned.is_disjoint(&revoked) {
                    tracing::info!(flow = %self.flow, released = revoked.len(), "partitions released; joining again so they can move");
                    return Ok(Then::Rejoin);
                }
                if leader_universe.as_ref().is_some_and(|u| *u != view.universe) {
                    tracing::info!(flow = %self.flow, partitions = view.universe.len(), "the source's partitions changed; rebalancing");
                    return Ok(Then::Rejoin);
                }
            }
            tokio::select! {
                _ = beat.tick() => {}
                changed = self.view.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return Ok(Then::Stop),
                },
                _ = self.stop.changed() => return Ok(Then::Stop),
            }
            let Err(e) = self.member.heartbeat(generation).await else {
                answered = Instant::now();
                self.answered.now();
                continue;
            };
            self.check_fenced(&e)?;
            match code(&e) {
                Some(REBALANCE_IN_PROGRESS) => return Ok(Then::Rejoin),
                Some(ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID) => {
                    tracing::warn!(flow = %self.flow, error = %e, "the group went on without this process; stopping its partitions");
                    return self.lose(options.rebalance_timeout).await;
                }
                _ if answered.elapsed() >= options.session_timeout => {
                    tracing::warn!(flow = %self.flow, error = %e, silent_for = ?answered.elapsed(), "no heartbeat answered for a session timeout: the group has dropped this process; stopping its partitions");
                    return self.lose(options.rebalance_timeout).await;
                }
                _ => {
                    if let Some(suppressed) = throttle.allow() {
                        tracing::warn!(flow = %self.flow, error = %e, suppressed, "heartbeat failed; retrying");
                    }
                }
            }
        }
    }

    /// Tells the flow its partitions are lost and waits until it dropped them (or the
    /// rebalance timeout passed), so the next join does not claim them.
    async fn lose(&mut self, within: Duration) -> Result<Then, MirrorError> {
        if self.events.send(MemberEvent::Lost).await.is_err() {
            return Ok(Then::Stop);
        }
        self.metrics.partitions.set(0);
        let dropped = self.view.wait_for(|view| view.owned.is_empty());
        match tokio::time::timeout(within, dropped).await {
            Ok(Ok(_)) | Err(_) => Ok(Then::Rejoin),
            Ok(Err(_)) => Ok(Then::Stop),
        }
    }

    /// Another process joined under this one's instance id: two processes must not
    /// share one, and the newer wins.
    fn check_fenced(&self, e: &ClientError) -> Result<(), MirrorError> {
        if code(e) != Some(FENCED_INSTANCE_ID) {
            return Ok(());
        }
        Err(MirrorError::InstanceFenced {
            flow: self.flow.clone(),
            instance_id: self.member.options().instance_id.clone().unwrap_or_default(),
        })
    }

    async fn leave(&mut self) -> Result<(), MirrorError> {
        self.metrics.partitions.set(0);
        if self.member.options().instance_id.is_some() {
            return Ok(());
        }
        if let Err(e) = self.member.leave().await {
            tracing::debug!(flow = %self.flow, error = %e, "leaving the group failed; the coordinator drops this process after its session timeout");
        }
        Ok(())
    }
}
