//! Why the server refused a request or gave up on a connection.

use crate::StatusCode;
use std::fmt;

/// A request the server answered itself, without calling the handler, and the
/// connection it closed after.
///
/// Each variant is one failure with one status; [`ProtocolError::status`] gives
/// it, and the `is_*` methods group them.
///
/// ```
/// use keel::{ProtocolError, StatusCode};
/// assert_eq!(ProtocolError::TargetTooLong.status(), StatusCode::URI_TOO_LONG);
/// assert!(ProtocolError::AmbiguousLength.is_parse());
/// assert!(ProtocolError::HeaderTimeout.is_timeout());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The request line or a header field is not valid HTTP/1.1 syntax
    /// (bad token, bare CR, obs-fold, whitespace before a colon, a bare LF as
    /// a line end unless [`crate::Leniency::bare_lf`]...).
    Malformed,
    /// The request target is not origin-form, absolute-form or `*` for
    /// `OPTIONS`, or holds a byte RFC 3986 does not allow there (unless
    /// [`crate::Leniency::target_bytes`]), a fragment or userinfo.
    InvalidTarget,
    /// An HTTP/1.1 request has no `Host`, or more than one, or an invalid
    /// one, or an empty one (unless [`crate::Leniency::empty_host`]).
    InvalidHost,
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.3 item 3).
    AmbiguousLength,
    /// A `Content-Length` that is not a number (an empty list element, as in
    /// `1,`, included), or several that differ.
    InvalidContentLength,
    /// `Transfer-Encoding` whose final coding is not `chunked`, `chunked`
    /// applied twice, or any `Transfer-Encoding` in an HTTP/1.0 request.
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked` before the final `chunked`.
    UnsupportedTransferCoding,
    /// A malformed chunk-size line (a chunk extension outside RFC 9112
    /// §7.1.1 included), chunk terminator or trailer section.
    InvalidChunk,
    /// A method the server never implements (`CONNECT`).
    UnsupportedMethod,
    /// An `Expect` other than `100-continue`.
    UnsupportedExpectation,
    /// A protocol version other than HTTP/1.0 and HTTP/1.1.
    UnsupportedVersion,
    /// The request head is larger than [`crate::Config::max_header_bytes`],
    /// or a trailer section is.
    HeadersTooLarge,
    /// More header fields than [`crate::Config::max_headers`].
    TooManyHeaders,
    /// A request target longer than [`crate::Config::max_target`].
    TargetTooLong,
    /// A body larger than [`crate::Config::max_body`], or than its route's
    /// limit ([`crate::Handler::body_limit`]).
    BodyTooLarge,
    /// The head did not arrive within [`crate::Config::header_timeout`].
    HeaderTimeout,
    /// The body did not arrive within [`crate::Config::body_timeout`].
    BodyTimeout,
    /// The body would pass [`crate::Config::max_body_in_flight`]: the worker
    /// holds too many bodies still arriving. Answered with `Retry-After`.
    BodiesInFlight,
}

impl ProtocolError {
    /// The status the server answers with before closing.
    pub const fn status(self) -> StatusCode {
        use ProtocolError::*;
        match self {
            Malformed
            | InvalidTarget
            | InvalidHost
            | AmbiguousLength
            | InvalidContentLength
            | InvalidTransferEncoding
            | InvalidChunk => StatusCode::BAD_REQUEST,
            UnsupportedTransferCoding | UnsupportedMethod => StatusCode::NOT_IMPLEMENTED,
            UnsupportedExpectation => StatusCode::EXPECTATION_FAILED,
            UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HeadersTooLarge | TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            TargetTooLong => StatusCode::URI_TOO_LONG,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HeaderTimeout | BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            BodiesInFlight => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the peer was too slow.
    pub const fn is_timeout(self) -> bool {
        matches!(
            self,
            ProtocolError::HeaderTimeout | ProtocolError::BodyTimeout
        )
    }

    /// Whether a configured size limit was passed.
    pub const fn is_limit(self) -> bool {
        use ProtocolError::*;
        matches!(
            self,
            HeadersTooLarge | TooManyHeaders | TargetTooLong | BodyTooLarge | BodiesInFlight
        )
    }

    /// Whether the bytes themselves were malformed or ambiguous.
    pub const fn is_parse(self) -> bool {
        !self.is_timeout() && !self.is_limit()
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProtocolError::*;
        let text = match self {
            Malformed => "malformed request line or header field",
            InvalidTarget => "invalid request target",
            InvalidHost => "missing, repeated or invalid Host header",
            AmbiguousLength => "both Content-Length and Transfer-Encoding",
            InvalidContentLength => "invalid or conflicting Content-Length",
            InvalidTransferEncoding => "Transfer-Encoding must end in a single chunked",
            UnsupportedTransferCoding => "unsupported transfer coding",
            InvalidChunk => "malformed chunked body",
            UnsupportedMethod => "method not implemented",
            UnsupportedExpectation => "unsupported expectation",
            UnsupportedVersion => "unsupported HTTP version",
            HeadersTooLarge => "request header section too large",
            TooManyHeaders => "too many header fields",
            TargetTooLong => "request target too long",
            BodyTooLarge => "request body too large",
            HeaderTimeout => "request head not received in time",
            BodyTimeout => "request body not received in time",
            BodiesInFlight => "too many request bodies in progress; try again",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ProtocolError {}
