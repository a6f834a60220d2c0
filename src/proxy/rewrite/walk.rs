//! A copying walk over a response body: every field is copied through unchanged except
//! the ones a rewriter replaces. Only the fields before the last address are walked;
//! the rest is copied as it is. Counts are bounded by the bytes left.

use crate::wire::varint::{put_uvarint, Reader};
use crate::wire::WireError;

pub struct Walk<'a> {
    src: &'a [u8],
    r: Reader<'a>,
    out: Vec<u8>,
    flexible: bool,
}

impl<'a> Walk<'a> {
    pub fn new(src: &'a [u8], flexible: bool, what: &'static str) -> Self {
        Walk {
            src,
            r: Reader::new(src, what),
            out: Vec::with_capacity(src.len() + 64),
            flexible,
        }
    }

    fn copy_since(&mut self, start: usize) {
        self.out.extend_from_slice(&self.src[start..self.r.position()]);
    }

    pub fn copy(&mut self, n: usize) -> Result<(), WireError> {
        self.out.extend_from_slice(self.r.take(n)?);
        Ok(())
    }

    pub fn copy_i32(&mut self) -> Result<i32, WireError> {
        let v = self.r.i32()?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(v)
    }

    pub fn copy_i16(&mut self) -> Result<i16, WireError> {
        let v = self.r.i16()?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(v)
    }

    /// Reads an int16 without copying it, for a field that will be replaced.
    pub fn read_i16(&mut self) -> Result<i16, WireError> {
        self.r.i16()
    }

    /// Reads an int32 without copying it, for a field that will be replaced.
    pub fn read_i32(&mut self) -> Result<i32, WireError> {
        self.r.i32()
    }

    pub fn write_i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Reads a (nullable) string without copying it.
    pub fn read_string(&mut self) -> Result<Option<String>, WireError> {
        let len = if self.flexible {
            match self.r.uvarint()? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.r.i16()? {
                n if n < 0 => return Ok(None),
                n => n as usize,
            }
        };
        Ok(Some(String::from_utf8_lossy(self.r.take(len)?).into_owned()))
    }

    pub fn write_string(&mut self, s: &str) -> Result<(), WireError> {
        if self.flexible {
            put_uvarint(&mut self.out, s.len() as u32 + 1);
        } else {
            let len = i16::try_from(s.len()).map_err(|_| WireError::Encode {
                what: "string",
                detail: format!("{} bytes", s.len()),
            })?;
            self.out.extend_from_slice(&len.to_be_bytes());
        }
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    pub fn copy_string(&mut self) -> Result<(), WireError> {
        let start = self.r.position();
        self.read_string()?;
        self.copy_since(start);
        Ok(())
    }

    /// Copies an array length and returns the element count (0 for null), refusing a
    /// count that the bytes left cannot hold at `min_element` bytes each.
    pub fn copy_array_len(&mut self, min_element: usize) -> Result<usize, WireError> {
        let start = self.r.position();
        let n = if self.flexible {
            (self.r.uvarint()? as usize).saturating_sub(1)
        } else {
            self.r.array_len(min_element)?
        };
        if n.saturating_mul(min_element) > self.r.remaining() {
            return Err(WireError::truncated("array", n * min_element, self.r.remaining()));
        }
        self.copy_since(start);
        Ok(n)
    }

    /// Replaces the host and port that follow a broker's node id with the address
    /// `advertise` gives for it.
    pub fn replace_address(&mut self, node: i32, advertise: &mut super::Advertise<'_>) -> Result<(), WireError> {
        let host = self.read_string()?.unwrap_or_default();
        let port = self.read_i32()?;
        let (host, port) = advertise(node, &host, port);
        self.write_string(&host)?;
        self.write_i32(port);
        Ok(())
    }

    /// Copies a tagged-field section (flexible versions only).
    pub fn copy_tagged(&mut self) -> Result<(), WireError> {
        if self.flexible {
            let start = self.r.position();
            self.r.skip_tagged_fields()?;
            self.copy_since(start);
        }
        Ok(())
    }

    /// Copies whatever is left and returns the rewritten body.
    pub fn finish(mut self) -> Vec<u8> {
        let rest = self.r.remaining();
        let tail = self.r.take(rest).unwrap_or_default();
        self.out.extend_from_slice(tail);
        self.out
    }
}
