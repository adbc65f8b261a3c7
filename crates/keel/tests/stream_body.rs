//! Streamed request bodies over real sockets: uploads hashed as they
//! arrive, chunked with trailers, pipelined after, a sink that pauses the
//! client, a client that dies, `100 Continue`, limits, bad framing, and an
//! answer that comes before the body ends.

mod util;

use keel::middleware::Flow;
use keel::{Handler, Request, Response, Router, Routes, StatusCode};
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::upload::{send_body, HashSink, Log, Seen};
use util::{read_responses, read_to_close, TestServer};

/// Accepts uploads only from clients that send `Authorization`.
struct Guarded(Log);

impl Handler for Guarded {
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        if req.header("authorization").is_some() {
            return Flow::Continue;
        }
        res.status(StatusCode::UNAUTHORIZED).body(b"who are you?");
        Flow::Stop
    }

    fn streams_body(&self, _: &Request<'_>) -> bool {
        true
    }

    fn handle(&self, _: &Request<'_>, res: &mut Response<'_>) {
        let responder = res.defer();
        res.read_body(HashSink::new(responder, &self.0));
    }
}

/// `/hash` (streamed, hashed on the worker), `/guarded` (needs
/// `Authorization`), `/limited` (at most 1000 bytes), `/early` (answers
/// at once without taking the body), `/gated` (read on a thread that
/// waits for `gate`), `/n/<k>` (answers `k`).
fn routes(log: &Log, gate: mpsc::Receiver<()>) -> Routes {
    let hash = {
        let log = Arc::clone(log);
        move |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            res.read_body(HashSink::new(responder, &log));
        }
    };
    let gate = Mutex::new(Some(gate));
    Router::new()
        .put("/hash", hash.clone())
        .stream_body()
        .put("/limited", hash)
        .stream_body()
        .body_limit(1000)
        .put("/guarded", Guarded(Arc::clone(log)))
        .put("/early", |_: &Request<'_>, res: &mut Response<'_>| {
            res.status(StatusCode::FORBIDDEN).body(b"not today");
        })
        .stream_body()
        .put("/gated", move |_: &Request<'_>, res: &mut Response<'_>| {
            let mut body = res.body_reader();
            let gate = gate.lock().unwrap().take();
            res.offload(move |res| {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                let mut total = 0u64;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(e) => {
                            return res
                                .status(StatusCode::BAD_REQUEST)
                                .body(e.to_string().as_bytes())
                        }
                    }
                }
                res.body(total.to_string().as_bytes());
            });
        })
        .stream_body()
        .get("/n/:k", |req: &Request<'_>, res: &mut Response<'_>| {
            res.body(req.param("k").unwrap_or_default().as_bytes());
        })
        .build()
        .expect("routes")
}

fn server() -> (TestServer, Log, mpsc::Sender<()>) {
    let log: Log = Arc::default();
    let (open, gate) = mpsc::channel();
    (TestServer::start(routes(&log, gate)), log, open)
}

