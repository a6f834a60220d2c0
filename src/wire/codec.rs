//! The four Kafka compression codecs, each decompressed with a hard limit on the output
//! so that a small hostile batch cannot inflate into gigabytes.

use std::cell::RefCell;
use std::io::{Read, Write};

use super::{lz4_frame, WireError};

/// Default cap on one batch's decompressed records section.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Magic that opens a snappy stream framed the way Java clients (xerial) write it.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
const XERIAL_BLOCK: usize = 32 * 1024;
/// The largest zstd window strait will allocate for one frame (16 MiB).
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_attributes(attributes: i16) -> Result<Self, WireError> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(WireError::UnknownCodec(other)),
        }
    }

    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

fn codec_error(codec: Compression, e: impl std::fmt::Display) -> WireError {
    WireError::Codec {
        codec: codec.name(),
        detail: e.to_string(),
    }
}

/// Reads a decoder to its end onto `out`, refusing to let `out` pass `limit` bytes: one
/// byte more means the data is too big. Room for four times the input (within the limit)
/// is reserved first: growing from empty would copy the output again at every doubling.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    limit: usize,
    input: usize,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    out.reserve(input.saturating_mul(4).min(limit.saturating_sub(out.len())));
    let room = limit.saturating_sub(out.len()) as u64;
    reader
        .take(room + 1)
        .read_to_end(out)
        .map_err(|e| codec_error(codec, e))?;
    if out.len() > limit {
        return Err(WireError::DecompressedTooLarge {
            codec: codec.name(),
            limit,
        });
    }
    Ok(())
}

/// Decompresses one records section, refusing output beyond `limit` bytes.
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    decompress_into(codec, data, limit, &mut out)?;
    Ok(out)
}

/// Decompresses one records section onto `out` (a reused buffer, usually empty),
/// refusing to let `out` pass `limit` bytes.
pub fn decompress_into(codec: Compression, data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    match codec {
        Compression::None => {
            if out.len() + data.len() > limit {
                return Err(WireError::DecompressedTooLarge { codec: "none", limit });
            }
            out.extend_from_slice(data);
            Ok(())
        }
        Compression::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(data), limit, data.len(), out),
        Compression::Lz4 => lz4_decompress(data, limit, out),
        Compression::Zstd => zstd_decompress(data, limit, out),
        Compression::Snappy => snappy_decompress(data, limit, out),
    }
}

type Lz4Decoder = lz4_flex::frame::FrameDecoder<std::io::Cursor<Vec<u8>>>;

/// Compressed sections up to this size keep the thread's lz4 decoder, and the copy of
/// their input, for the next one; a larger one would leave that much memory held.
const LZ4_KEPT_INPUT_MAX: usize = 1 << 20;
const LZ4_MAGIC: [u8; 4] = 0x184D_2204u32.to_le_bytes();

thread_local! {
    /// One lz4 decoder per thread, kept between batches: a fresh one allocates its two
    /// block buffers, which the static build's allocator maps and unmaps for every
    /// batch (perf: page faults, and TLB shootdowns across the threads). It is kept
    /// with the descriptor of the frames it decoded (see `single_frame_descriptor`).
    static LZ4: RefCell<Option<([u8; 2], Lz4Decoder)>> = const { RefCell::new(None) };
}

fn lz4_decompress(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let Some(descriptor) = single_frame_descriptor(data) else {
        let mut decoder = lz4_flex::frame::FrameDecoder::new(data);
        read_bounded(Compression::Lz4, &mut decoder, limit, data.len(), out)?;
        return read_whole(decoder.get_ref().len());
    };
    LZ4.with_borrow_mut(|kept| {
        let mut decoder = match kept.take() {
            Some((seen, decoder)) if seen == descriptor => decoder,
            _ => Lz4Decoder::new(std::io::Cursor::new(Vec::new())),
        };
        let input = decoder.get_mut();
        input.get_mut().clear();
        input.get_mut().extend_from_slice(data);
        input.set_position(0);
        let decoded = read_bounded(Compression::Lz4, &mut decoder, limit, data.len(), out)
            .and_then(|()| read_whole(data.len() - decoder.get_ref().position() as usize));
        // A decoder that failed or stopped mid-frame holds that frame's state: it is dropped.
        if decoded.is_ok() && data.len() <= LZ4_KEPT_INPUT_MAX {
            *kept = Some((descriptor, decoder));
        }
        decoded
    })
}

/// lz4_flex takes an uncompressed block of no bytes for the end of the data, and stops
/// there with the rest of the frame unread: what follows would be lost without a word,
/// and a kept decoder would read the next section as the rest of this frame.
fn read_whole(unread: usize) -> Result<(), WireError> {
    if unread == 0 {
        return Ok(());
    }
    Err(codec_error(
        Compression::Lz4,
        format!("decoding stopped at an empty block with {unread} bytes of the section unread"),
    ))
}

