//! Response writing: heads, framing, bodies, header checks.

use super::headers::FIELD_VALUE;
use super::*;

fn render(
    is_head: bool,
    http10: bool,
    f: impl FnOnce(&mut Response<'_>),
) -> (String, Vec<(usize, Segment)>) {
    let mut out = BytesMut::from(&b"PREVIOUS"[..]);
    let mut large = Vec::new();
    let mut res = Response::new(
        &mut out,
        &mut large,
        true,
        is_head,
        http10,
        b"Server: t\r\n",
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
        "PREVIOUSHTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: D\r\nServer: t\r\nContent-Type: text/plain\r\n\r\nHello"
    );
}

#[test]
fn status_can_change_while_buffering_and_length_is_computed() {
    let (text, _) = render(false, false, |r| {
        r.header("X", "1").write(b"ab").write(b"cd");
        r.status(StatusCode::CREATED);
    });
    assert_eq!(text, "PREVIOUSHTTP/1.1 201 Created\r\nContent-Length: 4\r\nDate: D\r\nServer: t\r\nX: 1\r\n\r\nabcd");
}

#[test]
fn empty_response_and_head() {
    let (text, _) = render(false, false, |_| {});
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: D\r\nServer: t\r\n\r\n"
    );
    let (text, _) = render(true, false, |r| {
        r.write(b"12345");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: D\r\nServer: t\r\n\r\n"
    );
}

#[test]
fn reset_content_says_it_has_no_body() {
    let (text, _) = render(false, false, |r| {
        r.status(StatusCode::RESET_CONTENT).body(b"ignored");
    });
    assert_eq!(
        text,
        "PREVIOUSHTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\nDate: D\r\nServer: t\r\n\r\n"
    );
}

#[test]
#[should_panic(expected = "interim")]
fn a_1xx_final_status_is_refused() {
    let mut out = BytesMut::new();
    let mut large = Vec::new();
    Response::new(&mut out, &mut large, true, false, false, b"").status(StatusCode::CONTINUE);
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
            "PREVIOUSHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nDate: D\r\nServer: t\r\n\r\n5\r\nhello\r\n11\r\n{}\r\n0\r\n\r\n",
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
    assert_eq!(text, "PREVIOUSHTTP/1.1 200 OK\r\nContent-Length: 0\r\nServer: t\r\nConnection: close\r\nDate: x\r\n\r\n");
    let (text, _) = render(false, true, |_| {});
    assert!(text.contains("Connection: keep-alive\r\n"), "{text}");
}

#[test]
fn body_len_counts_what_the_body_carries() {
    let mut out = BytesMut::new();
    let mut large = Vec::new();
    let mut res = Response::new(&mut out, &mut large, true, false, false, b"");
    res.write(b"ab").write(b"cde");
    assert_eq!(res.body_len(), 5);
    let mut res = Response::new(&mut out, &mut large, true, false, false, b"");
    res.chunked().write(b"abc");
    assert_eq!(res.body_len(), 3);
    let mut res = Response::new(&mut out, &mut large, true, true, false, b"");
    res.body(b"for HEAD");
    assert_eq!(res.body_len(), 0);
    let mut res = Response::new(&mut out, &mut large, true, false, false, b"");
    res.body_bytes(Bytes::from_static(b"shared"));
    assert_eq!(res.body_len(), 6);
}

#[test]
fn header_injection_is_refused() {
    let mut out = BytesMut::new();
    let mut large = Vec::new();
    let mut res = Response::new(&mut out, &mut large, true, false, false, b"");
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
fn discard_forgets_the_half_written_response() {
    let mut out = BytesMut::from(&b"PREVIOUS"[..]);
    let mut large = vec![(8, Segment::Shared(Bytes::from_static(b"earlier")))];
    let mut res = Response::new(&mut out, &mut large, true, false, false, b"");
    res.header("A", "b").write(b"partial");
    res.discard();
    assert_eq!(&out[..], b"PREVIOUS");
    assert_eq!(large.len(), 1);
}
