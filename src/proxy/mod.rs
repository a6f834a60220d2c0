//! The proxy: stands in front of a cluster and rewrites every broker address it
//! advertises, so that clients reach each broker through the proxy. Knows nothing of
//! mirroring.

pub mod accept;
pub mod answers;
pub mod broker_map;
pub mod connection;
pub mod cut_through;
pub mod error;
pub mod fd_limit;
pub mod metrics;
pub mod pump;
pub mod requests;
pub mod server;
pub mod tls;

pub use error::ProxyError;
pub use server::{Proxy, ProxySettings};
