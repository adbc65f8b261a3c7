//! Streamed responses over real sockets: bodies sent from other threads
//! in pieces, in order with pipelined requests, with backpressure, ended,
//! aborted, or cut short by a client that leaves.

mod util;

use keel::{BodyStream, Request, Response, Router, Routes, StreamError};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::{read_responses, read_until_ending, TestServer};

/// What the producers of `/forever` saw when they stopped.
type Stops = Arc<Mutex<mpsc::Sender<StreamError>>>;

/// How long `/quiet`'s event stream took to learn its client left.
type Noticed = Arc<Mutex<mpsc::Sender<Duration>>>;

/// `/words` (three pieces from a thread), `/forever` (a piece every 5 ms
/// until the client leaves), `/drop` (one piece, then dropped),
/// `/sized/<n>` (declares 10 bytes, sends `n`), `/fill` (a handler that
/// fills with `try_send` and reports how much went in), `/n/<k>`.
fn routes(stops: Stops, filled: mpsc::Sender<(usize, BodyStream)>, noticed: Noticed) -> Routes {
    let filled = Mutex::new(filled);
    Router::new()
        .get("/quiet", move |_: &Request<'_>, res: &mut Response<'_>| {
            // An event stream with nothing to say: it must still learn at
            // once that its client left, without sending anything.
            let events = res.event_stream();
            let noticed = Arc::clone(&noticed);
            std::thread::spawn(move || {
                let started = Instant::now();
                while !events.is_closed() && started.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = noticed.lock().unwrap().send(started.elapsed());
            });
        })
        .get("/words", |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            std::thread::spawn(move || {
                let Some(mut body) = responder.stream(|res| {
                    res.header("Content-Type", "text/plain");
                }) else {
                    return;
                };
                for word in ["one ", "two ", "three"] {
                    std::thread::sleep(Duration::from_millis(20));
                    body.send(word.as_bytes()).unwrap();
                }
                body.finish().unwrap();
            });
        })
        .get(
            "/forever",
            move |_: &Request<'_>, res: &mut Response<'_>| {
                let mut body = res.stream();
                let stops = Arc::clone(&stops);
                std::thread::spawn(move || loop {
                    if let Err(e) = body.send(b"tick\n") {
                        let _ = stops.lock().unwrap().send(e);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                });
            },
        )
        .get("/drop", |_: &Request<'_>, res: &mut Response<'_>| {
            let mut body = res.stream();
            body.try_send(b"partial").unwrap();
        })
        .get("/sized/:n", |req: &Request<'_>, res: &mut Response<'_>| {
            let n: usize = req.param("n").unwrap().parse().unwrap();
            let mut body = res.stream_with_length(10);
            let sent = body.try_send(&b"0123456789abc"[..n]);
            if sent == Err(StreamError::WrongLength) {
                // Refused whole: nothing of it went out; fill the declared length.
                body.try_send(b"0123456789").unwrap();
            }
            let _ = body.finish();
        })
        .get("/fill", move |_: &Request<'_>, res: &mut Response<'_>| {
            let mut body = res.stream();
            let piece = [b'f'; 16 * 1024];
            let mut sent = 0;
            while body.try_send(&piece).unwrap() {
                sent += piece.len();
            }
            filled.lock().unwrap().send((sent, body)).unwrap();
        })
        .get("/n/:k", |req: &Request<'_>, res: &mut Response<'_>| {
            res.body(req.param("k").unwrap_or_default().as_bytes());
        })
        .build()
        .expect("routes")
}

struct Setup {
    server: TestServer,
    stops: mpsc::Receiver<StreamError>,
    filled: mpsc::Receiver<(usize, BodyStream)>,
    noticed: mpsc::Receiver<Duration>,
}

fn setup() -> Setup {
    let (stop_tx, stops) = mpsc::channel();
    let (fill_tx, filled) = mpsc::channel();
    let (noticed_tx, noticed) = mpsc::channel();
    let routes = routes(
        Arc::new(Mutex::new(stop_tx)),
        fill_tx,
        Arc::new(Mutex::new(noticed_tx)),
    );
    Setup {
        server: TestServer::start(routes),
        stops,
        filled,
        noticed,
    }
}

