//! Conditional requests (RFC 9110 §13): the preconditions `If-Match`,
//! `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` evaluated
//! in the order of §13.2.2, and `If-Range` (§13.1.5).

use super::fields::{self, Single};
use super::validators::{parse_http_date, Validators};
use crate::request::Request;

/// What the preconditions of a request decide, before any `Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Every precondition holds (or none was sent): answer the request.
    Proceed,
    /// `304 Not Modified` (a `GET` or `HEAD` whose `If-None-Match` or
    /// `If-Modified-Since` is false). Send no body, but the `ETag`,
    /// `Last-Modified`, `Cache-Control` and `Vary` a `200` would carry (RFC
    /// 9110 §15.4.5).
    NotModified,
    /// `412 Precondition Failed`: `If-Match` or `If-Unmodified-Since` is
    /// false, or `If-None-Match` is false for a method other than `GET` and
    /// `HEAD`.
    PreconditionFailed,
}

/// Evaluates the preconditions of `req` against the validators of the
/// selected representation, in the order RFC 9110 §13.2.2 gives:
///
/// 1. `If-Match` (strong comparison, `*` matches): false -> `412`;
/// 2. without `If-Match`, `If-Unmodified-Since`: modified after the date -> `412`;
/// 3. `If-None-Match` (weak comparison, `*` matches): false -> `304` for
///    `GET` and `HEAD`, `412` for other methods;
/// 4. without `If-None-Match`, for `GET` and `HEAD`, `If-Modified-Since`:
///    not modified after the date -> `304`.
///
/// Lines of one list field (`If-Match`, `If-None-Match`) combine into one
/// list. A list member that is not an entity-tag matches nothing (so a
/// malformed `If-Match` fails, a malformed `If-None-Match` holds). A date
/// that is not an HTTP-date, or a date field sent on several lines, is
/// ignored, as are the date fields when `current` has no `Last-Modified`.
/// `CONNECT`, `OPTIONS` and `TRACE` ignore preconditions (§13.2.1).
///
/// Call it only when the request would otherwise be answered with a 2xx
/// (the file exists): §13.2.1 says a 404 ignores preconditions. Evaluate
/// [`if_range_holds`] and the `Range` after it. Allocates nothing.
///
/// ```
/// use keel::files::{check_preconditions, Precondition, Validators};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response, StatusCode};
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let modified = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// let file = Validators::from_parts(1, Some(modified), 5, SystemTime::now());
/// let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
///     res.header("ETag", file.etag());
///     match check_preconditions(req, &file) {
///         Precondition::Proceed => res.body(b"hello"),
///         Precondition::NotModified => res.status(StatusCode::NOT_MODIFIED).body(b""),
///         Precondition::PreconditionFailed => {
///             res.status(StatusCode::PRECONDITION_FAILED).body(b"")
///         }
///     }
/// });
/// conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
/// assert!(conn.recv().starts_with(b"HTTP/1.1 304 Not Modified\r\n"));
/// ```
pub fn check_preconditions(req: &Request<'_>, current: &Validators) -> Precondition {
    let method = req.method();
    if matches!(method, "CONNECT" | "OPTIONS" | "TRACE") {
        return Precondition::Proceed;
    }
    let is_get_or_head = matches!(method, "GET" | "HEAD");
    let modified = current.modified_secs();

    // Step 1, or step 2 when there is no If-Match (§13.1.4: a recipient
    // MUST ignore If-Unmodified-Since when If-Match is present).
    let any_match = tag_list(req, "if-match")
        .map(|mut members| members.any(|member| member.matches(current, Comparison::Strong)));
    match any_match {
        Some(false) => return Precondition::PreconditionFailed,
        Some(true) => {}
        None => {
            let since = single_date(req, "if-unmodified-since");
            if let (Some(since), Some(modified)) = (since, modified) {
                if modified > since {
                    return Precondition::PreconditionFailed;
                }
            }
        }
    }

    // Step 3, or step 4 when there is no If-None-Match (§13.1.3).
    let any_match = tag_list(req, "if-none-match")
        .map(|mut members| members.any(|member| member.matches(current, Comparison::Weak)));
    match any_match {
        Some(true) if is_get_or_head => return Precondition::NotModified,
        Some(true) => return Precondition::PreconditionFailed,
        Some(false) => {}
        None if is_get_or_head => {
            let since = single_date(req, "if-modified-since");
            if let (Some(since), Some(modified)) = (since, modified) {
                if modified <= since {
                    return Precondition::NotModified;
                }
            }
        }
        None => {}
    }
    Precondition::Proceed
}

