//! `BodyLimit`: a smaller body limit for some routes.

use super::{Flow, Middleware};
use crate::{Request, Response, StatusCode};

/// Refuses a request whose body is larger than a limit below the server-wide
/// [`Config::max_body`](crate::Config::max_body): `413 Content Too Large`
/// with `Connection: close`, and the handler is not called.
///
/// keel has read the whole body (up to `max_body`) by the time a handler
/// runs, so this layer saves the handler's work on an oversized body, not
/// the reading of it; `max_body` is what bounds memory and bandwidth. Wrap
/// the routes that take small bodies (a JSON API) and keep `max_body` for
/// the few that take large ones (uploads).
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
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        if req.body().len() <= self.max {
            return Flow::Continue;
        }
        res.status(StatusCode::PAYLOAD_TOO_LARGE)
            .close()
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(b"request body too large\n");
        Flow::Stop
    }
}
