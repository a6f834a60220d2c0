//! One proxy: a bootstrap listener, one listener per upstream broker (opened when the
//! broker is first seen, on a port that then never changes), a connection limit, and a
//! shutdown that stops accepting and lets in-flight requests finish.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use super::accept::{out_of_descriptors, Backoff, RefusalLog, Reserve};
use super::broker_map::{BrokerMap, Registered};
use super::connection::{client_error, Context, Tally};
use super::error::ProxyError;
use super::metrics::{labels, ProxyCounters, ProxyMetrics};
use super::pump;
use crate::client::{AddressMap, Cluster};
use crate::net::dial::{self, Stream};
use crate::net::tls::TlsSettings;
use crate::net::ConnectOptions;

/// The first and the longest wait before binding a broker listener again.
const LISTEN_RETRY_FIRST: Duration = Duration::from_millis(200);
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(5);

/// Binds a listener at once, from outside the runtime's async bind, so that a broker
/// named in an answer being rewritten gets its port before the answer goes out.
fn bind_now(addr: SocketAddr) -> std::io::Result<TcpListener> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
}

#[derive(Clone)]
pub struct ProxySettings {
    pub name: String,
    /// The bootstrap listener; broker listeners use its IP.
    pub listen: SocketAddr,
    /// The host clients are told to connect to.
    pub advertise_host: String,
    /// Broker N listens on `port_base + N` unless pinned.
    pub port_base: u16,
    pub pinned_ports: HashMap<i32, u16>,
    pub upstream: Vec<String>,
    pub upstream_map: AddressMap,
    /// How the proxy itself talks to the cluster for metadata (TLS, SASL).
    pub upstream_options: ConnectOptions,
    pub upstream_tls: Option<TlsSettings>,
    pub client_tls: Option<TlsAcceptor>,
    pub max_connections: usize,
    pub max_frame: usize,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// One open connection in the gauge, for as long as this lives.
struct OpenGauge<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> OpenGauge<'a> {
    fn count(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        OpenGauge(gauge)
    }
}

impl Drop for OpenGauge<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A task handle that ends its task when dropped, as a JoinSet does its own.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct EndTasksOnDrop(Arc<Proxy>);

impl Drop for EndTasksOnDrop {
    fn drop(&mut self) {
        // A JoinSet aborts its tasks when dropped.
        drop(std::mem::take(
            &mut *self.0.tasks.lock().unwrap_or_else(|e| e.into_inner()),
        ));
    }
}

/// What a listener stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Bootstrap,
    Broker(i32),
}

pub struct Proxy {
    pub(crate) settings: ProxySettings,
    map: Mutex<BrokerMap>,
    slots: Arc<Semaphore>,
    /// Turns true when the proxy stops, on the process's shutdown or its own panic: its
    /// listeners and connections watch this one.
    pub(crate) shutdown: watch::Receiver<bool>,
    cluster: Arc<Cluster>,
    pub(crate) counters: ProxyCounters,
    refusals: RefusalLog,
    /// Connections served at once: `max_connections`, or fewer when the open-file limit
    /// cannot hold that many.
    cap: usize,
    /// Every task of this proxy (listeners, connections, the broker lookup): owned here,
    /// so the drain waits for them and a panic in one is seen.
    tasks: Mutex<JoinSet<()>>,
    /// Set by the first task that panics: the proxy then stops with that error, and
    /// `strait run` starts it again.
    panicked: watch::Sender<Option<String>>,
}

