//! One flow on many processes. Every process running a flow joins the group that holds
//! the flow's progress in the target cluster (`strait.<flow>`, protocol type `strait`),
//! so the coordinator that orders the members is the one that accepts their commits.
//! The leader assigns the source partitions (see `assign`); each process copies only
//! its own, and its commits carry its generation, so a process the group dropped has
//! them refused. A single process is a group of one.
//!
//! The membership runs as a task of the flow's: it joins, syncs and heartbeats, and
//! tells the flow its partitions. The flow tells it, through a watch, which source
//! partitions exist and which it still holds, so the task knows when a release is done
//! and the leader knows when new partitions call for a rebalance.

pub mod assign;
pub mod messages;
mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};

use crate::client::group_member::{Generation, GroupMember, MemberOptions};
use crate::client::Cluster;
use crate::mirror::in_flight::Key;
use crate::mirror::metrics::MirrorMetrics;
use crate::mirror::progress;
use crate::mirror::settings::FlowSettings;
use crate::mirror::MirrorError;

pub const PROTOCOL_TYPE: &str = "strait";
const PROTOCOL_NAME: &str = "strait-flow-1";
/// How long a stopping member may take to leave its group.
const LEAVE_WITHIN: Duration = Duration::from_secs(10);

/// What the membership tells the flow.
#[derive(Debug)]
pub enum MemberEvent {
    /// The member's partitions in a new generation: the flow starts those it lacks
    /// and releases (commits, then drops) those not listed.
    Assigned {
        generation: Generation,
        partitions: BTreeSet<Key>,
    },
    /// The group went on without this member: another may own its partitions already,
    /// so the flow stops them at once; their progress can no longer be committed.
    Lost,
}

/// What the flow shows its membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowView {
    /// Every source partition the flow would copy.
    pub universe: BTreeSet<Key>,
    /// The partitions the flow holds, releasing ones included.
    pub owned: BTreeSet<Key>,
}

/// What woke the flow on its membership's side.
pub enum Next {
    Event(MemberEvent),
    /// The task ended: by a stop, an error no rejoin fixes, or a panic.
    Ended(Result<Result<(), MirrorError>, JoinError>),
}

/// Bytes per second the flow copies of each partition it owns: read when joining, not
/// watched, as it changes all the time and matters only to the next assignment.
type Rates = Arc<Mutex<BTreeMap<Key, u64>>>;

/// When the coordinator last answered this member, in milliseconds since `epoch`, and
/// whether a join is waiting at the coordinator (which holds it for a whole rebalance
/// and counts the member alive meanwhile).
#[derive(Clone)]
struct Answered {
    epoch: Instant,
    millis: Arc<AtomicU64>,
    joining: Arc<AtomicBool>,
}

impl Answered {
    fn now(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.millis.store(ms, Ordering::Relaxed);
    }

