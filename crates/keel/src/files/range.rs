//! Range requests (RFC 9110 §14): which part of a representation a `Range`
//! asks for, and the `Content-Range` of the answer.

use std::fmt::{self, Write};

use super::conditional::if_range_holds;
use super::fields::{self, Single};
use super::fixed::FixedStr;
use super::validators::Validators;
use crate::request::Request;

/// The most range-specs one `Range` may list; with more, the field is
/// ignored and the whole representation is sent (RFC 9110 §14.2 lets a
/// server ignore a `Range` it sees as an attack). Real clients send one.
pub const MAX_RANGES: usize = 100;

/// A non-empty span of bytes, `first..=last`, inside a representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    first: u64,
    last: u64,
}

impl ByteRange {
    /// The offset of the first byte.
    pub fn first(self) -> u64 {
        self.first
    }

    /// The offset of the last byte (inclusive).
    pub fn last(self) -> u64 {
        self.last
    }

    /// How many bytes: the `Content-Length` of a `206`.
    pub fn len(self) -> u64 {
        self.last - self.first + 1
    }

    /// Always `false`: a byte range holds at least one byte.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// How to answer a `GET` that may carry a `Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// `200` with the whole representation: no `Range`, one to ignore (an
    /// unknown unit, an invalid value, more than [`MAX_RANGES`], a false
    /// `If-Range`), or several ranges that do not make one span.
    Full,
    /// `206 Partial Content` with this one range and
    /// [`ContentRange::partial`].
    Partial(ByteRange),
    /// `416 Range Not Satisfiable` with [`ContentRange::unsatisfied`]: no
    /// range-spec overlaps the representation (any range of an empty one).
    Unsatisfiable,
}

/// The answer to `req`'s `Range` for a representation of `len` bytes whose
/// validators are `current`, after the preconditions
/// ([`check_preconditions`](super::check_preconditions)) held:
/// [`RangeDecision::Full`] unless the method is `GET` (the only one with
/// range semantics, §14.2), the field is sent once, and `If-Range` holds
/// ([`if_range_holds`]); then [`parse_range`]. Allocates nothing.
///
/// ```
/// use keel::files::{select_range, ContentRange, RangeDecision, Validators};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, StatusCode};
/// use std::time::SystemTime;
///
/// const FILE: &[u8] = b"0123456789";
/// let file = Validators::from_parts(1, None, FILE.len() as u64, SystemTime::now());
/// let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
///     res.header("Accept-Ranges", "bytes");
///     match select_range(req, &file, FILE.len() as u64) {
///         RangeDecision::Full => res.body(FILE),
///         RangeDecision::Partial(range) => {
///             let part = &FILE[range.first() as usize..=range.last() as usize];
///             let content_range = ContentRange::partial(range, FILE.len() as u64);
///             res.status(StatusCode::PARTIAL_CONTENT)
///                 .header("Content-Range", content_range)
///                 .body(part)
///         }
///         RangeDecision::Unsatisfiable => {
///             let content_range = ContentRange::unsatisfied(FILE.len() as u64);
///             res.status(StatusCode::RANGE_NOT_SATISFIABLE)
///                 .header("Content-Range", content_range)
///                 .body(b"")
///         }
///     }
/// });
/// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\n\r\n");
/// let answer = String::from_utf8(conn.recv()).unwrap();
/// assert!(answer.starts_with("HTTP/1.1 206 Partial Content\r\n"));
/// assert!(answer.contains("\r\nContent-Range: bytes 7-9/10\r\n"));
/// assert!(answer.ends_with("\r\n\r\n789"));
/// ```
pub fn select_range(req: &Request<'_>, current: &Validators, len: u64) -> RangeDecision {
    if req.method() != "GET" {
        return RangeDecision::Full;
    }
    match fields::single(req, "range") {
        Single::One(value) if if_range_holds(req, current) => parse_range(value, len),
        Single::One(_) | Single::Absent | Single::Many => RangeDecision::Full,
    }
}

