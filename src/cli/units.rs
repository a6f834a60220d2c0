//! What `strait run` keeps running: one task per flow and per proxy, each with its own
//! stop switch, so a config reload stops, starts or restarts exactly the ones whose
//! config changed and leaves the others running untouched.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait::client::Cluster;
use strait::config::{self, ClusterConfig, Config, MirrorConfig, ProxyConfig};
use strait::metrics::{Expected, Metrics};
use strait::mirror::metrics::MirrorMetrics;
use strait::mirror::settings::FlowSettings;
use strait::mirror::{run_flow, MirrorError};
use strait::proxy::metrics::{labels, ProxyMetrics};
use strait::proxy::{Proxy, ProxyError, ProxySettings};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Flow(String),
    Proxy(String),
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unit::Flow(name) => write!(f, "flow {name}"),
            Unit::Proxy(name) => write!(f, "proxy {name}"),
        }
    }
}

/// Everything a unit's behaviour depends on: a unit restarts when this changes.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Flow(Box<(MirrorConfig, ClusterConfig, ClusterConfig)>),
    Proxy(Box<(ProxyConfig, ClusterConfig)>),
}

/// A unit ready to start: its clusters connected, its settings built.
enum Ready {
    Flow(Box<FlowSettings>, Arc<Cluster>, Arc<Cluster>),
    Proxy(Box<ProxySettings>),
}

/// How a unit task ended, with the generation it was started as.
pub type Ended = (Unit, u64, Result<(), String>);