    fn joining(&self, waiting: bool) {
        self.joining.store(waiting, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        if self.joining.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.millis.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

pub struct Membership {
    rates: Rates,
    answered: Answered,
    session_timeout: Duration,
    events: mpsc::Receiver<MemberEvent>,
    view: watch::Sender<FlowView>,
    stop: watch::Sender<bool>,
    task: JoinSet<Result<(), MirrorError>>,
}

impl Membership {
    /// Starts joining the flow's group; the first assignment follows as an event.
    pub fn start(target: Arc<Cluster>, cfg: &FlowSettings, metrics: MirrorMetrics) -> Membership {
        let options = MemberOptions {
            group: progress::group(&cfg.name),
            instance_id: cfg.instance_id.clone(),
            session_timeout: Duration::from_millis(cfg.session_timeout_ms),
            rebalance_timeout: rebalance_timeout(cfg),
            protocol_type: PROTOCOL_TYPE.to_owned(),
            protocol_name: PROTOCOL_NAME.to_owned(),
        };
        let (events_tx, events) = mpsc::channel(4);
        let (view_tx, view_rx) = watch::channel(FlowView::default());
        let (stop, stop_rx) = watch::channel(false);
        let rates = Rates::default();
        let answered = Answered {
            epoch: Instant::now(),
            millis: Arc::default(),
            joining: Arc::default(),
        };
        let task = task::Task {
            rates: rates.clone(),
            answered: answered.clone(),
            member: GroupMember::new(target, options),
            flow: cfg.name.clone(),
            settings: agreed_settings(cfg),
            view: view_rx,
            events: events_tx,
            stop: stop_rx,
            metrics: task::Handles::new(&metrics, &cfg.name),
        };
        let mut set = JoinSet::new();
        set.spawn(task.run());
        Membership {
            rates,
            answered,
            session_timeout: Duration::from_millis(cfg.session_timeout_ms),
            events,
            view: view_tx,
            stop,
            task: set,
        }
    }

    /// The next event, or the task's end; `None` only after the task was joined.
    pub async fn next(&mut self) -> Option<Next> {
        tokio::select! {
            Some(event) = self.events.recv() => Some(Next::Event(event)),
            Some(ended) = self.task.join_next() => Some(Next::Ended(ended)),
            else => None,
        }
    }

    /// Updates what the flow shows; the task wakes only on a real change.
    pub fn show(&self, update: impl FnOnce(&mut FlowView)) {
        self.view.send_if_modified(|view| {
            let before = view.clone();
            update(view);
            *view != before
        });
    }

    /// Whether the coordinator has not answered this member for a session timeout: it
    /// has then dropped the member, whose partitions may be another's already. A
    /// process that was frozen (SIGSTOP, a stalled VM) sees this the moment it runs
    /// again, before any heartbeat could tell it, so it copies nothing more of them.
    pub fn silenced(&self) -> bool {
        self.answered.silent_for() > self.session_timeout
    }

    /// Replaces the measured rates the next join reports.
    pub fn report_rates(&self, rates: BTreeMap<Key, u64>) {
        *self.rates.lock().unwrap_or_else(|e| e.into_inner()) = rates;
    }

    /// Ends the membership: a member without an instance id leaves the group, so its
    /// partitions move at once; a static one stays until its session times out, so a
    /// restart under the same id moves nothing.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(LEAVE_WITHIN, self.task.join_next()).await.is_err() {
            self.task.abort_all();
        }
    }
}

/// How long the coordinator waits for every member to join again: a member releasing
/// partitions first lets their forwards finish, which may take a produce timeout.
fn rebalance_timeout(cfg: &FlowSettings) -> Duration {
    let produce = Duration::from_millis(cfg.produce_timeout_ms.max(0) as u64);
    (2 * produce).max(Duration::from_secs(60))
}

/// The settings every process of a flow must share, by name: two processes that copy
/// differently must not split one flow between them.
pub fn agreed_settings(cfg: &FlowSettings) -> BTreeMap<String, String> {
    let patterns = |list: &[regex::Regex]| list.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>().join(" ");
    [
        ("source", cfg.source_name.clone()),
        ("target", cfg.target_name.clone()),
        ("topics", patterns(&cfg.include)),
        ("exclude", patterns(&cfg.exclude)),
        ("rename", cfg.rename.clone()),
        ("compression", format!("{:?}", cfg.compression)),
        ("compression_level", format!("{:?}", cfg.compression_level)),
        ("isolation", format!("{:?}", cfg.isolation)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The settings in which a member differs from the leader, named, or `None`.
pub fn differences(leader: &BTreeMap<String, String>, member: &BTreeMap<String, String>) -> Option<String> {
    let names: BTreeSet<&String> = leader.keys().chain(member.keys()).collect();
    let unset = String::from("(unset)");
    let diffs: Vec<String> = names
        .into_iter()
        .filter_map(|name| {
            let (mine, theirs) = (member.get(name).unwrap_or(&unset), leader.get(name).unwrap_or(&unset));
            (mine != theirs).then(|| format!("{name} is {mine:?} there but {theirs:?} on the group's leader"))
        })
        .collect();
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_setting_and_both_values() {
        let leader: BTreeMap<String, String> =
            [("compression".into(), "None".into()), ("rename".into(), "x".into())].into();
        let mut member = leader.clone();
        assert_eq!(differences(&leader, &member), None);
        member.insert("compression".into(), "Some(Zstd)".into());
        member.insert("delivery".into(), "exactly_once".into());
        let d = differences(&leader, &member).expect("they differ");
        assert!(
            d.contains("compression is \"Some(Zstd)\" there but \"None\" on the group's leader"),
            "{d}"
        );
        assert!(d.contains("delivery is \"exactly_once\" there but \"(unset)\""), "{d}");
        assert!(!d.contains("rename"), "{d}");
    }
}
