//! A response body as the decoders read it. The same calls read a flexible version
//! (compact lengths, tagged fields) and an older one, so each decoder states its schema
//! once. Every length is checked against the bytes left before anything is taken or
//! allocated.

use crate::wire::varint::Reader;
use crate::wire::WireError;

pub struct Body<'a> {
    r: Reader<'a>,
    flexible: bool,
    what: &'static str,
}

impl<'a> Body<'a> {
    pub fn new(buf: &'a [u8], flexible: bool, what: &'static str) -> Self {
        Body {
            r: Reader::new(buf, what),
            flexible,
            what,
        }
    }

    pub fn position(&self) -> usize {
        self.r.position()
    }

    pub fn remaining(&self) -> usize {
        self.r.remaining()
    }

    pub fn is_flexible(&self) -> bool {
        self.flexible
    }

    /// The next `n` bytes, as they are.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        self.r.take(n)
    }

    pub fn i8(&mut self) -> Result<i8, WireError> {
        self.r.i8()
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        self.r.i16()
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        self.r.i32()
    }

    pub fn i64(&mut self) -> Result<i64, WireError> {
        self.r.i64()
    }

    /// Kafka reads any non-zero byte as true.
    pub fn bool(&mut self) -> Result<bool, WireError> {
        Ok(self.r.i8()? != 0)
    }

    /// Skips fixed-width fields strait does not use.
    pub fn skip(&mut self, n: usize) -> Result<(), WireError> {
        self.r.take(n).map(|_| ())
    }

    /// A nullable string, as lossy UTF-8 like `Reader::string`.
    pub fn string(&mut self) -> Result<Option<String>, WireError> {
        let Some(len) = self.string_len()? else {
            return Ok(None);
        };
        Ok(Some(String::from_utf8_lossy(self.r.take(len)?).into_owned()))
    }

    pub fn skip_string(&mut self) -> Result<(), WireError> {
        let len = self.string_len()?.unwrap_or(0);
        self.skip(len)
    }

    /// Nullable bytes; null reads as empty.
    pub fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let len = self.bytes_len()?;
        Ok(self.r.take(len.unwrap_or(0))?.to_vec())
    }

    /// Skips nullable bytes (a Fetch answer's records) without looking at them.
    pub fn skip_bytes(&mut self) -> Result<(), WireError> {
        let len = self.bytes_len()?;
        self.skip(len.unwrap_or(0))
    }

    /// An array count; null reads as 0. A count that the bytes left cannot hold at
    /// `min_element` bytes each is refused before any loop or allocation uses it.
    pub fn array_len(&mut self, min_element: usize) -> Result<usize, WireError> {
        Ok(self.nullable_array_len(min_element)?.unwrap_or(0))
    }

    /// An array count where the schema allows no null, bounded like `array_len`.
    pub fn required_array_len(&mut self, min_element: usize) -> Result<usize, WireError> {
        self.nullable_array_len(min_element)?
            .ok_or_else(|| WireError::malformed(self.what, "null array where none may be"))
    }

    fn nullable_array_len(&mut self, min_element: usize) -> Result<Option<usize>, WireError> {
        let n = match self.flexible {
            true => self.compact_len()?,
            false => {
                let len = self.r.i32()?;
                self.nullable_len(i64::from(len))?
            }
        };
        let need = n.unwrap_or(0).saturating_mul(min_element.max(1));
        if need > self.r.remaining() {
            return Err(WireError::truncated(self.what, need, self.r.remaining()));
        }
        Ok(n)
    }

    /// Skips an array of int32 (replica lists and the like).
    pub fn skip_i32_array(&mut self) -> Result<(), WireError> {
        let n = self.array_len(4)?;
        self.skip(4 * n)
    }

    /// Skips a tagged-field section; older versions have none.
    pub fn tagged_fields(&mut self) -> Result<(), WireError> {
        if self.flexible {
            self.r.skip_tagged_fields()?;
        }
        Ok(())
    }

    /// Smallest encoding of a string (an empty or null one).
    pub fn min_string(&self) -> usize {
        if self.flexible {
            1
        } else {
            2
        }
    }

    /// Smallest encoding of an array (an empty or null one).
    pub fn min_array(&self) -> usize {
        if self.flexible {
            1
        } else {
            4
        }
    }

    /// Smallest encoding of a bytes field (an empty or null one).
    pub fn min_bytes(&self) -> usize {
        if self.flexible {
            1
        } else {
            4
        }
    }

    /// Smallest encoding of a tagged-field section.
    pub fn min_tags(&self) -> usize {
        usize::from(self.flexible)
    }

    fn bytes_len(&mut self) -> Result<Option<usize>, WireError> {
        if self.flexible {
            self.compact_len()
        } else {
            let len = self.r.i32()?;
            self.nullable_len(i64::from(len))
        }
    }

    fn string_len(&mut self) -> Result<Option<usize>, WireError> {
        if self.flexible {
            self.compact_len()
        } else {
            let len = self.r.i16()?;
            self.nullable_len(i64::from(len))
        }
    }

    /// A compact length: the length plus one, 0 for null.
    fn compact_len(&mut self) -> Result<Option<usize>, WireError> {
        Ok(match self.r.uvarint()? {
            0 => None,
            n => Some(n as usize - 1),
        })
    }

    /// A classic length: -1 for null, other negatives are malformed.
    fn nullable_len(&self, len: i64) -> Result<Option<usize>, WireError> {
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(WireError::malformed(self.what, format!("negative length {n}"))),
            n => Ok(Some(n as usize)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_in_both_encodings() {
        let mut b = Body::new(&[0, 2, b'h', b'i', 0xff, 0xff], false, "t");
        assert_eq!(b.string().unwrap().as_deref(), Some("hi"));
        assert_eq!(b.string().unwrap(), None);
        let mut b = Body::new(&[3, b'h', b'i', 0, 1], true, "t");
        assert_eq!(b.string().unwrap().as_deref(), Some("hi"));
        assert_eq!(b.string().unwrap(), None);
        assert_eq!(b.string().unwrap().as_deref(), Some(""));
    }

    #[test]
    fn bytes_in_both_encodings() {
        let mut b = Body::new(&[0, 0, 0, 2, 7, 8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], false, "t");
        assert_eq!(b.bytes().unwrap(), [7, 8]);
        assert!(b.bytes().unwrap().is_empty());
        assert!(b.bytes().unwrap().is_empty());
        assert_eq!(b.remaining(), 0);
        let mut b = Body::new(&[3, 7, 8, 0, 1], true, "t");
        assert_eq!(b.bytes().unwrap(), [7, 8]);
        assert!(b.bytes().unwrap().is_empty());
        assert!(b.bytes().unwrap().is_empty());
        assert_eq!(b.remaining(), 0);
    }

    #[test]
    fn negative_lengths_other_than_null_are_errors() {
        assert!(Body::new(&[0xff, 0xfe, 0, 0], false, "t").string().is_err());
        assert!(Body::new(&[0xff, 0xfe, 0, 0], false, "t").skip_string().is_err());
        assert!(Body::new(&[0xff, 0xff, 0xff, 0xfe, 0], false, "t").bytes().is_err());
        assert!(Body::new(&[0x80, 0, 0, 0, 0], false, "t").array_len(1).is_err());
    }

    #[test]
    fn huge_counts_are_refused_before_use() {
        let mut classic = vec![0x7f, 0xff, 0xff, 0xff];
        classic.extend_from_slice(&[0; 8]);
        assert!(Body::new(&classic, false, "t").array_len(1).is_err());
        let mut compact = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        compact.extend_from_slice(&[0; 8]);
        assert!(Body::new(&compact, true, "t").array_len(1).is_err());
        assert!(Body::new(&compact, true, "t").string().is_err());
        assert!(Body::new(&compact, true, "t").bytes().is_err());
    }

    #[test]
    fn counts_that_fit_are_read() {
        let mut b = Body::new(&[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2], false, "t");
        b.skip_i32_array().unwrap();
        assert_eq!(b.position(), 12);
        let mut b = Body::new(&[3, 0, 0, 0, 1, 0, 0, 0, 2, 0], true, "t");
        b.skip_i32_array().unwrap();
        b.tagged_fields().unwrap();
        assert_eq!(b.position(), 10);
    }
}
