//! Middleware: layers that wrap a [`Handler`] and run before and after it.
//!
//! A [`Middleware`] has two hooks, [`before`](Middleware::before) and
//! [`after`](Middleware::after), and two head-time ones that run before the
//! request body is read: [`on_head`](Middleware::on_head) and
//! [`body_limit`](Middleware::body_limit) (see [Refusing before
//! reading](#refusing-before-reading)). [`HandlerExt::with`] wraps any handler (a
//! closure, a [`Routes`](crate::Routes), another layer) in one, and the
//! result is a [`Layered`] handler that can be wrapped again:
//!
//! ```
//! use keel::middleware::{BodyLimit, HandlerExt, RequestId};
//! use keel::testing::MemoryConn;
//! use keel::{Request, Response};
//!
//! let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"hi"))
//!     .with(BodyLimit::new(16))
//!     .with(RequestId::new());
//! let mut conn = MemoryConn::new(app);
//! conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-123\r\n\r\n");
//! let reply = String::from_utf8(conn.recv()).unwrap();
//! assert!(reply.contains("\r\nX-Request-Id: abc-123\r\n"));
//! assert!(reply.ends_with("\r\n\r\nhi"));
//! ```
//!
//! # Order
//!
//! The last layer added is the outermost: with `h.with(a).with(b)`, a
//! request runs `b.before`, `a.before`, `h`, `a.after`, `b.after`.
//!
//! When a `before` returns [`Flow::Stop`] (it wrote the whole response: a
//! CORS preflight answer), everything inside that layer is skipped: the
//! inner layers' hooks and the handler. That layer's own `after` and the
//! `after` of every layer outside it still run, so an access log added last
//! sees the requests a rate limit refused (an `on_head` that stops, below,
//! works the same way).
//!
//! # Refusing before reading
//!
//! keel calls every layer's [`on_head`](Middleware::on_head) (outermost
//! first) as soon as a request head is parsed, before one byte of its body
//! is read, and then asks for the [`body_limit`](Middleware::body_limit).
//! A check that needs only the head (authentication, a rate limit, a body
//! limit) belongs there: a refused request costs the server its head, not
//! its body. [`RateLimit`] and [`BodyLimit`] work this way; [`AtHead`] moves
//! an existing layer's `before` to head time. When an `on_head` stops, the
//! inner layers and the handler are skipped, and the `after` of that layer
//! and of every layer outside it run (with the body empty), as for `before`.
//! The `before` of the layers outside it has not run yet, so headers they
//! add there ([`RequestId`], [`Cors`]) are not on such a refusal.
//!
//! # Headers go in `before`
//!
//! A [`Response`] writes its head when the body begins, and panics when a
//! header is added after that. A layer that adds response headers
//! ([`RequestId`], [`Cors`]) therefore adds them in `before`, ahead of the
//! handler's own. In `after` the handler has returned: the response may be
//! complete, still buffering, streaming, or [deferred](Response::defer)
//! (then its status is not known yet: [`Response::on_deferred_end`] tells
//! it later); `after` is for observing ([`AccessLog`]), not for changing
//! the head.
//!
//! # Rewriting a finished body: hold the head
//!
//! The one way to change the head in `after`: a layer calls
//! [`Response::hold`] in `before`, so that a body given with
//! [`body`](Response::body), [`body_bytes`](Response::body_bytes) or
//! [`write`](Response::write) is buffered and its head left unwritten. In
//! `after`, [`Response::held`] gives the status, the header lines and the
//! body, to read and rewrite ([`Held::set_body`](crate::Held::set_body),
//! [`add_header`](crate::Held::add_header),
//! [`remove_header`](crate::Held::remove_header)); `Content-Length` is
//! computed when the response finishes. A streamed, chunked or deferred
//! response still writes its head as it starts, and `held` then returns
//! `None`. [`Compression`] works this way. A response no layer holds takes
//! its usual path (a large `body_bytes` is sent from its own buffer).
//!
//! # Cost
//!
//! A layer is a static wrapper: no boxing, no dynamic call, nothing
//! allocated per request. [`RequestId`], [`Cors`], [`BodyLimit`],
//! [`Timeout`] and [`AccessLog`] (after warm-up) allocate nothing per request;
//! [`RateLimit`] allocates only when a client it does not know appears;
//! [`Compression`] only on a thread's first compressed response (its deflate
//! state) and when a body larger than any before needs a larger buffer.
//!
//! A panicking handler unwinds through the layers without running their
//! `after` hooks; keel answers the request with `500` itself.

mod access_log;
mod at_head;
mod body_limit;
mod clock;
#[cfg(feature = "compression")]
mod compress;
mod cors;
mod log_line;
mod log_writer;
mod rate_limit;
mod request_id;
mod timeout;

pub use access_log::{AccessLog, LogFormat};
pub use at_head::AtHead;
pub use body_limit::BodyLimit;
pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "compression")]
pub use compress::{Compression, DEFAULT_LEVEL};
pub use cors::Cors;
pub use log_writer::AccessLogHandle;
pub use rate_limit::{Cidr, CidrError, ForwardedClient, RateLimit, RateLimitKey, MAX_KEY_LEN};
pub use request_id::{RequestId, RequestIdValue, MAX_ID_LEN};
pub use timeout::Timeout;

