//! The response writer: status, headers and body go straight into the
//! connection's output buffer.
//!
//! Layout while a response is being written, all inside the output buffer:
//!
//! ```text
//! [earlier responses][status line][user header lines][CRLF][body so far]
//!                    ^ start      ^ headers_start()        ^ body_start
//! ```
//!
//! The status line is written with the first header line (or the body),
//! from the status set so far; a later [`Response::status`] rewrites it in
//! place, a `memmove` of what follows. The server's own fields (`Date`,
//! `Server`, `Content-Length` or `Transfer-Encoding`, `Connection`) come
//! after the user's lines: appended with the body when its length is known
//! then, else put in front of the header section's CRLF once the body is
//! complete. The common answer (`header`, then `body`) is written front to
//! back, with nothing moved, and its first three server fields are one copy
//! of a block the worker keeps ([`ServerFields`]).

mod defer;
mod field;
mod file;
mod head;
mod headers;
mod hold;
mod server_fields;
mod stream;
mod upgrade;

pub use field::Field;
pub use headers::InvalidHeader;
pub use hold::Held;
pub(crate) use server_fields::{FieldsMemo, ServerFields};

use crate::deferred::{Deferral, Watch};
use crate::http1::output::Segment;
use crate::stream::StreamFraming;
use crate::StatusCode;
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::time::Duration;

/// Bodies at least this large, given as [`Bytes`], are written with `writev`
/// from their own buffer instead of being copied into the output buffer.
pub(crate) const WRITEV_THRESHOLD: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Header lines are being added.
    Headers,
    /// Body bytes are being buffered after the header section; length unknown yet.
    Buffered { body_start: usize },
    /// A [held](Response::hold) response whose body is complete: the head
    /// is written when the response finishes, and layers may rewrite both.
    Held { body_start: usize },
    /// The head is out with `Transfer-Encoding: chunked` (or, for HTTP/1.0,
    /// no length and a close); each write is one chunk.
    Streaming,
    /// The response is complete.
    Done,
    /// A [`Responder`] will write it later; this writer is finished.
    Deferred { ticket: u64 },
}

/// What the request decided about its response's shape, kept by a
/// [`Responder`] for writing the response later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResponseShape {
    pub(crate) keep_alive: bool,
    pub(crate) is_head: bool,
    pub(crate) http10: bool,
}

/// How the server's part of the head frames the body.
#[derive(Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Writes one response into the connection's output buffer.
///
/// Set the status and headers first, then give the body in one of five ways:
/// [`body`](Response::body) (a slice, copied once), [`body_bytes`](Response::body_bytes)
/// (a shared buffer, sent without a copy when large), [`file`](Response::file)
/// (part of an open file, sent with `sendfile`), [`write`](Response::write)
/// (in pieces; `Content-Length` computed at the end), or
/// [`chunked`](Response::chunked) then `write` (streamed as chunks). A handler
/// that writes no body sends an empty one. Writing allocates nothing while the
/// output buffer has room.
///
/// ```
/// use keel::{Request, Response, StatusCode};
/// fn not_found(_req: &Request<'_>, res: &mut Response<'_>) {
///     res.status(StatusCode::NOT_FOUND)
///         .header("Content-Type", "text/plain")
///         .body(b"no such page\n");
/// }
/// ```
///
/// # Panics
///
/// Methods panic when called out of order (a header after the body began, a
/// write after `body`) or with a header that fails [`Response::try_header`].
/// A panicking handler costs its client one `500` and a closed connection.
pub struct Response<'a> {
    out: &'a mut BytesMut,
    large: &'a mut Vec<(usize, Segment)>,
    start: usize,
    /// Length of the status line at `start`; 0 until it is written.
    status_line_len: usize,
    stage: Stage,
    status: StatusCode,
    keep_alive: bool,
    is_head: bool,
    http10: bool,
    has_date: bool,
    has_server: bool,
    server: ServerFields<'a>,
    /// Where a deferred answer goes, and the connection's slab key.
    deferral: Option<(&'a Deferral, usize)>,
    /// Body bytes given so far (see [`Response::body_len`]).
    body_len: usize,
    /// This response's own deadline if it is deferred (see
    /// [`Response::deferred_timeout`]).
    deferred_timeout: Option<Duration>,
    /// The request's body streams: the handler may take it (see
    /// [`Response::read_body`]).
    body_streams: bool,
    /// The request this response may switch protocols for (see
    /// [`Response::upgrade`]); `None` where it cannot.
    upgrade_request: Option<&'a crate::Request<'a>>,
    /// What few responses carry; `None` for the rest.
    extras: Option<Extras>,
    /// A layer holds the head until the response finishes (see [`Response::hold`]).
    held: bool,
    /// A held `HEAD` answer goes out without `Content-Length` (see
    /// [`Held::omit_length`]).
    omit_length: bool,
}

