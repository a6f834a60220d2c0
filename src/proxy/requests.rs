//! Requests, client to broker: each header is read to remember what answer to expect,
//! and the request goes upstream as the same bytes.

use std::sync::atomic::Ordering;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::connection::{api_label, client_error, InFlight, RequestSide, Tally};
use super::cut_through::{pass_on, splice_on, splice_pipe, Failed};
use super::error::ProxyError;
use crate::net::frames::{FrameError, FrameReader, Large, Next};
use crate::net::splice::{Pipe, Spliceable};
use crate::net::write::write_all_parts;
use crate::wire::buffers::POOLED_FROM;
use crate::wire::frame::length_prefix;
use crate::wire::header::{request_header_version, request_route, RequestRoute};
use crate::wire::produce::request_acks;
use crate::wire::rewrite::allowed;
use crate::wire::WireError;

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

/// Whether the proxy lets this request through: an api of its allow-list, at a version
/// it offered. ApiVersions goes at any version, since clients send it before they know
/// what the other side offers, and the broker answers a version it does not know in the
/// one form the proxy reads for every version.
fn allowed(route: &RequestRoute) -> Result<(), String> {
    if route.api_key == ApiKey::ApiVersions as i16 {
        return Ok(());
    }
    let api = api_label(route.api_key);
    match allowed::max_version(route.api_key) {
        Some(max) if route.api_version <= max => Ok(()),
        Some(max) => Err(format!(
            "{api} (api key {}) version {} is above what the proxy offers ({max}); the client ignored ApiVersions",
            route.api_key, route.api_version
        )),
        None => Err(format!(
            "{api} (api key {}) version {} is not an api the proxy lets through; the client ignored ApiVersions",
            route.api_key, route.api_version
        )),
    }
}

pub(super) async fn forward_requests(
    side: &RequestSide<'_>,
    mut frames: FrameReader<impl AsyncRead + Spliceable + Unpin>,
    upstream: &mut (impl AsyncWrite + Spliceable + Unpin),
    in_flight: &InFlight,
    client: &str,
    tally: &Tally,
) -> Result<(), ProxyError> {
    let mut shutdown = side.shutdown.clone();
    let mut stopping = side.shutdown.clone();
    let mut pipe = None;
    let idle = side.idle;
    loop {
        // Waiting for a request's start is cancel-safe, and so is a small request's
        // body, which stays buffered; a large one's body is read past here.
        let next = tokio::select! {
            n = tokio::time::timeout(idle, frames.next_or_large(POOLED_FROM)) => n,
            _ = shutdown.changed() => return Ok(()),
        };
        let mut request = match next {
            Err(_) if in_flight.is_empty() => return Err(client_error(client, format!("idle for {idle:?}"))),
            // A request begun an idle timeout ago and still not whole is a trickle, not
            // a client waiting for its answers.
            Err(_) if frames.partial() > 0 => {
                return Err(client_error(
                    client,
                    format!("a request was not whole {idle:?} after it began"),
                ))
            }
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
            // Nothing of it went upstream yet: on shutdown it is dropped, and the answers
            // already due are still delivered.
            tokio::select! {
                head = read_head(&mut frames, large) => head.map_err(|e| client_error(client, e))?,
                _ = stopping.wait_for(|stop| *stop) => return Ok(()),
            }
        }
        let (head, len) = match &request {
            Next::Whole(frame) => (&frame[..], frame.len()),
            Next::Large(large) => (large.received(), large.stated_len()),
        };
        let route = request_route(head).map_err(|e| client_error(client, e))?;
        side.counters.request(&api_label(route.api_key));
        side.counters.to_broker.inc_by(4 + len as u64);
        tally.requests.fetch_add(1, Ordering::Relaxed);
        tally.to_broker.fetch_add(4 + len as u64, Ordering::Relaxed);
        if let Err(refused) = allowed(&route) {
            // Its answer could carry addresses the proxy cannot rewrite.
            return Err(client_error(client, refused));
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
                write_all_parts(upstream, &[&prefix[..], &frame[..]]).await
            }
            Next::Large(large) => {
                let passed = tokio::select! {
                    passed = pass_request_on(&mut frames, large, upstream, &mut pipe) => passed,
                    // Part of it went upstream, whose answer will never come: the
                    // connection cannot go on.
                    _ = stopping.wait_for(|stop| *stop) => {
                        return Err(client_error(client, "the proxy is stopping and a request had only partly arrived"))
                    }
                };
                match passed {
                    Ok(()) => Ok(()),
                    Err(Failed::Reading(e)) => return Err(client_error(client, e)),
                    Err(Failed::Writing(e)) => Err(e),
                }
            }
        };
        written.map_err(|e| client_error(client, format!("writing upstream: {e}")))?;
    }
}

/// Requests never change: a large one goes upstream as it arrives, and its body past
/// what was read for the header is spliced from socket to socket where both are plain
/// TCP, through the connection's pipe for requests.
async fn pass_request_on(
    frames: &mut FrameReader<impl AsyncRead + Spliceable + Unpin>,
    large: Large,
    upstream: &mut (impl AsyncWrite + Spliceable + Unpin),
    pipe: &mut Option<Pipe>,
) -> Result<(), Failed> {
    let pipe = splice_pipe(pipe, frames, &large, upstream);
    match pipe {
        Some(pipe) => splice_on(frames, &large, upstream, pipe).await,
        None => pass_on(frames, large, 0, upstream).await.map(|_| ()),
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
