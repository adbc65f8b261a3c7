//! Routing: pick a handler by method and path, capture path parameters.
//!
//! [`Router`] collects routes; [`Router::build`] checks them all and returns
//! [`Routes`], a [`Handler`] that dispatches each request to the route its
//! path and method select. The rules (patterns, which route wins, what
//! the router answers by itself) are on [`Router`].

mod error;
mod pattern;
mod resolved;
mod routes;
mod tree;

pub use error::RouteError;
pub(crate) use resolved::forget as forget_resolved;
pub use routes::{PathMatch, Routes};

use crate::http1::parse::is_token_byte;
use crate::{Handler, Request, Response};
use std::fmt;
use tree::TreeBuilder;

/// The most parameters one pattern may have, its catch-all included.
/// [`Router::build`] refuses a pattern with more
/// ([`RouteError::TooManyParams`]); the captures of a lookup live in an array
/// of this size on the stack.
pub const MAX_PARAMS: usize = 8;

/// A route table being put together: method and pattern to handler, nested
/// routers, a fallback. Nothing is checked until [`build`](Router::build),
/// so the chain reads without a `?` at every step.
///
/// Handlers are anything implementing [`Handler`], closures
/// `|req: &Request<'_>, res: &mut Response<'_>|` included.
///
/// Adding routes and building allocate (the router owns a copy of each
/// pattern and a boxed handler); the built [`Routes`] never does (see
/// [Cost](#cost)).
///
/// ```
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, Router, StatusCode};
///
/// fn list(_: &Request<'_>, res: &mut Response<'_>) { res.body(b"all links"); }
/// fn create(_: &Request<'_>, res: &mut Response<'_>) { res.status(StatusCode::CREATED); }
///
/// let api = Router::new().get("/links", list).post("/links", create);
/// let routes = Router::new()
///     .get("/", |_: &Request<'_>, res: &mut Response<'_>| res.body(b"home"))
///     .nest("/api", api)
///     .build()?;
///
/// let mut conn = MemoryConn::new(routes);
/// conn.send(b"POST /api/links HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
/// assert!(conn.recv().starts_with(b"HTTP/1.1 201 Created\r\n"));
/// conn.send(b"GET /api/links HTTP/1.1\r\nHost: a\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\nall links"));
/// # Ok::<(), keel::RouteError>(())
/// ```
///
/// # Patterns
///
/// A pattern is a `/`-separated list of segments, starting with `/`:
///
/// | segment | matches | `req.param(..)` |
/// | --- | --- | --- |
/// | `links` | exactly `links` | |
/// | `:slug` | any one non-empty segment | the segment |
/// | `*path` (last only) | the rest of the path: empty, one segment, or several with their slashes | the rest |
///
/// So `/static/*path` matches `/static/` (`path` = `""`) and `/static/a/b.css`
/// (`path` = `"a/b.css"`), but not `/static`. A segment that starts with `:`
/// or `*` is always a parameter; `:` or `*` elsewhere in a segment is text.
///
/// Matching is **strict**: the path is [`Request::path`](crate::Request::path), raw (not
/// percent-decoded, so `/a%2Fb` is one segment `a%2Fb` and a parameter holds
/// `%2F` as sent: decode it with [`percent_decode`](crate::percent_decode)),
/// and every slash counts: `/links` and `/links/` are different paths (`/` is
/// one empty segment, which only a static `/` or a catch-all matches), as are
/// `/a//b` and `/a/b`. Register both forms, or redirect, if you want both.
/// A target that is not a path (`OPTIONS *`) matches nothing.
///
/// # Which route wins
///
/// Several patterns can match one path (`/users/new`, `/users/:id`,
/// `/users/*rest`). The winner is decided on the path alone, segment by
/// segment from the left: at the first segment where two matching patterns
/// differ, a static segment beats a parameter, which beats a catch-all. The
/// lookup is a depth-first search in that order that backtracks out of a
/// branch that cannot match the rest of the path, so with `/a/b`, `/:x/b`,
/// `/:x/c` and `/a/*rest`:
///
/// | path | route | why |
/// | --- | --- | --- |
/// | `/a/b` | `/a/b` | static `a` first, then static `b` |
/// | `/z/b` | `/:x/b` | no static `z` |
/// | `/a/c` | `/a/*rest` | static `a` first; under it `c` is caught |
/// | `/z/c` | `/:x/c` | |
///
/// Without `/a/*rest`, `/a/c` backtracks out of `a` and finds `/:x/c`.
///
/// Only then is the method looked at: if the path's route has no handler for
/// it, the answer is `405` even when a less specific pattern has one (as in
/// axum and most routers); a route is a resource, and its `Allow` header says
/// what it accepts. A lookup visits each node of the tree at most once.
///
/// # What the router answers itself
///
/// - no pattern matches: the [`fallback`](Router::fallback), by default an
///   empty `404 Not Found`;
/// - the path matches, the method doesn't: an empty `405 Method Not Allowed`
///   with `Allow` listing the path's methods;
/// - `HEAD` on a path with `GET` and no `HEAD` route: the `GET` handler, and
///   keel sends the head without the body;
/// - `OPTIONS` on a path without an `OPTIONS` route: `204 No Content` with
///   `Allow`.
///
/// `Allow` lists methods in alphabetical order, `HEAD` (when there is a
/// `GET`) and `OPTIONS` included, and is built once per path by `build`.
///
/// # Cost
///
/// Building allocates; matching and dispatching allocate nothing: parameters
/// are slices of the request's path held in a fixed array of [`MAX_PARAMS`]
/// slots on the stack, and the handler is one dynamic call.
///
/// # More examples
///
/// ```
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, Router};
///
/// fn show(req: &Request<'_>, res: &mut Response<'_>) {
///     res.body(req.param("slug").unwrap_or_default().as_bytes());
/// }
/// let routes = Router::new()
///     .get("/links/:slug", show)
///     .get("/static/*path", |req: &Request<'_>, res: &mut Response<'_>| {
///         res.body(req.param("path").unwrap_or_default().as_bytes());
///     })
///     .build()?;
///
/// let mut conn = MemoryConn::new(routes);
/// conn.send(b"GET /links/abc HTTP/1.1\r\nHost: a\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\nabc"));
/// conn.send(b"GET /static/css/site.css HTTP/1.1\r\nHost: a\r\n\r\n");
/// assert!(conn.recv().ends_with(b"\r\n\r\ncss/site.css"));
/// conn.send(b"DELETE /links/abc HTTP/1.1\r\nHost: a\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
/// assert!(reply.contains("\r\nAllow: GET, HEAD, OPTIONS\r\n"));
/// # Ok::<(), keel::RouteError>(())
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    handlers: Vec<Box<dyn Handler>>,
    /// Each handler's body limit, set by `body_limit`; parallel to `handlers`.
    limits: Vec<Option<usize>>,
    fallback: Option<Box<dyn Handler>>,
    /// The first problem found by `nest` or `body_limit`, reported by `build`.
    nest_error: Option<RouteError>,
}

