//! Streamed responses: a body sent in many pieces, from any thread, with
//! backpressure. The producer writes framed chunks into a bounded queue
//! shared with the connection; the worker moves them into the
//! connection's output as the client reads, and the producer waits (or
//! [`try_send`](BodyStream::try_send) says "full") while the queue is at
//! its window.

use crate::deferred::{Message, Notifier};
use crate::response::WRITEV_THRESHOLD;
use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};
use std::fmt;
use std::io;
use std::sync::Arc;

/// How a streamed body is framed on the wire, decided with its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFraming {
    /// `Transfer-Encoding: chunked`: each piece is one chunk.
    Chunked,
    /// A declared `Content-Length`; this many bytes are still to come.
    Length(usize),
    /// HTTP/1.0: the bytes as they are, ended by closing the connection.
    UntilClose,
    /// No body may be sent (`HEAD`, `204`, `304`): pieces are dropped.
    Nothing,
}

impl StreamFraming {
    /// Counts a piece of `len` bytes against the framing: `Ok(false)` when
    /// no body may be sent (the piece is dropped), an error past a declared
    /// length (nothing of the piece is counted).
    pub(crate) fn admit(&mut self, len: usize) -> Result<bool, StreamError> {
        match self {
            StreamFraming::Nothing => Ok(false),
            StreamFraming::Length(left) if len > *left => Err(StreamError::WrongLength),
            StreamFraming::Length(left) => {
                *left -= len;
                Ok(true)
            }
            StreamFraming::Chunked | StreamFraming::UntilClose => Ok(true),
        }
    }

    /// Writes what goes before an admitted piece of `len` bytes: its chunk
    /// size line, when chunked.
    pub(crate) fn open_piece(self, len: usize, buf: &mut BytesMut) {
        if self == StreamFraming::Chunked {
            let mut digits = [0u8; 16];
            buf.extend_from_slice(hex(len, &mut digits));
            buf.extend_from_slice(b"\r\n");
        }
    }

    /// Writes what goes after a piece: its CRLF, when chunked.
    pub(crate) fn close_piece(self, buf: &mut BytesMut) {
        if self == StreamFraming::Chunked {
            buf.extend_from_slice(b"\r\n");
        }
    }

    /// Ends the body: the last chunk when chunked; an error when a declared
    /// length was not reached (the connection must then close).
    pub(crate) fn finish(self, buf: &mut BytesMut) -> Result<(), StreamError> {
        match self {
            StreamFraming::Chunked => {
                self.end_chunks(buf);
                Ok(())
            }
            StreamFraming::Length(left) if left > 0 => Err(StreamError::WrongLength),
            _ => Ok(()),
        }
    }

    /// Writes the last chunk (with no trailers), when chunked.
    pub(crate) fn end_chunks(self, buf: &mut BytesMut) {
        if self == StreamFraming::Chunked {
            buf.extend_from_slice(b"0\r\n\r\n");
        }
    }
}

/// `n` in lowercase hex, into `buf`; returns the digits.
fn hex(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// How a stream ended, as the worker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Still open.
    Open,
    /// [`BodyStream::finish`]: the body is complete.
    Finished,
    /// Aborted or dropped unfinished: close the connection after what is queued.
    Aborted,
}

struct State {
    /// Framed bytes queued, with large pieces spliced in at offsets (as in
    /// the connection's output).
    buf: BytesMut,
    large: Vec<(usize, Bytes)>,
    queued: usize,
    framing: StreamFraming,
    end: StreamEnd,
    /// The connection is gone: nothing more will be sent.
    closed: bool,
    /// The worker will look at the queue again without being told: a
    /// [`Message::Stream`] is on its way, or its last look took something
    /// (it writes that, then looks again). A piece queued meanwhile sends
    /// no message: a busy worker is not woken once per piece.
    notified: bool,
}

/// The most bytes chunked framing adds to a piece: its size in hex (16
/// digits at most) and two CRLFs.
pub(crate) const CHUNK_FRAMING: usize = 16 + 4;

/// The queue a [`BodyStream`] shares with its connection.
pub(crate) struct StreamShared {
    state: Mutex<State>,
    room: Condvar,
    notifier: Notifier,
    key: usize,
    ticket: u64,
    window: usize,
}

/// What one [`StreamShared::drain`] did.
pub(crate) struct Drained {
    /// Bytes moved to the connection.
    pub(crate) moved: usize,
    /// How the stream stands once they are sent.
    pub(crate) end: StreamEnd,
}