/// Whether a `Range` of `req` may be honoured as far as `If-Range` (RFC 9110
/// §13.1.5) is concerned: `true` without `If-Range`; with one, `true` only
/// when it is an entity-tag that strongly matches `current` (a weak tag
/// never does) or an HTTP-date equal to `current`'s `Last-Modified`. A
/// value that is neither, or a field sent on several lines, is `false`:
/// the whole representation is sent, which is always safe. Allocates nothing.
///
/// [`select_range`](super::select_range) calls it; call it yourself only
/// with [`parse_range`](super::parse_range).
pub fn if_range_holds(req: &Request<'_>, current: &Validators) -> bool {
    let value = match fields::single(req, "if-range") {
        Single::Absent => return true,
        Single::One(value) => value,
        Single::Many => return false,
    };
    // §13.1.5: an entity-tag starts with a DQUOTE or `W/`, a date never does.
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        let mut members = TagMembers { rest: value };
        return match (members.next(), members.next()) {
            (Some(member @ Member::Tag { .. }), None) => {
                member.matches(current, Comparison::Strong)
            }
            _ => false,
        };
    }
    match (parse_http_date(value), current.modified_secs()) {
        (Some(date), Some(modified)) => date == modified,
        _ => false,
    }
}

/// The one-line value of a date precondition, when it is an HTTP-date;
/// `None` (ignore it) when absent, invalid or on several lines.
fn single_date(req: &Request<'_>, name: &'static str) -> Option<u64> {
    match fields::single(req, name) {
        Single::One(value) => parse_http_date(value),
        Single::Absent | Single::Many => None,
    }
}

/// The members of every line of the entity-tag list `name`, or `None` when
/// the field is absent.
fn tag_list<'r, 'a: 'r>(
    req: &'r Request<'a>,
    name: &'static str,
) -> Option<impl Iterator<Item = Member<'a>> + 'r> {
    let mut lines = fields::lines(req, name).peekable();
    lines.peek()?;
    Some(lines.flat_map(|line| TagMembers { rest: line }))
}

/// RFC 9110 §8.8.3.2: strong comparison needs both tags strong and equal;
/// weak comparison only needs the opaque tags equal.
#[derive(Clone, Copy)]
enum Comparison {
    Strong,
    Weak,
}

/// One member of `"*" / #entity-tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member<'a> {
    /// `*`: matches any current representation.
    Any,
    /// `[W/]"opaque"`, the opaque tag without its quotes.
    Tag { weak: bool, opaque: &'a [u8] },
    /// Not an entity-tag: matches nothing, and ends its line.
    Malformed,
}

impl Member<'_> {
    fn matches(self, current: &Validators, comparison: Comparison) -> bool {
        match self {
            Member::Any => true,
            Member::Tag { weak, opaque } => {
                let strong_enough = matches!(comparison, Comparison::Weak) || !weak;
                strong_enough && opaque == current.opaque_tag().as_bytes()
            }
            Member::Malformed => false,
        }
    }
}

/// The members of one line of an entity-tag list. A quoted tag may hold a
/// comma, so the line is scanned, not split on commas.
struct TagMembers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TagMembers<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        let start = self
            .rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b','))?;
        let rest = &self.rest[start..];
        let (member, after) = match rest {
            [b'*', after @ ..] => (Member::Any, after),
            [b'W', b'/', b'"', after @ ..] => quoted(after, true),
            [b'"', after @ ..] => quoted(after, false),
            _ => (Member::Malformed, &[][..]),
        };
        // A member ends at OWS, a comma or the end of the line.
        let ends_well = matches!(after.first(), None | Some(b' ' | b'\t' | b','));
        if ends_well {
            self.rest = after;
            Some(member)
        } else {
            self.rest = &[];
            Some(Member::Malformed)
        }
    }
}

/// The tag after an opening quote, up to its closing quote, and what follows.
fn quoted(after_quote: &[u8], weak: bool) -> (Member<'_>, &[u8]) {
    // etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3).
    let is_etagc = |b: u8| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80;
    let len = after_quote.iter().take_while(|&&b| is_etagc(b)).count();
    match after_quote.get(len) {
        Some(b'"') => (
            Member::Tag {
                weak,
                opaque: &after_quote[..len],
            },
            &after_quote[len + 1..],
        ),
        _ => (Member::Malformed, &[][..]),
    }
}

#[cfg(test)]
#[path = "conditional_tests.rs"]
mod tests;
