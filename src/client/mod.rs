//! A Kafka cluster as strait sees it: bootstrap, metadata, leaders, the broker-address
//! map, and the requests the mirror and proxy need. Knows nothing of mirroring policy.

pub mod address_map;
pub mod admin;
pub mod cluster;
pub mod connections;
pub mod error;
#[cfg(test)]
mod every_version;
pub mod fetch;
pub mod group_member;
pub mod group_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod transactions;

pub use address_map::AddressMap;
pub use cluster::Cluster;
pub use error::{ClientError, KafkaCode};
pub use metadata::Metadata;
