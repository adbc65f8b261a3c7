//! `Cors`: cross-origin resource sharing (the Fetch standard's CORS protocol).

use super::{Flow, Middleware};
use crate::http1::parse::is_token_byte;
use crate::{field, Request, Response, StatusCode};
use std::time::Duration;

/// Answers CORS preflights and marks responses readable by other origins.
///
/// - A **preflight** (`OPTIONS` with `Origin` and
///   `Access-Control-Request-Method`) is answered here, without calling the
///   handler: `204 No Content` with `Access-Control-Allow-Origin`,
///   `-Allow-Methods`, `-Allow-Headers`, `-Max-Age` and `-Allow-Credentials`
///   as configured, or `403 Forbidden` without them when the origin is not
///   allowed. Either carries `Vary: Origin, Access-Control-Request-Method,
///   Access-Control-Request-Headers`. Which method and headers the browser
///   may then use is the browser's to enforce, from these headers.
/// - Any other request with an allowed `Origin` goes on to the handler, and
///   its response gets `Access-Control-Allow-Origin` (and
///   `-Allow-Credentials`, `-Expose-Headers` when configured).
/// - Unless every response says `Access-Control-Allow-Origin: *`, every
///   response (with an `Origin` or without) gets `Vary: Origin`, so that a
///   cache does not hand one origin's answer to another.
///
/// `Access-Control-Allow-Origin` is `*` for [`any_origin`](Cors::any_origin)
/// without credentials, and the request's own `Origin` otherwise (browsers
/// refuse `*` on a credentialed request). Origins compare ASCII
/// case-insensitively, as whole `scheme://host[:port]` strings.
///
/// # Cost
///
/// Header values are formatted once, by the builder methods; a request costs
/// a scan of the origin list and a few header lines, and allocates nothing.
///
/// # Panics
///
/// The builder methods panic on a method or header name that is not an HTTP
/// token, and on an origin with control characters.
///
/// # Examples
///
/// ```
/// use keel::middleware::{Cors, HandlerExt};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
/// use std::time::Duration;
///
/// let cors = Cors::origins(&["https://app.example"])
///     .allow_methods(&["GET", "POST"])
///     .allow_headers(&["Content-Type"])
///     .max_age(Duration::from_secs(600));
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"data")).with(cors);
/// let mut conn = MemoryConn::new(app);
///
/// conn.send(b"OPTIONS /api HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\n\
///             Access-Control-Request-Method: POST\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 204 No Content\r\n"));
/// assert!(reply.contains("\r\nAccess-Control-Allow-Methods: GET, POST\r\n"));
/// assert!(reply.contains("\r\nAccess-Control-Max-Age: 600\r\n"));
///
/// conn.send(b"GET /api HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.contains("\r\nAccess-Control-Allow-Origin: https://app.example\r\n"));
/// assert!(reply.contains("\r\nVary: Origin\r\n"));
/// assert!(reply.ends_with("\r\n\r\ndata"));
/// ```
#[derive(Clone, Debug)]
pub struct Cors {
    /// `None`: any origin.
    origins: Option<Vec<Box<str>>>,
    allow_methods: Box<str>,
    allow_headers: AllowHeaders,
    expose_headers: Option<Box<str>>,
    max_age: Option<Box<str>>,
    credentials: bool,
}

#[derive(Clone, Debug)]
enum AllowHeaders {
    /// This list (possibly empty: then no header is sent).
    List(Box<str>),
    /// Whatever the preflight's `Access-Control-Request-Headers` asks for.
    Mirror,
}

/// `Vary` on a preflight answer.
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

impl Cors {
    /// Allows every origin. Defaults: methods `GET, HEAD, POST`, no extra
    /// request headers, no exposed headers, no max-age, no credentials.
    pub fn any_origin() -> Self {
        Cors {
            origins: None,
            allow_methods: "GET, HEAD, POST".into(),
            allow_headers: AllowHeaders::List("".into()),
            expose_headers: None,
            max_age: None,
            credentials: false,
        }
    }

    /// Allows exactly these origins (`"https://app.example"`, with a port
    /// when it is not the scheme's default), with the defaults of
    /// [`any_origin`](Cors::any_origin).
    pub fn origins(origins: &[&str]) -> Self {
        for origin in origins {
            assert!(
                !origin.bytes().any(|b| b.is_ascii_control()),
                "CORS origin {origin:?} holds a control character"
            );
        }
        Cors {
            origins: Some(origins.iter().map(|&o| o.into()).collect()),
            ..Cors::any_origin()
        }
    }

