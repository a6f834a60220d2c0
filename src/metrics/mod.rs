//! The Prometheus endpoint: `/metrics` with what every flow and proxy counts, `/healthz`
//! and `/readyz` for Kubernetes probes. Off unless an address is configured.

mod http;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::mirror::metrics::{FlowLabels, MirrorMetrics};
use crate::proxy::metrics::{labels, ProxyMetrics};

/// Scrapes served at once; more connections are closed at once.
const MAX_CONNECTIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics endpoint: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Every family strait records into, shared by all flows and proxies of a process.
#[derive(Clone, Default)]
pub struct Metrics {
    pub mirror: MirrorMetrics,
    pub proxy: ProxyMetrics,
}

/// The flows and proxies that must be up before the process is ready.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    pub flows: Vec<String>,
    pub proxies: Vec<String>,
}

/// What the endpoint serves: the registry, and what readiness waits for.
pub struct Endpoint {
    registry: Registry,
    metrics: Metrics,
    expected: Mutex<Expected>,
}

impl Endpoint {
    pub fn new(metrics: Metrics, expected: Expected) -> Endpoint {
        let mut registry = Registry::default();
        metrics.mirror.register(&mut registry);
        metrics.proxy.register(&mut registry);
        Endpoint {
            registry,
            metrics,
            expected: Mutex::new(expected),
        }
    }

    /// Replaces what readiness waits for (after a config reload).
    pub fn expect(&self, expected: Expected) {
        *self.expected.lock().unwrap_or_else(|e| e.into_inner()) = expected;
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The flows and proxies not running yet; empty when the process is ready.
    pub fn not_ready(&self) -> Vec<String> {
        let flow_up = |name: &String| {
            let flow = FlowLabels { flow: name.clone() };
            self.metrics.mirror.up.get_or_create(&flow).get() == 1
        };
        let proxy_up = |name: &String| self.metrics.proxy.up.get_or_create(&labels(name)).get() == 1;
        let expected = self.expected.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let flows = expected
            .flows
            .iter()
            .filter(|f| !flow_up(f))
            .map(|f| format!("flow {f}"));
        let proxies = expected
            .proxies
            .iter()
            .filter(|p| !proxy_up(p))
            .map(|p| format!("proxy {p}"));
        let listeners = self.metrics.proxy.unbound_listeners();
        flows.chain(proxies).chain(listeners).collect()
    }
}

/// Binds the endpoint; the returned task serves scrapes until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    endpoint: Arc<Endpoint>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    tracing::info!(%addr, "metrics endpoint listening (/metrics, /healthz, /readyz)");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    Ok(tokio::spawn(async move {
        while !*shutdown.borrow() {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => continue,
            };
            let Ok((stream, _)) = accepted else { continue };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                http::answer(stream, &endpoint).await;
                drop(slot);
            });
        }
    }))
}
