//! Request/response behaviour over real sockets on 127.0.0.1.

mod util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;
use util::{app, get, is_closed, parse_all, read_responses, read_to_close, TestServer};

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    for _ in 0..50 {
        stream.write_all(&get("/plaintext")).unwrap();
        let resp = &read_responses(&mut stream, 1)[0];
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"Hello, World!");
        assert_eq!(resp.header("content-length"), Some("13"));
        assert_eq!(resp.header("content-type"), Some("text/plain"));
        assert_eq!(resp.header("server"), Some("keel"));
        assert_eq!(resp.header("date").map(str::len), Some(29));
        assert!(!resp.closes());
    }
    let stats = server.handle().stats();
    assert_eq!(stats.requests, 50);
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.connections_open, 1);
}

#[test]
fn port_zero_binds_a_real_port() {
    let server = TestServer::start(app);
    assert_ne!(server.addr().port(), 0);
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let server = TestServer::start(app);
    let bytes = server.exchange(b"GET /plaintext HTTP/1.0\r\n\r\n");
    let resp = &parse_all(&bytes)[0];
    assert_eq!(resp.body, b"Hello, World!");
    assert!(resp.closes());

    let mut stream = server.connect();
    for _ in 0..3 {
        stream
            .write_all(b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let resp = &read_responses(&mut stream, 1)[0];
        assert_eq!(resp.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn connection_close_is_honoured_both_ways() {
    let server = TestServer::start(app);
    // The client asks: the server answers, says close, and closes; the
    // request pipelined behind it is never answered.
    let bytes = server.exchange(b"GET /n/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: a\r\n\r\n");
    let responses = parse_all(&bytes);
    assert_eq!(responses.len(), 1);
    assert!(responses[0].closes());
    assert_eq!(responses[0].body, b"1");
    // The handler asks.
    let bytes = server.exchange(&get("/close"));
    let responses = parse_all(&bytes);
    assert_eq!(responses.len(), 1);
    assert!(responses[0].closes());
    assert_eq!(responses[0].body, b"bye");
}

#[test]
fn sixteen_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let batch: Vec<u8> = (0..16).flat_map(|i| get(&format!("/n/{i}"))).collect();
    for _ in 0..3 {
        stream.write_all(&batch).unwrap();
        let responses = read_responses(&mut stream, 16);
        let bodies: Vec<String> = responses.iter().map(|r| r.text()).collect();
        let want: Vec<String> = (0..16).map(|i| i.to_string()).collect();
        assert_eq!(bodies, want);
    }
}

/// What the handler saw of a request, as its response body.
fn echo_head(req: &keel::Request<'_>, res: &mut keel::Response<'_>) {
    let mut seen = format!("{} {} {:?}", req.method(), req.target(), req.version());
    for (name, value) in req.headers() {
        seen.push_str(&format!("|{name}={}", String::from_utf8_lossy(value)));
    }
    res.body(seen.as_bytes());
}

#[test]
fn pipelined_heads_that_repeat_or_nearly_repeat_are_each_answered_as_sent() {
    // A head equal to the one before it replays that one's parse: every
    // near miss (one byte apart, same length) must be parsed afresh.
    let server = TestServer::start(echo_head);
    let head = |target: &str, version: &str, id: &str, last: &str| {
        format!("GET {target} HTTP/{version}\r\nHost: h\r\nX-Id: {id}\r\n{last}\r\n")
    };
    let sent = [
        head("/a?q=1", "1.1", "1", ""),
        head("/a?q=1", "1.1", "1", ""),
        head("/a?q=1", "1.1", "2", ""),
        head("/a?q=1", "1.1", "2", ""),
        head("/b?q=1", "1.1", "2", ""),
        head("/b?q=1", "1.0", "2", "Connection: keep-alive\r\n"),
        head("/b?q=1", "1.0", "2", "Connection: keep-alive\r\n"),
        head("/b?q=1", "1.1", "2", "Connection: close\r\n"),
        head("/b?q=1", "1.1", "2", "Connection: close\r\n"),
    ];
    let bytes = server.exchange(sent.concat().as_bytes());
    let responses = parse_all(&bytes);
    // Each answer describes its own request; none after the first close.
    let want = [
        "GET /a?q=1 Http11|Host=h|X-Id=1",
        "GET /a?q=1 Http11|Host=h|X-Id=1",
        "GET /a?q=1 Http11|Host=h|X-Id=2",
        "GET /a?q=1 Http11|Host=h|X-Id=2",
        "GET /b?q=1 Http11|Host=h|X-Id=2",
        "GET /b?q=1 Http10|Host=h|X-Id=2|Connection=keep-alive",
        "GET /b?q=1 Http10|Host=h|X-Id=2|Connection=keep-alive",
        "GET /b?q=1 Http11|Host=h|X-Id=2|Connection=close",
    ];
    let bodies: Vec<String> = responses.iter().map(|r| r.text()).collect();
    assert_eq!(bodies, want);
    assert!(responses[..7].iter().all(|r| !r.closes()) && responses[7].closes());
}

#[test]
fn a_request_written_byte_by_byte_is_answered() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let wire = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x\r\nContent-Length: 5\r\n\r\nhelloGET /n/7 HTTP/1.1\r\nHost: a\r\n\r\n";
    for byte in wire {
        stream.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let responses = read_responses(&mut stream, 2);
    assert_eq!(responses[0].body, b"hello");
    assert_eq!(responses[0].header("content-type"), Some("text/x"));
    assert_eq!(responses[1].body, b"7");
}

#[test]
fn head_gets_the_get_length_and_no_body() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(
            b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while !bytes.ends_with(b"\r\n\r\n2") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        bytes.extend_from_slice(&buf[..n]);
    }
    let (head, used) = util::parse_response(&bytes, true, false).unwrap();
    assert_eq!(head.header("content-length"), Some("13"));
    assert!(head.body.is_empty());
    let (next, _) = util::parse_response(&bytes[used..], false, false).unwrap();
    assert_eq!(next.body, b"2", "the HEAD response carried no body bytes");
}

#[test]
fn content_length_and_chunked_bodies_are_decoded() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].body, b"hello world");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: x\r\nTrailer-B: y\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].body, b"hello world");
    // A chunked body arriving in small pieces, larger than one read buffer.
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in payload.chunks(777) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    for piece in wire.chunks(3000) {
        stream.write_all(piece).unwrap();
    }
    let resp = &read_responses(&mut stream, 1)[0];
    assert_eq!(resp.body.len(), payload.len());
    assert!(resp.body == payload);
}

