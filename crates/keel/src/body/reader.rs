//! A streamed request body read on another thread: a [`BodySink`] on the
//! worker fills a bounded buffer that a blocking [`BodyReader`] drains.

use super::{BodyError, BodySink, SinkWaker, Trailers};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::sync::Arc;

/// Bytes buffered between the worker and the reading thread at most.
pub(crate) const READER_CAPACITY: usize = 64 * 1024;

struct State {
    /// Body bytes not read yet, from `read` on.
    buf: Vec<u8>,
    read: usize,
    /// How the body ended, once it has.
    end: Option<Result<(), BodyError>>,
    /// The connection to wake once there is room, when it paused.
    paused: Option<SinkWaker>,
    /// The reader was dropped: nobody wants the rest.
    reader_gone: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// Creates the two ends: the sink the connection feeds, the reader the
/// application drains. Allocates the shared state and its buffer.
pub(crate) fn pair() -> (ReaderSink, BodyReader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: Vec::with_capacity(READER_CAPACITY),
            read: 0,
            end: None,
            paused: None,
            reader_gone: false,
        }),
        changed: Condvar::new(),
    });
    (
        ReaderSink {
            shared: Arc::clone(&shared),
        },
        BodyReader { shared },
    )
}

/// The worker's end of a [`BodyReader`].
pub(crate) struct ReaderSink {
    shared: Arc<Shared>,
}

impl BodySink for ReaderSink {
    fn data(&mut self, data: &[u8], waker: &SinkWaker) -> usize {
        let mut state = self.shared.state.lock();
        if state.reader_gone {
            // Nobody reads: stay paused; the answer closes the connection.
            return 0;
        }
        if state.read > 0 && state.buf.len() + data.len() > READER_CAPACITY {
            let read = state.read;
            state.buf.drain(..read);
            state.read = 0;
        }
        let taken = data.len().min(READER_CAPACITY - state.buf.len());
        state.buf.extend_from_slice(&data[..taken]);
        if taken < data.len() {
            state.paused = Some(waker.clone());
        }
        drop(state);
        self.shared.changed.notify_one();
        taken
    }

    fn end(&mut self, _trailers: &Trailers<'_>) {
        self.finish(Ok(()));
    }

    fn fail(&mut self, error: BodyError) {
        self.finish(Err(error));
    }
}

impl ReaderSink {
    fn finish(&self, end: Result<(), BodyError>) {
        self.shared.state.lock().end = Some(end);
        self.shared.changed.notify_one();
    }
}

/// A streamed request body, read with [`std::io::Read`] on any thread.
///
/// Get one with [`Response::body_reader`](crate::Response::body_reader).
/// `read` blocks until bytes arrive, returns `Ok(0)` at the end of the body,
/// and an error of kind [`io::ErrorKind::TimedOut`], `UnexpectedEof` or
/// `InvalidData` (wrapping a [`BodyError`]) when the body fails. At most 64 KiB
/// wait between the connection and the reader: when the reader falls
/// behind, keel stops reading from the client.
///
/// Dropped before the end, the reader leaves the rest of the body unread:
/// the connection closes after its response.
pub struct BodyReader {
    shared: Arc<Shared>,
}

impl io::Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut state = self.shared.state.lock();
        loop {
            let available = state.buf.len() - state.read;
            if available > 0 {
                let n = available.min(out.len());
                let from = state.read;
                out[..n].copy_from_slice(&state.buf[from..from + n]);
                state.read += n;
                if state.read == state.buf.len() {
                    state.buf.clear();
                    state.read = 0;
                }
                // Wake the connection once half the buffer is free, not on
                // every small read: fewer round trips through the worker.
                let room = READER_CAPACITY - (state.buf.len() - state.read);
                let wake = if room >= READER_CAPACITY / 2 {
                    state.paused.take()
                } else {
                    None
                };
                drop(state);
                if let Some(waker) = wake {
                    waker.wake();
                }
                return Ok(n);
            }
            match state.end {
                Some(Ok(())) => return Ok(0),
                Some(Err(error)) => {
                    let kind = match error {
                        BodyError::TimedOut => io::ErrorKind::TimedOut,
                        BodyError::Closed => io::ErrorKind::UnexpectedEof,
                        BodyError::TooLarge | BodyError::Framing(_) => io::ErrorKind::InvalidData,
                    };
                    return Err(io::Error::new(kind, error));
                }
                None => self.shared.changed.wait(&mut state),
            }
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.shared.state.lock().reader_gone = true;
    }
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader").finish_non_exhaustive()
    }
}