/// The descriptor (FLG and BD bytes) of `data` when it is exactly one lz4 frame.
/// lz4_flex sizes a decoder's buffers for the first frame it reads and expects every
/// later frame to need the same (its debug builds assert so), so a kept decoder only
/// ever sees single frames with the descriptor of its first. Anything else gets a
/// fresh decoder, which also does the validating.
fn single_frame_descriptor(data: &[u8]) -> Option<[u8; 2]> {
    if data.get(..4)? != LZ4_MAGIC {
        return None;
    }
    let (flg, bd) = (*data.get(4)?, *data.get(5)?);
    let flag = |bit: u8, len: usize| if flg & bit != 0 { len } else { 0 };
    // Magic, FLG, BD, the content size and dictionary id if present, header checksum.
    let mut at = 6 + flag(0x08, 8) + flag(0x01, 4) + 1;
    loop {
        let size = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if size == 0 {
            break;
        }
        at = at.checked_add((size & 0x7fff_ffff) as usize + flag(0x10, 4))?;
    }
    (at + flag(0x04, 4) == data.len()).then_some([flg, bd])
}

/// A zstd decompression context that grew past this (its window buffer, for a frame
/// with a large window) is let go rather than kept by its thread.
const ZSTD_KEPT_CONTEXT_MAX: usize = 4 << 20;

thread_local! {
    /// One zstd decompression context per thread, kept between batches for the same
    /// reason as the lz4 decoder: a fresh one allocates its window buffer anew.
    static ZSTD_IN: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

fn zstd_decompress(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let codec = Compression::Zstd;
    ZSTD_IN.with_borrow_mut(|kept| {
        let mut context = match kept.take() {
            Some(context) => context,
            None => {
                let mut context = zstd::zstd_safe::DCtx::create();
                context
                    .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX))
                    .map_err(|code| codec_error(codec, zstd::zstd_safe::get_error_name(code)))?;
                context
            }
        };
        // The decoder starts a fresh session on the context, whatever the last one left.
        let decoder = zstd::stream::read::Decoder::with_context(data, &mut context);
        let decoded = read_bounded(codec, decoder, limit, data.len(), out);
        if context.sizeof() <= ZSTD_KEPT_CONTEXT_MAX {
            *kept = Some(context);
        }
        decoded
    })
}

fn snappy_decompress(data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    if data.len() >= XERIAL_HEADER_LEN && data[..8] == XERIAL_MAGIC {
        return xerial_decompress(&data[XERIAL_HEADER_LEN..], limit, out);
    }
    snappy_raw_append(data, limit, out)
}

/// Decompresses one raw snappy block onto `out`, checking its stated size first.
fn snappy_raw_append(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| codec_error(codec, e))?;
    if out.len() + len > limit {
        return Err(WireError::DecompressedTooLarge { codec: "snappy", limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| codec_error(codec, e))?;
    out.truncate(start + written);
    Ok(())
}

/// Java's framing: after the header, blocks of a 4-byte length and raw snappy data.
fn xerial_decompress(mut rest: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(WireError::truncated("xerial snappy block length", 4, rest.len()));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if rest.len() < len {
            return Err(WireError::truncated("xerial snappy block", len, rest.len()));
        }
        snappy_raw_append(&rest[..len], limit, out)?;
        rest = &rest[len..];
    }
    Ok(())
}

/// Compresses a records section. `level` applies to gzip and zstd; `None` is the codec's
/// default. Snappy is written in Java's framing, which every Kafka client reads.
pub fn compress(codec: Compression, level: Option<i32>, data: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    compress_into(codec, level, data, &mut out)?;
    Ok(out)
}

/// Compresses a records section onto the end of `out`.
pub fn compress_into(codec: Compression, level: Option<i32>, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    let error = |e| codec_error(codec, e);
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            let level = flate2::Compression::new(level.unwrap_or(6).clamp(1, 9) as u32);
            let mut enc = flate2::write::GzEncoder::new(out, level);
            enc.write_all(data).map_err(error)?;
            enc.finish().map_err(error)?;
        }
        Compression::Lz4 => lz4_frame::compress(data, out).map_err(|e| codec_error(codec, e))?,
        Compression::Zstd => zstd_compress(data, level.unwrap_or(3), out)?,
        Compression::Snappy => xerial_compress(data, out)?,
    }
    Ok(())
}

thread_local! {
    /// One zstd context per thread, kept between batches: a fresh context allocates and
    /// zeroes megabytes of workspace, which perf showed costing more than the
    /// compression itself in the static build. Its output buffer is kept too.
    static ZSTD: RefCell<Option<ZstdKept>> = const { RefCell::new(None) };
}

struct ZstdKept {
    level: i32,
    compressor: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

fn zstd_compress(data: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), WireError> {
    let error = |e| codec_error(Compression::Zstd, e);
    ZSTD.with(|cell| {
        let mut kept = cell.borrow_mut();
        if !kept.as_ref().is_some_and(|k| k.level == level) {
            *kept = Some(ZstdKept {
                level,
                compressor: zstd::bulk::Compressor::new(level).map_err(error)?,
                scratch: Vec::new(),
            });
        }
        let ZstdKept {
            compressor, scratch, ..
        } = kept.as_mut().expect("set above");
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(data.len()));
        compressor.compress_to_buffer(data, scratch).map_err(error)?;
        out.extend_from_slice(scratch);
        Ok(())
    })
}

