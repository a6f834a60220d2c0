//! A probe run: a sender task produces on the source at a steady interval while this
//! task reads the target, reporting every second and summing up at the end.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::latencies::{Latencies, Percentiles};
use super::receive::Receiver;
use super::send::Sender;
use super::{marker, ProbeError};
use crate::client::Cluster;

/// How long one fetch of the target may wait for data.
const POLL_WAIT_MS: i32 = 100;

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub topic: String,
    /// The topic's name on the target (the replicator may rename it).
    pub target_topic: String,
    /// How long to send; until interrupted when `None`.
    pub duration: Option<Duration>,
    pub interval: Duration,
    /// How long to wait for records still under way once sending stopped.
    pub grace: Duration,
}

/// One second of a run.
#[derive(Debug, Clone)]
pub struct Tick {
    pub elapsed: Duration,
    pub sent: u64,
    pub received: u64,
    pub last_second: Option<Percentiles>,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub sent: u64,
    pub received: u64,
    pub duplicates: u64,
    pub send_errors: u64,
    pub latency: Option<Percentiles>,
}

impl Summary {
    pub fn missing(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    send_errors: AtomicU64,
}

async fn send_loop(mut sender: Sender, every: Duration, mut stop: watch::Receiver<bool>, counts: Arc<Counts>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => break,
        }
        match sender.send_one().await {
            Ok(_) => counts.sent.fetch_add(1, Ordering::SeqCst),
            Err(e) => {
                tracing::warn!(error = %e, "probe record not sent; trying again");
                counts.send_errors.fetch_add(1, Ordering::SeqCst)
            }
        };
    }
}

/// Runs until the duration is over or `shutdown` turns true, then waits up to the grace
/// period for the records still under way.
pub async fn run_probe(
    source: Arc<Cluster>,
    target: Arc<Cluster>,
    s: ProbeSettings,
    shutdown: watch::Receiver<bool>,
    mut on_tick: impl FnMut(&Tick),
) -> Result<Summary, ProbeError> {
    let run = marker::now_micros() ^ u64::from(std::process::id()) << 40;
    let mut receiver = Receiver::prepare(target, &s.target_topic, run).await?;
    let sender = Sender::prepare(source, &s.topic, run).await?;
    let counts = Arc::new(Counts::default());
    let (stop, stopped) = watch::channel(false);
    let mut sending = Some(tokio::spawn(send_loop(sender, s.interval, stopped, counts.clone())));
    let started = Instant::now();
    let mut next_tick = started + Duration::from_secs(1);
    let (mut seen, mut duplicates) = (HashSet::new(), 0);
    let (mut all, mut second) = (Latencies::default(), Latencies::default());
    let mut stopping_since = None;
    loop {
        let over = *shutdown.borrow() || s.duration.is_some_and(|d| started.elapsed() >= d);
        if over {
            if let Some(task) = sending.take() {
                let _ = stop.send(true);
                let _ = task.await;
                stopping_since = Some(Instant::now());
            }
        }
        let sent = counts.sent.load(Ordering::SeqCst);
        if stopping_since.is_some_and(|at: Instant| seen.len() as u64 >= sent || at.elapsed() >= s.grace) {
            break;
        }
        for arrival in receiver.poll(POLL_WAIT_MS).await? {
            if seen.insert(arrival.seq) {
                all.add(arrival.latency_micros);
                second.add(arrival.latency_micros);
            } else {
                duplicates += 1;
            }
        }
        if Instant::now() >= next_tick {
            on_tick(&Tick {
                elapsed: started.elapsed(),
                sent: counts.sent.load(Ordering::SeqCst),
                received: seen.len() as u64,
                last_second: std::mem::take(&mut second).percentiles(),
            });
            next_tick += Duration::from_secs(1);
        }
    }
    Ok(Summary {
        sent: counts.sent.load(Ordering::SeqCst),
        received: seen.len() as u64,
        duplicates,
        send_errors: counts.send_errors.load(Ordering::SeqCst),
        latency: all.percentiles(),
    })
}
