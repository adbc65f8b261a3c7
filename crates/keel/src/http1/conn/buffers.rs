//! A connection's two pooled buffers: the input that grows as bytes
//! arrive and shrinks as requests are answered, and giving both back to
//! the pool when idle.

use super::{AwaitingBody, Conn, Phase};
use crate::http1::parse::{BodyLength, Framing};
use crate::server::pool::BufferPool;
use bytes::BytesMut;

/// Free space a read wants in the input buffer before it grows.
const MIN_READ_ROOM: usize = 2048;
/// The input buffer a streamed request body is read through: large reads,
/// few system calls, and a bound on what one upload holds.
const STREAM_READ_BUFFER: usize = 128 * 1024;
/// Largest partial head [`Conn::park_partial_head`] moves out of its pooled
/// buffer.
const PARK_MAX: usize = 1024;

impl Conn {
    /// The input buffer with room for the next read, taken from the pool if
    /// the connection holds none; it grows as bytes arrive.
    pub(crate) fn read_buffer(&mut self, pool: &mut BufferPool) -> &mut BytesMut {
        if std::mem::take(&mut self.parked) {
            let mut buf = pool.take();
            buf.extend_from_slice(self.input.as_deref().unwrap_or_default());
            self.input = Some(buf);
        }
        let buf = self.input.get_or_insert_with(|| pool.take());
        let room = buf.capacity() - buf.len();
        if self.stream_in.is_some() {
            // A streamed body is read through one buffer of its own size;
            // only a chunk line or a trailer section the sink has not
            // reached yet can leave it short of room.
            let want = STREAM_READ_BUFFER.max(buf.len() + MIN_READ_ROOM);
            if buf.capacity() < want {
                buf.reserve(want - buf.len());
            }
            return buf;
        }
        let body_rest = match self.awaiting {
            Some(AwaitingBody {
                framing:
                    Framing {
                        body: BodyLength::Fixed(n),
                        head_len,
                        ..
                    },
                ..
            }) => (self.start + head_len + n).saturating_sub(buf.len()),
            _ => 0,
        };
        if room < MIN_READ_ROOM {
            // Grow by doubling, as bytes arrive: a head alone never makes the
            // connection hold its declared body's size. A fixed-length body
            // grows the buffer no further than its end.
            let double = buf.capacity().max(MIN_READ_ROOM);
            let want = if body_rest > 0 {
                double.min(body_rest.max(MIN_READ_ROOM))
            } else {
                double
            };
            buf.reserve(want);
        }
        buf
    }

    /// Input read after the last response, while lingering: dropped unread.
    pub(crate) fn discard_input(&mut self, pool: &mut BufferPool) {
        if let Some(buf) = self.input.take() {
            if !std::mem::take(&mut self.parked) {
                pool.give(buf);
            }
        }
        self.start = 0;
    }

    /// Gives back buffers that hold nothing: an idle connection keeps none.
    pub(crate) fn release_buffers(&mut self, pool: &mut BufferPool) {
        // A streamed body keeps its read buffer (larger than the pool takes
        // back) until it ends: giving it back between reads would allocate
        // one per read.
        let idle = self.awaiting.is_none() && self.stream_in.is_none();
        if idle && self.input.as_ref().is_some_and(|b| b.len() == self.start) {
            self.discard_input(pool);
        }
        if self.output.pending() == 0 {
            if let Some(buf) = self.output.buf.take() {
                pool.give(buf);
            }
        }
    }

    /// Moves a small partial head out of its pooled buffer into one of its
    /// own size, and gives the pooled one back: ten thousand heads arriving
    /// a byte at a time (slowloris) then hold ten thousand small
    /// allocations instead of ten thousand read buffers. Allocates, so the
    /// worker calls it only for a head that stalls: the first of a
    /// connection, once its socket is drained, or any at a timer tick that
    /// finds it waiting. The next read moves the bytes back into a pooled
    /// buffer.
    pub(crate) fn park_partial_head(&mut self, pool: &mut BufferPool) {
        let head_only = self.phase == Phase::Open
            && self.awaiting.is_none()
            && self.stream_in.is_none()
            && self.deferred.is_none()
            && self.stream_out.is_none()
            && self.output.pending() == 0;
        let partial = self.input.as_ref().map_or(0, |b| b.len() - self.start);
        if !head_only || self.parked || partial == 0 || partial > PARK_MAX {
            return;
        }
        self.compact();
        if let Some(buf) = self.input.take() {
            self.input = Some(BytesMut::from(&buf[..]));
            self.parked = true;
            pool.give(buf);
        }
    }

    /// Moves a partial request to the front of the input buffer, so the
    /// buffer never grows by more than one request.
    pub(super) fn compact(&mut self) {
        let Some(buf) = self.input.as_mut() else {
            return;
        };
        if self.start == 0 {
            return;
        }
        let len = buf.len();
        if self.start < len {
            buf.copy_within(self.start..len, 0);
        }
        buf.truncate(len - self.start);
        self.start = 0;
    }
}