/// What few responses carry, kept together so that a plain response is
/// dropped, and checked for them, with one test.
#[derive(Default)]
struct Extras {
    /// The worker's side of the deferral, once deferred.
    watch: Option<Watch>,
    /// Where the handler sent the streamed request body.
    body_sink: Option<Box<dyn crate::body::BodySink>>,
    /// Where this response's streamed body comes from, once streaming.
    stream: Option<crate::http1::stream_out::Producer>,
    /// Whom the connection goes to once this `101` is written.
    on_upgrade: Option<crate::upgrade::OnUpgrade>,
}

impl<'a> Response<'a> {
    pub(crate) fn new(
        out: &'a mut BytesMut,
        large: &'a mut Vec<(usize, Segment)>,
        keep_alive: bool,
        is_head: bool,
        http10: bool,
        server: ServerFields<'a>,
    ) -> Self {
        Response {
            start: out.len(),
            status_line_len: 0,
            out,
            large,
            stage: Stage::Headers,
            status: StatusCode::OK,
            keep_alive,
            is_head,
            http10,
            has_date: false,
            has_server: false,
            server,
            deferral: None,
            body_len: 0,
            deferred_timeout: None,
            body_streams: false,
            upgrade_request: None,
            extras: None,
            held: false,
            omit_length: false,
        }
    }

    pub(crate) fn with_shape(
        out: &'a mut BytesMut,
        large: &'a mut Vec<(usize, Segment)>,
        shape: ResponseShape,
        server_line: &'a [u8],
    ) -> Self {
        Response::new(
            out,
            large,
            shape.keep_alive,
            shape.is_head,
            shape.http10,
            ServerFields::line_only(server_line),
        )
    }

    /// Body bytes this response carries so far (none for `HEAD`, `204` and
    /// `304`), before any chunked framing.
    pub fn body_len(&self) -> usize {
        if self.sends_body() {
            self.body_len
        } else {
            0
        }
    }

    /// Sets the status (default `200 OK`). May be called until the head is
    /// sent: any time before `body`, `body_bytes` or `chunked`.
    ///
    /// # Panics
    ///
    /// After the head was sent, or for a 1xx status (interim responses are
    /// the server's: `100 Continue` is sent by keel itself).
    pub fn status(&mut self, status: StatusCode) -> &mut Self {
        assert!(
            status.as_u16() >= 200,
            "{status:?}: a 1xx status is interim, never a final response"
        );
        assert!(
            matches!(self.stage, Stage::Headers | Stage::Buffered { .. }),
            "status set after the response head was written"
        );
        if self.status_line_len != 0 && status != self.status {
            self.rewrite_status_line(status);
        }
        self.status = status;
        self
    }

    /// Closes the connection after this response (adds `Connection: close`).
    pub fn close(&mut self) -> &mut Self {
        self.keep_alive = false;
        self
    }

