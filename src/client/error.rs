//! The one error type of the client layer: a network failure, or a broker's error code
//! with the cluster, api and, where there is one, the topic and partition it concerns.

use kafka_protocol::ResponseError;
use thiserror::Error;

use crate::net::NetError;

/// A Kafka error code with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
            || matches!(
                self.0,
                NOT_LEADER_OR_FOLLOWER | COORDINATOR_LOAD_IN_PROGRESS | NOT_COORDINATOR
            )
    }
}

impl std::fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match ResponseError::try_from_code(self.0) {
            Some(e) => write!(f, "{e:?} ({})", self.0),
            None => write!(f, "error code {}", self.0),
        }
    }
}

pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
pub const NOT_COORDINATOR: i16 = 16;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const INVALID_PARTITIONS: i16 = 37;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const UNKNOWN_PRODUCER_ID: i16 = 59;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cluster {cluster}: {source}")]
    Net { cluster: String, source: NetError },
    #[error("cluster {cluster}: {api} failed{}: {code}{}", where_(topic, *partition), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        cluster: String,
        api: &'static str,
        topic: Option<String>,
        partition: Option<i32>,
        code: KafkaCode,
        message: Option<String>,
    },
    #[error("cluster {cluster}: no broker reachable ({tried})")]
    NoBroker { cluster: String, tried: String },
    #[error("cluster {cluster}: topic {topic} partition {partition} has no leader")]
    NoLeader {
        cluster: String,
        topic: String,
        partition: i32,
    },
    #[error("cluster {cluster}: broker {node} is not in the cluster metadata")]
    UnknownBroker { cluster: String, node: i32 },
    #[error("cluster {cluster}: bad {what} from broker: {detail}")]
    Protocol {
        cluster: String,
        what: &'static str,
        detail: String,
    },
}

fn where_(topic: &Option<String>, partition: Option<i32>) -> String {
    match (topic, partition) {
        (Some(t), Some(p)) => format!(" for {t}/{p}"),
        (Some(t), None) => format!(" for topic {t}"),
        _ => String::new(),
    }
}

impl ClientError {
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Net { source, .. } => source.is_retriable(),
            ClientError::Kafka { code, .. } => code.is_retriable(),
            ClientError::NoBroker { .. } | ClientError::NoLeader { .. } | ClientError::UnknownBroker { .. } => true,
            ClientError::Protocol { .. } => false,
        }
    }
}
