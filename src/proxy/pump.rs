//! One client connection: requests go upstream as the same bytes, after their header is
//! read to remember what answer to expect; answers come back in order, rewritten where
//! they carry broker addresses. Either side failing closes both.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use tokio::net::TcpStream;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::cut_through::{held_back, pass_on, Answer, Failed};
use super::error::ProxyError;
use super::rewrite::{self, api_versions};
use super::server::{Proxy, Target};
use crate::net::connection::Io;
use crate::net::frames::{FrameError, FrameReader, Large, Next};
use crate::net::write::write_all_parts;
use crate::wire::buffers::POOLED_FROM;
use crate::wire::frame::length_prefix;
use crate::wire::header::{
    request_header_version, request_route, response_header_version, split_response, RequestRoute,
};
use crate::wire::produce::request_acks;
use crate::wire::WireError;

/// Requests one client may have waiting for answers; more waits (back-pressure).
const MAX_IN_FLIGHT: usize = 1024;
/// Recent acks=0 produces remembered in case a broker answers one anyway (some do, with
/// an error): such an answer is passed on unchanged instead of breaking the order.
const REMEMBERED_UNANSWERED: usize = 1024;

/// Requests sent upstream whose answers are due, in order.
struct InFlight {
    routes: Mutex<VecDeque<RequestRoute>>,
    slots: Semaphore,
    /// Turns true when no more requests will come: answers stop once none are due.
    client_done: watch::Sender<bool>,
    /// Correlation ids of recent requests that get no answer (Produce with acks=0).
    unanswered: Mutex<VecDeque<i32>>,
}

