//! Mirroring: flows from a source cluster to a target cluster, forwarding record batches
//! byte for byte. Knows nothing of proxying.

pub mod budget;
pub mod error;
pub mod flow;
pub mod forward;
pub mod heartbeat;
pub mod in_flight;
pub mod membership;
pub mod metrics;
pub mod progress;
pub mod queued;
pub mod retry;
pub mod select;
pub mod settings;
mod stampers;
pub mod topics;

pub use error::MirrorError;
pub use flow::run_flow;