fn xerial_compress(data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    out.reserve(XERIAL_HEADER_LEN + data.len() / 2);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK) {
        let block = encoder
            .compress_vec(chunk)
            .map_err(|e| codec_error(Compression::Snappy, e))?;
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in ALL {
            let packed = compress(codec, None, &data).unwrap();
            assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data, "{codec:?}");
        }
    }

    #[test]
    fn every_codec_refuses_output_past_the_limit() {
        let data = vec![0u8; 1 << 20];
        for codec in ALL {
            let packed = compress(codec, None, &data).unwrap();
            let err = decompress(codec, &packed, 1000).unwrap_err();
            assert!(
                matches!(err, WireError::DecompressedTooLarge { limit: 1000, .. }),
                "{codec:?}: {err}"
            );
        }
    }

    /// The thread's kept lz4 decoder and zstd context start every section afresh, also
    /// after one that broke off mid-frame or passed the limit.
    #[test]
    fn sections_decode_alike_after_broken_ones_on_the_same_thread() {
        let (first, second) = (sample(), vec![7u8; 300_000]);
        for codec in [Compression::Lz4, Compression::Zstd] {
            let first_packed = compress(codec, None, &first).unwrap();
            let second_packed = compress(codec, None, &second).unwrap();
            let decode = |data: &[u8], limit| decompress(codec, data, limit);
            assert_eq!(decode(&first_packed, first.len()).unwrap(), first, "{codec:?}");
            assert!(decode(&first_packed[..first_packed.len() / 2], first.len()).is_err());
            assert_eq!(decode(&second_packed, second.len()).unwrap(), second, "{codec:?}");
            assert!(decode(&first_packed, 1000).is_err());
            assert_eq!(decode(&first_packed, first.len()).unwrap(), first, "{codec:?}");
        }
    }

    /// An uncompressed block of no bytes ends lz4_flex's decoding early (found by
    /// fuzzing): the section is refused, and the next one on the thread still decodes.
    #[test]
    fn an_lz4_frame_with_an_empty_block_is_refused_and_spoils_nothing() {
        let header = [0x04u8, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
        let empty_block = [0, 0, 0, 0x80];
        let stored_x = [1, 0, 0, 0x80, b'x'];
        let end = [0u8; 4];
        let single = [&header[..], &empty_block, &stored_x, &end].concat();
        let two_frames = [&single[..], &header, &end].concat();
        let good = compress(Compression::Lz4, None, &sample()).unwrap();
        for bad in [single, two_frames] {
            let err = decompress(Compression::Lz4, &bad, 1 << 20).unwrap_err();
            assert!(err.to_string().contains("empty block"), "{err}");
            assert_eq!(decompress(Compression::Lz4, &good, 1 << 20).unwrap(), sample());
        }
    }

    /// A thread that decoded a frame of 4 MiB linked blocks decodes the usual 64 KiB
    /// independent ones next without tripping lz4_flex's checks of its buffer sizes
    /// (debug builds, as tests and fuzzing run, assert them).
    #[test]
    fn lz4_frames_of_other_block_sizes_follow_each_other_on_one_thread() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let data = sample();
        let info = FrameInfo::new()
            .block_size(BlockSize::Max4MB)
            .block_mode(BlockMode::Linked);
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(&data).unwrap();
        let large_blocks = encoder.finish().unwrap();
        let usual = compress(Compression::Lz4, None, &data).unwrap();
        for packed in [&large_blocks, &usual, &large_blocks, &usual] {
            assert_eq!(decompress(Compression::Lz4, packed, data.len()).unwrap(), data);
        }
    }

    /// The window limit is set once on a thread's kept context and holds for every
    /// later section: a frame asking for a 32 MiB window is refused each time.
    #[test]
    fn zstd_frames_with_windows_past_the_limit_are_refused_on_a_kept_context() {
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        encoder.window_log(25).unwrap();
        encoder.write_all(&sample()).unwrap();
        let wide = encoder.finish().unwrap();
        let narrow = compress(Compression::Zstd, None, &sample()).unwrap();
        for _ in 0..2 {
            assert!(decompress(Compression::Zstd, &wide, 1 << 30).is_err());
            assert_eq!(decompress(Compression::Zstd, &narrow, 1 << 30).unwrap(), sample());
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_read() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, data.len()).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        let junk = [0x13u8, 0x37, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        for codec in ALL.into_iter().skip(1) {
            assert!(decompress(codec, &junk, 1 << 20).is_err(), "{codec:?}");
        }
    }

    #[test]
    fn codec_ids_follow_the_attribute_bits() {
        for codec in ALL {
            assert_eq!(
                Compression::from_attributes(codec.attribute_bits() | 0x30).unwrap(),
                codec
            );
        }
        assert!(Compression::from_attributes(5).is_err());
    }
}
