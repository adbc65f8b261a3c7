//! Refusing before reading (DESIGN invariant 6): head-time checks run
//! before one body byte is read, `100 Continue` waits for them, route body
//! limits replace `max_body`, and a worker's bodies in flight are capped.
//! Each test performs the attack: a head announcing a body the server must
//! not read or hold.

mod util;

use keel::middleware::{AtHead, Flow, HandlerExt, Middleware, RateLimit};
use keel::testing::MemoryConn;
use keel::{Config, Request, Response, Router, Routes, StatusCode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::{answer_to_an_upload, parse_all, read_responses, read_to_close, TestServer};

/// Refuses requests without an `Authorization` header, written as a plain
/// `before` check and moved to head time with [`AtHead`].
struct RequireAuth;

impl Middleware for RequireAuth {
    fn before(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        if req.header("authorization").is_some() {
            return Flow::Continue;
        }
        res.status(StatusCode::UNAUTHORIZED).body(b"who are you?\n");
        Flow::Stop
    }
}

/// `/upload` (auth, 1 MiB limit), `/note` (auth, the server's `max_body`),
/// `/limited` (a rate limit of one request per minute); each counts the
/// requests its handler saw.
fn routes(handled: &Arc<AtomicUsize>) -> Routes {
    let counting = |handled: &Arc<AtomicUsize>| {
        let handled = Arc::clone(handled);
        move |req: &Request<'_>, res: &mut Response<'_>| {
            handled.fetch_add(1, SeqCst);
            res.body(format!("{} bytes", req.body().len()).as_bytes());
        }
    };
    Router::new()
        .post("/upload", counting(handled).with(AtHead(RequireAuth)))
        .body_limit(1 << 20)
        .post("/note", counting(handled).with(AtHead(RequireAuth)))
        .post(
            "/limited",
            counting(handled).with(RateLimit::new(1, Duration::from_secs(60))),
        )
        .build()
        .expect("routes")
}

fn small_config() -> Config {
    Config {
        max_body: 64,
        ..Config::default()
    }
}

/// Sends `head` (announcing 10 MB) and no body: the answer must come at
/// once, close the connection, and the handler must not have run.
fn refused_from_head(server: &TestServer, handled: &AtomicUsize, head: &str) -> util::Resp {
    let before = handled.load(SeqCst);
    let mut stream = server.connect();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let responses = parse_all(&read_to_close(&mut stream));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the answer waited for a body: {:?}",
        started.elapsed()
    );
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert!(responses[0].closes(), "{:?}", responses[0]);
    assert_eq!(handled.load(SeqCst), before, "the handler ran");
    responses[0].clone()
}

#[test]
fn refusals_come_from_the_head_without_reading_the_body() {
    let handled = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with(routes(&handled), small_config(), 1);
    let big = "Content-Length: 10000000\r\n\r\n";

    let auth = refused_from_head(
        &server,
        &handled,
        &format!("POST /upload HTTP/1.1\r\nHost: a\r\n{big}"),
    );
    assert_eq!(auth.status, 401);

    // The route's 1 MiB limit, past the server's 64 bytes, only once authorised.
    let limit = refused_from_head(
        &server,
        &handled,
        &format!("POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\n{big}"),
    );
    assert_eq!(limit.status, 413);
    let note = refused_from_head(
        &server,
        &handled,
        "POST /note HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nContent-Length: 65\r\n\r\n",
    );
    assert_eq!(note.status, 413);

    // A route nobody registered, and a method the route does not take.
    let missing = refused_from_head(
        &server,
        &handled,
        &format!("POST /nope HTTP/1.1\r\nHost: a\r\n{big}"),
    );
    assert_eq!(missing.status, 404);
    let method = refused_from_head(
        &server,
        &handled,
        &format!("PUT /upload HTTP/1.1\r\nHost: a\r\n{big}"),
    );
    assert_eq!(method.status, 405);

    // The rate limit: the first request passes, the second is refused from its head.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /limited HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].status, 200);
    let limited = refused_from_head(
        &server,
        &handled,
        &format!("POST /limited HTTP/1.1\r\nHost: a\r\n{big}"),
    );
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
}

#[test]
fn an_unread_body_is_never_taken_for_the_next_request() {
    // The refused request's "body" is a request of its own: a smuggling
    // attempt. It must be discarded, not answered.
    let handled = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with(routes(&handled), small_config(), 1);
    let inner = "POST /limited HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    let wire = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{inner}",
        inner.len()
    );
    let responses = parse_all(&server.exchange(wire.as_bytes()));
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(responses[0].status, 401);
    assert!(responses[0].closes());
    assert_eq!(handled.load(SeqCst), 0);
}