/// The answer to the `Range` field value `value` for a representation of
/// `len` bytes (RFC 9110 §14.1.2):
///
/// - a unit other than `bytes` (case-insensitive), or a value that is not a
///   valid `range-set` (`last < first`, a sign, spaces inside a spec, no
///   spec), or more than [`MAX_RANGES`] specs: [`RangeDecision::Full`];
/// - `first-last`, `first-` and `-suffix` specs, OWS around commas; `last`
///   past the end is the end, a suffix longer than the representation is
///   all of it, `-0` and a `first` at or past the end are unsatisfiable;
/// - no satisfiable spec: [`RangeDecision::Unsatisfiable`];
/// - the satisfiable specs making one contiguous span (one spec, or
///   overlapping or adjacent ones): [`RangeDecision::Partial`] of that span;
/// - several disjoint spans: [`RangeDecision::Full`]. A server MAY ignore
///   `Range` (§14.2); keel never builds `multipart/byteranges`, so no
///   request can make one answer larger than the file.
///
/// Linear in the length of `value`, allocates nothing.
pub fn parse_range(value: &[u8], len: u64) -> RangeDecision {
    let Some((unit, set)) = split_at_equals(value) else {
        return RangeDecision::Full;
    };
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return RangeDecision::Full;
    }
    let mut satisfiable = [ByteRange { first: 0, last: 0 }; MAX_RANGES];
    let mut found = 0;
    let mut specs = 0;
    for spec in fields::members(set) {
        specs += 1;
        if specs > MAX_RANGES {
            return RangeDecision::Full;
        }
        match parse_spec(spec, len) {
            Spec::Invalid => return RangeDecision::Full,
            Spec::Unsatisfiable => {}
            Spec::Satisfiable(range) => {
                satisfiable[found] = range;
                found += 1;
            }
        }
    }
    if specs == 0 {
        return RangeDecision::Full;
    }
    match coalesce(&mut satisfiable[..found]) {
        Span::None => RangeDecision::Unsatisfiable,
        Span::One(range) => RangeDecision::Partial(range),
        Span::Disjoint => RangeDecision::Full,
    }
}

/// `unit` and `range-set` of `unit=range-set`.
fn split_at_equals(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let equals = value.iter().position(|&b| b == b'=')?;
    Some((&value[..equals], &value[equals + 1..]))
}

enum Spec {
    Invalid,
    Unsatisfiable,
    Satisfiable(ByteRange),
}

/// One `int-range` or `suffix-range` against a length of `len`.
fn parse_spec(spec: &[u8], len: u64) -> Spec {
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return Spec::Invalid;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    if first.is_empty() {
        // suffix-range = "-" suffix-length
        return match digits(last) {
            None => Spec::Invalid,
            Some(0) => Spec::Unsatisfiable,
            Some(_) if len == 0 => Spec::Unsatisfiable,
            Some(suffix) => Spec::Satisfiable(ByteRange {
                first: len - suffix.min(len),
                last: len - 1,
            }),
        };
    }
    // int-range = first-pos "-" [ last-pos ]
    let Some(first) = digits(first) else {
        return Spec::Invalid;
    };
    let last = match last {
        [] => u64::MAX,
        last => match digits(last) {
            Some(last) if last >= first => last,
            _ => return Spec::Invalid,
        },
    };
    if first >= len {
        return Spec::Unsatisfiable;
    }
    Spec::Satisfiable(ByteRange {
        first,
        last: last.min(len - 1),
    })
}

/// `1*DIGIT` as a number, saturating at `u64::MAX` (a position that large is
/// past any end, which is what it means); `None` when not all digits.
fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

enum Span {
    None,
    One(ByteRange),
    Disjoint,
}

/// Whether `ranges` cover one contiguous span (overlapping or adjacent).
fn coalesce(ranges: &mut [ByteRange]) -> Span {
    ranges.sort_unstable_by_key(|range| range.first);
    let Some((&head, rest)) = ranges.split_first() else {
        return Span::None;
    };
    let mut span = head;
    for range in rest {
        if range.first > span.last.saturating_add(1) {
            return Span::Disjoint;
        }
        span.last = span.last.max(range.last);
    }
    Span::One(span)
}

/// A `Content-Range` field value (RFC 9110 §14.4), written without
/// allocating: pass it to `Response::header`.
///
/// ```
/// use keel::files::{parse_range, ContentRange, RangeDecision};
///
/// let RangeDecision::Partial(range) = parse_range(b"bytes=10-", 25) else { unreachable!() };
/// assert_eq!(ContentRange::partial(range, 25).as_str(), "bytes 10-24/25");
/// assert_eq!(ContentRange::unsatisfied(25).as_str(), "bytes */25");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ContentRange(FixedStr<{ "bytes -/".len() + 3 * 20 }>);

impl ContentRange {
    /// `bytes first-last/len`, for a `206`.
    pub fn partial(range: ByteRange, len: u64) -> Self {
        Self::write(format_args!("bytes {}-{}/{len}", range.first, range.last))
    }

    /// `bytes */len`, for a `416`.
    pub fn unsatisfied(len: u64) -> Self {
        Self::write(format_args!("bytes */{len}"))
    }

    fn write(args: fmt::Arguments<'_>) -> Self {
        let mut text = FixedStr::new();
        // Cannot fail: the buffer holds three u64 in decimal.
        let _ = text.write_fmt(args);
        Self(text)
    }

    /// The field value.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<[u8]> for ContentRange {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl fmt::Debug for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;
