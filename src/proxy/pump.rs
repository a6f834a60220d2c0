//! One client connection's relay: its two sockets, plain or TLS, already connected by
//! the server. `requests` carries the requests upstream, `answers` the answers back,
//! each given only what it needs of the proxy (see `connection`); either side failing
//! closes both.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::answers::forward_responses;
use super::connection::{AnswerSide, Context, InFlight, RequestSide, Tally};
use super::error::ProxyError;
use super::requests::forward_requests;
use crate::net::dial::Stream;
use crate::net::frames::{FrameReader, Pace};
use crate::net::splice::Spliceable;

/// The slowest a large request may arrive once begun, beyond the idle timeout it gets
/// first: 100 MB (the largest frame by default) then takes at most 400 s more.
const MIN_REQUEST_RATE: u64 = 256 * 1024;

/// Relays between a client and its broker, both already connected, until either side
/// ends.
pub async fn relay(
    ctx: &Context<'_>,
    client_link: Stream,
    upstream: Stream,
    client: &str,
    broker: &str,
    tally: &Tally,
) -> Result<(), ProxyError> {
    let ends = Ends {
        ctx,
        client,
        broker,
        tally,
    };
    match (client_link, upstream) {
        (Stream::Plain(client_io), Stream::Plain(upstream)) => {
            let (client_read, client_write) = client_io.into_split();
            let (upstream_read, upstream_write) = upstream.into_split();
            ends.pump(client_read, client_write, upstream_read, upstream_write)
                .await
        }
        (client_link, upstream) => {
            let (client_read, client_write) = tokio::io::split(client_link.boxed());
            let (upstream_read, upstream_write) = tokio::io::split(upstream.boxed());
            ends.pump(client_read, client_write, upstream_read, upstream_write)
                .await
        }
    }
}

/// What a connection's two directions share.
struct Ends<'a> {
    ctx: &'a Context<'a>,
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
        let (ctx, client, tally) = (self.ctx, self.client, self.tally);
        let in_flight = Arc::new(InFlight::new());
        let max = ctx.max_frame;
        let pace = Pace {
            patience: ctx.idle_timeout,
            min_rate: MIN_REQUEST_RATE,
        };
        let request_side = RequestSide {
            counters: ctx.counters,
            shutdown: ctx.shutdown,
            idle: ctx.idle_timeout,
        };
        let answer_side = AnswerSide {
            counters: ctx.counters,
            shutdown: ctx.shutdown,
            advertise: ctx.advertise,
        };
        let requests = forward_requests(
            &request_side,
            FrameReader::new(client_read, max).paced(pace),
            // Borrowed, so that it outlives the requests: dropping a plain TCP write half
            // would end the broker's side, and with it the answers still due.
            &mut upstream_write,
            &in_flight,
            client,
            tally,
        );
        let responses = forward_responses(
            &answer_side,
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
                tokio::time::timeout(ctx.shutdown_grace, responses)
                    .await
                    .unwrap_or(Ok(()))
            }
        }
    }
}
