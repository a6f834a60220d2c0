//! A zero-copy view of record batches (magic 2) and the header patch strait applies
//! before forwarding one.
//!
//! A records field is split into batches by their length fields only; the records inside
//! are never decoded here. A patched batch is a new 61-byte header plus the original
//! records section as a `Bytes` slice, so forwarding copies no payload.

use bytes::{Bytes, BytesMut};

use super::codec::Compression;
use super::WireError;

/// Bytes of the batch header up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// Bytes before the batch-length field ends: base offset (8) and batch length (4).
const LOG_OVERHEAD: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC32C covers everything from the attributes field to the end of the batch.
const CRC_FROM: usize = 21;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// One record batch, borrowed from the fetch response it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    bytes: Bytes,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl Batch {
    /// Wraps bytes that hold exactly one magic-2 batch with a whole header.
    pub fn new(bytes: Bytes) -> Result<Self, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::truncated("record batch", HEADER_LEN, bytes.len()));
        }
        let batch = Batch { bytes };
        if batch.magic() != 2 {
            return Err(WireError::LegacyMagic {
                magic: batch.magic(),
                offset: batch.base_offset(),
            });
        }
        if LOG_OVERHEAD + batch.batch_length() as usize != batch.bytes.len() {
            return Err(WireError::malformed("record batch", "length field disagrees with size"));
        }
        if batch.record_count() < 0 {
            return Err(WireError::malformed(
                "record batch",
                format!(
                    "batch at offset {} states {} records",
                    batch.base_offset(),
                    batch.record_count()
                ),
            ));
        }
        Ok(batch)
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn base_offset(&self) -> i64 {
        be_i64(&self.bytes, 0)
    }

    fn batch_length(&self) -> i32 {
        be_i32(&self.bytes, 8)
    }

    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }

    pub fn crc(&self) -> u32 {
        be_i32(&self.bytes, CRC_AT) as u32
    }

    pub fn attributes(&self) -> i16 {
        be_i16(&self.bytes, ATTRIBUTES_AT)
    }

    pub fn last_offset_delta(&self) -> i32 {
        be_i32(&self.bytes, LAST_OFFSET_DELTA_AT)
    }

    /// The offset after this batch: where the next fetch starts. Batches that compaction
    /// emptied still advance it by their offset delta.
    pub fn next_offset(&self) -> i64 {
        self.base_offset()
            .saturating_add(i64::from(self.last_offset_delta()))
            .saturating_add(1)
    }

    pub fn base_timestamp(&self) -> i64 {
        be_i64(&self.bytes, BASE_TIMESTAMP_AT)
    }

    pub fn max_timestamp(&self) -> i64 {
        be_i64(&self.bytes, MAX_TIMESTAMP_AT)
    }

    pub fn producer_id(&self) -> i64 {
        be_i64(&self.bytes, PRODUCER_ID_AT)
    }

    pub fn producer_epoch(&self) -> i16 {
        be_i16(&self.bytes, PRODUCER_EPOCH_AT)
    }

    pub fn base_sequence(&self) -> i32 {
        be_i32(&self.bytes, BASE_SEQUENCE_AT)
    }

    pub fn record_count(&self) -> i32 {
        be_i32(&self.bytes, RECORD_COUNT_AT)
    }

    pub fn compression(&self) -> Result<Compression, WireError> {
        Compression::from_attributes(self.attributes())
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// The records section: compressed or not, as the producer wrote it.
    pub fn records(&self) -> Bytes {
        self.bytes.slice(HEADER_LEN..)
    }

    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[CRC_FROM..])
    }

    /// Refuses a batch whose stored CRC does not match its bytes: a corrupt source batch
    /// must never be forwarded with a fresh, valid CRC over the damage.
    /// Whether the header's record count is the number of records an uncompressed batch
    /// holds (a compressed one is checked where it is decompressed). A batch that says
    /// otherwise would be refused by the target, or worse, taken as it is.
    pub fn verify_record_count(&self) -> Result<(), WireError> {
        if self.compression()? != Compression::None {
            return Ok(());
        }
        let found = super::records::count_records(&self.records())?;
        if found != self.record_count().max(0) as usize || self.record_count() < 0 {
            return Err(WireError::malformed(
                "record batch",
                format!(
                    "batch at offset {} says {} records and holds {found}",
                    self.base_offset(),
                    self.record_count()
                ),
            ));
        }
        Ok(())
    }

    pub fn verify_crc(&self) -> Result<(), WireError> {
        let computed = self.computed_crc();
        if computed != self.crc() {
            return Err(WireError::CorruptBatch {
                offset: self.base_offset(),
                found: self.crc(),
                computed,
            });
        }
        Ok(())
    }

    /// The header as a mutable copy, for patching.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&self.bytes[..HEADER_LEN]);
        h
    }
}