impl StreamShared {
    /// A stream for connection `key`, queueing at most about `window` bytes.
    pub(crate) fn new(
        notifier: Notifier,
        key: usize,
        ticket: u64,
        window: usize,
        framing: StreamFraming,
    ) -> Arc<Self> {
        Arc::new(StreamShared {
            state: Mutex::new(State {
                buf: BytesMut::new(),
                large: Vec::new(),
                queued: 0,
                framing,
                end: StreamEnd::Open,
                closed: false,
                notified: false,
            }),
            room: Condvar::new(),
            notifier,
            key,
            ticket,
            window: window.max(1),
        })
    }

    pub(crate) fn ticket(&self) -> u64 {
        self.ticket
    }

    /// The worker takes what is queued: `into` moves the framed bytes and
    /// large pieces to the connection's output. A waiting producer is woken.
    pub(crate) fn drain(
        &self,
        into: impl FnOnce(&mut BytesMut, &mut Vec<(usize, Bytes)>),
    ) -> Drained {
        let mut state = self.state.lock();
        let moved = state.queued;
        // Took something: the worker writes it and looks again, so pieces
        // queued meanwhile need no message. Took nothing: it goes idle, and
        // the next piece must wake it.
        state.notified = moved > 0;
        if moved > 0 {
            let State { buf, large, .. } = &mut *state;
            into(buf, large);
            buf.clear();
            large.clear();
            state.queued = 0;
        }
        let drained = Drained {
            moved,
            end: state.end,
        };
        drop(state);
        if moved > 0 {
            self.room.notify_all();
        }
        drained
    }

    /// The connection closed: the producer's next send fails.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.room.notify_all();
    }

    fn notify(&self, state: &mut State) -> bool {
        !std::mem::replace(&mut state.notified, true)
    }

    fn wake_worker(&self) {
        self.notifier.send(Message::Stream {
            key: self.key,
            ticket: self.ticket,
        });
    }
}

/// Why a [`BodyStream`] could not take a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The connection is gone (the client left, a write failed, the server
    /// stopped): nobody will read the rest.
    Closed,
    /// More bytes than the declared `Content-Length` (nothing was sent of
    /// this piece), or, at [`finish`](BodyStream::finish), fewer: the
    /// connection is closed so the client sees the body is short.
    WrongLength,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Closed => f.write_str("the response stream's connection is closed"),
            StreamError::WrongLength => {
                f.write_str("the streamed body does not match its declared Content-Length")
            }
        }
    }
}

impl std::error::Error for StreamError {}

/// The body of a streamed response, sent piece by piece from any thread.
///
/// Get one from [`Response::stream`](crate::Response::stream) in a handler,
/// or [`Responder::stream`](crate::Responder::stream) on another thread.
/// The head is already on its way; each [`send`](BodyStream::send) adds to
/// the body (one chunk with `Transfer-Encoding: chunked`), and
/// [`finish`](BodyStream::finish) ends it. Responses to later pipelined
/// requests wait until it has.
///
/// **Backpressure.** At most about
/// [`Config::stream_window`](crate::Config::stream_window)
/// bytes wait in the stream, and as much again in the connection's
/// output: when the client reads slower than the producer writes,
/// [`send`](BodyStream::send) blocks and [`try_send`](BodyStream::try_send)
/// returns `Ok(false)`. Never call `send` on a worker thread (in a handler):
/// the worker it would wait for is the one blocked. Use `try_send` there.
///
/// **Ends.** Dropped without `finish` (or [`abort`](BodyStream::abort)ed),
/// the connection closes after what was queued: the client sees a
/// truncated body, never a complete-looking one. When the client leaves,
/// the next send returns [`StreamError::Closed`].
///
/// Allocates its queue when it is made, and a piece's copy when the queue
/// must grow; a piece of 4 KiB or more given as [`Bytes`] is sent without a
/// copy.
pub struct BodyStream {
    shared: Arc<StreamShared>,
    done: bool,
}

impl BodyStream {
    pub(crate) fn new(shared: Arc<StreamShared>) -> Self {
        BodyStream {
            shared,
            done: false,
        }
    }

    /// Sends `data` (copied), waiting while the stream is full.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] when the connection is gone;
    /// [`StreamError::WrongLength`] past a declared length.
    pub fn send(&mut self, data: &[u8]) -> Result<(), StreamError> {
        for piece in data.chunks(self.shared.window) {
            self.push(Piece::Copy(piece), true)?;
        }
        Ok(())
    }