    /// The methods a preflight allows (`Access-Control-Allow-Methods`).
    pub fn allow_methods(mut self, methods: &[&str]) -> Self {
        self.allow_methods = token_list(methods, "method").into();
        self
    }

    /// The request headers a preflight allows (`Access-Control-Allow-Headers`).
    pub fn allow_headers(mut self, headers: &[&str]) -> Self {
        self.allow_headers = AllowHeaders::List(token_list(headers, "header").into());
        self
    }

    /// Allows whatever request headers a preflight asks for, by echoing its
    /// `Access-Control-Request-Headers`.
    pub fn allow_any_header(mut self) -> Self {
        self.allow_headers = AllowHeaders::Mirror;
        self
    }

    /// Response headers the page's script may read beyond the safelisted
    /// ones (`Access-Control-Expose-Headers`).
    pub fn expose_headers(mut self, headers: &[&str]) -> Self {
        let list = token_list(headers, "header");
        self.expose_headers = (!list.is_empty()).then(|| list.into());
        self
    }

    /// How long a browser may cache a preflight's answer
    /// (`Access-Control-Max-Age`, in whole seconds).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age.as_secs().to_string().into());
        self
    }

    /// Whether requests may carry credentials (cookies, HTTP auth):
    /// `Access-Control-Allow-Credentials: true`. With any origin allowed,
    /// the request's origin is echoed instead of `*`.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    fn allows(&self, origin: &[u8]) -> bool {
        match &self.origins {
            None => true,
            Some(list) => list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin)),
        }
    }

    /// Whether `Access-Control-Allow-Origin` depends on the request's origin.
    fn varies(&self) -> bool {
        self.origins.is_some() || self.credentials
    }

    fn allow_origin(&self, res: &mut Response<'_>, origin: &[u8]) {
        if self.varies() {
            // An origin sent by the client: refused if it could split the head.
            let _ = res.try_header("Access-Control-Allow-Origin", origin);
        } else {
            res.field(field!("Access-Control-Allow-Origin", "*"));
        }
        if self.credentials {
            res.field(field!("Access-Control-Allow-Credentials", "true"));
        }
    }

    fn preflight(&self, req: &Request<'_>, res: &mut Response<'_>, origin: &[u8]) {
        res.header("Vary", PREFLIGHT_VARY);
        if !self.allows(origin) {
            res.status(StatusCode::FORBIDDEN).body(b"");
            return;
        }
        res.status(StatusCode::NO_CONTENT);
        self.allow_origin(res, origin);
        res.header("Access-Control-Allow-Methods", &*self.allow_methods);
        match &self.allow_headers {
            AllowHeaders::List(list) if list.is_empty() => {}
            AllowHeaders::List(list) => {
                res.header("Access-Control-Allow-Headers", &**list);
            }
            AllowHeaders::Mirror => {
                if let Some(asked) = req.header("access-control-request-headers") {
                    let _ = res.try_header("Access-Control-Allow-Headers", asked);
                }
            }
        }
        if let Some(max_age) = &self.max_age {
            res.header("Access-Control-Max-Age", &**max_age);
        }
        res.body(b"");
    }
}

impl Middleware for Cors {
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let Some(origin) = req.header("origin") else {
            if self.varies() {
                res.field(field!("Vary", "Origin"));
            }
            return Flow::Continue;
        };
        if req.method() == "OPTIONS" && req.header("access-control-request-method").is_some() {
            self.preflight(req, res, origin);
            return Flow::Stop;
        }
        if self.allows(origin) {
            self.allow_origin(res, origin);
            if let Some(expose) = &self.expose_headers {
                res.header("Access-Control-Expose-Headers", &**expose);
            }
        }
        if self.varies() {
            res.field(field!("Vary", "Origin"));
        }
        Flow::Continue
    }
}

/// `items` joined by `", "`, each checked to be a token.
fn token_list(items: &[&str], what: &str) -> String {
    for item in items {
        assert!(
            !item.is_empty() && item.bytes().all(is_token_byte),
            "CORS {what} {item:?} is not a token"
        );
    }
    items.join(", ")
}
