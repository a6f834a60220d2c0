//! What one client connection's two sides share, and the narrow view of the proxy
//! each side gets: the answers due in request order, what the connection carried, and
//! the proxy's counters, stop signal and address map. The sides never see the server,
//! so the connection's files depend on this one and not on each other.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::sync::{watch, Semaphore};

use super::error::ProxyError;
use super::metrics::ProxyCounters;
use crate::wire::header::RequestRoute;

/// What a connection needs of its proxy, lent by the server for the connection's life.
pub struct Context<'a> {
    pub counters: &'a ProxyCounters,
    pub shutdown: &'a watch::Receiver<bool>,
    pub max_frame: usize,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub advertise: &'a (dyn Fn(i32, &str, i32) -> (String, i32) + Send + Sync),
}

/// What the request side needs of its proxy.
pub struct RequestSide<'a> {
    pub counters: &'a ProxyCounters,
    pub shutdown: &'a watch::Receiver<bool>,
    pub idle: Duration,
}

/// What the answer side needs of its proxy: the address to advertise for a broker
/// (node id, upstream host, upstream port).
pub struct AnswerSide<'a> {
    pub counters: &'a ProxyCounters,
    pub shutdown: &'a watch::Receiver<bool>,
    pub advertise: &'a (dyn Fn(i32, &str, i32) -> (String, i32) + Send + Sync),
}

/// Requests one client may have waiting for answers; more waits (back-pressure).
const MAX_IN_FLIGHT: usize = 1024;
/// Recent acks=0 produces remembered in case a broker answers one anyway (some do, with
/// an error): such an answer is dropped, as the client expects none, instead of breaking
/// the order.
const REMEMBERED_UNANSWERED: usize = 1024;
/// Requests sent upstream whose answers are due, in order.
pub struct InFlight {
    pub routes: Mutex<VecDeque<RequestRoute>>,
    pub slots: Semaphore,
    /// Turns true when no more requests will come: answers stop once none are due.
    pub client_done: watch::Sender<bool>,
    /// Correlation ids of recent requests that get no answer (Produce with acks=0).
    pub unanswered: Mutex<VecDeque<i32>>,
}

impl InFlight {
    pub fn new() -> Self {
        InFlight {
            routes: Mutex::default(),
            slots: Semaphore::new(MAX_IN_FLIGHT),
            client_done: watch::Sender::new(false),
            unanswered: Mutex::default(),
        }
    }

    /// The request whose answer comes next.
    pub fn front(&self) -> Option<RequestRoute> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).front().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    pub fn remember_unanswered(&self, correlation_id: i32) {
        let mut ids = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        if ids.len() == REMEMBERED_UNANSWERED {
            ids.pop_front();
        }
        ids.push_back(correlation_id);
    }

    /// The request this answer belongs to: the next one due, whose slot it frees, or
    /// `None` for an answer to a request that expected none; an answer to anything else
    /// is an error.
    pub fn match_answer(&self, correlation_id: i32) -> Result<Option<RequestRoute>, String> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.front().is_some_and(|r| r.correlation_id == correlation_id) {
            self.slots.add_permits(1);
            return Ok(routes.pop_front());
        }
        let mut ids = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = ids.iter().position(|id| *id == correlation_id) {
            ids.remove(at);
            return Ok(None);
        }
        Err(format!(
            "answer with correlation id {correlation_id}, expected {:?}",
            routes.front().map(|r| r.correlation_id)
        ))
    }
}

/// What one connection carried, for its span.
#[derive(Default)]
pub struct Tally {
    pub requests: AtomicU64,
    pub rewritten: AtomicU64,
    pub to_broker: AtomicU64,
    pub to_client: AtomicU64,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn record(&self, span: &tracing::Span) {
        let count = |n: &AtomicU64| n.load(Ordering::Relaxed) as i64;
        span.record("requests", count(&self.requests));
        span.record("rewritten", count(&self.rewritten));
        span.record("bytes_to_broker", count(&self.to_broker));
        span.record("bytes_to_client", count(&self.to_client));
    }
}

/// The api's name as a metric label. Every api key the proxy does not know shares the
/// one label `unknown`: a label made from what a client sends would let any client
/// create series without bound.
pub fn api_label(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| "unknown".to_owned(), |k| format!("{k:?}"))
}

pub fn client_error(client: &str, detail: impl std::fmt::Display) -> ProxyError {
    ProxyError::Client {
        client: client.to_owned(),
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::api_label;

    #[test]
    fn api_keys_the_proxy_does_not_know_share_one_label() {
        for key in [-1, 200, 1000, 9999, i16::MAX, i16::MIN] {
            assert_eq!(api_label(key), "unknown", "api key {key}");
        }
        assert_eq!(api_label(0), "Produce");
        assert_eq!(api_label(3), "Metadata");
    }
}
