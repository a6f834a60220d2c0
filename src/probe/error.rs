use crate::client::ClientError;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe: {side} cluster: {source}")]
    Client {
        side: &'static str,
        #[source]
        source: Box<ClientError>,
    },
    #[error("probe: topic {topic} partition {partition}: {source}")]
    Batch {
        topic: String,
        partition: i32,
        #[source]
        source: WireError,
    },
    #[error("probe: a fetch task panicked: {0}")]
    Panicked(String),
}

impl ProbeError {
    pub fn source_side(e: ClientError) -> Self {
        ProbeError::Client {
            side: "source",
            source: Box::new(e),
        }
    }

    pub fn target_side(e: ClientError) -> Self {
        ProbeError::Client {
            side: "target",
            source: Box::new(e),
        }
    }
}
