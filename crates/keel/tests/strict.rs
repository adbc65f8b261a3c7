//! Strict parsing by default, over real sockets: each rule's bytes get one
//! `400` with `Connection: close`, the server closes, and the request sent
//! after them on the same connection is never answered; with the one
//! `Leniency` field that relaxes the rule, the same bytes are served.
//! The rules and their RFC sections are tabled in docs/guide.md.

mod util;

use keel::{Config, Leniency};
use std::io::Write;
use std::time::Duration;
use util::{app, parse_all, read_responses, TestServer};

/// Sent after each case: answered only if the case was served.
const NEXT: &str = "GET /n/next HTTP/1.1\r\nHost: a\r\n\r\n";

fn server(lenient: Leniency) -> TestServer {
    let config = Config {
        lenient,
        ..Config::default()
    };
    TestServer::with(app, config, 1)
}

/// `wire` then [`NEXT`] on one connection: exactly one response, `status`,
/// with `Connection: close`, and the server closed (read to end of stream).
fn assert_refused(server: &TestServer, wire: &[u8], status: u16) {
    let shown = String::from_utf8_lossy(wire);
    let bytes = server.exchange(&[wire, NEXT.as_bytes()].concat());
    let responses = parse_all(&bytes);
    assert_eq!(
        responses.len(),
        1,
        "one response to {shown:?}: {responses:?}"
    );
    assert_eq!(
        responses[0].status,
        status,
        "{shown:?}: {}",
        responses[0].text()
    );
    assert!(responses[0].closes(), "Connection: close for {shown:?}");
}

/// `wire` then [`NEXT`] on one connection: `wire` answered 200 with `body`,
/// and the connection still serves the request after it.
fn assert_served(server: &TestServer, wire: &[u8], body: &str) {
    let shown = String::from_utf8_lossy(wire);
    let mut stream = server.connect();
    stream.write_all(&[wire, NEXT.as_bytes()].concat()).unwrap();
    let responses = read_responses(&mut stream, 2);
    assert_eq!(
        responses[0].status,
        200,
        "{shown:?}: {}",
        responses[0].text()
    );
    assert_eq!(responses[0].text(), body, "{shown:?}");
    assert!(!responses[0].closes(), "{shown:?}");
    assert_eq!(
        (responses[1].status, responses[1].text().as_str()),
        (200, "next")
    );
}

/// RFC 9112 §2.2: a bare LF ending the request line, a field line or the
/// head, or an empty line before the request line.
const BARE_LF_HEADS: [&[u8]; 5] = [
    b"GET /plaintext HTTP/1.1\nHost: a\r\n\r\n",
    b"GET /plaintext HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n",
    b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n",
    b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\n",
    b"\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
];

#[test]
fn a_bare_lf_in_the_head_is_refused_unless_lenient() {
    let strict = server(Leniency::default());
    let lenient = server(Leniency {
        bare_lf: true,
        ..Leniency::default()
    });
    for wire in BARE_LF_HEADS {
        assert_refused(&strict, wire, 400);
        assert_served(&lenient, wire, "Hello, World!");
    }
    // CRLF empty lines before the request line stay skipped (RFC 9112 §2.2).
    assert_served(
        &strict,
        b"\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        "Hello, World!",
    );
}

/// RFC 9112 §7.1: chunked framing ends its lines in CRLF, whatever the
/// leniency: a bare LF there is the classic smuggling vector.
#[test]
fn a_bare_lf_in_chunked_framing_is_always_refused() {
    let head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let bodies = [
        "3\nabc\r\n0\r\n\r\n",
        "3;a=b\nabc\r\n0\r\n\r\n",
        "3\r\nabc\n0\r\n\r\n",
        "3\r\nabc\r\n0\n\r\n",
        "3\r\nabc\r\n0\r\nX: 1\n\r\n",
        "3\r\nabc\r\n0\r\n\n",
    ];
    let strict = server(Leniency::default());
    let lenient = server(Leniency {
        bare_lf: true,
        ..Leniency::default()
    });
    for body in bodies {
        let wire = format!("{head}{body}");
        assert_refused(&strict, wire.as_bytes(), 400);
        assert_refused(&lenient, wire.as_bytes(), 400);
    }
    assert_served(
        &strict,
        format!("{head}3\r\nabc\r\n0\r\n\r\n").as_bytes(),
        "abc",
    );
}