#[test]
fn a_streamed_answer_and_the_pipelined_requests_behind_it_leave_in_order() {
    let s = setup();
    let mut stream = s.server.connect();
    stream
        .write_all(
            b"GET /n/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /words HTTP/1.1\r\nHost: a\r\n\r\n\
              GET /n/3 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap();
    let replies = read_responses(&mut stream, 3);
    assert_eq!(replies[0].body, b"1");
    assert_eq!(replies[1].body, b"one two three");
    assert_eq!(replies[1].header("transfer-encoding"), Some("chunked"));
    assert_eq!(replies[2].body, b"3");
}

#[test]
fn the_producer_hears_the_client_left() {
    let s = setup();
    let mut stream = s.server.connect();
    stream
        .write_all(b"GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 256];
    assert!(stream.read(&mut first).unwrap() > 0);
    drop(stream);
    let stopped = s.stops.recv_timeout(Duration::from_secs(5));
    assert_eq!(stopped, Ok(StreamError::Closed));
}

#[test]
fn a_stream_dropped_unfinished_is_cut_short_and_closes() {
    let s = setup();
    let reply = s
        .server
        .exchange(b"GET /drop HTTP/1.1\r\nHost: a\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: a\r\n\r\n");
    let reply = String::from_utf8(reply).unwrap();
    // The piece went out, never the last chunk; the next request is not answered.
    assert!(reply.ends_with("\r\n\r\n7\r\npartial\r\n"), "{reply:?}");
    assert_eq!(reply.matches("HTTP/1.1").count(), 1);
}

#[test]
fn a_declared_length_is_kept_exactly() {
    let s = setup();
    let mut stream = s.server.connect();
    stream
        .write_all(
            b"GET /sized/10 HTTP/1.1\r\nHost: a\r\n\r\nGET /sized/13 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap();
    let replies = read_responses(&mut stream, 2);
    for reply in &replies {
        assert_eq!(reply.header("content-length"), Some("10"));
        assert_eq!(reply.body, b"0123456789");
    }
    // Finished short: the client must see the body is incomplete.
    let reply = s
        .server
        .exchange(b"GET /sized/4 HTTP/1.1\r\nHost: a\r\n\r\n");
    let reply = String::from_utf8(reply).unwrap();
    assert!(
        reply.contains("\r\nContent-Length: 10\r\n") && reply.ends_with("\r\n\r\n0123"),
        "{reply:?}"
    );
}

#[test]
fn http10_and_head_get_what_they_can_take() {
    let s = setup();
    let reply = String::from_utf8(s.server.exchange(b"GET /words HTTP/1.0\r\n\r\n")).unwrap();
    assert!(
        !reply.contains("chunked") && reply.ends_with("\r\n\r\none two three"),
        "{reply:?}"
    );
    let mut stream = s.server.connect();
    stream
        .write_all(b"HEAD /words HTTP/1.1\r\nHost: a\r\n\r\nGET /n/5 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let got = String::from_utf8(read_until_ending(&mut stream, b"\r\n\r\n5")).unwrap();
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.contains("Transfer-Encoding: chunked"),
        "{got}"
    );
    assert!(!got.contains("one"), "a HEAD answer carries no body: {got}");
    assert_eq!(got.matches("HTTP/1.1 200").count(), 2, "{got}");
}

#[test]
fn try_send_says_full_while_the_client_does_not_read_and_everything_arrives_after() {
    let s = setup();
    let mut stream = s.server.connect();
    stream
        .write_all(b"GET /fill HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (sent, mut body) = s.filled.recv_timeout(Duration::from_secs(5)).unwrap();
    // The stream's window (256 KiB by default), not the whole pipe.
    assert!(sent <= 512 * 1024, "{sent} bytes queued before full");
    // The client reads; a producer on another thread sends the rest.
    let producer = std::thread::spawn(move || {
        for _ in 0..64 {
            body.send(&[b'g'; 16 * 1024]).unwrap();
        }
        body.finish().unwrap();
    });
    let reply = read_responses(&mut stream, 1);
    producer.join().unwrap();
    assert_eq!(reply[0].body.len(), sent + 64 * 16 * 1024);
    assert!(reply[0].body[..sent].iter().all(|&b| b == b'f'));
    assert!(reply[0].body[sent..].iter().all(|&b| b == b'g'));
}

#[test]
fn a_quiet_event_stream_learns_at_once_that_its_client_left() {
    let s = setup();
    let mut stream = s.server.connect();
    stream
        .write_all(b"GET /quiet HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 512];
    let n = stream.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(
        head.contains("Content-Type: text/event-stream\r\n"),
        "{head}"
    );
    std::thread::sleep(Duration::from_millis(100));
    drop(stream); // no event was ever sent: only the FIN tells
    let took = s.noticed.recv_timeout(Duration::from_secs(15)).unwrap();
    assert!(took < Duration::from_secs(2), "noticed after {took:?}");
}