impl Proxy {
    /// Serves until `shutdown` turns true, then drains within the grace period.
    pub async fn run(
        settings: ProxySettings,
        metrics: ProxyMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ProxyError> {
        let limit = super::fd_limit::raise();
        let cap = super::fd_limit::connection_cap(&settings.name, settings.max_connections, limit);
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| ProxyError::Bind {
                proxy: settings.name.clone(),
                addr: settings.listen.to_string(),
                source,
            })?;
        let cluster = Cluster::new(
            format!("{} upstream", settings.name),
            settings.upstream.clone(),
            settings.upstream_map.clone(),
            settings.upstream_options.clone(),
        );
        let stopping = watch::Sender::new(false);
        let proxy = Arc::new(Proxy {
            map: Mutex::new(BrokerMap::new(settings.port_base, settings.pinned_ports.clone())),
            slots: Arc::new(Semaphore::new(cap)),
            cap,
            shutdown: stopping.subscribe(),
            cluster,
            counters: ProxyCounters::new(&settings.name, metrics.clone()),
            refusals: RefusalLog::default(),
            tasks: Mutex::default(),
            panicked: watch::Sender::new(None),
            settings,
        });
        // Should `run` itself be dropped, its tasks (which hold the proxy) end with it.
        let _tasks = EndTasksOnDrop(proxy.clone());
        let up = metrics.up.get_or_create(&labels(&proxy.settings.name)).clone();
        tracing::info!(proxy = %proxy.settings.name, listen = %proxy.settings.listen, advertise = %proxy.settings.advertise_host, "proxy listening");
        // Bootstrap clients are served at once: a slow or absent upstream delays only
        // the broker listeners, which also open as answers name their brokers.
        proxy.spawn(proxy.clone().accept_loop(listener, Target::Bootstrap));
        up.set(1);
        proxy.spawn(proxy.clone().open_known_brokers());
        let mut shutdown = shutdown;
        let mut panicked = proxy.panicked.subscribe();
        while !*shutdown.borrow() && panicked.borrow().is_none() {
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                _ = panicked.changed() => {}
            }
        }
        stopping.send_replace(true);
        up.set(0);
        let panic = panicked.borrow().clone();
        proxy.drain().await;
        match panic {
            Some(detail) => Err(ProxyError::Panicked {
                proxy: proxy.settings.name.clone(),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// Connections open now.
    fn open_connections(&self) -> usize {
        self.cap - self.slots.available_permits()
    }

    /// Starts a task this proxy owns; tasks that ended are collected first, so the set
    /// holds only live ones. A task that panics is logged and stops the proxy at once.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        let (name, panicked) = (self.settings.name.clone(), self.panicked.clone());
        let inner = AbortOnDrop(tokio::spawn(task));
        tasks.spawn(async move {
            let mut inner = inner;
            if let Err(e) = (&mut inner.0).await {
                if e.is_panic() {
                    tracing::error!(proxy = %name, error = %e, "a proxy task panicked; the proxy stops and is started again");
                    panicked.send_if_modified(|first| {
                        let unset = first.is_none();
                        first.get_or_insert_with(|| e.to_string());
                        unset
                    });
                }
            }
        });
    }

    /// Waits for every task (listeners end with the stop signal, connections when their
    /// in-flight requests are answered) within the grace period, then ends the rest.
    async fn drain(&self) {
        let started = Instant::now();
        tracing::info!(
            proxy = %self.settings.name,
            waiting_for = self.open_connections(),
            grace = ?self.settings.shutdown_grace,
            "proxy stopping: accepting no more connections and letting in-flight requests finish; requests that had only partly arrived are dropped; a proxy has no progress to commit"
        );
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let all_ended = async { while tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(self.settings.shutdown_grace, all_ended).await;
        let still_open = self.open_connections();
        tasks.shutdown().await;
        tracing::info!(proxy = %self.settings.name, still_open, waited = ?started.elapsed(), "proxy stopped");
    }

    async fn open_known_brokers(self: Arc<Self>) {
        if let Err(e) = self.learn_brokers().await {
            tracing::warn!(proxy = %self.settings.name, error = %e, "cannot read upstream metadata yet; broker listeners open as clients discover brokers");
        }
    }

    /// Registers every broker the upstream cluster names, opening its listener.
    async fn learn_brokers(self: &Arc<Self>) -> Result<(), crate::client::ClientError> {
        let meta = self.cluster.refresh(Some(&[])).await?;
        for b in meta.brokers.values() {
            self.advertise(b.node_id, &b.host, b.port);
        }
        Ok(())
    }

    /// The address clients get for broker `node`, registering it on first sight. Until
    /// its listener is bound the port is 0: no client is sent to a port where nothing
    /// of the proxy's listens (or something else does).
    pub fn advertise(self: &Arc<Self>, node: i32, host: &str, port: i32) -> (String, i32) {
        let registered = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(node, format!("{host}:{port}"));
        let port = match registered {
            Registered::Known(p) => p,
            Registered::New(p) => {
                self.open_broker_listener(node, p);
                p
            }
            Registered::Refused => {
                tracing::error!(proxy = %self.settings.name, node, "no proxy port for this broker (beyond the port range or broker bound); clients cannot reach it");
                0
            }
        };
        let bound = self.map.lock().unwrap_or_else(|e| e.into_inner()).is_bound(node);
        let port = if bound { port } else { 0 };
        (self.settings.advertise_host.clone(), i32::from(port))
    }

    /// Opens broker `node`'s listener; a port that cannot be bound (taken, say) is
    /// retried with back-off until it is, and reported as not ready meanwhile.
    fn open_broker_listener(self: &Arc<Self>, node: i32, port: u16) {
        let addr = SocketAddr::new(self.settings.listen.ip(), port);
        match bind_now(addr) {
            Ok(listener) => self.listen_for(node, addr, listener),
            Err(e) => {
                self.listener_state(node, addr, false);
                tracing::error!(proxy = %self.settings.name, node, %addr, error = %e, "cannot open the broker listener; retrying, and not advertising it until it is bound");
                self.spawn(self.clone().retry_broker_listener(node, addr));
            }
        }
    }

    async fn retry_broker_listener(self: Arc<Self>, node: i32, addr: SocketAddr) {
        let mut shutdown = self.shutdown.clone();
        let mut backoff = LISTEN_RETRY_FIRST;
        while !*shutdown.borrow() {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => continue,
            }
            match bind_now(addr) {
                Ok(listener) => return self.listen_for(node, addr, listener),
                Err(e) => {
                    tracing::warn!(proxy = %self.settings.name, node, %addr, error = %e, retry_in = ?backoff, "broker listener still not bound")
                }
            }
            backoff = (backoff * 2).min(LISTEN_RETRY_MAX);
        }
    }

    fn listen_for(self: &Arc<Self>, node: i32, addr: SocketAddr, listener: TcpListener) {
        tracing::info!(proxy = %self.settings.name, node, %addr, "broker listener open");
        self.map.lock().unwrap_or_else(|e| e.into_inner()).set_bound(node);
        self.listener_state(node, addr, true);
        self.spawn(self.clone().accept_loop(listener, Target::Broker(node)));
    }

    fn listener_state(&self, node: i32, addr: SocketAddr, bound: bool) {
        let families = &self.counters.families;
        families.broker_listener(&self.settings.name, node, &addr.to_string(), bound);
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, target: Target) {
        let mut shutdown = self.shutdown.clone();
        let mut backoff = Backoff::new();
        let mut reserve = Reserve::new();
        while !*shutdown.borrow() {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.changed() => continue,
            };
            let pause = match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    self.serve(stream, peer, target);
                    continue;
                }
                Err(e) if out_of_descriptors(&e) => {
                    let refused = reserve.refuse_waiting(&listener).await;
                    self.refuse(refused, &format!("out of file descriptors ({e})"), None);
                    backoff.pause()
                }
                Err(e) => {
                    tracing::warn!(proxy = %self.settings.name, error = %e, "accept failed");
                    Duration::from_millis(50)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Serves an accepted client, if a connection slot is free.
    fn serve(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr, target: Target) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            let why = format!("connection limit reached ({})", self.cap);
            self.refuse(1, &why, Some(peer));
            return;
        };
        let families = &self.counters.families;
        families.accepted.get_or_create(&labels(&self.settings.name)).inc();
        self.spawn(self.clone().connection(stream, peer, target, permit));
    }

    /// One client from accept to close: its span, its TLS handshake, its broker dialled,
    /// then the relay, which sees only the `Context` lent to it.
    async fn connection(
        self: Arc<Self>,
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
            proxy = %self.settings.name,
            %client,
            target = ?target,
            broker = empty,
            requests = empty,
            rewritten = empty,
            bytes_to_broker = empty,
            bytes_to_client = empty,
        );
        let tally = Tally::default();
        // Counted down however the connection ends, panics and aborts included.
        let _open = OpenGauge::count(&self.counters.connections);
        let relayed = self
            .connect_and_relay(stream, &client, target, &tally)
            .instrument(span.clone())
            .await;
        tally.record(&span);
        match relayed {
            Ok(()) => tracing::debug!(proxy = %self.settings.name, %client, "connection closed"),
            Err(e) => tracing::warn!(proxy = %self.settings.name, error = %e, "connection closed"),
        }
    }