#[test]
fn expect_100_continue_before_the_body() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(
            b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"body").unwrap();
    let resp = &read_responses(&mut stream, 1)[0];
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"body");
}

#[test]
fn expect_100_continue_refused_gets_the_final_status_at_once() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(b"PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let bytes = read_to_close(&mut stream);
    let responses = parse_all(&bytes);
    assert_eq!(responses.len(), 1, "no 100 Continue first");
    assert_eq!(responses[0].status, 413);
    assert!(responses[0].closes());
}

#[test]
fn large_shared_bodies_go_out_whole() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let batch: Vec<u8> = [
        get("/big/300000"),
        get("/n/1"),
        get("/big/5000"),
        get("/plaintext"),
    ]
    .concat();
    stream.write_all(&batch).unwrap();
    let responses = read_responses(&mut stream, 4);
    let expected = |n: usize| -> Vec<u8> { (0..n).map(|i| b'a' + (i % 26) as u8).collect() };
    assert!(responses[0].body == expected(300_000));
    assert_eq!(responses[1].body, b"1");
    assert!(responses[2].body == expected(5000));
    assert_eq!(responses[3].body, b"Hello, World!");
}

#[test]
fn chunked_streaming_response() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream.write_all(&get("/chunked")).unwrap();
    let resp = &read_responses(&mut stream, 1)[0];
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.header("content-length"), None);
    assert_eq!(resp.body, b"one,two,three");
    // HTTP/1.0 cannot take chunked: the body is ended by a close instead.
    let bytes = server.exchange(b"GET /chunked HTTP/1.0\r\n\r\n");
    let resp = &parse_all(&bytes)[0];
    assert!(resp.closes());
    assert_eq!(resp.body, b"one,two,three");
}

#[test]
fn request_accessors() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /info/../%69nfo?q=a+b%21&x=1 HTTP/1.1\r\nHOST: example.org\r\n\r\nGET /info?q=1 HTTP/1.0\r\n\r\n")
        .unwrap();
    let responses = read_responses(&mut stream, 2);
    // "/info/../%69nfo" is not "/info": the handler sees the raw path.
    assert_eq!(responses[0].status, 404);
    assert_eq!(
        responses[1].text(),
        "GET /info /info q=Some(\"1\") Http10 host=None peer_ip=127.0.0.1"
    );
    assert!(is_closed(&mut stream));

    let bytes = server
        .exchange(b"GET /info?q=a+b%21 HTTP/1.1\r\nHOST: example.org\r\nConnection: close\r\n\r\n");
    let text = parse_all(&bytes)[0].text();
    assert_eq!(
        text,
        "GET /info /info q=Some(\"a b!\") Http11 host=Some(\"example.org\") peer_ip=127.0.0.1"
    );
}

#[test]
fn unknown_paths_get_404_and_the_connection_stays_open() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream.write_all(&get("/nope")).unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].status, 404);
    stream.write_all(&get("/plaintext")).unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].status, 200);
    assert_eq!(server.handle().stats().responses_4xx, 1);
}

#[test]
fn several_workers_share_one_port() {
    let server = TestServer::with(app, keel::Config::default(), 4);
    assert_eq!(server.handle().worker_count(), 4);
    let mut workers = HashSet::new();
    let mut streams = Vec::new();
    for _ in 0..64 {
        let mut stream = server.connect();
        stream.write_all(&get("/worker")).unwrap();
        workers.insert(read_responses(&mut stream, 1)[0].text());
        streams.push(stream);
    }
    assert!(
        workers.len() >= 2,
        "connections spread over workers: {workers:?}"
    );
    assert!(workers.iter().all(|w| w.starts_with("keel-worker-")));
    assert_eq!(server.handle().stats().connections_accepted, 64);
}

#[test]
fn client_half_close_after_pipelined_requests_still_gets_answers() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(&[get("/n/1"), get("/n/2")].concat())
        .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let bytes = read_to_close(&mut stream);
    let bodies: Vec<String> = parse_all(&bytes).iter().map(|r| r.text()).collect();
    assert_eq!(bodies, ["1", "2"]);
    assert!(is_closed(&mut stream));
}