struct Route {
    methods: Vec<String>,
    pattern: String,
    /// Index into `handlers`.
    handler: u32,
}

impl Router {
    /// An empty router: every request gets the fallback (`404`).
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// let mut conn = MemoryConn::new(keel::Router::new().build()?);
    /// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes each of `methods` on `pattern` to `handler` (one handler shared
    /// by all of them). Methods are case-sensitive, as HTTP's are: `"GET"`.
    ///
    /// Problems with the pattern or a method are reported by
    /// [`build`](Router::build): [`RouteError::InvalidMethod`],
    /// [`RouteError::NoMethod`], and those of the pattern.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router};
    ///
    /// let routes = Router::new()
    ///     .route(&["GET", "PUT"], "/doc", |req: &Request<'_>, res: &mut Response<'_>| {
    ///         res.body(req.method().as_bytes());
    ///     })
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"PUT /doc HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nPUT"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn route(mut self, methods: &[&str], pattern: &str, handler: impl Handler) -> Self {
        let handler = self.add_handler(Box::new(handler));
        self.routes.push(Route {
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            pattern: pattern.to_owned(),
            handler,
        });
        self
    }

    /// Sets the largest request body the route added last accepts (all its
    /// methods), in place of [`Config::max_body`](crate::Config::max_body):
    /// one route may take large uploads while the server keeps a small
    /// default. keel applies it before reading the body, and only once the
    /// route's head-time checks ([`Handler::on_head`]: authentication, rate
    /// limits) accepted the request: a larger `Content-Length` gets `413` at
    /// once, a chunked body as soon as its decoded size passes the limit.
    /// A smaller limit set by the handler itself (a
    /// [`BodyLimit`](crate::middleware::BodyLimit) layer) still applies.
    ///
    /// Called before any route, [`build`](Router::build) fails with
    /// [`RouteError::BodyLimitWithoutRoute`].
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Config, Request, Response, Router};
    ///
    /// fn size(req: &Request<'_>, res: &mut Response<'_>) {
    ///     res.body(req.body().len().to_string().as_bytes());
    /// }
    /// let routes = Router::new()
    ///     .post("/note", size)
    ///     .post("/upload", size)
    ///     .body_limit(1 << 20)
    ///     .build()?;
    /// let config = Config { max_body: 16, ..Config::default() };
    /// let mut conn = MemoryConn::with_config(routes, config);
    /// conn.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n0123456789abcdefg");
    /// assert!(conn.recv().ends_with(b"\r\n\r\n17"));
    /// conn.send(b"POST /note HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n");
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 413 Content Too Large\r\n"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn body_limit(mut self, max: usize) -> Self {
        match self.limits.last_mut() {
            Some(limit) => *limit = Some(max),
            None => {
                self.nest_error
                    .get_or_insert(RouteError::BodyLimitWithoutRoute);
            }
        }
        self
    }

    /// Streams the request body of the route added last (all its methods)
    /// instead of buffering it: its handler runs as soon as the head is in
    /// and takes the body with [`Response::read_body`](crate::Response::read_body)
    /// or [`Response::body_reader`](crate::Response::body_reader) (see
    /// [`Handler::streams_body`]). Its body limit is the one
    /// [`body_limit`](Router::body_limit) sets, else none.
    ///
    /// Called before any route, [`build`](Router::build) fails with
    /// [`RouteError::BodyLimitWithoutRoute`].
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router};
    /// use std::io::Read;
    ///
    /// let routes = Router::new()
    ///     .post("/count", |_: &Request<'_>, res: &mut Response<'_>| {
    ///         let mut body = res.body_reader();
    ///         res.offload(move |res| {
    ///             let mut sink = Vec::new();
    ///             let n = body.read_to_end(&mut sink).unwrap_or(0);
    ///             res.body(n.to_string().as_bytes());
    ///         });
    ///     })
    ///     .stream_body()
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    /// conn.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    /// assert!(conn.settle(std::time::Duration::from_secs(5)));
    /// assert!(conn.recv().ends_with(b"\r\n\r\n11"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn stream_body(mut self) -> Self {
        match self.handlers.pop() {
            Some(handler) => self.handlers.push(Box::new(StreamedBody(handler))),
            None => {
                self.nest_error
                    .get_or_insert(RouteError::BodyLimitWithoutRoute);
            }
        }
        self
    }

    /// Routes `GET` (and so `HEAD`) on `pattern` to `handler`.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router};
    ///
    /// let routes = Router::new()
    ///     .get("/users/:user", |req: &Request<'_>, res: &mut Response<'_>| {
    ///         res.body(req.param("user").unwrap_or_default().as_bytes());
    ///     })
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"GET /users/ada HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nada"));
    /// conn.send(b"HEAD /users/ada HTTP/1.1\r\nHost: a\r\n\r\n");
    /// let head = String::from_utf8(conn.recv()).unwrap();
    /// assert!(head.contains("\r\nContent-Length: 3\r\n") && head.ends_with("\r\n\r\n"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn get(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&["GET"], pattern, handler)
    }

    /// Routes `POST` on `pattern` to `handler`.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router};
    ///
    /// let routes = Router::new()
    ///     .post("/echo", |req: &Request<'_>, res: &mut Response<'_>| res.body(req.body()))
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nhi"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn post(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&["POST"], pattern, handler)
    }

    /// Routes `PUT` on `pattern` to `handler`.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router, StatusCode};
    ///
    /// let routes = Router::new()
    ///     .put("/k/:key", |_: &Request<'_>, res: &mut Response<'_>| {
    ///         res.status(StatusCode::NO_CONTENT);
    ///     })
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"PUT /k/a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nv");
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 204 No Content\r\n"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn put(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&["PUT"], pattern, handler)
    }

    /// Routes `PATCH` on `pattern` to `handler`.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router};
    ///
    /// let routes = Router::new()
    ///     .patch("/k/:key", |req: &Request<'_>, res: &mut Response<'_>| {
    ///         res.body(req.param("key").unwrap_or_default().as_bytes());
    ///     })
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"PATCH /k/a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\na"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn patch(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&["PATCH"], pattern, handler)
    }

    /// Routes `DELETE` on `pattern` to `handler`.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router, StatusCode};
    ///
    /// let routes = Router::new()
    ///     .delete("/k/:key", |_: &Request<'_>, res: &mut Response<'_>| {
    ///         res.status(StatusCode::NO_CONTENT);
    ///     })
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"DELETE /k/a HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 204 No Content\r\n"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn delete(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(&["DELETE"], pattern, handler)
    }

    /// Mounts every route of `router` under `prefix`: its patterns are
    /// appended to the prefix as text, so `/links/:slug` nested under `/api`
    /// is `/api/links/:slug`, and `/` is `/api/` (not `/api`: matching is
    /// strict about slashes; route `/api` on this router if you want it).
    ///
    /// The prefix may hold parameters (`/users/:user`), which the nested
    /// handlers read like their own. `""` merges `router` into this one.
    /// Conflicts between the two are found by [`build`](Router::build) as if
    /// every route had been added here; so are a prefix that is neither `""`
    /// nor starts with `/` ([`RouteError::MissingLeadingSlash`]), one that
    /// ends with `/` ([`RouteError::PrefixEndsWithSlash`]), and a nested
    /// router with its own fallback ([`RouteError::NestedFallback`]). These
    /// nesting problems are reported before those of the routes.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router};
    ///
    /// let repo = Router::new().get("/issues/:number", |req: &Request<'_>, res: &mut Response<'_>| {
    ///     let p = |n| req.param(n).unwrap_or_default();
    ///     res.body(format!("{}/{}#{}", p("owner"), p("repo"), p("number")).as_bytes());
    /// });
    /// let routes = Router::new().nest("/repos/:owner/:repo", repo).build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"GET /repos/rust-lang/rust/issues/1 HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nrust-lang/rust#1"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn nest(mut self, prefix: &str, router: Router) -> Self {
        if self.nest_error.is_none() {
            self.nest_error = if !prefix.is_empty() && !prefix.starts_with('/') {
                Some(RouteError::MissingLeadingSlash {
                    pattern: prefix.to_owned(),
                })
            } else if prefix.ends_with('/') {
                Some(RouteError::PrefixEndsWithSlash {
                    prefix: prefix.to_owned(),
                })
            } else if router.fallback.is_some() {
                Some(RouteError::NestedFallback {
                    prefix: prefix.to_owned(),
                })
            } else {
                router.nest_error
            };
        }
        let offset = self.handlers.len() as u32;
        self.handlers.extend(router.handlers);
        self.limits.extend(router.limits);
        self.routes
            .extend(router.routes.into_iter().map(|route| Route {
                methods: route.methods,
                pattern: format!("{prefix}{}", route.pattern),
                handler: route.handler + offset,
            }));
        self
    }

    /// Answers requests whose path matches no pattern with `handler` instead
    /// of an empty `404 Not Found`. It sees the request without parameters.
    /// A path that matches under other methods gets `405`, not the fallback.
    ///
    /// ```
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, Router, StatusCode};
    ///
    /// let routes = Router::new()
    ///     .get("/", |_: &Request<'_>, res: &mut Response<'_>| res.body(b"home"))
    ///     .fallback(|req: &Request<'_>, res: &mut Response<'_>| {
    ///         res.status(StatusCode::NOT_FOUND).body(format!("no {}", req.path()).as_bytes());
    ///     })
    ///     .build()?;
    /// let mut conn = MemoryConn::new(routes);
    /// conn.send(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.recv().ends_with(b"\r\n\r\nno /nope"));
    /// # Ok::<(), keel::RouteError>(())
    /// ```
    pub fn fallback(mut self, handler: impl Handler) -> Self {
        self.fallback = Some(Box::new(handler));
        self
    }

    /// Checks every route and builds the lookup tree and each path's `Allow`
    /// value. Allocates; the [`Routes`] it returns never does.
    ///
    /// # Errors
    ///
    /// The first problem found (nesting problems first, then routes in the
    /// order they were added): a malformed pattern
    /// ([`MissingLeadingSlash`](RouteError::MissingLeadingSlash),
    /// [`EmptyParamName`](RouteError::EmptyParamName),
    /// [`CatchAllNotLast`](RouteError::CatchAllNotLast),
    /// [`DuplicateParamName`](RouteError::DuplicateParamName),
    /// [`TooManyParams`](RouteError::TooManyParams)), a bad method list
    /// ([`InvalidMethod`](RouteError::InvalidMethod),
    /// [`NoMethod`](RouteError::NoMethod)), or a conflict between routes
    /// ([`ParamNameConflict`](RouteError::ParamNameConflict),
    /// [`DuplicateRoute`](RouteError::DuplicateRoute)).
    ///
    /// ```
    /// use keel::{Request, Response, RouteError, Router};
    ///
    /// fn h(_: &Request<'_>, _: &mut Response<'_>) {}
    /// let err = Router::new().get("/x", h).get("/x", h).build().unwrap_err();
    /// assert_eq!(err, RouteError::DuplicateRoute { method: "GET".into(), pattern: "/x".into() });
    /// ```
    pub fn build(self) -> Result<Routes, RouteError> {
        if let Some(error) = self.nest_error {
            return Err(error);
        }
        let mut tree = TreeBuilder::default();
        for route in &self.routes {
            let pattern = route.pattern.as_str();
            let segments = pattern::parse(pattern)?;
            if route.methods.is_empty() {
                return Err(RouteError::NoMethod {
                    pattern: pattern.to_owned(),
                });
            }
            for method in &route.methods {
                if method.is_empty() || !method.bytes().all(is_token_byte) {
                    return Err(RouteError::InvalidMethod {
                        method: method.clone(),
                        pattern: pattern.to_owned(),
                    });
                }
                tree.insert(pattern, &segments, method, route.handler)?;
            }
        }
        Ok(Routes::new(
            tree.freeze(),
            self.handlers.into_boxed_slice(),
            self.limits.into_boxed_slice(),
            self.fallback,
        ))
    }

    fn add_handler(&mut self, handler: Box<dyn Handler>) -> u32 {
        self.handlers.push(handler);
        self.limits.push(None);
        self.handlers.len() as u32 - 1
    }
}

/// A route's handler whose body streams: see [`Router::stream_body`].
struct StreamedBody(Box<dyn Handler>);

impl Handler for StreamedBody {
    fn handle(&self, req: &Request<'_>, res: &mut Response<'_>) {
        self.0.handle(req, res)
    }

    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> crate::middleware::Flow {
        self.0.on_head(req, res)
    }

    fn body_limit(&self, req: &Request<'_>) -> Option<usize> {
        self.0.body_limit(req)
    }

    fn streams_body(&self, _: &Request<'_>) -> bool {
        true
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field(
                "routes",
                &self
                    .routes
                    .iter()
                    .map(|r| (&r.methods, &r.pattern))
                    .collect::<Vec<_>>(),
            )
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}
