//! HTTP Upgrade over real sockets: the `101`, the hand-over of the socket
//! and of the bytes read ahead, and HTTP going on where no upgrade happens.

mod util;

use keel::{Request, Response, StatusCode, UpgradeError, Upgraded};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use util::{get, parse_all, parse_response, read_responses, Resp, TestServer};

/// Echoes what it reads until the client closes, on its own thread.
fn echo(mut stream: Upgraded) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            if stream.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
}

/// - `/echo`: switches to `echo` (with an `X-Proto` header and the body
///   length in `X-Body`), or answers `426` saying why not
/// - `/boom`: switches, then the callback panics on the worker
/// - `/n/<k>`: answers `k`
fn app(req: &Request<'_>, res: &mut Response<'_>) {
    match req.path() {
        "/echo" => {
            res.header("X-Proto", "echo")
                .header("X-Body", req.body().len().to_string());
            if let Err(e) = res.upgrade("echo", echo) {
                let why = match e {
                    UpgradeError::NotRequested => "not-requested",
                    UpgradeError::NotOffered => "not-offered",
                    _ => "unavailable",
                };
                res.status(StatusCode::UPGRADE_REQUIRED)
                    .header("Upgrade", "echo")
                    .body(why.as_bytes());
            }
        }
        "/boom" => res
            .upgrade("echo", |_| panic!("the upgrade callback fails"))
            .unwrap(),
        path => res.body(path.trim_start_matches("/n/").as_bytes()),
    }
}

fn upgrade_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: foo, Echo\r\n\r\n")
        .into_bytes()
}

