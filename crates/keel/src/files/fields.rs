//! Reading request fields the files rules need: every line of a field, a
//! field that must appear once, and the members of a comma-separated list.

use crate::request::Request;

/// How often a singleton field (`Range`, `If-Range`, a date) appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Single<'a> {
    /// Not sent.
    Absent,
    /// Sent on exactly one line, with this value (OWS trimmed).
    One(&'a [u8]),
    /// Sent on several lines: lines of one field combine into a list (RFC
    /// 9110 §5.3), which a singleton field's grammar never is.
    Many,
}

/// The value of every line of the field `name`, in order.
pub(crate) fn lines<'r, 'a: 'r>(
    req: &'r Request<'a>,
    name: &'static str,
) -> impl Iterator<Item = &'a [u8]> + 'r {
    req.headers()
        .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The field `name`, which its grammar allows once.
pub(crate) fn single<'a>(req: &Request<'a>, name: &'static str) -> Single<'a> {
    let mut found = lines(req, name);
    match (found.next(), found.next()) {
        (None, _) => Single::Absent,
        (Some(value), None) => Single::One(trim_ows(value)),
        (Some(_), Some(_)) => Single::Many,
    }
}

/// `value` without leading and trailing spaces and tabs (OWS, RFC 9110 §5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |last| last + 1);
    &value[start..end]
}

/// The members of a comma-separated list whose members hold no quoted
/// string, OWS trimmed; empty members are skipped, as RFC 9110 §5.6.1 asks
/// of a recipient.
pub(crate) fn members(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|member| !member.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::wire::with_request;

    #[test]
    fn lists_skip_empty_members_and_trim_ows() {
        let found: Vec<&[u8]> = members(b" a ,, \tb\t,").collect();
        assert_eq!(found, [&b"a"[..], b"b"]);
        assert_eq!(members(b" , ,").count(), 0);
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b"\tx y "), b"x y");
    }

    #[test]
    fn a_singleton_field_sent_twice_is_many() {
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n", Single::Absent),
            (
                "GET / HTTP/1.1\r\nrange: bytes=0-1 \r\n\r\n",
                Single::One(b"bytes=0-1"),
            ),
            (
                "GET / HTTP/1.1\r\nRange: a\r\nX: y\r\nRANGE: a\r\n\r\n",
                Single::Many,
            ),
        ];
        for (wire, expected) in cases {
            with_request(wire, |req| {
                assert_eq!(single(req, "Range"), expected, "{wire:?}")
            });
        }
    }
}
