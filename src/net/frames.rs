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

    /// The stream frames are read from. Past a large frame's start nothing of it is
    /// buffered here, so its rest can be read from the stream directly.
    pub fn source(&self) -> &R {
        &self.read
    }

    /// The next frame body, or `None` when the peer closed between frames.
    pub async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        match self.next_or_large(POOLED_FROM).await? {
            None => Ok(None),
            Some(Next::Whole(frame)) => Ok(Some(frame)),
            Some(Next::Large(large)) => self.complete(large).await.map(Some),
        }
    }

    /// Reads a large frame to its end.
    pub async fn complete(&mut self, mut large: Large) -> Result<Bytes, FrameError> {
        while !large.is_complete() {
            self.read_more(&mut large).await?;
        }
        Ok(self.finish(large))
    }

    /// The next frame, whole if it is smaller than `large_from`; a larger one comes as
    /// it arrives, in a pooled buffer the caller fills with `read_more`, so it can be
    /// passed on before its end is here.
    pub async fn next_or_large(&mut self, large_from: usize) -> Result<Option<Next>, FrameError> {
        loop {
            if let Some(len) = peek_frame_len(&self.buf, self.max)? {
                if len >= large_from {
                    return Ok(Some(Next::Large(self.start_large(len))));
                }
                if let Some(frame) = take_frame(&mut self.buf, self.max)? {
                    return Ok(Some(Next::Whole(frame)));
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

    /// A large frame whose size prefix is buffered: what is buffered already is
    /// copied into a pooled buffer; `read_more` reads the rest into it directly.
    fn start_large(&mut self, len: usize) -> Large {
        self.buf.advance(4);
        let mut body = self.pool.take(len);
        let buffered = self.buf.len().min(len);
        body.extend_from_slice(&self.buf[..buffered]);
        self.buf.advance(buffered);
        Large { body, len }
    }

    /// Reads once more into a large frame, never past its end.
    pub async fn read_more(&mut self, large: &mut Large) -> Result<(), FrameError> {
        let rest = (large.len - large.body.len()) as u64;
        if rest > 0 && (&mut self.read).take(rest).read_buf(&mut large.body).await? == 0 {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    /// The whole body of a complete large frame; its buffer returns to the pool once
    /// the last slice of it is dropped.
    pub fn finish(&self, large: Large) -> Bytes {
        debug_assert!(large.is_complete());
        self.pool.freeze(large.body)
    }
}

/// What `next_or_large` found.
pub enum Next {
    Whole(Bytes),
    Large(Large),
}

/// A large frame's body, as much of it as has arrived.
pub struct Large {
    body: Vec<u8>,
    len: usize,
}

impl Large {
    /// The frame's size, as its prefix stated.
    pub fn stated_len(&self) -> usize {
        self.len
    }

    pub fn received(&self) -> &[u8] {
        &self.body
    }

    pub fn is_complete(&self) -> bool {
        self.body.len() == self.len
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
