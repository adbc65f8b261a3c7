//! A built route table: the lookup, and dispatch as a [`Handler`].

use super::resolved;
use super::tree::{Captures, Endpoint, Tree};
use super::MAX_PARAMS;
use crate::handler::tighter;
use crate::middleware::Flow;
use crate::{Handler, Request, Response, StatusCode};
use std::fmt;

/// A checked route table, made by [`Router::build`](crate::Router::build):
/// a [`Handler`] that hands each request to the route its path and method
/// select (see [the matching rule](crate::Router#which-route-wins) in the
/// module docs), with the captured parameters readable through
/// [`Request::param`].
///
/// Dispatching allocates nothing: one walk of the tree, parameters as slices
/// of the path in a stack array, one dynamic call to the handler.
///
/// ```
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, Router};
///
/// let routes = Router::new()
///     .get("/links/:slug", |req: &Request<'_>, res: &mut Response<'_>| {
///         res.body(req.param("slug").unwrap_or_default().as_bytes());
///     })
///     .build()?;
/// let mut conn = MemoryConn::new(routes);
/// conn.send(b"GET /links/x1 HTTP/1.1\r\nHost: a\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\nx1"));
/// conn.send(b"OPTIONS /links/x1 HTTP/1.1\r\nHost: a\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 204 No Content\r\n"));
/// assert!(reply.contains("\r\nAllow: GET, HEAD, OPTIONS\r\n"));
/// # Ok::<(), keel::RouteError>(())
/// ```
pub struct Routes {
    tree: Tree,
    handlers: Box<[Box<dyn Handler>]>,
    /// Each handler's limit from [`Router::body_limit`](crate::Router::body_limit).
    limits: Box<[Option<usize>]>,
    fallback: Option<Box<dyn Handler>>,
}

impl Routes {
    pub(super) fn new(
        tree: Tree,
        handlers: Box<[Box<dyn Handler>]>,
        limits: Box<[Option<usize>]>,
        fallback: Option<Box<dyn Handler>>,
    ) -> Self {
        Routes {
            tree,
            handlers,
            limits,
            fallback,
        }
    }

    /// The answer when `req`'s path matched but not its method: `204` with
    /// `Allow` for `OPTIONS`, else `405` with `Allow`.
    fn answer_method(allow: &str, req: &Request<'_>, res: &mut Response<'_>) {
        let status = if req.method() == "OPTIONS" {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::METHOD_NOT_ALLOWED
        };
        res.status(status).header("Allow", allow).body(b"");
    }

    fn identity(&self) -> *const () {
        (self as *const Routes).cast()
    }

    /// The route whose pattern matches `path` (method aside), with the
    /// parameters it captures; `None` when no pattern matches. `path` is
    /// matched as it is: pass [`Request::path`] (raw, without the query).
    ///
    /// This is the lookup [`Routes`] runs for every request, for callers that
    /// dispatch themselves or want the matched pattern (for metrics, say).
    /// Allocates nothing: the captures are held in the returned value.
    ///
    /// ```
    /// use keel::{Request, Response, Router};
    ///
    /// fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let routes = Router::new()
    ///     .get("/repos/:owner/:repo", h)
    ///     .delete("/repos/:owner/:repo", h)
    ///     .build()?;
    /// let m = routes.at("/repos/rust-lang/rust").unwrap();
    /// assert_eq!(m.pattern(), "/repos/:owner/:repo");
    /// assert_eq!(m.params(), &[("owner", "rust-lang"), ("repo", "rust")]);
    /// assert!(m.handler("HEAD").is_some() && m.handler("POST").is_none());
    /// assert_eq!(m.allow(), "DELETE, GET, HEAD, OPTIONS");
    /// assert!(routes.at("/repos/rust-lang").is_none());
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    #[inline]
    pub fn at<'r, 'p>(&'r self, path: &'p str) -> Option<PathMatch<'r, 'p>> {
        let mut captures = Captures::new();
        let (_, endpoint) = self.tree.find(path, &mut captures)?;
        Some(PathMatch {
            endpoint,
            handlers: &self.handlers,
            captures,
        })
    }
}

