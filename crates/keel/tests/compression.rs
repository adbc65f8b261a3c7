//! The gzip layer over real sockets: what gets compressed, what passes
//! through untouched, and that framing stays exact around it.

mod util;

use keel::middleware::{Compression, HandlerExt};
use keel::{Pull, Request, Response, StatusCode};
use std::io::{Read, Write};
use util::{parse_response, read_responses, read_to_close, Resp, TestServer};

/// `len` bytes of a JSON-like list (compressible, not trivially so).
fn json(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 64);
    let mut i = 0;
    while body.len() < len {
        body.extend_from_slice(
            format!(
                "{{\"slug\":\"k{i:05}\",\"target\":\"https://example.org/p/{}\"}},",
                i * 7919
            )
            .as_bytes(),
        );
        i += 1;
    }
    body.truncate(len);
    body
}

/// The routes under test; the last path segment of `/json/<n>` is a length.
fn app(req: &Request<'_>, res: &mut Response<'_>) {
    let path = req.path();
    let json_len = |prefix: &str| path.strip_prefix(prefix).and_then(|n| n.parse().ok());
    if let Some(len) = json_len("/json/") {
        res.header("Content-Type", "application/json")
            .header("ETag", "\"v1\"")
            .body(&json(len));
    } else if let Some(len) = json_len("/write/") {
        res.header("Content-Type", "text/html; charset=utf-8");
        for piece in json(len).chunks(1000) {
            res.write(piece);
        }
    } else if let Some(len) = json_len("/bytes/") {
        res.header("Content-Type", "text/plain")
            .header("ETag", "W/\"weak\"")
            .body_bytes(json(len).into());
    } else {
        other(req, res);
    }
}

fn other(req: &Request<'_>, res: &mut Response<'_>) {
    let path = req.path();
    match path {
        "/png" => {
            res.header("Content-Type", "image/png").body(&json(8192));
        }
        "/untyped" => res.body(&json(8192)),
        "/encoded" => {
            res.header("Content-Type", "text/plain")
                .header("Content-Encoding", "br")
                .body(&json(8192));
        }
        "/no-transform" => {
            res.header("Content-Type", "text/plain")
                .header("Cache-Control", "public, no-transform")
                .body(&json(8192));
        }
        "/vary-origin" => {
            res.header("Content-Type", "text/plain")
                .header("Vary", "Origin")
                .body(&json(8192));
        }
        "/vary-encoding" => {
            res.header("Content-Type", "text/plain")
                .header("Vary", "accept-encoding")
                .body(&json(8192));
        }
        "/range" => {
            res.status(StatusCode::PARTIAL_CONTENT)
                .header("Content-Type", "text/plain")
                .header("Content-Range", "bytes 0-8191/20000")
                .body(&json(8192));
        }
        "/not-modified" => {
            res.status(StatusCode::NOT_MODIFIED)
                .header("ETag", "\"v1\"")
                .body(b"");
        }
        "/no-content" => {
            res.status(StatusCode::NO_CONTENT)
                .header("Content-Type", "text/plain")
                .body(b"");
        }
        "/chunked" => {
            res.header("Content-Type", "text/plain").chunked();
            for piece in json(8192).chunks(2048) {
                res.write(piece);
            }
        }
        "/from-worker" => {
            let mut body = Some(json(8192));
            res.header("Content-Type", "text/plain")
                .stream_from(move |out: &mut Pull<'_>| match body.take() {
                    Some(bytes) => out.send(&bytes).unwrap(),
                    None => out.finish().unwrap(),
                });
        }
        "/deferred-finished" => {
            // The layer's rule applied by the deferred answer itself.
            let gzip = Compression::accepts(req);
            let responder = res.defer();
            std::thread::spawn(move || {
                responder.respond(|res| {
                    res.hold();
                    res.header("Content-Type", "application/json")
                        .body(&json(8192));
                    Compression::new().finish(res, gzip);
                })
            });
        }
        "/deferred" => {
            let responder = res.defer();
            std::thread::spawn(move || {
                responder.respond(|res| {
                    res.header("Content-Type", "text/plain").body(&json(8192));
                })
            });
        }
        "/panic" => {
            res.header("Content-Type", "text/plain").body(&json(8192));
            panic!("after the body, under the layer");
        }
        _ => {
            res.header("Content-Type", "text/plain").body(b"small");
        }
    }
}

fn server() -> TestServer {
    TestServer::start(app.with(Compression::new()))
}

