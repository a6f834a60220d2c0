//! Large buffers (fetch answers, rebuilt batches and their decompressed records), kept
//! for reuse once every part of one is dropped. A fetch answer lives until its batches
//! reach the target, so each new one would get fresh memory; the static build's
//! allocator (musl) maps and unmaps large blocks every time, and perf showed about 30%
//! of the mirror's CPU in the page faults that follow. Idle buffers are bounded, so a
//! burst does not stay resident.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

/// Frames from this size on are read into pooled buffers; smaller ones share the
/// reader's own buffer.
pub const POOLED_FROM: usize = 64 * 1024;

/// Capacities are rounded up to this step, so that answers of similar size share buffers.
const STEP: usize = 256 * 1024;

/// At most this many idle bytes are kept.
const MAX_IDLE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Default)]
pub struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// The process's pool: buffers are filled on one thread and often dropped on another.
    pub fn shared() -> Arc<BufferPool> {
        static POOL: OnceLock<Arc<BufferPool>> = OnceLock::new();
        POOL.get_or_init(Arc::default).clone()
    }

    /// An empty buffer that holds at least `len` bytes: the smallest idle one that fits,
    /// or a new one.
    pub fn take(&self, len: usize) -> Vec<u8> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let best = idle
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        match best {
            Some(i) => idle.swap_remove(i),
            None => Vec::with_capacity(len.div_ceil(STEP) * STEP),
        }
    }

    /// Keeps a buffer for reuse; past the idle bound, the largest idle buffers are freed.
    pub fn recycle(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(buf);
        while idle.iter().map(Vec::capacity).sum::<usize>() > MAX_IDLE_BYTES {
            let largest = (0..idle.len()).max_by_key(|&i| idle[i].capacity()).expect("not empty");
            idle.swap_remove(largest);
        }
    }

    /// The filled buffer as `Bytes`; it comes back to the pool when the last slice of it
    /// is dropped.
    pub fn freeze(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.recycle(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_returns_when_its_last_slice_drops_and_is_reused() {
        let pool = Arc::new(BufferPool::default());
        let mut buf = pool.take(100_000);
        let address = buf.as_ptr();
        buf.extend_from_slice(&[7; 100_000]);
        let frame = pool.freeze(buf);
        let slice = frame.slice(10..20);
        drop(frame);
        assert_eq!(pool.idle_count(), 0, "a slice still holds it");
        assert_eq!(&slice[..], &[7; 10]);
        drop(slice);
        assert_eq!(pool.idle_count(), 1);
        let again = pool.take(200_000);
        assert_eq!(again.as_ptr(), address, "the same memory, rounded up to a step");
        assert!(again.is_empty());
    }

    #[test]
    fn idle_buffers_are_bounded() {
        let pool = Arc::new(BufferPool::default());
        let frames: Vec<Bytes> = (0..40).map(|_| pool.freeze(pool.take(STEP * 4))).collect();
        drop(frames);
        let idle: usize = pool.idle.lock().unwrap().iter().map(Vec::capacity).sum();
        assert!(idle <= MAX_IDLE_BYTES, "{idle}");
        assert_eq!(pool.idle_count(), MAX_IDLE_BYTES / (STEP * 4));
    }
}
