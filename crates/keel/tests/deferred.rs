//! Deferred responses over real sockets: answered from other threads, in
//! request order, with the failure cases contained.

mod util;

use keel::{Config, Request, Response, StatusCode};
use std::io::Write;
use std::time::{Duration, Instant};
use util::{get, parse_all, read_responses, read_to_close, TestServer};

/// `/thread/<ms>`: answered from a new thread after `ms` milliseconds.
/// `/pool`: answered from the blocking pool.
/// `/drop`: the responder is dropped unanswered.
/// `/panic-later`: the respond closure panics.
/// `/late/<ms>`: answers after `ms` even if that is past the deadline.
/// anything else: answered inline with the path.
fn app(req: &Request<'_>, res: &mut Response<'_>) {
    let path = req.path().to_owned();
    if let Some(ms) = path
        .strip_prefix("/thread/")
        .or_else(|| path.strip_prefix("/late/"))
    {
        let ms: u64 = ms.parse().unwrap();
        let responder = res.defer();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            responder.respond(|res| {
                res.header("Content-Type", "text/plain")
                    .body(path.as_bytes());
            });
        });
    } else if path == "/pool" {
        res.offload(|res| {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            res.body(name.as_bytes());
        });
    } else if path == "/drop" {
        drop(res.defer());
    } else if path == "/panic-later" {
        let responder = res.defer();
        std::thread::spawn(move || {
            responder.respond(|_res| panic!("the respond closure panics"));
        });
    } else {
        res.body(path.as_bytes());
    }
}

#[test]
fn answered_from_another_thread() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    for _ in 0..3 {
        stream.write_all(&get("/thread/10")).unwrap();
        let resp = &read_responses(&mut stream, 1)[0];
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"/thread/10");
        assert_eq!(resp.header("content-type"), Some("text/plain"));
        assert!(!resp.closes(), "keep-alive survives a deferred answer");
    }
}

#[test]
fn answered_from_the_blocking_pool() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    stream.write_all(&get("/pool")).unwrap();
    let resp = &read_responses(&mut stream, 1)[0];
    assert!(resp.text().starts_with("keel-blocking-"), "{}", resp.text());
}

#[test]
fn a_dropped_responder_answers_500() {
    let server = TestServer::start(app);
    let bytes = server.exchange(&get("/drop"));
    let responses = parse_all(&bytes);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 500);
    assert!(responses[0].closes());
    let bytes = server.exchange(&get("/panic-later"));
    assert_eq!(parse_all(&bytes)[0].status, 500);
    assert_eq!(server.handle().stats().responses_5xx, 2);
}

#[test]
fn pipelined_responses_wait_behind_a_slow_deferred_one() {
    let server = TestServer::start(app);
    let mut stream = server.connect();
    let batch = [
        get("/thread/200"),
        get("/fast/1"),
        get("/thread/1"),
        get("/fast/2"),
    ]
    .concat();
    stream.write_all(&batch).unwrap();
    let bodies: Vec<String> = read_responses(&mut stream, 4)
        .iter()
        .map(|r| r.text())
        .collect();
    assert_eq!(bodies, ["/thread/200", "/fast/1", "/thread/1", "/fast/2"]);
}

#[test]
fn a_connection_closed_before_the_answer_makes_it_a_no_op() {
    let server = TestServer::start(app);
    {
        let mut stream = server.connect();
        stream.write_all(&get("/thread/200")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    } // closed before the answer
    std::thread::sleep(Duration::from_millis(300));
    // The worker is fine and serves others.
    let mut stream = server.connect();
    stream.write_all(&get("/thread/1")).unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].body, b"/thread/1");
}

#[test]
fn a_deferred_answer_past_its_deadline_becomes_503() {
    let config = Config {
        deferred_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let mut stream = server.connect();
    let started = Instant::now();
    stream
        .write_all(&[get("/late/600"), get("/never")].concat())
        .unwrap();
    let bytes = read_to_close(&mut stream);
    let responses = parse_all(&bytes);
    assert_eq!(
        responses.len(),
        1,
        "the late answer and the next request are dropped"
    );
    assert_eq!(
        responses[0].status,
        StatusCode::SERVICE_UNAVAILABLE.as_u16()
    );
    assert_eq!(responses[0].header("retry-after"), Some("1"));
    assert!(responses[0].closes());
    assert!(started.elapsed() < Duration::from_millis(590));
    // The late answer arrives to nothing; the worker goes on.
    std::thread::sleep(Duration::from_millis(500));
    let mut stream = server.connect();
    stream.write_all(&get("/ok")).unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].body, b"/ok");
}

#[test]
fn deferred_head_and_http10_keep_their_shape() {
    let server = TestServer::start(app);
    let bytes = server.exchange(b"GET /thread/5 HTTP/1.0\r\n\r\n");
    let responses = parse_all(&bytes);
    assert!(responses[0].closes());
    assert_eq!(responses[0].body, b"/thread/5");
    let mut stream = server.connect();
    stream
        .write_all(b"HEAD /thread/5 HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while !raw.ends_with(b"/x") {
        let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    let (head, used) = util::parse_response(&raw, true, false).unwrap();
    assert_eq!(head.header("content-length"), Some("9"));
    assert_eq!(
        &raw[used..used + 17],
        b"HTTP/1.1 200 OK\r\n",
        "no body bytes after the HEAD answer"
    );
}

#[test]
fn a_route_can_have_its_own_deferred_deadline() {
    use keel::middleware::{HandlerExt, Timeout};
    // The server-wide deadline is long; the wrapped route's is short.
    let routes = keel::Router::new()
        .get(
            "/late/:ms",
            app.with(Timeout::new(Duration::from_millis(150))),
        )
        .get("/thread/:ms", app)
        .build()
        .unwrap();
    let server = TestServer::with(routes, Config::default(), 1);
    let started = Instant::now();
    let responses = parse_all(&server.exchange(&get("/late/1000")));
    assert_eq!(responses[0].status, 503);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(140) && waited < Duration::from_millis(900),
        "{waited:?}"
    );
    // An unwrapped route keeps the server-wide deadline and gets its answer.
    let mut stream = server.connect();
    stream.write_all(&get("/thread/300")).unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].body, b"/thread/300");
}
