//! Panics, shutdown and the server handle.

mod util;

use std::io::Write;
use std::time::{Duration, Instant};
use util::{app, get, parse_all, read_responses, read_to_close, TestServer};

#[test]
fn a_panicking_handler_costs_one_500_and_the_worker_survives() {
    let server = TestServer::start(app);
    let bytes = server.exchange(&[get("/panic"), get("/n/never")].concat());
    let responses = parse_all(&bytes);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert!(responses[0].closes());
    // The same (only) worker still serves.
    for _ in 0..3 {
        let mut stream = server.connect();
        stream.write_all(&get("/plaintext")).unwrap();
        assert_eq!(read_responses(&mut stream, 1)[0].body, b"Hello, World!");
    }
    let stats = server.handle().stats();
    assert_eq!(stats.handler_panics, 1);
    assert_eq!(stats.responses_5xx, 1);
}

#[test]
fn a_panic_after_writing_half_a_response_sends_only_the_500() {
    let server = TestServer::start(|_req: &keel::Request<'_>, res: &mut keel::Response<'_>| {
        res.header("X-Half", "yes").write(b"partial body");
        panic!("midway");
    });
    let responses = parse_all(&server.exchange(&get("/")));
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert_eq!(responses[0].header("x-half"), None);
    assert!(!responses[0].text().contains("partial"));
}

#[test]
fn shutdown_finishes_the_request_in_flight_then_stops() {
    let server = TestServer::start(app);
    let mut busy = server.connect();
    let mut idle = server.connect();
    idle.write_all(&get("/plaintext")).unwrap();
    read_responses(&mut idle, 1);
    busy.write_all(&get("/sleep/300")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    server.handle().shutdown(Duration::from_secs(5));
    let started = Instant::now();
    let responses = parse_all(&read_to_close(&mut busy));
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"slept");
    // The handler wrote its head before shutdown began, so the response
    // cannot say `Connection: close`; the connection closes right after it.
    assert!(
        read_to_close(&mut idle).is_empty(),
        "the idle connection is closed quietly"
    );
    server.handle().join();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        std::net::TcpStream::connect(server.addr()).is_err(),
        "no longer accepting"
    );
}

#[test]
fn shutdown_lets_a_half_received_request_finish() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    server.handle().shutdown(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"def").unwrap();
    let responses = parse_all(&read_to_close(&mut stream));
    assert_eq!(responses[0].body, b"abcdef");
    assert!(responses[0].closes());
    server.handle().join();
}

#[test]
fn shutdown_force_closes_at_the_deadline() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server.handle().shutdown(Duration::from_millis(200));
    server.handle().join();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(read_to_close(&mut stream).is_empty());
}

#[test]
fn stats_count_traffic() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let request = get("/plaintext");
    stream.write_all(&request).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 1024];
    while !reply.ends_with(b"Hello, World!") {
        let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
        assert!(n > 0);
        reply.extend_from_slice(&buf[..n]);
    }
    // The worker counts a write after it returns, which may be after the
    // client has read it: wait for the counters to catch up.
    let started = Instant::now();
    while server.handle().stats().bytes_out < reply.len() as u64 {
        assert!(started.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = server.handle().stats();
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.bytes_in, request.len() as u64);
    assert_eq!(stats.bytes_out, reply.len() as u64);
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.connections_open, 1);
}
