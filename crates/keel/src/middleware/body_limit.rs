//! `BodyLimit`: a body limit for some routes, applied before the body is read.

use super::Middleware;
use crate::Request;

/// Sets the largest request body the handlers it wraps accept, in place of
/// the server-wide [`Config::max_body`](crate::Config::max_body): larger
/// gets `413 Content Too Large` with `Connection: close`, and the handler is
/// not called.
///
/// The limit is applied before the body is read (see
/// [`Middleware::body_limit`]): a `Content-Length` over it is refused from
/// the head, and a chunked body as soon as its decoded size passes it, so
/// the oversized body is never buffered. Wrapped around a handler that sets
/// its own limit (another `BodyLimit` inside, a
/// [`Router::body_limit`](crate::Router::body_limit)), the smaller applies.
///
/// # Cost
///
/// One length comparison; allocates nothing.
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
}

impl BodyLimit {
    /// Refuses bodies longer than `max` bytes (after chunked decoding).
    pub fn new(max: usize) -> Self {
        BodyLimit { max }
    }

    /// The limit in bytes.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Middleware for BodyLimit {
    #[inline]
    fn body_limit(&self, _req: &Request<'_>) -> Option<usize> {
        Some(self.max)
    }
}
