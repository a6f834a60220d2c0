//! Reading whole frames from a byte stream: the buffer grows only to the size a frame
//! states, and only once that size passed the limit. Large frames are read straight
//! into a pooled buffer (see `wire::buffers`).

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::wire::buffers::{BufferPool, POOLED_FROM};
use crate::wire::frame::{peek_frame_len, take_frame};
use crate::wire::WireError;

pub struct FrameReader<R> {
    read: R,
    buf: BytesMut,
    max: usize,
    pool: Arc<BufferPool>,
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
            pool: BufferPool::shared(),
        }
    }

    /// The next frame body, or `None` when the peer closed between frames.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(frame) = take_frame(&mut self.buf, self.max)? {
                return Ok(Some(frame));
            }
            if let Some(len) = peek_frame_len(&self.buf, self.max)? {
                if len >= POOLED_FROM {
                    return self.read_pooled(len).await.map(Some);
                }
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

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads the rest of a frame whose size prefix is buffered into a pooled buffer:
    /// what is buffered already is copied, the rest is read into it directly.
    async fn read_pooled(&mut self, len: usize) -> Result<Bytes, FrameError> {
        self.buf.advance(4);
        let mut body = self.pool.take(len);
        let buffered = self.buf.len().min(len);
        body.extend_from_slice(&self.buf[..buffered]);
        self.buf.advance(buffered);
        while body.len() < len {
            let rest = (len - body.len()) as u64;
            if (&mut self.read).take(rest).read_buf(&mut body).await? == 0 {
                return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(self.pool.freeze(body))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// Small and large frames, arriving in pieces that cut across frame boundaries.
    #[tokio::test]
    async fn small_and_pooled_frames_come_out_whole_and_in_order() {
        let bodies: Vec<Vec<u8>> = [10, POOLED_FROM + 3, 7, 3 * POOLED_FROM, 0, 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let stream: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
        let (mut write, read) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            for piece in stream.chunks(1723) {
                write.write_all(piece).await.unwrap();
            }
        });
        let mut frames = FrameReader::new(read, 1 << 20);
        for body in &bodies {
            assert_eq!(&frames.next().await.unwrap().unwrap()[..], &body[..]);
        }
        writer.await.unwrap();
        assert!(frames.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_large_frame_cut_short_is_an_error() {
        let mut stream = framed(&vec![1; POOLED_FROM * 2]);
        stream.truncate(POOLED_FROM);
        let mut frames = FrameReader::new(&stream[..], 1 << 20);
        assert!(matches!(frames.next().await, Err(FrameError::Io(_))));
    }
}
