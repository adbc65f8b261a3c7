//! `BodyLimit`: a body limit for some routes, applied before the body is read.

use super::{Flow, Middleware};
use crate::{Request, Response, StatusCode};

/// Sets the largest request body the handlers it wraps accept, in place of
/// the server-wide [`Config::max_body`](crate::Config::max_body): larger
/// gets `413 Content Too Large` with `Connection: close`, and the handler is
/// not called.
///
/// The limit is applied before the body is read: a `Content-Length` over
/// it is refused from the head ([`on_head`](Middleware::on_head), answered
/// with the [`refusal`](BodyLimit::refusal)), and a chunked body as soon as
/// its decoded size passes it ([`body_limit`](Middleware::body_limit),
/// answered by keel itself), so the oversized body is never buffered.
/// Wrapped around a handler that sets its own limit (another `BodyLimit`
/// inside, a [`Router::body_limit`](crate::Router::body_limit)), the
/// smaller applies. Add it inside the layers that must run first (an
/// authentication check), as their head-time hooks run outermost first.
///
/// # Cost
///
/// One header lookup and a length comparison; allocates nothing.
///
/// # Examples
///
/// ```
/// use keel::middleware::{BodyLimit, HandlerExt};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, Router};
///
/// let api = Router::new()
///     .post("/links", (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(BodyLimit::new(4)))
///     .build()?;
/// let mut conn = MemoryConn::new(api);
/// conn.send(b"POST /links HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd");
/// assert!(conn.recv().ends_with(b"\r\n\r\nok"));
/// conn.send(b"POST /links HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 413 Content Too Large\r\n"));
/// assert!(reply.contains("\r\nConnection: close\r\n"));
/// # Ok::<(), keel::RouteError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit {
    max: usize,
    /// Content type and body of the `413` for a declared length over `max`.
    refusal: (&'static str, &'static [u8]),
}

impl BodyLimit {
    /// Refuses bodies longer than `max` bytes (after chunked decoding).
    pub fn new(max: usize) -> Self {
        BodyLimit {
            max,
            refusal: ("text/plain; charset=utf-8", b"request body too large\n"),
        }
    }

    /// Sets the content type and body of the `413` sent for a
    /// `Content-Length` over the limit (default: `text/plain`, `request
    /// body too large`), e.g. an API's JSON error. A chunked body that
    /// passes the limit gets keel's own `413`.
    ///
    /// ```
    /// use keel::middleware::{BodyLimit, HandlerExt};
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let limit = BodyLimit::new(4).refusal("application/json", br#"{"error":"too_large"}"#);
    /// let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(limit);
    /// let mut conn = MemoryConn::new(app);
    /// conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
    /// let reply = String::from_utf8(conn.recv()).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    /// assert!(reply.ends_with(r#"{"error":"too_large"}"#));
    /// ```
    pub fn refusal(mut self, content_type: &'static str, body: &'static [u8]) -> Self {
        self.refusal = (content_type, body);
        self
    }

    /// The limit in bytes.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Middleware for BodyLimit {
    /// Refuses a declared `Content-Length` over the limit, before the body
    /// is read. (keel has checked the header already: one number, or
    /// several equal ones; a list is left to [`BodyLimit::body_limit`].)
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let declared = req
            .header_str("content-length")
            .and_then(|len| len.trim().parse::<u64>().ok());
        if !declared.is_some_and(|len| len > self.max as u64) {
            return Flow::Continue;
        }
        res.status(StatusCode::PAYLOAD_TOO_LARGE)
            .close()
            .header("Content-Type", self.refusal.0)
            .body(self.refusal.1);
        Flow::Stop
    }

    #[inline]
    fn body_limit(&self, _req: &Request<'_>) -> Option<usize> {
        Some(self.max)
    }
}
