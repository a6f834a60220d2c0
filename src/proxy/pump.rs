//! One client connection: its two sockets, plain or TLS. `requests` carries the
//! requests upstream, `answers` the answers back, each given only what it needs of the
//! proxy (see `connection`); either side failing closes both.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument;

use super::answers::forward_responses;
use super::connection::{client_error, AnswerSide, InFlight, RequestSide, Tally};
use super::error::ProxyError;
use super::requests::forward_requests;
use super::server::{Proxy, Target};
use crate::net::connection::Io;
use crate::net::frames::{FrameReader, Pace};
use crate::net::splice::Spliceable;

/// The slowest a large request may arrive once begun, beyond the idle timeout it gets
/// first: 100 MB (the largest frame by default) then takes at most 400 s more.
const MIN_REQUEST_RATE: u64 = 256 * 1024;
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
        let in_flight = Arc::new(InFlight::new());
        let max = proxy.settings.max_frame;
        let pace = Pace {
            patience: proxy.settings.idle_timeout,
            min_rate: MIN_REQUEST_RATE,
        };
        let request_side = RequestSide {
            counters: &proxy.counters,
            shutdown: &proxy.shutdown,
            idle: proxy.settings.idle_timeout,
        };
        let advertise = |node: i32, host: &str, port: i32| proxy.advertise(node, host, port);
        let answer_side = AnswerSide {
            counters: &proxy.counters,
            shutdown: &proxy.shutdown,
            advertise: &advertise,
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
                tokio::time::timeout(proxy.settings.shutdown_grace, responses)
                    .await
                    .unwrap_or(Ok(()))
            }
        }
    }
}
