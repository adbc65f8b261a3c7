//! What the client accepts (`Accept-Encoding`) and what is worth
//! compressing (`Content-Type`, `Cache-Control`, `Vary`).

use crate::http1::parse::list_elements;
use crate::Request;

/// A q-value in thousandths: 0 refuses, 1000 is the most wanted (RFC 9110 §12.4.2).
pub(super) type Quality = u16;

/// How much the client wants gzip, from every `Accept-Encoding` line
/// (RFC 9110 §12.5.3): an explicit `gzip` (or its alias `x-gzip`, §8.4.1.3)
/// counts before `*`; when several name it, the lowest q wins, so a
/// refusal anywhere refuses. No `Accept-Encoding`, or one that names
/// neither, gets identity: 0. A malformed q-value counts as 0: never send
/// what was not clearly asked for.
///
/// One function, kept apart, so that a shared parser can replace it.
pub(super) fn gzip_quality(req: &Request<'_>) -> Quality {
    let mut explicit: Option<Quality> = None;
    let mut any: Option<Quality> = None;
    let lines = req
        .headers()
        .filter(|(name, _)| name.eq_ignore_ascii_case("accept-encoding"));
    for (_, value) in lines {
        for element in list_elements(value) {
            let mut parts = element.split(|&b| b == b';');
            let coding = parts.next().unwrap_or_default().trim_ascii();
            let q = quality(parts);
            let slot =
                if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
                    &mut explicit
                } else if coding == b"*" {
                    &mut any
                } else {
                    continue;
                };
            *slot = Some(slot.map_or(q, |seen| seen.min(q)));
        }
    }
    explicit.or(any).unwrap_or(0)
}

/// The `q` parameter among an element's parameters: 1000 without one, 0
/// when malformed. `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn quality<'e>(params: impl Iterator<Item = &'e [u8]>) -> Quality {
    for param in params {
        let mut halves = param.splitn(2, |&b| b == b'=');
        let name = halves.next().unwrap_or_default().trim_ascii();
        if name.eq_ignore_ascii_case(b"q") {
            // No whitespace around `=` (RFC 9110 §12.4.2): `q = 1` is malformed.
            return halves.next().and_then(parse_qvalue).unwrap_or(0);
        }
    }
    1000
}