/// A request for `path` with these extra header lines, closing after it.
fn request(method: &str, path: &str, lines: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{lines}\r\n").into_bytes()
}

/// One response on its own connection: the raw head, and the response as
/// parsed by its own framing, which must account for every byte sent.
fn ask(server: &TestServer, method: &str, path: &str, lines: &str) -> (String, Resp) {
    let bytes = server.exchange(&request(method, path, lines));
    let (resp, used) = parse_response(&bytes, method == "HEAD", false)
        .unwrap_or_else(|| panic!("incomplete: {:?}", String::from_utf8_lossy(&bytes)));
    assert_eq!(used, bytes.len(), "bytes after the response");
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&bytes[..head_end + 4]).into_owned(),
        resp,
    )
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("a gzip body");
    plain
}

/// The values of every header line called `name`.
fn all(resp: &Resp, name: &str) -> Vec<String> {
    let lines = resp
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name));
    lines.map(|(_, v)| v.clone()).collect()
}

const GZIP: &str = "Accept-Encoding: gzip, deflate, br\r\n";

#[test]
fn a_gzip_answer_decodes_to_the_original_with_its_exact_length() {
    let server = server();
    for (path, len) in [
        ("/json/16384", 16384),
        ("/write/5000", 5000),
        ("/bytes/70000", 70000),
    ] {
        let (head, resp) = ask(&server, "GET", path, GZIP);
        assert_eq!(resp.status, 200, "{head}");
        assert_eq!(resp.header("content-encoding"), Some("gzip"), "{head}");
        assert_eq!(all(&resp, "vary"), ["Accept-Encoding"], "{head}");
        let length: usize = resp.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, resp.body.len(), "{head}");
        assert!(length * 4 < len, "{path}: {length} of {len} bytes");
        assert_eq!(gunzip(&resp.body), json(len), "{path}");
    }
}

#[test]
fn without_gzip_in_accept_encoding_the_body_is_identity_and_still_varies() {
    let server = server();
    for lines in [
        "",
        "Accept-Encoding: gzip;q=0\r\n",
        "Accept-Encoding: br, deflate\r\n",
        "Accept-Encoding: identity\r\n",
        "Accept-Encoding: *, gzip;q=0\r\n",
        "Accept-Encoding: gzip;q=7\r\n",
        "Accept-Encoding: gzip\r\nAccept-Encoding: gzip;q=0\r\n",
    ] {
        let (head, resp) = ask(&server, "GET", "/json/16384", lines);
        assert_eq!(resp.header("content-encoding"), None, "{lines:?}: {head}");
        assert_eq!(all(&resp, "vary"), ["Accept-Encoding"], "{lines:?}: {head}");
        assert_eq!(
            resp.header("etag"),
            Some("\"v1\""),
            "strong: the bytes are the handler's"
        );
        assert_eq!(resp.body, json(16384));
    }
    // `*` and a repeated line both accept it.
    for lines in [
        "Accept-Encoding: *\r\n",
        "Accept-Encoding: br\r\nAccept-Encoding: gzip;q=0.5\r\n",
    ] {
        let (head, _) = ask(&server, "GET", "/json/16384", lines);
        assert!(
            head.contains("\r\nContent-Encoding: gzip\r\n"),
            "{lines:?}: {head}"
        );
    }
}

#[test]
fn small_incompressible_encoded_and_no_transform_bodies_go_out_as_they_are() {
    let server = server();
    // (path, Vary expected): a small text body may still be gzip for a
    // larger one of the same resource; a PNG or an untyped body never is.
    let cases = [
        ("/json/1023", true),
        ("/png", false),
        ("/untyped", false),
        ("/encoded", false),
        ("/no-transform", false),
    ];
    for (path, varies) in cases {
        let (head, resp) = ask(&server, "GET", path, GZIP);
        let encoding = if path == "/encoded" { Some("br") } else { None };
        assert_eq!(resp.header("content-encoding"), encoding, "{path}: {head}");
        assert_eq!(resp.header("vary").is_some(), varies, "{path}: {head}");
        let len = if path == "/json/1023" { 1023 } else { 8192 };
        assert_eq!(resp.body, json(len), "{path}");
    }
    // The threshold is inclusive: 1024 bytes are compressed.
    let (head, _) = ask(&server, "GET", "/json/1024", GZIP);
    assert!(head.contains("\r\nContent-Encoding: gzip\r\n"), "{head}");
}

