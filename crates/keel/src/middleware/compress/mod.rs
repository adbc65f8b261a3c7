//! `Compression`: gzip for buffered response bodies that are worth it.

mod gzip;
mod negotiate;

use super::{Flow, Middleware};
use crate::response::Held;
use crate::{Request, Response, StatusCode};
use negotiate::{compressible, forbids_transform, varies_on_encoding, wants_gzip};

/// Compresses buffered response bodies with gzip when the client accepts
/// it, the type compresses, and the body is large enough to gain.
///
/// A response is compressed when all of these hold:
/// - the client's `Accept-Encoding` accepts `gzip` (q-values honoured, `q=0`
///   refuses, `*` counts, several lines are one list; no header: identity);
/// - its `Content-Type` compresses: `text/*` (not `text/event-stream`),
///   JSON, XML, JavaScript, SVG, WebAssembly and kin; never an image, audio,
///   video, archive or unknown type;
/// - its body is [`min_len`](Compression::min_len) bytes or more (1 KiB by
///   default) and at most [`max_len`](Compression::max_len) (4 MiB);
/// - it has no `Content-Encoding` yet, no `Cache-Control: no-transform`,
///   and a status that carries a body other than `206 Partial Content` (a
///   range is a range of the identity bytes);
/// - its body was given with [`body`](Response::body),
///   [`body_bytes`](Response::body_bytes) or [`write`](Response::write).
///   A [streamed](Response::stream) (from a thread or, with
///   [`stream_from`](Response::stream_from), from the worker),
///   [chunked](Response::chunked) or [deferred](Response::defer) response
///   passes through untouched: its
///   head is out before this layer's `after` runs (a deferred answer can
///   apply the same rule itself: [`finish`](Compression::finish)).
///
/// It then gets `Content-Encoding: gzip` and the right `Content-Length`.
/// gzip only: brotli (the `brotli` crate, at quality 4) took three times
/// gzip's time on 16 KiB of JSON for 13% of the size against 16%, and
/// allocates its state per response (it has no reset).
///
/// **`Vary: Accept-Encoding`** is added to every response of a compressible
/// type that this layer may touch, compressed or not (the client did not
/// accept gzip, the body was small), so that a cache never hands a gzip
/// body to a client that did not ask for one, nor the reverse. A `Vary`
/// already naming `Accept-Encoding` or `*` is left as it is.
///
/// **ETags:** a strong `ETag` on a compressed response becomes weak
/// (`"v1"` becomes `W/"v1"`), as nginx does. A strong ETag promises the
/// same bytes, and the gzip bytes are not the identity bytes. Weak rather
/// than suffixed (`"v1-gzip"`, Apache's way): a client revalidates with
/// `If-None-Match: W/"v1"`, which matches the handler's `"v1"` under the
/// weak comparison that `If-None-Match` uses (RFC 9110 §13.1.2), so a
/// handler answers `304` without knowing this layer exists, while a
/// suffixed tag would never match again. Strong comparisons (`If-Match`,
/// `If-Range`) fail on it, as they must. A `304` whose request accepts
/// gzip gets the same weak ETag and `Vary`, so a cache refreshing its
/// stored gzip answer keeps them right (RFC 9110 §15.4.5).
///
/// **HEAD:** a `HEAD` answer gets the headers its `GET` would: the same
/// decision (taken on the body the handler gave, which keel drops),
/// `Content-Encoding: gzip`, `Vary`, the weak ETag, and no
/// `Content-Length`: the compressed length is not known without
/// compressing, RFC 9110 §8.6 forbids a wrong one and lets a `HEAD` answer
/// leave it out, and compressing a body nobody receives would be work for
/// nothing.
///
/// # Cost
///
/// The layer [holds](Response::hold) each response: a `body_bytes` body
/// of 4 KiB or more is copied into the output buffer instead of being sent
/// from its own, and a body that goes out as it is moves once in the
/// buffer when its head is put in front of it. Compression runs on the worker thread, with one deflate
/// state per thread reused for every response: once a thread has
/// compressed a body of a given size, compressing another allocates
/// nothing. A 16 KiB JSON body costs about 70 µs at the default level, and
/// goes out as 16% of its size (tests/compression_alloc.rs prints it);
/// [`max_len`](Compression::max_len) bounds what one response can cost the
/// other connections of its worker.
///
/// # Examples
///
/// ```
/// use keel::middleware::{Compression, HandlerExt};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
///
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| {
///     res.header("Content-Type", "application/json")
///         .body("[1,2,3,4,5,6,7,8,9,10],".repeat(100).as_bytes());
/// })
/// .with(Compression::new());
/// let mut conn = MemoryConn::new(app);
///
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\n\r\n");
/// let reply = &conn.responses().unwrap()[0];
/// assert_eq!(reply.header("content-encoding"), Some("gzip"));
/// assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
/// assert!(reply.body.len() < 200);
///
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
/// let reply = &conn.responses().unwrap()[0];
/// assert_eq!(reply.header("content-encoding"), None);
/// assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
/// assert_eq!(reply.body.len(), 2300);
/// ```
#[derive(Clone, Debug)]
pub struct Compression {
    level: u32,
    min_len: usize,
    max_len: usize,
}

/// The default gzip level: see [`Compression::level`].
pub const DEFAULT_LEVEL: u32 = 4;

impl Compression {
    /// gzip at level 4, for bodies from 1 KiB to 4 MiB.
    pub fn new() -> Self {
        Compression {
            level: DEFAULT_LEVEL,
            min_len: 1024,
            max_len: 4 * 1024 * 1024,
        }
    }

    /// The gzip level, from 1 (fastest) to 9 (smallest). The default, 4,
    /// gives nearly level 6's size at two thirds of its time: on 16 KiB of
    /// JSON, 16.4% of the size against 16.0%, where level 1 gives 24%.
    ///
    /// # Panics
    ///
    /// Outside 1 to 9.
    pub fn level(mut self, level: u32) -> Self {
        assert!((1..=9).contains(&level), "gzip level {level} is not 1 to 9");
        self.level = level;
        self
    }

    /// Bodies shorter than `len` bytes go out as they are (default 1024):
    /// below about a kilobyte, gzip's framing and the work cost more than
    /// the bytes saved.
    pub fn min_len(mut self, len: usize) -> Self {
        self.min_len = len;
        self
    }

    /// Bodies longer than `len` bytes go out as they are (default 4 MiB):
    /// compressing runs on the worker thread, and one huge body would
    /// delay every other connection of that worker.
    pub fn max_len(mut self, len: usize) -> Self {
        self.max_len = len;
        self
    }

    /// Whether `req` accepts gzip (see [`Compression`]): for a
    /// [deferred](Response::defer) answer, ask on the worker, before
    /// deferring, and give the answer to [`finish`](Compression::finish).
    pub fn accepts(req: &Request<'_>) -> bool {
        wants_gzip(req)
    }

    /// What the layer does once the handler returned, for a response
    /// written elsewhere: a [deferred](Response::defer) one, whose head is
    /// written after the layer's `after` ran. Call
    /// [`hold`](Response::hold) on the deferred response before giving its
    /// body, then this, with what [`accepts`](Compression::accepts) said
    /// of the request; the response is compressed, or not, as the layer
    /// would have.
    ///
    /// ```
    /// use keel::middleware::Compression;
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response};
    ///
    /// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
    ///     let gzip = Compression::accepts(req);
    ///     res.offload(move |res| {
    ///         res.hold();
    ///         res.header("Content-Type", "application/json")
    ///             .body("[1,2,3,4,5,6,7,8,9,10],".repeat(100).as_bytes());
    ///         Compression::new().finish(res, gzip);
    ///     });
    /// });
    /// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n");
    /// assert!(conn.settle(std::time::Duration::from_secs(5)));
    /// let reply = &conn.responses().unwrap()[0];
    /// assert_eq!(reply.header("content-encoding"), Some("gzip"));
    /// assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
    /// assert!(reply.body.len() < 200);
    /// ```
    pub fn finish(&self, res: &mut Response<'_>, accepts_gzip: bool) {
        let Some(mut held) = res.held() else {
            return; // streamed, deferred, or an upgrade: its head is out
        };
        let not_modified = held.status() == StatusCode::NOT_MODIFIED;
        let compressible = match held.header("content-type") {
            Some(content_type) => compressible(content_type),
            // A 304 carries no type; the 200 it stands for may have been gzip.
            None => not_modified,
        };
        if !compressible
            || held.header("content-encoding").is_some()
            || forbids_transform(held.headers("cache-control"))
        {
            return;
        }
        if !varies_on_encoding(held.headers("vary")) {
            let _ = held.add_header("Vary", "Accept-Encoding");
        }
        if !accepts_gzip {
            return;
        }
        if not_modified {
            weaken_etag(&mut held);
            return;
        }
        if !self.takes(held.status(), held.body().len()) {
            return;
        }
        if held.is_head() {
            // keel drops the body: say what the GET would, without the work.
            held.omit_length();
        } else {
            let compressed = gzip::with_gzip(self.level, |gz| {
                let done = gz.compress(held.body());
                if done {
                    held.set_body(gz.output());
                }
                done
            });
            if !compressed {
                return;
            }
        }
        weaken_etag(&mut held);
        let _ = held.add_header("Content-Encoding", "gzip");
    }

    /// Whether this layer compresses a body of `len` bytes with `status`.
    fn takes(&self, status: StatusCode, len: usize) -> bool {
        status != StatusCode::PARTIAL_CONTENT
            && !status.forbids_body()
            && (self.min_len..=self.max_len).contains(&len)
    }
}

impl Default for Compression {
    fn default() -> Self {
        Compression::new()
    }
}

impl Middleware for Compression {
    fn before(&self, _: &Request<'_>, res: &mut Response<'_>) -> Flow {
        res.hold();
        Flow::Continue
    }

    fn after(&self, req: &Request<'_>, res: &mut Response<'_>) {
        self.finish(res, Compression::accepts(req));
    }
}

/// Makes a strong `ETag` weak (`"x"` becomes `W/"x"`); a weak one stays.
fn weaken_etag(held: &mut Held<'_, '_>) {
    /// A longer tag is dropped rather than kept strong: no tag is honest too.
    const MAX_TAG: usize = 256;
    let Some(tag) = held.header("etag") else {
        return;
    };
    if tag.starts_with(b"W/") {
        return;
    }
    let mut weak = [0u8; MAX_TAG + 2];
    let len = tag.len().min(MAX_TAG);
    weak[..2].copy_from_slice(b"W/");
    weak[2..2 + len].copy_from_slice(&tag[..len]);
    let keep = tag.len() <= MAX_TAG;
    held.remove_header("etag");
    if keep {
        // The value was a valid field value already, with `W/` in front it still is.
        let _ = held.add_header("ETag", &weak[..2 + len]);
    }
}