    /// Appends body bytes. Without [`Response::chunked`] they are buffered and
    /// `Content-Length` is computed when the handler returns; after it, each
    /// call sends one chunk.
    ///
    /// # Panics
    ///
    /// After `body` or `body_bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        self.body_len += bytes.len();
        match self.stage {
            Stage::Headers => {
                self.open_head();
                self.out.extend_from_slice(b"\r\n");
                self.stage = Stage::Buffered {
                    body_start: self.out.len(),
                };
                self.out.extend_from_slice(bytes);
            }
            Stage::Buffered { .. } => self.out.extend_from_slice(bytes),
            Stage::Streaming => self.write_chunk(bytes),
            Stage::Held { .. } | Stage::Done | Stage::Deferred { .. } => {
                panic!("write after the response body was complete")
            }
        }
        self
    }

    /// Sends `bytes` as the whole body and completes the response.
    ///
    /// # Panics
    ///
    /// After the body began another way.
    pub fn body(&mut self, bytes: &[u8]) {
        match self.stage {
            Stage::Headers if self.held => {
                self.write(bytes);
                self.seal_held();
            }
            Stage::Headers => {
                self.write_head(Framing::Length(bytes.len()));
                if self.sends_body() {
                    self.out.extend_from_slice(bytes);
                }
                self.body_len = bytes.len();
                self.stage = Stage::Done;
            }
            Stage::Buffered { .. } => {
                self.write(bytes);
                if self.held {
                    self.seal_held();
                } else {
                    self.finish();
                }
            }
            Stage::Held { .. } | Stage::Streaming | Stage::Done | Stage::Deferred { .. } => {
                panic!("body() after the body began")
            }
        }
    }

    /// Sends a shared buffer as the whole body and completes the response. A
    /// body of 4 KiB or more is not copied: it is written from `bytes` itself
    /// with `writev`, after the head (unless the response is
    /// [held](Response::hold): then it is copied, as by [`body`](Response::body)).
    ///
    /// # Panics
    ///
    /// After the body began.
    pub fn body_bytes(&mut self, bytes: Bytes) {
        assert!(
            self.stage == Stage::Headers,
            "body_bytes() after the body began"
        );
        if self.held {
            // A layer rewrites the body in place: it must be in the buffer.
            return self.body(&bytes);
        }
        self.write_head(Framing::Length(bytes.len()));
        self.body_len = bytes.len();
        if self.sends_body() {
            if bytes.len() < WRITEV_THRESHOLD {
                self.out.extend_from_slice(&bytes);
            } else {
                self.large.push((self.out.len(), Segment::Shared(bytes)));
            }
        }
        self.stage = Stage::Done;
    }

    /// Switches to a streamed body of unknown length: the head goes out with
    /// `Transfer-Encoding: chunked` and each later [`write`](Response::write)
    /// is one chunk. An HTTP/1.0 client gets the body unframed, ended by a close.
    ///
    /// # Panics
    ///
    /// After the body began.
    pub fn chunked(&mut self) -> &mut Self {
        assert!(
            self.stage == Stage::Headers,
            "chunked() after the body began"
        );
        if self.http10 {
            self.keep_alive = false;
            self.write_head(Framing::UntilClose);
        } else {
            self.write_head(Framing::Chunked);
        }
        self.stage = Stage::Streaming;
        self
    }

    /// The status set so far.
    pub fn status_code(&self) -> StatusCode {
        self.status
    }

    /// Whether the connection stays open after this response.
    pub fn keeps_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether the head is written, and with it the `Connection` header:
    /// too late then to [`close`](Response::close) without the client
    /// being told.
    pub(crate) fn head_written(&self) -> bool {
        matches!(self.stage, Stage::Streaming | Stage::Done)
    }

    /// Completes the response: called by the connection after the handler returns.
    pub(crate) fn finish(&mut self) {
        match self.stage {
            Stage::Headers => self.body(b""),
            Stage::Buffered { body_start } | Stage::Held { body_start } => {
                let len = self.out.len() - body_start;
                if !self.sends_body() {
                    self.out.truncate(body_start);
                }
                // A HEAD answer may leave its length out (RFC 9110 §8.6):
                // nothing follows its head, whatever the framing says.
                let framing = if self.omit_length && self.is_head {
                    Framing::UntilClose
                } else {
                    Framing::Length(len)
                };
                // The user's header lines and CRLF are already there: the
                // server's fields go in front of that CRLF.
                self.stage = Stage::Done;
                self.insert_server_fields(framing, body_start - 2);
            }
            Stage::Streaming => {
                if !self.http10 && !self.is_head && !self.status.forbids_body() {
                    StreamFraming::Chunked.end_chunks(self.out);
                }
                self.stage = Stage::Done;
            }
            Stage::Done | Stage::Deferred { .. } => {}
        }
    }

    /// Drops everything this response wrote (a panicking handler's half-written response).
    pub(crate) fn discard(&mut self) {
        self.out.truncate(self.start);
        self.status_line_len = 0;
        let start = self.start;
        self.large.retain(|&(at, _)| at <= start);
        self.stage = Stage::Done;
    }

    /// The extras, made empty the first time one is set.
    fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Extras::default)
    }

    /// Whether nothing about this response changed since it was made with
    /// `keep_alive`: nothing written, and its status, connection, hold and
    /// deferred deadline as they were. A head-time hook that continued
    /// leaves it so, and the handler may then write the same response.
    pub(crate) fn is_fresh(&self, keep_alive: bool) -> bool {
        self.is_untouched()
            && self.stage == Stage::Headers
            && self.status == StatusCode::OK
            && self.keep_alive == keep_alive
            && !self.held
            && self.deferred_timeout.is_none()
    }

    /// The buffers this response writes into, given back (a panicking
    /// handler's response is replaced by a `500`).
    pub(crate) fn into_buffers(self) -> (&'a mut BytesMut, &'a mut Vec<(usize, Segment)>) {
        let Response { out, large, .. } = self;
        (out, large)
    }

    /// Starts this response over, to close the connection after it: what
    /// was written is dropped (a panicking handler's half-written answer,
    /// replaced by a `500`).
    pub(crate) fn restart_closing(&mut self) {
        self.discard();
        self.stage = Stage::Headers;
        self.status = StatusCode::OK;
        self.keep_alive = false;
        self.http10 = false;
        self.has_date = false;
        self.has_server = false;
        self.held = false;
        self.omit_length = false;
        self.body_len = 0;
    }

    /// Whether nothing was written yet: no header, no body.
    #[inline]
    pub(crate) fn is_untouched(&self) -> bool {
        self.out.len() == self.start
    }

    fn sends_body(&self) -> bool {
        !self.is_head && !self.status.forbids_body()
    }

    fn write_chunk(&mut self, bytes: &[u8]) {
        if !self.sends_body() || bytes.is_empty() {
            return; // an empty chunk would end the body
        }
        if self.http10 {
            self.out.extend_from_slice(bytes);
            return;
        }
        StreamFraming::Chunked.open_piece(bytes.len(), self.out);
        self.out.extend_from_slice(bytes);
        StreamFraming::Chunked.close_piece(self.out);
    }
}

impl std::io::Write for Response<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Response::write(self, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Write for Response<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Response::write(self, s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