struct Task {
    plan: Plan,
    generation: u64,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

pub struct Units {
    metrics: Metrics,
    tasks: BTreeMap<Unit, Task>,
    ended: mpsc::UnboundedSender<Ended>,
    generation: u64,
}

fn plans(config: &Config) -> BTreeMap<Unit, Plan> {
    let cluster = |name: &String| config.clusters[name].clone();
    let flows = config.mirror.iter().map(|m| {
        let plan = Plan::Flow(Box::new((m.clone(), cluster(&m.source), cluster(&m.target))));
        (Unit::Flow(m.name.clone()), plan)
    });
    let proxies = config.proxy.iter().map(|p| {
        let plan = Plan::Proxy(Box::new((p.clone(), cluster(&p.cluster))));
        (Unit::Proxy(p.name.clone()), plan)
    });
    flows.chain(proxies).collect()
}

/// Builds what the plans need; fails before anything is stopped or started, so a bad
/// config changes nothing.
fn prepare(config: &Config, plans: &BTreeMap<Unit, &Plan>) -> anyhow::Result<Vec<(Unit, Plan, Ready)>> {
    let mut clusters: HashMap<String, Arc<Cluster>> = HashMap::new();
    let mut connect = |name: &str| -> anyhow::Result<Arc<Cluster>> {
        if let Some(c) = clusters.get(name) {
            return Ok(c.clone());
        }
        let c = config::connect_cluster(name, &config.clusters[name])?;
        clusters.insert(name.to_owned(), c.clone());
        Ok(c)
    };
    let mut out = Vec::new();
    for (unit, plan) in plans {
        let ready = match plan {
            Plan::Flow(flow) => {
                let m = &flow.0;
                Ready::Flow(
                    Box::new(config::flow_settings(m)?),
                    connect(&m.source)?,
                    connect(&m.target)?,
                )
            }
            Plan::Proxy(proxy) => Ready::Proxy(Box::new(config::proxy_settings(&proxy.0, &proxy.1)?)),
        };
        out.push((unit.clone(), (*plan).clone(), ready));
    }
    Ok(out)
}

/// Runs a flow, restarting it from its committed progress after failures a retry can
/// fix and after panics, with back-off, until `stop` turns true. The flow runs as a
/// task of its own so that a panic in it ends that task, not this supervisor.
async fn supervise(
    m: FlowSettings,
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    metrics: MirrorMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(), MirrorError> {
    let mut backoff = FIRST_RESTART;
    loop {
        let flow = run_flow(m.clone(), source.clone(), target.clone(), metrics.clone(), stop.clone());
        let started = Instant::now();
        let mut task = JoinSet::new();
        task.spawn(flow);
        let ended = match task.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(MirrorError::Panicked {
                flow: m.name.clone(),
                what: "the flow",
                detail: e.to_string(),
            }),
            None => Ok(()),
        };
        match ended {
            Ok(()) => return Ok(()),
            Err(e) if e.is_restartable() && *stop.borrow() => {
                // Stopping anyway: what the target acknowledged is committed, the rest is
                // copied again by the next start.
                tracing::warn!(error = %e, "flow failed while stopping");
                return Ok(());
            }
            Err(e) if e.is_restartable() => {
                backoff = after_a_healthy_run(backoff, started);
                tracing::error!(error = %e, restart_in = ?backoff, "flow failed; restarting from its committed progress");
                let mut stopping = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopping.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The back-off before a restart: back to its first step after a run that lasted, so
/// a unit failing once a day is not restarted a minute late.
fn after_a_healthy_run(backoff: Duration, started: Instant) -> Duration {
    if started.elapsed() >= HEALTHY_RUN {
        FIRST_RESTART
    } else {
        backoff
    }
}

const FIRST_RESTART: Duration = Duration::from_secs(1);
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs a proxy, starting it again with back-off after a panic (its own, or one of its
/// connections'), until `stop` turns true. Clients reconnect as Kafka clients do.
async fn supervise_proxy(
    settings: ProxySettings,
    metrics: ProxyMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(), ProxyError> {
    let up = metrics.up.get_or_create(&labels(&settings.name)).clone();
    let mut backoff = FIRST_RESTART;
    loop {
        // Its own task, so that a panic in it is reported, not lost.
        let started = Instant::now();
        let mut task = JoinSet::new();
        task.spawn(Proxy::run(settings.clone(), metrics.clone(), stop.clone()));
        let ended = match task.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(ProxyError::Panicked {
                proxy: settings.name.clone(),
                detail: e.to_string(),
            }),
            None => Ok(()),
        };
        up.set(0);
        match ended {
            Err(e @ ProxyError::Panicked { .. }) if !*stop.borrow() => {
                backoff = after_a_healthy_run(backoff, started);
                tracing::error!(error = %e, restart_in = ?backoff, "proxy failed; starting it again");
                let mut stopping = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopping.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            other => return other,
        }
    }
}

impl Units {
    pub fn new(metrics: Metrics, ended: mpsc::UnboundedSender<Ended>) -> Units {
        Units {
            metrics,
            tasks: BTreeMap::new(),
            ended,
            generation: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// What readiness waits for: every unit running now.
    pub fn expected(&self) -> Expected {
        let mut expected = Expected::default();
        for unit in self.tasks.keys() {
            match unit {
                Unit::Flow(name) => expected.flows.push(name.clone()),
                Unit::Proxy(name) => expected.proxies.push(name.clone()),
            }
        }
        expected
    }

    /// Brings the running units in line with `config`: removed ones stop, new ones
    /// start, changed ones restart, the rest are not touched.
    pub async fn apply(&mut self, config: &Config) -> anyhow::Result<()> {
        let wanted = plans(config);
        let changed: BTreeMap<Unit, &Plan> = wanted
            .iter()
            .filter(|(unit, plan)| !self.tasks.get(*unit).is_some_and(|t| t.plan == **plan))
            .map(|(unit, plan)| (unit.clone(), plan))
            .collect();
        let ready = prepare(config, &changed)?;
        let gone: Vec<Unit> = self
            .tasks
            .keys()
            .filter(|unit| !wanted.contains_key(*unit) || changed.contains_key(*unit))
            .cloned()
            .collect();
        for unit in gone {
            let restart = wanted.contains_key(&unit);
            tracing::info!(%unit, "{}", if restart { "config changed; restarting" } else { "removed from the config; stopping" });
            self.stop(&unit).await;
        }
        for (unit, plan, ready) in ready {
            self.start(unit, plan, ready);
        }
        Ok(())
    }

    fn start(&mut self, unit: Unit, plan: Plan, ready: Ready) {
        self.generation += 1;
        let generation = self.generation;
        let (stop, stopped) = watch::channel(false);
        let ended = self.ended.clone();
        let name = unit.clone();
        let handle = match ready {
            Ready::Flow(m, source, target) => {
                let metrics = self.metrics.mirror.clone();
                tokio::spawn(async move {
                    let result = supervise(*m, source, target, metrics, stopped).await;
                    let _ = ended.send((name, generation, result.map_err(|e| e.to_string())));
                })
            }
            Ready::Proxy(settings) => {
                let metrics = self.metrics.proxy.clone();
                tokio::spawn(async move {
                    let result = supervise_proxy(*settings, metrics, stopped).await;
                    let _ = ended.send((name, generation, result.map_err(|e| e.to_string())));
                })
            }
        };
        self.tasks.insert(
            unit,
            Task {
                plan,
                generation,
                stop,
                handle,
            },
        );
    }

    /// Stops a unit and waits until it has let go of everything (ports, progress).
    async fn stop(&mut self, unit: &Unit) {
        if let Some(task) = self.tasks.remove(unit) {
            let _ = task.stop.send(true);
            let _ = task.handle.await;
        }
    }

    pub async fn stop_all(&mut self) {
        let units: Vec<Unit> = self.tasks.keys().cloned().collect();
        for task in self.tasks.values() {
            let _ = task.stop.send(true);
        }
        for unit in units {
            self.stop(&unit).await;
        }
    }

    /// Forgets a unit that ended by itself; false for a report from a task already
    /// replaced by a reload.
    pub fn ended(&mut self, unit: &Unit, generation: u64) -> bool {
        let current = self.tasks.get(unit).is_some_and(|t| t.generation == generation);
        if current {
            self.tasks.remove(unit);
        }
        current
    }
}
