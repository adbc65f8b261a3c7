//! Streaming through a response: taking a streamed request body, and
//! sending a body in pieces.

use super::{Framing, Response, Stage};
use crate::body::{BodyReader, BodySink};
use crate::http1::stream_out::Producer;
use crate::source::{BodySource, Source};
use crate::stream::{BodyStream, StreamFraming, StreamShared};

impl Response<'_> {
    /// Lets the handler take the request's body as a stream.
    pub(crate) fn allow_body_stream(&mut self) {
        self.body_streams = true;
    }

    /// Sends the request's body, as it arrives, to `sink` (on this worker
    /// thread), for a route whose body [streams](crate::Handler::streams_body).
    /// The response is written as usual, here or later (deferred); when it
    /// is complete before the body has been read to its end, the connection
    /// closes after it, and the unread rest is never taken for a request.
    ///
    /// A handler of a streamed route that takes no body answers, and the
    /// connection closes without reading it. A request without a body (no
    /// `Content-Length`, no `Transfer-Encoding`) may be read this way on
    /// any route: its sink is told the end as soon as the handler returns.
    ///
    /// Allocates the sink's box.
    ///
    /// ```
    /// use keel::body::{BodyError, BodySink, SinkWaker, Trailers};
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Responder, Response, Router};
    ///
    /// /// Counts the bytes of an upload, then answers.
    /// struct Count { bytes: usize, responder: Option<Responder> }
    ///
    /// impl BodySink for Count {
    ///     fn data(&mut self, data: &[u8], _: &SinkWaker) -> usize {
    ///         self.bytes += data.len();
    ///         data.len()
    ///     }
    ///     fn end(&mut self, _: &Trailers<'_>) {
    ///         let bytes = self.bytes;
    ///         if let Some(responder) = self.responder.take() {
    ///             responder.respond(|res| res.body(bytes.to_string().as_bytes()));
    ///         }
    ///     }
    ///     fn fail(&mut self, error: BodyError) {
    ///         if let Some(responder) = self.responder.take() {
    ///             responder.respond(|res| res.status(error.status()).body(b""));
    ///         }
    ///     }
    /// }
    ///
    /// let routes = Router::new()
    ///     .put("/upload", |_: &Request<'_>, res: &mut Response<'_>| {
    ///         let responder = Some(res.defer());
    ///         res.read_body(Count { bytes: 0, responder });
    ///     })
    ///     .stream_body()
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234");
    /// conn.send(b"56789");
    /// assert!(conn.settle(std::time::Duration::from_secs(5)));
    /// assert!(conn.recv().ends_with(b"\r\n\r\n10"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When the request has a body and its route does not stream it (see
    /// [`Handler::streams_body`](crate::Handler::streams_body)), or the
    /// body was taken already.
    pub fn read_body(&mut self, sink: impl BodySink) {
        assert!(
            self.body_streams,
            "read_body() on a request whose body does not stream (see Handler::streams_body)"
        );
        let sink_slot = &mut self.extras().body_sink;
        assert!(sink_slot.is_none(), "read_body() twice");
        *sink_slot = Some(Box::new(sink));
    }

    /// The request's streamed body as a blocking [`std::io::Read`], to read
    /// on another thread (a [`Response::offload`] job, say): see
    /// [`BodyReader`] and [`Router::stream_body`](crate::Router::stream_body)'s
    /// example. Allocates the reader's 64 KiB buffer.
    ///
    /// # Panics
    ///
    /// As [`read_body`](Response::read_body).
    pub fn body_reader(&mut self) -> BodyReader {
        let (sink, reader) = crate::body::reader_pair();
        self.read_body(sink);
        reader
    }

    /// The sink the handler sent the body to.
    pub(crate) fn take_body_sink(&mut self) -> Option<Box<dyn BodySink>> {
        self.extras.as_mut()?.body_sink.take()
    }

    /// Sends the head now (`Transfer-Encoding: chunked`; for an HTTP/1.0
    /// client, no length and a close at the end) and returns the stream the
    /// body goes through, piece by piece, from this thread or any other:
    /// see [`BodyStream`]. Set the status and headers first.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| {
    ///     let mut body = res.header("Content-Type", "text/plain").stream();
    ///     std::thread::spawn(move || {
    ///         for word in ["streamed ", "from ", "a thread"] {
    ///             body.send(word.as_bytes())?;
    ///         }
    ///         body.finish()
    ///     });
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.settle(std::time::Duration::from_secs(5)));
    /// let reply = conn.responses().unwrap();
    /// assert_eq!(reply[0].body, b"streamed from a thread");
    /// ```
    ///
    /// # Panics
    ///
    /// After the body began, or on a response that cannot stream (inside a
    /// [`Responder`](crate::Responder)'s `respond`: use
    /// [`Responder::stream`](crate::Responder::stream)).
    pub fn stream(&mut self) -> BodyStream {
        self.start_stream(None)
    }

    /// As [`stream`](Response::stream), with a declared `Content-Length`
    /// of `len` bytes: the stream refuses more, and a stream finished short
    /// closes the connection.
    ///
    /// # Panics
    ///
    /// As [`stream`](Response::stream).
    pub fn stream_with_length(&mut self, len: usize) -> BodyStream {
        self.start_stream(Some(len))
    }

    fn start_stream(&mut self, length: Option<usize>) -> BodyStream {
        let (deferral, key) = self
            .deferral
            .expect("stream() on a response that cannot stream: use Responder::stream");
        let framing = self.begin_stream(length);
        let shared = StreamShared::new(
            deferral.notifier(),
            key,
            deferral.ticket(),
            deferral.stream_window(),
            framing,
        );
        self.extras().stream = Some(Producer::Queue(std::sync::Arc::clone(&shared)));
        BodyStream::new(shared)
    }

    /// Sends the head now, framed as for [`stream`](Response::stream), and
    /// the body as `source` produces it, on this worker thread, each time
    /// the connection has sent what was queued: see [`BodySource`]. For a
    /// body whose pieces are always at hand (generated, computed, held in
    /// memory): no thread, queue or hand-off between threads. Set the
    /// status and headers first.
    ///
    /// Allocates the source's box; nothing per piece once the output
    /// buffer has grown to the window.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Pull, Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| {
    ///     let mut line = 0;
    ///     res.header("Content-Type", "text/csv").stream_from(move |out: &mut Pull<'_>| {
    ///         while line < 1000 && out.room() > 0 {
    ///             line += 1;
    ///             let _ = out.send(format!("{line},{}\n", line * line).as_bytes());
    ///         }
    ///         if line == 1000 {
    ///             let _ = out.finish();
    ///         }
    ///     });
    /// });
    /// conn.send(b"GET /squares.csv HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.settle(std::time::Duration::from_secs(5)));
    /// let reply = conn.responses().unwrap();
    /// assert!(reply[0].body.starts_with(b"1,1\n2,4\n"));
    /// assert!(reply[0].body.ends_with(b"1000,1000000\n"));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`stream`](Response::stream).
    pub fn stream_from(&mut self, source: impl BodySource) {
        self.start_source(None, source);
    }

    /// As [`stream_from`](Response::stream_from), with a declared
    /// `Content-Length` of `len` bytes: the source's [`Pull`](crate::Pull) refuses more,
    /// and a body finished short closes the connection.
    ///
    /// # Panics
    ///
    /// As [`stream`](Response::stream).
    pub fn stream_from_with_length(&mut self, len: usize, source: impl BodySource) {
        self.start_source(Some(len), source);
    }

    fn start_source(&mut self, length: Option<usize>, source: impl BodySource) {
        assert!(
            self.deferral.is_some(),
            "stream_from() on a response that cannot stream: use Responder::stream"
        );
        let framing = self.begin_stream(length);
        self.extras().stream = Some(Producer::Source(Source::boxed(source, framing)));
    }

    /// Where the body this response streams comes from, if it does.
    pub(crate) fn take_stream(&mut self) -> Option<Producer> {
        self.extras.as_mut()?.stream.take()
    }

    /// Writes the head of a streamed body; returns how the body is framed.
    pub(crate) fn begin_stream(&mut self, length: Option<usize>) -> StreamFraming {
        assert!(
            self.stage == Stage::Headers,
            "stream() after the response was begun"
        );
        let framing = match length {
            Some(len) => {
                self.write_head(Framing::Length(len));
                StreamFraming::Length(len)
            }
            None if self.http10 => {
                self.keep_alive = false;
                self.write_head(Framing::UntilClose);
                StreamFraming::UntilClose
            }
            None => {
                self.write_head(Framing::Chunked);
                StreamFraming::Chunked
            }
        };
        self.stage = Stage::Done;
        if self.sends_body() {
            framing
        } else {
            StreamFraming::Nothing
        }
    }
}
