//! The Kafka wire format with no I/O: frames, headers, record batches, codecs and typed
//! messages. Nothing here imports tokio, so fuzz targets and benches call it directly.

pub mod batch;
pub mod build;
pub mod codec;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod header;
pub mod message;
pub mod produce;
pub mod rebuild;
pub mod records;
pub mod varint;

pub use error::WireError;
