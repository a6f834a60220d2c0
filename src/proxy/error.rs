//! The one error type of the proxy layer, saying which side failed: the client, the
//! upstream broker, or the proxy's own setup.

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error("proxy {proxy}: cannot listen on {addr}: {source}")]
    Bind {
        proxy: String,
        addr: String,
        source: std::io::Error,
    },
    #[error("proxy {proxy}: client TLS setup: {detail}")]
    Tls { proxy: String, detail: String },
    #[error("client {client}: {detail}")]
    Client { client: String, detail: String },
    #[error("proxy {proxy}: a task panicked: {detail}")]
    Panicked { proxy: String, detail: String },
    #[error("upstream {broker} (for client {client}): {detail}")]
    Upstream {
        broker: String,
        client: String,
        detail: String,
    },
}