#[test]
fn a_body_over_max_len_is_not_compressed() {
    let server = TestServer::start(app.with(Compression::new().max_len(10_000).min_len(5)));
    let (head, _) = ask(&server, "GET", "/json/10000", GZIP);
    assert!(head.contains("\r\nContent-Encoding: gzip\r\n"), "{head}");
    let (head, resp) = ask(&server, "GET", "/json/10001", GZIP);
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert_eq!(resp.body, json(10001));
    let (head, _) = ask(&server, "GET", "/small", GZIP);
    assert!(
        head.contains("\r\nContent-Encoding: gzip\r\n"),
        "min_len 5: {head}"
    );
}

#[test]
fn range_not_modified_and_no_content_answers_are_never_compressed() {
    let server = server();
    let (head, resp) = ask(&server, "GET", "/range", GZIP);
    assert_eq!(resp.status, 206);
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert!(
        head.contains("\r\nContent-Range: bytes 0-8191/20000\r\n"),
        "{head}"
    );
    assert_eq!(resp.body, json(8192));

    // A 304 carries the ETag and Vary its gzip 200 had (RFC 9110 §15.4.5).
    let (head, resp) = ask(&server, "GET", "/not-modified", GZIP);
    assert_eq!(resp.status, 304);
    assert!(resp.body.is_empty());
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert_eq!(resp.header("etag"), Some("W/\"v1\""), "{head}");
    assert_eq!(all(&resp, "vary"), ["Accept-Encoding"], "{head}");
    // ...and its strong ETag to a client that takes identity.
    let (head, resp) = ask(&server, "GET", "/not-modified", "");
    assert_eq!(resp.header("etag"), Some("\"v1\""), "{head}");

    let (head, resp) = ask(&server, "GET", "/no-content", GZIP);
    assert_eq!(resp.status, 204);
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert!(resp.body.is_empty());
}

#[test]
fn a_strong_etag_becomes_weak_a_weak_one_stays() {
    let server = server();
    let (head, resp) = ask(&server, "GET", "/json/4096", GZIP);
    assert_eq!(all(&resp, "etag"), ["W/\"v1\""], "{head}");
    let (head, resp) = ask(&server, "GET", "/bytes/4096", GZIP);
    assert_eq!(resp.header("content-encoding"), Some("gzip"), "{head}");
    assert_eq!(all(&resp, "etag"), ["W/\"weak\""], "{head}");
}

