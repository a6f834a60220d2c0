//! One client connection: its two sockets, plain or TLS, and what its two directions
//! share, the answers due in request order. `requests` carries the requests upstream,
//! `answers` the answers back; either side failing closes both.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::answers::forward_responses;
use super::error::ProxyError;
use super::requests::forward_requests;
use super::server::{Proxy, Target};
use crate::net::connection::Io;
use crate::net::frames::{FrameReader, Pace};
use crate::net::splice::Spliceable;
use crate::wire::header::RequestRoute;

/// The slowest a large request may arrive once begun, beyond the idle timeout it gets
/// first: 100 MB (the largest frame by default) then takes at most 400 s more.
const MIN_REQUEST_RATE: u64 = 256 * 1024;
/// Requests one client may have waiting for answers; more waits (back-pressure).
const MAX_IN_FLIGHT: usize = 1024;
/// Recent acks=0 produces remembered in case a broker answers one anyway (some do, with
/// an error): such an answer is dropped, as the client expects none, instead of breaking
/// the order.
const REMEMBERED_UNANSWERED: usize = 1024;
/// Requests sent upstream whose answers are due, in order.
pub(super) struct InFlight {
    pub(super) routes: Mutex<VecDeque<RequestRoute>>,
    pub(super) slots: Semaphore,
    /// Turns true when no more requests will come: answers stop once none are due.
    pub(super) client_done: watch::Sender<bool>,
    /// Correlation ids of recent requests that get no answer (Produce with acks=0).
    pub(super) unanswered: Mutex<VecDeque<i32>>,
}

impl InFlight {
    /// The request whose answer comes next.
    pub(super) fn front(&self) -> Option<RequestRoute> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).front().copied()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    pub(super) fn remember_unanswered(&self, correlation_id: i32) {
        let mut ids = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        if ids.len() == REMEMBERED_UNANSWERED {
            ids.pop_front();
        }
        ids.push_back(correlation_id);
    }

    /// The request this answer belongs to: the next one due, whose slot it frees, or
    /// `None` for an answer to a request that expected none; an answer to anything else
    /// is an error.
    pub(super) fn match_answer(&self, correlation_id: i32) -> Result<Option<RequestRoute>, String> {
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
pub(super) struct Tally {
    pub(super) requests: AtomicU64,
    pub(super) rewritten: AtomicU64,
    pub(super) to_broker: AtomicU64,
    pub(super) to_client: AtomicU64,
}

impl Tally {
    fn record(&self, span: &tracing::Span) {
        let count = |n: &AtomicU64| n.load(Ordering::Relaxed) as i64;
        span.record("requests", count(&self.requests));
        span.record("rewritten", count(&self.rewritten));
        span.record("bytes_to_broker", count(&self.to_broker));
        span.record("bytes_to_client", count(&self.to_client));
    }
}

pub async fn serve(
    proxy: Arc<Proxy>,
    stream: TcpStream,
    peer: SocketAddr,
    target: Target,
    _slot: OwnedSemaphorePermit,
) {
    let client = peer.to_string();
    let empty = tracing::field::Empty;
    // One span per connection, for its whole life: a span per request would flood a
    // collector at the rates a proxy carries.
    let span = tracing::debug_span!(
        "proxy_connection",
        proxy = %proxy.settings.name,
        %client,
        target = ?target,
        broker = empty,
        requests = empty,
        rewritten = empty,
        bytes_to_broker = empty,
        bytes_to_client = empty,
    );
    let tally = Tally::default();
    proxy.counters.connections.inc();
    let relayed = relay(&proxy, stream, &client, target, &tally)
        .instrument(span.clone())
        .await;
    tally.record(&span);
    match relayed {
        Ok(()) => tracing::debug!(proxy = %proxy.settings.name, %client, "connection closed"),
        Err(e) => tracing::warn!(proxy = %proxy.settings.name, error = %e, "connection closed"),
    }
    proxy.counters.connections.dec();
}

/// The api's name as a metric label. Every api key the proxy does not know shares the
/// one label `unknown`: a label made from what a client sends would let any client
/// create series without bound.
pub(super) fn api_label(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| "unknown".to_owned(), |k| format!("{k:?}"))
}

pub(super) fn client_error(client: &str, detail: impl std::fmt::Display) -> ProxyError {
    ProxyError::Client {
        client: client.to_owned(),
        detail: detail.to_string(),
    }
}

