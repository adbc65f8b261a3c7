//! `Timeout`: a deadline for the deferred responses of some routes.

use super::{Flow, Middleware};
use crate::{Request, Response};
use std::time::Duration;

/// Gives the routes it wraps their own deadline for a deferred answer
/// ([`Response::defer`], [`Response::offload`]): when the answer has not come
/// after `after`, the server sends `503 Service Unavailable` with
/// `Connection: close` in its place, and the late answer is dropped. Other
/// routes keep [`Config::deferred_timeout`](crate::Config::deferred_timeout).
/// Responses written inline by the handler are not affected.
///
/// # Cost
///
/// One field set per request; allocates nothing.
///
/// # Examples
///
/// ```
/// use keel::middleware::{HandlerExt, Timeout};
/// use keel::{Request, Response, Router};
/// use std::time::Duration;
///
/// let slow_lookup = |_: &Request<'_>, res: &mut Response<'_>| {
///     res.offload(|res| res.body(b"found"));
/// };
/// let routes = Router::new()
///     .get("/lookup", slow_lookup.with(Timeout::new(Duration::from_millis(250))))
///     .build()?;
/// # drop(routes);
/// # Ok::<(), keel::RouteError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Timeout {
    after: Duration,
}

impl Timeout {
    /// Deferred answers get `after` to arrive.
    pub fn new(after: Duration) -> Self {
        Timeout { after }
    }

    /// The deadline.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl Middleware for Timeout {
    fn before(&self, _req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        res.deferred_timeout(self.after);
        Flow::Continue
    }
}