    async fn connect_and_relay(
        self: &Arc<Self>,
        stream: TcpStream,
        client: &str,
        target: Target,
        tally: &Tally,
    ) -> Result<(), ProxyError> {
        assert!(
            !crate::panic_switch::reached("connection"),
            "STRAIT_TEST_PANIC reached a connection"
        );
        let _ = stream.set_nodelay(true);
        let client_link = match &self.settings.client_tls {
            Some(acceptor) => Stream::Tls(Box::new(
                tokio::time::timeout(self.settings.upstream_options.connect_timeout, acceptor.accept(stream))
                    .await
                    .map_err(|_| client_error(client, "TLS handshake timed out"))?
                    .map_err(|e| client_error(client, format!("TLS handshake: {e}")))?,
            )),
            None => Stream::Plain(stream),
        };
        let (broker, upstream) = match self.dial(target, client).await {
            Ok(dialed) => dialed,
            Err(e) => {
                // Closed at once, not left waiting for answers that cannot come. Every client
                // meets the same failure (the broker is down, or descriptors ran out), so it
                // is counted and logged at a bounded rate rather than once per client.
                self.refuse(1, &format!("cannot serve the client: {e}"), None);
                return Ok(());
            }
        };
        tracing::Span::current().record("broker", broker.as_str());
        let advertise = |node: i32, host: &str, port: i32| self.advertise(node, host, port);
        let ctx = Context {
            counters: &self.counters,
            shutdown: &self.shutdown,
            max_frame: self.settings.max_frame,
            idle_timeout: self.settings.idle_timeout,
            shutdown_grace: self.settings.shutdown_grace,
            advertise: &advertise,
        };
        pump::relay(&ctx, client_link, upstream, client, &broker, tally).await
    }

