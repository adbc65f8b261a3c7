//! A worker's pool of byte buffers, so that a busy connection borrows its read
//! and write buffers and an idle one holds none.

use bytes::BytesMut;

pub(crate) struct BufferPool {
    free: Vec<BytesMut>,
    buffer_size: usize,
    max_kept_capacity: usize,
    max_kept: usize,
}

impl BufferPool {
    pub(crate) fn new(buffer_size: usize, max_kept_capacity: usize, max_kept: usize) -> Self {
        BufferPool {
            free: Vec::with_capacity(max_kept.min(4096)),
            buffer_size,
            max_kept_capacity: max_kept_capacity.max(buffer_size),
            max_kept,
        }
    }

    /// An empty buffer with at least the configured capacity; allocates only
    /// when the pool is empty.
    pub(crate) fn take(&mut self) -> BytesMut {
        self.free
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.buffer_size))
    }

    /// Keeps `buf` for reuse unless the pool is full or `buf` grew too large.
    pub(crate) fn give(&mut self, mut buf: BytesMut) {
        if self.free.len() < self.max_kept && buf.capacity() <= self.max_kept_capacity {
            buf.clear();
            if buf.capacity() < self.buffer_size {
                buf.reserve(self.buffer_size);
            }
            self.free.push(buf);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_and_bounds() {
        let mut pool = BufferPool::new(64, 128, 1);
        let mut a = pool.take();
        assert!(a.capacity() >= 64);
        a.extend_from_slice(b"data");
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr, "the same allocation comes back");
        pool.give(b);
        pool.give(BytesMut::with_capacity(64));
        assert_eq!(pool.len(), 1, "at most max_kept buffers");
        let _ = pool.take();
        pool.give(BytesMut::with_capacity(4096));
        assert_eq!(pool.len(), 0, "oversized buffers are freed");
    }
}
