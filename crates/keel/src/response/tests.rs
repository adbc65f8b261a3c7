//! Response writing: heads, framing, bodies, header checks.

use super::headers::{is_field_value, FIELD_VALUE};
use super::*;

/// A keep-alive HTTP/1.1 response with no `Server` line and no memo.
fn bare<'a>(
    out: &'a mut BytesMut,
    large: &'a mut Vec<(usize, Segment)>,
    is_head: bool,
) -> Response<'a> {
    Response::new(
        out,
        large,
        true,
        is_head,
        false,
        ServerFields::line_only(b""),
    )
}

fn render(
    is_head: bool,
    http10: bool,
    f: impl FnOnce(&mut Response<'_>),
) -> (String, Vec<(usize, Segment)>) {
    let mut out = BytesMut::from(&b"PREVIOUS"[..]);
    let mut large = Vec::new();
    let memo = std::cell::RefCell::default();
    let mut res = Response::new(
        &mut out,
        &mut large,
        true,
        is_head,
        http10,
        ServerFields::new(b"Server: t\r\n", &memo),
    );
    f(&mut res);
    res.finish();
    let text = String::from_utf8(out.to_vec()).unwrap();
    let server_date = text
        .find("Date: ")
        .filter(|&i| text.get(i + 32..i + 35) == Some("GMT"));
    match server_date {
        Some(i) => (format!("{}Date: D{}", &text[..i], &text[i + 35..]), large),
        None => (text, large),
    }
}

#[test]
fn body_in_one_call() {
    let (text, _) = render(false, false, |r| {
        r.header("Content-Type", "text/plain").body(b"Hello");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: D\r\nServer: t\r\nContent-Length: 5\r\n\r\nHello"
    );
}

#[test]
fn status_can_change_while_buffering_and_length_is_computed() {
    let (text, _) = render(false, false, |r| {
        r.header("X", "1").write(b"ab").write(b"cd");
        r.status(StatusCode::CREATED);
    });
    assert_eq!(text, "PREVIOUSHTTP/1.1 201 Created\r\nX: 1\r\nDate: D\r\nServer: t\r\nContent-Length: 4\r\n\r\nabcd");
}

#[test]
fn empty_response_and_head() {
    let (text, _) = render(false, false, |_| {});
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nDate: D\r\nServer: t\r\nContent-Length: 0\r\n\r\n"
    );
    let (text, _) = render(true, false, |r| {
        r.write(b"12345");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nDate: D\r\nServer: t\r\nContent-Length: 5\r\n\r\n"
    );
}

#[test]
fn reset_content_says_it_has_no_body() {
    let (text, _) = render(false, false, |r| {
        r.status(StatusCode::RESET_CONTENT).body(b"ignored");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 205 Reset Content\r\nDate: D\r\nServer: t\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
#[should_panic(expected = "interim")]
fn a_1xx_final_status_is_refused() {
    let mut out = BytesMut::new();
    let mut large = Vec::new();
    bare(&mut out, &mut large, false).status(StatusCode::CONTINUE);
}

#[test]
fn no_content_has_no_length_or_body() {
    let (text, _) = render(false, false, |r| {
        r.status(StatusCode::NO_CONTENT).body(b"ignored");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 204 No Content\r\nDate: D\r\nServer: t\r\n\r\n"
    );
}

#[test]
fn chunked_stream_and_http10_fallback() {
    let (text, _) = render(false, false, |r| {
        r.chunked().write(b"hello").write(b"").write(&[b'x'; 17]);
    });
    assert_eq!(
        text,
        format!(
            "PREVIOUSHTTP/1.1 200 OK\r\nDate: D\r\nServer: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n11\r\n{}\r\n0\r\n\r\n",
            "x".repeat(17)
        )
    );
    let (text, _) = render(false, true, |r| {
        r.chunked().write(b"hi");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nDate: D\r\nServer: t\r\nConnection: close\r\n\r\nhi"
    );
}

#[test]
fn large_bytes_are_not_copied() {
    let big = Bytes::from(vec![7u8; WRITEV_THRESHOLD]);
    // A Date of our own keeps `render` from shortening the text.
    let (text, large) = render(false, false, |r| {
        r.header("Date", "x").body_bytes(big.clone())
    });
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert_eq!(large.len(), 1);
    assert_eq!(large[0].0, text.len());
    assert!(matches!(&large[0].1, Segment::Shared(b) if b.as_ptr() == big.as_ptr()));
}

#[test]
fn connection_and_framing_headers_are_the_servers() {
    let (text, _) = render(false, true, |r| {
        r.header("Content-Length", "99")
            .header("Connection", "close")
            .header("Date", "x");
    });
    assert_eq!(text, "PREVIOUSHTTP/1.1 200 OK\r\nDate: x\r\nServer: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let (text, _) = render(false, true, |_| {});
    assert!(text.contains("Connection: keep-alive\r\n"), "{text}");
}

#[test]
fn body_len_counts_what_the_body_carries() {
    let mut out = BytesMut::new();
    let mut large = Vec::new();
    let mut res = bare(&mut out, &mut large, false);
    res.write(b"ab").write(b"cde");
    assert_eq!(res.body_len(), 5);
    let mut res = bare(&mut out, &mut large, false);
    res.chunked().write(b"abc");
    assert_eq!(res.body_len(), 3);
    let mut res = bare(&mut out, &mut large, true);
    res.body(b"for HEAD");
    assert_eq!(res.body_len(), 0);
    let mut res = bare(&mut out, &mut large, false);
    res.body_bytes(Bytes::from_static(b"shared"));
    assert_eq!(res.body_len(), 6);
}

#[test]
fn header_injection_is_refused() {
    let mut out = BytesMut::new();
    let mut large = Vec::new();
    let mut res = bare(&mut out, &mut large, false);
    assert_eq!(
        res.try_header("Location", "/a\r\nSet-Cookie: x=1").err(),
        Some(InvalidHeader)
    );
    assert_eq!(res.try_header("Bad Name", "v").err(), Some(InvalidHeader));
    assert_eq!(res.try_header("", "v").err(), Some(InvalidHeader));
    assert_eq!(res.try_header("X", "bell\x07").err(), Some(InvalidHeader));
    assert_eq!(res.try_header("X", "del\x7f").err(), Some(InvalidHeader));
    assert!(res.try_header("Location", "/ok\tfine").is_ok());
    assert!(
        res.try_header("X", "caf\u{e9}").is_ok(),
        "obs-text is allowed"
    );
}

#[test]
fn field_value_table_is_the_rfc_set() {
    for b in 0..=255u8 {
        let allowed = !((b < b' ' && b != b'\t') || b == 0x7f);
        assert_eq!(FIELD_VALUE[b as usize], allowed, "{b:#x}");
    }
}

#[test]
fn the_word_at_a_time_value_check_agrees_with_the_table() {
    // Every byte, alone and at each position of two words plus a tail.
    for b in 0..=255u8 {
        for at in 0..19 {
            let mut value = vec![b'a'; 19];
            value[at] = b;
            let table = value.iter().all(|&b| FIELD_VALUE[b as usize]);
            assert_eq!(is_field_value(&value), table, "{b:#x} at {at}");
            assert_eq!(
                is_field_value(&value[..=at]),
                table,
                "{b:#x} ending at {at}"
            );
        }
    }
    // Random values of the bytes near the edges (xorshift: reproducible).
    let edges = [
        0x00, 0x08, 0x09, 0x0a, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xa0, 0xff,
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 40) as usize;
        let value: Vec<u8> = (0..len)
            .map(|i| {
                let pick = (state >> (i % 56)) as usize;
                if pick % 5 == 0 {
                    edges[pick / 5 % edges.len()]
                } else {
                    b'a' + (pick % 26) as u8
                }
            })
            .collect();
        let table = value.iter().all(|&b| FIELD_VALUE[b as usize]);
        assert_eq!(is_field_value(&value), table, "{value:?}");
    }
}

#[test]
fn discard_forgets_the_half_written_response() {
    let mut out = BytesMut::from(&b"PREVIOUS"[..]);
    let mut large = vec![(8, Segment::Shared(Bytes::from_static(b"earlier")))];
    let mut res = bare(&mut out, &mut large, false);
    res.header("A", "b").write(b"partial");
    res.discard();
    assert_eq!(&out[..], b"PREVIOUS");
    assert_eq!(large.len(), 1);
}

#[test]
fn a_held_body_waits_for_finish_and_can_be_rewritten() {
    let (text, large) = render(false, false, |r| {
        r.hold()
            .header("A", "1")
            .header("ETag", "\"x\"")
            .header("a", "2");
        r.body_bytes(Bytes::from(vec![b'z'; 2 * WRITEV_THRESHOLD]));
        let mut held = r.held().unwrap();
        assert_eq!(held.status(), StatusCode::OK);
        assert_eq!(held.body(), &[b'z'; 2 * WRITEV_THRESHOLD][..]);
        assert_eq!(held.header("a"), Some(&b"1"[..]));
        assert_eq!(held.headers("A").collect::<Vec<_>>(), [b"1", b"2"]);
        held.set_body(b"short");
        assert_eq!(held.remove_header("a"), 2);
        assert_eq!(held.remove_header("a"), 0);
        held.add_header("X-New", "v").unwrap();
        for (name, value) in [
            ("Content-Length", "9"),
            ("transfer-encoding", "chunked"),
            ("Connection", "keep-alive"),
            ("Bad Name", "v"),
            ("", "v"),
            ("X-Split", "a\r\nInjected: 1"),
        ] {
            assert_eq!(held.add_header(name, value), Err(InvalidHeader), "{name}");
        }
        assert_eq!(held.body(), b"short");
    });
    assert!(
        large.is_empty(),
        "a held body is never spliced in from its own buffer"
    );
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nETag: \"x\"\r\nX-New: v\r\n\
         Date: D\r\nServer: t\r\nContent-Length: 5\r\n\r\nshort"
    );
}

#[test]
fn a_held_response_written_in_pieces_and_one_with_no_body() {
    let (text, _) = render(false, false, |r| {
        r.hold().write(b"ab");
        r.status(StatusCode::CREATED).body(b"cd");
        assert_eq!(r.held().unwrap().body(), b"abcd");
    });
    assert!(text.starts_with("PREVIOUSHTTP/1.1 201 Created\r\nDate: "));
    assert!(text.contains("\r\nContent-Length: 4\r\n"));
    assert!(text.ends_with("\r\n\r\nabcd"));

    let (text, _) = render(false, false, |r| {
        let mut held = r.hold().held().unwrap();
        assert_eq!(held.body(), b"");
        held.add_header("Date", "then").unwrap();
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nDate: then\r\nServer: t\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
#[should_panic(expected = "write after the response body was complete")]
fn a_held_body_is_complete_after_body() {
    render(false, false, |r| {
        r.hold().body(b"done");
        r.write(b"more");
    });
}

#[test]
fn held_is_none_unless_held_and_buffered() {
    render(false, false, |r| {
        r.body(b"plain");
        assert!(r.held().is_none(), "not held");
    });
    let (text, _) = render(false, false, |r| {
        r.hold().chunked().write(b"streamed");
        assert!(r.held().is_none(), "its head is out");
    });
    assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n"));
    assert!(text.ends_with("\r\n\r\n8\r\nstreamed\r\n0\r\n\r\n"));
}

#[test]
fn a_held_head_answer_may_leave_its_length_out() {
    let head = |omit: bool| {
        render(true, false, |r| {
            r.hold().header("Content-Type", "text/plain").body(b"hello");
            let mut held = r.held().unwrap();
            assert!(held.is_head());
            assert_eq!(
                held.body(),
                b"hello",
                "buffered for the layer, dropped at the end"
            );
            if omit {
                held.omit_length();
            }
        })
        .0
    };
    assert_eq!(
        head(false),
        "PREVIOUSHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
         Date: D\r\nServer: t\r\nContent-Length: 5\r\n\r\n"
    );
    assert_eq!(
        head(true),
        "PREVIOUSHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: D\r\nServer: t\r\n\r\n"
    );
    // omit_length is for HEAD only: a GET keeps its exact length.
    let (text, _) = render(false, false, |r| {
        r.hold().body(b"hello");
        r.held().unwrap().omit_length();
    });
    assert!(text.contains("\r\nContent-Length: 5\r\n"), "{text}");
}

#[test]
fn a_status_set_after_header_lines_rewrites_the_status_line() {
    let (text, _) = render(false, false, |r| {
        r.header("A", "1").status(StatusCode::NOT_FOUND);
        r.header("B", "2").status(StatusCode::OK);
        r.write(b"ab");
        r.status(StatusCode::from_u16(299).unwrap());
        r.write(b"cd");
        r.status(StatusCode::UNPROCESSABLE_ENTITY);
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 422 Unprocessable Content\r\nA: 1\r\nB: 2\r\n\
         Date: D\r\nServer: t\r\nContent-Length: 4\r\n\r\nabcd"
    );
    // Shorter than the line it replaces, with the body given at once.
    let (text, _) = render(false, false, |r| {
        r.status(StatusCode::SERVICE_UNAVAILABLE).header("A", "1");
        r.status(StatusCode::GONE).body(b"x");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 410 Gone\r\nA: 1\r\nDate: D\r\nServer: t\r\nContent-Length: 1\r\n\r\nx"
    );
}

#[test]
fn a_field_writes_what_header_writes() {
    const TEXT: crate::Field = crate::field!("Content-Type", "text/plain");
    let by_field = render(false, false, |r| {
        r.field(TEXT).body(b"Hello");
    });
    let by_header = render(false, false, |r| {
        r.header("Content-Type", "text/plain").body(b"Hello");
    });
    assert_eq!(by_field.0, by_header.0);
    assert_eq!(TEXT.name(), "Content-Type");
    assert_eq!(TEXT.value(), "text/plain");
}

#[test]
fn a_date_or_server_field_replaces_the_server_s_own() {
    let (text, _) = render(false, false, |r| {
        r.field(crate::field!("date", "Thu, 01 Jan 1970 00:00:00 GMT"))
            .field(crate::field!("SERVER", "mine"))
            .body(b"");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\nSERVER: mine\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn a_field_after_the_body_began_panics() {
    let caught = std::panic::catch_unwind(|| {
        render(false, false, |r| {
            r.write(b"x");
            r.field(crate::field!("X-Late", "1"));
        })
    });
    assert!(caught.is_err());
}

/// `field!` runs these checks in a `const` block (the `compile_fail`
/// examples on `field!` show the build stopping); here the same function
/// runs at run time, where a failed check is a panic.
#[test]
fn what_a_field_may_not_hold_is_refused() {
    let refused = |name: &'static str, line: &'static str| {
        std::panic::catch_unwind(|| crate::Field::__new(name, line)).is_err()
    };
    assert!(!refused("X-Ok", "X-Ok: a\tb \u{e9}\r\n"));
    assert!(!refused("X-Empty", "X-Empty: \r\n"));
    assert!(refused("", ": x\r\n"));
    assert!(refused("Bad Name", "Bad Name: x\r\n"));
    assert!(refused("X-Split", "X-Split: a\r\nSet-Cookie: s=1\r\n"));
    assert!(refused("X-Nul", "X-Nul: a\0b\r\n"));
    assert!(refused("X-Del", "X-Del: a\x7fb\r\n"));
    for framing in ["Content-Length", "transfer-encoding", "CONNECTION"] {
        let line: &'static str = Box::leak(format!("{framing}: 1\r\n").into_boxed_str());
        let name: &'static str = &line[..framing.len()];
        assert!(refused(name, line), "{framing}");
    }
}
