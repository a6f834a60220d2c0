//! The Kafka wire format with no I/O: frames, headers, record batches, codecs, typed
//! requests and the bounded decoders of every response strait reads. Nothing here
//! imports tokio, so fuzz targets and benches call it directly.

pub mod batch;
pub mod buffers;
pub mod build;
pub mod codec;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod header;
mod lz4_frame;
pub mod message;
pub mod produce;
pub mod rebuild;
pub mod records;
pub mod responses;
pub mod rewrite;
pub mod varint;

pub use error::WireError;
