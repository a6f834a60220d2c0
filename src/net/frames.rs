//! Reading whole frames from a byte stream: the buffer grows only to the size a frame
//! states, and only once that size passed the limit.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::wire::frame::{peek_frame_len, take_frame};
use crate::wire::WireError;

pub struct FrameReader<R> {
    read: R,
    buf: BytesMut,
    max: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(read: R, max: usize) -> Self {
        FrameReader {
            read,
            buf: BytesMut::with_capacity(64 * 1024),
            max,
        }
    }

    /// The next frame body, or `None` when the peer closed between frames.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(frame) = take_frame(&mut self.buf, self.max)? {
                return Ok(Some(frame));
            }
            if let Some(len) = peek_frame_len(&self.buf, self.max)? {
                self.buf.reserve((4 + len).saturating_sub(self.buf.len()));
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}
