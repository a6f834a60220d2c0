//! The one error type of the network layer; every variant names the broker.

use std::time::Duration;

use thiserror::Error;

use crate::wire::WireError;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("cannot connect to broker {broker}: {source}")]
    Connect { broker: String, source: std::io::Error },
    #[error("TLS with broker {broker}: {detail}")]
    Tls { broker: String, detail: String },
    #[error("connection to broker {broker} failed: {source}")]
    Io { broker: String, source: std::io::Error },
    #[error("connection to broker {broker} is closed{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed { broker: String, reason: Option<String> },
    #[error("broker {broker} did not answer {api} within {after:?}")]
    Timeout {
        broker: String,
        api: &'static str,
        after: Duration,
    },
    #[error("bad data from broker {broker}: {source}")]
    Wire { broker: String, source: WireError },
    #[error("SASL {mechanism} with broker {broker}: {detail}")]
    Sasl {
        broker: String,
        mechanism: &'static str,
        detail: String,
    },
    #[error(
        "broker {broker} supports {api} versions {broker_min}..={broker_max}, strait needs {ours_min}..={ours_max}"
    )]
    NoCommonVersion {
        broker: String,
        api: &'static str,
        broker_min: i16,
        broker_max: i16,
        ours_min: i16,
        ours_max: i16,
    },
}

impl NetError {
    /// Whether a fresh connection may succeed where this one failed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            NetError::Connect { .. } | NetError::Io { .. } | NetError::Closed { .. } | NetError::Timeout { .. }
        )
    }
}
