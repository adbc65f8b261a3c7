//! Streamed request bodies: a route that opts in gets its body as decoded
//! slices, handed to a [`BodySink`] as they arrive, instead of buffered.
//!
//! The connection hands the sink what its read buffer holds, zero-copy;
//! a sink that takes fewer bytes than offered pauses the connection: keel
//! stops reading from the client (its TCP window fills and the client's
//! send blocks) until the sink calls [`SinkWaker::wake`]. Memory per
//! upload is the read buffer, whatever the body's size.
//!
//! A sink on another thread is [`BodyReader`]: a blocking [`std::io::Read`]
//! fed through a bounded buffer, got from [`Response::body_reader`].
//!
//! [`Response::body_reader`]: crate::Response::body_reader

mod reader;
mod trailers;

pub(crate) use reader::pair as reader_pair;
pub use reader::BodyReader;
pub use trailers::Trailers;

use crate::deferred::{Message, Notifier};
use crate::ProtocolError;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Where a streamed request body goes, slice by slice, on the worker thread.
///
/// Give one to [`Response::read_body`](crate::Response::read_body) from the
/// handler of a route that [streams its body](crate::Handler::streams_body).
/// keel calls [`data`](BodySink::data) with the body's decoded bytes in
/// order (never an empty slice), then exactly one of
/// [`end`](BodySink::end) or [`fail`](BodySink::fail). These run on the
/// worker: like a handler, a sink must not block.
pub trait BodySink: Send + 'static {
    /// Takes the next bytes of the body; returns how many it took. Taking
    /// fewer than `data.len()` (none included) pauses the connection: the
    /// rest stays in keel's buffer and keel reads no more from the client
    /// until `waker` is woken ([`SinkWaker::wake`]; clone it to keep it),
    /// then offers the rest again.
    fn data(&mut self, data: &[u8], waker: &SinkWaker) -> usize;

    /// The body is complete; `trailers` holds the trailer fields a chunked
    /// body ended with (none for a `Content-Length` body).
    fn end(&mut self, trailers: &Trailers<'_>);

    /// The body will never be complete: the client left, sent bad framing,
    /// went past the route's limit or its deadline.
    fn fail(&mut self, error: BodyError);
}

/// Why a streamed request body ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The connection closed: the client left, or the server stopped.
    Closed,
    /// The client sent nothing for [`Config::body_timeout`](crate::Config::body_timeout),
    /// or the sink stayed paused past [`Config::deferred_timeout`](crate::Config::deferred_timeout).
    TimedOut,
    /// The body went past the route's body limit.
    TooLarge,
    /// The chunked framing was invalid.
    Framing(ProtocolError),
}

impl BodyError {
    /// Whether the body ended because a deadline passed.
    pub fn is_timeout(self) -> bool {
        self == BodyError::TimedOut
    }

    /// The status that fits a response to a request whose body failed so.
    pub fn status(self) -> crate::StatusCode {
        match self {
            BodyError::Closed => crate::StatusCode::BAD_REQUEST,
            BodyError::TimedOut => crate::StatusCode::REQUEST_TIMEOUT,
            BodyError::TooLarge => crate::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Framing(e) => e.status(),
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Closed => f.write_str("the connection closed before the body ended"),
            BodyError::TimedOut => f.write_str("the request body did not arrive in time"),
            BodyError::TooLarge => f.write_str("the request body is larger than allowed"),
            BodyError::Framing(e) => write!(f, "bad body framing: {e}"),
        }
    }
}

impl std::error::Error for BodyError {}

/// Reading goes on.
const RUNNING: u8 = 0;
/// The connection paused; a wake sends it a message.
const PAUSED: u8 = 1;
/// Woken while running (a wake that raced the pause): do not pause.
const WOKEN: u8 = 2;

/// Resumes a connection paused by its [`BodySink`]. Cheap to clone, `Send`:
/// the thread that drains a sink's buffer keeps one.
#[derive(Clone)]
pub struct SinkWaker {
    state: Arc<AtomicU8>,
    notifier: Notifier,
    key: usize,
    ticket: u64,
}

impl SinkWaker {
    pub(crate) fn new(notifier: Notifier, key: usize, ticket: u64) -> Self {
        SinkWaker {
            state: Arc::new(AtomicU8::new(RUNNING)),
            notifier,
            key,
            ticket,
        }
    }

    /// Tells keel the sink has room again: a paused connection offers it
    /// the rest and reads on. One message per pause, however often it is
    /// called: wakes are never queued without bound.
    pub fn wake(&self) {
        if self.state.swap(WOKEN, Ordering::AcqRel) == PAUSED {
            self.notifier.send(Message::Resume {
                key: self.key,
                ticket: self.ticket,
            });
        }
    }

    /// The connection's side, after its sink took less than offered:
    /// `true` when it is now paused (a wake will come), `false` when a
    /// wake came while the sink ran (offer again).
    pub(crate) fn pause(&self) -> bool {
        match self
            .state
            .compare_exchange(RUNNING, PAUSED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                self.state.store(RUNNING, Ordering::Release);
                false
            }
        }
    }

    /// The connection's side, on the wake's message.
    pub(crate) fn resumed(&self) {
        self.state.store(RUNNING, Ordering::Release);
    }

    pub(crate) fn ticket(&self) -> u64 {
        self.ticket
    }
}

impl fmt::Debug for SinkWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkWaker")
            .field("ticket", &self.ticket)
            .finish()
    }
}