fn wait_for(log: &Log, count: usize) -> Vec<Seen> {
    let started = Instant::now();
    loop {
        let seen = log.lock().unwrap().clone();
        if seen.len() >= count || started.elapsed() > Duration::from_secs(5) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn uploads_of_either_framing_are_hashed_as_they_arrive() {
    let (server, log, _) = server();
    for chunked in [false, true] {
        let mut stream = server.connect();
        let len: u64 = 24 * 1024 * 1024 + 7;
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_owned()
        } else {
            format!("Content-Length: {len}")
        };
        write!(stream, "PUT /hash HTTP/1.1\r\nHost: a\r\n{framing}\r\n\r\n").unwrap();
        let digest = send_body(&mut stream, len, chunked).unwrap();
        if chunked {
            stream.write_all(b"0\r\n\r\n").unwrap();
        }
        let reply = read_responses(&mut stream, 1);
        assert_eq!(reply[0].status, 200);
        assert_eq!(
            String::from_utf8_lossy(&reply[0].body),
            format!("{len} {digest}")
        );
    }
    assert_eq!(wait_for(&log, 2).len(), 2);
}

#[test]
fn trailers_reach_the_sink_and_a_pipelined_request_is_answered_after() {
    let (server, log, _) = server();
    let mut stream = server.connect();
    stream
        .write_all(
            b"PUT /hash HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nDigest: sha-256=x\r\nX-N: 2\r\n\r\n\
              GET /n/2 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap();
    let replies = read_responses(&mut stream, 2);
    let first = String::from_utf8_lossy(&replies[0].body).into_owned();
    assert!(
        first.starts_with("11 b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
        "{first}"
    );
    assert!(first.ends_with("; Digest=sha-256=x; X-N=2"), "{first}");
    assert_eq!(replies[1].body, b"2");
    assert_eq!(wait_for(&log, 1).len(), 1);
}

#[test]
fn a_sink_that_falls_behind_stops_the_clients_sending() {
    let (server, _, open_gate) = server();
    let mut stream = server.connect();
    let len: u64 = 96 * 1024 * 1024;
    write!(
        stream,
        "PUT /gated HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    // The reader waits at the gate: keel's buffers and the kernel's fill,
    // then the client's writes stop going through.
    stream.set_nonblocking(true).unwrap();
    let piece = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    let mut stalled_since: Option<Instant> = None;
    loop {
        match stream.write(&piece) {
            Ok(n) => {
                sent += n as u64;
                stalled_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    break; // nothing went through for half a second
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
        assert!(sent < len, "the whole body went through a paused sink");
    }
    eprintln!("taken while the sink was paused: {sent} bytes");
    assert!(
        sent < 32 * 1024 * 1024,
        "{sent} bytes were taken while the sink was paused"
    );
    // Open the gate: the body flows again and arrives whole.
    open_gate.send(()).unwrap();
    stream.set_nonblocking(false).unwrap();
    let mut left = len - sent;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        stream.write_all(&piece[..n]).unwrap();
        left -= n as u64;
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reply = read_responses(&mut stream, 1);
    assert_eq!(reply[0].body, len.to_string().as_bytes());
}

#[test]
fn a_client_that_dies_mid_upload_fails_the_sink_and_the_server_goes_on() {
    let (server, log, _) = server();
    let mut stream = server.connect();
    stream
        .write_all(b"PUT /hash HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    send_body(&mut stream, 300_000, false).unwrap();
    drop(stream);
    assert_eq!(
        wait_for(&log, 1),
        [Seen::Failed(keel::body::BodyError::Closed)]
    );
    let mut stream = server.connect();
    stream
        .write_all(b"GET /n/7 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].body, b"7");
}

#[test]
fn continue_is_sent_only_once_the_route_accepted_the_upload() {
    let (server, _, _) = server();
    let head = b"PUT /guarded HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n";
    // Refused from the head: the final status at once, no 100, and a close.
    let mut stream = server.connect();
    stream.write_all(head).unwrap();
    stream.write_all(b"\r\n").unwrap();
    let reply = String::from_utf8(read_to_close(&mut stream)).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{reply}"
    );
    assert!(!reply.contains("100 Continue"), "{reply}");
    // Accepted: 100 Continue first, then the body is read and answered.
    let mut stream = server.connect();
    stream.write_all(head).unwrap();
    stream.write_all(b"Authorization: x\r\n\r\n").unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    let reply = read_responses(&mut stream, 1);
    assert!(String::from_utf8_lossy(&reply[0].body).starts_with("5 2cf24dba"));
}

#[test]
fn a_streamed_body_past_its_limit_is_refused_and_closes() {
    let (server, log, _) = server();
    // Declared too large: 413 from the head, the sink never made.
    let reply =
        server.exchange(b"PUT /limited HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n");
    assert!(
        reply.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // Chunked past it: the sink hears TooLarge, answers 413, and keel closes
    // without reading what follows.
    let body = format!(
        "PUT /limited HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
         3e8\r\n{}\r\n1\r\nx\r\n0\r\n\r\nGET /n/1 HTTP/1.1\r\nHost: a\r\n\r\n",
        "a".repeat(1000)
    );
    let reply = String::from_utf8(server.exchange(body.as_bytes())).unwrap();
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    assert_eq!(reply.matches("HTTP/1.1").count(), 1, "{reply}");
    assert_eq!(
        wait_for(&log, 1),
        [Seen::Failed(keel::body::BodyError::TooLarge)]
    );
}

#[test]
fn bad_chunk_framing_fails_the_sink_and_nothing_after_it_is_read() {
    let (server, log, _) = server();
    let reply = server.exchange(
        b"PUT /hash HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhelloXXGET /n/1 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let reply = String::from_utf8(reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert_eq!(reply.matches("HTTP/1.1").count(), 1, "{reply}");
    assert!(matches!(
        wait_for(&log, 1)[..],
        [Seen::Failed(keel::body::BodyError::Framing(_))]
    ));
}

#[test]
fn an_answer_before_the_body_ends_closes_and_the_rest_is_never_a_request() {
    let (server, _, _) = server();
    // The body holds what looks like a request: it must never be answered.
    let smuggled = b"GET /n/9 HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut request = format!(
        "PUT /early HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    request.extend_from_slice(smuggled);
    let reply = String::from_utf8(server.exchange(&request)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{reply}");
    assert_eq!(reply.matches("HTTP/1.1").count(), 1, "{reply}");
}

#[test]
fn a_request_without_a_body_reads_as_an_empty_stream() {
    let (server, log, _) = server();
    let mut stream = server.connect();
    stream
        .write_all(b"PUT /hash HTTP/1.1\r\nHost: a\r\n\r\nGET /n/4 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let replies = read_responses(&mut stream, 2);
    let sha256_of_nothing = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(
        String::from_utf8_lossy(&replies[0].body),
        format!("0 {sha256_of_nothing}")
    );
    assert_eq!(replies[1].body, b"4");
    assert_eq!(wait_for(&log, 1).len(), 1);
}