fn parse_qvalue(value: &[u8]) -> Option<Quality> {
    let (&whole, rest) = value.split_first()?;
    let fraction = match rest {
        [] => &[][..],
        [b'.', digits @ ..] if digits.len() <= 3 && digits.iter().all(u8::is_ascii_digit) => digits,
        _ => return None,
    };
    let mut thousandths: Quality = 0;
    for i in 0..3 {
        let digit = fraction.get(i).map_or(0, |d| Quality::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match whole {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether a `Content-Type` names a type that compresses: text, JSON, XML,
/// JavaScript, SVG and their kin. Never an already-compressed type
/// (images other than SVG and BMP-like icons, audio, video, archives,
/// WOFF fonts) nor `text/event-stream` (each event must reach the client
/// as it is sent); an unknown type is not compressed.
pub(super) fn is_compressible(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(slash) = essence.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    let is = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
    let ends = |a: &[u8], suffix: &str| {
        a.len() >= suffix.len() && is(&a[a.len() - suffix.len()..], suffix)
    };
    if is(kind, "text") {
        return !is(subtype, "event-stream");
    }
    if ends(subtype, "+json") || ends(subtype, "+xml") {
        return true;
    }
    const APPLICATION: &[&str] = &[
        "json",
        "javascript",
        "ecmascript",
        "x-javascript",
        "xml",
        "wasm",
        "yaml",
        "toml",
        "x-ndjson",
        "x-www-form-urlencoded",
        "graphql",
        "vnd.ms-fontobject",
        "x-font-ttf",
    ];
    match () {
        _ if is(kind, "application") => APPLICATION.iter().any(|t| is(subtype, t)),
        _ if is(kind, "font") => is(subtype, "ttf") || is(subtype, "otf"),
        _ if is(kind, "image") => ["bmp", "x-icon", "vnd.microsoft.icon"]
            .iter()
            .any(|t| is(subtype, t)),
        _ => false,
    }
}

/// Whether any of these `Vary` values lists `Accept-Encoding` or `*` already.
pub(super) fn varies_on_encoding<'v>(mut values: impl Iterator<Item = &'v [u8]>) -> bool {
    values.any(|value| {
        list_elements(value).any(|e| e == b"*" || e.eq_ignore_ascii_case(b"accept-encoding"))
    })
}

/// Whether any of these `Cache-Control` values says `no-transform` (RFC
/// 9111 §5.2.2.6): the sender wants the bytes delivered as they are.
pub(super) fn forbids_transform<'v>(mut values: impl Iterator<Item = &'v [u8]>) -> bool {
    values.any(|value| list_elements(value).any(|e| e.eq_ignore_ascii_case(b"no-transform")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryConn;
    use crate::Response;
    use std::sync::atomic::{AtomicU16, Ordering::SeqCst};
    use std::sync::Arc;

    /// The gzip quality keel reads from a request with these header lines.
    fn gzip_q(lines: &str) -> Quality {
        let seen = Arc::new(AtomicU16::new(u16::MAX));
        let seen_by_handler = Arc::clone(&seen);
        let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
            seen_by_handler.store(gzip_quality(req), SeqCst);
            res.body(b"");
        });
        conn.send(format!("GET / HTTP/1.1\r\nHost: a\r\n{lines}\r\n").as_bytes());
        assert!(conn.recv().starts_with(b"HTTP/1.1 200"));
        seen.load(SeqCst)
    }

    #[test]
    fn accept_encoding_table() {
        let table: &[(&str, Quality)] = &[
            ("", 0),
            ("Accept-Encoding: \r\n", 0),
            ("Accept-Encoding: gzip\r\n", 1000),
            ("accept-encoding: GZip\r\n", 1000),
            ("Accept-Encoding: x-gzip\r\n", 1000),
            ("Accept-Encoding: deflate, br\r\n", 0),
            ("Accept-Encoding: identity\r\n", 0),
            ("Accept-Encoding: *\r\n", 1000),
            ("Accept-Encoding: br;q=1.0, gzip;q=0.8, *;q=0.1\r\n", 800),
            ("Accept-Encoding: gzip;q=0\r\n", 0),
            ("Accept-Encoding: gzip; Q=0.000\r\n", 0),
            ("Accept-Encoding: gzip;q=0.001\r\n", 1),
            ("Accept-Encoding: gzip ; q=0.5\r\n", 500),
            ("Accept-Encoding: gzip;q=1.000\r\n", 1000),
            // A refusal of gzip outweighs `*`, in either order.
            ("Accept-Encoding: *, gzip;q=0\r\n", 0),
            ("Accept-Encoding: gzip;q=0, *\r\n", 0),
            ("Accept-Encoding: *;q=0\r\n", 0),
            ("Accept-Encoding: *;q=0, gzip\r\n", 1000),
            // Repeated lines are one list (RFC 9110 §5.3).
            ("Accept-Encoding: br\r\nAccept-Encoding: gzip\r\n", 1000),
            ("Accept-Encoding: gzip\r\nAccept-Encoding: gzip;q=0\r\n", 0),
            // Malformed q-values refuse.
            ("Accept-Encoding: gzip;q=2\r\n", 0),
            ("Accept-Encoding: gzip;q=1.5\r\n", 0),
            ("Accept-Encoding: gzip;q=0.5555\r\n", 0),
            ("Accept-Encoding: gzip;q=\r\n", 0),
            ("Accept-Encoding: gzip;q=-1\r\n", 0),
            ("Accept-Encoding: gzip;q = 1\r\n", 0),
            ("Accept-Encoding: gzip;q\r\n", 0),
            // Other parameters are ignored; empty elements skipped.
            ("Accept-Encoding: gzip;level=9\r\n", 1000),
            ("Accept-Encoding: , ,gzip,\r\n", 1000),
            // Not gzip, though it starts alike.
            ("Accept-Encoding: gzipx\r\n", 0),
        ];
        for &(lines, expected) in table {
            assert_eq!(gzip_q(lines), expected, "{lines:?}");
        }
    }

    #[test]
    fn content_type_table() {
        let yes = [
            "text/html",
            "text/plain; charset=utf-8",
            "TEXT/CSS",
            "text/csv",
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
            "application/javascript",
            "application/xml",
            "application/atom+xml",
            "image/svg+xml",
            "application/wasm",
            "font/ttf",
            "image/x-icon",
        ];
        let no = [
            "text/event-stream",
            "Text/Event-Stream; charset=utf-8",
            "image/png",
            "image/jpeg",
            "image/webp",
            "video/mp4",
            "audio/ogg",
            "application/zip",
            "application/gzip",
            "application/octet-stream",
            "application/pdf",
            "font/woff2",
            "json",
            "",
            "application/jsonx",
        ];
        for t in yes {
            assert!(is_compressible(t.as_bytes()), "{t}");
        }
        for t in no {
            assert!(!is_compressible(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn vary_and_cache_control() {
        assert!(varies_on_encoding(
            [&b"Origin, accept-encoding"[..]].into_iter()
        ));
        assert!(varies_on_encoding([&b"Origin"[..], b"*"].into_iter()));
        assert!(!varies_on_encoding([&b"Origin"[..], b"Accept"].into_iter()));
        assert!(forbids_transform(
            [&b"public, No-Transform"[..]].into_iter()
        ));
        assert!(!forbids_transform([&b"no-store"[..]].into_iter()));
    }
}
