//! Answers, broker to client: delivered in the order of the requests, rewritten where
//! they carry broker addresses, large ones passed on while they arrive.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::connection::{api_label, client_error, AnswerSide, InFlight, Tally};
use super::cut_through::{held_back, pass_on, splice_on, splice_pipe, Answer, Failed};
use super::error::ProxyError;
use crate::net::frames::{FrameReader, Large, Next};
use crate::net::splice::{Pipe, Spliceable};
use crate::net::write::write_all_parts;
use crate::wire::buffers::POOLED_FROM;
use crate::wire::header::{response_correlation_id, response_header_version, split_response, RequestRoute};
use crate::wire::rewrite;
use crate::wire::WireError;

pub(super) async fn forward_responses(
    side: &AnswerSide<'_>,
    mut frames: FrameReader<impl AsyncRead + Spliceable + Unpin>,
    mut client_write: impl AsyncWrite + Spliceable + Unpin,
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
    let failed = |failed: Failed| match failed {
        Failed::Reading(e) => upstream_error(e.to_string()),
        Failed::Writing(e) => client_error(client, format!("writing to the client: {e}")),
    };
    let delivered = |bytes: u64| {
        side.counters.to_client.inc_by(bytes);
        tally.to_client.fetch_add(bytes, Ordering::Relaxed);
    };
    let mut client_done = in_flight.client_done.subscribe();
    let mut pipe = None;
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
        let next = match next {
            Next::Large(large) if passes_unchanged(in_flight) => {
                match splice_answer(&mut frames, large, &mut client_write, &mut pipe, in_flight)
                    .await
                    .map_err(failed)?
                {
                    Spliced::Done(len) => {
                        delivered(4 + len as u64);
                        continue;
                    }
                    Spliced::Declined(large) => Next::Large(large),
                }
            }
            next => next,
        };
        let (frame, sent) = next_answer(&mut frames, next, in_flight, &mut client_write)
            .await
            .map_err(failed)?;
        let id = response_correlation_id(&frame).map_err(|e| upstream_error(e.to_string()))?;
        let (answer, route) = match in_flight.match_answer(id).map_err(upstream_error)? {
            Some(route) => (rewrite(side, &route, frame), Some(route)),
            // An answer to an acks=0 produce, which the client asked not to get. A client
            // that has stopped reading would answer it with a reset, and the reset would
            // discard the requests it sent that are still unread in the proxy's socket.
            None if sent.is_none() => continue,
            // One already partly sent (passed on as it arrived) is finished; a Produce
            // answer carries no address.
            None => (Ok(Answer::Unchanged(frame)), None),
        };
        if matches!(answer, Ok(Answer::Rewritten { .. })) {
            tally.rewritten.fetch_add(1, Ordering::Relaxed);
        }
        let parts = answer
            .and_then(|answer| answer.rest(sent))
            .map_err(|e| upstream_error(format!("cannot rewrite the {} answer: {e}", answer_to(route))))?;
        delivered((sent.map_or(0, |sent| 4 + sent) + parts.iter().map(Bytes::len).sum::<usize>()) as u64);
        write_all_parts(&mut client_write, &parts)
            .await
            .map_err(|e| failed(Failed::Writing(e)))?;
    }
    let _ = client_write.shutdown().await;
    linger(side, frames).await;
    Ok(())
}

/// The api and version an answer is for, for a log line.
fn answer_to(route: Option<RequestRoute>) -> String {
    route.map_or_else(
        || "unrequested Produce".to_owned(),
        |r| format!("{} v{}", api_label(r.api_key), r.api_version),
    )
}

/// Keeps the broker's side open until the broker closes it (it has read everything
/// sent, acks=0 produces included) or the proxy stops. Closing first could lose those:
/// a late byte from the broker would meet a closed socket, and the reset it draws
/// makes the broker's kernel discard what the broker had not read yet.
async fn linger(side: &AnswerSide<'_>, mut frames: FrameReader<impl AsyncRead + Unpin>) {
    let mut shutdown = side.shutdown.clone();
    let broker_closed = async { while let Ok(Some(_)) = frames.next().await {} };
    tokio::select! {
        () = broker_closed => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// Whether the next answer due passes unchanged (see `held_back`).
fn passes_unchanged(in_flight: &InFlight) -> bool {
    in_flight.front().and_then(|route| held_back(&route)) == Some(0)
}

enum Spliced {
    /// Spliced to the client whole; its stated length.
    Done(usize),
    /// Left to be passed on as it arrives.
    Declined(Large),
}

/// Splices a large answer that passes unchanged to the client, where both sockets are
/// plain TCP: only its first bytes enter the proxy. Its correlation id is matched before
/// any of it is sent.
async fn splice_answer(
    frames: &mut FrameReader<impl AsyncRead + Spliceable + Unpin>,
    mut large: Large,
    client_write: &mut (impl AsyncWrite + Spliceable + Unpin),
    pipe: &mut Option<Pipe>,
    in_flight: &InFlight,
) -> Result<Spliced, Failed> {
    while large.received().len() < 4 && !large.is_complete() {
        frames.read_more(&mut large).await.map_err(Failed::Reading)?;
    }
    let Some(pipe) = splice_pipe(pipe, frames, &large, client_write) else {
        return Ok(Spliced::Declined(large));
    };
    let id = response_correlation_id(large.received()).map_err(|e| Failed::Reading(e.into()))?;
    in_flight
        .match_answer(id)
        .map_err(|e| Failed::Reading(WireError::malformed("answer", e).into()))?;
    splice_on(frames, &large, client_write, pipe).await?;
    Ok(Spliced::Done(large.stated_len()))
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
fn rewrite(side: &AnswerSide<'_>, route: &RequestRoute, frame: Bytes) -> Result<Answer, WireError> {
    if !rewrite::rewritten(route.api_key, route.api_version) {
        return Ok(Answer::Unchanged(frame));
    }
    let header_version = response_header_version(route.api_key, route.api_version).unwrap_or(0);
    let (_, body) = split_response(&frame, header_version)?;
    let header_len = frame.len() - body.len();
    let mut advertise = |node: i32, host: &str, port: i32| (side.advertise)(node, host, port);
    let Some(rewritten) = rewrite::answer(route.api_key, route.api_version, &body, &mut advertise)? else {
        return Ok(Answer::Unchanged(frame));
    };
    side.counters.rewrite(&api_label(route.api_key));
    Ok(Answer::Rewritten {
        kept: frame.slice(..header_len + rewritten.keep),
        tail: rewritten.tail,
        len: frame.len(),
    })
}