    /// Counts clients refused, or closed before they were served, and logs it at a
    /// bounded rate.
    pub(crate) fn refuse(&self, count: u64, why: &str, peer: Option<SocketAddr>) {
        if count > 0 {
            let families = &self.counters.families;
            families
                .refused
                .get_or_create(&labels(&self.settings.name))
                .inc_by(count);
        }
        self.refusals.note(&self.settings.name, why, count, peer);
    }

    /// The upstream address a listener stands for.
    async fn upstream_of(self: &Arc<Self>, target: Target) -> Option<Vec<String>> {
        let node = match target {
            Target::Bootstrap => return Some(self.settings.upstream.clone()),
            Target::Broker(node) => node,
        };
        let known = |p: &Self| {
            p.map
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .upstream(node)
                .map(str::to_owned)
        };
        if let Some(addr) = known(self) {
            return Some(vec![addr]);
        }
        let _ = self.learn_brokers().await;
        known(self).map(|a| vec![a])
    }

    /// Dials the upstream broker a listener stands for, through the address map.
    pub(crate) async fn dial(self: &Arc<Self>, target: Target, client: &str) -> Result<(String, Stream), ProxyError> {
        let candidates = self.upstream_of(target).await.ok_or_else(|| ProxyError::Upstream {
            broker: format!("{target:?}"),
            client: client.to_owned(),
            detail: "the upstream cluster does not name this broker".into(),
        })?;
        let mut last = String::from("no upstream address");
        let (within, buffers) = (
            self.settings.upstream_options.connect_timeout,
            self.settings.upstream_options.buffers,
        );
        for advertised in candidates {
            let dial = self.settings.upstream_map.resolve(&advertised).to_owned();
            match dial::dial(&dial, self.settings.upstream_tls.as_ref(), buffers, within).await {
                Ok(stream) => return Ok((dial, stream)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(ProxyError::Upstream {
            broker: format!("{target:?}"),
            client: client.to_owned(),
            detail: last,
        })
    }
}