#[test]
fn a_refused_upload_still_reads_its_answer_while_sending() {
    // The client keeps sending its body; lingering keeps the kernel from
    // resetting the connection before the 401 is read.
    let handled = Arc::new(AtomicUsize::new(0));
    let server = TestServer::with(routes(&handled), small_config(), 1);
    let text = answer_to_an_upload(
        &server,
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n",
    );
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
}

#[test]
fn continue_is_sent_only_after_the_head_is_accepted() {
    let handled = Arc::new(AtomicUsize::new(0));
    let mut conn = MemoryConn::with_config(routes(&handled), small_config());
    conn.send(
        b"POST /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    let reply = String::from_utf8(conn.recv()).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{reply}"
    );
    assert!(!reply.contains("100 Continue"), "{reply}");
    assert!(conn.is_closed());

    let mut conn = MemoryConn::with_config(routes(&handled), small_config());
    conn.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n");
    let reply = String::from_utf8(conn.recv()).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{reply}"
    );

    let mut conn = MemoryConn::with_config(routes(&handled), small_config());
    conn.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_eq!(conn.recv(), b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.send(b"abcd");
    let reply = String::from_utf8(conn.recv()).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("4 bytes"),
        "{reply}"
    );
    assert!(!conn.is_closed());
}

#[test]
fn route_limits_apply_to_both_framings() {
    let handled = Arc::new(AtomicUsize::new(0));
    let new_conn = || MemoryConn::with_config(routes(&handled), small_config());
    let body = "b".repeat(1000);

    // The big route takes 1000 bytes both ways; the server default would not.
    let mut conn = new_conn();
    conn.send(format!("POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nContent-Length: 1000\r\n\r\n{body}").as_bytes());
    assert!(conn.recv().ends_with(b"1000 bytes"));
    conn.send(format!("POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{body}\r\n0\r\n\r\n").as_bytes());
    assert!(conn.recv().ends_with(b"1000 bytes"));

    // The default route: 64 bytes, a Content-Length over it refused from the head.
    let mut conn = new_conn();
    conn.send(b"POST /note HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nContent-Length: 65\r\n\r\n");
    assert!(conn
        .recv()
        .starts_with(b"HTTP/1.1 413 Content Too Large\r\n"));
    assert!(conn.is_closed());

    // A chunked body is refused as soon as it would pass the limit, before
    // it ends: a 40-byte chunk fits, the size line of a second one does not
    // (its 40 bytes are never read).
    let mut conn = new_conn();
    conn.send(b"POST /note HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nTransfer-Encoding: chunked\r\n\r\n28\r\n");
    conn.send(&[b'c'; 40]);
    assert_eq!(conn.recv(), b"", "40 bytes are within the limit");
    conn.send(b"\r\n28\r\n");
    assert!(conn
        .recv()
        .starts_with(b"HTTP/1.1 413 Content Too Large\r\n"));
    assert!(conn.is_closed());
    assert_eq!(handled.load(SeqCst), 2, "only the two accepted uploads");
}

/// Opens a connection, sends the head of a `len`-byte upload with
/// `Expect: 100-continue`, and returns it once admitted (its body counted
/// against the worker's budget), after sending `sent` body bytes.
fn admitted_upload(server: &TestServer, len: usize, sent: usize) -> Option<TcpStream> {
    let mut stream = server.connect();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    if &interim != b"HTTP/1.1 100 Continue\r\n\r\n" {
        return None;
    }
    stream.write_all(&vec![b'u'; sent]).unwrap();
    Some(stream)
}

