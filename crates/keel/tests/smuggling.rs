//! Ambiguous or malformed framing gets one error response and a close; the
//! bytes after it are never read as a second request (RFC 9112 §6.3, §7.1).

mod util;

use util::{app, parse_all, TestServer};

/// Each case ends with a request the server must never answer.
const SMUGGLED: &str = "GET /n/smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

fn assert_rejected(server: &TestServer, wire: &str, status: u16) {
    let bytes = server.exchange(format!("{wire}{SMUGGLED}").as_bytes());
    let responses = parse_all(&bytes);
    assert_eq!(
        responses.len(),
        1,
        "exactly one response to {wire:?}: {responses:?}"
    );
    assert_eq!(
        responses[0].status,
        status,
        "status for {wire:?}: {}",
        responses[0].text()
    );
    assert!(responses[0].closes(), "Connection: close for {wire:?}");
}

#[test]
fn content_length_with_transfer_encoding() {
    let server = TestServer::start(app);
    assert_rejected(&server, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    assert_rejected(&server, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400);
}

#[test]
fn conflicting_or_invalid_content_lengths() {
    let server = TestServer::start(app);
    for cl in [
        "Content-Length: 3\r\nContent-Length: 4",
        "Content-Length: 3, 4",
        "Content-Length: -1",
        "Content-Length: +3",
        "Content-Length: 3 3",
        "Content-Length: 0x3",
        "Content-Length:",
        "Content-Length: 18446744073709551616",
    ] {
        assert_rejected(
            &server,
            &format!("POST /echo HTTP/1.1\r\nHost: a\r\n{cl}\r\n\r\nabc"),
            400,
        );
    }
}

#[test]
fn transfer_encoding_not_ending_in_chunked() {
    let server = TestServer::start(app);
    for te in [
        "Transfer-Encoding: chunked, identity",
        "Transfer-Encoding: identity",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip",
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: xchunked",
        "Transfer-Encoding: chunked;x=1",
    ] {
        assert_rejected(
            &server,
            &format!("POST /echo HTTP/1.1\r\nHost: a\r\n{te}\r\n\r\n0\r\n\r\n"),
            400,
        );
    }
    // A known coding we do not decode, under a final chunked: 501.
    assert_rejected(
        &server,
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
    // Transfer-Encoding in HTTP/1.0 is faulty framing.
    assert_rejected(
        &server,
        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn invalid_chunk_framing() {
    let server = TestServer::start(app);
    let head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "z\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "3\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        "0\r\nX: y\r\n z\r\n\r\n",
        "0\r\nX : y\r\n\r\n",
    ] {
        assert_rejected(&server, &format!("{head}{body}"), 400);
    }
}

#[test]
fn malformed_header_lines() {
    let server = TestServer::start(app);
    for wire in [
        "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Space : b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n Leading: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-CR: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nNo-Colon\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_rejected(&server, wire, 400);
    }
}

#[test]
fn host_must_appear_exactly_once_in_http11() {
    let server = TestServer::start(app);
    assert_rejected(&server, "GET /plaintext HTTP/1.1\r\n\r\n", 400);
    assert_rejected(
        &server,
        "GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
    assert_rejected(
        &server,
        "GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        400,
    );
    assert_rejected(&server, "GET /plaintext HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
}

#[test]
fn versions_and_methods_we_do_not_serve() {
    let server = TestServer::start(app);
    assert_rejected(&server, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    assert_rejected(&server, "GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505);
    assert_rejected(&server, "GET / HTXP/1.1\r\nHost: a\r\n\r\n", 400);
    assert_rejected(
        &server,
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        501,
    );
    assert_rejected(&server, "GET nowhere HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    assert_rejected(
        &server,
        "PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx",
        417,
    );
}

#[test]
fn a_body_shorter_than_its_length_does_not_swallow_the_next_request() {
    // The server waits for the promised bytes: the "next request" is body.
    let server = TestServer::start(app);
    let mut stream = server.connect();
    use std::io::Write;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    stream.write_all(b"1234567890").unwrap();
    let responses = util::read_responses(&mut stream, 1);
    assert_eq!(
        responses[0].body,
        b"GET /n/2 HTTP/1.1\r\nHost: a\r\n\r\n1234567890"
    );
}

#[test]
fn errors_are_counted() {
    let server = TestServer::start(app);
    assert_rejected(&server, "GET / HTTP/1.1\r\n\r\n", 400);
    let stats = server.handle().stats();
    assert_eq!(stats.parse_errors, 1);
    assert_eq!(stats.responses_4xx, 1);
}
