//! One connection to one broker: framing over TCP or TLS, SASL, pipelined requests
//! matched by correlation id, timeouts. Knows nothing of clusters or topics.

pub mod connection;
pub mod dial;
pub mod error;
pub mod frames;
pub mod sasl;
pub mod splice;
pub mod tls;
pub mod versions;
pub mod write;

pub use connection::{ConnectOptions, Connection, PendingReply};
pub use error::NetError;
