//! The one error type of the wire layer.

use thiserror::Error;

/// What went wrong while reading or writing bytes of the Kafka protocol.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("frame of {actual} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { limit: usize, actual: usize },
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("api {api} version {version} is not supported (supported {min}..={max})")]
    UnsupportedVersion {
        api: &'static str,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("batch at offset {offset} has CRC {found:#010x}, expected {computed:#010x}")]
    CorruptBatch { offset: i64, found: u32, computed: u32 },
    #[error("message format v{magic} (pre-0.11) at offset {offset} cannot be forwarded; upgrade the source topic's message format")]
    LegacyMagic { magic: i8, offset: i64 },
    #[error("unknown compression codec id {0}")]
    UnknownCodec(i16),
    #[error("{codec} data decompresses beyond the limit of {limit} bytes")]
    DecompressedTooLarge { codec: &'static str, limit: usize },
    #[error("{codec} error: {detail}")]
    Codec { codec: &'static str, detail: String },
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("cannot decode {what} v{version}: {detail}")]
    Decode {
        what: &'static str,
        version: i16,
        detail: String,
    },
}

impl WireError {
    pub(crate) fn truncated(what: &'static str, need: usize, have: usize) -> Self {
        WireError::Truncated { what, need, have }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        WireError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}
