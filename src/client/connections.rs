//! A cluster's connections, one per broker address. No lock is held while a broker is
//! dialled: callers for the same broker share one dial in progress, callers for other
//! brokers never wait for it, and a broker whose dial just failed is reported at once
//! instead of being dialled again by every caller in turn.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::net::{Connection, NetError};

/// How long a failed dial is remembered: callers within it fail at once with its reason.
const FAILED_DIAL_MEMORY: Duration = Duration::from_millis(500);

type Outcome = Option<Result<Arc<Connection>, String>>;

enum Slot {
    Live(Arc<Connection>),
    Dialling(watch::Receiver<Outcome>),
    Failed { at: Instant, reason: String },
}

/// What a caller does after one look at the map.
enum Step {
    Use(Arc<Connection>),
    Wait(watch::Receiver<Outcome>),
    Dial(watch::Sender<Outcome>),
    Refuse(String),
}

#[derive(Default)]
pub struct Connections {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Connections {
    /// The live connection to `addr`, or the one being dialled, or a new one from `dial`.
    pub async fn get<F, Fut>(&self, addr: &str, dial: F) -> Result<Arc<Connection>, NetError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Connection, NetError>>,
    {
        let mut dial = Some(dial);
        loop {
            match self.look(addr) {
                Step::Use(conn) => return Ok(conn),
                Step::Refuse(reason) => return Err(failed(addr, reason)),
                Step::Wait(mut outcome) => {
                    // The dialler has its own deadline; a dropped dialler ends the wait.
                    let settled = outcome.wait_for(Option::is_some).await.ok().and_then(|o| o.clone());
                    match settled {
                        Some(Ok(conn)) => return Ok(conn),
                        Some(Err(reason)) => return Err(failed(addr, reason)),
                        None => self.forget_abandoned(addr),
                    }
                }
                Step::Dial(done) => {
                    let Some(dial) = dial.take() else {
                        return Err(failed(addr, "dial abandoned".into()));
                    };
                    return self.dial(addr, dial, done).await;
                }
            }
        }
    }

    /// Live connections only, with no dial: for callers that can use any broker.
    pub fn live(&self) -> Vec<Arc<Connection>> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .values()
            .filter_map(|s| match s {
                Slot::Live(c) if !c.is_closed() => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether a dial to `addr` failed within the last moment.
    pub fn recently_failed(&self, addr: &str) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        matches!(slots.get(addr), Some(Slot::Failed { at, .. }) if at.elapsed() < FAILED_DIAL_MEMORY)
    }

    fn look(&self, addr: &str) -> Step {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(addr) {
            Some(Slot::Live(c)) if !c.is_closed() => return Step::Use(c.clone()),
            Some(Slot::Dialling(rx)) => return Step::Wait(rx.clone()),
            Some(Slot::Failed { at, reason }) if at.elapsed() < FAILED_DIAL_MEMORY => {
                return Step::Refuse(reason.clone())
            }
            _ => {}
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(addr.to_owned(), Slot::Dialling(rx));
        Step::Dial(tx)
    }

    async fn dial<F, Fut>(&self, addr: &str, dial: F, done: watch::Sender<Outcome>) -> Result<Arc<Connection>, NetError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Connection, NetError>>,
    {
        // Should this future be dropped mid-dial, the guard clears the slot so that the
        // next caller dials again; waiters see the sender go and look again.
        let mut guard = AbandonGuard {
            pool: self,
            addr,
            armed: true,
        };
        let result = dial().await.map(Arc::new);
        guard.armed = false;
        let slot = match &result {
            Ok(conn) => Slot::Live(conn.clone()),
            Err(e) => Slot::Failed {
                at: Instant::now(),
                reason: e.to_string(),
            },
        };
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_owned(), slot);
        done.send_replace(Some(result.as_ref().map(Arc::clone).map_err(|e| e.to_string())));
        result
    }

    fn forget_abandoned(&self, addr: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Slot::Dialling(rx)) = slots.get(addr) {
            if rx.has_changed().is_err() {
                slots.remove(addr);
            }
        }
    }
}

struct AbandonGuard<'a> {
    pool: &'a Connections,
    addr: &'a str,
    armed: bool,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut slots = self.pool.slots.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(slots.get(self.addr), Some(Slot::Dialling(_))) {
            slots.remove(self.addr);
        }
    }
}

fn failed(addr: &str, reason: String) -> NetError {
    NetError::Closed {
        broker: addr.to_owned(),
        reason: Some(format!("dial failed: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ConnectOptions;

    fn silent_broker() -> (String, tokio::task::JoinHandle<()>) {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap().to_string();
        let listener = tokio::net::TcpListener::from_std(std).unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (addr, task)
    }

    /// While one broker's dial hangs, another broker's connection is handed out at once.
    #[tokio::test]
    async fn a_hanging_dial_holds_up_no_other_broker() {
        let (silent, task) = silent_broker();
        let pool = Arc::new(Connections::default());
        let options = ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            ..ConnectOptions::default()
        };
        let hanging = {
            let (pool, silent, options) = (pool.clone(), silent.clone(), options.clone());
            tokio::spawn(async move { pool.get(&silent, || Connection::connect(&silent, options)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let other = pool
            .get("127.0.0.1:1", || Connection::connect("127.0.0.1:1", options.clone()))
            .await;
        assert!(other.is_err(), "nothing listens on port 1");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(!hanging.is_finished(), "the silent broker's dial is still waiting");
        hanging.abort();
        task.abort();
    }

    /// Callers of one broker share its dial and its failure.
    #[tokio::test]
    async fn callers_of_one_broker_share_one_dial() {
        let (silent, task) = silent_broker();
        let pool = Arc::new(Connections::default());
        let options = ConnectOptions {
            connect_timeout: Duration::from_millis(300),
            ..ConnectOptions::default()
        };
        let dials = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (pool, silent, options, dials) = (pool.clone(), silent.clone(), options.clone(), dials.clone());
            callers.spawn(async move {
                pool.get(&silent, || {
                    dials.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Connection::connect(&silent, options)
                })
                .await
                .map(|_| ())
            });
        }
        let started = Instant::now();
        while let Some(r) = callers.join_next().await {
            assert!(r.unwrap().is_err());
        }
        assert_eq!(dials.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(pool.recently_failed(&silent));
        task.abort();
    }
}
