//! Large frames are passed on while they arrive. Forwarding an answer only once it is
//! whole adds the time to read it to every round trip, and a fetch answer runs to
//! megabytes. The end of an answer that may carry node endpoints (KIP-951) waits for the
//! rest, so that a rewrite can still replace it, at the length already announced.
//! Frames that pass unchanged between plain TCP sockets are spliced instead.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::net::frames::{FrameError, FrameReader, Large};
use crate::net::splice::{Broken, Pipe, Spliceable};
use crate::net::write::write_all_parts;
use crate::wire::frame::length_prefix;
use crate::wire::header::RequestRoute;
use crate::wire::rewrite::{self, node_endpoints};
use crate::wire::WireError;

/// The end of a large answer held until the answer is complete: room for its closing
/// tagged fields, where node endpoints take about 20 bytes plus the host per broker.
const HELD_BACK: usize = 64 * 1024;

/// How many bytes at the end of a large answer to this request wait for the rest:
/// none when the answer passes unchanged, the end when only its closing tagged fields
/// may change, and all of it (`None`) when it may be rewritten throughout.
pub fn held_back(route: &RequestRoute) -> Option<usize> {
    if !rewrite::rewritten(route.api_key, route.api_version) {
        Some(0)
    } else if node_endpoints::carried(route.api_key, route.api_version) {
        Some(HELD_BACK)
    } else {
        None
    }
}

/// The smallest rest of a frame worth splicing: below it, two copies cost less than the
/// extra system calls (splicing from 12 KiB, after reading only a request's first
/// 4 KiB, cost the proxy more CPU than copying).
const SPLICE_FROM: usize = 64 * 1024;

/// The pipe to splice the rest of `large` through, made on first use: only when both
/// sockets are plain TCP and the rest is large enough.
pub fn splice_pipe<'p>(
    pipe: &'p mut Option<Pipe>,
    frames: &FrameReader<impl AsyncRead + Spliceable + Unpin>,
    large: &Large,
    to: &impl Spliceable,
) -> Option<&'p Pipe> {
    let rest = large.stated_len() - large.received().len();
    if rest < SPLICE_FROM || frames.source().tcp().is_none() || to.tcp().is_none() {
        return None;
    }
    if pipe.is_none() {
        *pipe = Pipe::new()
            .inspect_err(|e| tracing::debug!(error = %e, "no pipe; large frames are copied"))
            .ok();
    }
    pipe.as_ref()
}

/// Writes a large frame's length prefix and what arrived of it, then splices its rest
/// from the reader's socket to `to` (both plain TCP, see `splice_pipe`): the rest never
/// enters the proxy's memory. A paced frame must be whole by its deadline here too.
pub async fn splice_on(
    // Mutable only so that the future holding it is Send for any reader.
    frames: &mut FrameReader<impl AsyncRead + Spliceable + Unpin>,
    large: &Large,
    to: &mut (impl AsyncWrite + Spliceable + Unpin),
    pipe: &Pipe,
) -> Result<(), Failed> {
    let prefix = length_prefix(large.stated_len()).map_err(|e| Failed::Reading(e.into()))?;
    write_all_parts(to, &[&prefix[..], large.received()])
        .await
        .map_err(Failed::Writing)?;
    let (Some(from), Some(into)) = (frames.source().tcp(), to.tcp()) else {
        return Err(Failed::Writing(std::io::ErrorKind::Unsupported.into()));
    };
    let rest = large.stated_len() - large.received().len();
    let carry = pipe.carry(from, into, rest);
    let carried = match large.deadline() {
        Some(deadline) => tokio::time::timeout_at(deadline, carry)
            .await
            .map_err(|_| Failed::Reading(large.late()))?,
        None => carry.await,
    };
    carried.map_err(|broken| match broken {
        Broken::Reading(e) => Failed::Reading(e.into()),
        Broken::Writing(e) => Failed::Writing(e),
    })
}

/// Which side failed while an answer was passed on.
pub enum Failed {
    Reading(FrameError),
    Writing(std::io::Error),
}