use crate::handler::tighter;
use crate::{Handler, Request, Response};
use std::sync::Arc;

/// What a layer's [`before`](Middleware::before) decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on to the inner layers and the handler.
    Continue,
    /// The response is written: skip the inner layers and the handler.
    Stop,
}

/// A layer around a handler: [`before`](Middleware::before) runs ahead of
/// it, [`after`](Middleware::after) once it returned. Both default to doing
/// nothing. Wrap a handler with [`HandlerExt::with`]; the [module
/// docs](self) give the order of several layers.
///
/// Like a [`Handler`], a middleware is shared by every worker thread and
/// called for many requests at once, so it keeps no per-request state in
/// itself (a thread-local is the place: `before`, the handler and `after` of
/// one request run on the same thread).
///
/// ```
/// use keel::middleware::{Flow, HandlerExt, Middleware};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, StatusCode};
///
/// /// Refuses requests without an `Authorization` header.
/// struct RequireAuth;
///
/// impl Middleware for RequireAuth {
///     fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
///         if req.header("authorization").is_some() {
///             return Flow::Continue;
///         }
///         res.status(StatusCode::UNAUTHORIZED).body(b"who are you?\n");
///         Flow::Stop
///     }
/// }
///
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"secret")).with(RequireAuth);
/// let mut conn = MemoryConn::new(app);
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
/// assert!(conn.recv().starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\nsecret"));
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Runs before the handler: may read the request, add response headers,
    /// or write a whole response and return [`Flow::Stop`] to skip the
    /// handler (and the layers inside this one).
    #[inline]
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let _ = (req, res);
        Flow::Continue
    }

    /// Runs once the request head is parsed, before its body is read (the
    /// request's [`body`](Request::body) is empty): may write a whole
    /// response and return [`Flow::Stop`], as [`Handler::on_head`] does.
    /// The default continues.
    #[inline]
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let _ = (req, res);
        Flow::Continue
    }

    /// The largest body keel reads for `req` through this layer, as
    /// [`Handler::body_limit`]; with limits on several layers and on the
    /// handler, the smallest applies. The default, `None`, sets none.
    #[inline]
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        let _ = req;
        None
    }

    /// Runs after the handler returned, or after this layer's own `before`
    /// (or `on_head`) stopped. The response may be complete, buffering, streaming or
    /// deferred; adding a header here panics once the body has begun (a
    /// layer that [held](Response::hold) the response rewrites it through
    /// [`Response::held`] instead: see the [module docs](self)).
    #[inline]
    fn after(&self, req: &Request<'_>, res: &mut Response<'_>) {
        let _ = (req, res);
    }
}

impl<M: Middleware + ?Sized> Middleware for Arc<M> {
    #[inline]
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        (**self).before(req, res)
    }

    #[inline]
    fn after(&self, req: &Request<'_>, res: &mut Response<'_>) {
        (**self).after(req, res)
    }

    #[inline]
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        (**self).on_head(req, res)
    }

    #[inline]
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        (**self).body_limit(req)
    }
}

/// A handler wrapped in one middleware layer: itself a [`Handler`]. Made by
/// [`HandlerExt::with`].
#[derive(Clone, Debug)]
pub struct Layered<M, H> {
    middleware: M,
    inner: H,
}

impl<M, H> Layered<M, H> {
    /// The layer.
    pub fn middleware(&self) -> &M {
        &self.middleware
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<M: Middleware, H: Handler> Handler for Layered<M, H> {
    #[inline]
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        if self.middleware.before(req, res) == Flow::Continue {
            self.inner.handle(req, res);
        }
        self.middleware.after(req, res);
    }

    #[inline]
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let flow = match self.middleware.on_head(req, res) {
            Flow::Continue => self.inner.on_head(req, res),
            Flow::Stop => Flow::Stop,
        };
        if flow == Flow::Stop {
            // The request ends here: this layer sees it end, as it sees a
            // refusal by `before` (an access log outside a rate limit).
            self.middleware.after(req, res);
        }
        flow
    }

    #[inline]
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        tighter(self.middleware.body_limit(req), self.inner.body_limit(req))
    }

    #[inline]
    fn streams_body(&self, req: &Request<'_>) -> bool {
        self.inner.streams_body(req)
    }
}

/// Adds [`with`](HandlerExt::with) to every [`Handler`].
pub trait HandlerExt: Handler + Sized {
    /// Wraps this handler in `middleware`, which becomes the outermost layer:
    /// its `before` runs first and its `after` last. Allocates nothing.
    ///
    /// ```
    /// use keel::middleware::{Cors, HandlerExt};
    /// use keel::{Handler, Request, Response};
    ///
    /// fn hello(_: &Request<'_>, res: &mut Response<'_>) {
    ///     res.body(b"hello");
    /// }
    /// let app: keel::middleware::Layered<Cors, _> = hello.with(Cors::any_origin());
    /// # fn is_handler(_: &impl Handler) {}
    /// # is_handler(&app);
    /// ```
    fn with<M: Middleware>(self, middleware: M) -> Layered<M, Self> {
        Layered {
            middleware,
            inner: self,
        }
    }
}

impl<H: Handler> HandlerExt for H {}
