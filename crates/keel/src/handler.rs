//! The handler trait: what a server calls for each request.

use crate::middleware::Flow;
use crate::{Request, Response};
use std::sync::Arc;

/// Answers requests. Called on a worker thread for each request, with the
/// request borrowed from the connection's buffer and a writer into its output
/// buffer; must not block (it holds up every connection of that worker).
///
/// Any `Fn(&Request, &mut Response)` closure that is `Send + Sync + 'static`
/// is a handler:
///
/// ```
/// use keel::{Handler, Request, Response};
/// fn assert_handler(_: impl Handler) {}
/// assert_handler(|req: &Request<'_>, res: &mut Response<'_>| {
///     res.body(req.path().as_bytes());
/// });
/// ```
///
/// A panic inside `handle` is caught: the client gets `500` and the
/// connection closes; the worker goes on.
///
/// # Refusing before reading
///
/// Two more methods, with defaults that accept everything, let a handler
/// decide from the request head alone, before keel reads one byte of the
/// body: [`on_head`](Handler::on_head) may answer the request itself (a
/// `401`, a `429`), and [`body_limit`](Handler::body_limit) sets the largest
/// body keel reads for it. The [router](crate::Router) and
/// [middleware](crate::middleware) forward both to the route's handler and
/// layers, so most applications never implement them directly.
///
/// ```
/// use keel::middleware::Flow;
/// use keel::testing::MemoryConn;
/// use keel::{Handler, Request, Response, StatusCode};
///
/// /// Takes uploads of up to 64 bytes, from clients that say who they are.
/// struct Upload;
///
/// impl Handler for Upload {
///     fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
///         if req.header("authorization").is_some() {
///             return Flow::Continue;
///         }
///         res.status(StatusCode::UNAUTHORIZED).body(b"");
///         Flow::Stop
///     }
///
///     fn body_limit(&self, _: &Request<'_>) -> Option<usize> {
///         Some(64)
///     }
///
///     fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
///         res.body(format!("{} bytes", req.body().len()).as_bytes());
///     }
/// }
///
/// let mut conn = MemoryConn::new(Upload);
/// // Refused from the head: no 100 Continue, and the connection closes
/// // rather than read a body nobody wants.
/// conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{reply}");
/// assert!(reply.contains("\r\nConnection: close\r\n") && conn.is_closed());
///
/// let mut conn = MemoryConn::new(Upload);
/// conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nContent-Length: 65\r\n\r\n");
/// assert!(conn.recv().starts_with(b"HTTP/1.1 413 Content Too Large\r\n"));
///
/// let mut conn = MemoryConn::new(Upload);
/// conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nContent-Length: 3\r\n\r\nabc");
/// assert!(conn.recv().ends_with(b"\r\n\r\n3 bytes"));
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Writes the response to `req` into `res`.
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>);

    /// Runs once per request as soon as its head is parsed, before its body
    /// is read and before [`handle`](Handler::handle); `req` has the head
    /// only (its [`body`](Request::body) is empty). Return
    /// [`Flow::Continue`] to go on (writing nothing: what a continuing hook
    /// writes is dropped), or write the whole response and return
    /// [`Flow::Stop`]: `handle` is then not called, the body is never read,
    /// and when the request has one the response says `Connection: close`
    /// and keel closes the connection after it (the unread body is never
    /// taken for a next request). An `Expect: 100-continue` client gets its
    /// `100 Continue` only once this returned `Continue`.
    ///
    /// The answer is written here and now: it cannot be
    /// [deferred](Response::defer). The default continues. A panic here is
    /// answered like one in `handle`.
    #[inline]
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let _ = (req, res);
        Flow::Continue
    }

    /// The largest body, in bytes after chunked decoding, keel reads for
    /// `req` (its head only, as in [`on_head`](Handler::on_head)), in place
    /// of [`Config::max_body`](crate::Config::max_body); `None`, the
    /// default, keeps `max_body`. Asked after `on_head` continued, and only
    /// for requests that have a body. A larger `Content-Length` is answered
    /// `413` at once; a chunked body as soon as its decoded size passes.
    #[inline]
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        let _ = req;
        None
    }

    /// Whether `req`'s body is streamed rather than buffered (asked from the
    /// head, after [`on_head`](Handler::on_head) continued, for requests
    /// that have a body). When `true`, [`handle`](Handler::handle) runs as
    /// soon as the head is in, with an empty [`Request::body`], and takes
    /// the body as it arrives with
    /// [`Response::read_body`](crate::Response::read_body) or
    /// [`Response::body_reader`](crate::Response::body_reader); the body
    /// limit is [`body_limit`](Handler::body_limit) when set, else none (a
    /// streamed body costs no memory however large it is). The default is
    /// `false`; [`Router::stream_body`](crate::Router::stream_body) sets it
    /// for one route.
    #[inline]
    fn streams_body(&self, req: &Request<'_>) -> bool {
        let _ = req;
        false
    }
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, &mut Response<'_>) + Send + Sync + 'static,
{
    #[inline]
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        self(req, res)
    }
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    #[inline]
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        (**self).handle(req, res)
    }

    #[inline]
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        (**self).on_head(req, res)
    }

    #[inline]
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        (**self).body_limit(req)
    }

    #[inline]
    fn streams_body(&self, req: &Request<'_>) -> bool {
        (**self).streams_body(req)
    }
}

/// The smaller of two optional body limits; `None` is no opinion.
pub(crate) fn tighter(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