impl Handler for Routes {
    /// Dispatches `req`: its route's handler for its method (the `GET` one
    /// for a `HEAD`), else `204` with `Allow` for `OPTIONS`, else `405` with
    /// `Allow`; the fallback (or an empty `404`) when no pattern matches.
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        // Routed once: what `on_head` resolved for this request, if it did.
        if let Some(resolved) = resolved::recall(self.identity(), req.target) {
            let handler = &self.handlers[resolved.handler as usize];
            let names = &self.tree.endpoints[resolved.endpoint as usize].params;
            let mut params = [("", ""); MAX_PARAMS];
            let mut count = 0;
            for ((slot, name), value) in params
                .iter_mut()
                .zip(names.iter())
                .zip(resolved.values(req.target))
            {
                *slot = (name, value);
                count += 1;
            }
            return handler.handle(&req.with_params(&params[..count]), res);
        }
        let Some(found) = self.at(req.path()) else {
            match &self.fallback {
                Some(fallback) => fallback.handle(req, res),
                None => res.status(StatusCode::NOT_FOUND).body(b""),
            }
            return;
        };
        match found.handler(req.method()) {
            Some(handler) => handler.handle(&req.with_params(found.params()), res),
            None => Routes::answer_method(found.allow(), req, res),
        }
    }

    /// Resolves the route from the head and runs its handler's `on_head`
    /// (the fallback's when no pattern matches). What the router answers
    /// itself (`404` without a fallback, `405`, `204` for `OPTIONS`) it
    /// answers here, so a body sent to a missing route is never read. The
    /// route found is kept for `handle` of the same request: a request is
    /// routed once.
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let path = req.path();
        let mut captures = Captures::new();
        let Some((index, endpoint)) = self.tree.find(path, &mut captures) else {
            return match &self.fallback {
                Some(fallback) => fallback.on_head(req, res),
                None => {
                    res.status(StatusCode::NOT_FOUND).body(b"");
                    Flow::Stop
                }
            };
        };
        let params = &captures.slots[..captures.len];
        let Some(handler) = endpoint.handler(req.method()) else {
            Routes::answer_method(&endpoint.allow, req, res);
            return Flow::Stop;
        };
        let values = params.iter().map(|&(_, value)| value);
        resolved::remember(self.identity(), req.target, index, handler, values);
        self.handlers[handler as usize].on_head(&req.with_params(params), res)
    }

    /// The route's limit from [`Router::body_limit`](crate::Router::body_limit)
    /// and its handler's own [`Handler::body_limit`], the smaller of the two.
    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        let Some(found) = self.at(req.path()) else {
            return self.fallback.as_ref().and_then(|f| f.body_limit(req));
        };
        let index = found.endpoint.handler(req.method())? as usize;
        let own = self.handlers[index].body_limit(&req.with_params(found.params()));
        tighter(self.limits[index], own)
    }

    fn streams_body(&self, req: &Request<'_>) -> bool {
        let Some(found) = self.at(req.path()) else {
            return self.fallback.as_ref().is_some_and(|f| f.streams_body(req));
        };
        found
            .handler(req.method())
            .is_some_and(|handler| handler.streams_body(&req.with_params(found.params())))
    }
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field(
                "paths",
                &self
                    .tree
                    .endpoints
                    .iter()
                    .map(|e| (&*e.pattern, &*e.allow))
                    .collect::<Vec<_>>(),
            )
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// A path matched by [`Routes::at`]: the route's pattern, methods and
/// `Allow` value (borrowed from the [`Routes`], lifetime `'r`) and the
/// parameters captured from the path (lifetime `'p`). Holds its captures in
/// a fixed array: no allocation.
///
/// ```
/// use keel::{Request, Response, Router};
///
/// fn h(_: &Request<'_>, _: &mut Response<'_>) {}
/// let routes = Router::new().get("/files/*path", h).build()?;
/// let m = routes.at("/files/a/b.txt").unwrap();
/// assert_eq!(m.param("path"), Some("a/b.txt"));
/// # Ok::<(), keel::RouteError>(())
/// ```
pub struct PathMatch<'r, 'p> {
    endpoint: &'r Endpoint,
    handlers: &'r [Box<dyn Handler>],
    captures: Captures<'r, 'p>,
}

impl<'r, 'p> PathMatch<'r, 'p> {
    /// The pattern that matched, as registered (with any nest prefix), e.g.
    /// `/links/:slug`.
    ///
    /// ```
    /// # use keel::{Request, Response, Router};
    /// # fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let routes = Router::new().get("/links/:slug", h).get("/links/new", h).build()?;
    /// assert_eq!(routes.at("/links/new").unwrap().pattern(), "/links/new");
    /// assert_eq!(routes.at("/links/old").unwrap().pattern(), "/links/:slug");
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn pattern(&self) -> &'r str {
        &self.endpoint.pattern
    }

    /// The captured parameters in path order, as (name, raw value): what
    /// [`Request::with_params`] takes.
    ///
    /// ```
    /// # use keel::{Request, Response, Router};
    /// # fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let routes = Router::new().get("/:a/x/*b", h).build()?;
    /// assert_eq!(routes.at("/1/x/2/3").unwrap().params(), &[("a", "1"), ("b", "2/3")]);
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn params(&self) -> &[(&'r str, &'p str)] {
        &self.captures.slots[..self.captures.len]
    }

    /// The value captured for the parameter `name`.
    ///
    /// ```
    /// # use keel::{Request, Response, Router};
    /// # fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let routes = Router::new().get("/users/:user", h).build()?;
    /// let m = routes.at("/users/ada").unwrap();
    /// assert_eq!((m.param("user"), m.param("id")), (Some("ada"), None));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn param(&self, name: &str) -> Option<&'p str> {
        self.params()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }

    /// The handler routed for `method` on this path; for `HEAD` without a
    /// route of its own, the `GET` handler. `None` otherwise, `OPTIONS`
    /// included when no route was given for it (the router then answers
    /// `204` itself).
    ///
    /// ```
    /// # use keel::{Request, Response, Router};
    /// # fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let routes = Router::new().get("/", h).build()?;
    /// let m = routes.at("/").unwrap();
    /// assert!(m.handler("GET").is_some() && m.handler("HEAD").is_some());
    /// assert!(m.handler("OPTIONS").is_none() && m.handler("get").is_none());
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    #[inline]
    pub fn handler(&self, method: &str) -> Option<&'r dyn Handler> {
        let index = self.endpoint.handler(method)?;
        Some(&*self.handlers[index as usize])
    }

    /// The methods this path accepts, as the `Allow` header value:
    /// alphabetical, with `HEAD` when it has `GET`, and `OPTIONS`. Built
    /// once by [`Router::build`](crate::Router::build).
    ///
    /// ```
    /// # use keel::{Request, Response, Router};
    /// # fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let routes = Router::new().post("/x", h).route(&["PURGE"], "/x", h).build()?;
    /// assert_eq!(routes.at("/x").unwrap().allow(), "OPTIONS, POST, PURGE");
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn allow(&self) -> &'r str {
        &self.endpoint.allow
    }
}

impl fmt::Debug for PathMatch<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathMatch")
            .field("pattern", &self.pattern())
            .field("params", &self.params())
            .field("allow", &self.allow())
            .finish()
    }
}
