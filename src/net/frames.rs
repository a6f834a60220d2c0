//! Reading whole frames from a byte stream: the buffer grows only to the size a frame
//! states, and only once that size passed the limit. Large frames are read straight
//! into a pooled buffer (see `wire::buffers`). A reader may be given a `Pace`: then a
//! large frame that has started must arrive by a deadline, so a peer that states a
//! large size and then trickles cannot hold a buffer (and whatever else waits on the
//! frame) for ever.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::wire::buffers::{BufferPool, POOLED_FROM};
use crate::wire::frame::{peek_frame_len, take_frame};
use crate::wire::WireError;

pub struct FrameReader<R> {
    read: R,
    buf: BytesMut,
    max: usize,
    pool: Arc<BufferPool>,
    pace: Option<Pace>,
}

/// How long a frame that has started may take to arrive: `patience` from its first
/// bytes, plus the time its size takes at `min_rate` bytes a second. A slow link gets
/// time in proportion to what it carries; a trickle does not.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub patience: Duration,
    pub min_rate: u64,
}

impl Pace {
    /// When a frame of `len` bytes that starts now must be whole.
    pub fn deadline(&self, len: usize) -> Instant {
        let carry = Duration::from_secs_f64(len as f64 / self.min_rate.max(1) as f64);
        Instant::now() + self.patience.saturating_add(carry)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {len} bytes was not whole by its deadline ({received} bytes arrived)")]
    Late { len: usize, received: usize },
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(read: R, max: usize) -> Self {
        FrameReader {
            read,
            buf: BytesMut::with_capacity(64 * 1024),
            max,
            pool: BufferPool::shared(),
            pace: None,
        }
    }

    /// Gives every large frame that starts from now on a deadline (see `Pace`).
    pub fn paced(mut self, pace: Pace) -> Self {
        self.pace = Some(pace);
        self
    }

    /// Bytes of a frame not yet whole that wait in the buffer: a small frame that has
    /// started.
    pub fn partial(&self) -> usize {
        self.buf.len()
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
        let deadline = self.pace.map(|pace| pace.deadline(len));
        Large { body, len, deadline }
    }

    /// Reads once more into a large frame, never past its end, nor past its deadline.
    pub async fn read_more(&mut self, large: &mut Large) -> Result<(), FrameError> {
        let rest = (large.len - large.body.len()) as u64;
        if rest == 0 {
            return Ok(());
        }
        let deadline = large.deadline;
        let mut limited = (&mut self.read).take(rest);
        let read = limited.read_buf(&mut large.body);
        let n = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                Ok(n) => n?,
                Err(_) => return Err(large.late()),
            },
            None => read.await?,
        };
        if n == 0 {
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
    deadline: Option<Instant>,
}

impl Large {
    /// When the frame must be whole, if its reader is paced.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The error for a frame not whole by its deadline.
    pub fn late(&self) -> FrameError {
        FrameError::Late {
            len: self.len,
            received: self.body.len(),
        }
    }

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

    /// A peer that states a large frame and then sends nothing more loses it at the
    /// deadline instead of holding the reader for ever.
    #[tokio::test]
    async fn a_paced_large_frame_that_stalls_is_late() {
        let (mut write, read) = tokio::io::duplex(4096);
        write
            .write_all(&framed(&vec![1; POOLED_FROM * 2])[..100])
            .await
            .unwrap();
        let pace = Pace {
            patience: Duration::from_millis(300),
            min_rate: 1 << 30,
        };
        let mut frames = FrameReader::new(read, 1 << 20).paced(pace);
        let started = Instant::now();
        let Ok(Some(Next::Large(mut large))) = frames.next_or_large(POOLED_FROM).await else {
            panic!("a large frame starts");
        };
        let late = loop {
            if let Err(e) = frames.read_more(&mut large).await {
                break e;
            }
        };
        assert!(matches!(late, FrameError::Late { received: 96, .. }), "{late}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        drop(write);
    }

    #[tokio::test]
    async fn a_large_frame_cut_short_is_an_error() {
        let mut stream = framed(&vec![1; POOLED_FROM * 2]);
        stream.truncate(POOLED_FROM);
        let mut frames = FrameReader::new(&stream[..], 1 << 20);
        assert!(matches!(frames.next().await, Err(FrameError::Io(_))));
    }
}