/// RFC 9110 §2.5, §6.2: HTTP/1.2 to 1.9 are answered as HTTP/1.1, and the
/// connection stays open; other versions keep their answers.
#[test]
fn later_minor_versions_are_served_as_http_1_1() {
    let server = server(Leniency::default());
    for minor in 2..=9 {
        let wire = format!("GET /info HTTP/1.{minor}\r\nHost: a\r\n\r\n");
        let mut stream = server.connect();
        stream
            .write_all(format!("{wire}{NEXT}").as_bytes())
            .unwrap();
        let responses = read_responses(&mut stream, 2);
        assert_eq!(responses[0].status, 200, "HTTP/1.{minor}");
        assert!(
            responses[0].text().contains("Http11"),
            "{}",
            responses[0].text()
        );
        assert!(!responses[0].closes());
        assert_eq!(responses[1].text(), "next");
    }
    // The raw response starts `HTTP/1.1 200`.
    let mut stream = server.connect();
    stream
        .write_all(b"GET /close HTTP/1.7\r\nHost: a\r\n\r\n")
        .unwrap();
    let raw = util::read_to_close(&mut stream);
    assert!(
        raw.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    // The same when the version arrives in two writes, the line end last.
    let mut stream = server.connect();
    stream.write_all(b"GET /plaintext HTTP/1.").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    stream.write_all(b"2").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    stream.write_all(b"\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].text(), "Hello, World!");
    // Still refused: another major version, or a minor of two digits.
    assert_refused(&server, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    assert_refused(&server, b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
    assert_refused(&server, b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400);
}

/// RFC 9110 §7.2, RFC 9112 §3.2: an `http` target has an authority, so
/// `Host` is never empty.
#[test]
fn an_empty_host_is_refused_unless_lenient() {
    let strict = server(Leniency::default());
    let lenient = server(Leniency {
        empty_host: true,
        ..Leniency::default()
    });
    for wire in [
        &b"GET /plaintext HTTP/1.1\r\nHost: \r\n\r\n"[..],
        b"GET /plaintext HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET /plaintext HTTP/1.0\r\nHost: \r\nConnection: keep-alive\r\n\r\n",
    ] {
        assert_refused(&strict, wire, 400);
        assert_served(&lenient, wire, "Hello, World!");
    }
}

/// RFC 9112 §3.2 (no fragment in any form), RFC 9110 §4.2.4 (no userinfo):
/// refused whatever the leniency.
#[test]
fn a_fragment_or_userinfo_in_the_target_is_always_refused() {
    let all_lenient = Leniency {
        bare_lf: true,
        empty_host: true,
        target_bytes: true,
    };
    for server in [server(Leniency::default()), server(all_lenient)] {
        for target in [
            "/plaintext#x",
            "/plaintext?a#x",
            "http://a/plaintext#x",
            "http://a#x",
            "http://u@a/plaintext",
            "http://u:p@a/plaintext",
        ] {
            let wire = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_refused(&server, wire.as_bytes(), 400);
        }
    }
}

/// RFC 9112 §7.1.1: `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[test]
fn chunk_extensions_outside_the_grammar_are_refused() {
    let server = server(Leniency::default());
    let head = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for ext in [
        ";",
        " ;",
        ";=v",
        ";a=",
        ";a=b c",
        ";a ",
        ";a=\"b",
        ";a=\"b\"c",
        ";a=b;",
        ";a@b",
        ";a=(b)",
        "x",
    ] {
        let wire = format!("{head}3{ext}\r\nabc\r\n0\r\n\r\n");
        assert_refused(&server, wire.as_bytes(), 400);
    }
    for ext in [";a", ";a=b", " ; a = b", ";a=\"x;y=\\\"z\\\"\";b"] {
        let wire = format!("{head}3{ext}\r\nabc\r\n0\r\n\r\n");
        assert_served(&server, wire.as_bytes(), "abc");
    }
}

/// RFC 9110 §8.6: `Content-Length` is `1*DIGIT`; a list of one value
/// repeated stays accepted, an empty element does not.
#[test]
fn content_length_lists_with_empty_elements_are_refused() {
    let server = server(Leniency::default());
    for value in ["3,", ",3", "3,,3", "3, ", ","] {
        let wire = format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\nabc");
        assert_refused(&server, wire.as_bytes(), 400);
    }
    for fields in [
        "Content-Length: 3, 3",
        "Content-Length: 3\r\nContent-Length: 3",
    ] {
        let wire = format!("POST /echo HTTP/1.1\r\nHost: a\r\n{fields}\r\n\r\nabc");
        assert_served(&server, wire.as_bytes(), "abc");
    }
}

/// RFC 3986 §2.1, §3.3, §3.4: a target byte that is not allowed in its
/// place is refused, not routed.
#[test]
fn target_bytes_rfc_3986_does_not_allow_are_refused_unless_lenient() {
    let strict = server(Leniency::default());
    let lenient = server(Leniency {
        target_bytes: true,
        ..Leniency::default()
    });
    for target in [
        &b"/n/caf\xc3\xa9"[..],
        b"/n/a\\b",
        b"/n/a?q=\"x\"",
        b"/n/<a>",
        b"/n/a?b^c",
        b"/n/a?b`c",
        b"/n/a?q={}",
        b"/n/a?b|c",
        b"/n/[a]",
        b"/n/100%",
        b"/n/%4",
        b"/n/%zz",
        b"http://a/n/b|c",
    ] {
        let wire = [b"GET ", target, b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
        assert_refused(&strict, &wire, 400);
        let path = target.strip_prefix(b"http://a").unwrap_or(target);
        let path = path.split(|&b| b == b'?').next().unwrap();
        let body = String::from_utf8_lossy(&path[3..]).into_owned();
        assert_served(&lenient, &wire, &body);
    }
    // Every byte RFC 3986 allows, and escapes, stay routed.
    assert_served(
        &strict,
        b"GET /n/AZaz09-._~!$&'()*+,;=:@%41?/?%20 HTTP/1.1\r\nHost: a\r\n\r\n",
        "AZaz09-._~!$&'()*+,;=:@%41",
    );
    assert_served(
        &strict,
        b"GET http://[::1]:8080/n/v6 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "v6",
    );
}