impl InFlight {
    /// The request whose answer comes next.
    fn front(&self) -> Option<RequestRoute> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).front().copied()
    }

    fn is_empty(&self) -> bool {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    fn remember_unanswered(&self, correlation_id: i32) {
        let mut ids = self.unanswered.lock().unwrap_or_else(|e| e.into_inner());
        if ids.len() == REMEMBERED_UNANSWERED {
            ids.pop_front();
        }
        ids.push_back(correlation_id);
    }

    /// The request this answer belongs to: the next one due, or `None` for an answer to
    /// a request that expected none; an answer to anything else is an error.
    fn match_answer(&self, correlation_id: i32) -> Result<Option<RequestRoute>, String> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.front().is_some_and(|r| r.correlation_id == correlation_id) {
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
struct Tally {
    requests: AtomicU64,
    rewritten: AtomicU64,
    to_broker: AtomicU64,
    to_client: AtomicU64,
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

/// The api's name as a metric label; unknown keys by number.
fn api_label(api_key: i16) -> String {
    ApiKey::try_from(api_key).map_or_else(|_| api_key.to_string(), |k| format!("{k:?}"))
}

fn client_error(client: &str, detail: impl std::fmt::Display) -> ProxyError {
    ProxyError::Client {
        client: client.to_owned(),
        detail: detail.to_string(),
    }
}

async fn relay(
    proxy: &Arc<Proxy>,
    stream: TcpStream,
    client: &str,
    target: Target,
    tally: &Tally,
) -> Result<(), ProxyError> {
    let _ = stream.set_nodelay(true);
    let client_io: Box<dyn Io> = match &proxy.settings.client_tls {
        Some(acceptor) => Box::new(
            tokio::time::timeout(proxy.settings.upstream_options.connect_timeout, acceptor.accept(stream))
                .await
                .map_err(|_| client_error(client, "TLS handshake timed out"))?
                .map_err(|e| client_error(client, format!("TLS handshake: {e}")))?,
        ),
        None => Box::new(stream),
    };
    let (broker, upstream) = proxy.dial(target, client).await?;
    tracing::Span::current().record("broker", broker.as_str());
    let (client_read, client_write) = tokio::io::split(client_io);
    let (upstream_read, upstream_write) = tokio::io::split(upstream);
    let in_flight = Arc::new(InFlight {
        routes: Mutex::default(),
        slots: Semaphore::new(MAX_IN_FLIGHT),
        client_done: watch::Sender::new(false),
        unanswered: Mutex::default(),
    });
    let max = proxy.settings.max_frame;
    let requests = forward_requests(
        proxy,
        FrameReader::new(client_read, max),
        upstream_write,
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
        &broker,
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

/// Whether the broker answers this request: all do but Produce with acks=0.
/// A request whose acks cannot be read is taken to expect one.
fn expects_answer(frame: &[u8], route: &RequestRoute) -> bool {
    acks_say_answer(frame, route).unwrap_or(true)
}

/// Whether the request's acks ask for an answer; an error while they cannot be read
/// (for a large request, not yet arrived).
fn acks_say_answer(frame: &[u8], route: &RequestRoute) -> Result<bool, WireError> {
    if route.api_key != ApiKey::Produce as i16 {
        return Ok(true);
    }
    let Some(header_version) = request_header_version(route.api_key, route.api_version) else {
        return Ok(true);
    };
    Ok(request_acks(frame, header_version, route.api_version)? != 0)
}

async fn forward_requests(
    proxy: &Proxy,
    mut frames: FrameReader<impl AsyncRead + Unpin>,
    mut upstream: impl AsyncWrite + Unpin,
    in_flight: &InFlight,
    client: &str,
    tally: &Tally,
) -> Result<(), ProxyError> {
    let mut shutdown = proxy.shutdown.clone();
    let idle = proxy.settings.idle_timeout;
    loop {
        // Waiting for a request's start is cancel-safe; its body is read past here.
        let next = tokio::select! {
            n = tokio::time::timeout(idle, frames.next_or_large(POOLED_FROM)) => n,
            _ = shutdown.changed() => return Ok(()),
        };
        let mut request = match next {
            Err(_) if in_flight.is_empty() => return Err(client_error(client, format!("idle for {idle:?}"))),
            Err(_) => continue,
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => {
                // Pass the client's half-close on: the broker still reads what was sent.
                let _ = upstream.shutdown().await;
                return Ok(());
            }
            Ok(Err(e)) => return Err(client_error(client, e)),
        };
        if let Next::Large(large) = &mut request {
            read_head(&mut frames, large)
                .await
                .map_err(|e| client_error(client, e))?;
        }
        let (head, len) = match &request {
            Next::Whole(frame) => (&frame[..], frame.len()),
            Next::Large(large) => (large.received(), large.stated_len()),
        };
        let route = request_route(head).map_err(|e| client_error(client, e))?;
        proxy.counters.request(&api_label(route.api_key));
        proxy.counters.to_broker.inc_by(4 + len as u64);
        tally.requests.fetch_add(1, Ordering::Relaxed);
        tally.to_broker.fetch_add(4 + len as u64, Ordering::Relaxed);
        if let Some(limit) = api_versions::clamp_for(route.api_key).filter(|limit| route.api_version > *limit) {
            // Its answer could carry addresses the proxy cannot rewrite.
            return Err(client_error(
                client,
                format!(
                    "api key {} version {} is above what the proxy lets through ({limit}); the client ignored ApiVersions",
                    route.api_key, route.api_version
                ),
            ));
        }

        if expects_answer(head, &route) {
            in_flight
                .slots
                .acquire()
                .await
                .map_err(|_| client_error(client, "closed"))?
                .forget();
            in_flight
                .routes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(route);
        } else {
            in_flight.remember_unanswered(route.correlation_id);
        }
        let written = match request {
            Next::Whole(frame) => {
                let prefix = length_prefix(frame.len()).map_err(|e| client_error(client, e))?;
                write_all_parts(&mut upstream, &[&prefix[..], &frame[..]]).await
            }
            // Requests are never rewritten: a large one goes upstream as it arrives.
            Next::Large(large) => match pass_on(&mut frames, large, 0, &mut upstream).await {
                Ok(_) => Ok(()),
                Err(Failed::Reading(e)) => return Err(client_error(client, e)),
                Err(Failed::Writing(e)) => Err(e),
            },
        };
        written.map_err(|e| client_error(client, format!("writing upstream: {e}")))?;
    }
}

/// Reads a large request until its header (and a Produce's acks) can be read, which
/// is what the proxy needs before passing the rest on.
async fn read_head(frames: &mut FrameReader<impl AsyncRead + Unpin>, large: &mut Large) -> Result<(), FrameError> {
    let readable = |head: &[u8]| request_route(head).is_ok_and(|route| acks_say_answer(head, &route).is_ok());
    while !large.is_complete() && !readable(large.received()) {
        frames.read_more(large).await?;
    }
    Ok(())
}

async fn forward_responses(
    proxy: &Arc<Proxy>,
    mut frames: FrameReader<impl AsyncRead + Unpin>,
    mut client_write: impl AsyncWrite + Unpin,
    in_flight: &InFlight,
    client: &str,
    broker: &str,
    tally: &Tally,
) -> Result<(), ProxyError> {
    let upstream_error = |detail: String| ProxyError::Upstream {
        broker: broker.to_owned(),
        client: client.to_owned(),
        detail,
    };
    let mut client_done = in_flight.client_done.subscribe();
    loop {
        let done = *client_done.borrow_and_update();
        if done && in_flight.is_empty() {
            break;
        }
        // Waiting for an answer's start is cancel-safe.
        let next = tokio::select! {
            next = frames.next_or_large(POOLED_FROM) => next.map_err(|e| upstream_error(e.to_string()))?,
            _ = client_done.changed(), if !done => continue,
        };
        let Some(next) = next else {
            return Ok(());
        };
        let (frame, sent) = match next_answer(&mut frames, next, in_flight, &mut client_write).await {
            Ok(answer) => answer,
            Err(Failed::Reading(e)) => return Err(upstream_error(e.to_string())),
            Err(Failed::Writing(e)) => return Err(client_error(client, format!("writing to the client: {e}"))),
        };
        let id = crate::wire::header::response_correlation_id(&frame).map_err(|e| upstream_error(e.to_string()))?;
        let answer = match in_flight.match_answer(id).map_err(upstream_error)? {
            Some(route) => {
                in_flight.slots.add_permits(1);
                rewrite(proxy, &route, frame)
            }
            // An answer to an acks=0 produce: a Produce answer carries no address.
            None => Ok(Answer::Unchanged(frame)),
        };
        if matches!(answer, Ok(Answer::Rewritten { .. })) {
            tally.rewritten.fetch_add(1, Ordering::Relaxed);
        }
        let parts = answer
            .and_then(|answer| answer.rest(sent))
            .map_err(|e| upstream_error(format!("cannot rewrite the answer: {e}")))?;
        let bytes = (sent.map_or(0, |sent| 4 + sent) + parts.iter().map(Bytes::len).sum::<usize>()) as u64;
        proxy.counters.to_client.inc_by(bytes);
        tally.to_client.fetch_add(bytes, Ordering::Relaxed);
        write_all_parts(&mut client_write, &parts)
            .await
            .map_err(|e| client_error(client, format!("writing to the client: {e}")))?;
    }
    let _ = client_write.shutdown().await;
    linger(proxy, frames).await;
    Ok(())
}

/// Keeps the broker's side open until the broker closes it (it has read everything
/// sent, acks=0 produces included) or the proxy stops. Closing first could lose those:
/// a late byte from the broker would meet a closed socket, and the reset it draws
/// makes the broker's kernel discard what the broker had not read yet.
async fn linger(proxy: &Proxy, mut frames: FrameReader<impl AsyncRead + Unpin>) {
    let mut shutdown = proxy.shutdown.clone();
    let broker_closed = async { while let Ok(Some(_)) = frames.next().await {} };
    tokio::select! {
        () = broker_closed => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// The whole answer that `next` starts and how much of it went to the client already:
/// a large one is passed on as it arrives where the request it answers allows (see
/// `cut_through`).
async fn next_answer(
    frames: &mut FrameReader<impl AsyncRead + Unpin>,
    next: Next,
    in_flight: &InFlight,
    client_write: &mut (impl AsyncWrite + Unpin),
) -> Result<(Bytes, Option<usize>), Failed> {
    let large = match next {
        Next::Whole(frame) => return Ok((frame, None)),
        Next::Large(large) => large,
    };
    match in_flight.front().and_then(|route| held_back(&route)) {
        Some(hold) => pass_on(frames, large, hold, client_write).await,
        None => Ok((frames.complete(large).await.map_err(Failed::Reading)?, None)),
    }
}

/// The answer unchanged, or with its broker addresses replaced; the part of the frame
/// a rewrite keeps is passed on as the same bytes.
fn rewrite(proxy: &Arc<Proxy>, route: &RequestRoute, frame: Bytes) -> Result<Answer, WireError> {
    if !rewrite::rewritten(route.api_key, route.api_version) {
        return Ok(Answer::Unchanged(frame));
    }
    let header_version = response_header_version(route.api_key, route.api_version).unwrap_or(0);
    let (_, body) = split_response(&frame, header_version)?;
    let header_len = frame.len() - body.len();
    let mut advertise = |node: i32, host: &str, port: i32| proxy.advertise(node, host, port);
    let Some(rewritten) = rewrite::answer(route.api_key, route.api_version, &body, &mut advertise)? else {
        return Ok(Answer::Unchanged(frame));
    };
    proxy.counters.rewrite(&api_label(route.api_key));
    Ok(Answer::Rewritten {
        kept: frame.slice(..header_len + rewritten.keep),
        tail: rewritten.tail,
        len: frame.len(),
    })
}
