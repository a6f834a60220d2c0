//! The Prometheus endpoint: `/metrics` with what every flow and proxy counts, `/healthz`
//! and `/readyz` for Kubernetes probes. Off unless an address is configured.

mod http;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

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

    /// The flows and proxies not running or not doing their work (a flow with a stuck
    /// or stopped partition names it); empty when the process is ready.
    pub fn not_ready(&self) -> Vec<String> {
        let flow_up = |name: &String| {
            let flow = FlowLabels { flow: name.clone() };
            self.metrics.mirror.up.get_or_create(&flow).get() == 1
        };
        let proxy_up = |name: &String| self.metrics.proxy.up.get_or_create(&labels(name)).get() == 1;
        let expected = self.expected.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let flows = expected.flows.iter().filter(|f| !flow_up(f)).map(|f| {
            let problems = self.metrics.mirror.problems(f);
            match problems.is_empty() {
                true => format!("flow {f}"),
                false => format!("flow {f} ({})", problems.join("; ")),
            }
        });
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
    Ok(tokio::spawn(async move {
        // Each scrape is a task of this one, which ends them all when it ends; the set's
        // size is the connection limit.
        let mut scrapes = JoinSet::new();
        while !*shutdown.borrow() {
            while scrapes.try_join_next().is_some() {}
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => continue,
            };
            let Ok((stream, _)) = accepted else {
                // Out of file descriptors, most likely: wait before the next try.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            if scrapes.len() >= MAX_CONNECTIONS {
                continue;
            }
            let endpoint = endpoint.clone();
            scrapes.spawn(async move { http::answer(stream, &endpoint).await });
        }
    }))
}
