//! Streamed responses produced on the worker: a [`BodySource`] is asked
//! for the next pieces of its body whenever the connection has written what
//! it had, so a body whose pieces are always at hand (generated, computed,
//! held in memory) streams with no thread, no queue and no hand-off.

use crate::http1::output::Segment;
use crate::response::WRITEV_THRESHOLD;
use crate::stream::{StreamEnd, StreamError, StreamFraming, CHUNK_FRAMING};
use bytes::{Bytes, BytesMut};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A response body produced on the worker thread, piece by piece, as the
/// client reads: see [`Response::stream_from`](crate::Response::stream_from).
///
/// [`pull`](BodySource::pull) is called each time the connection has sent
/// what was queued. It adds the next pieces to the [`Pull`] it is lent,
/// about [`Pull::room`] bytes of them, or ends the body with
/// [`Pull::finish`]. It runs on the worker, between other connections'
/// requests: it must not block or wait. A body whose next piece may not be
/// ready (it comes from a file, a store, another service) is a
/// [`BodyStream`](crate::BodyStream) fed from another thread.
///
/// A call that adds nothing and does not finish, a panic, or
/// [`Pull::abort`] ends the body unfinished: the connection closes after
/// what was queued, so the client sees a truncated body, never a
/// complete-looking one.
///
/// Any `FnMut(&mut Pull<'_>)` closure is a source.
pub trait BodySource: Send + 'static {
    /// Adds the next pieces of the body to `out`, or finishes it.
    fn pull(&mut self, out: &mut Pull<'_>);
}

impl<F: FnMut(&mut Pull<'_>) + Send + 'static> BodySource for F {
    fn pull(&mut self, out: &mut Pull<'_>) {
        self(out)
    }
}

/// What the worker lends a [`BodySource`]: the connection's output, framed
/// as the response's head said (chunks, a declared length, or the bytes as
/// they are until the connection closes).
pub struct Pull<'o> {
    buf: &'o mut BytesMut,
    large: &'o mut Vec<(usize, Segment)>,
    framing: &'o mut StreamFraming,
    room: usize,
    added: usize,
    end: StreamEnd,
}

impl Pull<'_> {
    /// About how many more bytes the connection takes now: at least 1 when
    /// a pull begins (even with a [`Config::stream_window`](crate::Config::stream_window)
    /// of 0), so a source that adds while there is room always adds
    /// something. Adding more is allowed (it is queued); the source is asked
    /// again once the connection has sent what it has.
    pub fn room(&self) -> usize {
        self.room.saturating_sub(self.added)
    }

    /// Adds `data` (copied into the output) to the body.
    ///
    /// # Errors
    ///
    /// [`StreamError::WrongLength`] past a declared `Content-Length`, or
    /// after [`finish`](Pull::finish); [`StreamError::Closed`] after
    /// [`abort`](Pull::abort). Nothing of `data` is sent then.
    pub fn send(&mut self, data: &[u8]) -> Result<(), StreamError> {
        self.add(data.len(), data.len(), |buf, _| buf.extend_from_slice(data))
    }

    /// Adds `data` to the body without a copy when it is large (4 KiB or
    /// more): the connection writes it from its own storage.
    ///
    /// # Errors
    ///
    /// As [`send`](Pull::send).
    pub fn send_bytes(&mut self, data: Bytes) -> Result<(), StreamError> {
        if data.len() < WRITEV_THRESHOLD {
            return self.send(&data);
        }
        self.add(data.len(), 0, |buf, large| {
            large.push((buf.len(), Segment::Shared(data)));
        })
    }

    /// Ends the body: the last chunk goes out after what was added, and the
    /// connection moves on to the next request.
    ///
    /// # Errors
    ///
    /// [`StreamError::WrongLength`] when a declared length was not reached:
    /// the connection closes after what was added. [`StreamError::Closed`]
    /// after [`abort`](Pull::abort).
    pub fn finish(&mut self) -> Result<(), StreamError> {
        match self.end {
            StreamEnd::Open => {}
            StreamEnd::Finished => return Ok(()),
            StreamEnd::Aborted => return Err(StreamError::Closed),
        }
        let result = self.framing.finish(self.buf);
        self.end = match result {
            Ok(()) => StreamEnd::Finished,
            Err(_) => StreamEnd::Aborted,
        };
        result
    }

    /// Gives up: the connection closes after what was added, so the client
    /// sees a truncated body.
    pub fn abort(&mut self) {
        self.end = StreamEnd::Aborted;
    }

    /// Adds one piece of `len` bytes, framed: `body` puts it after its
    /// size line (`copied` of its bytes into the buffer, room for which is
    /// made with the framing's at once).
    fn add(
        &mut self,
        len: usize,
        copied: usize,
        body: impl FnOnce(&mut BytesMut, &mut Vec<(usize, Segment)>),
    ) -> Result<(), StreamError> {
        if !self.admit(len)? {
            return Ok(());
        }
        self.buf.reserve(copied + CHUNK_FRAMING);
        self.framing.open_piece(len, self.buf);
        body(self.buf, self.large);
        self.framing.close_piece(self.buf);
        self.added += len;
        Ok(())
    }

    /// Counts a piece against the framing; `Ok(false)`: drop it (no body
    /// may be sent).
    fn admit(&mut self, len: usize) -> Result<bool, StreamError> {
        match self.end {
            StreamEnd::Open => {}
            StreamEnd::Finished => return Err(StreamError::WrongLength),
            StreamEnd::Aborted => return Err(StreamError::Closed),
        }
        if len == 0 {
            return Ok(false);
        }
        self.framing.admit(len)
    }
}

impl std::fmt::Debug for Pull<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pull")
            .field("room", &self.room())
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

/// A connection's [`BodySource`] and how its body is framed, in one box
/// (`Source<dyn BodySource>`): a response that streams from the worker
/// allocates once, and what carries it stays two words wide.
pub(crate) struct Source<S: ?Sized = dyn BodySource> {
    framing: StreamFraming,
    source: S,
}

impl Source {
    pub(crate) fn boxed(source: impl BodySource, framing: StreamFraming) -> Box<Self> {
        Box::new(Source { framing, source })
    }

    /// Asks the source for about `room` more bytes, framed into `buf` and
    /// `large`. Returns the bytes it added and how the body stands.
    pub(crate) fn pull(
        &mut self,
        buf: &mut BytesMut,
        large: &mut Vec<(usize, Segment)>,
        room: usize,
    ) -> (usize, StreamEnd) {
        if self.framing == StreamFraming::Nothing {
            // `HEAD`, `204`, `304`: no body, so the source is never asked.
            return (0, StreamEnd::Finished);
        }
        let Source { framing, source } = self;
        let mut out = Pull {
            buf,
            large,
            framing,
            room: room.max(1),
            added: 0,
            end: StreamEnd::Open,
        };
        if catch_unwind(AssertUnwindSafe(|| source.pull(&mut out))).is_err() {
            return (out.added, StreamEnd::Aborted);
        }
        match out.end {
            // Nothing added and not ended: nothing would ever wake it.
            StreamEnd::Open if out.added == 0 => (0, StreamEnd::Aborted),
            end => (out.added, end),
        }
    }
}

#[cfg(test)]
mod tests;