/// Reads a large answer to its end while writing its length prefix and all but its
/// last `hold` bytes to the client; returns the whole answer and how much of it was
/// written behind the prefix (`None`: not even the prefix).
pub async fn pass_on(
    frames: &mut FrameReader<impl AsyncRead + Unpin>,
    mut large: Large,
    hold: usize,
    client: &mut (impl AsyncWrite + Unpin),
) -> Result<(Bytes, Option<usize>), Failed> {
    let prefix = length_prefix(large.stated_len()).map_err(|e| Failed::Reading(e.into()))?;
    let until = large.stated_len().saturating_sub(hold);
    let mut sent = None;
    loop {
        let ready = large.received().len().min(until);
        let from = sent.unwrap_or(0);
        if ready > from {
            let chunk = &large.received()[from..ready];
            let written = match sent {
                None => write_all_parts(client, &[&prefix[..], chunk]).await,
                Some(_) => write_all_parts(client, &[chunk]).await,
            };
            written.map_err(Failed::Writing)?;
            sent = Some(ready);
        }
        if large.is_complete() {
            break;
        }
        frames.read_more(&mut large).await.map_err(Failed::Reading)?;
    }
    Ok((frames.finish(large), sent))
}

/// An answer as it goes to the client: unchanged, or its first bytes kept and the rest
/// written anew (`len`: the length of the broker's answer).
pub enum Answer {
    Unchanged(Bytes),
    Rewritten { kept: Bytes, tail: Vec<u8>, len: usize },
}

impl Answer {
    /// What is left to write: the whole frame with its prefix when nothing was sent,
    /// otherwise what follows the `sent` bytes already written behind the prefix, at
    /// the length that prefix announced.
    pub fn rest(self, sent: Option<usize>) -> Result<Vec<Bytes>, WireError> {
        match (self, sent) {
            (Answer::Unchanged(frame), None) => Ok(vec![prefix(frame.len())?, frame]),
            (Answer::Unchanged(frame), Some(sent)) => Ok(vec![frame.slice(sent..)]),
            (Answer::Rewritten { kept, tail, .. }, None) => {
                Ok(vec![prefix(kept.len() + tail.len())?, kept, Bytes::from(tail)])
            }
            (Answer::Rewritten { kept, tail, len }, Some(sent)) => {
                if sent > kept.len() {
                    return Err(WireError::malformed(
                        "answer",
                        format!(
                            "its closing tagged fields ({} bytes) outgrew the end held back",
                            len - kept.len()
                        ),
                    ));
                }
                let tail = rewrite::same_length::fit(&tail, len - kept.len())?;
                Ok(vec![kept.slice(sent..), Bytes::from(tail)])
            }
        }
    }
}

fn prefix(len: usize) -> Result<Bytes, WireError> {
    Ok(Bytes::copy_from_slice(&length_prefix(len)?))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::net::frames::Next;

    /// The first half of an answer reaches the client while the second half is still
    /// to come; only the held-back end waits for it.
    #[tokio::test]
    async fn a_large_answer_reaches_the_client_before_its_end_arrives() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut broker, from_broker) = tokio::io::duplex(1 << 16);
        let (mut to_client, mut client) = tokio::io::duplex(1 << 20);
        let half = body.len() / 2;
        let mut first = (body.len() as i32).to_be_bytes().to_vec();
        first.extend_from_slice(&body[..half]);
        let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
        let rest = body[half..].to_vec();
        let sender = tokio::spawn(async move {
            broker.write_all(&first).await.unwrap();
            wait.await.unwrap();
            broker.write_all(&rest).await.unwrap();
        });
        let relay = tokio::spawn(async move {
            let mut frames = FrameReader::new(from_broker, 1 << 20);
            let Some(Next::Large(large)) = frames.next_or_large(64 * 1024).await.unwrap() else {
                panic!("a 300 kB frame is large");
            };
            let Ok(passed) = pass_on(&mut frames, large, 1000, &mut to_client).await else {
                panic!("passing on failed");
            };
            (passed, to_client)
        });
        let mut early = vec![0u8; 4 + half - 1000];
        client.read_exact(&mut early).await.unwrap();
        assert_eq!(early[..4], (body.len() as i32).to_be_bytes());
        assert_eq!(early[4..], body[..half - 1000]);
        go_on.send(()).unwrap();
        sender.await.unwrap();
        let ((frame, sent), _open) = relay.await.unwrap();
        assert_eq!(frame[..], body[..]);
        assert_eq!(sent, Some(body.len() - 1000), "all but the held-back end went through");
    }
}
