//! One Kafka cluster: bootstrap, one pipelined connection per broker, the metadata cache
//! and leader lookup, every dial going through the address map.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::connections::Connections;
use super::error::ClientError;
use super::metadata::{self, Metadata};
use super::AddressMap;
use crate::net::{ConnectOptions, Connection, NetError};

pub struct Cluster {
    name: String,
    bootstrap: Vec<String>,
    map: AddressMap,
    options: ConnectOptions,
    connections: Connections,
    metadata: RwLock<Arc<Metadata>>,
}

impl Cluster {
    pub fn new(
        name: impl Into<String>,
        bootstrap: Vec<String>,
        map: AddressMap,
        options: ConnectOptions,
    ) -> Arc<Cluster> {
        Arc::new(Cluster {
            name: name.into(),
            bootstrap,
            map,
            options,
            connections: Connections::default(),
            metadata: RwLock::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn address_map(&self) -> &AddressMap {
        &self.map
    }

    pub fn net_error(&self, source: NetError) -> ClientError {
        ClientError::Net {
            cluster: self.name.clone(),
            source,
        }
    }

    /// The connection to a broker by the address it advertises (or a bootstrap address),
    /// dialled through the address map; a dead one is replaced. A dial holds up only the
    /// callers of that broker.
    pub async fn connection_to(&self, advertised: &str) -> Result<Arc<Connection>, ClientError> {
        self.lane_to(advertised, 0).await
    }

    /// Connection number `lane` to a broker, lane 0 being the one `connection_to` gives.
    /// A broker answers each connection's requests one at a time, so work that must not
    /// queue behind another's (fetches that wait at the broker, say) takes a lane of its
    /// own.
    async fn lane_to(&self, advertised: &str, lane: usize) -> Result<Arc<Connection>, ClientError> {
        let dial = self.map.resolve(advertised);
        if dial != advertised {
            tracing::trace!(cluster = %self.name, %advertised, %dial, "dialling mapped address");
        }
        let key = match lane {
            0 => dial.to_owned(),
            lane => format!("{dial} (connection {lane})"),
        };
        self.connections
            .get(&key, || Connection::connect(dial, self.options.clone()))
            .await
            .map_err(|e| self.net_error(e))
    }

    /// A connection of its own to a broker, outside the shared ones and with its own
    /// request deadline: for requests a broker holds on purpose (a JoinGroup waits for a
    /// whole rebalance), which would block everything queued behind them on a shared
    /// connection and outlast the usual deadline. The caller owns and drops it.
    pub async fn dedicated(&self, advertised: &str, request_timeout: Duration) -> Result<Connection, ClientError> {
        let mut options = self.options.clone();
        options.request_timeout = request_timeout;
        Connection::connect(self.map.resolve(advertised), options)
            .await
            .map_err(|e| self.net_error(e))
    }

    /// Any live connection, else the known brokers and then the bootstrap list, dialled
    /// in turn; brokers whose dial just failed are tried last.
    pub async fn any_connection(&self) -> Result<Arc<Connection>, ClientError> {
        if let Some(live) = self.connections.live().into_iter().next() {
            return Ok(live);
        }
        let known: Vec<String> = self.metadata().brokers.values().map(|b| b.address()).collect();
        let mut candidates: Vec<&String> = known.iter().chain(self.bootstrap.iter()).collect();
        candidates.sort_by_key(|addr| self.connections.recently_failed(self.map.resolve(addr)));
        let mut tried = Vec::new();
        for addr in candidates {
            match self.connection_to(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(cluster = %self.name, %addr, error = %e, "broker unreachable");
                    let reason = match e {
                        ClientError::Net { source, .. } => source.to_string(),
                        other => other.to_string(),
                    };
                    tried.push(format!("{addr}: {reason}"));
                }
            }
        }
        Err(ClientError::NoBroker {
            cluster: self.name.clone(),
            tried: tried.join("; "),
        })
    }

    /// The connection to broker `node`, per the cached metadata.
    pub async fn broker(&self, node: i32) -> Result<Arc<Connection>, ClientError> {
        self.broker_lane(node, 0).await
    }

    /// Connection number `lane` to broker `node` (see `lane_to`).
    pub async fn broker_lane(&self, node: i32, lane: usize) -> Result<Arc<Connection>, ClientError> {
        let addr =
            self.metadata()
                .brokers
                .get(&node)
                .map(|b| b.address())
                .ok_or_else(|| ClientError::UnknownBroker {
                    cluster: self.name.clone(),
                    node,
                })?;
        self.lane_to(&addr, lane).await
    }

    pub fn metadata(&self) -> Arc<Metadata> {
        self.metadata.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches metadata for `topics` (all when `None`) and merges it into the cache.
    pub async fn refresh(&self, topics: Option<&[String]>) -> Result<Arc<Metadata>, ClientError> {
        let conn = self.any_connection().await?;
        let (response, _) = conn
            .request_built(metadata::VERSIONS, |v| metadata::request(topics, v, false))
            .await
            .map_err(|e| self.net_error(e))?;
        let fresh = Metadata::from_response(response);
        let mut slot = self.metadata.write().unwrap_or_else(|e| e.into_inner());
        let merged = match topics {
            None => fresh,
            Some(_) => {
                let mut m = (**slot).clone();
                m.brokers = fresh.brokers;
                m.controller = fresh.controller;
                m.topics.extend(fresh.topics);
                m
            }
        };
        *slot = Arc::new(merged);
        Ok(slot.clone())
    }

    /// The leader of a partition, refreshing metadata once if it is not known.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        if let Some(node) = self.metadata().leader(topic, partition) {
            return Ok(node);
        }
        self.refresh(Some(&[topic.to_owned()])).await?;
        self.metadata()
            .leader(topic, partition)
            .ok_or_else(|| ClientError::NoLeader {
                cluster: self.name.clone(),
                topic: topic.to_owned(),
                partition,
            })
    }

    /// The controller, or any broker when the cluster does not name one.
    pub async fn controller(&self) -> Result<Arc<Connection>, ClientError> {
        let controller = self.metadata().controller;
        if controller >= 0 {
            if let Ok(c) = self.broker(controller).await {
                return Ok(c);
            }
        }
        self.any_connection().await
    }
}
