//! Table tests of content-coding negotiation: one wire sample per case,
//! each citing the RFC 9110 rule it checks.

use super::*;
use crate::files::wire::with_request;

use Encoding::{Brotli as BR, Gzip as GZ, Identity as ID};

const ALL: Variants = Variants {
    brotli: true,
    gzip: true,
};
const GZIP_ONLY: Variants = Variants {
    brotli: false,
    gzip: true,
};
const NONE: Variants = Variants {
    brotli: false,
    gzip: false,
};

fn negotiate(lines: &[&str], available: Variants) -> Option<Encoding> {
    let lines: String = lines
        .iter()
        .map(|v| format!("Accept-Encoding: {v}\r\n"))
        .collect();
    let wire = format!("GET /app.js HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
    with_request(&wire, |req| negotiate_encoding(req, available))
}

#[test]
fn accept_encoding_follows_rfc_9110_section_12_5_3() {
    let cases: &[(&str, &[&str], Variants, Option<Encoding>)] = &[
        ("12.5.3 no field: identity", &[], ALL, Some(ID)),
        ("12.5.3 empty field: identity", &[""], ALL, Some(ID)),
        ("12.5.3 gzip", &["gzip"], ALL, Some(GZ)),
        ("12.5.3 br", &["br"], ALL, Some(BR)),
        (
            "12.5.3 tie: the smaller variant",
            &["gzip, br"],
            ALL,
            Some(BR),
        ),
        (
            "12.5.3 tie with q",
            &["gzip;q=0.5, br;q=0.5"],
            ALL,
            Some(BR),
        ),
        ("12.4.2 the higher q", &["br;q=0.5, gzip"], ALL, Some(GZ)),
        (
            "12.4.2 the higher q, three digits",
            &["br;q=0.799, gzip;q=0.8"],
            ALL,
            Some(GZ),
        ),
        ("12.5.3 * takes the best", &["*"], ALL, Some(BR)),
        ("12.5.3 * and what exists", &["*"], GZIP_ONLY, Some(GZ)),
        ("12.5.3 * without variants", &["*"], NONE, Some(ID)),
        ("8.4.1 codings are case-insensitive", &["BR"], ALL, Some(BR)),
        (
            "8.4.1 codings are case-insensitive",
            &["GZip"],
            GZIP_ONLY,
            Some(GZ),
        ),
        ("8.4.1.3 x-gzip is gzip", &["x-gzip"], ALL, Some(GZ)),
        (
            "12.4.2 Q is case-insensitive",
            &["gzip;Q=1.000"],
            ALL,
            Some(GZ),
        ),
        (
            "12.4.2 OWS before a parameter",
            &["gzip ; q=0.8"],
            ALL,
            Some(GZ),
        ),
        (
            "12.5.3 q=0 is not acceptable",
            &["br;q=0, gzip"],
            ALL,
            Some(GZ),
        ),
        (
            "12.5.3 all codings refused",
            &["br;q=0, gzip;q=0"],
            ALL,
            Some(ID),
        ),
        (
            "12.5.3 identity;q=0 with nothing else",
            &["identity;q=0"],
            ALL,
            None,
        ),
        (
            "12.5.3 identity;q=0, gzip",
            &["identity;q=0, gzip"],
            ALL,
            Some(GZ),
        ),
        ("12.5.3 *;q=0", &["*;q=0"], ALL, None),
        (
            "12.5.3 *;q=0 but identity",
            &["*;q=0, identity"],
            ALL,
            Some(ID),
        ),
        (
            "12.5.3 *;q=0 but gzip",
            &["*;q=0, gzip"],
            GZIP_ONLY,
            Some(GZ),
        ),
        ("12.5.3 * covers identity too", &["*;q=0.5"], NONE, Some(ID)),
        (
            "12.5.3 unknown codings",
            &["deflate, zstd, compress"],
            ALL,
            Some(ID),
        ),
        ("12.5.3 no such variant", &["gzip"], NONE, Some(ID)),
        ("12.5.3 no such variant", &["br"], GZIP_ONLY, Some(ID)),
        (
            "12.5.3 unlisted identity is the last resort",
            &["gzip;q=0.5"],
            ALL,
            Some(GZ),
        ),
        (
            "12.5.3 listed identity has its weight",
            &["gzip;q=0.5, identity"],
            ALL,
            Some(ID),
        ),
        (
            "12.5.3 unlisted identity ties the lowest",
            &["gzip;q=0.001"],
            ALL,
            Some(GZ),
        ),
        ("12.4.2 q above 1 is invalid", &["gzip;q=2"], ALL, Some(ID)),
        (
            "12.4.2 four decimals are invalid",
            &["gzip;q=0.0001"],
            ALL,
            Some(ID),
        ),
        ("12.4.2 1.001 is invalid", &["gzip;q=1.001"], ALL, Some(ID)),
        ("12.4.2 empty q is invalid", &["gzip;q="], ALL, Some(ID)),
        (
            "12.4.2 negative q is invalid",
            &["gzip;q=-1"],
            ALL,
            Some(ID),
        ),
        (
            "12.4.2 an invalid q only drops its entry",
            &["br;q=x, gzip"],
            ALL,
            Some(GZ),
        ),
        (
            "12.5.3 other parameters ignored",
            &["gzip;level=9"],
            ALL,
            Some(GZ),
        ),
        ("5.6.1 empty members", &[" , gzip ,, "], ALL, Some(GZ)),
        ("5.3 lines combine", &["gzip;q=0.5", "br"], ALL, Some(BR)),
        ("5.3 lines combine", &["br;q=0", "gzip"], ALL, Some(GZ)),
        (
            "listed twice: the lower weight",
            &["gzip, gzip;q=0"],
            ALL,
            Some(ID),
        ),
    ];
    for (rule, lines, available, expected) in cases {
        let got = negotiate(lines, *available);
        assert_eq!(
            got, *expected,
            "§{rule}: Accept-Encoding {lines:?} with {available:?}"
        );
    }
}

#[test]
fn encodings_name_their_header_and_file() {
    assert_eq!(BR.content_encoding(), Some("br"));
    assert_eq!(GZ.content_encoding(), Some("gzip"));
    assert_eq!(ID.content_encoding(), None);
    assert_eq!([BR, GZ, ID].map(Encoding::file_suffix), [".br", ".gz", ""]);
}

#[test]
fn compressible_types() {
    let compressible = [
        "text/html",
        "text/plain; charset=utf-8",
        "TEXT/CSS",
        "text/javascript",
        "application/json",
        "Application/JSON ; charset=utf-8",
        "application/javascript",
        "application/xml",
        "application/wasm",
        "application/problem+json",
        "application/atom+xml",
        "image/svg+xml",
        "font/ttf",
        "image/x-icon",
    ];
    let not_compressible = [
        "text/event-stream",
        "image/png",
        "image/jpeg",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "application/zip",
        "application/gzip",
        "application/octet-stream",
        "application/pdf",
        "font/woff2",
        "multipart/byteranges; boundary=x",
        "json",
        "",
        "+json",
    ];
    for content_type in compressible {
        assert!(is_compressible(content_type), "{content_type:?}");
    }
    for content_type in not_compressible {
        assert!(!is_compressible(content_type), "{content_type:?}");
    }
}

#[test]
fn qvalues_are_thousandths() {
    let cases: [(&[u8], Option<u16>); 9] = [
        (b"1", Some(1000)),
        (b"1.", Some(1000)),
        (b"1.000", Some(1000)),
        (b"0", Some(0)),
        (b"0.5", Some(500)),
        (b"0.25", Some(250)),
        (b"0.001", Some(1)),
        (b".5", None),
        (b"0.5x", None),
    ];
    for (text, expected) in cases {
        assert_eq!(
            qvalue(text),
            expected,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
}
