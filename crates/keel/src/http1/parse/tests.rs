//! Heads and framing, one wire sample per case.

use super::*;

fn parse(wire: &[u8]) -> Result<Option<Framing>, ProtocolError> {
    parse_with(wire, &Config::default())
}

fn parse_with(wire: &[u8], config: &Config) -> Result<Option<Framing>, ProtocolError> {
    let mut slots = header_slots();
    parse_head(wire, &mut slots, config).map(|r| r.map(|(_, f)| f))
}

#[test]
fn simple_get_is_keep_alive_without_body() {
    let f = parse(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(f.head_len, 36);
    assert_eq!(f.body, BodyLength::Empty);
    assert!(f.keep_alive && !f.is_head && !f.expect_continue);
    assert_eq!(f.minor, 1);
}

#[test]
fn incomplete_head_needs_more() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .unwrap()
            .map(|f| f.head_len),
        None
    );
    assert_eq!(parse(b"GE").unwrap().map(|f| f.head_len), None);
}

#[test]
fn keep_alive_rules() {
    let ka = |wire: &[u8]| parse(wire).unwrap().unwrap().keep_alive;
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n"
    ));
    assert!(ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"
    ));
    // The keep-alive fast path, and values it must not take.
    assert!(ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

/// `is_name` agrees with `eq_ignore_ascii_case` on every token: each
/// byte of each name it is used with, replaced by every token byte.
#[test]
fn is_name_matches_case_insensitive_equality_on_tokens() {
    fn check<const N: usize>(lower: &[u8; N]) {
        assert!(is_name(lower, lower));
        assert!(!is_name(&lower[1..], lower), "shorter");
        for i in 0..N {
            for b in (0..=255u8).filter(|&b| is_token_byte(b)) {
                let mut name = *lower;
                name[i] = b;
                assert_eq!(
                    is_name(&name, lower),
                    name.eq_ignore_ascii_case(lower),
                    "{:?}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
    }
    check(b"host");
    check(b"content-length");
    check(b"transfer-encoding");
    check(b"connection");
    check(b"expect");
    check(b"keep-alive");
}

#[test]
fn all_in_is_all() {
    for sample in [
        &b""[..],
        b"abc",
        b"a b",
        b"\x00",
        b"x-y_z.~",
        b"caf\xc3\xa9",
    ] {
        assert_eq!(
            all_token(sample),
            sample.iter().all(|&b| is_token_byte(b)),
            "{sample:?}"
        );
    }
}

#[test]
fn body_lengths() {
    let body = |wire: &[u8]| parse(wire).unwrap().unwrap().body;
    assert_eq!(
        body(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
        BodyLength::Fixed(5)
    );
    assert_eq!(
        body(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"),
        BodyLength::Fixed(5)
    );
    assert_eq!(
        body(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
        BodyLength::Empty
    );
    assert_eq!(
        body(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"),
        BodyLength::Chunked
    );
}

/// One wire sample per rejected case, with the error it must give.
#[test]
fn rejections() {
    use ProtocolError::*;
    let cases: &[(&[u8], ProtocolError)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost),
        (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", InvalidHost),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", AmbiguousLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", InvalidContentLength),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferCoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", InvalidTransferEncoding),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", InvalidTransferEncoding),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n", Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n", Malformed),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", Malformed),
        (b"GET / HTTP/1.1\r\nHo\x00st: a\r\n\r\n", Malformed),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Malformed),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", Malformed),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", UnsupportedVersion),
        (b"GET / HTPT/1.1\r\nHost: a\r\n\r\n", Malformed),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Malformed),
        (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", UnsupportedMethod),
        (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n", UnsupportedExpectation),
    ];
    for (wire, want) in cases {
        let got = parse(wire);
        assert_eq!(
            got.map(|f| f.map(|f| f.body)),
            Err(*want),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn accepted_edge_forms() {
    for wire in [
        &b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert!(
            parse(wire).unwrap().is_some(),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn limits() {
    let config = Config {
        max_target: 64,
        max_header_bytes: 256,
        max_headers: 4,
        ..Config::default()
    };
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(64));
    assert_eq!(
        parse_with(long_target.as_bytes(), &config).err(),
        Some(ProtocolError::TargetTooLong)
    );
    // Still arriving, but already too long to be a valid request line.
    let partial = format!("GET /{}", "a".repeat(200));
    assert_eq!(
        parse_with(partial.as_bytes(), &config).err(),
        Some(ProtocolError::TargetTooLong)
    );
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(300)
    );
    assert_eq!(
        parse_with(big_head.as_bytes(), &config).err(),
        Some(ProtocolError::HeadersTooLarge)
    );
    let partial_head = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(300));
    assert_eq!(
        parse_with(partial_head.as_bytes(), &config).err(),
        Some(ProtocolError::HeadersTooLarge)
    );
    let many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n";
    assert_eq!(
        parse_with(many, &config).err(),
        Some(ProtocolError::TooManyHeaders)
    );
}

fn is_host_byte(b: u8) -> bool {
    HOST[b as usize]
}

#[test]
fn byte_classes_match_the_rfc_sets() {
    for b in 0..=255u8 {
        let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_token_byte(b), tchar, "{b}");
    }
    assert!(is_host_byte(b'[') && is_host_byte(b':') && !is_host_byte(b'/') && !is_host_byte(b' '));
}

/// An error decided on a prefix of the bytes is the error the whole head
/// gets: the verdict does not depend on how the network split the bytes.
#[test]
fn errors_do_not_depend_on_split_points() {
    let config = Config {
        max_target: 16,
        max_header_bytes: 64,
        max_headers: 3,
        ..Config::default()
    };
    let long_method = format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(40));
    let samples: Vec<Vec<u8>> = vec![
        long_method.into_bytes(),
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        b"GET /aaaaaaaaaaaaaaaaaaaaa\x01 HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x01\r\n\r\n".to_vec(),
        b"CONNECT aaaaaaaaaaaaaaaaaaaaaaaaaaaa:443 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/9.9\r\nHost: a\r\n\r\n".to_vec(),
        b"POST /y HTTP/0.1\r\nHost: a\r\n\r\n".to_vec(),
        b"GET / HTTP/2.0\rX\r\nHost: a\r\n\r\n".to_vec(),
        b"GET / HTTP/2.0x\r\nHost: a\r\n\r\n".to_vec(),
        b"\r\rGET /aaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n".to_vec(),
        b" /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n".to_vec(),
        b"\r\n\nGET /aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n".to_vec(),
        b"\nGET /aaaaaaaaaaaaaaaaaaaaaaaaaa| HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /a|b HTTP/1.1\nHost: a\r\n\r\n".to_vec(),
        b"GET /a HTTP/1.1\r\nHost:\r\nX: 1\n\r\n".to_vec(),
        b"GET /a HTTP/1.5\r\nHost: a\r\n\n".to_vec(),
    ];
    for wire in &samples {
        let whole = parse_with(wire, &config).map(|f| f.map(|f| f.head_len));
        for k in 1..wire.len() {
            if let Err(early) = parse_with(&wire[..k], &config) {
                assert_eq!(
                    whole,
                    Err(early),
                    "prefix {k} of {:?}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }
}

#[test]
fn expect_continue_only_with_a_body() {
    let f =
        parse(b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n")
            .unwrap()
            .unwrap();
    assert!(f.expect_continue);
    let f = parse(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!f.expect_continue);
}

/// The strict rules: each wire sample is refused with its error by default,
/// and accepted with the one `Leniency` field that relaxes it (`None`: no
/// field does).
#[test]
fn strict_rules_and_their_leniency() {
    use ProtocolError::*;
    let bare_lf = Leniency {
        bare_lf: true,
        ..Leniency::default()
    };
    let empty_host = Leniency {
        empty_host: true,
        ..Leniency::default()
    };
    let target_bytes = Leniency {
        target_bytes: true,
        ..Leniency::default()
    };
    #[rustfmt::skip]
    let cases: &[(&[u8], ProtocolError, Option<Leniency>)] = &[
        // RFC 9112 §2.2: bare LF as a line end.
        (b"GET / HTTP/1.1\nHost: a\r\n\r\n", Malformed, Some(bare_lf)),
        (b"GET / HTTP/1.1\r\nHost: a\n\r\n", Malformed, Some(bare_lf)),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n", Malformed, Some(bare_lf)),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\n", Malformed, Some(bare_lf)),
        (b"GET / HTTP/1.0\n\n", Malformed, Some(bare_lf)),
        (b"GET / HTTP/1.0\r\n\n", Malformed, Some(bare_lf)),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Malformed, Some(bare_lf)),
        (b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Malformed, Some(bare_lf)),
        // RFC 9110 §7.2: an empty Host.
        (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", InvalidHost, Some(empty_host)),
        (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", InvalidHost, Some(empty_host)),
        (b"GET / HTTP/1.0\r\nHost: \r\n\r\n", InvalidHost, Some(empty_host)),
        // RFC 9112 §3.2: no fragment, whatever the leniency.
        (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, None),
        (b"GET http://a/b#c HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, None),
        (b"GET http://a#c HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, None),
        // RFC 9110 §4.2.4: no userinfo in an absolute-form target.
        (b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, None),
        (b"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, None),
        // RFC 9110 §8.6: empty Content-Length list elements.
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,\r\n\r\n", InvalidContentLength, None),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,1\r\n\r\n", InvalidContentLength, None),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,,1\r\n\r\n", InvalidContentLength, None),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, \r\n\r\n", InvalidContentLength, None),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ,\r\n\r\n", InvalidContentLength, None),
        // RFC 3986 §3.3, §3.4, §2.1: bytes a target may not hold.
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /?q=\"x\" HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /<x> HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /?a^b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /?a`b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /?q={} HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /?a|b HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /[x] HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /100% HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /%4 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET http://a/b|c HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
        (b"GET http://a/%g0 HTTP/1.1\r\nHost: a\r\n\r\n", InvalidTarget, Some(target_bytes)),
    ];
    for &(wire, want, relaxed_by) in cases {
        let shown = String::from_utf8_lossy(wire);
        assert_eq!(parse(wire).map(|f| f.map(|f| f.body)), Err(want), "{shown}");
        if let Some(lenient) = relaxed_by {
            let config = Config {
                lenient,
                ..Config::default()
            };
            assert!(
                parse_with(wire, &config).unwrap().is_some(),
                "lenient: {shown}"
            );
        }
        let all = Config {
            lenient: Leniency {
                bare_lf: true,
                empty_host: true,
                target_bytes: true,
            },
            ..Config::default()
        };
        assert_eq!(
            parse_with(wire, &all).is_ok(),
            relaxed_by.is_some(),
            "all lenient: {shown}"
        );
    }
}

/// What strict mode keeps accepting: every byte RFC 3986 allows in a path
/// and query, escapes, IP literals, identical Content-Length values.
#[test]
fn strict_rules_accept_valid_forms() {
    for wire in [
        &b"GET /AZaz09-._~!$&'()*+,;=:@/?/?%20%aF HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET http://[::1]:80/a?b=%41 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42, 42\r\nContent-Length: 42\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        assert!(
            parse(wire).unwrap().is_some(),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
}

/// The bare-LF check looks at one byte a line; it agrees with scanning
/// every byte of the head (each LF preceded by a CR), on heads httparse
/// accepts with a bare LF in each possible place.
#[test]
fn line_end_check_agrees_with_a_full_scan() {
    let lines: [&[u8]; 5] = [b"\r\n", b"GET / HTTP/1.1", b"Host: a", b"X: b", b""];
    // Each of the 5 line ends (a leading empty line, the request line, two
    // fields, the final empty line) CRLF or LF: 32 heads.
    for mask in 0..32u32 {
        let mut wire = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                wire.extend_from_slice(if mask & 1 == 0 { b"\r\n" } else { b"\n" });
                continue;
            }
            wire.extend_from_slice(line);
            wire.extend_from_slice(if mask & (1 << i) == 0 { b"\r\n" } else { b"\n" });
        }
        let full_scan = wire
            .iter()
            .enumerate()
            .all(|(i, &b)| b != b'\n' || i > 0 && wire[i - 1] == b'\r');
        let got = parse(&wire);
        assert_eq!(
            got.is_ok(),
            full_scan,
            "{:?}",
            String::from_utf8_lossy(&wire)
        );
        assert_eq!(mask == 0, full_scan);
    }
}

/// RFC 9110 §2.5, §6.2: `HTTP/1.2` to `HTTP/1.9` are read as HTTP/1.1 once
/// the request line is complete; other versions are not rewritten.
#[test]
fn later_minor_versions_are_served_as_1_1() {
    for digit in b'2'..=b'9' {
        let mut wire = format!("GET / HTTP/1.{}\r\nHost: a\r\n\r\n", digit as char).into_bytes();
        assert_eq!(parse(&wire).err(), Some(ProtocolError::UnsupportedVersion));
        assert!(serve_later_minor_as_1_1(&mut wire));
        assert_eq!(&wire[..16], b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&wire).unwrap().unwrap().minor, 1);
    }
    let mut after_empty_line = b"\r\nGET /x HTTP/1.5\r\nHost: a\r\n\r\n".to_vec();
    assert!(serve_later_minor_as_1_1(&mut after_empty_line));
    assert_eq!(parse(&after_empty_line).unwrap().unwrap().minor, 1);
    for refused in [
        &b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/0.9\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.2",
        b"GET / HTTP/1.2 \r\nHost: a\r\n\r\n",
        b"GET / XTTP/1.2\r\nHost: a\r\n\r\n",
    ] {
        let mut wire = refused.to_vec();
        assert!(
            !serve_later_minor_as_1_1(&mut wire),
            "{:?}",
            String::from_utf8_lossy(refused)
        );
        assert_eq!(wire, refused);
    }
}

/// Against a byte-at-a-time search, with the needle at every place of
/// haystacks around a word's length, among bytes whose borrows could fool
/// the word test (a byte one above the needle, 0x00, 0x80, 0xff), and the
/// needle appearing twice. `fuzz/src/scanners.rs` fuzzes it through
/// `Request::path`.
#[test]
fn find_byte_finds_the_first_needle_wherever_it_is() {
    for needle in [b'?', 0x00, 0x01, 0x80, 0xff] {
        for filler in [b'a', needle.wrapping_add(1), 0x00, 0x80, 0xff] {
            if filler == needle {
                continue;
            }
            for len in 0..=25 {
                let mut haystack = vec![filler; len];
                assert_eq!(
                    find_byte(&haystack, needle),
                    None,
                    "{needle} in {haystack:?}"
                );
                for first in 0..len {
                    haystack.fill(filler);
                    haystack[first] = needle;
                    if first + 3 < len {
                        haystack[first + 3] = needle;
                    }
                    let scalar = haystack.iter().position(|&b| b == needle);
                    assert_eq!(
                        find_byte(&haystack, needle),
                        scalar,
                        "{needle} in {haystack:?}"
                    );
                }
            }
        }
    }
}
