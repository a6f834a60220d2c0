//! `strait probe`: the replication-latency check people write by hand. Timestamped
//! records are produced on one cluster and read back on another, through whatever
//! replicates between them; sending and receiving happen in this one process, so the
//! latency needs no synchronised clocks.

pub mod error;
pub mod latencies;
pub mod marker;
pub mod receive;
pub mod run;
pub mod send;

pub use error::ProbeError;
pub use run::{run_probe, ProbeSettings, Summary, Tick};