    /// Sends `data` without a copy when it is large, waiting while the
    /// stream is full.
    ///
    /// # Errors
    ///
    /// As [`send`](BodyStream::send).
    pub fn send_bytes(&mut self, data: Bytes) -> Result<(), StreamError> {
        if data.len() < WRITEV_THRESHOLD {
            return self.send(&data);
        }
        self.push(Piece::Shared(data), true).map(|_| ())
    }

    /// Sends `data` if the stream has room, without waiting: `Ok(false)`
    /// (nothing sent) when it is full. For producers that must not block:
    /// a handler on a worker, or one thread feeding many streams (an event
    /// broadcaster that skips or coalesces for a slow client).
    ///
    /// # Errors
    ///
    /// As [`send`](BodyStream::send).
    pub fn try_send(&mut self, data: &[u8]) -> Result<bool, StreamError> {
        self.push(Piece::Copy(data), false)
    }

    /// Whether the connection is gone: nothing sent now reaches the client.
    pub fn is_closed(&self) -> bool {
        self.shared.state.lock().closed
    }

    /// Ends the body: the last chunk goes out, and the connection moves on
    /// to the next request.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] when the connection is gone;
    /// [`StreamError::WrongLength`] when a declared length was not reached
    /// (the connection then closes).
    pub fn finish(mut self) -> Result<(), StreamError> {
        self.done = true;
        let shared = Arc::clone(&self.shared);
        let mut state = shared.state.lock();
        if state.closed {
            return Err(StreamError::Closed);
        }
        let before = state.buf.len();
        let framing = state.framing;
        let result = framing.finish(&mut state.buf);
        state.queued += state.buf.len() - before;
        state.end = match result {
            Ok(()) => StreamEnd::Finished,
            Err(_) => StreamEnd::Aborted,
        };
        let wake = shared.notify(&mut state);
        drop(state);
        if wake {
            shared.wake_worker();
        }
        result
    }

    /// Gives up: the connection closes after what is queued, so the client
    /// sees a truncated body.
    pub fn abort(mut self) {
        self.done = true;
        self.end_aborted();
    }

    fn end_aborted(&self) {
        let mut state = self.shared.state.lock();
        if state.end == StreamEnd::Open {
            state.end = StreamEnd::Aborted;
        }
        let wake = self.shared.notify(&mut state);
        drop(state);
        if wake {
            self.shared.wake_worker();
        }
    }

    /// Queues one piece; `Ok(false)` when full and not waiting.
    fn push(&mut self, piece: Piece<'_>, wait: bool) -> Result<bool, StreamError> {
        let len = piece.len();
        if len == 0 {
            return Ok(true);
        }
        let shared = &*self.shared;
        let mut guard = shared.state.lock();
        loop {
            if guard.closed {
                return Err(StreamError::Closed);
            }
            if guard.queued < shared.window {
                break;
            }
            if !wait {
                return Ok(false);
            }
            shared.room.wait(&mut guard);
        }
        let state = &mut *guard;
        let start = state.buf.len();
        if !state.framing.admit(len)? {
            return Ok(true);
        }
        // Room for the whole framed piece at once: the size line, the copy
        // and the CRLF would otherwise grow a fresh queue three times.
        let copied = match piece {
            Piece::Copy(data) => data.len(),
            Piece::Shared(_) => 0,
        };
        state.buf.reserve(copied + CHUNK_FRAMING);
        state.framing.open_piece(len, &mut state.buf);
        let shared_len = match piece {
            Piece::Copy(data) => {
                state.buf.extend_from_slice(data);
                0
            }
            Piece::Shared(data) => {
                state.large.push((state.buf.len(), data));
                len
            }
        };
        state.framing.close_piece(&mut state.buf);
        state.queued += state.buf.len() - start + shared_len;
        let wake = shared.notify(state);
        drop(guard);
        if wake {
            shared.wake_worker();
        }
        Ok(true)
    }
}

/// One piece handed to a stream: copied into its queue, or shared.
enum Piece<'a> {
    Copy(&'a [u8]),
    Shared(Bytes),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Copy(data) => data.len(),
            Piece::Shared(data) => data.len(),
        }
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if !self.done {
            self.end_aborted();
        }
    }
}

impl io::Write for BodyStream {
    /// Sends up to one window of `data`, waiting while the stream is full.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let piece = &data[..data.len().min(self.shared.window)];
        match self.push(Piece::Copy(piece), true) {
            Ok(_) => Ok(piece.len()),
            Err(e) => Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("ticket", &self.shared.ticket)
            .finish()
    }
}
