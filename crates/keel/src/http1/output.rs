//! A connection's queued response bytes, written with one `writev`.

use crate::server::pool::BufferPool;
use bytes::{Bytes, BytesMut};
use std::io::IoSlice;

/// Queued response bytes: the output buffer, with large shared bodies
/// spliced in at recorded offsets, and how much of it all has been written.
#[derive(Default)]
pub(crate) struct Output {
    pub(super) buf: Option<BytesMut>,
    /// (offset in `buf` before which the body goes, the body)
    large: Vec<(usize, Bytes)>,
    sent: usize,
}

impl Output {
    /// Bytes queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        let buffered = self.buf.as_ref().map_or(0, BytesMut::len);
        buffered + self.large.iter().map(|(_, b)| b.len()).sum::<usize>() - self.sent
    }

    /// Fills `iov` with the unwritten bytes, in order; returns how many slices.
    pub(crate) fn slices<'s>(&'s self, iov: &mut [IoSlice<'s>]) -> usize {
        let Some(buf) = self.buf.as_deref() else {
            return 0;
        };
        let mut skip = self.sent;
        let mut count = 0;
        let mut push = |piece: &'s [u8], count: &mut usize| {
            if skip >= piece.len() {
                skip -= piece.len();
            } else if *count < iov.len() {
                iov[*count] = IoSlice::new(&piece[skip..]);
                skip = 0;
                *count += 1;
            }
        };
        let mut from = 0;
        for (at, body) in &self.large {
            push(&buf[from..*at], &mut count);
            push(body, &mut count);
            from = *at;
        }
        push(&buf[from..], &mut count);
        count
    }

    /// Records that `n` more bytes were written; forgets everything once all were.
    pub(crate) fn advance(&mut self, n: usize) {
        self.sent += n;
        if self.pending() == 0 {
            self.sent = 0;
            self.large.clear();
            if let Some(buf) = self.buf.as_mut() {
                buf.clear();
            }
        }
    }

    /// Queues a response written elsewhere (a deferred one) after what is
    /// queued, without copying it: its pieces become shared segments.
    pub(super) fn splice(
        &mut self,
        mut bytes: BytesMut,
        large: Vec<(usize, Bytes)>,
        pool: &mut BufferPool,
    ) {
        let at = self.buf.get_or_insert_with(|| pool.take()).len();
        let mut taken = 0;
        for (offset, body) in large {
            let piece = bytes.split_to(offset - taken).freeze();
            taken = offset;
            if !piece.is_empty() {
                self.large.push((at, piece));
            }
            self.large.push((at, body));
        }
        if !bytes.is_empty() {
            self.large.push((at, bytes.freeze()));
        }
    }

    /// Queues a streamed body's framed bytes after what is queued: `buf`
    /// is copied (the stream keeps its buffer for the next pieces), the
    /// large pieces in `large` are moved. Allocates nothing once the output
    /// buffer and the list of pieces have grown to fit.
    pub(crate) fn append(
        &mut self,
        buf: &[u8],
        large: &mut Vec<(usize, Bytes)>,
        pool: &mut BufferPool,
    ) {
        let out = self.buf.get_or_insert_with(|| pool.take());
        let mut from = 0;
        for (at, body) in large.drain(..) {
            out.extend_from_slice(&buf[from..at]);
            self.large.push((out.len(), body));
            from = at;
        }
        out.extend_from_slice(&buf[from..]);
    }

    pub(crate) fn buf_and_large(
        &mut self,
        pool: &mut BufferPool,
    ) -> (&mut BytesMut, &mut Vec<(usize, Bytes)>) {
        (self.buf.get_or_insert_with(|| pool.take()), &mut self.large)
    }
}
