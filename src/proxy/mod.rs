//! The proxy: stands in front of a cluster and rewrites every broker address it
//! advertises, so that clients reach each broker through the proxy. Knows nothing of
//! mirroring.

pub mod rewrite;
