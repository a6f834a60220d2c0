//! A copying walk over a response body: every field is copied through unchanged except
//! the ones a rewriter replaces. A rewriter walks the whole answer to the end of its
//! schema: one that breaks it (a null where none may be, a count or a field cut short)
//! is refused, and bytes after its end are cut, so nothing the proxy did not
//! understand reaches a client.
//! Counts are bounded by the bytes left.

use crate::wire::responses::Body;
use crate::wire::varint::put_uvarint;
use crate::wire::WireError;

/// Reads go through `Body`, the decoders' own view of a response, so a rewriter and a
/// decoder agree on every length rule (only -1 is null; a count is bounded by the bytes
/// left); the walk adds the copy.
pub struct Walk<'a> {
    src: &'a [u8],
    b: Body<'a>,
    out: Vec<u8>,
    what: &'static str,
}

impl<'a> Walk<'a> {
    pub fn new(src: &'a [u8], flexible: bool, what: &'static str) -> Self {
        Walk {
            src,
            b: Body::new(src, flexible, what),
            out: Vec::with_capacity(src.len() + 64),
            what,
        }
    }

    fn copy_since(&mut self, start: usize) {
        self.out.extend_from_slice(&self.src[start..self.b.position()]);
    }

    pub fn copy(&mut self, n: usize) -> Result<(), WireError> {
        self.out.extend_from_slice(self.b.take(n)?);
        Ok(())
    }

    pub fn copy_i32(&mut self) -> Result<i32, WireError> {
        let v = self.b.i32()?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(v)
    }

    pub fn copy_i16(&mut self) -> Result<i16, WireError> {
        let v = self.b.i16()?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(v)
    }

    /// Reads an int16 without copying it, for a field that will be replaced.
    pub fn read_i16(&mut self) -> Result<i16, WireError> {
        self.b.i16()
    }

    /// Reads an int32 without copying it, for a field that will be replaced.
    pub fn read_i32(&mut self) -> Result<i32, WireError> {
        self.b.i32()
    }

    pub fn write_i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Reads a (nullable) string without copying it.
    pub fn read_string(&mut self) -> Result<Option<String>, WireError> {
        self.b.string()
    }

    pub fn write_string(&mut self, s: &str) -> Result<(), WireError> {
        if self.b.is_flexible() {
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
        let start = self.b.position();
        self.b.skip_string()?;
        self.copy_since(start);
        Ok(())
    }

    /// Copies an array length and returns the element count, refusing null (no array
    /// a rewriter walks may be null) and a count that the bytes left cannot hold at
    /// `min_element` bytes each.
    pub fn copy_array_len(&mut self, min_element: usize) -> Result<usize, WireError> {
        let start = self.b.position();
        let n = self.read_array_len(min_element)?;
        self.copy_since(start);
        Ok(n)
    }

    /// Reads an array length without copying it, for an array written anew.
    pub fn read_array_len(&mut self, min_element: usize) -> Result<usize, WireError> {
        self.b.required_array_len(min_element)
    }

    pub fn write_array_len(&mut self, n: usize) -> Result<(), WireError> {
        let n = i32::try_from(n).map_err(|_| WireError::Encode {
            what: "array",
            detail: format!("{n} elements"),
        })?;
        if self.b.is_flexible() {
            put_uvarint(&mut self.out, n as u32 + 1);
        } else {
            self.out.extend_from_slice(&n.to_be_bytes());
        }
        Ok(())
    }

    /// Copies an array of int32 (broker ids).
    pub fn copy_i32_array(&mut self) -> Result<(), WireError> {
        let n = self.copy_array_len(4)?;
        self.copy(4 * n)
    }

    /// Appends bytes taken from the body elsewhere (`read_tagged`).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
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
        let tags = self.read_tagged()?;
        self.out.extend_from_slice(tags);
        Ok(())
    }

    /// Reads a tagged-field section without copying it (flexible versions only).
    pub fn read_tagged(&mut self) -> Result<&'a [u8], WireError> {
        let start = self.b.position();
        self.b.tagged_fields()?;
        Ok(&self.src[start..self.b.position()])
    }

    /// The rewritten body, ending where the answer's schema ends. Bytes after that end
    /// are cut, never passed on: clients ignore them, and they are nothing the proxy
    /// understood. (librdkafka's mock cluster ends every flexible Metadata answer with
    /// one such byte, so refusing them would refuse a real peer.)
    pub fn finish(self) -> Result<Vec<u8>, WireError> {
        if self.b.remaining() > 0 {
            tracing::debug!(
                answer = self.what,
                bytes = self.b.remaining(),
                "bytes after the end of the answer cut"
            );
        }
        Ok(self.out)
    }
}
