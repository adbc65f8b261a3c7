//! `AtHead`: run a layer's `before` from the request head, before the body is read.

use super::{Flow, Middleware};
use crate::{Request, Response};

/// Runs the wrapped layer's [`before`](Middleware::before) at head time, as
/// its [`on_head`](Middleware::on_head): before keel reads the request body,
/// with the body empty. For a check written as `before` that needs only the
/// head (an `Authorization` header, a cookie), so that a refused client
/// costs the server its head and not its body. Its own `on_head`,
/// `body_limit` and `after` run as they would unwrapped.
///
/// # Cost
///
/// None beyond the wrapped layer's; allocates nothing.
///
/// # Examples
///
/// ```
/// use keel::middleware::{AtHead, Flow, HandlerExt, Middleware};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, StatusCode};
///
/// struct RequireAuth;
///
/// impl Middleware for RequireAuth {
///     fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
///         if req.header("authorization").is_some() {
///             return Flow::Continue;
///         }
///         res.status(StatusCode::UNAUTHORIZED).body(b"");
///         Flow::Stop
///     }
/// }
///
/// let upload = |req: &Request<'_>, res: &mut Response<'_>| res.body(req.body());
/// let mut conn = MemoryConn::new(upload.with(AtHead(RequireAuth)));
/// // The 401 comes from the head: the 1 MB the client announced is never read.
/// conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
/// assert!(conn.recv().starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
/// assert!(conn.is_closed());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AtHead<M>(pub M);

impl<M: Middleware> Middleware for AtHead<M> {
    #[inline]
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        match self.0.on_head(req, res) {
            Flow::Continue => self.0.before(req, res),
            Flow::Stop => Flow::Stop,
        }
    }

    #[inline]
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        self.0.body_limit(req)
    }

    #[inline]
    fn after(&self, req: &Request<'_>, res: &mut Response<'_>) {
        self.0.after(req, res)
    }
}