/// One side of a proxied connection: plain TCP, whose large requests can be spliced,
/// or TLS.
pub(crate) enum Link {
    Plain(TcpStream),
    Tls(Box<dyn Io>),
}

async fn relay(
    proxy: &Arc<Proxy>,
    stream: TcpStream,
    client: &str,
    target: Target,
    tally: &Tally,
) -> Result<(), ProxyError> {
    let _ = stream.set_nodelay(true);
    let client_link = match &proxy.settings.client_tls {
        Some(acceptor) => Link::Tls(Box::new(
            tokio::time::timeout(proxy.settings.upstream_options.connect_timeout, acceptor.accept(stream))
                .await
                .map_err(|_| client_error(client, "TLS handshake timed out"))?
                .map_err(|e| client_error(client, format!("TLS handshake: {e}")))?,
        )),
        None => Link::Plain(stream),
    };
    let (broker, upstream) = match proxy.dial(target, client).await {
        Ok(dialed) => dialed,
        Err(e) => {
            // Closed at once, not left waiting for answers that cannot come. Every client
            // meets the same failure (the broker is down, or descriptors ran out), so it
            // is counted and logged at a bounded rate rather than once per client.
            proxy.refuse(1, &format!("cannot serve the client: {e}"), None);
            return Ok(());
        }
    };
    tracing::Span::current().record("broker", broker.as_str());
    let ends = Ends {
        proxy,
        client,
        broker: &broker,
        tally,
    };
    match (client_link, upstream) {
        (Link::Plain(client_io), Link::Plain(upstream)) => {
            let (client_read, client_write) = client_io.into_split();
            let (upstream_read, upstream_write) = upstream.into_split();
            ends.pump(client_read, client_write, upstream_read, upstream_write)
                .await
        }
        (client_link, upstream) => {
            let (client_read, client_write) = tokio::io::split(boxed(client_link));
            let (upstream_read, upstream_write) = tokio::io::split(boxed(upstream));
            ends.pump(client_read, client_write, upstream_read, upstream_write)
                .await
        }
    }
}

fn boxed(link: Link) -> Box<dyn Io> {
    match link {
        Link::Plain(tcp) => Box::new(tcp),
        Link::Tls(io) => io,
    }
}

/// What a connection's two directions share.
struct Ends<'a> {
    proxy: &'a Arc<Proxy>,
    client: &'a str,
    broker: &'a str,
    tally: &'a Tally,
}

impl Ends<'_> {
    async fn pump(
        &self,
        client_read: impl AsyncRead + Spliceable + Unpin,
        client_write: impl AsyncWrite + Spliceable + Unpin,
        upstream_read: impl AsyncRead + Spliceable + Unpin,
        mut upstream_write: impl AsyncWrite + Spliceable + Unpin,
    ) -> Result<(), ProxyError> {
        let (proxy, client, tally) = (self.proxy, self.client, self.tally);
        let in_flight = Arc::new(InFlight {
            routes: Mutex::default(),
            slots: Semaphore::new(MAX_IN_FLIGHT),
            client_done: watch::Sender::new(false),
            unanswered: Mutex::default(),
        });
        let max = proxy.settings.max_frame;
        let pace = Pace {
            patience: proxy.settings.idle_timeout,
            min_rate: MIN_REQUEST_RATE,
        };
        let requests = forward_requests(
            proxy,
            FrameReader::new(client_read, max).paced(pace),
            // Borrowed, so that it outlives the requests: dropping a plain TCP write half
            // would end the broker's side, and with it the answers still due.
            &mut upstream_write,
            &in_flight,
            client,
            tally,
        );
        let responses = forward_responses(
            proxy,
            FrameReader::new(upstream_read, max),
            client_write,
            &in_flight,
            client,
            self.broker,
            tally,
        );
        tokio::pin!(requests, responses);
        tokio::select! {
            r = &mut responses => r,
            r = &mut requests => {
                // No more requests will come (the client closed, or the proxy stops): the
                // answers already due are delivered, the client let go, and the broker given
                // time to read what was sent (see `linger`).
                r?;
                in_flight.client_done.send_replace(true);
                tokio::time::timeout(proxy.settings.shutdown_grace, responses)
                    .await
                    .unwrap_or(Ok(()))
            }
        }
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