#[test]
fn head_says_what_get_would_without_a_length_or_a_body() {
    let server = server();
    let (get_head, get) = ask(&server, "GET", "/json/16384", GZIP);
    let (head, resp) = ask(&server, "HEAD", "/json/16384", GZIP);
    for name in ["content-encoding", "vary", "etag", "content-type"] {
        assert_eq!(
            resp.header(name),
            get.header(name),
            "{name}: {head} vs {get_head}"
        );
    }
    assert_eq!(resp.header("content-length"), None, "{head}");
    // A HEAD that is not compressed keeps its exact length.
    let (head, resp) = ask(&server, "HEAD", "/json/16384", "");
    assert_eq!(resp.header("content-length"), Some("16384"), "{head}");
    assert_eq!(resp.header("vary"), Some("Accept-Encoding"), "{head}");

    // No length, yet nothing follows a HEAD answer: the connection goes on.
    let mut stream = server.connect();
    stream
        .write_all(
            format!(
                "HEAD /json/16384 HTTP/1.1\r\nHost: t\r\n{GZIP}\r\n\
                 GET /json/2000 HTTP/1.1\r\nHost: t\r\n{GZIP}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let bytes = read_to_close(&mut stream);
    let (first, used) = parse_response(&bytes, true, false).unwrap();
    assert_eq!(first.header("content-encoding"), Some("gzip"));
    let (second, rest) = parse_response(&bytes[used..], false, false).unwrap();
    assert_eq!(used + rest, bytes.len());
    assert_eq!(gunzip(&second.body), json(2000));
}

#[test]
fn a_pipelined_compressed_then_plain_pair_keeps_both_framed() {
    let server = server();
    let mut stream = server.connect();
    let batch = format!(
        "GET /json/16384 HTTP/1.1\r\nHost: t\r\n{GZIP}\r\n\
         GET /png HTTP/1.1\r\nHost: t\r\n{GZIP}\r\n\
         GET /json/3000 HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /write/3000 HTTP/1.1\r\nHost: t\r\n{GZIP}\r\n"
    );
    stream.write_all(batch.as_bytes()).unwrap();
    // read_responses also checks that no byte is left over.
    let got = read_responses(&mut stream, 4);
    assert_eq!(gunzip(&got[0].body), json(16384));
    assert_eq!(got[1].body, json(8192));
    assert_eq!(got[2].body, json(3000));
    assert_eq!(gunzip(&got[3].body), json(3000));
    let encodings: Vec<_> = got.iter().map(|r| r.header("content-encoding")).collect();
    assert_eq!(encodings, [Some("gzip"), None, None, Some("gzip")]);
}

#[test]
fn a_panic_under_the_layer_costs_one_500_and_the_worker_serves_on() {
    let server = server();
    let bytes = server.exchange(
        format!("GET /panic HTTP/1.1\r\nHost: t\r\n{GZIP}\r\nGET /json/2000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .as_bytes(),
    );
    let (resp, used) = parse_response(&bytes, false, false).unwrap();
    assert_eq!(resp.status, 500);
    assert!(resp.closes());
    assert_eq!(resp.header("content-encoding"), None);
    assert_eq!(used, bytes.len(), "one answer, then the close");
    let (_, resp) = ask(&server, "GET", "/json/2000", GZIP);
    assert_eq!(gunzip(&resp.body), json(2000));
}

#[test]
fn streamed_and_deferred_answers_pass_through_untouched() {
    let server = server();
    let (head, resp) = ask(&server, "GET", "/chunked", GZIP);
    assert!(
        head.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{head}"
    );
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert_eq!(resp.body, json(8192));
    let (head, resp) = ask(&server, "GET", "/deferred", GZIP);
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert_eq!(resp.body, json(8192));
    let (head, resp) = ask(&server, "GET", "/from-worker", GZIP);
    assert!(
        head.contains("chunked") && !head.contains("Content-Encoding"),
        "{head}"
    );
    assert_eq!(resp.body, json(8192));
}

#[test]
fn a_deferred_answer_that_calls_finish_is_compressed_like_any_other() {
    let server = server();
    let (head, resp) = ask(&server, "GET", "/deferred-finished", GZIP);
    assert_eq!(resp.header("content-encoding"), Some("gzip"), "{head}");
    assert_eq!(resp.header("vary"), Some("Accept-Encoding"), "{head}");
    assert_eq!(gunzip(&resp.body), json(8192));
    let (head, resp) = ask(&server, "GET", "/deferred-finished", "");
    assert_eq!(resp.header("content-encoding"), None, "{head}");
    assert_eq!(resp.header("vary"), Some("Accept-Encoding"), "{head}");
    assert_eq!(resp.body, json(8192));
}

#[test]
fn vary_is_added_beside_the_handlers_own_once() {
    let server = server();
    let (head, resp) = ask(&server, "GET", "/vary-origin", GZIP);
    assert_eq!(all(&resp, "vary"), ["Origin", "Accept-Encoding"], "{head}");
    let (head, resp) = ask(&server, "GET", "/vary-encoding", GZIP);
    assert_eq!(all(&resp, "vary"), ["accept-encoding"], "{head}");
    assert_eq!(gunzip(&resp.body), json(8192));
}

/// An attacker's Accept-Encoding: 8 KiB of odd elements and parameters.
/// It is refused or ignored, never a panic, and gzip is not chosen from it.
#[test]
fn a_hostile_accept_encoding_costs_a_normal_answer() {
    let server = server();
    let junk = ";q=;q=1.0000;;,*;q=0.x,gzip;q=1e3,\t,gzip ;q = 1,".repeat(150);
    let (head, resp) = ask(
        &server,
        "GET",
        "/json/4096",
        &format!("Accept-Encoding: {junk}\r\n"),
    );
    assert_eq!(resp.status, 200, "{head}");
    assert_eq!(resp.header("content-encoding"), None, "{head}");
    assert_eq!(resp.body, json(4096));
}

/// The layer over other handlers keeps keel's own answers intact: a route
/// that is not there is a plain 404.
#[test]
fn layered_over_a_router_a_404_stays_a_404() {
    let routes = keel::Router::new().get("/json/:n", app).build().unwrap();
    let server = TestServer::start(routes.with(Compression::new()));
    let (head, resp) = ask(&server, "GET", "/nope", GZIP);
    assert_eq!(resp.status, 404, "{head}");
    let (head, resp) = ask(&server, "GET", "/json/5000", GZIP);
    assert_eq!(resp.status, 200, "{head}");
    assert_eq!(gunzip(&resp.body), json(5000));
}
