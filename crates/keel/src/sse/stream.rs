//! An event stream: [`Event`]s framed into a streamed response.

use super::{comment, Event, InvalidEvent, CONTENT_TYPE};
use crate::{field, BodyStream, Responder, Response, StreamError};
use bytes::BytesMut;
use std::fmt;

/// Why an event was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventError {
    /// The event's fields would break the framing: nothing was sent.
    Invalid(InvalidEvent),
    /// The client is gone (see [`StreamError::Closed`]).
    Closed,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Invalid(e) => e.fmt(f),
            EventError::Closed => f.write_str("the event stream's client is gone"),
        }
    }
}

impl std::error::Error for EventError {}

impl From<InvalidEvent> for EventError {
    fn from(e: InvalidEvent) -> Self {
        EventError::Invalid(e)
    }
}

impl From<StreamError> for EventError {
    fn from(_: StreamError) -> Self {
        // A chunked stream has no declared length to get wrong.
        EventError::Closed
    }
}

/// A `text/event-stream` response: events sent from any thread, each in
/// one piece, with the stream's backpressure (see [`BodyStream`]).
///
/// Open one with [`Response::event_stream`] or
/// [`Responder::event_stream`]; read the client's `Last-Event-ID` with
/// [`Request::last_event_id`](crate::Request::last_event_id). Send a
/// [`heartbeat`](EventStream::heartbeat) every so often (15-30 s) while
/// idle: proxies keep the connection open, and a client that left without
/// a word is noticed. A client that closed its connection is noticed at
/// once: the next send returns [`EventError::Closed`] and
/// [`is_closed`](EventStream::is_closed) turns `true`.
///
/// ```
/// use keel::sse::Event;
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
///     let from: u32 = req.last_event_id().and_then(|id| id.parse().ok()).unwrap_or(0);
///     let mut events = res.event_stream();
///     std::thread::spawn(move || {
///         for n in from + 1..=from + 2 {
///             let id = n.to_string();
///             events.send(&Event::data("tick").id(&id))?;
///         }
///         events.finish()
///     });
/// });
/// conn.send(b"GET /events HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 7\r\n\r\n");
/// assert!(conn.settle(std::time::Duration::from_secs(5)));
/// let reply = conn.responses().unwrap();
/// assert_eq!(reply[0].header("content-type"), Some("text/event-stream"));
/// assert_eq!(reply[0].body, b"id: 8\ndata: tick\n\nid: 9\ndata: tick\n\n");
/// ```
pub struct EventStream {
    body: BodyStream,
    /// Where each event is framed before it is sent; kept between events.
    scratch: BytesMut,
}

impl EventStream {
    fn new(body: BodyStream) -> Self {
        EventStream {
            body,
            scratch: BytesMut::with_capacity(256),
        }
    }

    /// Sends `event`, waiting while the stream is full. Never call it on a
    /// worker thread: use [`try_send`](EventStream::try_send) there.
    ///
    /// # Errors
    ///
    /// [`EventError::Invalid`] (nothing sent) or [`EventError::Closed`].
    pub fn send(&mut self, event: &Event<'_>) -> Result<(), EventError> {
        self.frame(event)?;
        Ok(self.body.send(&self.scratch)?)
    }

    /// Sends `event` if the stream has room: `Ok(false)` (nothing sent)
    /// when the client is behind. A broadcaster feeding many clients skips
    /// a slow one, or sends it the latest state later.
    ///
    /// # Errors
    ///
    /// As [`send`](EventStream::send).
    pub fn try_send(&mut self, event: &Event<'_>) -> Result<bool, EventError> {
        self.frame(event)?;
        Ok(self.body.try_send(&self.scratch)?)
    }

    /// Sends a comment line (`:\n\n`), which clients ignore: keeps the
    /// connection alive through proxies, and finds a client that left.
    /// Skipped (`Ok`) when the stream is full: it has data to send anyway.
    ///
    /// # Errors
    ///
    /// [`EventError::Closed`] when the client is gone.
    pub fn heartbeat(&mut self) -> Result<(), EventError> {
        self.scratch.clear();
        comment("", &mut self.scratch);
        self.body.try_send(&self.scratch)?;
        Ok(())
    }

    /// Whether the client is gone.
    pub fn is_closed(&self) -> bool {
        self.body.is_closed()
    }

    /// Ends the stream (a client's `EventSource` then reconnects, after
    /// its retry delay).
    ///
    /// # Errors
    ///
    /// [`EventError::Closed`] when the client is gone.
    pub fn finish(self) -> Result<(), EventError> {
        Ok(self.body.finish()?)
    }

    fn frame(&mut self, event: &Event<'_>) -> Result<(), InvalidEvent> {
        self.scratch.clear();
        event.write_to(&mut self.scratch)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("body", &self.body)
            .finish()
    }
}

/// The head every event stream has.
fn event_stream_head(res: &mut Response<'_>) {
    res.header("Content-Type", CONTENT_TYPE)
        .field(field!("Cache-Control", "no-store"))
        // Tells nginx not to buffer the stream.
        .field(field!("X-Accel-Buffering", "no"));
}

impl Response<'_> {
    /// Answers with an event stream: the head (`Content-Type:
    /// text/event-stream`, `Cache-Control: no-store`) goes out now, and
    /// events follow through the returned [`EventStream`], from this thread
    /// or any other. Headers set before stay.
    ///
    /// # Panics
    ///
    /// As [`Response::stream`].
    pub fn event_stream(&mut self) -> EventStream {
        event_stream_head(self);
        EventStream::new(self.stream())
    }
}

impl Responder {
    /// As [`Response::event_stream`], from another thread; `head` may add
    /// headers. `None` when the deferral was abandoned.
    pub fn event_stream(self, head: impl FnOnce(&mut Response<'_>)) -> Option<EventStream> {
        self.stream(|res| {
            head(res);
            event_stream_head(res);
        })
        .map(EventStream::new)
    }
}
