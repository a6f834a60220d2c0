//! strait: a Kafka wire-protocol replicator and proxy.
//!
//! Layers, each depending only on those above it: `wire` (no I/O), `net` (one broker
//! connection), `client` (a cluster), then `mirror` and `proxy`. `config` is the TOML
//! model shared by all of them.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod metrics;
pub mod mirror;
pub mod net;
pub mod panic_switch;
pub mod probe;
pub mod proxy;
pub mod wire;
