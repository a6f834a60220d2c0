//! Length-prefixed frames: a 4-byte big-endian size, then that many bytes.
//!
//! Check, then parse: an incomplete frame is "need more bytes", never an error, and the
//! stated length is compared with the limit before anything is reserved for it.

use bytes::{Buf, Bytes, BytesMut};

use super::WireError;

/// Default largest frame accepted: Kafka's own `socket.request.max.bytes` default.
pub const DEFAULT_MAX_FRAME: usize = 100 * 1024 * 1024;

/// Size of the frame at the start of `buf` (prefix excluded), or `None` while fewer than
/// four bytes are buffered.
pub fn peek_frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let len = usize::try_from(len).map_err(|_| WireError::NegativeLength(len))?;
    if len > max {
        return Err(WireError::FrameTooLarge {
            limit: max,
            actual: len,
        });
    }
    Ok(Some(len))
}

/// Takes one whole frame body out of `buf` without copying it, or `None` if it is not all
/// there yet. On `None`, the caller may reserve `4 + len` since the length is within `max`.
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, WireError> {
    let Some(len) = peek_frame_len(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// The 4-byte size prefix for a body of `len` bytes.
pub fn length_prefix(len: usize) -> Result<[u8; 4], WireError> {
    let len = i32::try_from(len).map_err(|_| WireError::FrameTooLarge {
        limit: i32::MAX as usize,
        actual: len,
    })?;
    Ok(len.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prefix_needs_more_bytes() {
        assert_eq!(peek_frame_len(&[0, 0, 1], 10).unwrap(), None);
    }

    #[test]
    fn frame_waits_until_complete_then_splits() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, b'a', b'b'][..]);
        assert!(take_frame(&mut buf, 10).unwrap().is_none());
        buf.extend_from_slice(b"cX");
        assert_eq!(&take_frame(&mut buf, 10).unwrap().unwrap()[..], b"abc");
        assert_eq!(&buf[..], b"X");
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors() {
        let big = [0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            peek_frame_len(&big, 1024),
            Err(WireError::FrameTooLarge { limit: 1024, .. })
        ));
        let neg = [0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(peek_frame_len(&neg, 1024), Err(WireError::NegativeLength(-2))));
    }
}