/// Reads a `101` head and returns it with the bytes that followed it.
fn read_101(stream: &mut TcpStream) -> (Resp, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((resp, used)) = parse_response(&buf, false, false) {
            assert_eq!(resp.status, 101, "{resp:?}");
            return (resp, buf[used..].to_vec());
        }
        let n = stream.read(&mut chunk).expect("read the 101");
        assert!(
            n > 0,
            "closed before the 101: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until `want` bytes have come (`got` holds those already read).
fn read_exactly(stream: &mut TcpStream, mut got: Vec<u8>, want: usize) -> Vec<u8> {
    let mut chunk = [0u8; 16 * 1024];
    while got.len() < want {
        let n = stream.read(&mut chunk).expect("read echoed bytes");
        assert!(n > 0, "closed after {} of {want} echoed bytes", got.len());
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

/// Waits (briefly) until `check` holds on the server's stats.
fn eventually(server: &TestServer, check: impl Fn(&keel::Stats) -> bool) -> keel::Stats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.handle().stats();
        if check(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_101_hands_over_the_socket_and_the_bytes_sent_with_the_request_come_first() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    // The client's first bytes of the new protocol ride in the same write
    // as its request, and look like HTTP: they must reach the new protocol
    // as they are, never be answered as a request.
    let tail = b"GET /n/9 HTTP/1.1\r\nHost: t\r\n\r\n";
    stream
        .write_all(&[upgrade_request("/echo"), tail.to_vec()].concat())
        .unwrap();
    let (head, rest) = read_101(&mut stream);
    assert_eq!(head.header("connection"), Some("upgrade"));
    assert_eq!(head.header("upgrade"), Some("echo"));
    assert_eq!(head.header("x-proto"), Some("echo"));
    assert!(head.header("date").is_some());
    assert_eq!(head.header("content-length"), None);
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(read_exactly(&mut stream, rest, tail.len()), tail);
    // The socket is the handler's now: more bytes echo back.
    stream.write_all(b"second").unwrap();
    assert_eq!(read_exactly(&mut stream, Vec::new(), 6), b"second");

    let stats = eventually(&server, |s| s.connections_open == 0);
    assert_eq!(stats.upgrades, 1);
    assert_eq!(stats.connections_open, 0, "the worker let go of it");
    assert_eq!(stats.requests, 1, "the tail was never parsed as a request");
}

#[test]
fn bytes_past_the_read_buffer_follow_the_read_ahead_in_order() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    // Far more than one read of the worker takes: some is in its buffer,
    // the rest still in the socket.
    let tail: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let data = [upgrade_request("/echo"), tail.clone()].concat();
        std::thread::spawn(move || stream.write_all(&data).unwrap())
    };
    let (_, rest) = read_101(&mut stream);
    let echoed = read_exactly(&mut stream, rest, tail.len());
    writer.join().unwrap();
    assert!(echoed == tail, "bytes lost or reordered");
}

#[test]
fn a_refused_upgrade_is_an_ordinary_answer_and_http_goes_on() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let cases: [(&[u8], &str); 3] = [
        // Not offered: the client asked for another protocol.
        (
            b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            "not-offered",
        ),
        // Not requested: no `upgrade` connection option.
        (
            b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\n\r\n",
            "not-requested",
        ),
        // Not requested: the option without the field.
        (
            b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n\r\n",
            "not-requested",
        ),
    ];
    for (request, why) in cases {
        // A request pipelined behind the refused one is read as HTTP.
        stream.write_all(&[request, &get("/n/2")].concat()).unwrap();
        let responses = read_responses(&mut stream, 2);
        assert_eq!(responses[0].status, 426);
        assert_eq!(responses[0].text(), why);
        assert!(!responses[0].closes());
        assert_eq!(responses[1].text(), "2");
    }
    assert_eq!(server.handle().stats().upgrades, 0);
}

#[test]
fn http10_and_closing_requests_never_switch() {
    let server = TestServer::start(app);
    // RFC 9110 §7.8: an HTTP/1.0 request's Upgrade is ignored.
    let reply =
        server.exchange(b"GET /echo HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nx");
    let responses = parse_all(&reply);
    assert_eq!(
        (responses[0].status, responses[0].text().as_str()),
        (426, "not-requested")
    );
    // A client that says it closes cannot be switched.
    let reply = server.exchange(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: upgrade, close\r\nUpgrade: echo\r\n\r\nx",
    );
    let responses = parse_all(&reply);
    assert_eq!(responses.len(), 1);
    assert_eq!(
        (responses[0].status, responses[0].text().as_str()),
        (426, "unavailable")
    );
    assert!(responses[0].closes());
    assert_eq!(server.handle().stats().upgrades, 0);
}

#[test]
fn pipelined_requests_before_the_upgrade_are_answered_first_in_order() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let wire = [
        get("/n/1"),
        get("/n/2"),
        upgrade_request("/echo"),
        b"after".to_vec(),
    ]
    .concat();
    stream.write_all(&wire).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut answers = Vec::new();
    while answers.len() < 3 {
        if let Some((resp, used)) = parse_response(&got, false, false) {
            answers.push(resp);
            got.drain(..used);
            continue;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(answers[0].text(), "1");
    assert_eq!(answers[1].text(), "2");
    assert_eq!(answers[2].status, 101);
    assert_eq!(read_exactly(&mut stream, got, 5), b"after");
}

#[test]
fn an_upgrade_with_a_body_reads_the_body_as_http_first() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: echo\r\nContent-Length: 5\r\n\r\nhelloafter")
        .unwrap();
    let (head, rest) = read_101(&mut stream);
    assert_eq!(head.header("x-body"), Some("5"));
    assert_eq!(read_exactly(&mut stream, rest, 5), b"after");

    // With `Expect: 100-continue`, the 100 comes before the 101.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: echo\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 25];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"abcnext").unwrap();
    let (head, rest) = read_101(&mut stream);
    assert_eq!(head.header("x-body"), Some("3"));
    assert_eq!(read_exactly(&mut stream, rest, 4), b"next");
}

#[test]
fn the_worker_keeps_serving_after_handing_connections_over() {
    let server = TestServer::start(app); // one worker
    let mut upgraded = Vec::new();
    for i in 0..4 {
        let mut stream = server.connect();
        stream.write_all(&upgrade_request("/echo")).unwrap();
        let (_, rest) = read_101(&mut stream);
        assert!(rest.is_empty());
        // Plain HTTP on another connection, while the upgraded ones idle.
        let mut plain = server.connect();
        plain.write_all(&get(&format!("/n/{i}"))).unwrap();
        assert_eq!(read_responses(&mut plain, 1)[0].text(), i.to_string());
        upgraded.push(stream);
    }
    for (i, stream) in upgraded.iter_mut().enumerate() {
        let message = format!("still here {i}");
        stream.write_all(message.as_bytes()).unwrap();
        assert_eq!(
            read_exactly(stream, Vec::new(), message.len()),
            message.as_bytes()
        );
    }
    assert_eq!(server.handle().stats().upgrades, 4);
}

#[test]
fn a_panicking_upgrade_callback_closes_its_connection_and_the_worker_survives() {
    let server = TestServer::start(app); // one worker
    let reply = server.exchange(&[upgrade_request("/boom"), b"lost".to_vec()].concat());
    let (head, used) = parse_response(&reply, false, false).expect("a 101");
    assert_eq!(head.status, 101);
    assert_eq!(
        used,
        reply.len(),
        "nothing after the 101: the socket was closed"
    );
    let mut plain = server.connect();
    plain.write_all(&get("/n/7")).unwrap();
    assert_eq!(read_responses(&mut plain, 1)[0].text(), "7");
    let stats = eventually(&server, |s| s.handler_panics == 1);
    assert_eq!(stats.handler_panics, 1);
    assert_eq!(stats.connections_open, 1, "only the plain connection");
}
