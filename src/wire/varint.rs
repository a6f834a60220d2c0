//! Variable-length integers as Kafka writes them: unsigned LEB128 for compact lengths
//! and tag numbers, zig-zag for record fields. Every reader refuses over-long encodings
//! instead of looping or overflowing.

use bytes::BufMut;

use super::WireError;

/// A cursor over a byte slice that reports truncation instead of panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::truncated(self.what, n, self.remaining()));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn i8(&mut self) -> Result<i8, WireError> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// An unsigned LEB128 value of at most 5 bytes (Kafka's UNSIGNED_VARINT).
    pub fn uvarint(&mut self) -> Result<u32, WireError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::malformed(self.what, "unsigned varint longer than 5 bytes"))
    }

    /// A zig-zag varlong of at most 10 bytes (Kafka's VARLONG; VARINT values fit too).
    pub fn varlong(&mut self) -> Result<i64, WireError> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = self.take(1)?[0];
            raw |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(WireError::malformed(self.what, "varlong longer than 10 bytes"))
    }

    /// A zig-zag varint that must fit in 32 bits.
    pub fn varint(&mut self) -> Result<i32, WireError> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| WireError::malformed(self.what, format!("varint {v} exceeds 32 bits")))
    }

    /// A varint length: -1 is null, anything else must fit in what is left.
    pub fn var_len(&mut self) -> Result<Option<usize>, WireError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < -1 => Err(WireError::malformed(self.what, format!("negative length {n}"))),
            n => {
                let n = n as usize;
                if n > self.remaining() {
                    return Err(WireError::truncated(self.what, n, self.remaining()));
                }
                Ok(Some(n))
            }
        }
    }

    /// A nullable string with a 2-byte length (non-flexible versions), as lossy UTF-8.
    /// Only -1 means null; any other negative length is malformed.
    pub fn string(&mut self) -> Result<Option<String>, WireError> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(WireError::malformed(self.what, format!("negative string length {len}")));
        }
        let raw = self.take(len as usize)?;
        Ok(Some(String::from_utf8_lossy(raw).into_owned()))
    }

    /// An array count with a 4-byte length; -1 (null) reads as 0. The count is checked
    /// against the bytes left, given the smallest encoding of one element, so that a
    /// hostile count is refused before any loop or allocation uses it.
    pub fn array_len(&mut self, min_element: usize) -> Result<usize, WireError> {
        let n = self.i32()?;
        if n < -1 {
            return Err(WireError::malformed(self.what, format!("negative array length {n}")));
        }
        let n = n.max(0) as usize;
        if n.saturating_mul(min_element.max(1)) > self.remaining() {
            return Err(WireError::truncated(
                self.what,
                n * min_element.max(1),
                self.remaining(),
            ));
        }
        Ok(n)
    }

    /// Skips a flexible-version tagged-field section.
    pub fn skip_tagged_fields(&mut self) -> Result<(), WireError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

pub fn put_uvarint(buf: &mut impl BufMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Bytes `put_uvarint` writes for `v`.
pub fn uvarint_len(v: u32) -> usize {
    (1..5).find(|n| v >> (7 * n) == 0).unwrap_or(5)
}

pub fn put_varlong(buf: &mut impl BufMut, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        buf.put_u8((raw as u8) | 0x80);
        raw >>= 7;
    }
    buf.put_u8(raw as u8);
}

/// Bytes `put_varlong` writes for `v`.
pub fn varlong_len(v: i64) -> usize {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while raw >= 0x80 {
        raw >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlong_round_trips_extremes() {
        for v in [0i64, 1, -1, 63, -64, 64, i32::MAX as i64, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(out.len(), varlong_len(v));
            assert_eq!(Reader::new(&out, "t").varlong().unwrap(), v);
        }
    }

    #[test]
    fn uvarint_round_trips_and_refuses_overlong() {
        for v in [0u32, 127, 128, 300, u32::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(Reader::new(&out, "t").uvarint().unwrap(), v);
        }
        assert!(Reader::new(&[0xff; 6], "t").uvarint().is_err());
        assert!(Reader::new(&[0xff; 11], "t").varlong().is_err());
    }

    #[test]
    fn var_len_refuses_more_than_is_left() {
        let mut out = Vec::new();
        put_varlong(&mut out, 50);
        out.extend_from_slice(&[1, 2, 3]);
        assert!(Reader::new(&out, "t").var_len().is_err());
    }
}