/// What one step of splitting a records field found.
#[derive(Debug)]
pub enum Piece {
    Batch(Batch),
    /// The rest is the start of a batch cut off by the fetch size limit: normal at the
    /// end of a fetch response, and fetched again from its base offset next time.
    Truncated {
        base_offset: Option<i64>,
        have: usize,
    },
}

/// Splits a records field into batches by their length fields.
pub struct Splitter {
    rest: Bytes,
    done: bool,
}

impl Splitter {
    pub fn new(records: Bytes) -> Self {
        Splitter {
            rest: records,
            done: false,
        }
    }

    fn next_piece(&mut self) -> Result<Option<Piece>, WireError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let have = self.rest.len();
        if have < LOG_OVERHEAD {
            return Ok(Some(Piece::Truncated {
                base_offset: None,
                have,
            }));
        }
        let base_offset = be_i64(&self.rest, 0);
        let length = be_i32(&self.rest, 8);
        if have > MAGIC_AT {
            let magic = self.rest[MAGIC_AT] as i8;
            if magic != 2 {
                return Err(WireError::LegacyMagic {
                    magic,
                    offset: base_offset,
                });
            }
        }
        let min = (HEADER_LEN - LOG_OVERHEAD) as i32;
        if length < min {
            return Err(WireError::malformed(
                "record batch",
                format!("batch at offset {base_offset} states length {length}, below the minimum {min}"),
            ));
        }
        let total = LOG_OVERHEAD + length as usize;
        if have < total {
            return Ok(Some(Piece::Truncated {
                base_offset: Some(base_offset),
                have,
            }));
        }
        let bytes = self.rest.split_to(total);
        Batch::new(bytes).map(|b| Some(Piece::Batch(b)))
    }
}

impl Iterator for Splitter {
    type Item = Result<Piece, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_piece().transpose();
        if matches!(item, None | Some(Err(_)) | Some(Ok(Piece::Truncated { .. }))) {
            self.done = true;
        }
        item
    }
}

/// The producer identity strait writes into forwarded batches, so that the target
/// broker deduplicates strait's own retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

/// A batch ready to send: a patched header and the untouched records section.
#[derive(Debug, Clone)]
pub struct PatchedBatch {
    pub header: Bytes,
    pub records: Bytes,
}

impl PatchedBatch {
    pub fn len(&self) -> usize {
        self.header.len() + self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Both parts as one buffer: for tests and for codecs that need contiguous bytes.
    pub fn to_contiguous(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.records);
        out.freeze()
    }
}

/// Rewrites the header fields a producer owns and recomputes the CRC32C. The base offset
/// and leader epoch are reset as a producer sends them; brokers assign both.
pub fn patch(batch: &Batch, stamp: ProducerStamp) -> PatchedBatch {
    let mut h = batch.header();
    h[0..8].copy_from_slice(&0i64.to_be_bytes());
    h[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    let mut attributes = batch.attributes() & !TRANSACTIONAL_BIT;
    if stamp.transactional {
        attributes |= TRANSACTIONAL_BIT;
    }
    h[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    h[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&stamp.producer_id.to_be_bytes());
    h[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&stamp.producer_epoch.to_be_bytes());
    h[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    let records = batch.records();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[CRC_FROM..]), &records);
    h[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    PatchedBatch {
        header: Bytes::copy_from_slice(&h),
        records,
    }
}

/// Field positions for the batch builder in `rebuild`.
pub(crate) mod layout {
    pub const ATTRIBUTES_AT: usize = super::ATTRIBUTES_AT;
    pub const CRC_AT: usize = super::CRC_AT;
    pub const CRC_FROM: usize = super::CRC_FROM;
    pub const TIMESTAMP_TYPE_BIT: i16 = super::TIMESTAMP_TYPE_BIT;
}
