//! The handler trait: what a server calls for each request.

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
pub trait Handler: Send + Sync + 'static {
    /// Writes the response to `req` into `res`.
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>);
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
}
