//! What a proxy counts for the Prometheus endpoint: connections, requests by api,
//! bytes each way, rewritten answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabels {
    pub proxy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub proxy: String,
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub proxy: String,
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub proxy: String,
    /// `to_broker` or `to_client`.
    pub direction: &'static str,
}

#[derive(Clone, Default)]
pub struct ProxyMetrics {
    pub connections: Family<ProxyLabels, Gauge>,
    pub accepted: Family<ProxyLabels, Counter>,
    pub refused: Family<ProxyLabels, Counter>,
    pub requests: Family<ApiLabels, Counter>,
    pub bytes: Family<DirectionLabels, Counter>,
    pub rewrites: Family<ApiLabels, Counter>,
    pub up: Family<ProxyLabels, Gauge>,
    pub broker_listener_up: Family<ListenerLabels, Gauge>,
    /// Broker listeners not bound yet, by (proxy, node): their address. Readiness
    /// reads it, since a gauge family cannot be listed.
    unbound: Arc<Mutex<BTreeMap<(String, i32), String>>>,
}

impl ProxyMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strait_proxy");
        r.register("connections", "Client connections open now", self.connections.clone());
        r.register(
            "connections_accepted",
            "Client connections accepted",
            self.accepted.clone(),
        );
        r.register(
            "connections_refused",
            "Client connections refused: at the connection limit, out of file descriptors, or closed because the broker could not be reached",
            self.refused.clone(),
        );
        r.register("requests", "Client requests forwarded, by api", self.requests.clone());
        r.register("bytes", "Frame bytes forwarded, by direction", self.bytes.clone());
        r.register(
            "rewrites",
            "Answers whose broker addresses were rewritten, by api",
            self.rewrites.clone(),
        );
        r.register("up", "1 while the proxy listens", self.up.clone());
        r.register(
            "broker_listener_up",
            "1 while the listener standing for a broker is bound; 0 while its port is taken and it is retried (its address is not advertised)",
            self.broker_listener_up.clone(),
        );
    }

    /// Records whether broker `node`'s listener of proxy `proxy` (at `addr`) is bound.
    pub fn broker_listener(&self, proxy: &str, node: i32, addr: &str, bound: bool) {
        let labels = ListenerLabels {
            proxy: proxy.to_owned(),
            node: node.to_string(),
        };
        self.broker_listener_up.get_or_create(&labels).set(i64::from(bound));
        let mut unbound = self.unbound.lock().unwrap_or_else(|e| e.into_inner());
        if bound {
            unbound.remove(&(proxy.to_owned(), node));
        } else {
            unbound.insert((proxy.to_owned(), node), addr.to_owned());
        }
    }

    /// The broker listeners not bound yet, for `/readyz`.
    pub fn unbound_listeners(&self) -> Vec<String> {
        let unbound = self.unbound.lock().unwrap_or_else(|e| e.into_inner());
        unbound
            .iter()
            .map(|((proxy, node), addr)| format!("proxy {proxy}: broker {node}'s listener on {addr} is not bound"))
            .collect()
    }
}

/// One proxy's handles, resolved once so the per-request path does no label lookups
/// beyond the api name.
#[derive(Clone)]
pub struct ProxyCounters {
    pub name: String,
    pub families: ProxyMetrics,
    pub to_broker: Counter,
    pub to_client: Counter,
    pub connections: Gauge,
}

impl ProxyCounters {
    pub fn new(name: &str, families: ProxyMetrics) -> Self {
        let direction = |direction| DirectionLabels {
            proxy: name.to_owned(),
            direction,
        };
        let to_broker = families.bytes.get_or_create(&direction("to_broker")).clone();
        let to_client = families.bytes.get_or_create(&direction("to_client")).clone();
        let connections = families.connections.get_or_create(&labels(name)).clone();
        ProxyCounters {
            name: name.to_owned(),
            families,
            to_broker,
            to_client,
            connections,
        }
    }

    pub fn request(&self, api: &str) {
        self.families.requests.get_or_create(&self.api(api)).inc();
    }

    pub fn rewrite(&self, api: &str) {
        self.families.rewrites.get_or_create(&self.api(api)).inc();
    }

    fn api(&self, api: &str) -> ApiLabels {
        ApiLabels {
            proxy: self.name.clone(),
            api: api.to_owned(),
        }
    }
}

pub fn labels(name: &str) -> ProxyLabels {
    ProxyLabels { proxy: name.to_owned() }
}
