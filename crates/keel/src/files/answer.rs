//! Answering a request with one representation of a file: its validators,
//! the preconditions (RFC 9110 §13), a range (§14) and the body, from an
//! open file (`sendfile`) or from bytes in memory (an asset compiled into
//! the binary).

use super::{
    check_preconditions, select_range, ContentRange, Encoding, Precondition, RangeDecision,
    Validators,
};
use crate::{field, Bytes, Request, Response, StatusCode};
use std::fs::File;
use std::ops::Range;

/// Where a file answer's bytes come from.
#[derive(Debug)]
pub enum Body {
    /// An open file, sent with `sendfile` ([`Response::file`]).
    File(File),
    /// Bytes compiled into the binary (`include_bytes!`).
    Static(&'static [u8]),
    /// A shared buffer ([`Response::body_bytes`]).
    Shared(Bytes),
}

/// What is sent about a representation besides its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Representation<'a> {
    /// Its length in bytes (of the coded bytes, for a precompressed one).
    pub len: u64,
    /// Its `ETag` and `Last-Modified`.
    pub validators: &'a Validators,
    /// Its `Content-Type`.
    pub content_type: &'a str,
    /// Its `Content-Encoding` (`Identity` sends none).
    pub encoding: Encoding,
    /// Whether another `Accept-Encoding` could have chosen another
    /// representation: sends `Vary: Accept-Encoding`.
    pub varies_by_encoding: bool,
    /// The `Cache-Control` value, if any.
    pub cache_control: Option<&'a str>,
}

/// Answers a `GET` or `HEAD` with `representation`: `304` or `412` when
/// a precondition says so (RFC 9110 §13.2.2), `206` with `Content-Range`
/// for one satisfiable range (`If-Range` honoured; several ranges that
/// touch or overlap count as one, disjoint ones get the whole body),
/// `416` when none is satisfiable, else `200`; always with `ETag`,
/// `Last-Modified` (when known), `Accept-Ranges: bytes` and the
/// `Cache-Control` and `Vary` asked for. Headers the caller added before
/// go out too. Allocates nothing.
///
/// A file that cannot be read (a small one is read at once: see
/// [`Response::file`]) gets `500`.
///
/// ```
/// use keel::files::{answer, Body, Encoding, Representation, Validators};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
/// use std::time::SystemTime;
///
/// static PAGE: &[u8] = b"<!doctype html><title>hi</title>";
///
/// let mut conn = MemoryConn::new(|req: &Request<'_>, res: &mut Response<'_>| {
///     let validators = Validators::from_parts(7, None, PAGE.len() as u64, SystemTime::now());
///     let page = Representation {
///         len: PAGE.len() as u64,
///         validators: &validators,
///         content_type: "text/html; charset=utf-8",
///         encoding: Encoding::Identity,
///         varies_by_encoding: false,
///         cache_control: Some("no-cache"),
///     };
///     answer(req, res, &page, Body::Static(PAGE));
/// });
/// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-14\r\n\r\n");
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{reply}");
/// assert!(reply.contains("\r\nContent-Range: bytes 0-14/32\r\n"), "{reply}");
/// assert!(reply.ends_with("\r\n\r\n<!doctype html>"), "{reply}");
/// ```
pub fn answer(req: &Request<'_>, res: &mut Response<'_>, rep: &Representation<'_>, body: Body) {
    res.header("ETag", rep.validators.etag());
    if let Some(date) = rep.validators.last_modified() {
        res.header("Last-Modified", date);
    }
    if let Some(value) = rep.cache_control {
        res.header("Cache-Control", value);
    }
    if rep.varies_by_encoding {
        res.field(field!("Vary", "Accept-Encoding"));
    }
    match check_preconditions(req, rep.validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => return res.status(StatusCode::NOT_MODIFIED).body(b""),
        Precondition::PreconditionFailed => {
            return res.status(StatusCode::PRECONDITION_FAILED).body(b"")
        }
    }
    res.field(field!("Accept-Ranges", "bytes"));
    let range = match select_range(req, rep.validators, rep.len) {
        RangeDecision::Full => 0..rep.len,
        RangeDecision::Partial(range) => {
            res.status(StatusCode::PARTIAL_CONTENT)
                .header("Content-Range", ContentRange::partial(range, rep.len));
            range.first()..range.last() + 1
        }
        RangeDecision::Unsatisfiable => {
            return res
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header("Content-Range", ContentRange::unsatisfied(rep.len))
                .body(b"");
        }
    };
    res.header("Content-Type", rep.content_type);
    if let Some(coding) = rep.encoding.content_encoding() {
        res.header("Content-Encoding", coding);
    }
    send(res, body, range);
}

/// Sends `range` of `body` as the whole body.
fn send(res: &mut Response<'_>, body: Body, range: Range<u64>) {
    // In-memory bodies are shorter than `usize::MAX`: their ranges fit.
    let span = || range.start as usize..range.end as usize;
    match body {
        Body::File(file) => {
            if res.file(file, range).is_err() {
                res.status(StatusCode::INTERNAL_SERVER_ERROR).body(b"");
            }
        }
        Body::Static(bytes) => res.body(&bytes[span()]),
        Body::Shared(bytes) => res.body_bytes(bytes.slice(span())),
    }
}