#[test]
fn bodies_in_flight_are_capped_per_worker() {
    const UPLOAD: usize = 256 * 1024;
    let handled = Arc::new(AtomicUsize::new(0));
    let config = Config {
        max_body_in_flight: 4 * UPLOAD,
        ..small_config()
    };
    let server = TestServer::with(routes(&handled), config, 1);

    // Four uploads, each half sent, hold the whole budget.
    let mut holding: Vec<TcpStream> = (0..4)
        .map(|_| admitted_upload(&server, UPLOAD, UPLOAD / 2).expect("within the budget"))
        .collect();

    // The fifth is refused from its head: 503, Retry-After, close.
    let mut fifth = server.connect();
    fifth
        .write_all(format!("POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nContent-Length: {UPLOAD}\r\n\r\n").as_bytes())
        .unwrap();
    let responses = parse_all(&read_to_close(&mut fifth));
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(responses[0].status, 503);
    assert_eq!(responses[0].header("retry-after"), Some("1"));
    assert!(responses[0].closes());

    // An answered request gives its bytes back...
    let mut first = holding.remove(0);
    first.write_all(&vec![b'u'; UPLOAD / 2]).unwrap();
    let done = &read_responses(&mut first, 1)[0];
    assert_eq!(done.status, 200);
    assert_eq!(done.text(), format!("{UPLOAD} bytes"));
    let mut again = admitted_upload(&server, UPLOAD, UPLOAD).expect("a released share is reusable");
    assert_eq!(read_responses(&mut again, 1)[0].status, 200);

    // ...and so does a connection closed halfway through its body.
    holding.truncate(2);
    let deadline = Instant::now() + Duration::from_secs(3);
    let reused = loop {
        if let Some(stream) = admitted_upload(&server, UPLOAD, 0) {
            break stream;
        }
        assert!(
            Instant::now() < deadline,
            "the closed upload's share never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(reused);
}

#[test]
fn a_chunked_body_counts_against_the_budget_as_it_arrives() {
    let handled = Arc::new(AtomicUsize::new(0));
    let config = Config {
        max_body_in_flight: 2000,
        ..small_config()
    };
    let mut conn = MemoryConn::with_config(routes(&handled), config);
    conn.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..2 {
        conn.send(format!("3e8\r\n{}\r\n", "c".repeat(1000)).as_bytes());
    }
    assert_eq!(conn.recv(), b"", "2000 bytes fit");
    conn.send(b"1\r\nc\r\n");
    let reply = String::from_utf8(conn.recv()).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nRetry-After: 1\r\n") && conn.is_closed(),
        "{reply}"
    );
    assert_eq!(handled.load(SeqCst), 0);
}

#[test]
fn a_head_refusal_is_seen_by_the_layers_outside_it() {
    // An access log (any `after`) outside the refusing layer sees the 401.
    struct Seen(Arc<AtomicUsize>);
    impl Middleware for Seen {
        fn after(&self, _: &Request<'_>, res: &mut Response<'_>) {
            self.0.store(res.status_code().as_u16().into(), SeqCst);
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok"))
        .with(AtHead(RequireAuth))
        .with(Seen(Arc::clone(&seen)));
    let mut conn = MemoryConn::new(app);
    conn.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n");
    assert!(conn.recv().starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    assert_eq!(seen.load(SeqCst), 401);
}

#[test]
fn a_panic_at_head_time_is_a_500_that_closes() {
    struct Boom;
    impl Middleware for Boom {
        fn on_head(&self, _: &Request<'_>, _: &mut Response<'_>) -> Flow {
            panic!("boom");
        }
    }
    let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(Boom);
    let mut conn = MemoryConn::new(app);
    conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let reply = String::from_utf8(conn.recv()).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{reply}"
    );
    assert!(conn.is_closed());
}

#[test]
fn a_bodiless_refusal_keeps_the_connection() {
    // Nothing is left unread, so a 401 to a GET keeps the connection open.
    let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(AtHead(RequireAuth));
    let mut conn = MemoryConn::new(app);
    conn.send(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nAuthorization: x\r\n\r\n",
    );
    let replies = conn.responses().unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!((replies[0].status, replies[1].status), (401, 200));
    assert!(!conn.is_closed());
}

#[test]
fn a_route_resolved_from_the_head_keeps_its_parameters() {
    // The router resolves a route once, at head time, and hands the same
    // parameters to the handler: at once when the body is in, and again
    // (routed afresh) when the body comes in a later read. A table inside
    // a table resolves its own part.
    let echo = |req: &Request<'_>, res: &mut Response<'_>| {
        let text = format!(
            "{} {} {}",
            req.param("a").unwrap_or("-"),
            req.param("b").unwrap_or("-"),
            req.body().len()
        );
        res.body(text.as_bytes());
    };
    let inner = Router::new()
        .post("/nest/:a/in/:b", echo)
        .build()
        .expect("inner routes");
    let routes = Router::new()
        .post("/x/:a", echo)
        .post("/nest/:a/*rest", inner)
        .build()
        .expect("routes");
    let mut conn = MemoryConn::new(routes);
    conn.send(b"POST /x/one HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    assert!(conn.recv().ends_with(b"one - 2"));
    conn.send(b"POST /x/two?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(conn.recv(), b"");
    conn.send(b"abc");
    assert!(conn.recv().ends_with(b"two - 3"));
    // The inner table sees the whole path and binds `b` itself; the outer
    // one's resolution is never taken for the inner's, nor the reverse.
    conn.send(b"POST /nest/p/in/q HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n!");
    let reply = conn.recv();
    assert!(
        reply.ends_with(b"p q 1"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}
