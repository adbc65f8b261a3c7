//! What the client accepts (`Accept-Encoding`) and what is worth
//! compressing (`Content-Type`, `Cache-Control`, `Vary`).

use crate::files::{is_compressible, negotiate_encoding, Encoding, Variants};
use crate::http1::parse::list_elements;
use crate::Request;

/// Whether the client takes gzip rather than the body as it is: the
/// shared `Accept-Encoding` negotiation of [`negotiate_encoding`] (RFC 9110
/// §12.5.3), with gzip the one coding on offer.
pub(super) fn wants_gzip(req: &Request<'_>) -> bool {
    let offer = Variants {
        brotli: false,
        gzip: true,
    };
    negotiate_encoding(req, offer) == Some(Encoding::Gzip)
}

/// Whether a `Content-Type` value names a type worth compressing (see
/// [`is_compressible`]).
pub(super) fn compressible(content_type: &[u8]) -> bool {
    std::str::from_utf8(content_type).is_ok_and(is_compressible)
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
    use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
    use std::sync::Arc;

    /// Whether keel gzips for a request with these header lines.
    fn gzips(lines: &str) -> bool {
        let seen = Arc::new(AtomicU8::new(u8::MAX));
        let seen_by_handler = Arc::clone(&seen);
        let mut conn = MemoryConn::new(move |req: &Request<'_>, res: &mut Response<'_>| {
            seen_by_handler.store(u8::from(wants_gzip(req)), SeqCst);
            res.body(b"");
        });
        conn.send(format!("GET / HTTP/1.1\r\nHost: a\r\n{lines}\r\n").as_bytes());
        assert!(conn.recv().starts_with(b"HTTP/1.1 200"));
        seen.load(SeqCst) == 1
    }

    #[test]
    fn accept_encoding_table() {
        // (lines, gzip's q in thousandths: 0 means identity)
        let table: &[(&str, u16)] = &[
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
        for &(lines, q) in table {
            assert_eq!(gzips(lines), q > 0, "{lines:?}");
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
